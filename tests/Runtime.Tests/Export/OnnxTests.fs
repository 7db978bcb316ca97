module CnnDsl.Runtime.Tests.OnnxTests

open System
open System.IO
open Xunit
open Microsoft.ML.OnnxRuntime
open Microsoft.ML.OnnxRuntime.Tensors
open CnnDsl.Graph
open CnnDsl.Dsl
open CnnDsl.Runtime
open CnnDsl.Runtime.Export
open CnnDsl.Runtime.Tests.TestSupport

/// Exports with random weights (and random batchnorm statistics), runs the file in ONNX
/// Runtime and compares with the runtime's own forward pass.
let private compare (g: Graph) =
    let batch = 2
    let net = Network<float32>(g, batch, 3)
    let rng = Random 5
    for p in net.Weights do
        if not (p.Name.EndsWith "/kernel") then
            for i in 0 .. p.Value.Length - 1 do
                p.Value[i] <- if p.Name.EndsWith "variance" || p.Name.EndsWith "deviation" then float32 (0.5 + rng.NextDouble()) else float32 (rng.NextDouble() - 0.5)
    for i in 0 .. net.Input.Length - 1 do net.Input[i] <- float32 (rng.NextDouble())
    net.Forward(false)
    let expected = net.Output.ToArray()
    let bytes = OnnxExport.Export(g, net)
    use session = new InferenceSession(bytes)
    let dims =
        match g.Input.OutputShape with
        | Image (Dim.Known h, Dim.Known w, c) -> [| batch; h; w; c |]
        | Vector n -> [| batch; n |]
        | s -> failwithf "dynamic %O" s
    let tensor = DenseTensor<float32>(Memory<float32>(net.Input.ToArray()), ReadOnlySpan dims)
    use results = session.Run([ NamedOnnxValue.CreateFromTensor("input", tensor) ])
    let actual = (Seq.head results).AsEnumerable<float32>() |> Array.ofSeq
    Assert.Equal(expected.Length, actual.Length)
    let worst = Array.map2 (fun (a: float32) b -> abs (float a - float b)) expected actual |> Array.max
    Assert.True(worst < 1e-4, sprintf "max abs difference %g" worst)

/// Models with over ten million parameters are exported at a 32x32 input to keep the test fast.
let models () : obj[] seq =
    Directory.GetFiles(Path.Combine(root, "models"), "*.cnn") |> Array.sort |> Seq.map (fun f -> [| box (Path.GetFileName f) |])

[<Theory>]
[<MemberData(nameof models)>]
let ``every model in models/ exports and matches ONNX Runtime`` (file: string) =
    compare (graphAtTestSize (File.ReadAllText(Path.Combine(root, "models", file))))

/// `input ?x?x1`: the ONNX input has symbolic height and width, and one exported file runs
/// at several sizes, each matching the runtime compiled at that size with the same weights.
[<Fact>]
let ``a dynamic input exports with symbolic sizes and runs at any size`` () =
    let text = File.ReadAllText(Path.Combine(root, "models", "fully-convolutional-dynamic.cnn"))
    let sized h w = match Frontend.compileWithInput text h w with Some (Ok (g, _)) -> g | _ -> failwithf "%dx%d does not check" h w
    let batch = 2
    let source = Network<float32>(sized 28 28, batch, 3)
    let rng = Random 6
    for p in source.Weights do
        if not (p.Name.EndsWith "/kernel") then
            for i in 0 .. p.Value.Length - 1 do p.Value[i] <- float32 (rng.NextDouble() - 0.5)
    use session = new InferenceSession(OnnxExport.Export(graph text, source))
    let dims = session.InputMetadata["input"].Dimensions
    Assert.Equal<int[]>([| -1; -1; -1; 1 |], dims)
    for h, w in [ 28, 28; 40, 36 ] do
        let net = Network<float32>(sized h w, batch, 3)
        let weights = source.Weights |> Seq.map (fun p -> p.Name, p.Value) |> dict
        for p in net.Weights do weights[p.Name].CopyTo(p.Value, 0)
        for i in 0 .. net.Input.Length - 1 do net.Input[i] <- float32 (rng.NextDouble())
        net.Forward(false)
        let expected = net.Output.ToArray()
        let tensor = DenseTensor<float32>(Memory<float32>(net.Input.ToArray()), ReadOnlySpan [| batch; h; w; 1 |])
        use results = session.Run([ NamedOnnxValue.CreateFromTensor("input", tensor) ])
        let actual = (Seq.head results).AsEnumerable<float32>() |> Array.ofSeq
        Assert.Equal(expected.Length, actual.Length)
        let worst = Array.map2 (fun (a: float32) b -> abs (float a - float b)) expected actual |> Array.max
        Assert.True(worst < 1e-4, sprintf "%dx%d: max abs difference %g" h w worst)

[<Fact>]
let ``min pooling, fixed kernels, reshape and every activation export too`` () =
    compare (graph "input 9x8x2\nsobel same\nminpool 2\nconv 4 3x3 s2 same d1 elu\nreshape 4x2x2\nconv 3 1x1 leakyrelu 0.2\nglobalminpool\ndense 6 tanh\nbatchnorm sigmoid\ndense 3 softmax")

[<Fact>]
let ``grouped, depthwise and separable convolutions, maxout and a written shortcut export too`` () =
    compare (graph "input 9x8x4\nconv 6 3x3 groups 2 relu\ndwconv 3x3 s2 same\nsepconv 8 3x3 same relu\nmaxout 2\nresidual (conv 8 3x3 s2 same; batchnorm relu) shortcut (conv 8 1x1 s2 same; batchnorm)\nflatten\ndense 6\nmaxout 3\ndense 3 softmax")

[<Fact>]
let ``normalize's per-channel statistics are applied by the exported graph`` () =
    compare (graph "input 6x5x3\nconv 4 3x3 relu\nflatten\ndense 3 softmax\ntrain\n  normalize")
