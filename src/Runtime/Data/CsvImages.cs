using System.Globalization;

namespace CnnDsl.Runtime.Data;

/// <summary>
/// Images as CSV in the Kaggle digit-recognizer layout of seed 001: a header row, then one
/// image per row, `label,pixel0,pixel1,...` with pixel values 0-255. A square pixel count is
/// read as a square grey image (784 = 28x28).
/// </summary>
public static class CsvImages
{
    public static Dataset Read(string path, string name)
    {
        if (!File.Exists(path)) throw new DataError(path, "no such file");
        using var reader = new StreamReader(path);
        var header = reader.ReadLine() ?? throw new DataError(path, "the file is empty");
        var columns = header.Split(',');
        if (columns.Length < 2 || !columns[0].Trim().Equals("label", StringComparison.OrdinalIgnoreCase))
            throw new DataError(path, $"line 1: the header must start with 'label' followed by the pixel columns, found '{Truncate(header)}'");
        int pixels = columns.Length - 1;
        int side = (int)Math.Round(Math.Sqrt(pixels));
        var data = new List<byte>();
        var labels = new List<int>();
        string? line;
        int number = 1;
        while ((line = reader.ReadLine()) != null)
        {
            number++;
            if (line.Trim().Length == 0) continue;
            var cells = line.Split(',');
            if (cells.Length != columns.Length)
                throw new DataError(path, $"line {number}: {cells.Length} values, the header has {columns.Length}");
            if (!int.TryParse(cells[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out var label) || label < 0)
                throw new DataError(path, $"line {number}: the label '{Truncate(cells[0])}' is not a class number");
            labels.Add(label);
            for (int i = 1; i < cells.Length; i++)
            {
                if (!int.TryParse(cells[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) || v < 0 || v > 255)
                    throw new DataError(path, $"line {number}, column {i + 1}: '{Truncate(cells[i])}' is not a pixel value from 0 to 255");
                data.Add((byte)v);
            }
        }
        if (labels.Count == 0) throw new DataError(path, "no rows after the header");
        int classes = labels.Max() + 1;
        var names = Enumerable.Range(0, classes).Select(c => c.ToString(CultureInfo.InvariantCulture)).ToArray();
        return side * side == pixels
            ? new Dataset(name, side, side, 1, data.ToArray(), labels.ToArray(), names)
            : new Dataset(name, 1, 1, pixels, data.ToArray(), labels.ToArray(), names);
    }

    private static string Truncate(string s) => s.Length > 30 ? s[..30] + "..." : s;
}
