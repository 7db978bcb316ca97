module CnnDsl.Runtime.Tests.WinogradConvTests

open System
open Xunit
open FsCheck.Xunit
open CnnDsl.Runtime
open CnnDsl.Runtime.Layers
open CnnDsl.Runtime.Tests.TestSupport
open CnnDsl.Runtime.Tests.GradientCheck

/// A 3x3 stride-1 convolution on 1-3 whole vectors of channels (the path needs channels and
/// filters in whole Vector<float>s: 8, 16, 24 with AVX2) and 1-3 vectors of filters, on maps of
/// odd and even sizes (partial tiles at the right and bottom edges), with any padding, each
/// axis its own. (The tests lift the channel x filter threshold, which is there for speed, not correctness.)
let private model (h0: byte) (w0: byte) (p0: byte) (c0: byte) (f0: byte) (mode: byte) (bias: bool) =
    let h, w = 3 + int h0 % 5, 3 + int w0 % 5
    let lanes = Numerics.Vector<float32>.Count
    let c, f = lanes * (1 + int c0 % 3), lanes * (1 + int f0 % 3)
    let padding = match int mode % 3 with 0 -> "valid" | 1 -> "same" | _ -> sprintf "p%dx%d" (int p0 % 3) (int p0 / 3 % 3)
    sprintf "input %dx%dx%d\nconv %d 3x3 %s relu %s" h w c f padding (if bias then "" else "nobias")

let private isWinograd text = (ColumnPlan.For((graph text).Nodes[1], 2)).Winograd

let private winograd (f: unit -> 'a) : 'a =
    let minimum = ColumnPlan.WinogradMinProduct
    ColumnPlan.WinogradMinProduct <- 1
    try withDirectLimit 0 f finally ColumnPlan.WinogradMinProduct <- minimum

// (the direct path, which would take the 8-channel cases, is off in both)
[<Property(MaxTest = 100)>]
let ``Winograd convolutions have right gradients`` h w p c f mode bias (b0: byte) =
    winograd <| fun () ->
    let text = model h w p c f mode bias
    Assert.True(isWinograd text, text)
    assertGradients text (1 + int b0 % 2)

[<Property(MaxTest = 100)>]
let ``float Winograd convolutions equal double im2col ones, outputs and gradients`` h w p c f mode bias (seed: int) =
    winograd <| fun () ->
    let text = model h w p c f mode bias + "\nconv 2 1x1"
    let g = graph text
    let single = Network<float32>(g, 3, 1, true)
    Assert.True(isWinograd text)
    let twice, reference =
        ColumnPlan.UseWinograd <- false
        try Network<double>(g, 3, 1, true), ColumnPlan.For(g.Nodes[1], 3) finally ColumnPlan.UseWinograd <- true
    Assert.False(reference.Winograd)
    assertFloatMatchesDouble single twice seed 2 1e-4
    true

[<Fact>]
let ``cifar10-bn's convolutions on 32+ x 64+ channels run Winograd, the 32 x 32 one shifted GEMMs`` () =
    let g = graph (IO.File.ReadAllText(IO.Path.Combine(__SOURCE_DIRECTORY__, "..", "..", "..", "models", "cifar10-bn.cnn")))
    let plans = [ for n in g.Nodes do if n.Kind.IsConv then let p = ColumnPlan.For(n, 64) in yield p.Winograd, p.Shifted ]
    // (the first, on 3 channels, runs direct)
    Assert.Equal<(bool * bool) list>([ (false, false); (false, true); (true, false); (true, false); (true, false) ], plans)
