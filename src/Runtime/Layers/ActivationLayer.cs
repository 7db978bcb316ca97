using System.Numerics;
using CnnDsl.Graph;

namespace CnnDsl.Runtime.Layers;

/// <summary>An activation on its own (Keras's Activation layer); the network's input is
/// also one of these, with the linear activation and nothing to do.</summary>
public sealed class ActivationLayer<T>(Node node, Activations<T>[] inputs, int batch) : Layer<T>(node, inputs, batch)
    where T : unmanaged, IFloatingPointIeee754<T>
{
    public override void Forward(bool training)
    {
        if (Inputs.Length == 0) return; // the input layer: its values are set by the caller
        Inputs[0].Value.AsSpan().CopyTo(Output.Value);
        Activate();
    }

    public override bool WritesWholeInputGradient => true;

    public override void Backward()
    {
        if (Inputs.Length == 0) return;
        ActivationBackward();
        if (!InputNeedsGradient[0]) return;
        var dx = Inputs[0].Gradient.AsSpan();
        var dy = Output.Gradient.AsSpan();
        if (AssignsInputGradient(0)) dy.CopyTo(dx);
        else Vectorised.Add(dx, dy);
    }
}
