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

    public static Dataset Read(string folder, string name, string[]? classNames = null)
    {
        var classes = classNames ?? Directory.GetDirectories(folder).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray()!;
        if (classes.Length == 0) throw new DataError(folder, "no class folders: put the images of each class in a folder of its own");
        var pixels = new List<byte>();
        var labels = new List<int>();
        int h = 0, w = 0, c = 0;
        for (int label = 0; label < classes.Length; label++)
        {
            var dir = Path.Combine(folder, classes[label]!);
            var files = Directory.Exists(dir) ? Directory.GetFiles(dir).Where(IsImage).Order(StringComparer.Ordinal).ToArray() : [];
            if (files.Length == 0) throw new DataError(dir, "the class folder has no images (png, jpg, bmp, gif)");
            foreach (var file in files)
            {
                ImageResult image;
                try
                {
                    using var stream = File.OpenRead(file);
                    image = ImageResult.FromStream(stream, c == 1 ? ColorComponents.Grey : c == 3 ? ColorComponents.RedGreenBlue : ColorComponents.Default);
                }
                catch (Exception e) when (e is InvalidOperationException or ArgumentException or IndexOutOfRangeException or NullReferenceException)
                {
                    throw new DataError(file, $"not a readable image ({e.Message})");
                }
                int channels = image.Comp switch { ColorComponents.Grey => 1, ColorComponents.RedGreenBlue => 3, _ => 0 };
                if (channels == 0)
                {
                    // Alpha channels are dropped: read again as RGB (or grey for grey + alpha).
                    using var again = File.OpenRead(file);
                    image = ImageResult.FromStream(again, image.Comp == ColorComponents.GreyAlpha ? ColorComponents.Grey : ColorComponents.RedGreenBlue);
                    channels = image.Comp == ColorComponents.Grey ? 1 : 3;
                }
                if (h == 0) { h = image.Height; w = image.Width; c = channels; }
                else if (image.Height != h || image.Width != w || channels != c)
                    throw new DataError(file, $"is {image.Height}x{image.Width}x{channels}, but the first image is {h}x{w}x{c}; resize the images to one size");
                pixels.AddRange(image.Data);
                labels.Add(label);
            }
        }
        return new Dataset(name, h, w, c, pixels.ToArray(), labels.ToArray(), classes!);
    }
}
