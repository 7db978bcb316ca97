module CnnDsl.Runtime.Tests.DropoutTests

open FsCheck.Xunit
open Xunit
open CnnDsl.Runtime
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

/// Each image draws its own mask (from the step's seed and its place in the batch): the images'
/// masks differ, are not shifted copies of each other's, and are the same on one thread or two.
[<Fact>]
let ``each image has its own mask, the same however many threads draw them`` () =
    let masks threads =
        let run () =
            let net = Network<float32>(graph "input 4096\ndropout 0.5", 4, 3)
            net.Input.Fill(1.0f)
            net.Forward(true)
            [| for n in 0 .. 3 -> net.Output.Slice(n * 4096, 4096).ToArray() |]
        if threads = 2 then onTwoThreads run else run ()
    let one, two = masks 1, masks 2
    for n in 0 .. 3 do Assert.Equal<float32[]>(one[n], two[n])
    for a in 0 .. 3 do
        for b in a + 1 .. 3 do
            // over every shift of one against the other, about half the values agree (independent masks)
            for shift in 0 .. 64 do
                let agree = Seq.sum (seq { for i in 0 .. 4096 - 1 - shift -> if one[a][i + shift] = one[b][i] then 1 else 0 })
                Assert.InRange(agree, (4096 - shift) * 4 / 10, (4096 - shift) * 6 / 10)
