namespace CnnDsl.Runtime.Data;

/// <summary>
/// Random image transformations for training. Shift, flip and rotate as Keras's
/// ImageDataGenerator in seed 001: shifts of up to 10% of the size, horizontal flips, rotations
/// of up to 10 degrees; each output pixel takes its nearest source pixel (edges repeat, Keras's
/// fill_mode 'nearest'). Then, when asked, a random crop with padding (torchvision's
/// RandomCrop(size, padding=P, padding_mode='constant' or 'reflect'): the image padded by P
/// pixels on each side, a window of the image's size at a uniform offset in 0..2P), and cutout
/// (DeVries and Taylor 2017, their code: a centre uniform over the image, the square
/// [cy - S/2, cy + S/2) x [cx - S/2, cx + S/2) clipped to the image set to 0 in every channel).
/// The draws come from (seed, step, example), so runs and resumed runs repeat exactly; nothing
/// is allocated per image.
/// </summary>
public sealed class Augmentation(bool shift, bool flip, bool rotate, int height, int width, int channels,
    int crop = 0, bool reflect = false, int cutout = 0)
{
    private readonly float[] _scratch = new float[height * width * channels];

    public bool Enabled => shift || flip || rotate || crop > 0 || cutout > 0;

    /// <summary>Whether the crop fills by reflection (`crop P reflect`) rather than with zeros.</summary>
    public bool Reflects => reflect;

    /// <summary>The train section's names: shift, flip, rotate, "crop P", "crop P reflect", "cutout S".</summary>
    public static Augmentation? From(IEnumerable<string> names, Dataset data)
    {
        bool shift = false, flip = false, rotate = false, reflect = false;
        int crop = 0, cutout = 0;
        foreach (var name in names)
        {
            var words = name.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            switch (words)
            {
                case ["shift"]: shift = true; break;
                case ["flip"]: flip = true; break;
                case ["rotate"]: rotate = true; break;
                case ["crop", var p, .. var mode] when int.TryParse(p, out crop) && crop > 0 && mode is [] or ["zero"] or ["reflect"]:
                    reflect = mode is ["reflect"]; break;
                case ["cutout", var s] when int.TryParse(s, out cutout) && cutout > 0: break;
                default: throw new ArgumentException($"unknown augmentation '{name}'");
            }
        }
        var a = new Augmentation(shift, flip, rotate, data.Height, data.Width, data.Channels, crop, reflect, cutout);
        return a.Enabled ? a : null;
    }

    public void Apply(Span<float> image, ulong seed)
    {
        var random = new SplitMix64(seed);
        if (shift || flip || rotate) Geometric(image, ref random);
        if (crop > 0)
        {
            int oy = Below(ref random, 2 * crop + 1), ox = Below(ref random, 2 * crop + 1);
            Crop(image, oy, ox);
        }
        if (cutout > 0)
        {
            int cy = Below(ref random, height), cx = Below(ref random, width);
            Cutout(image, cy, cx);
        }
    }

    /// <summary>Uniform in 0..n-1 (n small: the bias of the multiply-shift is below 2^-32).</summary>
    private static int Below(ref SplitMix64 random, int n) => (int)((random.Next() >> 32) * (ulong)n >> 32);

    private void Geometric(Span<float> image, ref SplitMix64 random)
    {
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

    /// <summary>The window at (oy, ox), each in 0..2P, of the image padded by P (zeros, or
    /// numpy's and torch's 'reflect': the edge pixel is not repeated).</summary>
    public void Crop(Span<float> image, int oy, int ox) => Translate(image, oy - crop, ox - crop);

    /// <summary>The image read from (y + dy, x + dx): moved up by dy and left by dx, the gap
    /// filled with zeros or by reflection as the crop fills it.</summary>
    public void Translate(Span<float> image, int dy, int dx)
    {
        image.CopyTo(_scratch);
        for (int y = 0; y < height; y++)
        {
            int sy = y + dy;
            if (reflect) sy = Reflect(sy, height);
            for (int x = 0; x < width; x++)
            {
                int sx = x + dx;
                if (reflect) sx = Reflect(sx, width);
                var target = image.Slice((y * width + x) * channels, channels);
                if ((uint)sy < (uint)height && (uint)sx < (uint)width)
                    _scratch.AsSpan((sy * width + sx) * channels, channels).CopyTo(target);
                else target.Clear();
            }
        }
    }

    /// <summary>Reflection about the edges without repeating them (period 2 (n - 1)), for any offset.</summary>
    private static int Reflect(int i, int n)
    {
        if (n == 1) return 0;
        int period = 2 * (n - 1);
        i %= period;
        if (i < 0) i += period;
        return i < n ? i : period - i;
    }

    /// <summary>Zeroes the square of side S about (cy, cx), clipped to the image (DeVries and Taylor's code).</summary>
    public void Cutout(Span<float> image, int cy, int cx)
    {
        int y1 = Math.Clamp(cy - cutout / 2, 0, height), y2 = Math.Clamp(cy + cutout / 2, 0, height);
        int x1 = Math.Clamp(cx - cutout / 2, 0, width), x2 = Math.Clamp(cx + cutout / 2, 0, width);
        for (int y = y1; y < y2; y++)
            image.Slice((y * width + x1) * channels, (x2 - x1) * channels).Clear();
    }
}
