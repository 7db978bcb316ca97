using System.Globalization;
using StbImageSharp;

namespace CnnDsl.Runtime.Data;

/// <summary>One input for `dsl apply` and `dsl predict`: a text matrix or an image, as
/// height x width x channels values (images scaled to [0, 1], as training scales them).</summary>
public sealed record InputImage(int Height, int Width, int Channels, double[] Values);

public static class InputFiles
{
    /// <summary>A text matrix: numbers separated by spaces or commas (brackets are ignored),
    /// one row per line, channels separated by a blank line. Or a PNG/JPEG/BMP image.</summary>
    public static InputImage Read(string path, int? wantChannels = null)
    {
        if (Directory.Exists(path)) throw new DataError(path, "is a folder; give an image (png, jpg, bmp) or a text matrix file");
        if (!File.Exists(path)) throw new DataError(path, "no such file");
        var ext = Path.GetExtension(path).ToLowerInvariant();
        return ext is ".png" or ".jpg" or ".jpeg" or ".bmp" or ".gif" or ".tga"
            ? ReadImage(path, wantChannels ?? 0)
            : ReadMatrix(path);
    }

    public static InputImage ReadImage(string path, int channels) =>
        FromDecoded(ImageFolder.Decode(path, Components(channels), sizeof(double)));

    /// <summary>An image from its file's bytes (PNG, JPEG, BMP, GIF, TGA); `name` names it in messages.</summary>
    public static InputImage ReadImage(string name, byte[] bytes, int channels) =>
        FromDecoded(ImageFolder.Decode(name, bytes, Components(channels), sizeof(double)));

    private static ColorComponents Components(int channels) =>
        channels switch { 1 => ColorComponents.Grey, 3 => ColorComponents.RedGreenBlue, 4 => ColorComponents.RedGreenBlueAlpha, _ => ColorComponents.Default };

    // Each value becomes a double: the size check counts eight bytes for each.
    private static InputImage FromDecoded(ImageResult image)
    {
        int c = image.Comp switch { ColorComponents.Grey => 1, ColorComponents.GreyAlpha => 2, ColorComponents.RedGreenBlue => 3, _ => 4 };
        var values = new double[image.Data.Length];
        for (int i = 0; i < values.Length; i++) values[i] = image.Data[i] / 255.0;
        return new InputImage(image.Height, image.Width, c, values);
    }

    public static InputImage ReadMatrix(string path)
    {
        // A number takes at least two characters and becomes a double twice over (its row, then
        // the image): eight bytes of memory for each byte of text at most, checked before reading.
        DataLimits.CheckBudget(path, new FileInfo(path).Length * 8, "the text matrix", "give a smaller matrix, or an image file");
        // read within the same budget: a device (/dev/zero) reports length 0 and never ends
        long limit = Math.Min(DataLimits.MemoryBudget / 8, 256L << 20);
        var bytes = DataLimits.ReadAtMost(path, limit,
            () => new DataError(path, $"is larger than the {DataLimits.Bytes(limit)} a text matrix may take (a device or a pipe?); give a smaller matrix, or an image file"));
        int nul = Array.IndexOf(bytes, (byte)0);
        if (nul >= 0) throw new DataError(path, $"is not a text matrix (byte {nul} is NUL); give an image (png, jpg, bmp) or a text matrix file");
        var lines = new System.Text.UTF8Encoding(false).GetString(bytes).TrimStart('\uFEFF')
            .Split('\n').Select(l => l.TrimEnd('\r')).ToArray();
        var channels = new List<List<double[]>>();
        var current = new List<double[]>();
        for (int n = 0; n < lines.Length; n++)
        {
            var line = lines[n].Split('#')[0];
            var cells = line.Split([' ', '\t', ',', '[', ']', ';'], StringSplitOptions.RemoveEmptyEntries);
            if (cells.Length == 0)
            {
                if (current.Count > 0) { channels.Add(current); current = []; }
                continue;
            }
            var row = new double[cells.Length];
            for (int i = 0; i < cells.Length; i++)
                if (!double.TryParse(cells[i], NumberStyles.Float, CultureInfo.InvariantCulture, out row[i]))
                    throw new DataError(path, $"line {n + 1}: '{cells[i]}' is not a number");
            if (current.Count > 0 && row.Length != current[0].Length)
                throw new DataError(path, $"line {n + 1}: {row.Length} values, but the rows above have {current[0].Length}; every row needs the same length");
            current.Add(row);
        }
        if (current.Count > 0) channels.Add(current);
        if (channels.Count == 0) throw new DataError(path, "no numbers in the file; write one row of the matrix per line");
        int h = channels[0].Count, w = channels[0][0].Length, c = channels.Count;
        for (int k = 1; k < c; k++)
            if (channels[k].Count != h || channels[k][0].Length != w)
                throw new DataError(path, $"channel {k + 1} is {channels[k].Count}x{channels[k][0].Length} but channel 1 is {h}x{w}");
        var values = new double[h * w * c];
        for (int k = 0; k < c; k++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) values[(y * w + x) * c + k] = channels[k][y][x];
        return new InputImage(h, w, c, values);
    }
}
