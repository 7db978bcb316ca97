module CnnDsl.Runtime.Tests.BatchNormTests

open FsCheck.Xunit
open Xunit
open CnnDsl.Runtime
open CnnDsl.Runtime.Tests.TestSupport
open CnnDsl.Runtime.Tests.GradientCheck

[<Property(MaxTest = 20)>]
let ``batchnorm gradients match finite differences in training`` (h0: byte) (c0: byte) (b0: byte) (relu: bool) =
    assertGradients (sprintf "input %dx2x%d\nbatchnorm %s" (1 + int h0 % 3) (1 + int c0 % 3) (if relu then "relu" else "")) (2 + int b0 % 2)

[<Fact>]
let ``batchnorm normalises each channel over the batch, and inference uses the moving statistics`` () =
    let net = network "input 1x1x1\nbatchnorm" 4
    copyFrom [| 1.; 2.; 3.; 4. |] net.Input
    net.Forward(true)
    let std = sqrt (1.25 + 0.001)
    assertClose 1e-12 [| -1.5 / std; -0.5 / std; 0.5 / std; 1.5 / std |] (net.Output.ToArray())
    // moving = 0.99 * initial + 0.01 * batch (Keras's momentum): mean 0.025, variance 0.99 + 0.0125
    net.Forward(false)
    let mean, variance = 0.025, 0.99 + 0.0125
    assertClose 1e-12 [| for x in 1. .. 4. -> (x - mean) / sqrt (variance + 0.001) |] (net.Output.ToArray())

[<Property(MaxTest = 10)>]
let ``batchnorm gradients with enough channels for the vector path and a tail`` (c0: byte) =
    assertGradients (sprintf "input 2x2x%d\nbatchnorm" (5 + int c0 % 8)) 2

/// The float path runs whole vectors of 8 (or 16) over a channel pattern of lcm(C, W) values, with
/// a scalar tail; the double path 4 at a time. Both must give the same outputs and gradients, for
/// channel counts below, at and between vector widths (with and without a fused ReLU).
[<Property(MaxTest = 30)>]
let ``float batchnorm equals double batchnorm for any channel count`` (c0: byte) (h0: byte) (relu: bool) (seed: int) =
    let c, h = 1 + int c0 % 20, 1 + int h0 % 3
    let g = graph (sprintf "input %dx3x%d\nbatchnorm %s\nconv 2 1x1" h c (if relu then "relu" else ""))
    let single = Network<float32>(g, 3, 1, true)
    let twice = Network<double>(g, 3, 1, true)
    assertFloatMatchesDouble single twice seed 1 1e-4
    true
