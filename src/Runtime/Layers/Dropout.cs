using System.Numerics;
using CnnDsl.Graph;

namespace CnnDsl.Runtime.Layers;

/// <summary>Inverted dropout (Srivastava et al., 2014, as Keras does it): in training each
/// value is kept with probability 1 - rate and scaled by 1 / (1 - rate); in inference the
/// layer passes values through. The mask comes from the step's seed, so a run is reproducible.</summary>
public sealed class Dropout<T> : Layer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly double _rate;
    private readonly T[] _mask;

    /// <param name="output">the input's buffer in an inference network, where dropout passes values through</param>
    public Dropout(Node node, Activations<T>[] inputs, int batch, Activations<T>? output = null) : base(node, inputs, batch, output)
    {
        _rate = ((LayerKind.Dropout)node.Kind).rate;
        _mask = SharesInput ? [] : new T[Output.Value.Length];
    }

    public override long WorkspaceBytes => BytesOf(_mask);

    public override void Forward(bool training)
    {
        if (SharesInput)
        {
            if (training) throw new InvalidOperationException("an inference network does not train");
            return;
        }
        var x = Inputs[0].Value.AsSpan();
        var y = Output.Value.AsSpan();
        if (!training || _rate == 0)
        {
            _mask.AsSpan().Fill(T.One);
            x.CopyTo(y);
            return;
        }
        var random = new SplitMix64(StepSeed);
        var keep = T.CreateChecked(1.0 / (1.0 - _rate));
        for (int i = 0; i < y.Length; i++)
        {
            _mask[i] = random.NextDouble() >= _rate ? keep : T.Zero;
            y[i] = x[i] * _mask[i];
        }
    }

    public override void Backward()
    {
        if (!InputNeedsGradient[0]) return;
        var dx = Inputs[0].Gradient.AsSpan();
        var dy = Output.Gradient.AsSpan();
        for (int i = 0; i < dy.Length; i++) dx[i] += dy[i] * _mask[i];
    }
}
