using System.Numerics;
using CnnDsl.Graph;

namespace CnnDsl.Runtime.Layers;

/// <summary>Flatten and reshape: NHWC values keep their order (Keras's flatten order), so
/// both are a copy forward and an add (or a copy) backward (and nothing at all in an inference network,
/// where the output is the input's buffer).</summary>
public sealed class Reshape<T>(Node node, Activations<T>[] inputs, int batch, Activations<T>? output = null)
    : Layer<T>(node, inputs, batch, output)
    where T : unmanaged, IFloatingPointIeee754<T>
{
    public override void Forward(bool training)
    {
        if (SharesInput) return; // linear, so nothing to apply
        Inputs[0].Value.AsSpan().CopyTo(Output.Value);
        Activate();
    }

    public override bool WritesWholeInputGradient => true;

    public override void Backward()
    {
        ActivationBackward();
        if (!InputNeedsGradient[0]) return;
        var dx = Inputs[0].Gradient.AsSpan();
        var dy = Output.Gradient.AsSpan();
        if (AssignsInputGradient(0)) dy.CopyTo(dx);
        else Vectorised.Add(dx, dy);
    }
}
