module CnnDsl.Runtime.Tests.WinogradConvTests

open System
open Xunit
open FsCheck.Xunit
open CnnDsl.Runtime
open CnnDsl.Runtime.Layers
open CnnDsl.Runtime.Tests.TestSupport
open CnnDsl.Runtime.Tests.GradientCheck

/// A stride-1 convolution on 1-3 whole vectors of channels (the path needs channels and filters in
/// whole Vector<float>s: 8, 16, 24 with AVX2) and 1-3 vectors of filters, on maps of odd and even
/// sizes (partial tiles at the right and bottom edges), with any padding, each axis its own, by
/// each of the five algorithms: F(2x2, 3x3), F(4x4, 3x3), F(5x5, 3x3), F(7x7, 3x3) and F(2x2, 7x7). (The tests lift the
/// channel x filter threshold, which is there for speed, not correctness.)
let private algorithms = [| 3, 2; 3, 4; 3, 5; 3, 7; 7, 2 |]

let private model (kernel: int) (h0: byte) (w0: byte) (p0: byte) (c0: byte) (f0: byte) (mode: byte) (bias: bool) =
    let h, w = kernel + int h0 % 8, kernel + int w0 % 8
    let lanes = Numerics.Vector<float32>.Count
    let c, f = lanes * (1 + int c0 % 3), lanes * (1 + int f0 % 3)
    let padding = match int mode % 3 with 0 -> "valid" | 1 -> "same" | _ -> sprintf "p%dx%d" (int p0 % 3) (int p0 / 3 % 3)
    // (the output transform applies the bias and a ReLU; another activation runs after it)
    let activation = if int mode / 3 % 2 = 0 then "relu" else "tanh"
    sprintf "input %dx%dx%d\nconv %d %dx%d %s %s %s" h w c f kernel kernel padding activation (if bias then "" else "nobias")


/// Runs f with the Winograd path forced on for small layers, with the given tile, and the batch
/// either whole or one image a chunk (`chunked`).
let private winogradIn (tile: int) (chunked: bool) (f: unit -> 'a) : 'a =
    let minimum, choice, chunk = ColumnPlan.WinogradMinProduct, ColumnPlan.WinogradTileChoice, ColumnPlan.WinogradChunkElements
    ColumnPlan.WinogradMinProduct <- 1
    ColumnPlan.WinogradTileChoice <- tile
    if chunked then ColumnPlan.WinogradChunkElements <- 1L
    try withDirectLimit 0 (fun () -> withoutFft f)
    finally
        ColumnPlan.WinogradMinProduct <- minimum
        ColumnPlan.WinogradTileChoice <- choice
        ColumnPlan.WinogradChunkElements <- chunk

let private winograd tile f = winogradIn tile false f

/// Runs f with fused forward steps of one image each (`oneImage`) or of the default size.
let private fusedSteps (oneImage: bool) (f: unit -> 'a) : 'a =
    let steps = ColumnPlan.WinogradFusedElements
    if oneImage then ColumnPlan.WinogradFusedElements <- 1L
    try f () finally ColumnPlan.WinogradFusedElements <- steps

// (the direct path, which would take the 8-channel cases, is off in both)
[<Cases 100>]
let ``Winograd convolutions have right gradients`` h w p c f mode bias (b0: byte) (a: byte) chunked =
    let kernel, tile = algorithms[int a % algorithms.Length]
    winogradIn tile chunked <| fun () ->
    let text = model kernel h w p c f mode bias
    let plan = ColumnPlan.For((graph text).Nodes[1], 2)
    Assert.Equal(tile, plan.WinogradTile)
    Assert.Equal((if chunked then 1 else 2), plan.ImagesPerChunk)
    assertGradients text (if chunked then 2 else 1 + int b0 % 2)

[<Cases 100>]
let ``float Winograd convolutions equal double im2col ones, outputs and gradients`` h w p c f mode bias (seed: int) (a: byte) chunked twoThreads oneImageSteps =
    let kernel, tile = algorithms[int a % algorithms.Length]
    winogradIn tile chunked <| fun () ->
    // (on two threads the transforms' pieces start at images other than the chunk's first, and
    // forward runs fused: each thread's images through all three steps, `oneImageSteps` one
    // image at a time)
    (if twoThreads then onTwoThreads else fun f -> f ()) <| fun () ->
    fusedSteps oneImageSteps <| fun () ->
    let text = model kernel h w p c f mode bias + "\nconv 2 1x1"
    let g = graph text
    let single = Network<float32>(g, 3, 1, true)
    Assert.Equal(tile, (ColumnPlan.For(g.Nodes[1], 3)).WinogradTile)
    Assert.Equal((if chunked then 1 else 3), (ColumnPlan.For(g.Nodes[1], 3)).ImagesPerChunk)
    Assert.Equal(kernel, (ColumnPlan.For(g.Nodes[1], 3)).WinogradKernel)
    let twice, reference =
        ColumnPlan.UseWinograd <- false
        try Network<double>(g, 3, 1, true), ColumnPlan.For(g.Nodes[1], 3) finally ColumnPlan.UseWinograd <- true
    Assert.False(reference.Winograd)
    // (F(7x7, 3x3)'s larger constants cost float accuracy: docs/results.md gives its error)
    assertFloatMatchesDouble single twice seed 2 (if tile = 7 then 1e-3 else 1e-4)
    true

/// F(7x7, 3x3) runs forward fused (each thread's images through all three steps) only on maps of
/// 16 tiles or more (fashion-mnist-best's 28x28 layer): the properties above, on maps of at most
/// 2x2 such tiles, never take that path. 23x23 outputs have partial tiles at the edges.
[<Theory>]
[<InlineData(false, false)>]
[<InlineData(true, false)>]
[<InlineData(true, true)>]
let ``F(7x7, 3x3) fused on 4x4 tiles an image equals double im2col, outputs and gradients`` (twoThreads: bool) (oneImageSteps: bool) =
    winograd 7 <| fun () ->
    (if twoThreads then onTwoThreads else fun f -> f ()) <| fun () ->
    fusedSteps oneImageSteps <| fun () ->
    let g = graph "input 23x23x8\nconv 16 3x3 same relu\nconv 2 1x1"
    let single = Network<float32>(g, 3, 1, true)
    Assert.Equal("Winograd F(7x7,3x3)", (ColumnPlan.For(g.Nodes[1], 3)).Lowering)
    let twice =
        ColumnPlan.UseWinograd <- false
        try Network<double>(g, 3, 1, true) finally ColumnPlan.UseWinograd <- true
    assertFloatMatchesDouble single twice 7 2 1e-3

[<Fact>]
let ``cifar10-bn's 3x3 convolutions on 32+ channels run Winograd (C x F at least 512); 16 x 16 runs direct`` () =
    let g = graph (IO.File.ReadAllText(IO.Path.Combine(__SOURCE_DIRECTORY__, "..", "..", "..", "models", "cifar10-bn.cnn")))
    let plans = [ for n in g.Nodes do if n.Kind.IsConv then let p = ColumnPlan.For(n, 64) in yield p.Winograd, p.Shifted ]
    // (the first, on 3 channels, runs direct)
    Assert.Equal<(bool * bool) list>([ (false, false); (true, false); (true, false); (true, false); (true, false) ], plans)
    Assert.Equal("Winograd F(4x4,3x3)", (ColumnPlan.For((graph "input 32x32x16\nconv 32 3x3 same").Nodes[1], 128)).Lowering)
    // (below Winograd's minimum C x F; direct since session 14, 16.4 against the shifted GEMM's 24.6 ms)
    Assert.Equal("direct", (ColumnPlan.For((graph "input 32x32x16\nconv 16 3x3 same").Nodes[1], 128)).Lowering)

/// The float error of each algorithm against double im2col on a layer of realistic size (64 -> 64 on
/// 16x16 maps, inputs uniform in [-1, 1), He-scaled weights): the largest error of an output, of
/// a weight gradient and of an input gradient, each relative to that tensor's largest magnitude.
/// The larger tiles' transforms multiply by larger constants, so their errors are larger (docs/results.md).
let private floatError (kernel: int) (tile: int) =
    winograd tile <| fun () ->
    let g = graph (sprintf "input 16x16x64\nconv 64 %dx%d same nobias" kernel kernel)
    let single = Network<float32>(g, 4, 1, true)
    let twice =
        ColumnPlan.UseWinograd <- false
        try Network<double>(g, 4, 1, true) finally ColumnPlan.UseWinograd <- true
    Assert.Equal(tile, (ColumnPlan.For(g.Nodes[1], 4)).WinogradTile)
    relativeFloatErrors single twice (kernel * kernel * 64)

[<Fact>]
let ``each Winograd algorithm's float error against double is within its stated bound`` () =
    withoutFft <| fun () ->
    let two, four, five, nine, seven = floatError 3 2, floatError 3 4, floatError 3 5, floatError 3 7, floatError 7 2
    let text = sprintf "F(2x2, 3x3) %A, F(4x4, 3x3) %A, F(5x5, 3x3) %A, F(7x7, 3x3) %A, F(2x2, 7x7) %A (output, weight gradient, input gradient)" two four five nine seven
    // Measured: F(2x2, 3x3) 3.5e-7, 8.1e-7, 3.0e-7; F(4x4, 3x3) 5.6e-6, 5.4e-6, 3.2e-6;
    // F(5x5, 3x3) 8.6e-6, 5.4e-6, 5.4e-6; F(7x7, 3x3) 1.8e-4, 1.2e-4, 1.4e-4; F(2x2, 7x7) 5.4e-6, 2.1e-5, 4.9e-6.
    Assert.True(List.forall (fun e -> e < 2e-6) two && List.forall (fun e -> e < 2e-5) four && List.forall (fun e -> e < 2e-5) five
                && List.forall (fun e -> e < 1e-4) seven && List.forall (fun e -> e < 4e-4) nine, text)

let private plansOf (file: string) (batch: int) =
    let g = graph (IO.File.ReadAllText(IO.Path.Combine(__SOURCE_DIRECTORY__, "..", "..", "..", "models", file)))
    [ for n in g.Nodes do if n.Kind.IsConv then let p = ColumnPlan.For(n, batch) in yield p.Lowering ]

[<Fact>]
let ``the measured rules: F(4x4, 3x3) on cifar10-best's 3x3 layers, F(7x7, 3x3) on fashion-mnist-best's, F(2x2, 7x7) on the seed model's 64 -> 128 layer only`` () =
    Assert.Equal<string list>(
        [ "direct"; "Winograd F(4x4,3x3)"; "Winograd F(4x4,3x3)"; "Winograd F(4x4,3x3)"; "Winograd F(4x4,3x3)"; "Winograd F(4x4,3x3)"; "Winograd F(4x4,3x3)" ],
        plansOf "cifar10-best.cnn" 256)
    // F(7x7, 3x3) where 7 divides the maps (1.78x fewer products than F(4x4, 3x3)); the first layer, on one channel, direct
    Assert.Equal<string list>("direct" :: List.replicate 7 "Winograd F(7x7,3x3)", plansOf "fashion-mnist-best.cnn" 128)
    Assert.Equal("Winograd F(4x4,3x3)", (ColumnPlan.For((graph "input 12x12x64\nconv 64 3x3 same").Nodes[1], 128)).Lowering)
    // F(5x5, 3x3) on the strided model's 10x10 outputs (1.65x fewer products than F(4x4, 3x3))
    Assert.Equal<string list>([ "direct"; "im2col + GEMM"; "Winograd F(5x5,3x3)"; "im2col + GEMM" ], plansOf "strided.cnn" 128)
    // (FFT convolutions take the seed model's 7x7 layers first: FftConvTests)
    withoutFft <| fun () ->
    Assert.Equal<string list>([ "direct"; "im2col + GEMM"; "Winograd F(2x2,7x7)"; "im2col + GEMM" ], plansOf "fashion-mnist.cnn" 128)
    // 8x8 tiles run in chunks of images (2M values of V and M at a time); 3x3 tiles whole batches
    let seed = graph (IO.File.ReadAllText(IO.Path.Combine(__SOURCE_DIRECTORY__, "..", "..", "..", "models", "fashion-mnist.cnn")))
    let plan = ColumnPlan.For(seed.Nodes |> List.filter (fun n -> n.Kind.IsConv) |> List.item 2, 128)
    Assert.InRange(plan.ImagesPerChunk, 1, 127)
