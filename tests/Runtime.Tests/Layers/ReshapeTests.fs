module CnnDsl.Runtime.Tests.ReshapeTests

open FsCheck.Xunit
open CnnDsl.Runtime.Tests.TestSupport
open CnnDsl.Runtime.Tests.GradientCheck

[<Cases 100>]
let ``flatten and reshape pass gradients through`` (c0: byte) =
    let c = 1 + int c0 % 3
    assertGradients (sprintf "input 2x3x%d\nflatten\nreshape 3x2x%d\nconv 2 2x2" c c) 2
