module CnnDsl.Dsl.Tests.CheckTests

open System
open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open CnnDsl.Graph
open CnnDsl.Dsl
open CnnDsl.Dsl.Tests.TestSupport

let private only code (text: string) =
    let ds = diagnostics text |> List.filter (fun d -> d.Code = code)
    Assert.True(not ds.IsEmpty, sprintf "expected %s for:\n%s\ngot:\n%s" code text (Diagnostic.renderAll "t.cnn" text (diagnostics text)))
    ds.Head

/// Each case: the code, a model that must produce it, and the line and column it points at.
let cases : obj[] list =
    [ [| "CNN001"; "input 2\ndense 1 )"; 2; 9 |]
      [| "CNN002"; "input 2\ndnse 1"; 2; 1 |]
      [| "CNN003"; "input 8x8x1\nconv 2 3x3 foo"; 2; 12 |]
      [| "CNN004"; "input 8x8x1\nconv 99999999999 3x3"; 2; 6 |]
      [| "CNN005"; "input 2\n" + String.replicate 70 "repeat 1 (" + "dense 1" + String.replicate 70 ")"; 2; 650 |]
      [| "CNN006"; "input 8x8x1\nconv 2 3x3 relu tanh"; 2; 17 |]
      [| "CNN007"; "input 8\ndense 2 s2"; 2; 9 |]
      [| "CNN101"; "conv 2 3x3\ndense 1"; 1; 1 |]
      [| "CNN102"; "input 2\ninput 3\ndense 1"; 2; 1 |]
      [| "CNN103"; "let a = a\ninput 2\na"; 1; 9 |]
      [| "CNN104"; "let b f = dense f\ninput 2\nb 1 2"; 3; 1 |]
      [| "CNN105"; "let b = dense f\ninput 2\nb"; 1; 15 |]
      [| "CNN106"; "let b = dense 1\nlet b = dense 2\ninput 2\nb"; 2; 5 |]
      [| "CNN107"; "input 2"; 1; 1 |]
      [| "CNN108"; "input 2\ndense 2.5"; 2; 7 |]
      [| "CNN201"; "input 8x8x1\nconv 0 3x3"; 2; 6 |]
      [| "CNN202"; "input 2\ndropout 1.5\ndense 1"; 2; 9 |]
      [| "CNN204"; "input 8x8x1\nkernel [[1,2],[1]]"; 2; 15 |]
      [| "CNN205"; "input 28x28\ndense 1"; 1; 7 |]
      [| "CNN206"; "input 3x3x1\nconv 1 2x2 weights [[1 2 3] [4 5 6]]"; 2; 12 |]
      [| "CNN301"; "input 4x4x1\nconv 8 7x7"; 2; 1 |]
      [| "CNN302"; "input 2x2x1\nmaxpool 3"; 2; 1 |]
      [| "CNN303"; "input ?x?x1\nflatten"; 2; 1 |]
      [| "CNN304"; "input 10\nconv 8 3x3"; 2; 1 |]
      [| "CNN305"; "input 8x8x4\nresidual (conv 8 3x3 same)"; 2; 1 |]
      [| "CNN306"; "input 8x8x1\nconcat (conv 2 3x3 | conv 2 1x1)"; 2; 1 |]
      [| "CNN307"; "input 8x8x1\nreshape 10x10x1"; 2; 9 |]
      [| "CNN308"; "input 2000x2000x1\nconv 100000 1000x1000"; 2; 6 |]
      [| "CNN309"; "input 8\ndense 4 softmax\ndense 2"; 2; 9 |]
      [| "CNN310"; "input 8x8x6\nconv 8 3x3 groups 4"; 2; 19 |]
      [| "CNN401"; "input 28x28x1\nconv 2 3x3 s2"; 2; 12 |]
      [| "CNN402"; "input 50000\ndense 30000"; 1; 1 |]
      [| "CNN403"; "input 8\ndense 4 relu\ndense 3\ntrain\n  epochs 2"; 3; 1 |]
      [| "CNN501"; "input 2\ndense 1\ntrain\n  epoch 3"; 4; 3 |]
      [| "CNN502"; "input 2\ndense 1\ntrain\n  batch 0"; 4; 9 |]
      [| "CNN503"; "input 2\ndense 1\ntrain\n  batch 2\n  batch 4"; 5; 3 |] ]

[<Theory>]
[<MemberData(nameof cases)>]
let ``every diagnostic is produced at its position`` (code: string) (text: string) (line: int) (col: int) =
    let d = only code text
    Assert.Equal((line, col), (d.Pos.Line, d.Pos.Col))

[<Fact>]
let ``every catalogue code has a case above`` () =
    let tested = cases |> List.map (fun c -> c[0] :?> string) |> Set.ofList
    for entry in Messages.all do
        Assert.True(tested.Contains entry.Code, sprintf "%s has no test case" entry.Code)

[<Fact>]
let ``a kernel too large for its input names the sizes, the formula and the fix`` () =
    let d = only "CNN301" "input 4x4x256\nconv 8 7x7"
    Assert.Equal("kernel 7x7 on a 4x4 input gives no output: out = floor((4 + 2*0 - 7)/1) + 1 = -2", d.Message)
    Assert.Equal(Some "use padding 'same' or a kernel of at most 4", d.Hint)

[<Fact>]
let ``three independent mistakes give three positioned errors`` () =
    let ds = diagnostics "input 28x28x1\nconv 0 3x3 relu\ndropout 1.5\nmaxpool 2 sam\ndense 10 softmax" |> List.filter Diagnostic.isError
    Assert.Equal<(string * int) list>([ "CNN201", 2; "CNN202", 3; "CNN003", 4 ], ds |> List.map (fun d -> d.Code, d.Pos.Line))

[<Fact>]
let ``a negative stride is a bad value, not an unknown word`` () =
    let d = only "CNN201" "input 8x8x1\nconv 2 3x3 s-1"
    Assert.Equal("stride must be at least 1, found -1", d.Message)

[<Fact>]
let ``unknown names suggest the closest one`` () =
    Assert.Equal(Some "did you mean 'maxpool'?", (only "CNN002" "input 8x8x1\nmaxpol 2").Hint)
    Assert.Equal(Some "did you mean 'same'?", (only "CNN003" "input 8x8x1\nconv 2 3x3 sme").Hint)
    Assert.Equal(Some "did you mean 'epochs'?", (only "CNN501" "input 2\ndense 1\ntrain\nepoch 3").Hint)

[<Fact>]
let ``a layer word after another layer on one line hints at the separator`` () =
    let d = only "CNN003" "input 8x8x1\nconv 2 3x3 relu maxpool"
    Assert.Contains("separate layers", d.Hint.Value)

[<Fact>]
let ``errors inside a block name the use of the block`` () =
    let d = only "CNN301" "let b k = conv 2 k\ninput 4x4x1\nb 3\nb 5"
    Assert.Equal(1, d.Pos.Line)
    Assert.Contains("'b' used at line 4", d.Message)

[<Fact>]
let ``the uncovered-rows warning gives the seeds' remainder`` () =
    let d = only "CNN401" "input 26x26x32\nconv 64 3x3 s2 relu"
    Assert.Equal(Severity.Warning, d.Severity)
    Assert.Contains("(26 + 2*0 - 3) mod 2 = 1", d.Message)
    Assert.True(Result.isOk (compile "input 26x26x32\nconv 64 3x3 s2 relu"))

[<Fact>]
let ``dense after a spatial layer inserts a flatten`` () =
    let g = graph "input 28x28x1\nconv 32 3x3 s1 same relu; maxpool 2; dense 10 softmax"
    let kinds = g.Nodes |> List.map (fun n -> n.Name)
    Assert.Equal<string list>([ "input_layer"; "conv2d"; "max_pooling2d"; "flatten"; "dense" ], kinds)
    Assert.Equal(Vector 6272, g.Nodes[3].OutputShape)
    Assert.Equal(Activation.Softmax, g.Output.Activation)

[<Fact>]
let ``same padding on an even kernel puts the extra pixel bottom-right`` () =
    let g = graph "input 28x28x1\nconv 4 2x2 same"
    match g.Output.Kind with
    | LayerKind.Conv c -> Assert.Equal({ Top = 0; Bottom = 1; Left = 0; Right = 1 }, c.Window.Padding)
    | other -> failwithf "unexpected %A" other

[<Fact>]
let ``residual adds the block to its input, and project inserts a strided 1x1 conv`` () =
    let g = graph "input 32x32x16\nresidual (conv 16 3x3 same relu; conv 16 3x3 same) relu\nresidual (conv 32 3x3 s2 same) project"
    let add = g.Nodes |> List.find (fun n -> n.Name = "add")
    Assert.Equal<int list>([ 2; 0 ], add.Inputs)
    Assert.Equal(Activation.Relu, add.Activation)
    let projection = g.Nodes |> List.find (fun n -> n.Name = "conv2d_3")
    match projection.Kind with
    | LayerKind.Conv c -> Assert.Equal((1, 2, 32), (c.Window.KernelH, c.Window.StrideH, c.Filters))
    | other -> failwithf "unexpected %A" other
    Assert.Equal(Image (Dim.Known 16, Dim.Known 16, 32), g.Output.OutputShape)

[<Fact>]
let ``concat sums the channels of its branches`` () =
    let g = graph "input 8x8x3\nconcat (conv 4 1x1 | conv 8 3x3 same | maxpool 3 s1 same)"
    Assert.Equal(Image (Dim.Known 8, Dim.Known 8, 15), g.Output.OutputShape)
    Assert.Equal(3, g.Output.Inputs.Length)

[<Fact>]
let ``let blocks and repeat expand with their arguments`` () =
    let g = graph "let block n f = (repeat n (conv f 3x3 same relu); maxpool 2)\ninput 16x16x1\nblock 2 8\nblock 3 4"
    Assert.Equal(1 + 2 + 1 + 3 + 1, g.Nodes.Length)
    Assert.Equal(Image (Dim.Known 4, Dim.Known 4, 4), g.Output.OutputShape)

[<Fact>]
let ``fixed kernels are depthwise and have no parameters`` () =
    let g = graph "input 32x32x3\nsobel same\nkernel [[1,0,-1],[1,0,-1],[1,0,-1]]"
    Assert.Equal(Image (Dim.Known 30, Dim.Known 30, 6), g.Output.OutputShape)
    Assert.True(g.Nodes |> List.forall (fun n -> Cost.parameters n = (0L, 0L)))

[<Fact>]
let ``frozen layers and batchnorm statistics are non-trainable`` () =
    let g = graph "input 8x8x1\nconv 4 3x3 frozen\nbatchnorm relu\nflatten\ndense 2"
    let frozen = g.Nodes |> List.find (fun n -> n.Name = "conv2d")
    Assert.Equal((0L, 40L), Cost.parameters frozen)
    Assert.Equal((8L, 8L), Cost.parameters (g.Nodes |> List.find (fun n -> n.Name = "batch_normalization")))

[<Fact>]
let ``dynamic inputs stay dynamic through convolutions and end in a global pool`` () =
    let g = graph "input ?x?x1\nconv 8 3x3 s2 same relu\nconv 10 1x1\nglobalavgpool\nsoftmax"
    Assert.Equal(Image (Dim.Dynamic, Dim.Dynamic, 10), g.Nodes[2].OutputShape)
    Assert.Equal(Vector 10, g.Output.OutputShape)

[<Fact>]
let ``the training section becomes settings with Keras's defaults`` () =
    let g = graph "input 2\ndense 1\ntrain\n  data xor; loss mse\n  optimizer sgd; lr 0.1; momentum 0.9\n  epochs 5; batch 4; seed 7"
    Assert.Equal(Some (Optimizer.Sgd (0.1, 0.9, false)), g.Training.Optimizer)
    Assert.Equal(Some Loss.MeanSquaredError, g.Training.Loss)
    Assert.Equal((Some 5, Some 4, Some 7), (g.Training.Epochs, g.Training.BatchSize, g.Training.Seed))
    let adam = graph "input 2\ndense 1\ntrain\n  optimizer adam"
    Assert.Equal(Some (Optimizer.Adam (0.001, 0.9, 0.999, 1e-7)), adam.Training.Optimizer)

[<Fact>]
let ``softmax may be followed by a reshape`` () =
    Assert.True(Result.isOk (compile "input 8\ndense 100 softmax\nreshape 10x10x1"))

[<Fact>]
let ``learning-rate schedules and early stopping are read, with Keras's plateau defaults`` () =
    let schedule text = (graph ("input 2\ndense 1\ntrain\n  " + text)).Training
    Assert.Equal(Some (Schedule.Step (10, 0.5)), (schedule "schedule step 10 0.5").Schedule)
    Assert.Equal(Some Schedule.Cosine, (schedule "schedule cosine").Schedule)
    Assert.Equal(Some (Schedule.Plateau (10, 0.1)), (schedule "schedule plateau").Schedule)
    Assert.Equal(Some 4, (schedule "earlystop 4").EarlyStopping)
    Assert.Equal("CNN502", (only "CNN502" "input 2\ndense 1\ntrain\n  schedule step 0 2").Code)

// ---- hostile models: recursion, exponential expansion, sizes at the edge of int range ----

/// Each case from the hardening round: the text and the code it must end in (never an
/// exception, a stack overflow or minutes of expansion).
let hostile : obj[] list =
    [ [| "let a = a\ninput 4\na"; "CNN103" |]
      [| "input 4\nlet a = b\nlet b = a\na"; "CNN103" |]
      [| "input 4\nrepeat 100000 (repeat 100000 (repeat 100000 (dense 1)))"; "CNN308" |]
      [| "input 4\nrepeat 2147483647 (dense 1)"; "CNN308" |]
      [| "input 4\nlet l0 = dense 1\n" + String.Join("\n", [ for i in 1 .. 40 -> sprintf "let l%d = l%d; l%d" i (i - 1) (i - 1) ]) + "\nl40"; "CNN308" |]
      [| "let r n = repeat n (repeat n (dense 1))\ninput 4\nr 100000"; "CNN308" |]
      [| "input 4x4x1\nconcat (conv 2147483647 1x1 | conv 2147483647 1x1)"; "CNN308" |]
      [| "input 2000000000\nconcat (linear | linear)"; "CNN308" |]
      [| "input 1x1x1500000000\nsobel same\nglobalavgpool"; "CNN308" |]
      [| "input 8x8x1\nconv 1 3x3 p99999\nglobalavgpool"; "CNN308" |]
      [| "input 8x8x1\nconv 1 3x3 p2147483647\nglobalavgpool"; "CNN308" |]
      [| "input 8x8x1\nconv 1 3x3 p2147483648\nglobalavgpool"; "CNN004" |]
      [| "input 8x8x1\nconv 1 3x3 s99999999999999999999999"; "CNN004" |]
      [| "input 2000000000x2000000000x1\nresidual (conv 1 1x1 s1000000000) project"; "CNN308" |] ]

[<Theory>]
[<MemberData(nameof hostile)>]
let ``hostile models end in their diagnostic, quickly`` (text: string) (code: string) =
    // Not a speed target: a bound loose enough for a busy machine that still catches
    // expansion that goes on for minutes (as it did before the bound).
    let watch = Diagnostics.Stopwatch.StartNew()
    let ds = diagnostics text
    Assert.True(ds |> List.exists (fun d -> d.Code = code && d.Severity = Severity.Error),
                sprintf "expected %s for:\n%s\ngot:\n%s" code text (Diagnostic.renderAll "t.cnn" text ds))
    Assert.True(watch.Elapsed.TotalSeconds < 10.0, sprintf "took %.1f s" watch.Elapsed.TotalSeconds)

[<Fact>]
let ``a recursive block names the cycle`` () =
    let d = only "CNN103" "input 4\nlet a = b\nlet b = a\na"
    Assert.StartsWith("'a' uses itself (a -> b -> a)", d.Message)

[<Fact>]
let ``a projection finds its stride without walking every stride`` () =
    let g = graph "input 1000000x8x1\nresidual (conv 2 1x1 s250000x1) project"
    let projection = g.Nodes |> List.find (fun n -> n.Name = "conv2d_1")
    match projection.Kind with
    | LayerKind.Conv c -> Assert.Equal((250000, 1), (c.Window.StrideH, c.Window.StrideW))
    | other -> failwithf "unexpected %A" other

/// Models built to hurt: blocks that use each other (forwards, backwards, themselves),
/// repeats nested with huge counts, blocks used twice per level, and sizes near 2^31 and 2^63.
let private hostileProgram : Gen<string> =
    let size = Gen.elements [ "1"; "3"; "65535"; "2147483647"; "2147483648"; "4294967296"; "9223372036854775807"; "99999999999999999999" ]
    let count = Gen.elements [ "1"; "2"; "1000"; "100000"; "2147483647"; "n" ]
    let name = Gen.elements [ "a"; "b"; "c" ]
    let leaf =
        Gen.frequency
            [ 6, name |> Gen.map (fun n -> n + " 2")
              1, size |> Gen.map (fun s -> "dense " + s)
              1, Gen.map2 (sprintf "conv %s %sx1") size (Gen.elements [ "1"; "3" ])
              1, size |> Gen.map (fun s -> "conv 2 1x1 p" + s)
              1, size |> Gen.map (fun s -> "maxpool 2 s" + s)
              1, Gen.constant "sobel same"
              1, Gen.constant "concat (linear | linear | linear)" ]
    let rec body depth =
        if depth = 0 then leaf
        else
            Gen.oneof
                [ leaf
                  Gen.map2 (sprintf "repeat %s (%s)") count (body (depth - 1))
                  Gen.map2 (sprintf "%s; %s") (body (depth - 1)) (body (depth - 1))
                  body (depth - 1) |> Gen.map (sprintf "concat (%s | linear)") ]
    gen {
        let! input = Gen.oneof [ size |> Gen.map (sprintf "input %s"); Gen.map2 (sprintf "input %sx%sx1") size size ]
        let! bodies = Gen.listOfLength 3 (body 3)
        let lets = List.zip [ "a"; "b"; "c" ] bodies
        let! main = body 3
        let! lateLets = Gen.elements [ true; false ]
        let defs = lets |> List.map (fun (n, b) -> sprintf "let %s n = %s" n b)
        let uses = main.Replace("repeat n", "repeat 3")
        return String.Join("\n", (if lateLets then [ input; uses ] @ defs else defs @ [ input; uses ]))
    }

[<Property(MaxTest = 200)>]
let ``hostile models give diagnostics, never an exception, and every accepted size fits the runtime`` () =
    Prop.forAll (Arb.fromGen hostileProgram) (fun text ->
        let result = try Ok (compile text) with e -> Error (sprintf "exception on:\n%s\n%O" text e)
        match result with
        | Error message -> failwith message
        | Ok (Error ds) -> ds |> List.forall (fun d -> d.Message <> "" && d.Pos.Line >= 0)
        | Ok (Ok (g, _)) ->
            g.Nodes |> List.forall (fun n ->
                let within v = v >= 0L && v <= Check.maxTensorElements
                (Cost.elements n.OutputShape |> Option.forall within)
                && (let t, f = Cost.parameters n in t >= 0L && f >= 0L)
                && (Cost.multiplyAdds n |> Option.forall (fun m -> m >= 0L))))

[<Fact>]
let ``the hostile generator reaches recursion, explosion and int-range sizes`` () =
    let codes =
        Gen.sampleWithSize 30 400 hostileProgram
        |> Seq.collect (fun text -> diagnostics text |> List.map (fun d -> d.Code))
        |> Set.ofSeq
    for code in [ "CNN103"; "CNN308"; "CNN004" ] do
        Assert.True(codes.Contains code, sprintf "no generated model produced %s (got %A)" code codes)

// ---- hand-set weights ----

let private givenOf (g: Graph) name = (g.Nodes |> List.find (fun n -> n.Name = name)).Given.Value

[<Fact>]
let ``a conv's hand-set kernel is written per filter and channel and held HWIO`` () =
    // 2 filters on 2 channels: filter f, channel c, row y, column x holds 1000f + 100c + 10y + x.
    let m f c = sprintf "[[%d %d] [%d %d]]" (1000 * f + 100 * c) (1000 * f + 100 * c + 1) (1000 * f + 100 * c + 10) (1000 * f + 100 * c + 11)
    let text = sprintf "input 3x3x2\nconv 2 2x2 weights [[%s %s] [%s %s]] bias [0.5 -1]" (m 0 0) (m 0 1) (m 1 0) (m 1 1)
    let given = givenOf (graph text) "conv2d"
    let hwio y x c f = given.Kernel[((y * 2 + x) * 2 + c) * 2 + f]
    for f in 0 .. 1 do
        for c in 0 .. 1 do
            for y in 0 .. 1 do
                for x in 0 .. 1 do
                    Assert.Equal(float (1000 * f + 100 * c + 10 * y + x), hwio y x c f)
    Assert.Equal<float[]>([| 0.5; -1.0 |], given.Bias.Value)

[<Fact>]
let ``levels of size 1 may be left out, and one bias number serves every filter`` () =
    let one = givenOf (graph "input 3x3x1\nconv 1 2x2 weights [[1 2] [3 4]] bias 0.5") "conv2d"
    Assert.Equal<float[]>([| 1.0; 2.0; 3.0; 4.0 |], one.Kernel)
    let colour = givenOf (graph "input 3x3x3\nconv 1 1x1 weights [[[1]] [[2]] [[3]]]") "conv2d"
    Assert.Equal<float[]>([| 1.0; 2.0; 3.0 |], colour.Kernel)
    Assert.Equal(None, colour.Bias)
    // A 1x1 conv mixing 3 channels into 3: one row of channel weights per filter.
    let mix = givenOf (graph "input 3x3x3\nconv 3 1x1 weights [[0 1 0] [1 0 0] [0 0 1]]") "conv2d"
    Assert.Equal<float[]>([| 0.0; 1.0; 0.0; 1.0; 0.0; 0.0; 0.0; 0.0; 1.0 |], mix.Kernel) // HWIO: I x O, here symmetric
    let filters = givenOf (graph "input 3x3x1\nconv 2 1x1 weights [[[1]] [[2]]] bias 7") "conv2d"
    Assert.Equal<float[]>([| 1.0; 2.0 |], filters.Kernel)
    Assert.Equal<float[]>([| 7.0; 7.0 |], filters.Bias.Value)

[<Fact>]
let ``a dense layer's hand-set weights are one row per unit, held [in, out]`` () =
    let given = givenOf (graph "input 3\ndense 2 weights [[1 2 3] [4 5 6]] bias [-10 30]") "dense"
    // [in, out]: input i, unit u at i * 2 + u.
    Assert.Equal<float[]>([| 1.0; 4.0; 2.0; 5.0; 3.0; 6.0 |], given.Kernel)
    Assert.Equal<float[]>([| -10.0; 30.0 |], given.Bias.Value)
    Assert.Equal<float[]>([| 1.0; -2.0 |], (givenOf (graph "input 2\ndense 1 weights [1 -2]") "dense").Kernel)

[<Fact>]
let ``hand-set weights of the wrong shape are refused where they are written`` () =
    let message text = (only "CNN206" text).Message
    Assert.Equal("conv 1 2x2 on 1 channel takes weights of 1x1x2x2 (one 2x2 matrix per filter), found 2x3", message "input 3x3x1\nconv 1 2x2 weights [[1 2 3] [4 5 6]]")
    Assert.Equal("the weights are not rectangular: this entry is 3 but the first is 2", message "input 3x3x1\nconv 1 2x2 weights [[1 2] [4 5 6]]")
    Assert.Equal((2, 27), let d = only "CNN206" "input 3x3x1\nconv 1 2x2 weights [[1 2] [4 5 6]]" in d.Pos.Line, d.Pos.Col)
    Assert.Equal("dense 2 on 3 inputs takes 2 bias values, found 3", message "input 3\ndense 2 weights [[1 2 3] [4 5 6]] bias [1 2 3]")
    Assert.Equal("dense 1 on 2 inputs has 'nobias' and a bias", message "input 2\ndense 1 nobias weights [1 2] bias 3")
    Assert.Equal("dense 1 on 2 inputs has a hand-set bias but random weights", message "input 2\ndense 1 bias 3")
    Assert.Equal("CNN007", (only "CNN007" "input 4x4x1\nmaxpool 2 weights [1]").Code)
    Assert.Equal("CNN006", (only "CNN006" "input 2\ndense 1 weights [1 2] weights [3 4]").Code)
    // finite as doubles, but infinity as the float32 the engines train and export
    Assert.Equal("the weights must be finite numbers of at most 3.4e38 in size (float32), found 1e+39", message "input 3x3x1\nconv 1 2x2 weights [[1e39 0] [0 1]]")
    Assert.Equal("the weights must be finite numbers of at most 3.4e38 in size (float32), found -1e+39", message "input 2\ndense 2 weights [[1 1] [1 1]] bias [-1e39 0]")
    Assert.Equal((2, 31), let d = only "CNN206" "input 2\ndense 2 weights [[1 1] [1 1]] bias 1e39" in d.Pos.Line, d.Pos.Col)
    Assert.Equal("the kernel must hold finite numbers of at most 3.4e38 in size (float32), found 1e+39", (only "CNN204" "input 3x3x1\nkernel [[1e39 0] [0 1]]").Message)

// ---- grouped, depthwise and separable convolutions, maxout, written shortcuts ----

let private parameters (g: Graph) = g.Nodes |> List.sumBy (fun n -> let t, f = Cost.parameters n in t + f)

[<Fact>]
let ``grouped, depthwise and separable convolutions count parameters as Keras does`` () =
    // Conv2D(64, 3, groups=4) on 32 channels: 3*3*(32/4)*64 + 64 = 4,672.
    Assert.Equal(4672L, parameters (graph "input 16x16x32\nconv 64 3x3 groups 4") - 0L)
    // DepthwiseConv2D(3) on 32 channels: 3*3*32 + 32 = 320.
    Assert.Equal(320L, parameters (graph "input 16x16x32\ndwconv 3x3"))
    // SeparableConv2D(64, 3) on 32 channels: 3*3*32 + 32*64 + 64 = 2,400.
    Assert.Equal(2400L, parameters (graph "input 16x16x32\nsepconv 64 3x3"))
    let g = graph "input 16x16x32\ndwconv 3x3 s2 same relu\nmaxout 4"
    Assert.Equal(Image (Dim.Known 8, Dim.Known 8, 8), g.Output.OutputShape)
    Assert.Equal("DepthwiseConv2D", Summary.typeName g.Nodes[1])

[<Fact>]
let ``a written shortcut replaces the identity, and must end in the block's shape`` () =
    let g = graph "input 8x8x4\nresidual (conv 8 3x3 s2 same) shortcut (conv 8 1x1 s2; batchnorm)"
    let add = g.Output
    Assert.Equal(LayerKind.Add, add.Kind)
    Assert.Equal<string list>([ "conv2d"; "batch_normalization" ], add.Inputs |> List.map (fun i -> g.Nodes[i].Name))
    Assert.Contains("its shortcut in 4x4x4", (only "CNN305" "input 8x8x4\nresidual (conv 8 3x3 s2 same) shortcut (conv 4 1x1 s2)").Message)
    Assert.Equal("CNN305", (only "CNN305" "input 8x8x4\nresidual (conv 8 3x3 same) shortcut (conv 8 1x1) project").Code)

[<Fact>]
let ``maxout needs a channel count its pieces divide`` () =
    Assert.Equal("maxout 3 on 8 channels: 8 is not divisible by 3", (only "CNN310" "input 4x4x8\nmaxout 3").Message)

[<Fact>]
let ``the uncovered-rows warning is only given where real rows are lost, once per place`` () =
    let warnings text = diagnostics text |> List.filter (fun d -> d.Code = "CNN401")
    // Only padding is left over: ResNet's stem and its padded max pooling.
    Assert.Empty(warnings "input 224x224x3\nconv 64 7x7 s2 p3\nmaxpool 3 s2 p1")
    // A 1x1 stride-2 shortcut skips every other row anyway: the last one is no extra loss.
    Assert.Empty(warnings "input 56x56x8\nconv 16 1x1 s2")
    // The seed's exercise still warns: row 26 of 26 is real and never read.
    Assert.Equal(1, (warnings "input 26x26x32\nconv 64 3x3 s2 relu").Length)
    // A block used three times warns once, at its place in the block.
    let d = warnings "let down = (conv 4 3x3 s2)\ninput 26x26x1\ndown\nconv 1 1x1\ndown\ndown"
    Assert.Equal(1, d.Length)

// ---- messages: did you mean, Keras's names, data sets, cross-entropy without softmax ----

let private hintOf code text = (only code text).Hint |> Option.defaultValue ""

[<Fact>]
let ``every misspelled keyword gets a did-you-mean, transpositions included`` () =
    Assert.Equal("did you mean 'conv'?", hintOf "CNN002" "input 8x8x1\ncovn 8 3x3")
    Assert.Equal("did you mean 'relu'?", hintOf "CNN002" "input 8\ndense 2\nrleu")
    Assert.Equal("did you mean 'relu'?", hintOf "CNN003" "input 8x8x1\nconv 8 3x3 rleu")
    Assert.Equal("did you mean 'sigmoid'?", hintOf "CNN003" "input 8\ndense 2 sigmod")
    Assert.Equal("did you mean 'softmax'?", hintOf "CNN003" "input 8\ndense 2 sotfmax")
    Assert.Equal("did you mean 'maxpool'?", hintOf "CNN002" "input 8x8x1\nmxapool 2")
    Assert.Equal("did you mean 'batchnorm'?", hintOf "CNN002" "input 8x8x1\nbatchnrom")
    Assert.Equal("did you mean 'let'?", hintOf "CNN002" "lte b = (dense 2)\ninput 8\ndense 2 softmax")
    Assert.Equal("did you mean 'train'?", hintOf "CNN002" "input 8\ndense 2 softmax\ntrian")
    Assert.Equal("did you mean 'same'?", hintOf "CNN003" "input 8x8x1\nconv 8 3x3 smae")
    Assert.Equal("did you mean 'epochs'?", hintOf "CNN501" "input 2\ndense 1\ntrain\n  epcohs 3")
    Assert.Equal("did you mean 'optimizer'?", hintOf "CNN501" "input 2\ndense 1\ntrain\n  optimiser adam")
    Assert.Equal("did you mean 'rmsprop'?", hintOf "CNN502" "input 2\ndense 1\ntrain\n  optimizer rmsporp")
    Assert.Equal("did you mean 'mse'?", hintOf "CNN502" "input 2\ndense 1\ntrain\n  loss mes")
    Assert.Equal("did you mean 'flip'?", hintOf "CNN502" "input 2\ndense 1\ntrain\n  augment filp")

[<Fact>]
let ``Keras's names are mapped to the language's in hints`` () =
    let layer word = hintOf "CNN002" (sprintf "input 8x8x3\n%s 2" word)
    Assert.Equal("Keras's Conv2D is written 'conv FILTERS KxK', e.g. conv 32 3x3 same relu", layer "Conv2D")
    Assert.Contains("'maxpool SIZE'", layer "MaxPooling2D")
    Assert.Contains("'avgpool SIZE'", layer "AveragePooling2D")
    Assert.Contains("'dense UNITS'", layer "Dense")
    Assert.Contains("'flatten'", layer "Flatten")
    Assert.Contains("'dropout RATE'", layer "Dropout")
    Assert.Contains("'batchnorm'", layer "BatchNormalization")
    Assert.Contains("'dwconv KxK'", layer "DepthwiseConv2D")
    Assert.Contains("'sepconv FILTERS KxK'", layer "SeparableConv2D")
    Assert.Contains("'globalavgpool'", layer "GlobalAveragePooling2D")
    let loss word = hintOf "CNN502" (sprintf "input 2\ndense 2 softmax\ntrain\n  loss %s" word)
    Assert.Contains("'loss crossentropy'", loss "sparse_categorical_crossentropy")
    Assert.Contains("'loss crossentropy'", loss "categorical_crossentropy")
    Assert.Contains("'loss binarycrossentropy'", loss "binary_crossentropy")
    Assert.Contains("'loss mse'", loss "mean_squared_error")
    let optimizer word = hintOf "CNN502" (sprintf "input 2\ndense 2 softmax\ntrain\n  optimizer %s" word)
    Assert.Contains("'optimizer adam'", optimizer "Adam")
    Assert.Contains("'optimizer sgd'", optimizer "SGD")
    Assert.Contains("'optimizer rmsprop'", optimizer "RMSprop")
    Assert.Contains("'same'", hintOf "CNN003" "input 8x8x1\nconv 8 3x3 padding same")
    Assert.Contains("'lr'", hintOf "CNN501" "input 2\ndense 2 softmax\ntrain\n  learning_rate 0.1")
    // The unknown layer is the one mistake: its options are not judged against it.
    Assert.Equal<string list>([ "CNN002" ], diagnostics "input 8\nDense 10 softmax" |> List.map (fun d -> d.Code))

[<Fact>]
let ``data-set names are checked, paths are not`` () =
    let d = only "CNN502" "input 28x28x1\ndense 10 softmax\ntrain\n  data fashion_mnist"
    Assert.Equal("'fashion_mnist' is not a known data set nor a path", d.Message)
    Assert.StartsWith("did you mean 'fashion-mnist'?", d.Hint.Value)
    Assert.Equal((4, 8), (d.Pos.Line, d.Pos.Col))
    Assert.StartsWith("did you mean 'cifar10'?", hintOf "CNN502" "input 2\ndense 2 softmax\ntrain\n  data cifar-10")
    Assert.Contains("\"./digits\"", hintOf "CNN502" "input 2\ndense 2 softmax\ntrain\n  data digits")
    for ok in [ "fashion-mnist"; "mnist"; "cifar10"; "xor"; "shapes"; "MNIST"; "\"no/such/folder\""; "\"train.csv\""; "\"./digits\"" ] do
        let text = sprintf "input 2\ndense 2 softmax\ntrain\n  data %s" ok
        Assert.True(diagnostics text |> List.forall (fun d -> d.Code <> "CNN502"), ok)

[<Fact>]
let ``cross-entropy after a last layer without softmax warns, unless the loss is another`` () =
    let d = only "CNN403" "input 8\ndense 4 relu\ndense 3\ndropout 0.5\ntrain\n  data mnist"
    Assert.Equal("cross-entropy (the default loss) after dense_1, which ends in linear, not softmax: training would read its raw outputs, clamped, as probabilities", d.Message)
    Assert.Equal((3, 1), (d.Pos.Line, d.Pos.Col))
    Assert.Equal(Severity.Warning, d.Severity)
    Assert.Equal("CNN403", (only "CNN403" "input 8x8x1\nconv 4 3x3 relu\ntrain\n  loss crossentropy").Code)
    // One sigmoid output is a yes/no model: the hint is binary cross-entropy.
    Assert.Contains("loss binarycrossentropy", hintOf "CNN403" "input 8\ndense 1 sigmoid\ntrain\n  epochs 1")
    let quiet text = Assert.True(diagnostics text |> List.forall (fun d -> d.Code <> "CNN403"), text)
    quiet "input 8\ndense 3 softmax\nreshape 3"
    quiet "input 8\ndense 3\nsoftmax"
    quiet "input 8\ndense 1 sigmoid\ntrain\n  loss binarycrossentropy"
    quiet "input 8\ndense 3\ntrain\n  loss mse"
    // Fixed kernels have nothing to train: such a model is only applied.
    quiet "input 6x6x1\nkernel [[1,0,-1],[1,0,-1],[1,0,-1]]\ntrain\n  epochs 1"
    // Without a train section the file is written to be applied or explained.
    quiet "input 6x6x1\nconv 1 3x3 s2"

// ---- fixed kernels over colour channels ----

[<Fact>]
let ``a kernel with one matrix per input channel is a frozen one-filter conv that sums the channels`` () =
    let g = graph "input 8x8x2\nkernel [[[1 2] [3 4]] [[5 6] [7 8]]] same relu"
    let node = g.Output
    Assert.Equal(Image (Dim.Known 8, Dim.Known 8, 1), node.OutputShape)
    match node.Kind with
    | LayerKind.Conv c -> Assert.Equal((1, 1, false, 2, 2), (c.Filters, c.Groups, c.Bias, c.Window.KernelH, c.Window.KernelW))
    | other -> failwithf "expected a conv, got %A" other
    Assert.False(node.Trainable)
    Assert.Equal(Activation.Relu, node.Activation)
    Assert.Equal((0L, 8L), Cost.parameters node)
    // Held HWIO: ((y * kw + x) * channels + channel) * filters + filter.
    Assert.Equal<float[]>([| 1.; 5.; 2.; 6.; 3.; 7.; 4.; 8. |], node.Given.Value.Kernel)
    Assert.Equal(None, node.Given.Value.Bias)
    // A matrix per channel needs as many matrices as the input has channels.
    let d = only "CNN206" "input 8x8x3\nkernel [[[1 0] [0 1]] [[1 0] [0 1]]]"
    Assert.Equal("this kernel has 2 matrices, one per input channel, but its input 8x8x3 has 3 channels", d.Message)
    Assert.Equal((2, 8), (d.Pos.Line, d.Pos.Col))
    // A single matrix is still applied to each channel separately.
    match (graph "input 8x8x2\nkernel [[1 0] [0 1]]").Output.Kind with
    | LayerKind.FixedConv f -> Assert.Equal(1, f.Kernels.Length)
    | other -> failwithf "expected a fixed kernel, got %A" other
    Assert.Equal("a kernel is a matrix or one matrix per input channel, found one number", (only "CNN204" "input 8x8x1\nkernel 5").Message)

[<Fact>]
let ``one mistake written once is reported once`` () =
    Assert.Equal(1, diagnostics "input 8x8x2\ndwconv 0x0" |> List.filter (fun d -> d.Code = "CNN201") |> List.length)
