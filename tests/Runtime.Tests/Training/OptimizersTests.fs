module CnnDsl.Runtime.Tests.OptimizersTests

open Xunit
open CnnDsl.Graph
open CnnDsl.Runtime
open CnnDsl.Runtime.Training

let private parameter (w: float32[]) (g: float32[]) =
    let p = Parameter<float32>("d/kernel", [| w.Length |], true)
    w.CopyTo(p.Value, 0)
    g.CopyTo(p.Gradient, 0)
    p

[<Fact>]
let ``adam's first steps follow Keras's formula`` () =
    let p = parameter (Array.create 11 1.0f) (Array.create 11 0.5f)
    let adam = Optimizers(Optimizer.Adam (0.1, 0.9, 0.999, 1e-7), [ p ])
    adam.Update()
    // t = 1: m = 0.05, v = 0.00025, lr_t = 0.1 * sqrt(0.001) / 0.1; w = 1 - lr_t * m / (sqrt v + eps)
    let lrT = 0.1 * sqrt 0.001 / 0.1
    let expected = 1.0 - lrT * 0.05 / (sqrt 0.00025 + 1e-7)
    Assert.All(p.Value, fun v -> Assert.Equal(expected, float v, 5))

[<Fact>]
let ``sgd with momentum and nesterov`` () =
    let p = parameter [| 1.0f |] [| 2.0f |]
    let sgd = Optimizers(Optimizer.Sgd (0.1, 0.5, false), [ p ])
    sgd.Update() // m = -0.2, w = 0.8
    sgd.Update() // m = 0.5 * -0.2 - 0.2 = -0.3, w = 0.5
    Assert.Equal(0.5f, p.Value[0], 5)
    let q = parameter [| 1.0f |] [| 2.0f |]
    Optimizers(Optimizer.Sgd (0.1, 0.5, true), [ q ]).Update() // m = -0.2, w = 1 + 0.5 * -0.2 - 0.2
    Assert.Equal(0.7f, q.Value[0], 5)

[<Fact>]
let ``frozen parameters are not updated`` () =
    let p = Parameter<float32>("c/kernel", [| 2 |], false)
    p.Gradient[0] <- 1.0f
    Optimizers(Optimizer.Sgd (1.0, 0.0, false), [ p ]).Update()
    Assert.Equal(0.0f, p.Value[0])
