using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using CnnDsl.Graph;

namespace CnnDsl.Runtime.Layers;

/// <summary>
/// Batch normalisation over every axis but channels (Ioffe and Szegedy, 2015):
/// y = gamma * (x - mean) / sqrt(var + eps) + beta, with the batch's statistics in training
/// (and moving averages updated with Keras's momentum) and the moving ones in inference.
/// Backward (training): dx = gamma / sqrt(var + eps) / N * (N dy - sum(dy) - xhat * sum(dy xhat)).
/// The data is NHWC, so it is walked flat in whole vectors, with the per-channel values laid
/// out as a ChannelPattern; xhat is not kept but recomputed from x in backward (one buffer
/// of the output's size less, and one pass less over memory).
/// </summary>
public sealed class BatchNorm<T> : Layer<T>, IBatchWork where T : unmanaged, IFloatingPointIeee754<T>
{
    // The passes run over units: whole images, split over the layer threads, when an image is a
    // whole number of the pattern's periods (each image's sums then start at period position 0
    // and go to its own accumulators, added in image order after: the result does not depend on
    // the thread count); otherwise the batch's real rows as one unit.
    private readonly bool _byImage;
    private int Units => _byImage ? Rows : 1;
    private int UnitLength => _byImage ? _perExample : Rows * _perExample;
    private readonly T[] _partials, _partials2;
    private enum Job { Sum, Deviation, Affine, SumAndDot, AddLinear }
    private Job _job;
    private bool _relu;
    private readonly int _c, _perExample;
    // Values per channel in the batch's real rows: the N of the statistics.
    private int N => Rows * _perExample / _c;
    private readonly T _epsilon, _momentum;
    private readonly Parameter<T> _gamma, _beta, _movingMean, _movingVariance;
    // Per channel: the mean and 1 / sqrt(var + eps) that forward used (backward needs them),
    // and two sums (the variance in forward; sum(dy) and sum(dy x) in backward).
    private readonly T[] _mean, _inverseStd, _sum, _sumProduct;
    private readonly ChannelPattern<T> _pattern;

    /// <param name="output">the convolution's buffer when the network folds this layer into it (inference)</param>
    public BatchNorm(Node node, Activations<T>[] inputs, int batch, Activations<T>? output = null) : base(node, inputs, batch, output)
    {
        var settings = ((LayerKind.BatchNormalization)node.Kind).Item;
        _epsilon = T.CreateChecked(settings.Epsilon);
        _momentum = T.CreateChecked(settings.Momentum);
        _c = Shapes.Channels(node.OutputShape);
        _perExample = Shapes.Elements(node.OutputShape);
        _gamma = new Parameter<T>(node.Name + "/gamma", [_c], node.Trainable);
        _beta = new Parameter<T>(node.Name + "/beta", [_c], node.Trainable);
        _movingMean = new Parameter<T>(node.Name + "/moving_mean", [_c], false);
        _movingVariance = new Parameter<T>(node.Name + "/moving_variance", [_c], false);
        _gamma.Value.AsSpan().Fill(T.One);
        _movingVariance.Value.AsSpan().Fill(T.One);
        _mean = new T[_c];
        _inverseStd = new T[_c];
        _sum = new T[_c];
        _sumProduct = new T[_c];
        _pattern = new ChannelPattern<T>(_c);
        _byImage = _perExample % _pattern.Length == 0;
        _partials = new T[(_byImage ? batch : 1) * _pattern.Length];
        _partials2 = new T[(_byImage ? batch : 1) * _pattern.Length];
    }

    public override IReadOnlyList<Parameter<T>> Parameters => [_gamma, _beta];
    public override IReadOnlyList<Parameter<T>> State => [_movingMean, _movingVariance];
    /// <summary>Four per-channel arrays and the units' partial sums (MemoryPlan counts them; the pattern's few vectors are not counted).</summary>
    public override long WorkspaceBytes => BytesOf(_mean) + BytesOf(_inverseStd) + BytesOf(_sum) + BytesOf(_sumProduct) + BytesOf(_partials) + BytesOf(_partials2);

    /// <summary>The inference transform y = scale x + shift per channel: scale = gamma / sqrt(moving
    /// variance + eps), shift = beta - scale moving mean (what a convolution folds in).</summary>
    internal void InferenceAffine(Span<T> scale, Span<T> shift)
    {
        for (int ch = 0; ch < _c; ch++)
        {
            scale[ch] = _gamma.Value[ch] / T.Sqrt(_movingVariance.Value[ch] + _epsilon);
            shift[ch] = _beta.Value[ch] - scale[ch] * _movingMean.Value[ch];
        }
    }

    public override void Forward(bool training)
    {
        // folded into the convolution before, which wrote this layer's output (an inference
        // network, which Network keeps out of training mode)
        if (SharesInput) return;
        var n = T.CreateChecked(N);
        if (training)
        {
            RunUnits(Job.Sum);
            _pattern.FoldAll(_partials, Units, _mean);
            for (int ch = 0; ch < _c; ch++) _mean[ch] /= n;
            _pattern.Prepare(_mean);
            RunUnits(Job.Deviation);
            _pattern.FoldAll(_partials, Units, _sum);
            for (int ch = 0; ch < _c; ch++)
            {
                var variance = _sum[ch] / n;
                _inverseStd[ch] = T.One / T.Sqrt(variance + _epsilon);
                _movingMean.Value[ch] = _momentum * _movingMean.Value[ch] + (T.One - _momentum) * _mean[ch];
                _movingVariance.Value[ch] = _momentum * _movingVariance.Value[ch] + (T.One - _momentum) * variance;
            }
        }
        else
        {
            _movingMean.Value.CopyTo(_mean, 0);
            for (int ch = 0; ch < _c; ch++) _inverseStd[ch] = T.One / T.Sqrt(_movingVariance.Value[ch] + _epsilon);
        }
        // y = a x + b with a = gamma / sqrt(var + eps), b = beta - a mean; a ReLU is applied in the same pass.
        for (int ch = 0; ch < _c; ch++)
        {
            _sum[ch] = _gamma.Value[ch] * _inverseStd[ch];
            _sumProduct[ch] = _beta.Value[ch] - _sum[ch] * _mean[ch];
        }
        _relu = Node.Activation.IsRelu;
        _pattern.Prepare(_sum, _sumProduct);
        RunUnits(Job.Affine);
        if (!_relu) Activate();
    }

    public override bool WritesWholeInputGradient => true;

    public override void Backward()
    {
        // A ReLU's backward pass is fused into the two passes below (dy counts where y > 0).
        _relu = Node.Activation.IsRelu && !ActivationFusedIntoLoss;
        if (!_relu) ActivationBackward();
        // sum(dy xhat) = inverseStd (sum(dy x) - mean sum(dy)): xhat is not stored.
        RunUnits(Job.SumAndDot);
        _pattern.FoldAll(_partials, Units, _sum);
        _pattern.FoldAll(_partials2, Units, _sumProduct);
        for (int ch = 0; ch < _c; ch++) _sumProduct[ch] = _inverseStd[ch] * (_sumProduct[ch] - _mean[ch] * _sum[ch]);
        if (Node.Trainable)
        {
            _sumProduct.CopyTo(_gamma.Gradient, 0);
            _sum.CopyTo(_beta.Gradient, 0);
        }
        if (!InputNeedsGradient[0]) return;
        // dx = k (n dy - sum(dy) - xhat sum(dy xhat)), k = gamma inverseStd / n, xhat = (x - mean) inverseStd,
        // as dx += a dy + b x + d per channel: a = k n, b = -k inverseStd sum(dy xhat),
        // d = -k sum(dy) - b mean. The per-channel arrays are reused (forward sets them again).
        var n = T.CreateChecked(N);
        for (int ch = 0; ch < _c; ch++)
        {
            var k = _gamma.Value[ch] * _inverseStd[ch] / n;
            var b = -k * _inverseStd[ch] * _sumProduct[ch];
            var d = -k * _sum[ch] - b * _mean[ch];
            _sum[ch] = k * n;
            _sumProduct[ch] = b;
            _inverseStd[ch] = d;
        }
        _pattern.Prepare(_sum, _sumProduct, _inverseStd);
        RunUnits(Job.AddLinear);
        // the padding rows of a partial batch (the units cover the real ones)
        if (AssignsInputGradient(0)) Inputs[0].Gradient.AsSpan(Rows * _perExample).Clear();
    }

    private void RunUnits(Job job)
    {
        _job = job;
        BatchParallel.For(Units, (long)Rows * _perExample, this);
    }

    /// <summary>Units first .. first + count - 1: each unit's sums into its own period of the
    /// partial sums, or its share of an element-wise pass (the pattern prepared before).</summary>
    void IBatchWork.Run(int first, int count)
    {
        int pe = UnitLength, length = _pattern.Length;
        for (int i = first; i < first + count; i++)
        {
            ReadOnlySpan<T> x = Inputs[0].Value.AsSpan(i * pe, pe);
            var acc = _partials.AsSpan(i * length, length);
            switch (_job)
            {
                case Job.Sum: acc.Clear(); _pattern.SumRange(x, acc); break;
                case Job.Deviation: acc.Clear(); _pattern.SquaredDeviationRange(x, acc); break;
                case Job.Affine: _pattern.AffineRange(x, Output.Value.AsSpan(i * pe, pe), _relu); break;
                case Job.SumAndDot:
                {
                    var acc2 = _partials2.AsSpan(i * length, length);
                    acc.Clear(); acc2.Clear();
                    _pattern.SumAndDotRange(Output.Gradient.AsSpan(i * pe, pe), x, acc, acc2, _relu ? Output.Value.AsSpan(i * pe, pe) : default);
                    break;
                }
                default:
                    _pattern.AddLinearRange(Output.Gradient.AsSpan(i * pe, pe), x, Inputs[0].Gradient.AsSpan(i * pe, pe),
                        _relu ? Output.Value.AsSpan(i * pe, pe) : default, AssignsInputGradient(0));
                    break;
            }
        }
    }
}
