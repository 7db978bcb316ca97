using System.Numerics;
using CnnDsl.Graph;
using CnnDsl.Runtime.Blas;

namespace CnnDsl.Runtime.Layers;

/// <summary>
/// A stride-1 convolution without a column matrix ("implicit im2col"): the batch is copied into
/// a zero-padded NHWC buffer P of Hp x Wp pixels per image, and output pixel r of the padded grid
/// (r = (n Hp + y) Wp + x) is the sum over kernel cells of P's row r + ky Wp + kx times that
/// cell's C x F weights. Each kernel cell is then one GEMM over the whole batch, reading a shifted
/// view of P in place: Yext[R, F] += P[shift .., C] x W[ky, kx]. Rows whose window would leave
/// the image (x >= OW or y >= OH) are computed and dropped. A 3x3 convolution on C channels so
/// touches about (C + F) values per pixel instead of im2col's 9 C.
/// Backward: dW[ky, kx] = P[shift ..]^T dYext; dP[shift ..] += dYext W[ky, kx]^T; dX = dP's interior.
/// </summary>
public readonly struct ShiftedGemm(int height, int width, int channels, int filters, Window window)
{
    private int PaddedHeight => height + window.Padding.Top + window.Padding.Bottom;
    private int PaddedWidth => width + window.Padding.Left + window.Padding.Right;
    private int OutHeight => PaddedHeight - window.KernelH + 1;
    private int OutWidth => PaddedWidth - window.KernelW + 1;

    /// <summary>Rows of P past the last image that the largest shift reads.</summary>
    private long Slack => (long)(window.KernelH - 1) * PaddedWidth + window.KernelW - 1;

    /// <summary>Values of P (with its slack) and of the extended output, for a batch.</summary>
    public (long Padded, long Extended) Sizes(int batch)
    {
        long pixels = (long)batch * PaddedHeight * PaddedWidth;
        return ((pixels + Slack) * channels, pixels * filters);
    }

    public static bool Applies(Window w) =>
        w.StrideH == 1 && w.StrideW == 1 && w.DilationH == 1 && w.DilationW == 1;

    /// <param name="clearBorder">the padded buffer's border is not zero (backward wrote into it)</param>
    public void Forward<T>(ReadOnlySpan<T> input, ReadOnlySpan<T> weights, Span<T> padded, Span<T> extended, Span<T> output, int batch,
        bool clearBorder) where T : unmanaged, INumber<T>
    {
        Pad(input, padded, batch, clearBorder);
        int rows = batch * PaddedHeight * PaddedWidth, cells = channels * filters;
        for (int ky = 0; ky < window.KernelH; ky++)
            for (int kx = 0; kx < window.KernelW; kx++)
            {
                int shift = ky * PaddedWidth + kx, cell = ky * window.KernelW + kx;
                Gemm.Multiply(false, false, rows, filters, channels, T.One, padded.Slice(shift * channels), channels,
                    weights.Slice(cell * cells, cells), filters, cell == 0 ? T.Zero : T.One, extended, filters);
            }
        // keep the rows whose window lies inside the padded image
        int run = OutWidth * filters;
        for (int n = 0; n < batch; n++)
            for (int y = 0; y < OutHeight; y++)
                extended.Slice(((n * PaddedHeight + y) * PaddedWidth) * filters, run)
                    .CopyTo(output.Slice(((n * OutHeight + y) * OutWidth) * filters, run));
    }

    /// <summary>Weight gradient (when asked) and the input gradient (added, when asked). `padded`
    /// holds forward's copy of the input unless `padFirst` says to rebuild it (a second backward
    /// pass after one forward); the input's gradient then overwrites it, and `extended` too.</summary>
    public void Backward<T>(ReadOnlySpan<T> input, ReadOnlySpan<T> weights, ReadOnlySpan<T> outputGradient, Span<T> padded, Span<T> extended,
        Span<T> weightGradient, bool wantWeights, Span<T> inputGradient, bool wantInput, int batch, bool padFirst)
        where T : unmanaged, INumber<T>
    {
        // dYext: dY in the padded grid's rows, zero in the dropped ones
        extended.Clear();
        int run = OutWidth * filters;
        for (int n = 0; n < batch; n++)
            for (int y = 0; y < OutHeight; y++)
                outputGradient.Slice(((n * OutHeight + y) * OutWidth) * filters, run)
                    .CopyTo(extended.Slice(((n * PaddedHeight + y) * PaddedWidth) * filters, run));
        int rows = batch * PaddedHeight * PaddedWidth, cells = channels * filters;
        if (wantWeights)
        {
            if (padFirst) Pad(input, padded, batch, clearBorder: true);
            for (int ky = 0; ky < window.KernelH; ky++)
                for (int kx = 0; kx < window.KernelW; kx++)
                {
                    int shift = ky * PaddedWidth + kx, cell = ky * window.KernelW + kx;
                    Gemm.Multiply(true, false, channels, filters, rows, T.One, padded.Slice(shift * channels), channels,
                        extended, filters, T.Zero, weightGradient.Slice(cell * cells, cells), filters);
                }
        }
        if (!wantInput) return;
        padded.Clear();
        for (int ky = 0; ky < window.KernelH; ky++)
            for (int kx = 0; kx < window.KernelW; kx++)
            {
                int shift = ky * PaddedWidth + kx, cell = ky * window.KernelW + kx;
                Gemm.Multiply(false, true, rows, channels, filters, T.One, extended, filters,
                    weights.Slice(cell * cells, cells), filters, T.One, padded.Slice(shift * channels), channels);
            }
        // the interior of dP is the input's gradient
        new PaddedBatch(height, width, channels, window.Padding).AddInterior<T>(padded, inputGradient, batch);
    }

    private void Pad<T>(ReadOnlySpan<T> input, Span<T> padded, int batch, bool clearBorder) where T : unmanaged =>
        new PaddedBatch(height, width, channels, window.Padding).Pad(input, padded, batch, clearBorder);
}
