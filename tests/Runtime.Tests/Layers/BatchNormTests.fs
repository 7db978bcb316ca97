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
