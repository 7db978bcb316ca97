using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using CnnDsl.Graph;

namespace CnnDsl.Runtime.Layers;

/// <summary>
/// im2col over a whole NHWC batch: row (b, oy, ox) of the column matrix holds the
/// kh x kw x C window that output pixel reads, in Keras's HWIO kernel order, so that a
/// convolution is col[P, K] x W[K, F] with P = batch * outH * outW and K = kh * kw * C.
/// Padding cells read as zeros. col2im adds the columns back (the adjoint).
/// Without dilation, one kernel row of a window (kw x C values) is one contiguous run of the
/// input row, so each (pixel, kernel row) is a single copy, clipped at the borders.
/// </summary>
public readonly struct Im2Col(int height, int width, int channels, int outHeight, int outWidth, Window window)
{
    public int Rows(int batch) => batch * outHeight * outWidth;
    public int Columns => window.KernelH * window.KernelW * channels;

    public void Expand<T>(ReadOnlySpan<T> input, Span<T> col, int batch) where T : unmanaged, INumber<T> =>
        Expand(input, col, 0, batch);

    /// <summary>The rows of images first .. first + count - 1, written from the start of `col`.</summary>
    public void Expand<T>(ReadOnlySpan<T> input, Span<T> col, int first, int count) where T : unmanaged, INumber<T>
    {
        int k = Columns, c = channels, kw = window.KernelW, run = kw * c;
        int imageSize = height * width * c;
        if (window.DilationW == 1)
        {
            ExpandRuns(input, col, first, count);
            return;
        }
        for (int b = first; b < first + count; b++)
        {
            var image = input.Slice(b * imageSize, imageSize);
            for (int oy = 0; oy < outHeight; oy++)
            {
                int row0 = ((b - first) * outHeight + oy) * outWidth;
                for (int ky = 0; ky < window.KernelH; ky++)
                {
                    int iy = oy * window.StrideH - window.Padding.Top + ky * window.DilationH;
                    int offset = ky * run;
                    if (iy < 0 || iy >= height)
                    {
                        for (int ox = 0; ox < outWidth; ox++) col.Slice((row0 + ox) * k + offset, run).Clear();
                        continue;
                    }
                    var line = image.Slice(iy * width * c, width * c);
                    for (int ox = 0; ox < outWidth; ox++)
                    {
                        // dilated: each kernel column is its own run of C values
                        var dst = col.Slice((row0 + ox) * k + offset, run);
                        int ix0 = ox * window.StrideW - window.Padding.Left;
                        for (int kx = 0; kx < kw; kx++)
                        {
                            int ix = ix0 + kx * window.DilationW;
                            if (ix < 0 || ix >= width) dst.Slice(kx * c, c).Clear();
                            else Copy(line.Slice(ix * c, c), dst.Slice(kx * c));
                        }
                    }
                }
            }
        }
    }

    /// <summary>Expand without dilation: each (pixel, kernel row) is one run of the input row,
    /// clipped at the borders. The sizes are checked once here; the loop then works on
    /// references, as its runs are often a handful of values (5 for LeNet's first layer).</summary>
    private void ExpandRuns<T>(ReadOnlySpan<T> input, Span<T> col, int first, int count) where T : unmanaged, INumber<T>
    {
        int k = Columns, c = channels, kw = window.KernelW, run = kw * c, rowLength = width * c;
        int imageSize = height * rowLength;
        if (first < 0 || (long)(first + count) * imageSize > input.Length || (long)count * outHeight * outWidth * k > col.Length)
            throw new ArgumentException("im2col: the input or the column buffer is too small");
        ref T colStart = ref MemoryMarshal.GetReference(col);
        ref T inputStart = ref MemoryMarshal.GetReference(input);
        for (int b = first; b < first + count; b++)
            for (int oy = 0; oy < outHeight; oy++)
            {
                int row0 = ((b - first) * outHeight + oy) * outWidth;
                for (int ky = 0; ky < window.KernelH; ky++)
                {
                    int iy = oy * window.StrideH - window.Padding.Top + ky * window.DilationH;
                    ref T firstCell = ref Unsafe.Add(ref colStart, (nint)row0 * k + ky * run);
                    if (iy < 0 || iy >= height)
                    {
                        for (int ox = 0; ox < outWidth; ox++) MemoryMarshal.CreateSpan(ref Unsafe.Add(ref firstCell, (nint)ox * k), run).Clear();
                        continue;
                    }
                    ref T line = ref Unsafe.Add(ref inputStart, (nint)b * imageSize + iy * rowLength);
                    for (int ox = 0; ox < outWidth; ox++)
                    {
                        ref T dst = ref Unsafe.Add(ref firstCell, (nint)ox * k);
                        int ix0 = ox * window.StrideW - window.Padding.Left;
                        // kernel columns lo .. hi - 1 fall inside the row
                        int lo = Math.Max(0, -ix0), hi = Math.Min(kw, width - ix0);
                        if (lo >= hi) { MemoryMarshal.CreateSpan(ref dst, run).Clear(); continue; }
                        for (int t = 0; t < lo * c; t++) Unsafe.Add(ref dst, t) = T.Zero;
                        int n = (hi - lo) * c;
                        ref T src = ref Unsafe.Add(ref line, (ix0 + lo) * c);
                        ref T to = ref Unsafe.Add(ref dst, lo * c);
                        if (n > 16) MemoryMarshal.CreateReadOnlySpan(ref src, n).CopyTo(MemoryMarshal.CreateSpan(ref to, n));
                        else for (int t = 0; t < n; t++) Unsafe.Add(ref to, t) = Unsafe.Add(ref src, t);
                        for (int t = hi * c; t < run; t++) Unsafe.Add(ref dst, t) = T.Zero;
                    }
                }
            }
    }

    public void Collapse<T>(ReadOnlySpan<T> col, Span<T> input, int batch) where T : unmanaged, INumber<T> =>
        Collapse(col, input, 0, batch);

    /// <summary>Adds `col`'s rows, those of images first .. first + count - 1, into those images' gradients.</summary>
    public void Collapse<T>(ReadOnlySpan<T> col, Span<T> input, int first, int count) where T : unmanaged, INumber<T>
    {
        int k = Columns, c = channels, kw = window.KernelW, run = kw * c;
        int imageSize = height * width * c;
        for (int b = first; b < first + count; b++)
        {
            var image = input.Slice(b * imageSize, imageSize);
            for (int oy = 0; oy < outHeight; oy++)
            {
                int row0 = ((b - first) * outHeight + oy) * outWidth;
                for (int ky = 0; ky < window.KernelH; ky++)
                {
                    int iy = oy * window.StrideH - window.Padding.Top + ky * window.DilationH;
                    if (iy < 0 || iy >= height) continue;
                    int offset = ky * run;
                    var line = image.Slice(iy * width * c, width * c);
                    for (int ox = 0; ox < outWidth; ox++)
                    {
                        var src = col.Slice((row0 + ox) * k + offset, run);
                        int ix0 = ox * window.StrideW - window.Padding.Left;
                        if (window.DilationW == 1)
                        {
                            int lo = Math.Max(0, -ix0), hi = Math.Min(kw, width - ix0);
                            if (lo < hi) Add(line.Slice((ix0 + lo) * c, (hi - lo) * c), src.Slice(lo * c));
                        }
                        else
                            for (int kx = 0; kx < kw; kx++)
                            {
                                int ix = ix0 + kx * window.DilationW;
                                if (ix >= 0 && ix < width) Add(line.Slice(ix * c, c), src.Slice(kx * c));
                            }
                    }
                }
            }
        }
    }

    // Runs are often a few values (a 5-wide kernel on one channel): a plain loop beats the
    // call into memmove or the vector loop there.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Copy<T>(ReadOnlySpan<T> src, Span<T> dst)
    {
        if (src.Length > 16) { src.CopyTo(dst); return; }
        for (int i = 0; i < src.Length; i++) dst[i] = src[i];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Add<T>(Span<T> dst, ReadOnlySpan<T> src) where T : unmanaged, INumber<T>
    {
        if (dst.Length >= 2 * Vector<T>.Count) { Vectorised.Add(dst, src.Slice(0, dst.Length)); return; }
        for (int i = 0; i < dst.Length; i++) dst[i] += src[i];
    }

    /// <summary>A 1x1, stride-1, unpadded window reads the input as it is: no copy needed.</summary>
    public bool IsIdentity => ColumnPlan.IsIdentity(window);
}
