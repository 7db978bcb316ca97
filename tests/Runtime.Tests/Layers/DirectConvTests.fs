module CnnDsl.Runtime.Tests.DirectConvTests

open System
open Xunit
open FsCheck.Xunit
open CnnDsl.Runtime
open CnnDsl.Runtime.Layers
open CnnDsl.Runtime.Tests.TestSupport
open CnnDsl.Runtime.Tests.GradientCheck

/// A convolution on 1-16 channels with up to 40 filters (so that the float path's 4-group, 2-group
/// and 1-group kernels and a partial last group all run); each axis has its own window (1-4, not 1x1), stride
/// (1-3, kernels smaller than strides too), dilation (1-2) and explicit padding (0-2).
let private model (k0: byte) (s0: byte) (p0: byte) (d0: byte) (extra: byte) (c0: byte) (f0: byte) (mode: byte) (bias: bool) =
    let kh, kw = 1 + int k0 % 4, 1 + int k0 / 4 % 4
    let kw = if kh = 1 && kw = 1 then 2 else kw // (a 1x1 window may be the identity, which needs no lowering)
    let sh, sw = 1 + int s0 % 3, 1 + int s0 / 3 % 3
    let dh, dw = 1 + int d0 % 2, 1 + int d0 / 2 % 2
    // the input at least as large as the dilated kernel, so that every case has an output
    let h, w = dh * (kh - 1) + 1 + int extra % 5, dw * (kw - 1) + 1 + int extra / 5 % 5
    // 6 and 16 channels too (LeNet's second layer's 6; windows up to 256 values): the input
    // gradient's runs of consecutive places are then longer than a vector
    let c, f = [| 1; 2; 3; 6; 16 |].[int c0 % 5], 1 + int f0 % 40
    let padding = match int mode % 3 with 0 -> "valid" | 1 -> "same" | _ -> sprintf "p%dx%d" (int p0 % 3) (int p0 / 3 % 3)
    sprintf "input %dx%dx%d\nconv %d %dx%d s%dx%d %s d%dx%d relu %s" h w c f kh kw sh sw padding dh dw (if bias then "" else "nobias")

/// On one thread or two (the images, and the weight gradient's units, then split between them).
[<Cases 100>]
let ``direct convolutions have right gradients`` k s p d extra c f mode bias (b0: byte) twoThreads =
    (if twoThreads then onTwoThreads else fun f -> f ()) <| fun () ->
    withDirectLimit 256 <| fun () ->
    let text = model k s p d extra c f mode bias
    Assert.True((ColumnPlan.For((graph text).Nodes[1], 2)).Direct, text)
    assertGradients text (1 + int b0 % 2)

[<Cases 100>]
let ``float direct convolutions equal double im2col ones, outputs and gradients`` k s p d extra c f mode bias (seed: int) twoThreads =
    (if twoThreads then onTwoThreads else fun f -> f ()) <| fun () ->
    let text = model k s p d extra c f mode bias + "\nconv 2 1x1"
    let g = graph text
    let single, direct = withDirectLimit 256 (fun () -> Network<float32>(g, 3, 1, true), (ColumnPlan.For(g.Nodes[1], 3)).Direct)
    let twice = withDirectLimit 0 (fun () -> Network<double>(g, 3, 1, true))
    Assert.True(direct)
    assertFloatMatchesDouble single twice seed 2 1e-4
    true

[<Fact>]
let ``the first layers of LeNet, the Fashion-MNIST model, the strided model and cifar10-bn run direct, and LeNet's second, deeper ones do not`` () =
    let first name =
        let g = graph (IO.File.ReadAllText(IO.Path.Combine(__SOURCE_DIRECTORY__, "..", "..", "..", "models", name + ".cnn")))
        [ for n in g.Nodes do if n.Kind.IsConv then yield (ColumnPlan.For(n, 32)).Direct ]
    Assert.Equal<bool list>([ true; true ], first "lenet")
    Assert.Equal<bool list>([ true; false; false; false ], first "fashion-mnist")
    Assert.Equal<bool list>([ true; false; false; false ], first "strided")
    Assert.Equal<bool list>([ true; false; false; false; false ], first "cifar10-bn")

[<Fact>]
let ``LeNet's second layer (6 -> 16, 5x5, two groups of filters) at batch 20: float direct equals double im2col`` () =
    // (20 images: each of the weight gradient's 8 units then sums two or three images)
    onTwoThreads <| fun () ->
    let g = graph "input 14x14x6\nconv 16 5x5 relu\nconv 2 1x1"
    Assert.Equal("direct", (ColumnPlan.For(g.Nodes[1], 20)).Lowering)
    let single = Network<float32>(g, 20, 1, true)
    let twice = withDirectLimit 0 (fun () -> Network<double>(g, 20, 1, true))
    assertFloatMatchesDouble single twice 14 2 1e-4

[<Fact>]
let ``a window of 2,304 values (its column staging past the stack's, from the pool): float direct equals double im2col`` () =
    let g = graph "input 13x13x16\nconv 3 12x12 relu\nconv 2 1x1"
    let single, direct = withDirectLimit 4096 (fun () -> Network<float32>(g, 3, 1, true), (ColumnPlan.For(g.Nodes[1], 3)).Direct)
    let twice = withDirectLimit 0 (fun () -> Network<double>(g, 3, 1, true))
    Assert.True(direct)
    assertFloatMatchesDouble single twice 5 2 1e-4
