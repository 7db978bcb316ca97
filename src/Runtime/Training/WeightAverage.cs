using System.Numerics;
using System.Runtime.InteropServices;

namespace CnnDsl.Runtime.Training;

/// <summary>
/// An exponential moving average of a network's weights, as timm's ModelEmaV2: a copy of every
/// tensor a checkpoint holds (parameters and batchnorm statistics), started from the weights and
/// after every optimizer step set to decay ema + (1 - decay) w. Swap exchanges the averages and
/// the live weights in place (evaluation runs on the averages), allocating nothing.
/// </summary>
public sealed class WeightAverage
{
    private readonly Parameter<float>[] _weights;
    private readonly float[][] _average;

    public WeightAverage(IEnumerable<Parameter<float>> weights, double decay)
    {
        if (!(decay > 0 && decay < 1)) throw new ArgumentOutOfRangeException(nameof(decay), decay, "the decay is in (0, 1)");
        Decay = decay;
        _weights = weights.ToArray();
        _average = _weights.Select(p => (float[])p.Value.Clone()).ToArray();
    }

    public double Decay { get; }

    /// <summary>The checkpoint names of the averages: "ema/" and the weight's name.</summary>
    public const string Prefix = "ema/";

    public IEnumerable<(string Name, float[] Values)> Tensors => _weights.Select((p, i) => (Prefix + p.Name, _average[i]));

    /// <summary>Starts the averages at the current weights (a new run).</summary>
    public void Reset()
    {
        for (int i = 0; i < _weights.Length; i++) _weights[i].Value.CopyTo(_average[i], 0);
    }

    /// <summary>ema = decay ema + (1 - decay) w, for every tensor (timm's ModelEmaV2.update).</summary>
    public void Update()
    {
        float d = (float)Decay, rest = (float)(1 - Decay);
        for (int i = 0; i < _weights.Length; i++)
        {
            var w = _weights[i].Value.AsSpan();
            var e = _average[i].AsSpan();
            int j = 0;
            if (Vector.IsHardwareAccelerated)
            {
                var ve = MemoryMarshal.Cast<float, Vector<float>>(e);
                var vw = MemoryMarshal.Cast<float, Vector<float>>(w);
                Vector<float> D = new(d), R = new(rest);
                for (int k = 0; k < ve.Length; k++) ve[k] = D * ve[k] + R * vw[k];
                j = ve.Length * Vector<float>.Count;
            }
            for (; j < e.Length; j++) e[j] = d * e[j] + rest * w[j];
        }
    }

    /// <summary>Exchanges the live weights and the averages (twice restores them).</summary>
    public void Swap()
    {
        for (int i = 0; i < _weights.Length; i++)
        {
            var w = _weights[i].Value.AsSpan();
            var e = _average[i].AsSpan();
            for (int j = 0; j < e.Length; j++) (w[j], e[j]) = (e[j], w[j]);
        }
    }
}
