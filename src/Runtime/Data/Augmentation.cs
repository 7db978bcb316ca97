namespace CnnDsl.Runtime.Data;

/// <summary>
/// Random image transformations for training, as Keras's ImageDataGenerator in seed 001:
/// shifts of up to 10% of the size, horizontal flips, rotations of up to 10 degrees. Each
/// output pixel takes its nearest source pixel (edges repeat, Keras's fill_mode 'nearest').
/// The draws come from (seed, step, example), so runs and resumed runs repeat exactly.
/// </summary>
public sealed class Augmentation(bool shift, bool flip, bool rotate, int height, int width, int channels)
{
    private readonly float[] _scratch = new float[height * width * channels];

    public bool Enabled => shift || flip || rotate;

    public static Augmentation? From(IEnumerable<string> names, Dataset data)
    {
        var set = names.ToHashSet();
        var a = new Augmentation(set.Contains("shift"), set.Contains("flip"), set.Contains("rotate"), data.Height, data.Width, data.Channels);
        return a.Enabled ? a : null;
    }

    public void Apply(Span<float> image, ulong seed)
    {
        var random = new SplitMix64(seed);
        double dy = shift ? (random.NextDouble() * 2 - 1) * 0.1 * height : 0;
        double dx = shift ? (random.NextDouble() * 2 - 1) * 0.1 * width : 0;
        bool mirror = flip && random.NextDouble() < 0.5;
        double angle = rotate ? (random.NextDouble() * 2 - 1) * 10 * Math.PI / 180 : 0;
        double cos = Math.Cos(angle), sin = Math.Sin(angle);
        double cy = (height - 1) / 2.0, cx = (width - 1) / 2.0;
        image.CopyTo(_scratch);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                // Inverse map: undo the shift, then the rotation about the centre, then the flip.
                double ry = y - dy - cy, rx = x - dx - cx;
                double sy = cos * ry + sin * rx + cy, sx = -sin * ry + cos * rx + cx;
                if (mirror) sx = width - 1 - sx;
                int iy = Math.Clamp((int)Math.Round(sy), 0, height - 1), ix = Math.Clamp((int)Math.Round(sx), 0, width - 1);
                _scratch.AsSpan((iy * width + ix) * channels, channels).CopyTo(image.Slice((y * width + x) * channels, channels));
            }
    }
}
