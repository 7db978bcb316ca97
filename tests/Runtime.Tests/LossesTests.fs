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

[<Property(MaxTest = 100)>]
let ``cross-entropy on integer labels, fused with softmax and not`` (softmax: bool) (seed: int) =
    let labels = let r = Random seed in Array.init 3 (fun _ -> r.Next 4)
    let text = if softmax then "input 5\ndense 4 softmax" else "input 5\ndense 4 sigmoid"
    checkLoss text 3 (fun net -> Losses.CrossEntropy(net, ReadOnlySpan labels))
    true

[<Property(MaxTest = 100)>]
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
      targets: float[][]; labels: int[] }

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
      targets = targets; labels = (if loss = "sparse_ce" then Array.init batch (fun _ -> rng.Next units) else [||]) }

/// Our loss, input gradient and dense layer's gradients for one case, in double precision.
let private ours (c: LossCase) =
    let act = if c.alpha > 0.0 then sprintf "%s %g" c.activation c.alpha else c.activation
    let net = network (sprintf "input %d\ndense %d %s" inputs units act) batch
    copyFrom (Array.concat c.x) net.Input
    let dense = net.Layers[1] :?> Layers.Dense<float>
    (Array.concat c.kernel).CopyTo(dense.Kernel.Value, 0)
    c.bias.CopyTo(dense.Bias.Value, 0)
    net.Forward(true)
    let value =
        match c.loss with
        | "sparse_ce" -> Losses.CrossEntropy(net, ReadOnlySpan c.labels)
        | name ->
            let kind = match name with "ce" -> Loss.CrossEntropy | "bce" -> Loss.BinaryCrossEntropy | "mse" -> Loss.MeanSquaredError | _ -> Loss.MeanAbsoluteError
            Losses.Compute(kind, net, ReadOnlySpan (Array.concat c.targets))
    net.Backward()
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
