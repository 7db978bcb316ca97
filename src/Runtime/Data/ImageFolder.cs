using StbImageSharp;

namespace CnnDsl.Runtime.Data;

/// <summary>
/// A folder of images with one sub-folder per class (Keras's image_dataset_from_directory):
/// PNG, JPEG, BMP or GIF, decoded with StbImageSharp. Every image must have the size of the
/// first; a different one is an error that names the file (resize them first).
/// </summary>
public static class ImageFolder
{
    private static readonly string[] Extensions = [".png", ".jpg", ".jpeg", ".bmp", ".gif"];

    public static bool Looks(string folder) =>
        Directory.EnumerateDirectories(folder).Any(d => Directory.EnumerateFiles(d).Any(IsImage));

    private static bool IsImage(string f) => Extensions.Contains(Path.GetExtension(f).ToLowerInvariant());

    /// <summary>Decodes an image file after checking the size in its header against the limits
    /// (a 389 KB PNG can announce 20000x20000 pixels); `bytesPerValue` is what each decoded value
    /// will take once converted (8 for doubles).</summary>
    public static ImageResult Decode(string path, ColorComponents wanted, int bytesPerValue = 1)
    {
        if (!File.Exists(path)) throw new DataError(path, "no such file");
        DataLimits.CheckBudget(path, new FileInfo(path).Length, "the image file", "resize the image first");
        // the largest image accepted, uncompressed in four channels, with room for headers and filters
        long limit = Math.Min(DataLimits.MemoryBudget, 4 * DataLimits.MaxImagePixels + (16L << 20));
        var bytes = DataLimits.ReadAtMost(path, limit,
            () => new DataError(path, $"is larger than the {DataLimits.Bytes(limit)} an image file may take (a device or a pipe?); give an image file"));
        return Decode(path, bytes, wanted, bytesPerValue);
    }

    /// <summary>Decodes an image file's bytes (`name` names it in messages), with Decode's checks.</summary>
    public static ImageResult Decode(string name, byte[] bytes, ColorComponents wanted, int bytesPerValue = 1)
    {
        var path = name;
        DataLimits.CheckBudget(path, bytes.Length, "the image file", "resize the image first");
        CheckPngChunks(path, bytes);
        try
        {
            using var stream = new MemoryStream(bytes, writable: false);
            var info = ImageInfo.FromStream(stream)
                ?? throw new DataError(path, "not a readable image (not a PNG, JPEG, BMP, GIF or TGA file, or damaged)");
            DataLimits.CheckImage(path, info.Height, info.Width, wanted == ColorComponents.Default ? 4 : (int)wanted, bytesPerValue);
            stream.Position = 0;
            return ImageResult.FromStream(stream, wanted);
        }
        // The decoder reports damaged data with these (it has no exception type of its own; it reads
        // a MemoryStream, so an IOException is a seek outside the data, not a disk error).
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or IndexOutOfRangeException or NullReferenceException or OverflowException or IOException)
        {
            throw new DataError(path, $"not a readable image ({(string.IsNullOrWhiteSpace(e.Message) ? "damaged data" : e.Message.Trim())})");
        }
    }

    /// <summary>The decoder allocates what a PNG chunk's length announces before reading it: every
    /// chunk must fit in the file.</summary>
    private static void CheckPngChunks(string path, byte[] b)
    {
        ReadOnlySpan<byte> signature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];
        if (!b.AsSpan().StartsWith(signature)) return;
        long at = 8;
        while (at + 8 <= b.Length)
        {
            long length = (uint)((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]);
            if (at + 12 + length > b.Length)
                throw new DataError(path, $"not a readable image: the PNG chunk at byte {at} announces {length} bytes but the file ends at byte {b.Length}; the file is truncated or damaged");
            if (b.AsSpan((int)at + 4, 4).SequenceEqual("IEND"u8)) return;
            at += 12 + length;
        }
    }

    /// <summary>Reads `folder`; with `like` (the training set), the images must have its size
    /// and channels, and its classes are used.</summary>
    public static Dataset Read(string folder, string name, string[]? classNames = null, Dataset? like = null)
    {
        var classes = like?.ClassNames ?? classNames ?? Directory.GetDirectories(folder).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray()!;
        if (classes.Length == 0) throw new DataError(folder, "no class folders: put the images of each class in a folder of its own");
        var files = new List<(string File, int Label)>();
        for (int label = 0; label < classes.Length; label++)
        {
            var dir = Path.Combine(folder, classes[label]!);
            var found = Directory.Exists(dir) ? Directory.GetFiles(dir).Where(IsImage).Order(StringComparer.Ordinal).ToArray() : [];
            if (found.Length == 0) throw new DataError(dir, "the class folder has no images (png, jpg, bmp, gif)");
            files.AddRange(found.Select(f => (f, label)));
        }
        byte[]? pixels = null;
        var labels = new int[files.Count];
        int h = like?.Height ?? 0, w = like?.Width ?? 0, c = like?.Channels ?? 0;
        for (int n = 0; n < files.Count; n++)
        {
            var (file, label) = files[n];
            // After the first training image the others are converted to its channels; test
            // images are read as they are, so that colour ones for a grey set are an error.
            int want = like == null ? c : 0;
            var image = Decode(file, want == 1 ? ColorComponents.Grey : want == 3 ? ColorComponents.RedGreenBlue : ColorComponents.Default);
            int channels = image.Comp switch { ColorComponents.Grey => 1, ColorComponents.RedGreenBlue => 3, _ => 0 };
            if (channels == 0)
            {
                // Alpha channels are dropped: read again as RGB (or grey for grey + alpha).
                image = Decode(file, image.Comp == ColorComponents.GreyAlpha ? ColorComponents.Grey : ColorComponents.RedGreenBlue);
                channels = image.Comp == ColorComponents.Grey ? 1 : 3;
            }
            if (h == 0) { h = image.Height; w = image.Width; c = channels; }
            if (image.Height != h || image.Width != w || channels != c)
                throw new DataError(file, like == null
                    ? $"is {image.Height}x{image.Width}x{channels}, but the first image is {h}x{w}x{c}; resize the images to one size"
                    : $"is {image.Height}x{image.Width}x{channels}, but the training images are {h}x{w}x{c}; the test images in {folder} must have the training images' size and channels (resize or convert them)");
            if (pixels == null)
            {
                // Every image has the first one's size: the whole set is known, and checked, now.
                long total = (long)files.Count * h * w * c;
                DataLimits.CheckBudget(folder, total, $"{files.Count} images of {h}x{w}x{c}", "use fewer or smaller images");
                pixels = new byte[total];
            }
            image.Data.CopyTo(pixels, (long)n * h * w * c);
            labels[n] = label;
        }
        // The images are only decoded when the folder has some; Looks and the class check ensure it.
        return new Dataset(name, h, w, c, pixels!, labels, classes!);
    }
}
