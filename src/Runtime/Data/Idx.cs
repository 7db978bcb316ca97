using System.IO.Compression;

namespace CnnDsl.Runtime.Data;

/// <summary>
/// The IDX format of MNIST and Fashion-MNIST (LeCun et al.): a big-endian header (two zero
/// bytes, the element type 0x08 for unsigned bytes, the number of dimensions, then each
/// dimension), then the values. Gzipped files are read as they are.
/// </summary>
public static class Idx
{
    public const int ImagesMagic = 0x00000803, LabelsMagic = 0x00000801;

    public static byte[] ReadAll(string path)
    {
        if (!File.Exists(path)) throw new DataError(path, "no such file");
        using var file = File.OpenRead(path);
        var head = new byte[2];
        int read = file.Read(head, 0, 2);
        file.Position = 0;
        Stream stream = read == 2 && head[0] == 0x1f && head[1] == 0x8b ? new GZipStream(file, CompressionMode.Decompress) : file;
        using var memory = new MemoryStream();
        try { stream.CopyTo(memory); }
        catch (InvalidDataException e) { throw new DataError(path, $"the gzip data is corrupt ({e.Message}); download the file again"); }
        return memory.ToArray();
    }

    private static int BigEndian(byte[] b, int at) => (b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3];

    /// <summary>Images: returns (count, rows, columns, pixels).</summary>
    public static (int Count, int Rows, int Columns, byte[] Pixels) ReadImages(string path)
    {
        var b = ReadAll(path);
        int magic = b.Length >= 4 ? BigEndian(b, 0) : 0;
        if (b.Length >= 4 && magic != ImagesMagic)
            throw new DataError(path, magic == LabelsMagic
                ? "this is an IDX label file (magic 2049), not an image file (2051); check the file names"
                : $"wrong magic number {magic} (0x{magic:x8}); an IDX image file starts with 2051 (0x00000803)");
        if (b.Length < 16) throw new DataError(path, $"too short for an IDX image header ({b.Length} bytes, need 16)");
        int count = BigEndian(b, 4), rows = BigEndian(b, 8), columns = BigEndian(b, 12);
        if (count < 0 || rows <= 0 || columns <= 0) throw new DataError(path, $"impossible sizes in the header: {count} images of {rows}x{columns}");
        long expected = 16L + (long)count * rows * columns;
        if (b.Length != expected)
            throw new DataError(path, b.Length < expected
                ? $"truncated: the header announces {count} images of {rows}x{columns} ({expected} bytes) but the file has {b.Length}; image {(b.Length - 16) / (rows * columns)} is incomplete"
                : $"{b.Length - expected} bytes more than the header's {count} images of {rows}x{columns}");
        return (count, rows, columns, b.AsSpan(16).ToArray());
    }

    public static int[] ReadLabels(string path, int classes)
    {
        var b = ReadAll(path);
        if (b.Length < 8) throw new DataError(path, $"too short for an IDX label header ({b.Length} bytes, need 8)");
        int magic = BigEndian(b, 0);
        if (magic != LabelsMagic)
            throw new DataError(path, magic == ImagesMagic
                ? "this is an IDX image file (magic 2051), not a label file (2049); check the file names"
                : $"wrong magic number {magic} (0x{magic:x8}); an IDX label file starts with 2049 (0x00000801)");
        int count = BigEndian(b, 4);
        if (count < 0 || b.Length != 8L + count)
            throw new DataError(path, $"the header announces {count} labels but the file holds {b.Length - 8}");
        var labels = new int[count];
        for (int i = 0; i < count; i++)
        {
            labels[i] = b[8 + i];
            if (labels[i] >= classes) throw new DataError(path, $"label {labels[i]} of record {i} is outside 0..{classes - 1}");
        }
        return labels;
    }

    public static Dataset Read(string name, string images, string labels, string[] classNames)
    {
        var (count, rows, columns, pixels) = ReadImages(images);
        var y = ReadLabels(labels, classNames.Length);
        if (y.Length != count)
            throw new DataError(labels, $"{y.Length} labels for the {count} images of {Path.GetFileName(images)}; the two files do not belong together");
        return new Dataset(name, rows, columns, 1, pixels, y, classNames);
    }
}
