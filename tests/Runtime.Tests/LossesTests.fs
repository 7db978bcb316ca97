module CnnDsl.Runtime.Tests.LossesTests

open System
open Xunit
open FsCheck.Xunit
open CnnDsl.Graph
open CnnDsl.Runtime
open CnnDsl.Runtime.Tests.TestSupport

/// d loss / d input by the losses' own gradients (fused where they fuse) against finite differences.
let private checkLoss (text: string) (batch: int) (loss: Network<float> -> float) =
    let net = network text batch
    let rng = Random 3
    copyFrom (randomArray rng net.Input.Length) net.Input
    net.Forward(true)
    loss net |> ignore
    net.Backward()
    let analytic = net.InputGradient.ToArray()
    for i in 0 .. analytic.Length - 1 do
        let original = net.Input[i]
        let at v =
            net.Input[i] <- v
            net.Forward(true)
            loss net
        let numerical = (at (original + 1e-6) - at (original - 1e-6)) / 2e-6
        net.Input[i] <- original
        let error = abs (analytic[i] - numerical) / max 1.0 (abs numerical)
        Assert.True(error < 1e-6, sprintf "input %d: analytic %g, numerical %g" i analytic[i] numerical)

[<Cases 100>]
let ``cross-entropy on integer labels, fused with softmax and not`` (softmax: bool) (seed: int) =
    let labels = let r = Random seed in Array.init 3 (fun _ -> r.Next 4)
    let text = if softmax then "input 5\ndense 4 softmax" else "input 5\ndense 4 sigmoid"
    checkLoss text 3 (fun net -> Losses.CrossEntropy(net, ReadOnlySpan labels))
    true

[<Cases 100>]
let ``dense-target losses`` (which: byte) (seed: int) =
    let r = Random seed
    // each loss with its fused activation and with one it does not fuse with (softmax's outputs are
    // probabilities too, so binary cross-entropy after softmax runs the non-fused gradient)
    let kinds = [| Loss.CrossEntropy, "softmax"; Loss.CrossEntropy, "sigmoid"; Loss.BinaryCrossEntropy, "sigmoid"
                   Loss.BinaryCrossEntropy, "softmax"; Loss.MeanSquaredError, "linear"; Loss.MeanAbsoluteError, "tanh" |]
    let kind, activation = kinds[int which % kinds.Length]
    let targets =
        if kind = Loss.CrossEntropy then Array.init 6 (fun i -> if i % 3 = r.Next 3 then 1.0 else 0.0)
        else Array.init 6 (fun _ -> r.NextDouble())
    let text = sprintf "input 4\ndense 3 %s" activation
    checkLoss text 2 (fun net -> Losses.Compute(kind, net, ReadOnlySpan targets))
    true

[<Fact>]
let ``a label outside the classes is a clear error`` () =
    let net = network "input 2\ndense 3 softmax" 1
    net.Forward(true)
    let e = Assert.Throws<ArgumentException>(fun () -> Losses.CrossEntropy(net, ReadOnlySpan [| 7 |]) |> ignore)
    Assert.Contains("label 7", e.Message)

// ---- every loss, with and without its fused activation, against PyTorch (oracles/losses.py) ----

/// A case as the reference script reads it: a dense layer, its activation, the loss and targets.
type LossCase =
    { loss: string; activation: string; alpha: float
      x: float[][]; kernel: float[][]; bias: float[]
      targets: float[][]; labels: int[]
      /// Keras's label_smoothing (sparse cross-entropy only; 0: none)
      label_smoothing: float }

let private batch, inputs, units = 3, 4, 3

/// Each loss with its fused activation (softmax for both cross-entropies, sigmoid for binary
/// cross-entropy) and with others whose outputs it accepts; MSE and MAE fuse with nothing.
let private combinations =
    [ for a in [ "softmax"; "sigmoid" ] do yield "sparse_ce", a; yield "ce", a
      for a in [ "sigmoid"; "softmax" ] do yield "bce", a
      for a in [ "linear"; "relu"; "sigmoid"; "tanh"; "softmax"; "elu"; "leakyrelu" ] do yield "mse", a; yield "mae", a ]

let private lossCase (rng: Random) (loss: string) (activation: string) =
    let matrix r c scale = Array.init r (fun _ -> Array.init c (fun _ -> scale * (rng.NextDouble() * 2.0 - 1.0)))
    let alpha = if activation = "elu" then 0.7 elif activation = "leakyrelu" then 0.2 else 0.0
    let targets =
        match loss with
        // soft targets whose rows do not sum to 1 (the fused gradient is y * sum(t) - t), and one-hot rows
        | "ce" -> Array.init batch (fun b -> if b = 0 then Array.init units (fun _ -> rng.NextDouble()) else Array.init units (fun j -> if j = rng.Next units then 1.0 else 0.0))
        | "sparse_ce" -> [||]
        | _ -> matrix batch units 1.0 |> Array.map (Array.map abs)
    { loss = loss; activation = activation; alpha = alpha
      x = matrix batch inputs 1.0; kernel = matrix inputs units 0.7; bias = Array.init units (fun _ -> 0.3 * (rng.NextDouble() - 0.5))
      targets = targets; labels = (if loss = "sparse_ce" then Array.init batch (fun _ -> rng.Next units) else [||])
      label_smoothing = 0.0 }

let private kindOf name =
    match name with "ce" -> Loss.CrossEntropy | "bce" -> Loss.BinaryCrossEntropy | "mse" -> Loss.MeanSquaredError | _ -> Loss.MeanAbsoluteError

/// The case's dense layer on its first `examples` examples (a network of that batch), run
/// forward, and the loss with `count` real rows (-1: all); returns the loss and the network.
let private lossOf (c: LossCase) (examples: int) (count: int) =
    let act = if c.alpha > 0.0 then sprintf "%s %g" c.activation c.alpha else c.activation
    let net = network (sprintf "input %d\ndense %d %s" inputs units act) examples
    copyFrom (Array.concat c.x[.. examples - 1]) net.Input
    let dense = net.Layers[1] :?> Layers.Dense<float>
    (Array.concat c.kernel).CopyTo(dense.Kernel.Value, 0)
    c.bias.CopyTo(dense.Bias.Value, 0)
    net.Forward(true)
    let value =
        match c.loss with
        | "sparse_ce" -> Losses.CrossEntropy(net, ReadOnlySpan c.labels[.. examples - 1], count, c.label_smoothing)
        | name -> Losses.Compute(kindOf name, net, ReadOnlySpan (Array.concat c.targets[.. examples - 1]), count)
    value, net

/// Our loss, input gradient and dense layer's gradients for one case, in double precision.
let private ours (c: LossCase) =
    let value, net = lossOf c batch -1
    net.Backward()
    let dense = net.Layers[1] :?> Layers.Dense<float>
    value, net.InputGradient.ToArray(), Array.copy dense.Kernel.Gradient, Array.copy dense.Bias.Gradient

[<Fact>]
let ``every loss with and without its fused activation equals PyTorch's, value and gradients`` () =
    let rng = Random 15
    let cases = [| for loss, activation in combinations do for _ in 1 .. 2 -> lossCase rng loss activation |]
    let answer = oracle "losses.py" {| cases = cases |}
    let failures =
        [ for c, r in Seq.zip cases (answer.GetProperty("results").EnumerateArray()) do
            let value, dx, dw, db = ours c
            let name = sprintf "%s after %s" c.loss c.activation
            try
                assertRelative 1e-5 1e-9 (name + ": loss") [| r.GetProperty("loss").GetDouble() |] [| value |]
                assertRelative 1e-5 1e-9 (name + ": input gradient") (numbers (r.GetProperty "input_gradient")) dx
                assertRelative 1e-5 1e-9 (name + ": kernel gradient") (numbers (r.GetProperty "kernel_gradient")) dw
                assertRelative 1e-5 1e-9 (name + ": bias gradient") (numbers (r.GetProperty "bias_gradient")) db
            with e -> yield e.Message ]
    if not failures.IsEmpty then failwith (String.concat "\n\n" failures)

[<Fact>]
let ``label smoothing's loss and gradients equal PyTorch's cross_entropy(label_smoothing=), fused with softmax and not`` () =
    let rng = Random 19
    let cases =
        [| for a in [ 0.1; 0.35; 1.0 ] do
             for activation in [ "softmax"; "sigmoid" ] -> { lossCase rng "sparse_ce" activation with label_smoothing = a } |]
    let answer = oracle "losses.py" {| cases = cases |}
    for c, r in Seq.zip cases (answer.GetProperty("results").EnumerateArray()) do
        let value, dx, dw, db = ours c
        let name = sprintf "smoothing %g after %s" c.label_smoothing c.activation
        assertRelative 1e-5 1e-9 (name + ": loss") [| r.GetProperty("loss").GetDouble() |] [| value |]
        assertRelative 1e-5 1e-9 (name + ": input gradient") (numbers (r.GetProperty "input_gradient")) dx
        assertRelative 1e-5 1e-9 (name + ": kernel gradient") (numbers (r.GetProperty "kernel_gradient")) dw
        assertRelative 1e-5 1e-9 (name + ": bias gradient") (numbers (r.GetProperty "bias_gradient")) db
    // and smoothing changes the loss (the test above would pass for an ignored argument only if the oracle ignored it too)
    let plain = fst (lossOf { cases[0] with label_smoothing = 0.0 } batch -1)
    Assert.True(abs (plain - fst (lossOf cases[0] batch -1)) > 1e-3)

[<Cases 50>]
let ``label-smoothed cross-entropy's gradient matches finite differences`` (softmax: bool) (seed: int) =
    let labels = let r = Random seed in Array.init 3 (fun _ -> r.Next 4)
    let text = if softmax then "input 5\ndense 4 softmax" else "input 5\ndense 4 sigmoid"
    checkLoss text 3 (fun net -> Losses.CrossEntropy(net, ReadOnlySpan labels, -1, 0.2))
    true

// ---- what the values above do not reach: partial batches, saturated outputs, bad arguments ----

[<Fact>]
let ``with a partial batch the loss and its gradient are the real rows' alone, as a network of that many rows`` () =
    let rng = Random 7
    for loss, activation in combinations do
        let c = lossCase rng loss activation
        let full, _ = lossOf c batch -1
        // rows 2 and 3 given as padding (Keras's partial last batch): the loss and its gradient
        // are those of the first row alone (a network of batch 1); the padding rows get none
        let partial, net = lossOf c batch 1
        let alone, single = lossOf c 1 -1
        let name = sprintf "%s after %s" loss activation
        Assert.True(abs (partial - alone) <= 1e-12 * max 1.0 (abs alone), sprintf "%s: partial %g, first row alone %g" name partial alone)
        Assert.True(abs (full - partial) > 1e-9, sprintf "%s: the partial batch's loss is the whole batch's, %g" name full)
        let per = single.OutputGradient.Length
        assertClose 1e-12 (single.OutputGradient.ToArray()) (net.OutputGradient.Slice(0, per).ToArray())
        Assert.True(net.OutputGradient.Slice(per).ToArray() |> Array.forall (fun g -> g = 0.0), sprintf "%s: padding rows have a gradient" name)

[<Fact>]
let ``saturated probabilities are clipped to [1e-7, 1 - 1e-7] before the logarithm, as Keras clips them`` () =
    // logits (50, 0): softmax gives (1, 2e-22) and sigmoid (1, 0.5), exactly 1 in double
    let saturated activation =
        let net = network (sprintf "input 1\ndense 2 %s" activation) 1
        net.Input[0] <- 1.0
        let dense = net.Layers[1] :?> Layers.Dense<float>
        [| 50.0; 0.0 |].CopyTo(dense.Kernel.Value, 0)
        net.Forward(true)
        Assert.Equal(1.0, net.Output[0])
        net
    let eps = 1e-7
    let near (expected: float) (actual: float) = Assert.True(abs (actual - expected) <= 1e-9 * abs expected, sprintf "expected %.12g, got %.12g" expected actual)
    near (-log (1.0 - eps)) (Losses.CrossEntropy(saturated "softmax", ReadOnlySpan [| 0 |]))
    near (-log eps) (Losses.CrossEntropy(saturated "softmax", ReadOnlySpan [| 1 |]))
    near (-log (1.0 - eps)) (Losses.Compute(Loss.CrossEntropy, saturated "softmax", ReadOnlySpan [| 1.0; 0.0 |]))
    // binary: target 0 on an output of 1 costs -log(eps), target 1 costs -log(1 - eps); the second output is 0.5
    near ((-log eps - log 0.5) / 2.0) (Losses.Compute(Loss.BinaryCrossEntropy, saturated "sigmoid", ReadOnlySpan [| 0.0; 1.0 |]))
    near ((-log (1.0 - eps) - log 0.5) / 2.0) (Losses.Compute(Loss.BinaryCrossEntropy, saturated "sigmoid", ReadOnlySpan [| 1.0; 0.0 |]))

[<Fact>]
let ``a label equal to the number of classes and targets of the wrong size are clear errors`` () =
    let net = network "input 2\ndense 3 softmax" 2
    net.Forward(true)
    let e = Assert.Throws<ArgumentException>(fun () -> Losses.CrossEntropy(net, ReadOnlySpan [| 0; 3 |]) |> ignore)
    Assert.Equal("label 3 of example 1 is outside 0..2", e.Message)
    let e = Assert.Throws<ArgumentException>(fun () -> Losses.Compute(Loss.MeanSquaredError, net, ReadOnlySpan (Array.zeroCreate<float> 5)) |> ignore)
    Assert.Equal("5 targets for 6 outputs", e.Message)

[<Fact>]
let ``label smoothing outside [0, 1] or NaN is refused`` () =
    let net = network "input 3\ndense 3 softmax" 2
    for a in [ -0.1; 1.1; nan ] do
        Assert.Throws<ArgumentOutOfRangeException>(fun () -> Losses.CrossEntropy(net, ReadOnlySpan [| 0; 1 |], 2, a) |> ignore) |> ignore
    Losses.CrossEntropy(net, ReadOnlySpan [| 0; 1 |], 2, 1.0) |> ignore

[<Fact>]
let ``a partial batch's padding rows get a zero gradient, even after a full batch wrote theirs`` () =
    let net = network "input 3\ndense 3 softmax" 4
    copyFrom (randomArray (Random 2) net.Input.Length) net.Input
    net.Forward(true)
    let labels = [| 0; 1; 2; 1 |]
    let targets = Array.init 12 (fun i -> if i % 3 = labels[i / 3] then 1.0 else 0.0)
    // each loss over all 4 rows, then over the first 2
    let losses : (int -> unit) list =
        [ (fun count -> Losses.CrossEntropy(net, ReadOnlySpan labels, count) |> ignore)
          (fun count -> Losses.CrossEntropy(net, ReadOnlySpan labels, count, 0.1) |> ignore)
          (fun count -> Losses.Compute(Loss.MeanSquaredError, net, ReadOnlySpan targets, count) |> ignore) ]
    for loss in losses do
        loss 4
        Assert.True(net.OutputGradient.Slice(6).ToArray() |> Array.exists ((<>) 0.0))
        loss 2
        Assert.Equal<float[]>(Array.zeroCreate 6, net.OutputGradient.Slice(6).ToArray())

[<Fact>]
let ``smoothed cross-entropy clips probabilities to [eps, 1 - eps], as Keras`` () =
    // A linear output (not fused): the outputs are taken as the probabilities as they are.
    let net = network "input 3\ndense 3" 1
    // a zero kernel and bias (1, 0, 0): the outputs are (1, 0, 0)
    for p in net.Parameters do
        Array.Clear p.Value
        if p.Name.EndsWith "/bias" then p.Value[0] <- 1.0
    net.Forward(false)
    Assert.Equal<float[]>([| 1.0; 0.0; 0.0 |], net.Output.ToArray())
    let eps, a = 1e-7, 0.3
    let t = [| 1.0 - a + a / 3.0; a / 3.0; a / 3.0 |]
    let expected = -(t[0] * log (1.0 - eps) + t[1] * log eps + t[2] * log eps)
    Assert.Equal(expected, Losses.CrossEntropy(net, ReadOnlySpan [| 0 |], 1, a), 12)
    // and the gradient of the clipped first output is -t / p at p = 1 - eps
    Assert.Equal(-t[0] / (1.0 - eps), net.OutputGradient[0], 9)
