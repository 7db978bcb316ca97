module CnnDsl.Lsp.Tests.DocumentTests

open Xunit
open CnnDsl.Dsl
open CnnDsl.Lsp

let private p line character : LinePos = { Line = line; Character = character }
let private r a b c d : TextRange = { Start = p a b; End = p c d }

[<Fact>]
let ``lines, offsets and positions agree, with CRLF line ends`` () =
    let d = Document("ab\r\ncd\nlast")
    Assert.Equal(3, d.LineCount)
    Assert.Equal("ab", d.Line 0)
    Assert.Equal("cd", d.Line 1)
    Assert.Equal("last", d.Line 2)
    Assert.Equal(4, d.Offset(p 1 0))
    Assert.Equal(p 1 1, d.PositionAt 5)
    // past a line's end and past the last line: clamped
    Assert.Equal(2, d.Offset(p 0 99))
    Assert.Equal(d.Text.Length, d.Offset(p 9 0))

[<Fact>]
let ``incremental edits replace a range, across lines; no range replaces everything`` () =
    let d = Document("input 28x28x1\nconv 6 5x5\nmaxpool 2\n")
    Assert.Equal("input 28x28x1\nconv 6 3x3 same\nmaxpool 2\n", d.Apply(Some (r 1 7 1 10), "3x3 same").Text)
    Assert.Equal("input 28x28x1\nmaxpool 2\n", d.Apply(Some (r 1 0 2 0), "").Text)
    Assert.Equal("input 9\n", d.Apply(None, "input 9\n").Text)
    // an insertion at the very end
    Assert.Equal(d.Text + "flatten", d.Apply(Some (r 3 0 3 0), "flatten").Text)

[<Fact>]
let ``a front-end position becomes a 0-based range of its length`` () =
    let d = Document("x")
    Assert.Equal(r 4 0 4 7, d.RangeOf { Line = 5; Col = 1; Length = 7 })
    Assert.Equal(r 0 0 0 0, d.RangeOf Pos.None)

[<Fact>]
let ``a statement ends at ';' or the line's end outside parentheses, before a comment`` () =
    let text = "conv 6 5x5 relu; maxpool 2\nlet b = (conv 8 3x3\n  relu)  // c\nrepeat 2 (dense 4) // note\n"
    Assert.Equal("conv 6 5x5 relu", text.Substring(0, Scan.statementEnd text 0))
    let letAt = text.IndexOf "let"
    Assert.Equal("let b = (conv 8 3x3\n  relu)", text.Substring(letAt, Scan.statementEnd text letAt - letAt))
    let rep = text.IndexOf "repeat"
    Assert.Equal("repeat 2 (dense 4)", text.Substring(rep, Scan.statementEnd text rep - rep))
    let block = "residual ((* a ; comment *) conv 8 3x3)\n"
    Assert.Equal(block.TrimEnd(), block.Substring(0, Scan.statementEnd block 0))

[<Fact>]
let ``the word at a position`` () =
    Assert.Equal(Some ("block-a", 6), Scan.wordAt "  use block-a 3" 9)
    Assert.Equal(None, Scan.wordAt "a  b" 2 |> Option.filter (fun (w, _) -> w <> "a"))
