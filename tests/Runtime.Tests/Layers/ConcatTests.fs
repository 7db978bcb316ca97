module CnnDsl.Runtime.Tests.ConcatTests

open FsCheck.Xunit
open Xunit
open CnnDsl.Runtime.Tests.TestSupport
open CnnDsl.Runtime.Tests.GradientCheck

[<Cases 100>]
let ``concatenated branches get their own channels' gradients`` (a: byte) (b: byte) =
    assertGradients (sprintf "input 4x4x2\nconv 2 1x1\nconcat (conv %d 1x1 | conv %d 3x3 same tanh | maxpool 3 s1 same)" (1 + int a % 3) (1 + int b % 3)) 2

[<Fact>]
let ``concat joins channels pixel by pixel`` () =
    assertClose 0.0 [| 1.; 1.; 2.; 2. |] (forward "input 1x2x1\nconcat (linear | linear)" [| 1.; 2. |])
