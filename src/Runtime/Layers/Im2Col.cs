using System.Numerics;
using CnnDsl.Graph;

namespace CnnDsl.Runtime.Layers;

/// <summary>
/// im2col over a whole NHWC batch: row (b, oy, ox) of the column matrix holds the
/// kh x kw x C window that output pixel reads, in Keras's HWIO kernel order, so that a
/// convolution is col[P, K] x W[K, F] with P = batch * outH * outW and K = kh * kw * C.
/// Padding cells read as zeros. col2im adds the columns back (the adjoint).
/// </summary>
public readonly struct Im2Col(int height, int width, int channels, int outHeight, int outWidth, Window window)
{
    public int Rows(int batch) => batch * outHeight * outWidth;
    public int Columns => window.KernelH * window.KernelW * channels;

    public void Expand<T>(ReadOnlySpan<T> input, Span<T> col, int batch) where T : unmanaged, INumber<T>
    {
        int k = Columns, c = channels;
        int row = 0;
        for (int b = 0; b < batch; b++)
            for (int oy = 0; oy < outHeight; oy++)
                for (int ox = 0; ox < outWidth; ox++, row++)
                {
                    var dst = col.Slice(row * k, k);
                    int offset = 0;
                    for (int ky = 0; ky < window.KernelH; ky++)
                    {
                        int iy = oy * window.StrideH - window.Padding.Top + ky * window.DilationH;
                        for (int kx = 0; kx < window.KernelW; kx++, offset += c)
                        {
                            int ix = ox * window.StrideW - window.Padding.Left + kx * window.DilationW;
                            if (iy < 0 || iy >= height || ix < 0 || ix >= width)
                            {
                                if (c == 1) dst[offset] = T.Zero; else dst.Slice(offset, c).Clear();
                            }
                            // One channel (grey images): a plain store beats a span copy.
                            else if (c == 1) dst[offset] = input[(b * height + iy) * width + ix];
                            else input.Slice(((b * height + iy) * width + ix) * c, c).CopyTo(dst.Slice(offset, c));
                        }
                    }
                }
    }

    public void Collapse<T>(ReadOnlySpan<T> col, Span<T> input, int batch) where T : unmanaged, INumber<T>
    {
        int k = Columns, c = channels;
        int row = 0;
        for (int b = 0; b < batch; b++)
            for (int oy = 0; oy < outHeight; oy++)
                for (int ox = 0; ox < outWidth; ox++, row++)
                {
                    var src = col.Slice(row * k, k);
                    int offset = 0;
                    for (int ky = 0; ky < window.KernelH; ky++)
                    {
                        int iy = oy * window.StrideH - window.Padding.Top + ky * window.DilationH;
                        for (int kx = 0; kx < window.KernelW; kx++, offset += c)
                        {
                            int ix = ox * window.StrideW - window.Padding.Left + kx * window.DilationW;
                            if (iy < 0 || iy >= height || ix < 0 || ix >= width) continue;
                            int at = ((b * height + iy) * width + ix) * c;
                            if (c == 1) input[at] += src[offset];
                            else Vectorised.Add(input.Slice(at, c), src.Slice(offset, c));
                        }
                    }
                }
    }

    /// <summary>A 1x1, stride-1, unpadded window reads the input as it is: no copy needed.</summary>
    public bool IsIdentity =>
        window.KernelH == 1 && window.KernelW == 1 && window.StrideH == 1 && window.StrideW == 1 &&
        window.Padding.Top == 0 && window.Padding.Left == 0 && window.Padding.Bottom == 0 && window.Padding.Right == 0;
}
