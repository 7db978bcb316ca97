module CnnDsl.Runtime.Tests.MaxoutTests

open Xunit
open FsCheck.Xunit
open CnnDsl.Runtime.Tests.TestSupport
open CnnDsl.Runtime.Tests.GradientCheck

[<Cases 40>]
let ``maxout gradients match finite differences`` (pieces: byte) (units: byte) (image: bool) =
    let k, u = 1 + int pieces % 4, 1 + int units % 4
    let text = if image then sprintf "input 3x2x%d\nmaxout %d" (k * u) k else sprintf "input %d\nmaxout %d\ndense 2" (k * u) k
    assertGradients text 2

[<Fact>]
let ``maxout keeps the largest of each group of consecutive channels`` () =
    assertClose 0.0 [| 5.; -1.; 9. |] (forward "input 6\nmaxout 2" [| 1.; 5.; -3.; -1.; 9.; 2. |])
    let net = network "input 1x1x4\nmaxout 4" 1
    copyFrom [| 0.5; 3.0; -2.0; 1.0 |] net.Input
    net.Forward(true)
    net.OutputGradient[0] <- 2.0
    net.Backward()
    assertClose 0.0 [| 0.; 2.; 0.; 0. |] (net.InputGradient.ToArray())

[<Fact>]
let ``maxout ties route the gradient to the first channel of the group`` () =
    let net = network "input 1x1x4\nmaxout 4" 1
    copyFrom [| 0.5; 3.0; 3.0; 1.0 |] net.Input
    net.Forward(true)
    net.OutputGradient[0] <- 2.0
    net.Backward()
    assertClose 0.0 [| 0.; 2.; 0.; 0. |] (net.InputGradient.ToArray())
