using System.Numerics;

namespace CnnDsl.Runtime;

/// <summary>
/// The train section's `normalize`: the per-channel mean and (population) standard deviation of
/// the training images, scaled to [0, 1] as the engine reads them (numpy's x.mean(axis=(0, 1, 2))
/// and x.std(axis=(0, 1, 2)) over N x H x W x C), applied as (x - mean) / deviation, torchvision's
/// Normalize. Checkpoints hold them as "normalize/mean" and "normalize/deviation"; a checkpoint
/// without them (made before, or without `normalize`) loads as mean 0 and deviation 1: the
/// inputs it was trained on.
/// </summary>
public static class Normalization
{
    public const string Mean = "normalize/mean", Deviation = "normalize/deviation";

    public static bool IsStatistic(string name) => name is Mean or Deviation;

    /// <summary>The values a statistic has when a checkpoint lacks it: no normalisation.</summary>
    public static void Identity<T>(string name, Span<T> values) where T : unmanaged, INumberBase<T> =>
        values.Fill(name == Deviation ? T.One : T.Zero);

    /// <summary>Per-channel mean and deviation of a set's examples (a deviation of 0, a constant
    /// channel, is taken as 1).</summary>
    public static (float[] Mean, float[] Deviation) Of(Data.Dataset set)
    {
        int c = set.Channels, size = set.ExampleSize;
        var sum = new double[c];
        var squares = new double[c];
        var example = new double[size];
        for (int e = 0; e < set.Count; e++)
        {
            set.CopyExample<double>(e, example);
            for (int i = 0; i < size; i++) { sum[i % c] += example[i]; squares[i % c] += example[i] * example[i]; }
        }
        long n = (long)set.Count * (size / c);
        var mean = new float[c];
        var deviation = new float[c];
        for (int k = 0; k < c; k++)
        {
            double m = n == 0 ? 0 : sum[k] / n;
            double variance = n == 0 ? 1 : Math.Max(0, squares[k] / n - m * m);
            mean[k] = (float)m;
            deviation[k] = variance > 0 ? (float)Math.Sqrt(variance) : 1;
        }
        return (mean, deviation);
    }
}
