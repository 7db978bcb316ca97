using System.Numerics;
using System.Runtime.CompilerServices;
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
                        var dst = col.Slice((row0 + ox) * k + offset, run);
                        int ix0 = ox * window.StrideW - window.Padding.Left;
                        if (window.DilationW == 1)
                        {
                            // kernel columns lo .. hi - 1 fall inside the row
                            int lo = Math.Max(0, -ix0), hi = Math.Min(kw, width - ix0);
                            if (lo >= hi) { dst.Clear(); continue; }
                            if (lo > 0) dst.Slice(0, lo * c).Clear();
                            Copy(line.Slice((ix0 + lo) * c, (hi - lo) * c), dst.Slice(lo * c));
                            if (hi < kw) dst.Slice(hi * c).Clear();
                        }
                        else
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
