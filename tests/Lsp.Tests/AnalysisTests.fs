module CnnDsl.Lsp.Tests.AnalysisTests

open System
open System.IO
open System.Text.Json.Nodes
open Xunit
open CnnDsl.Dsl
open CnnDsl.Lsp
open CnnDsl.Lsp.Analysis
open CnnDsl.Lsp.Tests.TestSupport

let private analyse (text: string) = Analysis(Document text)
let private everything = { Start = { Line = 0; Character = 0 }; End = { Line = 10000; Character = 0 } }
let private lenet () = File.ReadAllText(repoPath [ "models"; "lenet.cnn" ])

[<Fact>]
let ``diagnostics are dsl check's: codes, positions, lengths, messages and hints`` () =
    for name in [ "three-mistakes.cnn"; "syntax-errors.cnn" ] do
        let file = repoPath [ "tests"; "Dsl.Tests"; "golden"; name ]
        let out = new StringWriter()
        CnnDsl.Cli.CheckCommands.check { Out = out; Err = new StringWriter() } [ file ] true |> ignore
        let expected =
            JsonNode.Parse(out.ToString()).A
            |> Seq.map (fun d ->
                let hint = match d["hint"] with null -> "" | h -> "\nhint: " + h.S
                d["code"].S, d["line"].I - 1, d["column"].I - 1,
                d["column"].I - 1 + d["length"].I, d["message"].S + hint)
            |> List.ofSeq
        let published = publishParams "u" None (analyse (File.ReadAllText file))
        let got =
            published["diagnostics"].A
            |> Seq.map (fun d ->
                d["code"].S, d["range"].["start"].["line"].I, d["range"].["start"].["character"].I,
                d["range"].["end"].["character"].I, d["message"].S)
            |> List.ofSeq
        Assert.NotEmpty expected
        Assert.Equal<(string * int * int * int * string) list>(expected, got)

let private applyFix (text: string) (code: string) =
    let a = analyse text
    let d = a.Diagnostics |> List.find (fun d -> d.Code = code)
    match fixes a.Document d with
    | (title, r, replacement) :: _ -> title, a.Document.Apply(Some r, replacement).Text
    | [] -> failwithf "no fix for %s" code

[<Fact>]
let ``quick fixes: did-you-mean names, the largest pool that fits, a repeated option`` () =
    let title, fixedText = applyFix "input 28x28x1\nconv 8 3x3\ndense 10 softmaxx\n" "CNN003"
    Assert.Equal("Replace 'softmaxx' with 'softmax'", title)
    Assert.Equal("input 28x28x1\nconv 8 3x3\ndense 10 softmax\n", fixedText)
    let _, fixedText = applyFix "input 28x28x1\nconv 8 3x3\nconvv 8 3x3\n" "CNN002"
    Assert.Equal("input 28x28x1\nconv 8 3x3\nconv 8 3x3\n", fixedText)
    let title, fixedText = applyFix "input 12x12x1\nmaxpool 13\n" "CNN302"
    Assert.Equal("Use a 12x12 pool", title)
    Assert.Equal("input 12x12x1\nmaxpool 12\n", fixedText)
    let _, fixedText = applyFix "input 12x10x1\nmaxpool 13x13\n" "CNN302"
    Assert.Equal("input 12x10x1\nmaxpool 12x10\n", fixedText)
    let _, fixedText = applyFix "input 28x28x1\nconv 8 3x3 relu relu\n" "CNN006"
    Assert.Equal("input 28x28x1\nconv 8 3x3 relu\n", fixedText)
    let _, fixedText = applyFix "input 28x28x1\ntrain\n  optimiser adam\n" "CNN501"
    Assert.Equal("input 28x28x1\ntrain\n  optimizer adam\n", fixedText)
    // each fix leaves no diagnostic of its code
    Assert.Empty((analyse fixedText).Diagnostics |> List.filter (fun d -> d.Code = "CNN501"))

[<Fact>]
let ``a diagnostic without a known fix gets no action`` () =
    let a = analyse "input 28x28x1\ndropout 1.5\n"
    let d = a.Diagnostics |> List.find (fun d -> d.Code = "CNN202")
    Assert.Empty(fixes a.Document d)

let private labels (hints: JsonNode) =
    hints.A |> Seq.map (fun h -> h["position"].["line"].I, h["label"].S) |> List.ofSeq

[<Fact>]
let ``inlay hints give LeNet's shapes and parameter counts at the end of each layer line`` () =
    let hints = inlayHints (analyse (lenet ())) everything
    Assert.Equal<(int * string) list>(
        [ 3, "-> 28x28x6  156 params"; 4, "-> 14x14x6"; 5, "-> 10x10x16  2,416 params"; 6, "-> 5x5x16"; 7, "-> 400"
          8, "-> 120  48,120 params"; 9, "-> 84  10,164 params"; 10, "-> 10  850 params" ], labels hints)
    // at the line's end
    let first = hints.A.[0]
    Assert.Equal("conv 6 5x5 same relu".Length, first["position"].["character"].I)
    // only the lines asked for
    Assert.Equal(2, (labels (inlayHints (analyse (lenet ())) { Start = { Line = 4; Character = 0 }; End = { Line = 5; Character = 0 } })).Length)

[<Fact>]
let ``several layers on one line: each hint follows its layer; a block's use shows the block's output`` () =
    let text = "input 8x8x1\nlet b f = (conv f 3x3 same)\nconv 2 3x3; maxpool 2\nb 5\n"
    let hints = inlayHints (analyse text) everything
    Assert.Equal<(int * string) list>([ 2, "-> 6x6x2  20 params"; 2, "-> 3x3x2"; 3, "-> 3x3x5  95 params" ], labels hints)
    Assert.Equal("conv 2 3x3".Length, hints.A.[0].["position"].["character"].I)

[<Fact>]
let ``a statement over several lines gets a hint on each inner line and its output at its end`` () =
    let hints = inlayHints (analyse (File.ReadAllText(repoPath [ "models"; "inception-block.cnn" ]))) everything
    Assert.Equal<(int * string) list>(
        [ 3, "-> 32x32x32  896 params"
          5, "-> 32x32x16  528 params"
          6, "-> 32x32x16  528 params"; 6, "-> 32x32x24  3,480 params"
          7, "-> 32x32x4  132 params"; 7, "-> 32x32x8  808 params"
          8, "-> 32x32x32"; 8, "-> 32x32x8  264 params"
          9, "-> 32x32x56  5,740 params"
          10, "-> 16x16x56"; 11, "-> 56"; 12, "-> 10  570 params" ], labels hints)
    // inside a line, just after its layer; the last at the line's end
    Assert.Equal("| conv 16 1x1 relu".Length, hints.A.[2].["position"].["character"].I)
    Assert.Equal("| conv 16 1x1 relu; conv 24 3x3 same relu".Length, hints.A.[3].["position"].["character"].I)
    // after the comment on the closing line
    Assert.Equal(")                                          // 32x32x56".Length, hints.A.[8].["position"].["character"].I)
    let repeated = inlayHints (analyse "input 8x8x1\nrepeat 2 (\n  conv 4 3x3 same\n)\n") everything
    Assert.Equal<(int * string) list>([ 2, "-> 8x8x4  40 params"; 3, "-> 8x8x4  188 params" ], labels repeated)

[<Fact>]
let ``with an error, shapes show on the lines before it`` () =
    let a = analyse "input 12x12x1\nconv 2 3x3\nmaxpool 13\ndense 3\n"
    Assert.Equal<(int * string) list>([ 1, "-> 10x10x2  20 params" ], labels (inlayHints a everything))
    Assert.Contains("out = floor((12 + 2*0 - 3)/1) + 1 = 10", (layerAt a { Line = 1; Character = 0 }).Value |> hoverText a |> Option.get)
    Assert.True((layerAt a { Line = 3; Character = 0 }).Value |> hoverText a |> Option.isNone)
    // an error on the input line: nothing to show
    Assert.Empty((inlayHints (analyse "input 0x12x1\nconv 2 3x3\n") everything).A)

[<Fact>]
let ``hover on a conv shows its input and output, the formula with its numbers, params and multiply-adds`` () =
    let a = analyse (lenet ())
    let text = (layerAt a { Line = 3; Character = 2 }).Value |> hoverText a |> Option.get
    Assert.Contains("conv2d (Conv2D, relu), line 4: 28x28x1 -> 28x28x6", text)
    Assert.Contains("out = ceil(28/1) = 28", text)
    Assert.Contains("params = (5*5*1 + 1) * 6 = 156", text)
    Assert.Contains("multiply-adds: 117,600", text)
    let pool = (layerAt a { Line = 4; Character = 0 }).Value |> hoverText a |> Option.get
    Assert.Contains("out = floor((28 + 2*0 - 2)/2) + 1 = 14", pool)

[<Fact>]
let ``hover on a block's use shows that use's shapes; on its definition, its body`` () =
    let a = analyse "input 8x8x1\nlet b f = (conv f 3x3 same)\nb 4\nb 6\n"
    let second = (hover a { Line = 3; Character = 0 }).Value
    Assert.Contains("conv2d_1 (Conv2D), line 2: 8x8x4 -> 8x8x6", second)
    Assert.Contains("input 8x8x4, output 8x8x6", second)
    let definition = (hover a { Line = 1; Character = 4 }).Value
    Assert.Contains("let b f = (conv f 3x3 same)\nused 2 times", definition)

[<Fact>]
let ``hover on a layer inside a block used twice says so`` () =
    let a = analyse "input 8x8x1\nlet b f = (conv f 3x3 same)\nb 4\nb 6\n"
    let text = (layerAt a { Line = 1; Character = 12 }).Value |> hoverText a |> Option.get
    Assert.Contains("used 2 times", text)
    Assert.Contains("conv2d (Conv2D), line 2: 8x8x1 -> 8x8x4", text)

let private completionLabels (text: string) line character =
    (completion (analyse text) { Line = line; Character = character }).A |> Seq.map (fun i -> i["label"].S) |> Set.ofSeq

[<Fact>]
let ``completion: layers and blocks at a line's start, a layer's options after it, training keys and values`` () =
    let text = "input 28x28x1\nlet block f = (conv f 3x3)\n\nconv 8 3x3 \nmaxpool 2 \ntrain\n  \n  data \n"
    let start = completionLabels text 2 0
    for w in [ "conv"; "maxpool"; "dense"; "block"; "let"; "train"; "sobel" ] do Assert.Contains(w, start)
    let block = (completion (analyse text) { Line = 2; Character = 0 }).A |> Seq.find (fun i -> i.["label"].S = "block")
    Assert.Equal("block ${1:f}", block.["insertText"].S)
    Assert.Equal("let block f = (...)", block.["detail"].S)
    let conv = completionLabels text 3 11
    for w in [ "same"; "s2"; "relu"; "nobias"; "weights"; "bias" ] do Assert.Contains(w, conv)
    Assert.DoesNotContain("project", conv)
    // not before a layer's numbers
    Assert.Empty(completionLabels "input 8x8x1\nconv 8 \n" 1 7)
    Assert.Empty(completionLabels "input 8x8x1\ndense \n" 1 6)
    Assert.Contains("relu", completionLabels "input 8x8x1\ndense 4 \n" 1 8)
    let pool = completionLabels text 4 10
    Assert.Contains("same", pool)
    Assert.DoesNotContain("relu", pool)
    let keys = completionLabels text 6 2
    Assert.Equal<Set<string>>(Set.ofList trainingKeys, keys)
    Assert.Equal<Set<string>>(Set.ofList datasetNames, completionLabels text 7 7)

[<Fact>]
let ``every option completion offers is one the checker accepts on that layer`` () =
    let samples =
        [ "conv", "conv 4 3x3"; "dwconv", "dwconv 3x3"; "sepconv", "sepconv 4 3x3"; "kernel", "kernel [[1,0],[0,1]]"; "sobel", "sobel"; "maxpool", "maxpool 2"
          "dense", "dense 4"; "batchnorm", "batchnorm"; "residual", "residual (conv 3 1x1)"; "concat", "concat (conv 1 1x1 | conv 1 1x1)"; "repeat", "repeat 2 (relu)" ]
    for keyword, layer in samples do
        let options, activations = layerOptions keyword
        let words = (options |> List.map fst) @ (if activations then Parser.activationNames |> List.filter ((<>) "softmax") else [])
        for w in words do
            // hand-set tensors take a value (a wrong-sized one is CNN206, not an unknown option)
            let w = if w = "weights" || w = "bias" || w = "groups" then w + " 1" else w
            let text = sprintf "input 8x8x3\n%s %s\nflatten\ndense 2 softmax\n" layer w
            let bad = (analyse text).Diagnostics |> List.filter (fun d -> d.Code = "CNN003" || d.Code = "CNN007")
            Assert.True(bad.IsEmpty, sprintf "%s %s: %A" layer w bad)

[<Fact>]
let ``every training key completion offers is one the checker knows`` () =
    for k in trainingKeys do
        let a = analyse (sprintf "input 4\ndense 2 softmax\ntrain\n  %s\n" k)
        Assert.DoesNotContain("CNN501", a.Diagnostics |> List.map (fun d -> d.Code))
    let a = analyse "input 4\ndense 2 softmax\ntrain\n  notakey 1\n"
    Assert.Contains("CNN501", a.Diagnostics |> List.map (fun d -> d.Code))

[<Fact>]
let ``definition, references and rename of a let block`` () =
    let text = "input 8x8x1\nlet unit f = (conv f 3x3 same)\nunit 4\nrepeat 2 (unit 8)\n"
    let a = analyse text
    let def = definition "u" a { Line = 3; Character = 11 }
    Assert.Equal(1, def["range"].["start"].["line"].I)
    Assert.Equal(4, def["range"].["start"].["character"].I)
    let refs = references "u" a { Line = 1; Character = 5 } true
    Assert.Equal<(int * int) list>([ 1, 4; 2, 0; 3, 10 ], refs.A |> Seq.map (fun l -> l["range"].["start"].["line"].I, l["range"].["start"].["character"].I) |> List.ofSeq)
    Assert.Equal(2, (references "u" a { Line = 2; Character = 1 } false).A.Count)
    match rename "u" a { Line = 2; Character = 2 } "block" with
    | Ok edit ->
        let edits = edit["changes"].["u"].A |> List.ofSeq
        Assert.Equal(3, edits.Length)
        let renamed =
            edit["changes"].["u"].A |> Seq.rev
            |> Seq.fold (fun (d: Document) e ->
                let p (n: JsonNode) = { Line = n["line"].I; Character = n["character"].I }
                d.Apply(Some { Start = p e["range"].["start"]; End = p e["range"].["end"] }, e["newText"].S)) a.Document
        Assert.Equal("input 8x8x1\nlet block f = (conv f 3x3 same)\nblock 4\nrepeat 2 (block 8)\n", renamed.Text)
    | Error e -> failwith e
    Assert.True(Result.isError (rename "u" a { Line = 2; Character = 2 } "conv"))
    Assert.True(Result.isError (rename "u" a { Line = 2; Character = 2 } "2x"))
    Assert.True(Result.isError (rename "u" a { Line = 0; Character = 1 } "x"))

[<Fact>]
let ``document symbols: layers with their output, blocks, and the training section with its settings`` () =
    let symbols = documentSymbols (analyse (lenet ()))
    let names = symbols.A |> Seq.map (fun s -> s["name"].S, s["detail"].S) |> List.ofSeq
    Assert.Equal(("conv 6 5x5 same relu", "conv2d -> 28x28x6"), names[1])
    Assert.Equal(("train", "training settings"), List.last names)
    let train = symbols.A |> Seq.last
    Assert.Equal<string list>([ "data"; "optimizer"; "epochs"; "batch" ], train["children"].A |> Seq.map (fun c -> c["name"].S) |> List.ofSeq)
    let blocks = documentSymbols (analyse "input 4\nlet b n = (dense n)\nb 3\n")
    Assert.Equal(("b", "let n"), (blocks.A.[1].["name"].S, blocks.A.[1].["detail"].S))

[<Fact>]
let ``folding: multi-line blocks, the training section, comments`` () =
    let text = "// one\n// two\ninput 8x8x1\nlet b = (conv 2 3x3\n  relu)\n(* a\n b *)\nb\ntrain\n  epochs 1\n  batch 2\n"
    let ranges =
        (foldingRanges (analyse text)).A
        |> Seq.map (fun r -> r["startLine"].I, r["endLine"].I, r["kind"].S) |> Set.ofSeq
    Assert.Equal<Set<int * int * string>>(set [ 0, 1, "comment"; 3, 4, "region"; 5, 6, "comment"; 8, 10, "region" ], ranges)

[<Fact>]
let ``formatting prints each statement as the pretty printer does and keeps the comments`` () =
    let text = "// LeNet-ish\n  input   28x28x1\nconv 6   5x5 relu   // first\nlet b f = (conv f 3x3\n  relu)\nb 4 ; maxpool  2\ntrain\n    epochs   3\n"
    let a = analyse text
    let edits = (formatEdits a).Value
    let formatted =
        edits |> List.sortByDescending (fun (r, _) -> r.Start.Line, r.Start.Character)
        |> List.fold (fun (d: Document) (r, t) -> d.Apply(Some r, t)) a.Document
    Assert.Equal("// LeNet-ish\ninput 28x28x1\nconv 6 5x5 relu   // first\nlet b f = (conv f 3x3; relu)\nb 4 ; maxpool 2\ntrain\n  epochs 3\n", formatted.Text)
    // already formatted: no edits
    Assert.Empty((formatEdits (analyse formatted.Text)).Value)
    // syntax errors: nothing is changed
    Assert.True((formatEdits (analyse "input 28x28x1\nconv ( 3\n")).IsNone)

[<Fact>]
let ``a statement with a comment inside is left as written`` () =
    let text = "input 4\nlet b = (dense 3 // inner\n  relu)\nb\n"
    Assert.Empty((formatEdits (analyse text)).Value)

[<Fact>]
let ``semantic tokens colour keywords, numbers, sizes, options, blocks, parameters, settings, strings and comments`` () =
    let text = "// head\ninput 28x28x1\nlet b f = (conv f 3x3 same relu) (* two\nlines *)\nb 4; dropout 0.5\ntrain\n  data \"a//b\"\n  optimizer adam\n"
    let a = analyse text
    let doc = a.Document
    let got =
        semanticTokens a
        |> List.map (fun (l, c, n, t, m) -> (doc.Line l).Substring(c, n), tokenTypes[t] + (if m = 1 then "+declaration" else ""))
    Assert.Equal<(string * string) list>(
        [ "// head", "comment"
          "input", "keyword"; "28x28x1", "number"
          "let", "keyword"; "b", "function+declaration"; "f", "parameter"; "conv", "keyword"; "f", "parameter"; "3x3", "number"
          "same", "enumMember"; "relu", "enumMember"; "(* two", "comment"
          "lines *)", "comment"
          "b", "function"; "4", "number"; "dropout", "keyword"; "0.5", "number"
          "train", "keyword"
          "data", "property"; "\"a//b\"", "string"
          "optimizer", "property"; "adam", "enumMember" ], got)
    // encoded relative to the previous token
    let data = (semanticTokensJson a).["data"].A |> Seq.map (fun v -> v.I) |> List.ofSeq
    Assert.Equal<int list>([ 0; 0; 7; 4; 0; 1; 0; 5; 0; 0; 0; 6; 7; 3; 0 ], List.take 15 data)

/// Every feature on a text: none may throw, whatever the text.
let private everyFeature (text: string) =
    let a = analyse text
    let doc = a.Document
    (publishParams "u" (Some 1) a).ToJsonString() |> ignore
    (inlayHints a everything).ToJsonString() |> ignore
    (documentSymbols a).ToJsonString() |> ignore
    (foldingRanges a).ToJsonString() |> ignore
    formatEdits a |> ignore
    (codeActions "u" a everything).ToJsonString() |> ignore
    (semanticTokensJson a).ToJsonString() |> ignore
    for line in 0 .. doc.LineCount - 1 do
        for character in [ 0; 3; (doc.Line line).Length; (doc.Line line).Length + 5 ] do
            let p = { Line = line; Character = character }
            hover a p |> ignore
            (completion a p).ToJsonString() |> ignore
            definition "u" a p |> ignore
            (references "u" a p true).ToJsonString() |> ignore
            rename "u" a p "other" |> ignore

[<Fact>]
let ``no feature throws on any cut or splice of the models and examples`` () =
    let files =
        Array.append (Directory.GetFiles(repoPath [ "models" ], "*.cnn")) (Directory.GetFiles(repoPath [ "examples" ], "*.cnn"))
    let random = Random(18)
    for file in files do
        let text = File.ReadAllText file
        everyFeature text
        for _ in 1 .. 12 do
            let a, b = random.Next(text.Length + 1), random.Next(text.Length + 1)
            let cut = text.Substring(0, min a b) + text.Substring(max a b)
            let spliced = text.Substring(0, a) + "( ;| [x" + text.Substring(a)
            try
                everyFeature cut
                everyFeature spliced
            with e -> failwithf "%s cut at %d-%d: %s" file (min a b) (max a b) (e.ToString())
    for text in [ ""; "\n"; "("; "let"; "let b = ("; "train"; "input 28x28x1\r\nconv 3 3x3\r\n"; "\uFEFFinput 4\ndense 2"; "(* open" ] do
        everyFeature text
