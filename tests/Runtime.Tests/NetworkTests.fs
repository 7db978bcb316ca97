module CnnDsl.Runtime.Tests.NetworkTests

open System
open System.IO
open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open CnnDsl.Runtime
open CnnDsl.Runtime.Layers
open CnnDsl.Runtime.Tests.TestSupport
open CnnDsl.Runtime.Tests.GradientCheck

/// Random valid stacks: each step picks a layer that fits the current size, so every
/// generated model checks, and layers are exercised in combination.
let private stack : Gen<string> =
    gen {
        let! h = Gen.choose (4, 8)
        let! c = Gen.choose (1, 3)
        let! count = Gen.choose (1, 4)
        let mutable size = h
        let lines = ResizeArray [ sprintf "input %dx%dx%d" h h c ]
        for _ in 1 .. count do
            let! pick = Gen.choose (0, 8)
            let! f = Gen.choose (1, 3)
            match pick with
            | 0 | 1 when size >= 3 -> lines.Add(sprintf "conv %d 3x3 relu" f); size <- size - 2
            | 2 -> lines.Add(sprintf "conv %d 3x3 s2 same tanh" f); size <- (size + 1) / 2
            | 3 when size >= 2 -> lines.Add "maxpool 2"; size <- size / 2
            | 4 -> lines.Add "batchnorm relu"
            | 5 -> lines.Add(sprintf "residual (conv %d 3x3 same relu; conv %d 3x3 same) project" f f)
            | 6 -> lines.Add(sprintf "concat (conv %d 1x1 | avgpool 3 s1 same)" f)
            | 7 -> lines.Add "dropout 0.3"
            | _ -> lines.Add(sprintf "conv %d 1x1 sigmoid" f)
        let! head = Gen.elements [ "dense 3 softmax"; "globalavgpool\ndense 2"; "flatten\ndense 4 elu" ]
        lines.Add head
        return String.Join("\n", lines)
    }

[<Cases 100>]
let ``whole generated networks have right gradients`` () =
    Prop.forAll (Arb.fromGen stack) (fun text -> assertGradients text 2)

/// Layers keep scratch buffers (accumulators, spread patterns, chosen cells) from one call to
/// the next: a second training step must equal a fresh network's first step on the same batch,
/// outputs, input gradients and parameter gradients alike. (The moving statistics of batchnorm
/// differ after two steps, so the second step runs in training mode, where they are not read.)
[<Cases 100>]
let ``a second step equals a fresh network's first: nothing is left over from the first`` (seed: int) =
    Prop.forAll (Arb.fromGen stack) (fun text ->
        let g = graph text
        let rng = Random seed
        let step (net: Network<double>) (x: float[]) (dy: float[]) =
            copyFrom x net.Input
            net.Forward(true)
            copyFrom dy net.OutputGradient
            for p in net.Parameters do Array.Clear p.Gradient
            net.Backward()
            net.Output.ToArray(), net.InputGradient.ToArray(), [| for p in net.Parameters do yield! p.Gradient |]
        let used, fresh = Network<double>(g, 2, 1, true), Network<double>(g, 2, 1, true)
        let x1, x2 = randomArray rng used.Input.Length, randomArray rng used.Input.Length
        let dy1, dy2 = randomArray rng used.OutputGradient.Length, randomArray rng used.OutputGradient.Length
        step used x1 dy1 |> ignore
        let y, dx, dw = step used x2 dy2
        let y', dx', dw' = step fresh x2 dy2
        assertRelative 1e-12 1.0 (text + "\noutput") y' y
        assertRelative 1e-12 1.0 (text + "\ninput gradient") dx' dx
        assertRelative 1e-12 1.0 (text + "\nparameter gradients") dw' dw)

[<Fact>]
let ``the seed models run forward in float and give probabilities`` () =
    for name in [ "lenet"; "fashion-mnist"; "digit-recognizer"; "cifar10-features"; "inception-block"; "resnet18"; "xor" ] do
        let g = graph (File.ReadAllText(Path.Combine(root, "models", name + ".cnn")))
        let net = Network<float32>(g, 2, 1)
        let rng = Random 5
        for i in 0 .. net.Input.Length - 1 do net.Input[i] <- float32 (rng.NextDouble())
        net.Forward(false)
        let out = net.Output.ToArray()
        Assert.All(out, fun v -> Assert.True(Single.IsFinite v, name))
        if net.OutputLayer.Node.Activation.IsSoftmax then
            Assert.Equal(2.0f, Array.sum out, 3)

[<Fact>]
let ``kernels start Glorot-uniform, biases at zero, the same for the same seed`` () =
    let g = graph "input 28x28x1\nconv 32 7x7\nflatten\ndense 10"
    let a, b = Network<float32>(g, 1, 42), Network<float32>(g, 1, 42)
    let conv = a.Layers[1] :?> Conv2d<float32>
    let limit = float32 (sqrt (6.0 / float (49 + 49 * 32)))
    Assert.All(conv.Kernel.Value, fun v -> Assert.InRange(v, -limit, limit))
    Assert.True(conv.Kernel.Value |> Array.exists (fun v -> abs v > limit * 0.9f))
    Assert.All(conv.Bias.Value, fun v -> Assert.Equal(0.0f, v))
    Assert.Equal<float32[]>(conv.Kernel.Value, (b.Layers[1] :?> Conv2d<float32>).Kernel.Value)

[<Fact>]
let ``frozen layers get no parameter gradients but pass the gradient on`` () =
    let net = network "input 4x4x1\nconv 2 3x3 frozen\nflatten\ndense 2" 1
    net.Forward(true)
    net.OutputGradient.Fill 1.0
    net.Backward()
    let conv = net.Layers[1] :?> Conv2d<float>
    Assert.All(conv.Kernel.Gradient, fun v -> Assert.Equal(0.0, v))
    Assert.False(conv.Kernel.Trainable)
    Assert.True(net.InputGradient.ToArray() |> Array.exists (fun v -> v <> 0.0))

/// A network built without an input gradient (training, where nothing reads it) must not have
/// its first layers spend work on one: each kind of layer, placed right after the input, leaves
/// the input's gradient as Backward cleared it.
[<Fact>]
let ``without an input gradient, no layer writes one`` () =
    let firsts =
        [ "conv 3 3x3"; "conv 3 3x3 s2"; "conv 16 3x3 same"; "conv 4 1x1"; "conv 4 3x3 groups 2"; "dwconv 3x3"
          "maxpool 2"; "avgpool 3 s1 same"; "minpool 2"; "globalavgpool"; "globalmaxpool"; "batchnorm"
          "batchnorm relu"; "relu"; "dropout 0.5"; "maxout 2"; "flatten"
          "residual (conv 4 3x3 same)"; "concat (conv 2 1x1 | maxpool 3 s1 same)" ]
    let rng = Random 7
    for first in firsts do
        let text = sprintf "input 6x6x4\n%s\nflatten\ndense 3" first
        let net = Network<float32>(graph text, 2, 1, false)
        for i in 0 .. net.Input.Length - 1 do net.Input[i] <- float32 (rng.NextDouble() - 0.5)
        net.Forward(true)
        for i in 0 .. net.OutputGradient.Length - 1 do net.OutputGradient[i] <- 1.0f
        net.Backward()
        let written = net.Layers[0].Output.Gradient |> Array.filter (fun v -> v <> 0.0f) |> Array.length
        Assert.True((written = 0), sprintf "%s: %d input gradient values written" first written)

[<Fact>]
let ``the memory plan equals what a network allocates`` () =
    for name in [ "lenet"; "fashion-mnist"; "digit-recognizer"; "cifar10-features"; "inception-block"; "resnet18" ] do
        let g = graph (File.ReadAllText(Path.Combine(root, "models", name + ".cnn")))
        let net = Network<float32>(g, 3, 1)
        let plan = MemoryPlan.Estimate(g, 3)
        let activations = net.Layers |> Seq.sumBy (fun l -> 2L * int64 l.Output.Value.Length * 4L)
        let weights = net.Weights |> Seq.sumBy (fun p -> 2L * int64 p.Value.Length * 4L)
        Assert.Equal(activations, plan.Activations)
        Assert.Equal((net.Layers |> Seq.sumBy (fun l -> l.WorkspaceBytes)) + net.SharedWorkspaceBytes, plan.Workspace)
        Assert.Equal(weights, plan.Parameters)

[<Fact>]
let ``a network past one array or past the machine's memory is refused before allocating`` () =
    // 2 x 1,073,741,824 values in one tensor: more than an array holds.
    let wide = graph "input 1073741824\ndense 1"
    let e = Assert.Throws<ModelSizeError>(fun () -> Network<float32>(wide, 2) |> ignore)
    Assert.Contains("input_layer's output (1073741824) at batch 2", e.Message)
    Assert.Contains("smaller --batch", e.Message)
    // Each tensor fits an array, but values and gradients of both layers do not fit in memory.
    let rows = int (sqrt (float (GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 15L))) + 1
    let big = graph (sprintf "input %dx%dx1\nconv 1 1x1" rows rows)
    let e = Assert.Throws<ModelSizeError>(fun () -> Network<float32>(big, 1) |> ignore)
    Assert.Contains("GB but this machine lets the process use", e.Message)

[<Fact>]
let ``hand-set weights start the network, and leave every other layer's random draw unchanged`` () =
    let given = graph "input 3x3x1\nconv 1 2x2 relu weights [[0.6779961 -0.3282364] [0.61954254 -0.02001727]] bias 0.25\nflatten\ndense 2"
    let random = graph "input 3x3x1\nconv 1 2x2 relu\nflatten\ndense 2"
    let a, b = Network<double>(given, 1, 7), Network<double>(random, 1, 7)
    let conv = a.Layers[1] :?> Conv2d<double>
    Assert.Equal<double[]>([| 0.6779961; -0.3282364; 0.61954254; -0.02001727 |], conv.Kernel.Value |> Array.map (fun v -> Math.Round(v, 8)))
    Assert.Equal<double[]>([| 0.25 |], conv.Bias.Value)
    Assert.Equal<double[]>((b.Layers[3] :?> Dense<double>).Kernel.Value, (a.Layers[3] :?> Dense<double>).Kernel.Value)
    // The seed's worked example: [[1 1 2] [1 2 1] [2 1 1]] gives m1 = 0.6779961 - 0.3282364 + 0.61954254 - 2 * 0.02001727 + 0.25.
    [| 1.0; 1.0; 2.0; 1.0; 2.0; 1.0; 2.0; 1.0; 1.0 |].AsSpan().CopyTo(a.Input)
    a.Forward(false)
    Assert.Equal(0.9292677 + 0.25, conv.Output.Value[0], 6)

/// A partial last batch runs in the full-size network with its first rows filled: its loss,
/// every parameter gradient, the input gradient and batchnorm's statistics equal those of a
/// network built at exactly that many rows (Keras's partial batch), with nothing allocated.
[<Theory>]
[<InlineData(1)>]
[<InlineData(3)>]
[<InlineData(5)>]
let ``a partial batch in a larger network equals a network of that size`` (rows: int) =
    let text = "input 6x5x2\nconv 4 3x3 same relu\nbatchnorm relu\nmaxpool 2\ndwconv 2x2\nflatten\ndense 5\nbatchnorm\ndense 3 softmax"
    let g = graph text
    let full, exact = Network<double>(g, 6, 9, true), Network<double>(g, rows, 9, true)
    let rng = Random 4
    let input = randomArray rng (rows * full.InputSize)
    // Stale values in the padding rows must not matter: a whole step first fills every buffer,
    // gradients too (the layers that write a gradient first assign it, padding rows included).
    copyFrom (randomArray rng full.Input.Length) full.Input
    full.Forward(true)
    copyFrom (randomArray rng full.OutputGradient.Length) full.OutputGradient
    full.Backward()
    for p in full.Parameters do Array.Clear p.Gradient
    // (that step moved batchnorm's moving statistics: both networks start from them)
    for p, q in Seq.zip full.Weights exact.Weights do Array.blit p.Value 0 q.Value 0 p.Value.Length
    copyFrom input full.Input
    copyFrom input exact.Input
    let labels = Array.init 6 (fun i -> i % 3)
    full.Rows <- rows
    for net in [ full; exact ] do net.Forward(true)
    let lossFull = Losses.CrossEntropy(full, ReadOnlySpan labels, rows)
    let lossExact = Losses.CrossEntropy(exact, ReadOnlySpan (Array.sub labels 0 rows))
    Assert.Equal(lossExact, lossFull, 12)
    full.Backward()
    exact.Backward()
    for p, q in Seq.zip full.Weights exact.Weights do
        assertClose 1e-12 q.Gradient p.Gradient
        assertClose 1e-12 q.Value p.Value // batchnorm's moving statistics
    assertClose 1e-12 (exact.InputGradient.ToArray()) (full.InputGradient.Slice(0, rows * full.InputSize).ToArray())
    Assert.Throws<ArgumentOutOfRangeException>(fun () -> full.Rows <- 7) |> ignore
