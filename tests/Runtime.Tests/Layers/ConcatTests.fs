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

/// Every pixel of every image, and an activation on the joined channels (forward and backward).
[<Fact>]
let ``concat joins every pixel of a 2x2 map, then applies its activation`` () =
    assertClose 0.0 [| 0.; 0.; 2.; 2.; 0.; 0.; 4.; 4. |] (forward "input 2x2x1\nconcat (linear | linear) relu" [| -1.; 2.; -3.; 4. |])
    assertGradients "input 2x2x2\nconcat (conv 2 1x1 | conv 1 1x1) tanh" 2 |> ignore
