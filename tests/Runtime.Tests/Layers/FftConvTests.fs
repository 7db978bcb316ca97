module CnnDsl.Runtime.Tests.FftConvTests

open System
open Xunit
open CnnDsl.Runtime
open CnnDsl.Runtime.Layers
open CnnDsl.Runtime.Tests.TestSupport
open CnnDsl.Runtime.Tests.GradientCheck

/// A stride-1 convolution with a 3x3, 5x5 or 7x7 window (or a non-square 3x5 one) on 1-3 whole
/// vectors of channels and of filters, on maps of odd and even sizes (grids from 4x4 to 16x16,
/// some with unused rows and columns), with any padding, each axis its own.
let private windows = [| 3, 3; 5, 5; 7, 7; 3, 5 |]

let private model (kh, kw) (h0: byte) (w0: byte) (p0: byte) (c0: byte) (f0: byte) (mode: byte) (bias: bool) =
    let h, w = kh + int h0 % 8, kw + int w0 % 8
    let lanes = Numerics.Vector<float32>.Count
    let c, f = lanes * (1 + int c0 % 3), lanes * (1 + int f0 % 3)
    let padding = match int mode % 3 with 0 -> "valid" | 1 -> "same" | _ -> sprintf "p%dx%d" (int p0 % 3) (int p0 / 3 % 3)
    sprintf "input %dx%dx%d\nconv %d %dx%d %s relu %s" h w c f kh kw padding (if bias then "" else "nobias")

/// Runs f with the FFT path taken for every window and channel count (the thresholds are there for
/// speed, not correctness), the batch either whole or one image a chunk (`chunked`).
let private fftIn (chunked: bool) (f: unit -> 'a) : 'a =
    let window, product, saving, chunk = ColumnPlan.FftMinWindow, ColumnPlan.FftMinProduct, ColumnPlan.FftMinSaving, ColumnPlan.FftChunkElements
    let amortisation = ColumnPlan.FftMinAmortisation
    ColumnPlan.FftMinWindow <- 1
    ColumnPlan.FftMinProduct <- 1L
    ColumnPlan.FftMinSaving <- 0.0
    ColumnPlan.FftMinAmortisation <- 0.0
    if chunked then ColumnPlan.FftChunkElements <- 1L
    try withDirectLimit 0 f
    finally
        ColumnPlan.FftMinWindow <- window
        ColumnPlan.FftMinProduct <- product
        ColumnPlan.FftMinSaving <- saving
        ColumnPlan.FftMinAmortisation <- amortisation
        ColumnPlan.FftChunkElements <- chunk

[<Cases 60>]
let ``FFT convolutions have right gradients`` h w p c f mode bias (b0: byte) (a: byte) chunked powerOfTwo =
    let window = windows[int a % windows.Length]
    fftIn chunked <| fun () ->
    ColumnPlan.FftPowerOfTwoGrids <- powerOfTwo
    try
        let text = model window h w p c f mode bias
        let plan = ColumnPlan.For((graph text).Nodes[1], 2)
        Assert.True(plan.Fft, plan.Lowering)
        Assert.Equal((if chunked then 1 else 2), plan.ImagesPerChunk)
        assertGradients text (if chunked then 2 else 1 + int b0 % 2)
    finally ColumnPlan.FftPowerOfTwoGrids <- false

[<Cases 100>]
let ``float FFT convolutions equal double im2col ones, outputs and gradients`` h w p c f mode bias (seed: int) (a: byte) chunked twoThreads =
    let window = windows[int a % windows.Length]
    fftIn chunked <| fun () ->
    let text = model window h w p c f mode bias + "\nconv 2 1x1"
    let g = graph text
    let run () =
        let single = Network<float32>(g, 3, 1, true)
        Assert.True((ColumnPlan.For(g.Nodes[1], 3)).Fft)
        Assert.Equal((if chunked then 1 else 3), (ColumnPlan.For(g.Nodes[1], 3)).ImagesPerChunk)
        let twice, reference =
            ColumnPlan.UseFft <- false
            ColumnPlan.UseWinograd <- false
            try Network<double>(g, 3, 1, true), ColumnPlan.For(g.Nodes[1], 3)
            finally ColumnPlan.UseFft <- true; ColumnPlan.UseWinograd <- true
        Assert.False(reference.Fft || reference.Winograd)
        assertFloatMatchesDouble single twice seed 2 1e-4
    if twoThreads then onTwoThreads run else run ()
    true

/// The float error against double im2col on a layer of realistic size (the seed Fashion-MNIST
/// model's second layer: 32 -> 64, 7x7, on 22x22 maps, a 24x24 grid; inputs uniform in [-1, 1),
/// He-scaled weights): the largest error of an output, of a weight gradient and of an input
/// gradient, each relative to that tensor's largest magnitude.
let private floatError () =
    fftIn false <| fun () ->
    let g = graph "input 22x22x32\nconv 64 7x7 nobias"
    let single = Network<float32>(g, 4, 1, true)
    let twice =
        ColumnPlan.UseFft <- false
        ColumnPlan.UseWinograd <- false
        try Network<double>(g, 4, 1, true) finally ColumnPlan.UseFft <- true; ColumnPlan.UseWinograd <- true
    Assert.Equal("FFT 24x24", (ColumnPlan.For(g.Nodes[1], 4)).Lowering)
    relativeFloatErrors single twice (49 * 32)

[<Fact>]
let ``the FFT's float error against double is within its stated bound`` () =
    let errors = floatError ()
    // Measured: 2.2e-7, 2.3e-7, 2.1e-7 (below every Winograd algorithm's: WinogradConvTests)
    Assert.True(List.forall (fun e -> e < 1e-6) errors, sprintf "%A (output, weight gradient, input gradient)" errors)

let private plansOf (file: string) (batch: int) =
    let g = graph (IO.File.ReadAllText(IO.Path.Combine(__SOURCE_DIRECTORY__, "..", "..", "..", "models", file)))
    [ for n in g.Nodes do if n.Kind.IsConv then let p = ColumnPlan.For(n, batch) in yield p.Lowering ]

[<Fact>]
let ``the measured rules: FFT on the seed Fashion-MNIST model's 22x22 and 16x16 layers, on its 10x10 one only at batch 128`` () =
    Assert.Equal<string list>([ "direct"; "FFT 24x24"; "FFT 16x16"; "im2col + GEMM" ], plansOf "fashion-mnist.cnn" 32)
    Assert.Equal<string list>([ "direct"; "FFT 24x24"; "FFT 16x16"; "FFT 10x10" ], plansOf "fashion-mnist.cnn" 128)
    // power-of-two grids (CNNDSL_FFT_GRID=pow2): the 10x10 layer's 16x16 grid saves only 1.4x
    let saved = ColumnPlan.FftPowerOfTwoGrids
    ColumnPlan.FftPowerOfTwoGrids <- true
    try Assert.Equal<string list>([ "direct"; "FFT 32x32"; "FFT 16x16"; "im2col + GEMM" ], plansOf "fashion-mnist.cnn" 128)
    finally ColumnPlan.FftPowerOfTwoGrids <- saved
