module CnnDsl.Runtime.Tests.GlobalPool2dTests

open FsCheck.Xunit
open System
open Xunit
open CnnDsl.Runtime.Tests.TestSupport
open CnnDsl.Runtime.Tests.GradientCheck

[<Cases 100>]
let ``global pooling gradients match finite differences`` (kind: byte) (h0: byte) (c0: byte) =
    let kinds = [| "globalavgpool"; "globalmaxpool"; "globalminpool" |]
    assertGradients (sprintf "input %dx3x%d\n%s" (1 + int h0 % 4) (1 + int c0 % 4) kinds[int kind % 3]) 2

[<Fact>]
let ``global average and max of a 2x2 map`` () =
    assertClose 1e-12 [| 2.5; 10. |] (forward "input 2x2x2\nglobalavgpool" [| 1.;10.; 2.;20.; 3.;0.; 4.;10. |])
    assertClose 0.0 [| 4.; 20. |] (forward "input 2x2x2\nglobalmaxpool" [| 1.;10.; 2.;20.; 3.;0.; 4.;10. |])

/// Values, not only gradients: a gradient check passes a max taken for a min, since forward and
/// backward would agree. On a tie the first cell wins (its gradient goes there), as in pooling.
[<Fact>]
let ``global min of a 2x2 map, and ties route the gradient to the first cell`` () =
    assertClose 0.0 [| 1.; 0. |] (forward "input 2x2x2\nglobalminpool" [| 1.;10.; 2.;20.; 3.;0.; 4.;10. |])
    for op, x in [ "globalmaxpool", [| 1.; 3.; 3.; 2. |]; "globalminpool", [| 3.; 1.; 1.; 2. |] ] do
        let net = network (sprintf "input 2x2x1\n%s" op) 1
        copyFrom x net.Input
        net.Forward(true)
        net.OutputGradient[0] <- 1.0
        net.Backward()
        assertClose 0.0 [| 0.; 1.; 0.; 0. |] (net.InputGradient.ToArray())
