using System.Numerics;
using CnnDsl.Graph;

namespace CnnDsl.Runtime.Layers;

/// <summary>
/// A batch of NHWC images copied into a zero-bordered buffer of (H + top + bottom) x
/// (W + left + right) pixels per image, for the convolutions that read their input padded
/// (ShiftedGemm, DirectConv), and the way back for the input's gradient.
/// </summary>
public readonly struct PaddedBatch(int height, int width, int channels, Padding padding)
{
    public int PaddedHeight => height + padding.Top + padding.Bottom;
    public int PaddedWidth => width + padding.Left + padding.Right;

    private int Interior(int n, int y) => ((n * PaddedHeight + y + padding.Top) * PaddedWidth + padding.Left) * channels;

    /// <summary>The batch into the buffer's interior; the border (and anything after the last
    /// image) is zeroed first when `clearBorder` (the interior is overwritten either way).</summary>
    public void Pad<T>(ReadOnlySpan<T> input, Span<T> padded, int batch, bool clearBorder) where T : unmanaged
    {
        if (clearBorder) padded.Clear();
        int line = width * channels;
        for (int n = 0; n < batch; n++)
            for (int y = 0; y < height; y++)
                input.Slice((n * height + y) * width * channels, line).CopyTo(padded.Slice(Interior(n, y), line));
    }

    /// <summary>gradient += the buffer's interior (the padded input's gradient, added: a node may
    /// feed several layers).</summary>
    public void AddInterior<T>(ReadOnlySpan<T> padded, Span<T> gradient, int batch) where T : unmanaged, INumber<T>
    {
        int line = width * channels;
        for (int n = 0; n < batch; n++)
            for (int y = 0; y < height; y++)
                Vectorised.Add(gradient.Slice((n * height + y) * width * channels, line), padded.Slice(Interior(n, y), line));
    }
}
