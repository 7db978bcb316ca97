using System.Numerics;
using CnnDsl.Graph;

namespace CnnDsl.Runtime.Layers;

/// <summary>Concatenation on the channel axis (Inception branches): in NHWC each pixel's
/// channels are the inputs' channels one after the other.</summary>
public sealed class Concat<T> : Layer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly int[] _channels;
    private readonly int _pixels, _total;

    public Concat(Node node, Activations<T>[] inputs, int batch) : base(node, inputs, batch)
    {
        _channels = node.InputShapes.Select(Shapes.Channels).ToArray();
        var (h, w, c) = Shapes.Hwc(node.OutputShape);
        _pixels = batch * h * w;
        _total = c;
    }

    public override void Forward(bool training)
    {
        var y = Output.Value.AsSpan();
        int offset = 0;
        for (int k = 0; k < Inputs.Length; k++)
        {
            var x = Inputs[k].Value.AsSpan();
            int c = _channels[k];
            for (int p = 0; p < _pixels; p++) x.Slice(p * c, c).CopyTo(y.Slice(p * _total + offset, c));
            offset += c;
        }
        Activate();
    }

    public override void Backward()
    {
        ActivationBackward();
        var dy = Output.Gradient.AsSpan();
        int offset = 0;
        for (int k = 0; k < Inputs.Length; k++)
        {
            int c = _channels[k];
            if (InputNeedsGradient[k])
            {
                var dx = Inputs[k].Gradient.AsSpan();
                for (int p = 0; p < _pixels; p++)
                    for (int j = 0; j < c; j++) dx[p * c + j] += dy[p * _total + offset + j];
            }
            offset += c;
        }
    }
}
