/// A document's text as LSP addresses it: 0-based lines and UTF-16 characters (the
/// protocol's default encoding, and .NET's string indexing), with incremental edits, and
/// the few scans over the text that the syntax tree does not record (where a statement ends).
namespace CnnDsl.Lsp

open System
open CnnDsl.Dsl

[<Struct>]
type LinePos = { Line: int; Character: int }

[<Struct>]
type TextRange = { Start: LinePos; End: LinePos }

type Document(text: string) =
    /// Offsets where each line starts; a line ends at '\n' (a '\r' before it is not content).
    let starts =
        let s = ResizeArray<int>([ 0 ])
        for i in 0 .. text.Length - 1 do
            if text[i] = '\n' then s.Add(i + 1)
        s.ToArray()

    member _.Text = text
    member _.LineCount = starts.Length

    /// The line's text without its line end.
    member _.Line(line: int) =
        if line < 0 || line >= starts.Length then ""
        else
            let stop = if line + 1 < starts.Length then starts[line + 1] - 1 else text.Length
            let stop = if stop > starts[line] && text[stop - 1] = '\r' then stop - 1 else stop
            text.Substring(starts[line], stop - starts[line])

    /// Offset of a position; positions past a line's end or the last line are clamped, as LSP asks.
    member d.Offset(p: LinePos) =
        if p.Line < 0 then 0
        elif p.Line >= starts.Length then text.Length
        else starts[p.Line] + (max 0 (min p.Character (d.Line p.Line).Length))

    member _.PositionAt(offset: int) =
        let offset = max 0 (min offset text.Length)
        let i = Array.BinarySearch(starts, offset)
        let line = if i >= 0 then i else ~~~i - 1
        { Line = line; Character = offset - starts[line] }

    /// The range of a front-end position (1-based line and column, a length on that line).
    member d.RangeOf(p: Pos) =
        if p.Line < 1 then { Start = { Line = 0; Character = 0 }; End = { Line = 0; Character = 0 } }
        else
            let line = p.Line - 1
            let start = max 0 (p.Col - 1)
            { Start = { Line = line; Character = start }; End = { Line = line; Character = start + max 1 p.Length } }

    /// The text with one edit applied: a range replaced, or everything when there is no range.
    member d.Apply(range: TextRange option, replacement: string) =
        match range with
        | None -> Document(replacement)
        | Some r ->
            let a = d.Offset r.Start
            let b = max a (d.Offset r.End)
            Document(text.Substring(0, a) + replacement + text.Substring(b))

module Scan =

    let private isWordChar c = Char.IsAsciiLetterOrDigit c || c = '_' || c = '-'

    /// The offset just past the statement that starts at `offset`: the first ';' or line end
    /// outside parentheses and comments (a `// comment` ends the statement before it), trailing
    /// spaces excluded.
    let statementEnd (text: string) (offset: int) =
        let mutable i = offset
        let mutable depth = 0
        let mutable stop = -1
        while stop < 0 && i < text.Length do
            let c = text[i]
            if c = '(' && i + 1 < text.Length && text[i + 1] = '*' then
                // a block comment, nested as the parser reads it
                let mutable d = 1
                i <- i + 2
                while d > 0 && i < text.Length do
                    if text[i] = '(' && i + 1 < text.Length && text[i + 1] = '*' then (d <- d + 1; i <- i + 2)
                    elif text[i] = '*' && i + 1 < text.Length && text[i + 1] = ')' then (d <- d - 1; i <- i + 2)
                    else i <- i + 1
            elif c = '/' && i + 1 < text.Length && text[i + 1] = '/' then
                if depth = 0 then stop <- i
                else while i < text.Length && text[i] <> '\n' do i <- i + 1
            elif c = '"' then
                i <- i + 1
                while i < text.Length && text[i] <> '"' && text[i] <> '\n' do i <- i + 1
                i <- i + 1
            elif c = '(' then (depth <- depth + 1; i <- i + 1)
            elif c = ')' then (depth <- max 0 (depth - 1); i <- i + 1)
            elif depth = 0 && (c = ';' || c = '\n') then stop <- i
            else i <- i + 1
        let mutable e = if stop < 0 then text.Length else stop
        while e > offset && Char.IsWhiteSpace text[e - 1] do e <- e - 1
        e

    /// The offset just past a layer inside parentheses: the first ';', '|', unmatched ')' or line
    /// end after it (parentheses it opens are skipped), trailing spaces excluded.
    let layerEnd (text: string) (offset: int) =
        let mutable i = offset
        let mutable depth = 0
        let mutable stop = -1
        while stop < 0 && i < text.Length do
            let c = text[i]
            if c = '(' && i + 1 < text.Length && text[i + 1] = '*' then stop <- i
            elif c = '/' && i + 1 < text.Length && text[i + 1] = '/' then stop <- i
            elif c = '(' then (depth <- depth + 1; i <- i + 1)
            elif c = ')' && depth = 0 then stop <- i
            elif c = ')' then (depth <- depth - 1; i <- i + 1)
            elif depth = 0 && (c = ';' || c = '|' || c = '\n') then stop <- i
            else i <- i + 1
        let mutable e = if stop < 0 then text.Length else stop
        while e > offset && Char.IsWhiteSpace text[e - 1] do e <- e - 1
        e

    /// The word (letters, digits, '_', '-') around a character of a line, with its start.
    let wordAt (line: string) (character: int) : (string * int) option =
        let c = max 0 (min character line.Length)
        let mutable a = c
        while a > 0 && isWordChar line[a - 1] do a <- a - 1
        let mutable b = c
        while b < line.Length && isWordChar line[b] do b <- b + 1
        if b > a then Some (line.Substring(a, b - a), a) else None

    /// Does the text between two offsets hold a comment?
    let hasComment (text: string) (a: int) (b: int) =
        let part = text.Substring(a, max 0 (b - a))
        part.Contains "//" || part.Contains "(*"
