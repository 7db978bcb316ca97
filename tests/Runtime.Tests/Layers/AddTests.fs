module CnnDsl.Runtime.Tests.AddTests

open FsCheck.Xunit
open CnnDsl.Runtime.Tests.TestSupport
open CnnDsl.Runtime.Tests.GradientCheck

[<Cases 100>]
let ``residual sums send the gradient down both paths`` (c0: byte) (project: bool) =
    let c = 1 + int c0 % 3
    let text =
        if project then sprintf "input 5x5x%d\nconv 2 1x1\nresidual (conv 3 3x3 s2 same; batchnorm relu) project relu" c
        else sprintf "input 5x5x%d\nconv 2 1x1\nresidual (conv 2 3x3 same relu; conv 2 3x3 same) relu" c
    assertGradients text 2
