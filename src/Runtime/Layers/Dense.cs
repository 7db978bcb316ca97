using System.Numerics;
using CnnDsl.Graph;
using CnnDsl.Runtime.Blas;

namespace CnnDsl.Runtime.Layers;

/// <summary>Fully connected: Y[B, U] = X[B, I] W[I, U] + b (Keras's kernel layout).
/// Backward: dW = X^T dY, db = column sums of dY, dX += dY W^T (or = where it writes first).</summary>
public sealed class Dense<T> : Layer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly int _in, _units;
    private readonly Parameter<T> _kernel;
    private readonly Parameter<T>? _bias;

    // The bias and its gradient run over rows of `units` values.
    private readonly ChannelPattern<T> _channels;

    public Dense(Node node, Activations<T>[] inputs, int batch) : base(node, inputs, batch)
    {
        var dense = (LayerKind.Dense)node.Kind;
        _in = Shapes.Elements(node.InputShapes.Head);
        _units = dense.units;
        _kernel = new Parameter<T>(node.Name + "/kernel", [_in, _units], node.Trainable);
        _bias = dense.bias ? new Parameter<T>(node.Name + "/bias", [_units], node.Trainable) : null;
        _channels = new ChannelPattern<T>(_units);
    }

    public Parameter<T> Kernel => _kernel;
    public Parameter<T>? Bias => _bias;
    public override IReadOnlyList<Parameter<T>> Parameters => _bias == null ? [_kernel] : [_kernel, _bias];

    public override void Forward(bool training)
    {
        var y = Output.Value.AsSpan();
        Gemm.Multiply<T>(false, false, Batch, _units, _in, T.One, Inputs[0].Value, _in, _kernel.Value, _units, T.Zero, y, _units);
        if (_bias != null) _channels.Add(y, _bias.Value);
        Activate();
    }

    public override bool WritesWholeInputGradient => true;

    public override void Backward()
    {
        ActivationBackward();
        ReadOnlySpan<T> dy = Output.Gradient;
        if (Node.Trainable)
        {
            Gemm.Multiply<T>(true, false, _in, _units, Batch, T.One, Inputs[0].Value, _in, dy, _units, T.Zero, _kernel.Gradient, _units);
            if (_bias != null) _channels.Sum(dy, _bias.Gradient);
        }
        if (InputNeedsGradient[0])
            Gemm.Multiply<T>(false, true, Batch, _in, _units, T.One, dy, _units, _kernel.Value, _units,
                AssignsInputGradient(0) ? T.Zero : T.One, Inputs[0].Gradient, _in);
    }
}
