using System.Globalization;

namespace CnnDsl.Runtime.Data;

/// <summary>
/// The bounds every data reader checks before it allocates, so that a broken or hostile file
/// (a gzip bomb, a header announcing billions of images, a 20000x20000 PNG) is a DataError naming
/// the file rather than minutes of work and gigabytes of memory.
/// </summary>
public static class DataLimits
{
    /// <summary>Class numbers are 0 .. MaxClasses - 1: one stray large label would otherwise ask
    /// for millions of class names (and a confusion matrix of their square).</summary>
    public const int MaxClasses = 65_536;

    /// <summary>The largest image side accepted, and the largest number of pixels of one image
    /// (4096x4096, or as many in another shape).</summary>
    public const int MaxImageSide = 16_384;
    public const long MaxImagePixels = 1L << 24;

    /// <summary>Deflate cannot expand data by more than about 1032 to 1: a gzip file announcing
    /// more than this is truncated (or not what it claims), whatever its header says.</summary>
    public const long MaxGzipRatio = 1032;

    private static long? _budget;

    /// <summary>The bytes one data set (or one input image) may take in memory: a quarter of the
    /// memory available when first asked, at least 256 MB, and never more than one array can hold.
    /// Settable, for the tests.</summary>
    public static long MemoryBudget
    {
        get => _budget ??= Math.Min(Array.MaxLength, Math.Max(256L << 20, Memory.AvailableBytes() / 4));
        set => _budget = value;
    }

    /// <summary>Throws unless `bytes` fit in the budget; `what` says what would take them.</summary>
    public static void CheckBudget(string file, long bytes, string what, string fix)
    {
        if (bytes < 0 || bytes > MemoryBudget)
            throw new DataError(file, $"{what} would take {Bytes(bytes)} in memory, more than the {Bytes(MemoryBudget)} a data set may take; {fix}");
    }

    /// <summary>A file's bytes, at most `limit` of them: a device or pipe (/dev/zero, /dev/stdin)
    /// reports no length, so File.ReadAllBytes would read until memory runs out. Past the limit
    /// it throws `tooLarge()`.</summary>
    public static byte[] ReadAtMost(string path, long limit, Func<Exception> tooLarge)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        long length = stream.CanSeek ? stream.Length : 0;
        if (length > limit) throw tooLarge();
        if (length > 0)
        {
            // a regular file: one array of its length, as File.ReadAllBytes allocates (the readers'
            // allocation tests count every byte); a file that grows meanwhile is read as it was
            var all = new byte[length];
            int got = stream.ReadAtLeast(all, all.Length, throwOnEndOfStream: false);
            return got == all.Length ? all : all[..got];
        }
        using var memory = new MemoryStream();
        var buffer = new byte[16384];
        int n;
        while ((n = stream.Read(buffer, 0, buffer.Length)) > 0)
        {
            if (memory.Length + n > limit) throw tooLarge();
            memory.Write(buffer, 0, n);
        }
        return memory.ToArray();
    }

    /// <summary>Throws unless an image of this size is accepted (checked from its header, before decoding).</summary>
    public static void CheckImage(string file, int height, int width, int channels, int bytesPerValue = 1)
    {
        if (height <= 0 || width <= 0)
            throw new DataError(file, $"the image header gives the impossible size {height}x{width}; the file is damaged");
        if (height > MaxImageSide || width > MaxImageSide || (long)height * width > MaxImagePixels)
            throw new DataError(file, $"is {height}x{width} pixels, larger than accepted (at most {MaxImageSide} pixels a side and {MaxImagePixels.ToString("N0", CultureInfo.InvariantCulture)} pixels in all, 4096x4096); resize the image first");
        CheckBudget(file, (long)height * width * channels * bytesPerValue, $"the {height}x{width}x{channels} image", "resize the image first");
    }

    /// <summary>Bytes in powers of 1024, as the summary prints them.</summary>
    public static string Bytes(long b) => b switch
    {
        >= 1L << 30 => ((double)b / (1L << 30)).ToString("0.00", CultureInfo.InvariantCulture) + " GB",
        >= 1L << 20 => ((double)b / (1L << 20)).ToString("0.00", CultureInfo.InvariantCulture) + " MB",
        >= 1L << 10 => ((double)b / (1L << 10)).ToString("0.00", CultureInfo.InvariantCulture) + " KB",
        _ => b.ToString(CultureInfo.InvariantCulture) + " B",
    };
}
