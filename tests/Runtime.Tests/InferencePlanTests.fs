module CnnDsl.Runtime.Tests.InferencePlanTests

open System
open System.IO
open Xunit
open CnnDsl.Graph
open CnnDsl.Runtime
open CnnDsl.Runtime.Layers
open CnnDsl.Runtime.Tests.TestSupport

/// Models whose convolutions take every lowering a folded batchnorm passes its weights through
/// (checked below), with and without a bias, inside a residual block, and with layers that an
/// inference network lets share their input's buffer (dropout, flatten) or that it keeps
/// (batchnorm after a dense layer, after a convolution with an activation).
let models =
    [| "input 9x9x3\nconv 8 3x3 same nobias\nbatchnorm relu\ndropout 0.5\nflatten\ndense 5"
       "input 8x8x32\nconv 32 3x3 same\nbatchnorm\nrelu\nmaxpool 2\nflatten\ndense 6\nbatchnorm tanh\ndense 5"
       "input 16x16x32\nconv 64 7x7 nobias\nbatchnorm relu\nglobalavgpool\ndense 5"
       "input 7x7x16\nconv 64 5x5 s2 same nobias\nbatchnorm elu 0.5\nflatten\ndense 5"
       "input 6x6x8\nconv 8 3x3 same relu\nbatchnorm\nresidual (conv 8 3x3 same nobias; batchnorm relu; conv 8 3x3 same nobias; batchnorm)\nrelu\nflatten\ndense 5"
       "input 6x6x8\nconv 16 1x1 nobias\nbatchnorm relu\nconv 8 3x3 groups 2 nobias\nbatchnorm\nflatten\ndense 5" |]

let batch = 8

/// Random weights, and batchnorm statistics far from their initial 0 and 1 (a fold that ignored
/// them would pass otherwise).
let randomise (net: Network<float32>) (seed: int) =
    let rng = Random seed
    for p in net.Weights do
        for i in 0 .. p.Value.Length - 1 do
            p.Value[i] <-
                if p.Name.EndsWith "moving_variance" then float32 (0.2 + rng.NextDouble())
                elif p.Name.EndsWith "gamma" then float32 (0.5 + rng.NextDouble())
                else float32 (rng.NextDouble() - 0.5) * 0.6f
    for i in 0 .. net.Input.Length - 1 do net.Input[i] <- float32 (rng.NextDouble() * 2.0 - 1.0)

let inferenceOf (training: Network<float32>) (b: int) =
    let net = Network<float32>(training.Graph, b, 0, inference = true)
    Seq.iter2 (fun (a: Parameter<float32>) (b: Parameter<float32>) -> a.Value.CopyTo(b.Value, 0)) training.Weights net.Weights
    net

/// The inference network computes what the training network computes in inference mode, the
/// folded batchnorms included, on full and partial batches.
[<Cases 40>]
let ``an inference network's outputs equal the training network's in inference mode`` (model: byte) (seed: int) (rows0: byte) =
    let text = models[int model % models.Length]
    let training = Network<float32>(graph text, batch, 1)
    randomise training seed
    let rows = 1 + int rows0 % batch
    training.Rows <- rows
    training.Forward(false)
    let inference = inferenceOf training batch
    training.Input.Slice(0, rows * training.InputSize).CopyTo(inference.Input)
    inference.Rows <- rows
    inference.Forward(false)
    let expected, actual = training.Output.ToArray(), inference.Output.ToArray()
    for i in 0 .. rows * training.OutputSize - 1 do
        let e, a = float expected[i], float actual[i]
        if abs (e - a) > 2e-5 * (1.0 + abs e) then failwithf "%s\noutput %d: %g in inference, %g in training" text i a e

[<Fact>]
let ``the models above fold batchnorm into every lowering`` () =
    let lowerings =
        [ for text in models do
            let g = graph text
            let sharing = InferencePlan.Sharing g
            let nodes = Array.ofList g.Nodes
            for n in nodes do
                if n.Kind.IsBatchNormalization && sharing[n.Id] then
                    let plan = ColumnPlan.For(nodes[n.Inputs.Head], batch)
                    yield
                        if plan.Direct then "direct" elif plan.Winograd then "winograd" elif plan.Fft then "fft"
                        elif plan.Shifted then "shifted" elif plan.Elements = 0L then "1x1" else "im2col" ]
        |> Set.ofList
    Assert.Equal<Set<string>>(set [ "direct"; "winograd"; "fft"; "im2col"; "1x1" ], lowerings)

[<Fact>]
let ``a batchnorm is folded only into a linear, ungrouped convolution that nothing else reads`` () =
    let shared text = let g = graph text in [ for n in g.Nodes do if (InferencePlan.Sharing g)[n.Id] then yield n.Name ]
    Assert.Equal<string list>([ "batch_normalization" ], shared "input 4x4x2\nconv 3 3x3 nobias\nbatchnorm relu")
    // after an activation, a grouped convolution or a dense layer: kept
    Assert.Empty(shared "input 4x4x2\nconv 3 3x3 relu\nbatchnorm")
    Assert.Empty(shared "input 4x4x4\nconv 4 3x3 groups 2\nbatchnorm")
    Assert.Empty(shared "input 4\ndense 3\nbatchnorm")
    // the convolution's output also read by the addition (the skip path): kept; inside a block, folded
    Assert.Empty(shared "input 4x4x3\nconv 3 3x3 same\nresidual (batchnorm)")
    Assert.Equal<string list>([ "batch_normalization" ], shared "input 4x4x3\nresidual (conv 3 3x3 same; batchnorm)")
    // dropout and flatten pass through
    Assert.Equal<string list>([ "dropout"; "flatten" ], shared "input 4x4x2\ndropout 0.3\nflatten\ndense 2")

[<Fact>]
let ``an inference network holds no gradient buffers and refuses to train`` () =
    let training = Network<float32>(graph models[1], batch, 1)
    randomise training 3
    let net = inferenceOf training batch
    net.Forward(false)
    // an evaluation's loss (as the trainer computes it) writes no gradient either
    let loss = Losses.CrossEntropy(net, ReadOnlySpan(Array.zeroCreate<int> batch), batch, 0.1)
    Assert.True(Single.IsFinite loss)
    Assert.All(net.Layers, fun l -> Assert.False(l.Output.HasGradient, l.Node.Name))
    Assert.All(net.Weights, fun p -> Assert.False(p.HasGradient, p.Name))
    Assert.Throws<InvalidOperationException>(fun () -> net.Backward()) |> ignore
    Assert.Throws<InvalidOperationException>(fun () -> net.Forward(true)) |> ignore
    // the training network makes its gradients on its first backward pass
    Assert.False(training.Layers[1].Output.HasGradient)
    training.Forward(true)
    training.OutputGradient.Fill(1.0f)
    training.Backward()
    Assert.True(training.Layers[1].Output.HasGradient)

[<Fact>]
let ``the inference memory plan equals what an inference network allocates`` () =
    for text in Array.append models [| for name in [ "lenet"; "cifar10-bn"; "resnet18"; "inception-block" ] -> File.ReadAllText(Path.Combine(root, "models", name + ".cnn")) |] do
        let g = graphAtTestSize text
        let net = Network<float32>(g, 3, 1, inference = true)
        net.Forward(false)
        let plan = MemoryPlan.Estimate(g, 3, inference = true)
        let owned = net.Layers |> Seq.filter (fun l -> not l.SharesInput) |> Seq.sumBy (fun l -> int64 l.Output.Value.Length * 4L)
        Assert.Equal(owned, plan.Activations)
        Assert.Equal((net.Layers |> Seq.sumBy (fun l -> l.WorkspaceBytes)) + net.SharedWorkspaceBytes, plan.Workspace)
        Assert.Equal(net.Weights |> Seq.sumBy (fun p -> int64 p.Value.Length * 4L), plan.Parameters)
        Assert.Equal(0L, plan.OptimizerState)

/// Small models run a large batch in pieces that stay in cache; large ones keep the batch.
[<Fact>]
let ``the inference batch is the largest cache-sized piece of at least the minimum, else the batch`` () =
    let lenet = graph (File.ReadAllText(Path.Combine(root, "models", "lenet.cnn")))
    let perExample = InferencePlan.BytesPerExample lenet
    // LeNet: 784 + 4,704 + 1,176 + 1,600 + 400 + 120 + 84 + 10 values (flatten shares its input's)
    Assert.Equal((784L + 4704L + 1176L + 1600L + 400L + 120L + 84L + 10L) * 4L, perExample)
    // 118 fit in 4 MB: 256 as three equal pieces of 86 (86, 86, 84), not 118, 118 and a 20 costing 118
    let fits = int (InferencePlan.CacheBytes / perExample)
    Assert.Equal(118, fits)
    Assert.Equal(86, InferencePlan.Batch(lenet, 256))
    Assert.Equal(118, InferencePlan.Batch(lenet, 236))
    Assert.Equal(79, InferencePlan.Batch(lenet, 237))
    Assert.Equal(100, InferencePlan.Batch(lenet, 100))
    Assert.Equal(32, InferencePlan.Batch(lenet, 32))
    let cifar = graph (File.ReadAllText(Path.Combine(root, "models", "cifar10-bn.cnn")))
    Assert.Equal(256, InferencePlan.Batch(cifar, 256))
