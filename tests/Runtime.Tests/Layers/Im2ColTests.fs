module CnnDsl.Runtime.Tests.Im2ColTests

open System
open Xunit
open FsCheck.Xunit
open CnnDsl.Graph
open CnnDsl.Runtime.Layers
open CnnDsl.Runtime.Tests.TestSupport

/// A window from bytes, and its output size by out = floor((n + pads - d(k - 1) - 1) / s) + 1.
let private setup (h0: byte) (w0: byte) (c0: byte) (k0: byte) (s0: byte) (d0: byte) (p0: byte) =
    let h, w, c = 1 + int h0 % 9, 1 + int w0 % 9, 1 + int c0 % 4
    let kh, kw = 1 + int k0 % 4, 1 + int (k0 / 4uy) % 4
    let sh, sw = 1 + int s0 % 3, 1 + int (s0 / 3uy) % 3
    let dh, dw = 1 + int d0 % 2, 1 + int (d0 / 2uy) % 2
    let pad = { Top = int p0 % 3; Bottom = int (p0 / 3uy) % 3; Left = int (p0 / 9uy) % 3; Right = int (p0 / 27uy) % 3 }
    let out n a b k s d = (n + a + b - d * (k - 1) - 1) / s + 1
    let oh, ow = out h pad.Top pad.Bottom kh sh dh, out w pad.Left pad.Right kw sw dw
    let window = { KernelH = kh; KernelW = kw; StrideH = sh; StrideW = sw; DilationH = dh; DilationW = dw; Padding = pad; PaddingMode = Explicit }
    h, w, c, oh, ow, window

/// The definition, one value at a time.
let private bruteForce (h, w, c, oh, ow, win: Window) batch (x: float[]) =
    let k = win.KernelH * win.KernelW * c
    let col = Array.zeroCreate (batch * oh * ow * k)
    for b in 0 .. batch - 1 do
        for oy in 0 .. oh - 1 do
            for ox in 0 .. ow - 1 do
                for ky in 0 .. win.KernelH - 1 do
                    for kx in 0 .. win.KernelW - 1 do
                        for ch in 0 .. c - 1 do
                            let iy = oy * win.StrideH - win.Padding.Top + ky * win.DilationH
                            let ix = ox * win.StrideW - win.Padding.Left + kx * win.DilationW
                            if iy >= 0 && iy < h && ix >= 0 && ix < w then
                                col[((b * oh + oy) * ow + ox) * k + (ky * win.KernelW + kx) * c + ch] <- x[((b * h + iy) * w + ix) * c + ch]
    col

[<Cases 300>]
let ``im2col is the definition, and col2im its adjoint`` (h0: byte) (w0: byte) (c0: byte) (k0: byte) (s0: byte) (d0: byte) (p0: byte) (seed: int) =
    let (h, w, c, oh, ow, window) as shape = setup h0 w0 c0 k0 s0 d0 p0
    if oh >= 1 && ow >= 1 then
        let batch = 2
        let rng = Random seed
        let x = Array.init (batch * h * w * c) (fun _ -> rng.NextDouble() - 0.5)
        let im2col = Im2Col(h, w, c, oh, ow, window)
        let col = Array.create (im2col.Rows batch * im2col.Columns) nan   // every cell must be written
        im2col.Expand<float>(ReadOnlySpan x, Span col, batch)
        Assert.Equal<float[]>(bruteForce shape batch x, col)
        // <im2col x, y> = <x, col2im y>
        let y = Array.init col.Length (fun _ -> rng.NextDouble() - 0.5)
        let back = Array.zeroCreate x.Length
        im2col.Collapse<float>(ReadOnlySpan y, Span back, batch)
        let left = Array.fold2 (fun s a b -> s + a * b) 0.0 col y
        let right = Array.fold2 (fun s a b -> s + a * b) 0.0 x back
        Assert.Equal(left, right, 9)

[<Fact>]
let ``one image of a batch is expanded into the start of a chunk buffer, and collapsed back into its place`` () =
    let window = { KernelH = 3; KernelW = 3; StrideH = 1; StrideW = 1; DilationH = 1; DilationW = 1; Padding = { Top = 1; Bottom = 1; Left = 1; Right = 1 }; PaddingMode = Same }
    let im2col = Im2Col(4, 4, 2, 4, 4, window)
    let x = Array.init (3 * 32) float
    let all = Array.zeroCreate (im2col.Rows 3 * im2col.Columns)
    im2col.Expand<float>(ReadOnlySpan x, Span all, 3)
    let rows = im2col.Rows 1 * im2col.Columns
    let part = Array.create (rows + 1) -1.0
    im2col.Expand<float>(ReadOnlySpan x, Span part, 1, 1)
    Assert.Equal<float[]>(all[rows .. 2 * rows - 1], part[.. rows - 1])
    Assert.Equal(-1.0, part[rows])
    // and col2im adds one image's rows into that image only
    let back = Array.zeroCreate x.Length
    im2col.Collapse<float>(ReadOnlySpan part[.. rows - 1], Span back, 1, 1)
    Assert.True(back[.. 31] |> Array.forall ((=) 0.0) && back[64 ..] |> Array.forall ((=) 0.0))
    Assert.True(back[32 .. 63] |> Array.exists ((<>) 0.0))

/// The undilated path works on references into the buffers: sizes it would overrun are refused
/// before it starts (a negative first image, too few images in the input, too small a column buffer).
[<Fact>]
let ``im2col refuses buffers its images would overrun`` () =
    let window = { KernelH = 3; KernelW = 3; StrideH = 1; StrideW = 1; DilationH = 1; DilationW = 1; Padding = Padding.Zero; PaddingMode = Explicit }
    // 5x4x2 images, 3x2 outputs, 18 values per window: 40 values an image, 108 columns' values
    let im2col = Im2Col(5, 4, 2, 3, 2, window)
    let ok (input: int) (col: int) (first: int) (count: int) = im2col.Expand<float>(ReadOnlySpan(Array.zeroCreate input), Span(Array.zeroCreate col), first, count)
    ok 80 216 0 2
    ok 80 108 1 1
    for input, col, first, count in [ 80, 216, -1, 2; 79, 216, 0, 2; 80, 215, 0, 2; 80, 108, 1, 2; 40, 108, 1, 1 ] do
        Assert.Throws<ArgumentException>(fun () -> ok input col first count) |> ignore

/// A pixel whose window lies wholly in the padding gets zeros, whatever the buffer held before
/// (the shared chunk buffer holds another layer's columns).
[<Fact>]
let ``windows wholly in the padding are cleared in a buffer that held other values`` () =
    // 1x1 windows with one column of padding on each side: the first and last outputs of each row
    let window = { KernelH = 1; KernelW = 1; StrideH = 1; StrideW = 1; DilationH = 1; DilationW = 1; Padding = { Top = 0; Bottom = 0; Left = 1; Right = 1 }; PaddingMode = Explicit }
    let shape = 2, 3, 2, 2, 5, window
    let x = Array.init 24 (fun i -> float (i + 1))
    let im2col = Im2Col(2, 3, 2, 2, 5, window)
    let col = Array.create (2 * 2 * 5 * 2) 7.0
    im2col.Expand<float>(ReadOnlySpan x, Span col, 0, 2)
    Assert.Equal<float[]>(bruteForce shape 2 x, col)
    let e = Assert.Throws<ArgumentException>(fun () -> im2col.Expand<float>(ReadOnlySpan x, Span(Array.zeroCreate 3), 0, 2))
    Assert.Equal("im2col: the input or the column buffer is too small", e.Message)
