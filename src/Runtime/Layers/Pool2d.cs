using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using CnnDsl.Graph;

namespace CnnDsl.Runtime.Layers;

/// <summary>
/// Max, average and min pooling over NHWC windows. Max and min keep the index of the
/// chosen input cell, so backward routes each gradient to that cell only; average spreads
/// it evenly over the window's cells. Padding cells take no part (as in TensorFlow).
/// </summary>
public sealed class Pool2d<T> : Layer<T>, IBatchWork where T : unmanaged, IFloatingPointIeee754<T>
{
    private bool _backward;   // what IBatchWork.Run does (set before BatchParallel.For)
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
        var p = _window.Padding;
        _inside = p.Top == 0 && p.Left == 0 && (_oh - 1) * _window.StrideH + _window.KernelH <= _h && (_ow - 1) * _window.StrideW + _window.KernelW <= _w;
    }

    // Every window lies inside the input (no padding): no clipping needed.
    private readonly bool _inside;

    public override long WorkspaceBytes => BytesOf(_chosen);

    private (int y0, int y1, int x0, int x1) Cells(int oy, int ox)
    {
        int y0 = oy * _window.StrideH - _window.Padding.Top, x0 = ox * _window.StrideW - _window.Padding.Left;
        return (Math.Max(0, y0), Math.Min(_h, y0 + _window.KernelH), Math.Max(0, x0), Math.Min(_w, x0 + _window.KernelW));
    }

    public override void Forward(bool training)
    {
        _backward = false;
        BatchParallel.For(Batch, Inputs[0].Value.Length, this);
        Activate();
    }

    /// <summary>Images first .. first + count - 1, forward or backward.</summary>
    void IBatchWork.Run(int first, int count)
    {
        int end = first + count;
        if (_backward)
        {
            if (_kind.IsAverage) BackwardAverage(first, end);
            else
            {
                // each output of these images routes to a cell of the same images
                int per = _oh * _ow * _c;
                if (AssignsInputGradient(0)) Inputs[0].Gradient.AsSpan(first * _h * _w * _c, count * _h * _w * _c).Clear();
                Vectorised.ScatterAdd(Inputs[0].Gradient.AsSpan(), Output.Gradient.AsSpan(first * per, count * per), _chosen.AsSpan(first * per, count * per));
            }
        }
        else if (typeof(T) == typeof(float) && !_kind.IsAverage && _c >= Vector<float>.Count)
            ForwardVectorised(MemoryMarshal.Cast<T, float>(Inputs[0].Value.AsSpan()), MemoryMarshal.Cast<T, float>(Output.Value.AsSpan()), _kind.IsMax, first, end);
        else if (typeof(T) == typeof(float) && !_kind.IsAverage && _inside)
            ForwardNarrow(MemoryMarshal.Cast<T, float>(Inputs[0].Value.AsSpan()), MemoryMarshal.Cast<T, float>(Output.Value.AsSpan()), _kind.IsMax, first, end);
        else if (_kind.IsAverage) ForwardAverage(first, end);
        else ForwardScalar(first, end);
    }

    private static readonly Vector<int> Lanes = CreateLanes();
    private static Vector<int> CreateLanes()
    {
        Span<int> lanes = stackalloc int[Vector<int>.Count];
        for (int i = 0; i < lanes.Length; i++) lanes[i] = i;
        return new Vector<int>(lanes);
    }

    /// <summary>Max or min pooling in float, Vector&lt;float&gt;.Count channels at a time (NHWC
    /// keeps a pixel's channels adjacent), the chosen cells' indices kept alongside.</summary>
    private void ForwardVectorised(ReadOnlySpan<float> x, Span<float> y, bool isMax, int firstImage, int endImage)
    {
        int width = Vector<float>.Count;
        var xv = x; var chosen = _chosen.AsSpan();
        for (int b = firstImage; b < endImage; b++)
            for (int oy = 0; oy < _oh; oy++)
                for (int ox = 0; ox < _ow; ox++)
                {
                    var (y0, y1, x0, x1) = Cells(oy, ox);
                    int outBase = ((b * _oh + oy) * _ow + ox) * _c;
                    int ch = 0;
                    for (; ch + width <= _c; ch += width)
                    {
                        var best = Vector<float>.Zero;
                        var index = new Vector<int>(-1);
                        bool first = true;
                        for (int iy = y0; iy < y1; iy++)
                            for (int ix = x0; ix < x1; ix++)
                            {
                                int i = ((b * _h + iy) * _w + ix) * _c + ch;
                                var v = new Vector<float>(xv.Slice(i, width));
                                var candidate = new Vector<int>(i) + Lanes;
                                if (first) { best = v; index = candidate; first = false; continue; }
                                // strictly better only: ties keep the first cell, as the scalar path does
                                var better = isMax ? Vector.GreaterThan(v, best) : Vector.LessThan(v, best);
                                best = Vector.ConditionalSelect(better, v, best);
                                index = Vector.ConditionalSelect(better, candidate, index);
                            }
                        best.CopyTo(y.Slice(outBase + ch, width));
                        index.CopyTo(chosen.Slice(outBase + ch, width));
                    }
                    for (; ch < _c; ch++) Choose(b, y0, y1, x0, x1, ch, outBase, MemoryMarshal.Cast<float, T>(y), MemoryMarshal.Cast<float, T>(xv), isMax);
                }
    }

    private void Choose(int b, int y0, int y1, int x0, int x1, int ch, int outBase, Span<T> y, ReadOnlySpan<T> x, bool isMax)
    {
        T acc = T.Zero;
        int best = -1;
        for (int iy = y0; iy < y1; iy++)
            for (int ix = x0; ix < x1; ix++)
            {
                int i = ((b * _h + iy) * _w + ix) * _c + ch;
                if (best < 0 || (isMax ? x[i] > acc : x[i] < acc)) { acc = x[i]; best = i; }
            }
        y[outBase + ch] = acc;
        _chosen[outBase + ch] = best;
    }

    /// <summary>Max or min pooling in float of fewer channels than a vector holds, every window
    /// inside the input: a pixel's C channels in one vector whose further lanes read the next
    /// pixel's values. Those lanes' results are stored too, on the next output pixel's place,
    /// which is written later (pixels go in increasing order); a pixel whose vector would reach
    /// past the input's end or the range's last output takes the scalar path. (A per-channel scalar loop spent about 60
    /// cycles per output on LeNet's first pooling: which cell wins is unpredictable.)</summary>
    private void ForwardNarrow(ReadOnlySpan<float> x, Span<float> y, bool isMax, int firstImage, int endImage)
    {
        int width = Vector<float>.Count, c = _c, kh = _window.KernelH, kw = _window.KernelW, rowStep = _w * c;
        ref float x0 = ref MemoryMarshal.GetReference(x);
        ref float y0 = ref MemoryMarshal.GetReference(y);
        ref int i0 = ref MemoryMarshal.GetArrayDataReference(_chosen);
        // stores stay inside this range's images (another thread may own the next image)
        int lastCorner = (kh - 1) * rowStep + (kw - 1) * c, outEnd = endImage * _oh * _ow * c;
        for (int b = firstImage; b < endImage; b++)
            for (int oy = 0; oy < _oh; oy++)
            {
                int rowBase = (b * _h + oy * _window.StrideH) * rowStep, outBase = (b * _oh + oy) * _ow * c;
                for (int ox = 0; ox < _ow; ox++)
                {
                    int corner = rowBase + ox * _window.StrideW * c, at = outBase + ox * c;
                    if (corner + lastCorner + width > x.Length || at + width > outEnd)
                    {
                        var (ya, yb, xa, xb) = Cells(oy, ox);
                        for (int ch = 0; ch < c; ch++) Choose(b, ya, yb, xa, xb, ch, at, MemoryMarshal.Cast<float, T>(y), MemoryMarshal.Cast<float, T>(x), isMax);
                        continue;
                    }
                    var best = Vector.LoadUnsafe(ref x0, (nuint)corner);
                    var index = new Vector<int>(corner) + Lanes;
                    for (int ky = 0; ky < kh; ky++)
                        for (int kx = 0; kx < kw; kx++)
                        {
                            if (ky == 0 && kx == 0) continue;
                            int i = corner + ky * rowStep + kx * c;
                            var v = Vector.LoadUnsafe(ref x0, (nuint)i);
                            // strictly better only: ties keep the first cell, as the scalar path does
                            var better = isMax ? Vector.GreaterThan(v, best) : Vector.LessThan(v, best);
                            best = Vector.ConditionalSelect(better, v, best);
                            index = Vector.ConditionalSelect(better, new Vector<int>(i) + Lanes, index);
                        }
                    Vector.StoreUnsafe(best, ref y0, (nuint)at);
                    Vector.StoreUnsafe(index, ref i0, (nuint)at);
                }
            }
    }

    /// <summary>Max or min pooling a pixel's channel row at a time: the first cell's row, then
    /// each later cell's values where strictly better (ties keep the first cell).</summary>
    private void ForwardScalar(int firstImage, int endImage)
    {
        var x = Inputs[0].Value.AsSpan();
        var y = Output.Value.AsSpan();
        var chosen = _chosen.AsSpan();
        bool isMax = _kind.IsMax;
        for (int b = firstImage; b < endImage; b++)
            for (int oy = 0; oy < _oh; oy++)
                for (int ox = 0; ox < _ow; ox++)
                {
                    var (y0, y1, x0, x1) = Cells(oy, ox);
                    int outBase = ((b * _oh + oy) * _ow + ox) * _c;
                    var best = y.Slice(outBase, _c);
                    var index = chosen.Slice(outBase, _c);
                    if (y0 >= y1 || x0 >= x1) { best.Clear(); index.Fill(-1); continue; }
                    bool first = true;
                    for (int iy = y0; iy < y1; iy++)
                        for (int ix = x0; ix < x1; ix++)
                        {
                            int at = ((b * _h + iy) * _w + ix) * _c;
                            var cell = x.Slice(at, _c);
                            if (first)
                            {
                                cell.CopyTo(best);
                                for (int ch = 0; ch < best.Length; ch++) index[ch] = at + ch;
                                first = false;
                                continue;
                            }
                            for (int ch = 0; ch < best.Length; ch++)
                            {
                                var v = cell[ch];
                                if (isMax ? v > best[ch] : v < best[ch]) { best[ch] = v; index[ch] = at + ch; }
                            }
                        }
                }
    }

    /// <summary>The mean of the window's cells inside the input, a channel row at a time.</summary>
    private void ForwardAverage(int firstImage, int endImage)
    {
        var x = Inputs[0].Value.AsSpan();
        var y = Output.Value.AsSpan();
        for (int b = firstImage; b < endImage; b++)
            for (int oy = 0; oy < _oh; oy++)
                for (int ox = 0; ox < _ow; ox++)
                {
                    var (y0, y1, x0, x1) = Cells(oy, ox);
                    int count = (y1 - y0) * (x1 - x0);
                    var row = y.Slice(((b * _oh + oy) * _ow + ox) * _c, _c);
                    row.Clear();
                    if (count == 0) continue;
                    for (int iy = y0; iy < y1; iy++)
                        for (int ix = x0; ix < x1; ix++)
                            Vectorised.Add(row, x.Slice(((b * _h + iy) * _w + ix) * _c, _c));
                    Vectorised.Scale(row, T.One / T.CreateChecked(count));
                }
    }

    // (each thread clears its own images' input gradient before scattering into it)
    public override bool WritesWholeInputGradient => true;

    public override void Backward()
    {
        ActivationBackward();
        if (!InputNeedsGradient[0]) return;
        _backward = true;
        BatchParallel.For(Batch, Inputs[0].Value.Length, this);
    }

    private void BackwardAverage(int firstImage, int endImage)
    {
        var dx = Inputs[0].Gradient.AsSpan();
        var dy = Output.Gradient.AsSpan();
        if (AssignsInputGradient(0)) dx.Slice(firstImage * _h * _w * _c, (endImage - firstImage) * _h * _w * _c).Clear();
        for (int b = firstImage; b < endImage; b++)
            for (int oy = 0; oy < _oh; oy++)
                for (int ox = 0; ox < _ow; ox++)
                {
                    var (y0, y1, x0, x1) = Cells(oy, ox);
                    int count = (y1 - y0) * (x1 - x0);
                    if (count == 0) continue;
                    var share = T.One / T.CreateChecked(count);
                    var gradient = dy.Slice(((b * _oh + oy) * _ow + ox) * _c, _c);
                    for (int iy = y0; iy < y1; iy++)
                        for (int ix = x0; ix < x1; ix++)
                            Vectorised.AddScaled(dx.Slice(((b * _h + iy) * _w + ix) * _c, _c), gradient, share);
                }
    }
}
