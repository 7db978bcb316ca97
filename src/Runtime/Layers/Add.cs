using System.Numerics;
using CnnDsl.Graph;

namespace CnnDsl.Runtime.Layers;

/// <summary>Element-wise sum of the inputs (residual connections); every input gets the
/// output's gradient.</summary>
public sealed class Add<T>(Node node, Activations<T>[] inputs, int batch) : Layer<T>(node, inputs, batch)
    where T : unmanaged, IFloatingPointIeee754<T>
{
    public override void Forward(bool training)
    {
        var y = Output.Value.AsSpan();
        Inputs[0].Value.AsSpan().CopyTo(y);
        for (int k = 1; k < Inputs.Length; k++)
        {
            var x = Inputs[k].Value.AsSpan();
            Vectorised.Add(y, x);
        }
        Activate();
    }

    public override bool WritesWholeInputGradient => true;

    public override void Backward()
    {
        ActivationBackward();
        var dy = Output.Gradient.AsSpan();
        for (int k = 0; k < Inputs.Length; k++)
        {
            if (!InputNeedsGradient[k]) continue;
            var dx = Inputs[k].Gradient.AsSpan();
            if (AssignsInputGradient(k)) dy.CopyTo(dx);
            else Vectorised.Add(dx, dy);
        }
    }
}
