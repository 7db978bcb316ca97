using System.Numerics;
using CnnDsl.Graph;

namespace CnnDsl.Runtime.Layers;

/// <summary>Global average, max or min pooling: one value per channel over the whole map.</summary>
public sealed class GlobalPool2d<T> : Layer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly int _cells, _c;
    private readonly PoolKind _kind;
    private readonly int[] _chosen;

    public GlobalPool2d(Node node, Activations<T>[] inputs, int batch) : base(node, inputs, batch)
    {
        _kind = ((LayerKind.GlobalPool)node.Kind).Item;
        var (h, w, c) = Shapes.Hwc(node.InputShapes.Head);
        _cells = h * w;
        _c = c;
        _chosen = _kind.IsAverage ? [] : new int[batch * c];
    }

    public override long WorkspaceBytes => BytesOf(_chosen);

    public override void Forward(bool training)
    {
        var x = Inputs[0].Value.AsSpan();
        var y = Output.Value.AsSpan();
        bool isMax = _kind.IsMax, isAverage = _kind.IsAverage;
        for (int b = 0; b < Batch; b++)
            for (int ch = 0; ch < _c; ch++)
            {
                int first = b * _cells * _c + ch;
                T acc = x[first];
                int best = first;
                for (int cell = 1; cell < _cells; cell++)
                {
                    int i = first + cell * _c;
                    if (isAverage) acc += x[i];
                    else if (isMax ? x[i] > acc : x[i] < acc) { acc = x[i]; best = i; }
                }
                if (isAverage) y[b * _c + ch] = acc / T.CreateChecked(_cells);
                else { y[b * _c + ch] = acc; _chosen[b * _c + ch] = best; }
            }
        Activate();
    }

    public override bool WritesWholeInputGradient => true;

    public override void Backward()
    {
        ActivationBackward();
        if (!InputNeedsGradient[0]) return;
        var dx = Inputs[0].Gradient.AsSpan();
        var dy = Output.Gradient.AsSpan();
        bool assign = AssignsInputGradient(0);
        if (!_kind.IsAverage)
        {
            if (assign) dx.Clear();
            Vectorised.ScatterAdd(dx, dy, _chosen);
            return;
        }
        var share = T.One / T.CreateChecked(_cells);
        for (int b = 0; b < Batch; b++)
            for (int cell = 0; cell < _cells; cell++)
                for (int ch = 0; ch < _c; ch++)
                {
                    int i = (b * _cells + cell) * _c + ch;
                    dx[i] = (assign ? T.Zero : dx[i]) + dy[b * _c + ch] * share;
                }
    }
}
