using System.Numerics;
using CnnDsl.Graph;

namespace CnnDsl.Runtime.Layers;

/// <summary>
/// Maxout over channels (Goodfellow, Warde-Farley, Mirza, Courville and Bengio, 2013):
/// y[..., u] = max over p &lt; k of x[..., u*k + p], for each of the C/k units; as
/// tfa.layers.Maxout(num_units = C/k) on the last axis. Backward sends each output's
/// gradient to the piece that won (the first, on ties), as max pooling does.
/// </summary>
public sealed class Maxout<T> : Layer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly int _pieces;
    // The winning piece of every output value, for backward.
    private readonly int[] _argmax;

    public Maxout(Node node, Activations<T>[] inputs, int batch) : base(node, inputs, batch)
    {
        _pieces = node.Kind is LayerKind.Maxout m ? m.pieces : throw new ArgumentException($"{node.Name} is not a maxout");
        _argmax = new int[Output.Value.Length];
    }

    public override long WorkspaceBytes => BytesOf(_argmax);

    public override void Forward(bool training)
    {
        ReadOnlySpan<T> x = Inputs[0].Value;
        var y = Output.Value.AsSpan();
        for (int o = 0; o < y.Length; o++)
        {
            int first = o * _pieces, best = first;
            for (int p = first + 1; p < first + _pieces; p++)
                if (x[p] > x[best]) best = p;
            y[o] = x[best];
            _argmax[o] = best;
        }
    }

    public override void Backward()
    {
        if (!InputNeedsGradient[0]) return;
        ReadOnlySpan<T> dy = Output.Gradient;
        var dx = Inputs[0].Gradient.AsSpan();
        for (int o = 0; o < dy.Length; o++) dx[_argmax[o]] += dy[o];
    }
}
