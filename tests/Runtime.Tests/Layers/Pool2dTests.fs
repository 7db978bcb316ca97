module CnnDsl.Runtime.Tests.Pool2dTests

open System
open Xunit
open FsCheck.Xunit
open CnnDsl.Graph
open CnnDsl.Runtime
open CnnDsl.Runtime.Tests.TestSupport
open CnnDsl.Runtime.Tests.GradientCheck

[<Property(MaxTest = 40)>]
let ``pooling gradients match finite differences`` (kind: byte) (k0: byte) (s0: byte) (mode: byte) (extra: byte) (c0: byte) =
    let kinds = [| "maxpool"; "avgpool"; "minpool" |]
    let k, s = 1 + int k0 % 3, 1 + int s0 % 3
    let n = k + int extra % 4
    let padding = match int mode % 3 with 0 -> "" | 1 -> "same" | _ -> "p1"
    let padding = if padding = "p1" && k < 2 then "" else padding
    assertGradients (sprintf "input %dx%dx%d\n%s %dx%d s%d %s" n (n + 1) (1 + int c0 % 3) kinds[int kind % 3] k k s padding) 2

let private seed000 = [| 1.;5.;3.;7.; 7.;3.;9.;2.; 3.;5.;8.;4.; 8.;7.;3.;5. |]

[<Fact>]
let ``seed 002: max pooling examples`` () =
    assertClose 0.0 [| 123.; 253.; 187.; 165. |]
        (forward "input 4x4x1\nmaxpool 2" [| 4.;123.;1.;34.; 56.;99.;222.;253.; 45.;122.;165.;12.; 21.;187.;133.;124. |])
    assertClose 0.0 [| 9.; 6.; 9.; 8. |] (forward "input 4x4x1\nmaxpool 2" [| 1.;3.;6.;2.; 9.;5.;6.;5.; 9.;1.;1.;2.; 0.;2.;8.;2. |])

[<Fact>]
let ``seed 000: max pooling forward and backward with MSE against ones`` () =
    let net = network "input 4x4x1\nmaxpool 2 s2" 1
    copyFrom seed000 net.Input
    net.Forward(true)
    assertClose 0.0 [| 7.; 9.; 8.; 8. |] (net.Output.ToArray())
    Assert.Equal(49.5, Losses.Compute(Loss.MeanSquaredError, net, ReadOnlySpan (Array.create 4 1.0)), 12)
    assertClose 1e-12 [| 3.; 4.; 3.5; 3.5 |] (net.OutputGradient.ToArray())
    net.Backward()
    // routed to the arg-max cells only: 7 (row 1, col 0), 9 (row 1, col 2), 8 (row 3, col 0), 8 (row 2, col 2)
    assertClose 1e-12 [| 0.;0.;0.;0.; 3.;0.;4.;0.; 0.;0.;3.5;0.; 3.5;0.;0.;0. |] (net.InputGradient.ToArray())

[<Fact>]
let ``seed 000: average pooling forward and backward with MSE against ones`` () =
    let net = network "input 4x4x1\navgpool 2 s2" 1
    copyFrom seed000 net.Input
    net.Forward(true)
    assertClose 1e-12 [| 4.; 5.25; 5.75; 5. |] (net.Output.ToArray())
    Assert.Equal(16.40625, Losses.Compute(Loss.MeanSquaredError, net, ReadOnlySpan (Array.create 4 1.0)), 12)
    net.Backward()
    let block r c = [| 0.375; 0.53125; 0.59375; 0.5 |][(r / 2) * 2 + c / 2]
    assertClose 1e-12 (Array.init 16 (fun i -> block (i / 4) (i % 4))) (net.InputGradient.ToArray())

/// The float path takes Vector<float>.Count channels at a time (fewer channels: a pixel's in one
/// vector, spilling into the next pixel's); the double path (which the gradient checks above run)
/// one. Both must choose the same cells and route the same gradients.
[<Property(MaxTest = 30)>]
let ``vectorised float pooling chooses the cells the scalar path chooses`` (kind: byte) (k0: byte) (s0: byte) (same: bool) (c0: byte) (seed: int) =
    let op = [| "maxpool"; "minpool"; "avgpool" |][int kind % 3]
    let k, s, c = 1 + int k0 % 3, 1 + int s0 % 2, 1 + int c0 % 20
    let text = sprintf "input 7x6x%d\n%s %dx%d s%d %s" c op k k s (if same then "same" else "")
    let g = graph text
    let single = Network<float32>(g, 2, 1, true)
    let twice = Network<double>(g, 2, 1, true)
    let rng = Random seed
    let x = Array.init single.Input.Length (fun _ -> float32 (rng.NextDouble() - 0.5))
    let dy = Array.init single.OutputSize (fun _ -> rng.NextDouble() - 0.5) |> Array.replicate 2 |> Array.concat
    for i in 0 .. x.Length - 1 do single.Input[i] <- x[i]; twice.Input[i] <- float x[i]
    single.Forward(true); twice.Forward(true)
    assertClose 1e-6 (twice.Output.ToArray()) (single.Output.ToArray() |> Array.map float)
    for i in 0 .. dy.Length - 1 do single.OutputGradient[i] <- float32 dy[i]; twice.OutputGradient[i] <- dy[i]
    single.Backward(); twice.Backward()
    assertClose 1e-6 (twice.InputGradient.ToArray()) (single.InputGradient.ToArray() |> Array.map float)
