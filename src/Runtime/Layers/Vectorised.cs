using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace CnnDsl.Runtime.Layers;

/// <summary>The element-wise loops the layers share, over Vector&lt;T&gt; with a scalar tail.</summary>
public static class Vectorised
{
    /// <summary>dst[i] += src[i]</summary>
    public static void Add<T>(Span<T> dst, ReadOnlySpan<T> src) where T : unmanaged, INumber<T>
    {
        int i = 0, w = Vector<T>.Count;
        var d = MemoryMarshal.Cast<T, Vector<T>>(dst);
        var s = MemoryMarshal.Cast<T, Vector<T>>(src);
        for (int v = 0; v < d.Length && v < s.Length; v++) d[v] += s[v];
        i = Math.Min(d.Length, s.Length) * w;
        for (; i < dst.Length; i++) dst[i] += src[i];
    }

    /// <summary>x[i] *= factor</summary>
    public static void Scale<T>(Span<T> x, T factor) where T : unmanaged, INumber<T>
    {
        var v = MemoryMarshal.Cast<T, Vector<T>>(x);
        var f = new Vector<T>(factor);
        for (int i = 0; i < v.Length; i++) v[i] *= f;
        for (int i = v.Length * Vector<T>.Count; i < x.Length; i++) x[i] *= factor;
    }

    /// <summary>dst[i] += factor * src[i]</summary>
    public static void AddScaled<T>(Span<T> dst, ReadOnlySpan<T> src, T factor) where T : unmanaged, INumber<T>
    {
        var d = MemoryMarshal.Cast<T, Vector<T>>(dst);
        var s = MemoryMarshal.Cast<T, Vector<T>>(src);
        var f = new Vector<T>(factor);
        int vectors = Math.Min(d.Length, s.Length);
        for (int v = 0; v < vectors; v++) d[v] += f * s[v];
        for (int i = vectors * Vector<T>.Count; i < dst.Length; i++) dst[i] += factor * src[i];
    }

    /// <summary>y = max(y, 0)</summary>
    public static void Relu<T>(Span<T> y) where T : unmanaged, INumber<T>
    {
        var v = MemoryMarshal.Cast<T, Vector<T>>(y);
        for (int i = 0; i < v.Length; i++) v[i] = Vector.Max(v[i], Vector<T>.Zero);
        for (int i = v.Length * Vector<T>.Count; i < y.Length; i++) if (y[i] < T.Zero) y[i] = T.Zero;
    }

    /// <summary>dy = y > 0 ? dy : 0</summary>
    public static void ReluBackward<T>(ReadOnlySpan<T> y, Span<T> dy) where T : unmanaged, INumber<T>
    {
        var vy = MemoryMarshal.Cast<T, Vector<T>>(y);
        var vd = MemoryMarshal.Cast<T, Vector<T>>(dy);
        for (int i = 0; i < vy.Length; i++)
            vd[i] = Vector.ConditionalSelect(Vector.GreaterThan(vy[i], Vector<T>.Zero), vd[i], Vector<T>.Zero);
        for (int i = vy.Length * Vector<T>.Count; i < y.Length; i++) if (!(y[i] > T.Zero)) dy[i] = T.Zero;
    }

    /// <summary>dst[indices[i]] += src[i] for every i whose index is not negative (the
    /// backward pass of max and min pooling, which remember the cell each output took).</summary>
    public static void ScatterAdd<T>(Span<T> dst, ReadOnlySpan<T> src, ReadOnlySpan<int> indices) where T : unmanaged, INumber<T>
    {
        for (int i = 0; i < src.Length; i++)
            if (indices[i] >= 0) dst[indices[i]] += src[i];
    }
}
