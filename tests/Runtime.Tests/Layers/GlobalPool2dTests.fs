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
