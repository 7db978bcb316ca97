// Shared by both sides of the comparison harness (bench/Program.cs and bench/Torch): the same
// examples in the same order, and the same way of measuring memory.
using CnnDsl.Runtime.Data;

static class BenchData
{
    /// <summary>The training set a model's benchmark uses: its named data set (Fashion-MNIST,
    /// CIFAR-10 through the usual search path) or, where that is absent, generated pixels of
    /// the model's input size (speed does not depend on what the pixels show).</summary>
    public static (Dataset Data, string Source) Load(string name, int height, int width, int channels)
    {
        try
        {
            var train = DataSets.Load(name).Train;
            if (train.Height == height && train.Width == width && train.Channels == channels) return (train, name);
        }
        catch (DataError) { }
        const int count = 10_000;
        var rng = new Random(7);
        var pixels = new byte[count * height * width * channels];
        rng.NextBytes(pixels);
        var labels = new int[count];
        for (int i = 0; i < count; i++) labels[i] = rng.Next(10);
        var classes = Enumerable.Range(0, 10).Select(i => i.ToString()).ToArray();
        return (new Dataset("generated", height, width, channels, pixels, labels, classes), $"generated {height}x{width}x{channels} (no {name} here)");
    }

    /// <summary>The order both engines draw batches in.</summary>
    public static int[] Order(int count)
    {
        var order = Enumerable.Range(0, count).ToArray();
        new Random(1234).Shuffle(order);
        return order;
    }

    /// <summary>Resident memory now and at its peak (Linux's VmRSS and VmHWM), in MB.</summary>
    public static (double Now, double Peak) ResidentMegabytes()
    {
        double now = double.NaN, peak = double.NaN;
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal)) now = Kilobytes(line) / 1024.0;
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal)) peak = Kilobytes(line) / 1024.0;
        }
        return (now, peak);
        static double Kilobytes(string line) => double.Parse(line.Split(':')[1].Trim().Split(' ')[0]);
    }

    public static double Median(List<double> values)
    {
        var v = values.OrderBy(x => x).ToList();
        return v.Count % 2 == 1 ? v[v.Count / 2] : 0.5 * (v[v.Count / 2 - 1] + v[v.Count / 2]);
    }
}
