using System.Numerics;
using CnnDsl.Graph;

namespace CnnDsl.Runtime.Layers;

/// <summary>
/// Batch normalisation over every axis but channels (Ioffe and Szegedy, 2015):
/// y = gamma * (x - mean) / sqrt(var + eps) + beta, with the batch's statistics in training
/// (and moving averages updated with Keras's momentum) and the moving ones in inference.
/// Backward (training): dx = gamma / sqrt(var + eps) / N * (N dy - sum(dy) - xhat * sum(dy xhat)).
/// </summary>
public sealed class BatchNorm<T> : Layer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly int _c, _n;
    private readonly T _epsilon, _momentum;
    private readonly Parameter<T> _gamma, _beta, _movingMean, _movingVariance;
    private readonly T[] _normalised, _inverseStd, _sum, _sumProduct;

    public BatchNorm(Node node, Activations<T>[] inputs, int batch) : base(node, inputs, batch)
    {
        var settings = ((LayerKind.BatchNormalization)node.Kind).Item;
        _epsilon = T.CreateChecked(settings.Epsilon);
        _momentum = T.CreateChecked(settings.Momentum);
        _c = Shapes.Channels(node.OutputShape);
        _n = batch * Shapes.Elements(node.OutputShape) / _c;
        _gamma = new Parameter<T>(node.Name + "/gamma", [_c], node.Trainable);
        _beta = new Parameter<T>(node.Name + "/beta", [_c], node.Trainable);
        _movingMean = new Parameter<T>(node.Name + "/moving_mean", [_c], false);
        _movingVariance = new Parameter<T>(node.Name + "/moving_variance", [_c], false);
        _gamma.Value.AsSpan().Fill(T.One);
        _movingVariance.Value.AsSpan().Fill(T.One);
        _normalised = new T[Output.Value.Length];
        _inverseStd = new T[_c];
        _sum = new T[_c];
        _sumProduct = new T[_c];
    }

    public override IReadOnlyList<Parameter<T>> Parameters => [_gamma, _beta];
    public override IReadOnlyList<Parameter<T>> State => [_movingMean, _movingVariance];
    public override long WorkspaceBytes => BytesOf(_normalised) + BytesOf(_inverseStd) + BytesOf(_sum) + BytesOf(_sumProduct);

    public override void Forward(bool training)
    {
        var x = Inputs[0].Value.AsSpan();
        var y = Output.Value.AsSpan();
        var n = T.CreateChecked(_n);
        var mean = _sum.AsSpan();
        var variance = _sumProduct.AsSpan();
        // NHWC: each pixel is a row of the C channels, so every step runs along contiguous rows.
        if (training)
        {
            Vectorised.SumRows<T>(x, mean);
            for (int ch = 0; ch < _c; ch++) mean[ch] /= n;
            variance.Clear();
            for (int i = 0; i < _n; i++) SquaredDeviation(x.Slice(i * _c, _c), mean, variance);
            for (int ch = 0; ch < _c; ch++)
            {
                variance[ch] /= n;
                _movingMean.Value[ch] = _momentum * _movingMean.Value[ch] + (T.One - _momentum) * mean[ch];
                _movingVariance.Value[ch] = _momentum * _movingVariance.Value[ch] + (T.One - _momentum) * variance[ch];
            }
        }
        else
        {
            _movingMean.Value.CopyTo(mean);
            _movingVariance.Value.CopyTo(variance);
        }
        for (int ch = 0; ch < _c; ch++) _inverseStd[ch] = T.One / T.Sqrt(variance[ch] + _epsilon);
        for (int i = 0; i < _n; i++)
            Normalise(x.Slice(i * _c, _c), mean, _inverseStd, _gamma.Value, _beta.Value, _normalised.AsSpan(i * _c, _c), y.Slice(i * _c, _c));
        Activate();
    }

    public override void Backward()
    {
        ActivationBackward();
        var dy = Output.Gradient.AsSpan();
        var sumDy = _sum.AsSpan();
        var sumDyXhat = _sumProduct.AsSpan();
        Vectorised.SumRows<T>(dy, sumDy);
        sumDyXhat.Clear();
        for (int i = 0; i < _n; i++) MultiplyAdd(dy.Slice(i * _c, _c), _normalised.AsSpan(i * _c, _c), sumDyXhat);
        if (Node.Trainable)
        {
            sumDyXhat.CopyTo(_gamma.Gradient);
            sumDy.CopyTo(_beta.Gradient);
        }
        if (!InputNeedsGradient[0]) return;
        var dx = Inputs[0].Gradient.AsSpan();
        var n = T.CreateChecked(_n);
        // dx = k (n dy - sum(dy) - xhat sum(dy xhat)) with k = gamma / sqrt(var + eps) / n per channel;
        // _inverseStd becomes k here (forward sets it again before the next use).
        for (int ch = 0; ch < _c; ch++) _inverseStd[ch] = _gamma.Value[ch] * _inverseStd[ch] / n;
        for (int i = 0; i < _n; i++)
            InputGradient(dy.Slice(i * _c, _c), _normalised.AsSpan(i * _c, _c), _inverseStd, sumDy, sumDyXhat, n, dx.Slice(i * _c, _c));
    }

    private static void SquaredDeviation(ReadOnlySpan<T> x, ReadOnlySpan<T> mean, Span<T> into)
    {
        int j = 0, w = Vector<T>.Count;
        for (; j + w <= x.Length; j += w)
        {
            var d = new Vector<T>(x[j..]) - new Vector<T>(mean[j..]);
            (new Vector<T>(into[j..]) + d * d).CopyTo(into[j..]);
        }
        for (; j < x.Length; j++) { var d = x[j] - mean[j]; into[j] += d * d; }
    }

    private static void Normalise(ReadOnlySpan<T> x, ReadOnlySpan<T> mean, ReadOnlySpan<T> inverseStd, ReadOnlySpan<T> gamma, ReadOnlySpan<T> beta, Span<T> xhat, Span<T> y)
    {
        int j = 0, w = Vector<T>.Count;
        for (; j + w <= x.Length; j += w)
        {
            var h = (new Vector<T>(x[j..]) - new Vector<T>(mean[j..])) * new Vector<T>(inverseStd[j..]);
            h.CopyTo(xhat[j..]);
            (new Vector<T>(gamma[j..]) * h + new Vector<T>(beta[j..])).CopyTo(y[j..]);
        }
        for (; j < x.Length; j++)
        {
            xhat[j] = (x[j] - mean[j]) * inverseStd[j];
            y[j] = gamma[j] * xhat[j] + beta[j];
        }
    }

    private static void MultiplyAdd(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> into)
    {
        int j = 0, w = Vector<T>.Count;
        for (; j + w <= a.Length; j += w)
            (new Vector<T>(into[j..]) + new Vector<T>(a[j..]) * new Vector<T>(b[j..])).CopyTo(into[j..]);
        for (; j < a.Length; j++) into[j] += a[j] * b[j];
    }

    private static void InputGradient(ReadOnlySpan<T> dy, ReadOnlySpan<T> xhat, ReadOnlySpan<T> k, ReadOnlySpan<T> sumDy, ReadOnlySpan<T> sumDyXhat, T n, Span<T> dx)
    {
        int j = 0, w = Vector<T>.Count;
        var vn = new Vector<T>(n);
        for (; j + w <= dy.Length; j += w)
        {
            var g = new Vector<T>(k[j..]) * (vn * new Vector<T>(dy[j..]) - new Vector<T>(sumDy[j..]) - new Vector<T>(xhat[j..]) * new Vector<T>(sumDyXhat[j..]));
            (new Vector<T>(dx[j..]) + g).CopyTo(dx[j..]);
        }
        for (; j < dy.Length; j++) dx[j] += k[j] * (n * dy[j] - sumDy[j] - xhat[j] * sumDyXhat[j]);
    }
}
