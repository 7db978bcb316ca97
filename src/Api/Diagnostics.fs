namespace CnnDsl

open System
open System.Collections.Generic
open System.Collections.ObjectModel

/// <summary>How serious a diagnostic is: an error stops the model from being used; a warning
/// does not.</summary>
type DiagnosticSeverity =
    /// <summary>The model cannot be used until this is corrected.</summary>
    | Error = 0
    /// <summary>The model works, but something looks unintended.</summary>
    | Warning = 1

/// <summary>
/// One mistake (or warning) found in a model's text, with its place: the code
/// (<c>CNN301</c>: the codes <c>dsl check</c> prints), the 1-based line and columns, the
/// message and a hint. <see cref="M:CnnDsl.Diagnostic.ToString"/> gives the compiler-style text
/// <c>dsl check</c> prints: <c>file:line:col: error CODE: message</c>, the line, a caret and the hint.
/// </summary>
[<Sealed>]
type Diagnostic internal (code: string, severity: DiagnosticSeverity, file: string, line: int, column: int, length: int,
                          message: string, hint: string | null, text: string) =
    /// <summary>The diagnostic's code, such as <c>E001</c>.</summary>
    member _.Code = code
    /// <summary>Error or warning.</summary>
    member _.Severity = severity
    /// <summary>True for an error.</summary>
    member _.IsError = severity = DiagnosticSeverity.Error
    /// <summary>The model file, or for a model given as text the name given to <see cref="M:CnnDsl.Model.Parse(System.String,System.String)"/> (<c>model</c> by default).</summary>
    member _.File = file
    /// <summary>The 1-based line; 0 when the diagnostic is about the whole model.</summary>
    member _.Line = line
    /// <summary>The 1-based column where the marked text starts; 0 with <see cref="P:CnnDsl.Diagnostic.Line"/> 0.</summary>
    member _.Column = column
    /// <summary>How many characters are marked (at least 1 when there is a place).</summary>
    member _.Length = length
    /// <summary>The column just past the marked text.</summary>
    member _.EndColumn = column + length
    /// <summary>What is wrong.</summary>
    member _.Message = message
    /// <summary>How to correct it; null when there is no hint.</summary>
    member _.Hint : string | null = hint
    /// <summary>The text <c>dsl check</c> prints for it: position, message, the source line with a caret, the hint.</summary>
    override _.ToString() = text

    /// The API's diagnostic for the front end's, rendered against the model's text.
    static member internal Of (file: string) (source: string) (d: CnnDsl.Dsl.Diagnostic) =
        let shown = file
        Diagnostic(d.Code, (if CnnDsl.Dsl.Diagnostic.isError d then DiagnosticSeverity.Error else DiagnosticSeverity.Warning), file,
                   d.Pos.Line, d.Pos.Col, d.Pos.Length, d.Message, Option.toObj d.Hint,
                   (CnnDsl.Dsl.Diagnostic.render shown source d).TrimEnd('\n'))

    /// Sorted as the CLI prints them, as a read-only list.
    static member internal List (file: string) (source: string) (ds: CnnDsl.Dsl.Diagnostic list) : IReadOnlyList<Diagnostic> =
        ReadOnlyCollection(ds |> CnnDsl.Dsl.Diagnostic.sort |> List.map (Diagnostic.Of file source) |> List.toArray)

/// <summary>A model that does not check: every diagnostic is in <see cref="P:CnnDsl.ModelException.Diagnostics"/>,
/// and the message is their compiler-style text as <c>dsl check</c> prints it.</summary>
[<Sealed>]
type ModelException(diagnostics: IReadOnlyList<Diagnostic>) =
    inherit CnnDslException(String.Join("\n", diagnostics |> Seq.map string))
    /// <summary>The errors (and warnings) found, sorted by position.</summary>
    member _.Diagnostics = diagnostics
