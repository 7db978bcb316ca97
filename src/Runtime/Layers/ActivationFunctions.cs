using System.Numerics;
using CnnDsl.Graph;

namespace CnnDsl.Runtime.Layers;

/// <summary>The activations, applied in place on a layer's output, and their backward
/// passes written in terms of the output y (so nothing else needs keeping).</summary>
public static class ActivationFunctions
{
    public static void Forward<T>(Activation activation, Span<T> y, int rowLength) where T : unmanaged, IFloatingPointIeee754<T>
    {
        switch (activation)
        {
            case var a when a.IsLinear: break;
            case var a when a.IsRelu:
                Vectorised.Relu(y);
                break;
            case var a when a.IsSigmoid:
                for (int i = 0; i < y.Length; i++) y[i] = T.One / (T.One + T.Exp(-y[i]));
                break;
            case var a when a.IsTanh:
                for (int i = 0; i < y.Length; i++) y[i] = T.Tanh(y[i]);
                break;
            case Activation.Elu elu:
                var alpha = T.CreateChecked(elu.alpha);
                for (int i = 0; i < y.Length; i++) if (y[i] < T.Zero) y[i] = alpha * (T.Exp(y[i]) - T.One);
                break;
            case Activation.LeakyRelu leaky:
                var slope = T.CreateChecked(leaky.alpha);
                for (int i = 0; i < y.Length; i++) if (y[i] < T.Zero) y[i] *= slope;
                break;
            case var a when a.IsSoftmax:
                for (int start = 0; start < y.Length; start += rowLength) Softmax(y.Slice(start, rowLength));
                break;
        }
    }

    /// <summary>softmax(x) = exp(x - max) / sum(exp(x - max)): subtracting the max keeps
    /// exp from overflowing (seed 000: softmax([1000, 1001, 1002]) = [0.0900, 0.2447, 0.6652]).</summary>
    public static void Softmax<T>(Span<T> row) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T max = row[0];
        for (int i = 1; i < row.Length; i++) if (row[i] > max) max = row[i];
        T sum = T.Zero;
        for (int i = 0; i < row.Length; i++) { row[i] = T.Exp(row[i] - max); sum += row[i]; }
        for (int i = 0; i < row.Length; i++) row[i] /= sum;
    }

    /// <summary>dy := dy * f'(x), from y = f(x).</summary>
    public static void Backward<T>(Activation activation, ReadOnlySpan<T> y, Span<T> dy, int rowLength) where T : unmanaged, IFloatingPointIeee754<T>
    {
        switch (activation)
        {
            case var a when a.IsLinear: break;
            case var a when a.IsRelu:
                Vectorised.ReluBackward(y, dy);
                break;
            case var a when a.IsSigmoid:
                for (int i = 0; i < y.Length; i++) dy[i] *= y[i] * (T.One - y[i]);
                break;
            case var a when a.IsTanh:
                for (int i = 0; i < y.Length; i++) dy[i] *= T.One - y[i] * y[i];
                break;
            case Activation.Elu elu:
                var alpha = T.CreateChecked(elu.alpha);
                for (int i = 0; i < y.Length; i++) if (!(y[i] > T.Zero)) dy[i] *= y[i] + alpha;
                break;
            case Activation.LeakyRelu leaky:
                var slope = T.CreateChecked(leaky.alpha);
                // Valid for a positive slope, where the sign of y is the sign of x.
                for (int i = 0; i < y.Length; i++) if (!(y[i] > T.Zero)) dy[i] *= slope;
                break;
            case var a when a.IsSoftmax:
                // dx = y * (dy - sum(dy * y)) per row
                for (int start = 0; start < y.Length; start += rowLength)
                {
                    var yr = y.Slice(start, rowLength);
                    var dr = dy.Slice(start, rowLength);
                    T dot = T.Zero;
                    for (int i = 0; i < rowLength; i++) dot += dr[i] * yr[i];
                    for (int i = 0; i < rowLength; i++) dr[i] = yr[i] * (dr[i] - dot);
                }
                break;
        }
    }
}
