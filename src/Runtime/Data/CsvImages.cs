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
        // Every pixel takes at least two characters ("0,"), so the text bounds the pixels: a file
        // within the budget cannot make a data set beyond it.
        DataLimits.CheckBudget(path, new FileInfo(path).Length, "the file", "use a smaller file (fewer rows), or IDX or image files");
        using var reader = new StreamReader(path);
        var header = reader.ReadLine() ?? throw new DataError(path, "the file is empty");
        int columns = header.AsSpan().Count(',') + 1;
        int firstComma = header.IndexOf(',');
        if (columns < 2 || !header.AsSpan(0, firstComma).Trim().Equals("label", StringComparison.OrdinalIgnoreCase))
            throw new DataError(path, $"line 1: the header must start with 'label' followed by the pixel columns, found '{Truncate(header)}'");
        int pixels = columns - 1;
        int side = (int)Math.Round(Math.Sqrt(pixels));
        var data = new List<byte>();
        var labels = new List<int>();
        string? line;
        int number = 1;
        while ((line = reader.ReadLine()) != null)
        {
            number++;
            if (line.AsSpan().Trim().Length == 0) continue;
            // The cells are parsed in place: one string per cell would allocate ten times the file.
            var rest = line.AsSpan();
            int count = rest.Count(',') + 1;
            if (count != columns)
                throw new DataError(path, $"line {number}: {count} values, the header has {columns}");
            for (int i = 0; i < count; i++)
            {
                int comma = rest.IndexOf(',');
                var cell = comma < 0 ? rest : rest[..comma];
                rest = comma < 0 ? [] : rest[(comma + 1)..];
                bool parsed = int.TryParse(cell, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v);
                if (i == 0)
                {
                    if (!parsed || v < 0)
                        throw new DataError(path, $"line {number}: the label '{Truncate(cell.ToString())}' is not a class number");
                    // Class names are made for 0 .. the largest label: one stray large number
                    // would otherwise ask for millions of classes.
                    if (v >= DataLimits.MaxClasses)
                        throw new DataError(path, $"line {number}: the label {v} is larger than {DataLimits.MaxClasses - 1}, the largest class number accepted; labels are class numbers 0, 1, 2, ... (is this column the label?)");
                    labels.Add(v);
                }
                else
                {
                    if (!parsed || v < 0 || v > 255)
                        throw new DataError(path, $"line {number}, column {i + 1}: '{Truncate(cell.ToString())}' is not a pixel value from 0 to 255");
                    data.Add((byte)v);
                }
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
