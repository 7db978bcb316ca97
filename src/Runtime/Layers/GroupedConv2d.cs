using System.Numerics;
using System.Runtime.InteropServices;
using CnnDsl.Graph;

namespace CnnDsl.Runtime.Layers;

/// <summary>
/// Grouped convolution (Keras's Conv2D(groups=)), and with one group per input channel the
/// depthwise convolution (DepthwiseConv2D, SeparableConv2D's first half): filter o of group
/// g = o / (F/G) sees only input channels g*(C/G) .. (g+1)*(C/G)-1, with an HWIO kernel whose
/// I is C/G. Computed directly from the NHWC input, without columns: a grouped product has
/// C/G times fewer multiply-adds than the full one, which a full im2col + GEMM would waste.
/// y[b, oy, ox, o] = bias[o] + sum over ky, kx, i of x[b, oy*sh - top + ky*dh, ox*sw - left + kx*dw, g*(C/G) + i] * W[ky, kx, i, o]
/// Backward: dW[ky, kx, i, o] and dx are the same sums read the other way; db[o] = sum of dy.
/// </summary>
public sealed class GroupedConv2d<T> : Layer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly int _h, _w, _c, _oh, _ow, _f, _groups, _cg, _fg;
    private readonly Window _window;
    private readonly Parameter<T> _kernel;
    private readonly Parameter<T>? _bias;
    private readonly Parameter<T>[] _parameters;

    public GroupedConv2d(Node node, Activations<T>[] inputs, int batch) : base(node, inputs, batch)
    {
        var conv = node.Kind is LayerKind.Conv k ? k.Item : throw new ArgumentException($"{node.Name} is not a convolution");
        (_h, _w, _c) = Shapes.Hwc(node.InputShapes.Head);
        (_oh, _ow, _f) = Shapes.Hwc(node.OutputShape);
        _window = conv.Window;
        _groups = conv.Groups;
        _cg = _c / _groups;
        _fg = _f / _groups;
        _kernel = new Parameter<T>(node.Name + "/kernel", [_window.KernelH, _window.KernelW, _cg, _f], node.Trainable);
        _bias = conv.Bias ? new Parameter<T>(node.Name + "/bias", [_f], node.Trainable) : null;
        _parameters = _bias == null ? [_kernel] : [_kernel, _bias];
    }

    public Parameter<T> Kernel => _kernel;
    public Parameter<T>? Bias => _bias;
    public override IReadOnlyList<Parameter<T>> Parameters => _parameters;

    /// <summary>Input row (or column) of output position o and kernel cell k, or -1 in the padding.</summary>
    private static int Source(int o, int k, int stride, int dilation, int before, int size)
    {
        int i = o * stride - before + k * dilation;
        return (uint)i < (uint)size ? i : -1;
    }

    public override void Forward(bool training)
    {
        var x = Inputs[0].Value.AsSpan();
        var y = Output.Value.AsSpan();
        var wts = _kernel.Value.AsSpan();
        int kh = _window.KernelH, kw = _window.KernelW;
        for (int b = 0; b < Batch; b++)
        {
            var xb = x.Slice(b * _h * _w * _c, _h * _w * _c);
            for (int oy = 0; oy < _oh; oy++)
            for (int ox = 0; ox < _ow; ox++)
            {
                var row = y.Slice(((b * _oh + oy) * _ow + ox) * _f, _f);
                if (_bias != null) _bias.Value.AsSpan().CopyTo(row); else row.Clear();
                for (int ky = 0; ky < kh; ky++)
                {
                    int iy = Source(oy, ky, _window.StrideH, _window.DilationH, _window.Padding.Top, _h);
                    if (iy < 0) continue;
                    for (int kx = 0; kx < kw; kx++)
                    {
                        int ix = Source(ox, kx, _window.StrideW, _window.DilationW, _window.Padding.Left, _w);
                        if (ix < 0) continue;
                        var pixel = xb.Slice((iy * _w + ix) * _c, _c);
                        var cell = wts.Slice((ky * kw + kx) * _cg * _f, _cg * _f);
                        if (_cg == 1 && _fg == 1) Multiply.AddProduct(pixel, cell, row); // depthwise
                        else
                            for (int g = 0; g < _groups; g++)
                            {
                                var outs = row.Slice(g * _fg, _fg);
                                for (int i = 0; i < _cg; i++)
                                    Multiply.AddScaled(pixel[g * _cg + i], cell.Slice(i * _f + g * _fg, _fg), outs);
                            }
                    }
                }
            }
        }
        Activate();
    }

    public override void Backward()
    {
        ActivationBackward();
        ReadOnlySpan<T> dy = Output.Gradient;
        var x = Inputs[0].Value.AsSpan();
        bool weights = Node.Trainable, input = InputNeedsGradient[0];
        var dw = _kernel.Gradient.AsSpan();
        if (weights)
        {
            dw.Clear();
            if (_bias != null)
            {
                var db = _bias.Gradient.AsSpan();
                db.Clear();
                for (int p = 0; p < Batch * _oh * _ow; p++) Multiply.Add(dy.Slice(p * _f, _f), db);
            }
        }
        if (!weights && !input) return;
        var dx = Inputs[0].Gradient.AsSpan();
        var wts = _kernel.Value.AsSpan();
        int kh = _window.KernelH, kw = _window.KernelW;
        for (int b = 0; b < Batch; b++)
        {
            int image = b * _h * _w * _c;
            for (int oy = 0; oy < _oh; oy++)
            for (int ox = 0; ox < _ow; ox++)
            {
                var grad = dy.Slice(((b * _oh + oy) * _ow + ox) * _f, _f);
                for (int ky = 0; ky < kh; ky++)
                {
                    int iy = Source(oy, ky, _window.StrideH, _window.DilationH, _window.Padding.Top, _h);
                    if (iy < 0) continue;
                    for (int kx = 0; kx < kw; kx++)
                    {
                        int ix = Source(ox, kx, _window.StrideW, _window.DilationW, _window.Padding.Left, _w);
                        if (ix < 0) continue;
                        int at = image + (iy * _w + ix) * _c, cellAt = (ky * kw + kx) * _cg * _f;
                        if (_cg == 1 && _fg == 1)
                        {
                            if (weights) Multiply.AddProduct(x.Slice(at, _c), grad, dw.Slice(cellAt, _f));
                            if (input) Multiply.AddProduct(wts.Slice(cellAt, _f), grad, dx.Slice(at, _c));
                            continue;
                        }
                        for (int g = 0; g < _groups; g++)
                        {
                            var gGrad = grad.Slice(g * _fg, _fg);
                            for (int i = 0; i < _cg; i++)
                            {
                                int c = g * _cg + i, w = cellAt + i * _f + g * _fg;
                                if (weights) Multiply.AddScaled(x[at + c], gGrad, dw.Slice(w, _fg));
                                if (input) dx[at + c] += Multiply.Dot(wts.Slice(w, _fg), gGrad);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// <summary>Element-wise vector kernels of the direct grouped convolution (Vector&lt;T&gt; with a scalar tail).</summary>
internal static class Multiply
{
    /// <summary>z[i] += a[i] * b[i]</summary>
    public static void AddProduct<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> z) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated && Vector<T>.IsSupported)
        {
            var va = MemoryMarshal.Cast<T, Vector<T>>(a);
            var vb = MemoryMarshal.Cast<T, Vector<T>>(b);
            var vz = MemoryMarshal.Cast<T, Vector<T>>(z);
            for (int v = 0; v < vz.Length; v++) vz[v] += va[v] * vb[v];
            i = vz.Length * Vector<T>.Count;
        }
        for (; i < z.Length; i++) z[i] += a[i] * b[i];
    }

    /// <summary>z[i] += s * a[i]</summary>
    public static void AddScaled<T>(T s, ReadOnlySpan<T> a, Span<T> z) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (s == T.Zero) return;
        int i = 0;
        if (Vector.IsHardwareAccelerated && Vector<T>.IsSupported)
        {
            var vs = new Vector<T>(s);
            var va = MemoryMarshal.Cast<T, Vector<T>>(a);
            var vz = MemoryMarshal.Cast<T, Vector<T>>(z);
            for (int v = 0; v < vz.Length; v++) vz[v] += vs * va[v];
            i = vz.Length * Vector<T>.Count;
        }
        for (; i < z.Length; i++) z[i] += s * a[i];
    }

    /// <summary>z[i] += a[i]</summary>
    public static void Add<T>(ReadOnlySpan<T> a, Span<T> z) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int i = 0; i < z.Length; i++) z[i] += a[i];
    }

    /// <summary>sum of a[i] * b[i]</summary>
    public static T Dot<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T sum = T.Zero;
        for (int i = 0; i < a.Length; i++) sum += a[i] * b[i];
        return sum;
    }
}
