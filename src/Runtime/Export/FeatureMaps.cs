using StbImageWriteSharp;

namespace CnnDsl.Runtime.Export;

/// <summary>
/// A layer's output as one PNG: its channels side by side in a grid, each scaled to the
/// layer's own range (black = smallest value, white = largest), cells enlarged so that a
/// 4x4 map can be seen.
/// </summary>
public static class FeatureMaps
{
    public static byte[] Png(ReadOnlySpan<double> values, int height, int width, int channels)
    {
        int columns = (int)Math.Ceiling(Math.Sqrt(channels)), rows = (channels + columns - 1) / columns;
        int scale = Math.Max(1, 64 / Math.Max(height, width));
        int cellH = height * scale, cellW = width * scale, gap = 2;
        int imageW = columns * (cellW + gap) - gap, imageH = rows * (cellH + gap) - gap;
        double lo = double.PositiveInfinity, hi = double.NegativeInfinity;
        foreach (var v in values) { lo = Math.Min(lo, v); hi = Math.Max(hi, v); }
        var range = hi > lo ? hi - lo : 1;
        var pixels = new byte[imageW * imageH];
        Array.Fill(pixels, (byte)64); // grey gaps between channels
        for (int k = 0; k < channels; k++)
        {
            int x0 = (k % columns) * (cellW + gap), y0 = (k / columns) * (cellH + gap);
            for (int y = 0; y < cellH; y++)
                for (int x = 0; x < cellW; x++)
                {
                    var v = values[((y / scale) * width + x / scale) * channels + k];
                    pixels[(y0 + y) * imageW + x0 + x] = (byte)Math.Round(255 * (v - lo) / range);
                }
        }
        using var stream = new MemoryStream();
        new ImageWriter().WritePng(pixels, imageW, imageH, ColorComponents.Grey, stream);
        return stream.ToArray();
    }

    /// <summary>A file name from a layer's name: letters, digits, '-' and '_' only, so that
    /// nothing in a model can write outside the chosen folder.</summary>
    public static string FileName(int index, string layer) =>
        $"{index:D2}-{new string(layer.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' ? c : '_').ToArray())}.png";
}
