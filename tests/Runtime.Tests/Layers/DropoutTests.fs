module CnnDsl.Runtime.Tests.DropoutTests

open FsCheck.Xunit
open Xunit
open CnnDsl.Runtime.Tests.TestSupport
open CnnDsl.Runtime.Tests.GradientCheck

[<Cases 100>]
let ``dropout gradients follow its mask`` (r0: byte) =
    assertGradients (sprintf "input 20\ndropout 0.%d\ndense 3" (1 + int r0 % 8)) 2

[<Fact>]
let ``inverted dropout scales kept values in training and passes everything in inference`` () =
    let net = network "input 1000\ndropout 0.25" 1
    copyFrom (Array.create 1000 1.0) net.Input
    net.Forward(true)
    let out = net.Output.ToArray()
    Assert.All(out, fun v -> Assert.True(v = 0.0 || abs (v - 4.0 / 3.0) < 1e-12))
    let dropped = out |> Array.filter ((=) 0.0) |> Array.length
    Assert.InRange(dropped, 180, 320)
    net.Forward(false)
    Assert.All(net.Output.ToArray(), fun v -> Assert.Equal(1.0, v))

/// After an inference pass (no mask), backward passes the gradient through unchanged: the
/// training pass's mask must not linger.
[<Fact>]
let ``after an inference pass the gradient passes through unmasked`` () =
    let net = network "input 100\ndropout 0.5" 1
    copyFrom (Array.create 100 1.0) net.Input
    net.Forward(true)
    net.Forward(false)
    copyFrom (Array.create 100 1.0) net.OutputGradient
    net.Backward()
    assertClose 0.0 (Array.create 100 1.0) (net.InputGradient.ToArray())
