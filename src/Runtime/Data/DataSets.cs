namespace CnnDsl.Runtime.Data;

/// <summary>
/// Resolves data-set names and paths. A name (`fashion-mnist`, `mnist`, `cifar10`) is looked
/// for, in order, in: the folders of CNNDSL_DATA (separated by ':'), ~/.cache/cnndsl, and
/// /usr/share/datasets (Debian's dataset packages); a path is read as it is. `xor` and
/// `shapes` are built in.
/// </summary>
public static class DataSets
{
    public static readonly string[] FashionMnistClasses =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    private static readonly string[] ShapeClasses = ["horizontal", "vertical", "square"];

    private static readonly string[] Digits = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

    private static readonly Dictionary<string, string[]> FolderNames = new()
    {
        ["fashion-mnist"] = ["fashion-mnist", "fashion_mnist", "FashionMNIST"],
        ["mnist"] = ["mnist", "MNIST"],
        ["cifar10"] = ["cifar-10", "cifar10", "cifar-10-batches-bin"],
    };

    /// <summary>The class names of a named data set, without loading it (null when unknown).</summary>
    public static string[]? ClassNamesOf(string? name) => name?.Trim().ToLowerInvariant() switch
    {
        "fashion-mnist" => FashionMnistClasses,
        "mnist" => Digits,
        "cifar10" => Cifar10.ClassNames,
        "shapes" => ShapeClasses,
        _ => null,
    };

    public static IEnumerable<string> SearchFolders()
    {
        var env = Environment.GetEnvironmentVariable("CNNDSL_DATA");
        if (!string.IsNullOrEmpty(env))
            foreach (var f in env.Split(':', StringSplitOptions.RemoveEmptyEntries)) yield return f;
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (!string.IsNullOrEmpty(home)) yield return Path.Combine(home, ".cache", "cnndsl");
        yield return "/usr/share/datasets";
    }

    private static readonly string[] IdxFiles =
        ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];

    private static string? Find(string folder, string file) =>
        new[] { file + ".gz", file }.Select(f => Path.Combine(folder, f)).FirstOrDefault(File.Exists);

    /// <summary>Loads a data set by name or folder; a DataError says what was looked for where.</summary>
    public static DataSplit Load(string nameOrPath)
    {
        var key = nameOrPath.Trim().ToLowerInvariant();
        if (key == "xor") return Xor();
        if (key == "shapes") return Shapes(2000, 500, 1);
        if (Directory.Exists(nameOrPath)) return LoadFolder(nameOrPath, Path.GetFileName(Path.GetFullPath(nameOrPath).TrimEnd('/')));
        if (File.Exists(nameOrPath) && nameOrPath.EndsWith(".csv", StringComparison.OrdinalIgnoreCase))
            return HoldOut(CsvImages.Read(nameOrPath, Path.GetFileNameWithoutExtension(nameOrPath)));
        if (!FolderNames.TryGetValue(key, out var folders))
            throw new DataError(nameOrPath,
                "no such folder or .csv file, and not a known data set; use fashion-mnist, mnist, cifar10, xor, shapes, a .csv file, or a folder holding IDX files, CIFAR-10 binary batches or a folder of images per class");
        var tried = new List<string>();
        foreach (var root in SearchFolders())
            foreach (var f in folders)
            {
                var folder = Path.Combine(root, f);
                tried.Add(folder);
                if (Directory.Exists(folder)) return LoadFolder(folder, key);
            }
        var how = key == "fashion-mnist"
            ? "install it with 'apt-get install dataset-fashion-mnist' (scripts/setup.sh does)"
            : "put the official files in one of these folders, or set CNNDSL_DATA to a folder that holds it";
        throw new DataError(nameOrPath, $"data set not found; looked in {string.Join(", ", tried)}; {how}");
    }

    private static DataSplit LoadFolder(string folder, string name)
    {
        var idx = IdxFiles.Select(f => Find(folder, f)).ToArray();
        if (idx.All(f => f != null))
        {
            var classes = name.Contains("fashion") ? FashionMnistClasses : Digits;
            var trainSet = Idx.Read(name, idx[0]!, idx[1]!, classes);
            var testSet = Idx.Read(name, idx[2]!, idx[3]!, classes);
            // The test images fill the model's input as the training images do: another size
            // would be packed into the wrong places (and a test accuracy reported for nonsense).
            if (testSet.ShapeText != trainSet.ShapeText)
                throw new DataError(idx[2]!, $"the test images are {testSet.ShapeText} but the training images ({Path.GetFileName(idx[0])}) are {trainSet.ShapeText}; the test set must have the training set's size");
            return new DataSplit(trainSet, testSet);
        }
        var train = Enumerable.Range(1, 5).Select(i => Find(folder, $"data_batch_{i}.bin")).ToArray();
        var test = Find(folder, "test_batch.bin");
        if (train.All(f => f != null) && test != null)
            return new DataSplit(Cifar10.Read(name, train!), Cifar10.Read(name, [test]));
        // Image folders: train/ and test/ with a folder per class, or just a folder per class.
        string trainDir = Path.Combine(folder, "train"), testDir = Path.Combine(folder, "test");
        if (Directory.Exists(trainDir) && Directory.Exists(testDir) && ImageFolder.Looks(trainDir))
        {
            var trainSet = ImageFolder.Read(trainDir, name);
            return new DataSplit(trainSet, ImageFolder.Read(testDir, name, like: trainSet));
        }
        if (ImageFolder.Looks(folder)) return HoldOut(ImageFolder.Read(folder, name));
        var missing = IdxFiles.Where(f => Find(folder, f) == null).Select(f => f + "[.gz]");
        throw new DataError(folder,
            $"holds neither the four IDX files (missing {string.Join(", ", missing)}), nor CIFAR-10's data_batch_1..5.bin and test_batch.bin, nor a folder of images per class");
    }

    /// <summary>A set with no test part of its own: every tenth example (a class-balanced,
    /// order-independent choice) becomes the test set.</summary>
    public static DataSplit HoldOut(Dataset all)
    {
        var test = Enumerable.Range(0, all.Count).Where(i => i % 10 == 9).ToArray();
        var train = Enumerable.Range(0, all.Count).Where(i => i % 10 != 9).ToArray();
        return new DataSplit(Pick(all, train), Pick(all, test));
    }

    private static Dataset Pick(Dataset all, int[] indices)
    {
        var pixels = new byte[indices.Length * all.ExampleSize];
        for (int i = 0; i < indices.Length; i++)
            all.Pixels.AsSpan(indices[i] * all.ExampleSize, all.ExampleSize).CopyTo(pixels.AsSpan(i * all.ExampleSize));
        return new Dataset(all.Name, all.Height, all.Width, all.Channels, pixels, indices.Select(i => all.Labels[i]).ToArray(), all.ClassNames);
    }

    /// <summary>Seed 001's XOR: the four points, as one-pixel pairs scaled to 0 and 1.</summary>
    public static DataSplit Xor()
    {
        var pixels = new byte[] { 0, 0, 0, 255, 255, 0, 255, 255 };
        var labels = new[] { 0, 1, 1, 0 };
        var set = new Dataset("xor", 1, 1, 2, pixels, labels, ["0", "1"]);
        return new DataSplit(set, set);
    }

    /// <summary>A small generated image set for quick tries and tests: grey images (16x16
    /// unless a model asks for another size) of a horizontal bar, a vertical bar or a square at
    /// random places, with noise; colour images repeat the grey level in every channel.</summary>
    public static DataSplit Shapes(int train, int test, int seed, int height = 16, int width = 16, int channels = 1)
    {
        // The figure is 5/16 of the smaller side, placed at least 2/16 from the edges, as at 16x16.
        int side = Math.Min(height, width), length = Math.Max(1, side * 5 / 16), margin = Math.Max(0, side * 2 / 16);
        // Refused before anything is generated (--limit applies only afterwards): a large model
        // input would otherwise overflow or fill the memory with noise.
        long total = (long)(train + test) * height * width * channels;
        int fits = (int)Math.Sqrt(DataLimits.MemoryBudget / ((long)(train + test) * channels));
        DataLimits.CheckBudget("shapes", total, $"at {height}x{width}x{channels}, the {train} training and {test} test images generated",
            $"give the model an input of at most {fits}x{fits}x{channels} to train on shapes, or use a data set of your own");
        int size = height * width * channels;
        Dataset Make(int count, int s)
        {
            var rng = new Random(s);
            var pixels = new byte[(long)count * size];
            var labels = new int[count];
            for (int n = 0; n < count; n++)
            {
                int label = rng.Next(3);
                int x0 = rng.Next(margin, Math.Max(margin + 1, width - margin - length + 1));
                int y0 = rng.Next(margin, Math.Max(margin + 1, height - margin - length + 1));
                int thick = Math.Max(1, length / 5);
                labels[n] = label;
                var img = pixels.AsSpan(n * size, size);
                for (int i = 0; i < height * width; i++)
                {
                    var v = (byte)rng.Next(40);
                    for (int ch = 0; ch < channels; ch++) img[i * channels + ch] = v;
                }
                for (int d = 0; d < length; d++)
                    for (int e = 0; e < (label == 2 ? length : thick); e++)
                    {
                        int y = label == 0 ? y0 + e : y0 + d, x = label == 0 ? x0 + d : x0 + e;
                        if (y >= height || x >= width) continue;
                        var v = (byte)(200 + rng.Next(55));
                        for (int ch = 0; ch < channels; ch++) img[(y * width + x) * channels + ch] = v;
                    }
            }
            return new Dataset("shapes", height, width, channels, pixels, labels, ShapeClasses);
        }
        return new DataSplit(Make(train, seed), Make(test, seed + 1));
    }

    /// <summary>Load, with the generated `shapes` set made at a model's input size.</summary>
    public static DataSplit Load(string nameOrPath, int height, int width, int channels) =>
        nameOrPath.Trim().Equals("shapes", StringComparison.OrdinalIgnoreCase)
            ? Shapes(2000, 500, 1, height, width, channels)
            : Load(nameOrPath);
}
