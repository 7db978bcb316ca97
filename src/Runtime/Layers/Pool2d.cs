using System.Numerics;
using CnnDsl.Graph;

namespace CnnDsl.Runtime.Layers;

/// <summary>
/// Max, average and min pooling over NHWC windows. Max and min keep the index of the
/// chosen input cell, so backward routes each gradient to that cell only; average spreads
/// it evenly over the window's cells. Padding cells take no part (as in TensorFlow).
/// </summary>
public sealed class Pool2d<T> : Layer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly int _h, _w, _c, _oh, _ow;
    private readonly Window _window;
    private readonly PoolKind _kind;
    private readonly int[] _chosen;

    public Pool2d(Node node, Activations<T>[] inputs, int batch) : base(node, inputs, batch)
    {
        var pool = ((LayerKind.Pool)node.Kind).Item;
        _window = pool.Window;
        _kind = pool.Kind;
        (_h, _w, _c) = Shapes.Hwc(node.InputShapes.Head);
        (_oh, _ow, _) = Shapes.Hwc(node.OutputShape);
        _chosen = _kind.IsAverage ? [] : new int[Output.Value.Length];
    }

    public override long WorkspaceBytes => BytesOf(_chosen);

    private (int y0, int y1, int x0, int x1) Cells(int oy, int ox)
    {
        int y0 = oy * _window.StrideH - _window.Padding.Top, x0 = ox * _window.StrideW - _window.Padding.Left;
        return (Math.Max(0, y0), Math.Min(_h, y0 + _window.KernelH), Math.Max(0, x0), Math.Min(_w, x0 + _window.KernelW));
    }

    public override void Forward(bool training)
    {
        var x = Inputs[0].Value.AsSpan();
        var y = Output.Value.AsSpan();
        bool isMax = _kind.IsMax, isAverage = _kind.IsAverage;
        for (int b = 0; b < Batch; b++)
            for (int oy = 0; oy < _oh; oy++)
                for (int ox = 0; ox < _ow; ox++)
                {
                    var (y0, y1, x0, x1) = Cells(oy, ox);
                    int outBase = ((b * _oh + oy) * _ow + ox) * _c;
                    int count = (y1 - y0) * (x1 - x0);
                    for (int ch = 0; ch < _c; ch++)
                    {
                        T acc = T.Zero;
                        int best = -1;
                        for (int iy = y0; iy < y1; iy++)
                            for (int ix = x0; ix < x1; ix++)
                            {
                                int i = ((b * _h + iy) * _w + ix) * _c + ch;
                                if (isAverage) acc += x[i];
                                else if (best < 0 || (isMax ? x[i] > acc : x[i] < acc)) { acc = x[i]; best = i; }
                            }
                        if (isAverage) y[outBase + ch] = count > 0 ? acc / T.CreateChecked(count) : T.Zero;
                        else { y[outBase + ch] = acc; _chosen[outBase + ch] = best; }
                    }
                }
        Activate();
    }

    public override void Backward()
    {
        ActivationBackward();
        if (!InputNeedsGradient[0]) return;
        var dx = Inputs[0].Gradient.AsSpan();
        var dy = Output.Gradient.AsSpan();
        if (!_kind.IsAverage)
        {
            Vectorised.ScatterAdd(dx, dy, _chosen);
            return;
        }
        for (int b = 0; b < Batch; b++)
            for (int oy = 0; oy < _oh; oy++)
                for (int ox = 0; ox < _ow; ox++)
                {
                    var (y0, y1, x0, x1) = Cells(oy, ox);
                    int count = (y1 - y0) * (x1 - x0);
                    if (count == 0) continue;
                    var share = T.One / T.CreateChecked(count);
                    int outBase = ((b * _oh + oy) * _ow + ox) * _c;
                    for (int iy = y0; iy < y1; iy++)
                        for (int ix = x0; ix < x1; ix++)
                        {
                            int inBase = ((b * _h + iy) * _w + ix) * _c;
                            for (int ch = 0; ch < _c; ch++) dx[inBase + ch] += dy[outBase + ch] * share;
                        }
                }
    }
}
