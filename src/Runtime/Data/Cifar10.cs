namespace CnnDsl.Runtime.Data;

/// <summary>CIFAR-10's binary version: records of 1 label byte and 3072 pixel bytes
/// (the red, green and blue 32x32 planes), read into NHWC.</summary>
public static class Cifar10
{
    public const int RecordSize = 3073;

    public static readonly string[] ClassNames =
        ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

    public static (byte[] Pixels, int[] Labels) ReadBatch(string path)
    {
        // The six files of the set must fit in the budget together: a sixth each, so that a
        // gzip bomb named as a batch stops there rather than at the whole budget.
        var bytes = Idx.ReadAll(path, DataLimits.MemoryBudget / 6);
        if (bytes.Length == 0 || bytes.Length % RecordSize != 0)
            throw new DataError(path, $"{bytes.Length} bytes is not a whole number of {RecordSize}-byte records; record {bytes.Length / RecordSize} is incomplete");
        int count = bytes.Length / RecordSize;
        var pixels = new byte[count * 3072];
        var labels = new int[count];
        for (int r = 0; r < count; r++)
        {
            var record = bytes.AsSpan(r * RecordSize, RecordSize);
            labels[r] = record[0];
            if (labels[r] > 9) throw new DataError(path, $"label {labels[r]} of record {r} is outside 0..9; is this a CIFAR-10 binary batch?");
            var planes = record[1..];
            var dst = pixels.AsSpan(r * 3072, 3072);
            for (int i = 0; i < 1024; i++)
            {
                dst[i * 3] = planes[i];
                dst[i * 3 + 1] = planes[1024 + i];
                dst[i * 3 + 2] = planes[2048 + i];
            }
        }
        return (pixels, labels);
    }

    public static Dataset Read(string name, IEnumerable<string> files)
    {
        var parts = new List<(byte[] Pixels, int[] Labels)>();
        long total = 0;
        foreach (var file in files)
        {
            var part = ReadBatch(file);
            total += part.Pixels.Length;
            // Each file is within the budget; together they must be too, before they are joined.
            DataLimits.CheckBudget(file, total, $"the batches up to {Path.GetFileName(file)} ({total / 3072} images)", "use fewer batches");
            parts.Add(part);
        }
        var pixels = new byte[total];
        var labels = new int[total / 3072];
        int at = 0;
        foreach (var (p, l) in parts)
        {
            p.CopyTo(pixels, (long)at * 3072);
            l.CopyTo(labels, at);
            at += l.Length;
        }
        return new Dataset(name, 32, 32, 3, pixels, labels, ClassNames);
    }
}
