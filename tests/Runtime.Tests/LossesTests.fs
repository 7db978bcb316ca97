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

[<Property(MaxTest = 10)>]
let ``cross-entropy on integer labels, fused with softmax and not`` (softmax: bool) (seed: int) =
    let labels = let r = Random seed in Array.init 3 (fun _ -> r.Next 4)
    let text = if softmax then "input 5\ndense 4 softmax" else "input 5\ndense 4 sigmoid"
    checkLoss text 3 (fun net -> Losses.CrossEntropy(net, ReadOnlySpan labels))
    true

[<Property(MaxTest = 10)>]
let ``dense-target losses`` (which: byte) (seed: int) =
    let r = Random seed
    let kinds = [| Loss.CrossEntropy, "softmax"; Loss.BinaryCrossEntropy, "sigmoid"; Loss.BinaryCrossEntropy, "tanh"
                   Loss.MeanSquaredError, "linear"; Loss.MeanAbsoluteError, "tanh" |]
    let kind, activation = kinds[int which % kinds.Length]
    let targets =
        if kind = Loss.CrossEntropy then Array.init 6 (fun i -> if i % 3 = r.Next 3 then 1.0 else 0.0)
        else Array.init 6 (fun _ -> r.NextDouble())
    // tanh's outputs may be negative: keep BCE's probabilities inside (0, 1) with a shift.
    let text = if activation = "tanh" && kind = Loss.BinaryCrossEntropy then "input 4\ndense 3 sigmoid\ndense 3 sigmoid" else sprintf "input 4\ndense 3 %s" activation
    checkLoss text 2 (fun net -> Losses.Compute(kind, net, ReadOnlySpan targets))
    true

[<Fact>]
let ``a label outside the classes is a clear error`` () =
    let net = network "input 2\ndense 3 softmax" 1
    net.Forward(true)
    let e = Assert.Throws<ArgumentException>(fun () -> Losses.CrossEntropy(net, ReadOnlySpan [| 7 |]) |> ignore)
    Assert.Contains("label 7", e.Message)
