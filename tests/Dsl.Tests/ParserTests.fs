module CnnDsl.Dsl.Tests.ParserTests

open System
open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open CnnDsl.Dsl
open CnnDsl.Dsl.Syntax
open CnnDsl.Dsl.Tests.TestSupport

let private layers text =
    let program, errors = Parser.parse text
    Assert.Empty errors
    program.Items |> List.choose (function LayerItem l -> Some l | _ -> None)

[<Fact>]
let ``the design card's example parses as written`` () =
    let ls = layers "input 28x28x1\nconv 32 3x3 s1 same relu; maxpool 2; dense 10 softmax"
    Assert.Equal(4, ls.Length)
    match ls[1].Syntax with
    | Conv ({ Value = Int 32L }, { Value = [ Size (Int 3L); Size (Int 3L) ] }) -> ()
    | other -> failwithf "unexpected %A" other
    let options = ls[1].Options |> List.map (fun o -> o.Value)
    Assert.Equal<LayerOption list>([ Stride { Value = [ Size (Int 1L) ]; Pos = ls[1].Options[0].Pos }; PadSame; Activation Relu ], options)
    Assert.Equal({ Line = 2; Col = 27; Length = 7 }, ls[2].Pos)

[<Fact>]
let ``comments of both kinds, nested block comments and CRLF are whitespace`` () =
    let ls = layers "// a model\r\ninput 2 (* the (* nested *) input *)\r\n\r\ndense 1 // out\r\n"
    Assert.Equal(2, ls.Length)
    Assert.Equal(4, ls[1].Pos.Line)

[<Fact>]
let ``a byte-order mark is ignored`` () =
    Assert.Equal(2, (layers "\uFEFFinput 2\ndense 1").Length)

[<Fact>]
let ``dynamic sizes, vectors, glued options and alphas`` () =
    let ls = layers "input ?x?x1\nconv 8 1x7 s2x1 p0x3 d2 nobias leakyrelu 0.1 frozen"
    match ls[0].Syntax with
    | Input { Value = [ Unknown; Unknown; Size (Int 1L) ] } -> ()
    | other -> failwithf "unexpected %A" other
    let options = ls[1].Options |> List.map (fun o -> Pretty.layerOption o.Value)
    Assert.Equal<string list>([ "s2x1"; "p0x3"; "d2"; "nobias"; "leakyrelu 0.1"; "frozen" ], options)

[<Fact>]
let ``let blocks, repeat, residual and concat across lines`` () =
    let program, errors =
        Parser.parse "let block f = conv f 3x3 same relu; maxpool 2\ninput 8x8x1\nblock 4\nrepeat 2 (\n  conv 4 3x3 same\n)\nresidual (conv 4 3x3 same; batchnorm) project relu\nconcat (conv 2 1x1 | maxpool 3 s1 same; conv 2 1x1)\n"
    Assert.Empty errors
    Assert.Equal(6, program.Items.Length)
    match program.Items[0] with
    | LetItem b -> Assert.Equal("block", b.Name.Value); Assert.Equal(2, b.Body.Length)
    | other -> failwithf "unexpected %A" other

[<Fact>]
let ``the training section reads keys and values`` () =
    let program, errors = Parser.parse "input 2\ndense 1\ntrain\n  data \"my data/x\"\n  optimizer sgd; lr 0.1\n  augment shift flip\n"
    Assert.Empty errors
    let settings = program.Training.Value.Value
    Assert.Equal<string list>([ "data"; "optimizer"; "lr"; "augment" ], settings |> List.map (fun s -> s.Key.Value))
    Assert.Equal(Text "my data/x", settings[0].Values[0].Value)

[<Fact>]
let ``a syntax error is positioned and parsing goes on at the next line`` () =
    let _, errors = Parser.parse "input 28x28x1\nconv 32 3x\nconv 8 3x3 )\ndense 10"
    Assert.Equal(2, errors.Length)
    Assert.All(errors, fun d -> Assert.Equal("CNN001", d.Code))
    Assert.Equal((2, 11), (errors[0].Pos.Line, errors[0].Pos.Col))
    Assert.Equal((3, 12), (errors[1].Pos.Line, errors[1].Pos.Col))
    Assert.Contains("expected", errors[1].Message)

[<Fact>]
let ``an error inside a multi-line block skips to the block's end`` () =
    let program, errors = Parser.parse "input 8x8x1\nrepeat 2 (\n  conv 4 3x3 ]\n  conv 4 3x3\n)\ndense 10"
    Assert.Equal(1, errors.Length)
    Assert.Equal(3, errors[0].Pos.Line)
    Assert.Equal(2, program.Items.Length)

[<Fact>]
let ``an unclosed comment says so`` () =
    let _, errors = Parser.parse "input 2\n(* never closed\ndense 1"
    Assert.Contains("never closed", errors.Head.Message)

[<Fact>]
let ``numbers beyond 64 bits are CNN004, not a crash`` () =
    let _, errors = Parser.parse "input 2\ndense 999999999999999999999999"
    Assert.Equal("CNN004", errors.Head.Code)
    Assert.Equal((2, 7), (errors.Head.Pos.Line, errors.Head.Pos.Col))

[<Fact>]
let ``nesting deeper than the limit is refused before parsing`` () =
    let text = "input 2\n" + String.replicate 1000 "repeat 1 (" + "dense 1" + String.replicate 1000 ")"
    let _, errors = Parser.parse text
    Assert.Equal("CNN005", errors.Head.Code)

[<Fact>]
let ``a weights literal nested deeper than the limit is CNN005 with its position, not a stack overflow`` () =
    // 10,000 '[' overflowed the stack of the recursive tensor literal parser (exit 134)
    let text = "input 3x3x1\nconv 1 2x2 weights " + String.replicate 10000 "[" + "1" + String.replicate 10000 "]"
    let _, errors = Parser.parse text
    Assert.Equal("CNN005", errors.Head.Code)
    Assert.Equal((2, 20 + 64), (errors.Head.Pos.Line, errors.Head.Pos.Col))
    Assert.StartsWith("brackets nest more than 64 deep", errors.Head.Message)

let private noException (text: string) =
    try
        match Frontend.compile text with
        | Ok _ -> true
        | Error ds -> not ds.IsEmpty && ds |> List.forall (fun d -> d.Pos.Line >= 0 && d.Message <> "")
    with e -> failwithf "exception on %A: %O" text e

[<Property(MaxTest = 300)>]
let ``arbitrary strings give diagnostics, never an exception`` (text: NonNull<string>) = noException text.Get

[<Property(MaxTest = 300)>]
let ``token soups give diagnostics, never an exception`` () =
    let token = Gen.elements [ "input"; "conv"; "3x3"; "28x28x1"; "?"; "("; ")"; "|"; ";"; "\n"; "same"; "s2"; "relu"; "let"; "="; "train"; "[["; "]"; ","; "-1"; "0.5"; "(*"; "*)"; "//"; "\""; "x"; "residual"; "concat"; "repeat" ]
    let soup = Gen.listOf token |> Gen.map (String.concat " ")
    Prop.forAll (Arb.fromGen soup) noException

let private mutate (rng: Random) (text: string) =
    let tokens = text.Split([| ' '; '\n' |], StringSplitOptions.RemoveEmptyEntries) |> ResizeArray
    if tokens.Count > 1 then
        let i = rng.Next tokens.Count
        match rng.Next 3 with
        | 0 -> tokens.RemoveAt i
        | 1 -> tokens.Insert(i, tokens[i])
        | _ ->
            let j = rng.Next tokens.Count
            let t = tokens[i]
            tokens[i] <- tokens[j]
            tokens[j] <- t
    String.Join(" ", tokens)

[<Property(MaxTest = 200)>]
let ``valid models with a token deleted, duplicated or swapped never throw`` (seed: int) =
    let rng = Random seed
    let models = TestSupport.models ()
    let _, text = models[rng.Next models.Length]
    noException (mutate rng text)

/// Not a speed target (that is measured, not tested): a bound loose enough for a busy CI
/// machine that still catches quadratic behaviour, which would take minutes here.
[<Fact>]
let ``a 1 MB model file and a 1 MB line end without quadratic blow-up`` () =
    let lines = "input 8x8x4\n" + String.replicate 50000 "conv 4 3x3 same relu\n"
    Assert.True(lines.Length > 1_000_000)
    let watch = Diagnostics.Stopwatch.StartNew()
    let program, errors = Parser.parse lines
    Assert.Empty errors
    Assert.Equal(50001, program.Items.Length)
    Assert.True(Result.isOk (Check.check program))
    Assert.True(watch.Elapsed.TotalSeconds < 10.0, sprintf "took %.2f s" watch.Elapsed.TotalSeconds)
    let longLine = "input 2\ndense 1 " + String.replicate 200000 "relu "
    match Frontend.compile longLine with
    | Error ds -> Assert.Contains(ds, fun d -> d.Code = "CNN006")
    | Ok _ -> failwith "200,000 activations on one layer should be reported"

[<Fact>]
let ``control characters, CRLF and an empty file end in diagnostics`` () =
    for text in [ ""; "\r\n\r\n"; "input 2\r\ndense 1\u0007"; "\u0000\u0001"; "input 28x28x1\n\tconv 8 3x3\n" ] do
        match Frontend.compile text with
        | Ok _ -> ()
        | Error ds -> Assert.All(ds, fun d -> Assert.True(d.Pos.Line >= 0 && d.Message <> ""))

// ---- messages for common slips ----

let private syntaxError text =
    let _, errors = Parser.parse text
    Assert.NotEmpty errors
    errors.Head

[<Fact>]
let ``a '#' comment, at the start of a line or after a layer, is hinted to use '//'`` () =
    for text, line, col in [ "# a model\ninput 2\ndense 1", 1, 1; "input 2\ndense 1 # the output", 2, 9 ] do
        let d = syntaxError text
        Assert.Equal((line, col), (d.Pos.Line, d.Pos.Col))
        Assert.Equal(Some "comments start with '//' (to the end of the line) or are written (* ... *); '#' is not a comment", d.Hint)

[<Fact>]
let ``a kernel size before the filter count says the count comes first`` () =
    let d = syntaxError "input 8x8x1\nconv 3x3 8"
    Assert.Equal("conv takes the number of filters first, then the kernel size", d.Message)
    Assert.Equal(Some "write conv FILTERS KERNEL, e.g. conv 8 3x3", d.Hint)
    Assert.Equal((2, 6), (d.Pos.Line, d.Pos.Col))
    Assert.Equal(Some "write sepconv FILTERS KERNEL, e.g. sepconv 16 5x5", (syntaxError "input 8x8x1\nsepconv 5x5 16 same").Hint)
    Assert.Equal(Some "write conv FILTERS KERNEL, e.g. conv 8 1x7", (syntaxError "input 8x8x1\nconv 1x7").Hint)

[<Fact>]
let ``a Keras line that does not parse is hinted with the language's spelling`` () =
    let d = syntaxError "input 28x28x1\nConv2D(32, (3, 3), padding='same')"
    Assert.Equal(Some "Keras's Conv2D is written 'conv FILTERS KxK', e.g. conv 32 3x3 same relu", d.Hint)
    Assert.Contains("'s2'", (syntaxError "input 28x28x1\nconv 8 3x3 strides 2").Hint.Value)
    // Our own words on a broken line are not taken for Keras's.
    Assert.Equal(Some "put each layer on its own line or separate layers with ';'", (syntaxError "input 2\ndense 1 )").Hint)
