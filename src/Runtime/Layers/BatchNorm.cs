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
        if (training)
        {
            mean.Clear();
            variance.Clear();
            for (int i = 0; i < _n; i++)
                for (int ch = 0; ch < _c; ch++) mean[ch] += x[i * _c + ch];
            for (int ch = 0; ch < _c; ch++) mean[ch] /= n;
            for (int i = 0; i < _n; i++)
                for (int ch = 0; ch < _c; ch++) { var d = x[i * _c + ch] - mean[ch]; variance[ch] += d * d; }
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
            for (int ch = 0; ch < _c; ch++)
            {
                int j = i * _c + ch;
                var xhat = (x[j] - mean[ch]) * _inverseStd[ch];
                _normalised[j] = xhat;
                y[j] = _gamma.Value[ch] * xhat + _beta.Value[ch];
            }
        Activate();
    }

    public override void Backward()
    {
        ActivationBackward();
        var dy = Output.Gradient.AsSpan();
        var sumDy = _sum.AsSpan();
        var sumDyXhat = _sumProduct.AsSpan();
        sumDy.Clear();
        sumDyXhat.Clear();
        for (int i = 0; i < _n; i++)
            for (int ch = 0; ch < _c; ch++)
            {
                int j = i * _c + ch;
                sumDy[ch] += dy[j];
                sumDyXhat[ch] += dy[j] * _normalised[j];
            }
        if (Node.Trainable)
        {
            sumDyXhat.CopyTo(_gamma.Gradient);
            sumDy.CopyTo(_beta.Gradient);
        }
        if (!InputNeedsGradient[0]) return;
        var dx = Inputs[0].Gradient.AsSpan();
        var n = T.CreateChecked(_n);
        for (int i = 0; i < _n; i++)
            for (int ch = 0; ch < _c; ch++)
            {
                int j = i * _c + ch;
                dx[j] += _gamma.Value[ch] * _inverseStd[ch] / n * (n * dy[j] - sumDy[ch] - _normalised[j] * sumDyXhat[ch]);
            }
    }
}
