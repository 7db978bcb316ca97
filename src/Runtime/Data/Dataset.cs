namespace CnnDsl.Runtime.Data;

/// <summary>A bad data file: which file, which record where it applies, and what was wrong.</summary>
public sealed class DataError(string file, string message) : Exception($"{file}: {message}")
{
    public string File { get; } = file;
    public string Problem { get; } = message;
}

/// <summary>
/// Labelled images as bytes (0-255, NHWC), scaled to [0, 1] when a batch is filled: a
/// quarter of the memory of floats, which matters for CIFAR-10's 50,000 colour images.
/// </summary>
public sealed class Dataset(string name, int height, int width, int channels, byte[] pixels, int[] labels, string[] classNames)
{
    public string Name { get; } = name;
    public int Height { get; } = height;
    public int Width { get; } = width;
    public int Channels { get; } = channels;
    public byte[] Pixels { get; } = pixels;
    public int[] Labels { get; } = labels;
    public string[] ClassNames { get; } = classNames;
    public int Count => Labels.Length;
    public int ExampleSize => Height * Width * Channels;

    /// <summary>Examples start .. start + count (a copy).</summary>
    public Dataset Slice(int start, int count)
    {
        var pixels = Pixels.AsSpan(start * ExampleSize, count * ExampleSize).ToArray();
        return new Dataset(Name, Height, Width, Channels, pixels, Labels.AsSpan(start, count).ToArray(), ClassNames);
    }

    /// <summary>Writes example `index` into a batch slot, scaled to [0, 1].</summary>
    public void CopyExample<T>(int index, Span<T> into) where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        var source = Pixels.AsSpan(index * ExampleSize, ExampleSize);
        var scale = T.One / T.CreateChecked(255);
        for (int i = 0; i < source.Length; i++) into[i] = T.CreateChecked(source[i]) * scale;
    }

    public string ShapeText => $"{Height}x{Width}x{Channels}";
}

/// <summary>A training set and a test set.</summary>
public sealed record DataSplit(Dataset Train, Dataset Test);
