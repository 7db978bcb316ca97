using System.Numerics;
using CnnDsl.Graph;

namespace CnnDsl.Runtime.Training;

/// <summary>
/// Keras's optimizers, with Keras's update rules and defaults (learning rates 0.01 for SGD,
/// 0.001 for Adam and RMSprop). State is one array per slot per parameter, allocated once.
/// Weight decay is decoupled (w -= lr * decay * w, as Keras 3's weight_decay) and applies
/// to kernels, not to biases or batchnorm. AdamW is PyTorch's (its own rule, its weight decay on
/// every trainable tensor but the kinds it excludes).
/// </summary>
public sealed class Optimizers
{
    private readonly Optimizer _settings;
    private readonly double _weightDecay;
    private readonly Parameter<float>[] _parameters;
    private readonly float[][] _first, _second;
    /// <summary>AdamW: whether each parameter's weights decay.</summary>
    private readonly bool[] _decayed = [];

    /// <summary>AdamW's exclusions by name: biases (/bias), batchnorm's scale and offset (/gamma, /beta).</summary>
    public static bool Decayed(string name, IEnumerable<string> excluded) =>
        !(excluded.Contains("biases") && name.EndsWith("/bias"))
        && !(excluded.Contains("batchnorm") && (name.EndsWith("/gamma") || name.EndsWith("/beta")));

    public Optimizers(Optimizer settings, IEnumerable<Parameter<float>> parameters, double weightDecay = 0)
    {
        _settings = settings;
        _weightDecay = weightDecay;
        _parameters = parameters.Where(p => p.Trainable).ToArray();
        bool needsFirst = settings is Optimizer.Adam || settings is Optimizer.AdamW || settings is Optimizer.Sgd { momentum: > 0 } || settings is Optimizer.RmsProp { momentum: > 0 };
        bool needsSecond = settings is Optimizer.Adam || settings is Optimizer.AdamW || settings is Optimizer.RmsProp;
        if (settings is Optimizer.AdamW w)
            _decayed = _parameters.Select(p => Decayed(p.Name, w.noDecay)).ToArray();
        _first = _parameters.Select(p => needsFirst ? new float[p.Value.Length] : []).ToArray();
        _second = _parameters.Select(p => needsSecond ? new float[p.Value.Length] : []).ToArray();
    }

    /// <summary>Updates taken so far (Adam's bias correction counts them).</summary>
    public long Step { get; set; }

    /// <summary>What a learning-rate schedule multiplies the configured rate by.</summary>
    public double LearningRateScale { get; set; } = 1;

    /// <summary>The rate in effect: the configured one times the schedule's scale.</summary>
    public double LearningRate => LearningRateScale * _settings switch
    {
        Optimizer.Sgd s => s.learningRate,
        Optimizer.Adam a => a.learningRate,
        Optimizer.RmsProp r => r.learningRate,
        Optimizer.AdamW a => a.learningRate,
        _ => 0,
    };

    /// <summary>The optimizer's state as named tensors, for checkpoints.</summary>
    public IEnumerable<(string Name, float[] Values)> State =>
        _parameters.Select((p, i) => (p.Name + "/m", _first[i])).Concat(_parameters.Select((p, i) => (p.Name + "/v", _second[i])))
            .Where(s => s.Item2.Length > 0);

    public void Update()
    {
        Step++;
        for (int i = 0; i < _parameters.Length; i++)
        {
            var p = _parameters[i];
            var w = p.Value.AsSpan();
            var g = p.Gradient.AsSpan();
            if (_weightDecay > 0 && p.Name.EndsWith("/kernel") && _settings is not Optimizer.AdamW)
            {
                var decay = (float)(1 - LearningRate * _weightDecay);
                for (int j = 0; j < w.Length; j++) w[j] *= decay;
            }
            switch (_settings)
            {
                case Optimizer.Sgd s: Sgd(w, g, _first[i], (float)LearningRate, (float)s.momentum, s.nesterov); break;
                case Optimizer.Adam a: Adam(w, g, _first[i], _second[i], a); break;
                case Optimizer.RmsProp r: RmsProp(w, g, _first[i], _second[i], r, (float)LearningRate); break;
                case Optimizer.AdamW a: AdamW(w, g, _first[i], _second[i], a, _decayed[i]); break;
            }
        }
    }

    /// <summary>m = momentum m - lr g; w += m (or, Nesterov, w += momentum m - lr g).</summary>
    private static void Sgd(Span<float> w, ReadOnlySpan<float> g, Span<float> m, float lr, float momentum, bool nesterov)
    {
        if (momentum == 0) { for (int j = 0; j < w.Length; j++) w[j] -= lr * g[j]; return; }
        for (int j = 0; j < w.Length; j++)
        {
            m[j] = momentum * m[j] - lr * g[j];
            w[j] += nesterov ? momentum * m[j] - lr * g[j] : m[j];
        }
    }

    /// <summary>Kingma and Ba (2015), in Keras's form: lr_t = lr sqrt(1 - b2^t) / (1 - b1^t),
    /// w -= lr_t m / (sqrt(v) + eps).</summary>
    private void Adam(Span<float> w, ReadOnlySpan<float> g, Span<float> m, Span<float> v, Optimizer.Adam a)
    {
        float b1 = (float)a.beta1, b2 = (float)a.beta2, eps = (float)a.epsilon;
        var lrT = (float)(LearningRate * Math.Sqrt(1 - Math.Pow(a.beta2, Step)) / (1 - Math.Pow(a.beta1, Step)));
        int j = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var vm = System.Runtime.InteropServices.MemoryMarshal.Cast<float, Vector<float>>(m);
            var vv = System.Runtime.InteropServices.MemoryMarshal.Cast<float, Vector<float>>(v);
            var vw = System.Runtime.InteropServices.MemoryMarshal.Cast<float, Vector<float>>(w);
            var vg = System.Runtime.InteropServices.MemoryMarshal.Cast<float, Vector<float>>(g);
            Vector<float> B1 = new(b1), B2 = new(b2), C1 = new(1 - b1), C2 = new(1 - b2), E = new(eps), L = new(lrT);
            for (int k = 0; k < vw.Length; k++)
            {
                vm[k] = B1 * vm[k] + C1 * vg[k];
                vv[k] = B2 * vv[k] + C2 * vg[k] * vg[k];
                vw[k] -= L * vm[k] / (Vector.SquareRoot(vv[k]) + E);
            }
            j = vw.Length * Vector<float>.Count;
        }
        for (; j < w.Length; j++)
        {
            m[j] = b1 * m[j] + (1 - b1) * g[j];
            v[j] = b2 * v[j] + (1 - b2) * g[j] * g[j];
            w[j] -= lrT * m[j] / (MathF.Sqrt(v[j]) + eps);
        }
    }

    /// <summary>PyTorch's AdamW (torch/optim/adamw.py, single-tensor): w *= 1 - lr wd; m, v as Adam;
    /// w -= lr / (1 - b1^t) m / (sqrt(v) / sqrt(1 - b2^t) + eps).</summary>
    private void AdamW(Span<float> w, ReadOnlySpan<float> g, Span<float> m, Span<float> v, Optimizer.AdamW a, bool decayed)
    {
        float b1 = (float)a.beta1, b2 = (float)a.beta2, eps = (float)a.epsilon;
        if (decayed && a.weightDecay > 0)
        {
            var decay = (float)(1 - LearningRate * a.weightDecay);
            for (int j = 0; j < w.Length; j++) w[j] *= decay;
        }
        var stepSize = (float)(LearningRate / (1 - Math.Pow(a.beta1, Step)));
        var correction = (float)Math.Sqrt(1 - Math.Pow(a.beta2, Step));
        for (int j = 0; j < w.Length; j++)
        {
            m[j] = b1 * m[j] + (1 - b1) * g[j];
            v[j] = b2 * v[j] + (1 - b2) * g[j] * g[j];
            w[j] -= stepSize * m[j] / (MathF.Sqrt(v[j]) / correction + eps);
        }
    }

    /// <summary>v = rho v + (1 - rho) g^2; step = lr g / sqrt(v + eps) (Keras's placement of eps, unlike
    /// Adam's); with momentum m = momentum m + step, w -= m.</summary>
    private static void RmsProp(Span<float> w, ReadOnlySpan<float> g, Span<float> m, Span<float> v, Optimizer.RmsProp r, float lr)
    {
        float rho = (float)r.rho, eps = (float)r.epsilon, momentum = (float)r.momentum;
        for (int j = 0; j < w.Length; j++)
        {
            v[j] = rho * v[j] + (1 - rho) * g[j] * g[j];
            var step = lr * g[j] / MathF.Sqrt(v[j] + eps);
            if (momentum > 0) { m[j] = momentum * m[j] + step; w[j] -= m[j]; }
            else w[j] -= step;
        }
    }
}
