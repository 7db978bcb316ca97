/// Positions, diagnostics and their rendering in a compiler's format:
/// `file:line:col: error CODE: message`, the source line, a caret, a hint.
namespace CnnDsl.Dsl

open System
open System.Text

/// 1-based line and column of a token; Length is how many characters to underline.
[<Struct>]
type Pos =
    { Line: int; Col: int; Length: int }
    static member None = { Line = 0; Col = 0; Length = 0 }

[<RequireQualifiedAccess>]
type Severity =
    | Error
    | Warning

type Diagnostic =
    { Code: string
      Severity: Severity
      Message: string
      Hint: string option
      Pos: Pos }

module Diagnostic =

    let isError d = d.Severity = Severity.Error

    let private severityWord = function Severity.Error -> "error" | Severity.Warning -> "warning"

    /// Sorted by position, errors before warnings at the same place.
    let sort (ds: Diagnostic list) =
        ds |> List.sortBy (fun d -> d.Pos.Line, d.Pos.Col, (if isError d then 0 else 1), d.Code)

    let private sourceLine (source: string) (line: int) =
        let lines = source.Replace("\r\n", "\n").Split('\n')
        if line >= 1 && line <= lines.Length then Some lines[line - 1] else None

    /// The compiler-style text of one diagnostic.
    let render (file: string) (source: string) (d: Diagnostic) =
        let sb = StringBuilder()
        let p = d.Pos
        if p.Line > 0 then
            sb.AppendFormat("{0}:{1}:{2}: {3} {4}: {5}\n", file, p.Line, p.Col, severityWord d.Severity, d.Code, d.Message) |> ignore
            match sourceLine source p.Line with
            | Some text ->
                // Tabs are kept in the caret line so that the caret lines up under them.
                let printable = String(text |> Seq.map (fun c -> if Char.IsControl c && c <> '\t' then ' ' else c) |> Seq.toArray)
                let lead =
                    String(printable |> Seq.truncate (max 0 (p.Col - 1)) |> Seq.map (fun c -> if c = '\t' then '\t' else ' ') |> Seq.toArray)
                let width = max 1 (min p.Length (max 1 (printable.Length - (p.Col - 1))))
                sb.AppendFormat("  {0}\n  {1}{2}\n", printable, lead, String('^', width)) |> ignore
            | None -> ()
        else
            sb.AppendFormat("{0}: {1} {2}: {3}\n", file, severityWord d.Severity, d.Code, d.Message) |> ignore
        d.Hint |> Option.iter (fun h -> sb.AppendFormat("  hint: {0}\n", h) |> ignore)
        sb.ToString()

    let renderAll file source (ds: Diagnostic list) =
        ds |> sort |> List.map (render file source) |> String.concat ""

    let private jsonString (s: string) =
        let sb = StringBuilder("\"")
        for c in s do
            match c with
            | '"' -> sb.Append("\\\"") |> ignore
            | '\\' -> sb.Append("\\\\") |> ignore
            | '\n' -> sb.Append("\\n") |> ignore
            | '\r' -> sb.Append("\\r") |> ignore
            | '\t' -> sb.Append("\\t") |> ignore
            | c when c < ' ' -> sb.AppendFormat("\\u{0:x4}", int c) |> ignore
            | c -> sb.Append(c) |> ignore
        sb.Append('"').ToString()

    /// One JSON object per diagnostic, in an array, for editors and tools.
    let toJson (file: string) (ds: Diagnostic list) =
        let one d =
            let hint = match d.Hint with Some h -> jsonString h | None -> "null"
            sprintf "{\"file\":%s,\"line\":%d,\"column\":%d,\"length\":%d,\"severity\":\"%s\",\"code\":\"%s\",\"message\":%s,\"hint\":%s}"
                (jsonString file) d.Pos.Line d.Pos.Col d.Pos.Length (severityWord d.Severity) d.Code (jsonString d.Message) hint
        "[" + (ds |> sort |> List.map one |> String.concat ",") + "]"
