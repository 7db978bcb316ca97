/// The one gradient check that serves every layer (as Caffe's GradientChecker does): every
/// analytic gradient of a network (input and each parameter tensor) against central finite
/// differences in double precision, with the loss L = sum(output * R) for a fixed random R.
module CnnDsl.Runtime.Tests.GradientCheck

open System
open CnnDsl.Runtime
open CnnDsl.Runtime.Tests.TestSupport

let epsilon = 1e-6
/// |analytic - numerical| / max(1, |analytic|, |numerical|); tight enough to catch an index off by one.
let tolerance = 1e-6

type TensorError = { Tensor: string; Worst: float; Index: int; Analytic: float; Numerical: float }

/// Worst error per tensor, checking at most `samples` elements of each (all of a small one).
let check (net: Network<double>) (seed: int) (samples: int) : TensorError list =
    let rng = Random seed
    // Random parameters (not zero biases): a zero bias on a padded cell would put relu
    // exactly on its kink, where finite differences and the derivative disagree.
    for p in net.Parameters do
        copyFrom (randomArray rng p.Value.Length) (Span p.Value)
    let input = randomArray rng net.Input.Length
    copyFrom input net.Input
    let weights = randomArray rng net.Output.Length
    let loss () =
        net.Forward(true)
        let out = net.Output
        let mutable sum = 0.0
        for i in 0 .. out.Length - 1 do sum <- sum + out[i] * weights[i]
        sum
    loss () |> ignore
    copyFrom weights net.OutputGradient
    net.OutputLayer.ActivationFusedIntoLoss <- false
    net.Backward()
    let tensors =
        [ yield "input", (fun () -> net.Input.ToArray()), (fun (i: int) (v: float) -> net.Input[i] <- v), net.InputGradient.ToArray()
          for p in net.Parameters do
              if p.Trainable then
                  yield p.Name, (fun () -> p.Value), (fun i v -> p.Value[i] <- v), Array.copy p.Gradient ]
    [ for name, values, set, analytic in tensors do
        let n = analytic.Length
        let indices = if n <= samples then [ 0 .. n - 1 ] else List.init samples (fun _ -> rng.Next n) |> List.distinct
        let errors =
            [ for i in indices do
                let original = (values ()).[i]
                set i (original + epsilon)
                let plus = loss ()
                set i (original - epsilon)
                let minus = loss ()
                set i original
                let numerical = (plus - minus) / (2.0 * epsilon)
                let a = analytic[i]
                let error = abs (a - numerical) / (max 1.0 (max (abs a) (abs numerical)))
                yield { Tensor = name; Worst = error; Index = i; Analytic = a; Numerical = numerical } ]
        if not errors.IsEmpty then yield errors |> List.maxBy (fun e -> e.Worst) ]

/// Fails, naming the tensor and the element, when any gradient is off; runs on every backend.
let assertGradients (text: string) (batch: int) =
    onEveryBackend (fun () ->
        let net = Network<double>(graph text, batch, 7, true)
        for e in check net 11 24 do
            if e.Worst > tolerance then
                failwithf "%s: gradient of %s[%d] is %.10g, finite differences give %.10g (error %.2e)\nmodel:\n%s"
                    e.Tensor e.Tensor e.Index e.Analytic e.Numerical e.Worst text)
    true
