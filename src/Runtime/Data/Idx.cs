using System.IO.Compression;

namespace CnnDsl.Runtime.Data;

/// <summary>
/// The IDX format of MNIST and Fashion-MNIST (LeCun et al.): a big-endian header (two zero
/// bytes, the element type 0x08 for unsigned bytes, the number of dimensions, then each
/// dimension), then the values. Gzipped files are read as they are. The header is read first
/// and only what it announces is decompressed, within the memory budget, so that a gzip bomb
/// or a damaged header is a DataError before anything large is allocated.
/// </summary>
public static class Idx
{
    public const int ImagesMagic = 0x00000803, LabelsMagic = 0x00000801;

    /// <summary>A data file as a stream, decompressed on the fly when it is gzipped.</summary>
    private sealed class Source : IDisposable
    {
        private readonly FileStream _file;
        public string Path { get; }
        public Stream Stream { get; }
        public bool Gzipped { get; }
        public long Length => _file.Length;

        public Source(string path)
        {
            if (!File.Exists(path)) throw new DataError(path, "no such file");
            Path = path;
            _file = File.OpenRead(path);
            Span<byte> head = stackalloc byte[2];
            int read = _file.ReadAtLeast(head, 2, throwOnEndOfStream: false);
            _file.Position = 0;
            Gzipped = read == 2 && head[0] == 0x1f && head[1] == 0x8b;
            Stream = Gzipped ? new GZipStream(_file, CompressionMode.Decompress) : _file;
        }

        /// <summary>Reads until `into` is full or the data ends; returns the bytes read.</summary>
        public int Fill(Span<byte> into)
        {
            try { return Stream.ReadAtLeast(into, into.Length, throwOnEndOfStream: false); }
            catch (InvalidDataException e) { throw new DataError(Path, $"the gzip data is corrupt ({e.Message}); download the file again"); }
        }

        /// <summary>Whether anything follows what has been read.</summary>
        public bool More()
        {
            Span<byte> one = stackalloc byte[1];
            return Fill(one) == 1;
        }

        /// <summary>The data's size when known without decompressing; for gzip, the most that
        /// the compressed length can hold.</summary>
        public long MostBytes => Gzipped ? Length * DataLimits.MaxGzipRatio : Length;

        public void Dispose() { Stream.Dispose(); _file.Dispose(); }
    }

    /// <summary>A whole file (decompressed when gzipped), refused beyond `limit` bytes (at most
    /// the memory budget) before the excess is read.</summary>
    public static byte[] ReadAll(string path, long limit = long.MaxValue)
    {
        using var source = new Source(path);
        limit = Math.Min(limit, DataLimits.MemoryBudget);
        const string fix = "is this the right file? a data set larger than the budget must be split or made smaller";
        if (!source.Gzipped)
        {
            if (source.Length > limit)
                throw new DataError(path, $"is {DataLimits.Bytes(source.Length)}, more than the {DataLimits.Bytes(limit)} that the memory budget leaves for one file; {fix}");
            var bytes = new byte[source.Length];
            int read = source.Fill(bytes);
            return read == bytes.Length ? bytes : bytes[..read];
        }
        // Gzip: the decompressed size is unknown until the end, so read in chunks and stop at the limit.
        using var memory = new MemoryStream();
        var chunk = new byte[81920];
        int n;
        while ((n = source.Fill(chunk)) > 0)
        {
            if (memory.Length + n > limit)
                throw new DataError(path, $"decompresses to more than {DataLimits.Bytes(limit)}, what the memory budget leaves for one file; {fix}");
            memory.Write(chunk, 0, n);
        }
        return memory.ToArray();
    }

    private static int BigEndian(ReadOnlySpan<byte> b) => (b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3];

    /// <summary>Images: returns (count, rows, columns, pixels).</summary>
    public static (int Count, int Rows, int Columns, byte[] Pixels) ReadImages(string path)
    {
        using var source = new Source(path);
        Span<byte> header = stackalloc byte[16];
        int got = source.Fill(header);
        int magic = got >= 4 ? BigEndian(header) : 0;
        if (got >= 4 && magic != ImagesMagic)
            throw new DataError(path, magic == LabelsMagic
                ? "this is an IDX label file (magic 2049), not an image file (2051); check the file names"
                : $"wrong magic number {magic} (0x{magic:x8}); an IDX image file starts with 2051 (0x00000803)");
        if (got < 16) throw new DataError(path, $"too short for an IDX image header ({got} bytes, need 16)");
        int count = BigEndian(header[4..]), rows = BigEndian(header[8..]), columns = BigEndian(header[12..]);
        if (count < 0 || rows <= 0 || columns <= 0) throw new DataError(path, $"impossible sizes in the header: {count} images of {rows}x{columns}");
        // Sides are bounded as an image file's are, so that an image's size is an int even in a set of none.
        if (rows > DataLimits.MaxImageSide || columns > DataLimits.MaxImageSide || (long)rows * columns > DataLimits.MaxImagePixels)
            throw new DataError(path, $"the header announces images of {rows}x{columns}, larger than accepted (at most {DataLimits.MaxImageSide} a side and 4096x4096 pixels); is this an IDX image file?");
        long size = (long)count * rows * columns, expected = 16 + size;
        string announced = $"{count} images of {rows}x{columns}";
        // Checked before the pixels are allocated or decompressed: the length of a plain file
        // must match exactly, a gzip file cannot hold more than deflate's ratio allows.
        if (!source.Gzipped && source.Length != expected)
            throw new DataError(path, source.Length < expected
                ? $"truncated: the header announces {announced} ({expected} bytes) but the file has {source.Length}; image {(source.Length - 16) / ((long)rows * columns)} is incomplete"
                : $"{source.Length - expected} bytes more than the header's {announced}");
        if (source.Gzipped && expected > source.MostBytes)
            throw new DataError(path, $"truncated: the header announces {announced} ({expected} bytes), more than a gzip file of {source.Length} bytes can hold; download the file again");
        DataLimits.CheckBudget(path, size, $"the header's {announced}", "is this the right file? use fewer images (split the file) or smaller ones");
        var pixels = new byte[size];
        int read = source.Fill(pixels);
        if (read < size)
            throw new DataError(path, $"truncated: the header announces {announced} ({expected} bytes) but the data ends after {16 + read}; image {read / ((long)rows * columns)} is incomplete");
        if (source.More())
            throw new DataError(path, $"holds more than the header's {announced} ({expected} bytes); the header or the file is damaged");
        return (count, rows, columns, pixels);
    }

    public static int[] ReadLabels(string path, int classes)
    {
        using var source = new Source(path);
        Span<byte> header = stackalloc byte[8];
        int got = source.Fill(header);
        if (got < 8) throw new DataError(path, $"too short for an IDX label header ({got} bytes, need 8)");
        int magic = BigEndian(header);
        if (magic != LabelsMagic)
            throw new DataError(path, magic == ImagesMagic
                ? "this is an IDX image file (magic 2051), not a label file (2049); check the file names"
                : $"wrong magic number {magic} (0x{magic:x8}); an IDX label file starts with 2049 (0x00000801)");
        int count = BigEndian(header[4..]);
        if (count < 0 || (!source.Gzipped && source.Length != 8L + count))
            throw new DataError(path, $"the header announces {count} labels but the file holds {source.Length - 8}");
        if (source.Gzipped && 8L + count > source.MostBytes)
            throw new DataError(path, $"truncated: the header announces {count} labels, more than a gzip file of {source.Length} bytes can hold; download the file again");
        // Each label becomes an int: four bytes for each one in the file.
        DataLimits.CheckBudget(path, 4L * count, $"the header's {count} labels", "is this the right file?");
        var bytes = new byte[count];
        int read = source.Fill(bytes);
        if (read < count || source.More())
            throw new DataError(path, $"the header announces {count} labels but the file holds {(read < count ? read.ToString() : "more")}");
        var labels = new int[count];
        for (int i = 0; i < count; i++)
        {
            labels[i] = bytes[i];
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
