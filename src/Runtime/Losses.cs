using System.Numerics;
using CnnDsl.Graph;

namespace CnnDsl.Runtime;

/// <summary>
/// Losses as Keras defines them (the mean over the batch and over each example's outputs),
/// each writing its gradient into the network's OutputGradient. Cross-entropy after softmax
/// and binary cross-entropy after sigmoid are fused: their gradient with respect to the
/// pre-activation is (y - t) / n, exact and stable, so the activation's backward is skipped.
/// On an inference network (evaluation) only the loss is computed: it has no gradient to write.
/// </summary>
public static class Losses
{
    /// <summary>Keras clips probabilities to [eps, 1 - eps] before taking logarithms.</summary>
    private const double Epsilon = 1e-7;

    /// <summary>Cross-entropy against integer labels (sparse categorical cross-entropy).</summary>
    /// <param name="count">how many rows of the batch are real (the rest pad a last, partial batch);
    /// the loss is their mean, as Keras's over a partial batch, and the padding rows get a zero
    /// gradient.</param>
    /// <param name="labelSmoothing">Keras's label_smoothing a: the target of class j is
    /// (1 - a) [j = label] + a / K for K classes (PyTorch's cross_entropy(label_smoothing=) alike).</param>
    public static T CrossEntropy<T>(Network<T> network, ReadOnlySpan<int> labels, int count = -1, double labelSmoothing = 0) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (labelSmoothing is < 0 or > 1 || double.IsNaN(labelSmoothing))
            throw new ArgumentOutOfRangeException(nameof(labelSmoothing), labelSmoothing, "label smoothing is in [0, 1]");
        int classes = network.OutputSize, batch = network.BatchSize;
        var y = network.Output;
        bool gradient = !network.IsInference;
        var dy = gradient ? network.OutputGradient : default;
        bool fused = network.OutputLayer.Node.Activation.IsSoftmax;
        network.OutputLayer.ActivationFusedIntoLoss = fused;
        var eps = T.CreateChecked(Epsilon);
        int rows = count < 0 ? batch : count;
        var scale = T.One / T.CreateChecked(rows);
        T off = T.CreateChecked(labelSmoothing / classes), on = T.CreateChecked(1 - labelSmoothing);
        T loss = T.Zero;
        for (int b = 0; b < batch; b++)
        {
            if (b >= rows)
            {
                if (gradient) dy.Slice(b * classes, classes).Clear();
                continue;
            }
            int label = labels[b];
            if ((uint)label >= (uint)classes)
                throw new ArgumentException($"label {label} of example {b} is outside 0..{classes - 1}");
            if (labelSmoothing == 0)
            {
                var p = T.Clamp(y[b * classes + label], eps, T.One - eps);
                loss -= T.Log(p);
                for (int j = 0; gradient && j < classes; j++)
                {
                    int i = b * classes + j;
                    dy[i] = fused ? (y[i] - (j == label ? T.One : T.Zero)) * scale
                                  : (j == label ? -scale / p : T.Zero);
                }
                continue;
            }
            // Smoothed targets: every class has a / K, the label 1 - a more; they sum to 1, so
            // the fused gradient is still y - t.
            for (int j = 0; j < classes; j++)
            {
                int i = b * classes + j;
                var t = off + (j == label ? on : T.Zero);
                var p = T.Clamp(y[i], eps, T.One - eps);
                loss -= t * T.Log(p);
                if (gradient) dy[i] = fused ? (y[i] - t) * scale : -t * scale / p;
            }
        }
        return loss / T.CreateChecked(rows);
    }

    /// <summary>A loss against dense targets of the output's size (one-hot cross-entropy,
    /// binary cross-entropy, MSE, MAE).</summary>
    public static T Compute<T>(Loss kind, Network<T> network, ReadOnlySpan<T> targets, int count = -1) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var y = network.Output;
        bool gradient = !network.IsInference;
        var dy = gradient ? network.OutputGradient : default;
        if (targets.Length != y.Length)
            throw new ArgumentException($"{targets.Length} targets for {y.Length} outputs");
        int batch = network.BatchSize, per = network.OutputSize;
        var eps = T.CreateChecked(Epsilon);
        var activation = network.OutputLayer.Node.Activation;
        T loss = T.Zero;
        int rows = count < 0 ? batch : count, limit = rows * per;
        // Means over the real rows; padding rows (a partial last batch) get no gradient.
        var n = T.CreateChecked(rows);
        var all = T.CreateChecked(limit);
        if (gradient) dy.Slice(limit).Clear();
        y = y.Slice(0, limit);
        bool fused = false;
        switch (kind)
        {
            case var k when k.IsCrossEntropy:
                fused = activation.IsSoftmax;
                for (int b = 0; b < rows; b++)
                {
                    // Through softmax, d(-sum t log y)/dz = y * sum(t) - t: (y - t) for one-hot rows.
                    T rowSum = T.Zero;
                    for (int j = 0; j < per; j++) rowSum += targets[b * per + j];
                    for (int j = 0; j < per; j++)
                    {
                        int i = b * per + j;
                        var p = T.Clamp(y[i], eps, T.One - eps);
                        if (i < limit) loss -= targets[i] * T.Log(p);
                        if (gradient) dy[i] = fused ? (y[i] * rowSum - targets[i]) / n : -targets[i] / (p * n);
                    }
                }
                return Finish(loss / T.CreateChecked(rows));
            case var k when k.IsBinaryCrossEntropy:
                fused = activation.IsSigmoid;
                for (int i = 0; i < y.Length; i++)
                {
                    var p = T.Clamp(y[i], eps, T.One - eps);
                    if (i < limit) loss -= targets[i] * T.Log(p) + (T.One - targets[i]) * T.Log(T.One - p);
                    if (gradient) dy[i] = fused ? (y[i] - targets[i]) / all : (p - targets[i]) / (p * (T.One - p) * all);
                }
                return Finish(loss / T.CreateChecked(limit));
            case var k when k.IsMeanSquaredError:
                for (int i = 0; i < y.Length; i++)
                {
                    var d = y[i] - targets[i];
                    if (i < limit) loss += d * d;
                    if (gradient) dy[i] = (d + d) / all;
                }
                return Finish(loss / T.CreateChecked(limit));
            default:
                for (int i = 0; i < y.Length; i++)
                {
                    var d = y[i] - targets[i];
                    if (i < limit) loss += T.Abs(d);
                    if (gradient) dy[i] = T.CreateChecked(T.Sign(d)) / all;
                }
                return Finish(loss / T.CreateChecked(limit));
        }

        T Finish(T value)
        {
            network.OutputLayer.ActivationFusedIntoLoss = fused;
            return value;
        }
    }
}
