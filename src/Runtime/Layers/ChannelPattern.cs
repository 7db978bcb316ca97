using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace CnnDsl.Runtime.Layers;

/// <summary>
/// Per-channel values of NHWC data repeated to lcm(C, W) values, a whole number of vectors
/// of W lanes: flat data of any channel count then runs in whole vectors, the vector at
/// flat position i meeting pattern position i mod lcm(C, W).
/// </summary>
public sealed class ChannelPattern<T> where T : unmanaged, INumber<T>
{
    private readonly int _c, _length;
    private readonly T[] _a, _b, _d, _accumulator;

    public ChannelPattern(int channels)
    {
        _c = channels;
        int w = Vector<T>.Count;
        _length = PeriodOf(channels, w);
        _a = new T[_length]; _b = new T[_length]; _d = new T[_length];
        _accumulator = new T[_length];
    }

    private static int Gcd(int a, int b) => b == 0 ? a : Gcd(b, a % b);

    /// <summary>The pattern's period for C channels and vectors of `lanes`: lcm(C, lanes).</summary>
    public static int PeriodOf(int channels, int lanes) => channels / Gcd(channels, lanes) * lanes;

    private void Spread(ReadOnlySpan<T> perChannel, T[] into)
    {
        for (int p = 0; p < _length; p++) into[p] = perChannel[p % _c];
    }

    private void Fold(T[] pattern, Span<T> into)
    {
        into.Clear();
        for (int p = 0; p < _length; p++) into[p % _c] += pattern[p];
    }

    /// <summary>Values in one period of the pattern: lcm(C, vector width).</summary>
    public int Length => _length;

    /// <summary>into[c] = sum of x over channel c.</summary>
    public void Sum(ReadOnlySpan<T> x, Span<T> into)
    {
        Array.Clear(_accumulator);
        SumRange(x, _accumulator);
        Fold(_accumulator, into);
    }

    /// <summary>acc[p] += x at pattern position p, for x starting at position 0 (the range kernels
    /// below take a slice of whole images, so that several threads can each take their own).</summary>
    public void SumRange(ReadOnlySpan<T> x, Span<T> acc)
    {
        int w = Vector<T>.Count, vectors = x.Length / w, p = 0;
        ref T x0 = ref MemoryMarshal.GetReference(x);
        ref T s0 = ref MemoryMarshal.GetReference(acc);
        for (int v = 0; v < vectors; v++)
        {
            ref T s = ref Unsafe.Add(ref s0, p);
            Vector.StoreUnsafe(Vector.LoadUnsafe(ref s) + Vector.LoadUnsafe(ref x0, (nuint)(v * w)), ref s);
            p += w; if (p == _length) p = 0;
        }
        for (int i = vectors * w; i < x.Length; i++) acc[i % _length] += x[i];
    }

    /// <summary>The per-channel values into the pattern's a, b and d (what the *Range kernels read).</summary>
    public void Prepare(ReadOnlySpan<T> a, ReadOnlySpan<T> b = default, ReadOnlySpan<T> d = default)
    {
        Spread(a, _a);
        if (!b.IsEmpty) Spread(b, _b);
        if (!d.IsEmpty) Spread(d, _d);
    }

    /// <summary>into[c] = the sum over channel c of `count` accumulators of one period each, laid end to end.</summary>
    public void FoldAll(ReadOnlySpan<T> partials, int count, Span<T> into)
    {
        Array.Clear(_accumulator);
        for (int i = 0; i < count; i++)
        {
            var part = partials.Slice(i * _length, _length);
            for (int p = 0; p < _length; p++) _accumulator[p] += part[p];
        }
        Fold(_accumulator, into);
    }

    /// <summary>y += b[c] (a bias on every pixel), then y = max(y, 0) when `relu`: a convolution's
    /// bias and ReLU in one pass over its output instead of two.</summary>
    public void Add(Span<T> y, ReadOnlySpan<T> b, bool relu = false)
    {
        Spread(b, _b);
        AddRange(y, relu);
    }

    /// <summary>Add with the bias already in the pattern (Prepare), on y starting at pattern position 0.</summary>
    public void AddRange(Span<T> y, bool relu)
    {
        int w = Vector<T>.Count, vectors = y.Length / w, p = 0;
        ref T y0 = ref MemoryMarshal.GetReference(y);
        ref T b0 = ref MemoryMarshal.GetArrayDataReference(_b);
        if (relu)
            for (int v = 0; v < vectors; v++)
            {
                var sum = Vector.LoadUnsafe(ref y0, (nuint)(v * w)) + Vector.LoadUnsafe(ref b0, (nuint)p);
                Vector.StoreUnsafe(Vector.Max(sum, Vector<T>.Zero), ref y0, (nuint)(v * w));
                p += w; if (p == _length) p = 0;
            }
        else
            for (int v = 0; v < vectors; v++)
            {
                Vector.StoreUnsafe(Vector.LoadUnsafe(ref y0, (nuint)(v * w)) + Vector.LoadUnsafe(ref b0, (nuint)p), ref y0, (nuint)(v * w));
                p += w; if (p == _length) p = 0;
            }
        for (int i = vectors * w; i < y.Length; i++)
        {
            y[i] += _b[i % _length];
            if (relu && y[i] < T.Zero) y[i] = T.Zero;
        }
    }

    /// <summary>dy = y > 0 ? dy : 0 (a ReLU's backward pass, in place) and into[c] = the sum over
    /// channel c of the result (the bias gradient), in one pass.</summary>
    public void ReluBackwardSum(ReadOnlySpan<T> y, Span<T> dy, Span<T> into)
    {
        Array.Clear(_accumulator);
        int w = Vector<T>.Count, vectors = dy.Length / w, p = 0;
        ref T y0 = ref MemoryMarshal.GetReference(y);
        ref T d0 = ref MemoryMarshal.GetReference(dy);
        ref T s0 = ref MemoryMarshal.GetArrayDataReference(_accumulator);
        for (int v = 0; v < vectors; v++)
        {
            var kept = Vector.ConditionalSelect(Vector.GreaterThan(Vector.LoadUnsafe(ref y0, (nuint)(v * w)), Vector<T>.Zero),
                Vector.LoadUnsafe(ref d0, (nuint)(v * w)), Vector<T>.Zero);
            Vector.StoreUnsafe(kept, ref d0, (nuint)(v * w));
            ref T s = ref Unsafe.Add(ref s0, p);
            Vector.StoreUnsafe(Vector.LoadUnsafe(ref s) + kept, ref s);
            p += w; if (p == _length) p = 0;
        }
        for (int i = vectors * w; i < dy.Length; i++)
        {
            if (!(y[i] > T.Zero)) dy[i] = T.Zero;
            _accumulator[i % _length] += dy[i];
        }
        Fold(_accumulator, into);
    }

    /// <summary>acc[p] += (x - a[p])^2 (Prepare(mean) first).</summary>
    public void SquaredDeviationRange(ReadOnlySpan<T> x, Span<T> acc)
    {
        int w = Vector<T>.Count, vectors = x.Length / w, p = 0;
        ref T x0 = ref MemoryMarshal.GetReference(x);
        ref T m0 = ref MemoryMarshal.GetArrayDataReference(_a);
        ref T s0 = ref MemoryMarshal.GetReference(acc);
        for (int v = 0; v < vectors; v++)
        {
            ref T s = ref Unsafe.Add(ref s0, p);
            var d = Vector.LoadUnsafe(ref x0, (nuint)(v * w)) - Vector.LoadUnsafe(ref m0, (nuint)p);
            Vector.StoreUnsafe(Vector.LoadUnsafe(ref s) + d * d, ref s);
            p += w; if (p == _length) p = 0;
        }
        for (int i = vectors * w; i < x.Length; i++) { var d = x[i] - _a[i % _length]; acc[i % _length] += d * d; }
    }

    /// <summary>y = a[p] x + b[p], then max(y, 0) when relu is set (Prepare(a, b) first).</summary>
    public void AffineRange(ReadOnlySpan<T> x, Span<T> y, bool relu)
    {
        int w = Vector<T>.Count, vectors = x.Length / w, p = 0;
        ref T x0 = ref MemoryMarshal.GetReference(x);
        ref T y0 = ref MemoryMarshal.GetReference(y);
        ref T a0 = ref MemoryMarshal.GetArrayDataReference(_a);
        ref T b0 = ref MemoryMarshal.GetArrayDataReference(_b);
        for (int v = 0; v < vectors; v++)
        {
            var r = Vector.LoadUnsafe(ref a0, (nuint)p) * Vector.LoadUnsafe(ref x0, (nuint)(v * w)) + Vector.LoadUnsafe(ref b0, (nuint)p);
            // max(r, 0) would turn a NaN into 0 on x86; ConditionalSelect keeps it (the trainer stops on NaN).
            if (relu) r = Vector.ConditionalSelect(Vector.LessThan(r, Vector<T>.Zero), Vector<T>.Zero, r);
            Vector.StoreUnsafe(r, ref y0, (nuint)(v * w));
            p += w; if (p == _length) p = 0;
        }
        for (int i = vectors * w; i < x.Length; i++)
        {
            var r = _a[i % _length] * x[i] + _b[i % _length];
            y[i] = relu && r < T.Zero ? T.Zero : r;
        }
    }

    /// <summary>sums[p] += dy and dots[p] += dy x (dy masked by y > 0 where y is given).</summary>
    public void SumAndDotRange(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, Span<T> sums, Span<T> dots, ReadOnlySpan<T> y = default)
    {
        bool masked = !y.IsEmpty;
        ref T y0 = ref MemoryMarshal.GetReference(y);
        int w = Vector<T>.Count, vectors = x.Length / w, p = 0;
        ref T x0 = ref MemoryMarshal.GetReference(x);
        ref T g0 = ref MemoryMarshal.GetReference(dy);
        ref T s0 = ref MemoryMarshal.GetReference(sums);
        ref T t0 = ref MemoryMarshal.GetReference(dots);
        for (int v = 0; v < vectors; v++)
        {
            ref T s = ref Unsafe.Add(ref s0, p);
            ref T t = ref Unsafe.Add(ref t0, p);
            var g = Vector.LoadUnsafe(ref g0, (nuint)(v * w));
            if (masked) g = Vector.ConditionalSelect(Vector.GreaterThan(Vector.LoadUnsafe(ref y0, (nuint)(v * w)), Vector<T>.Zero), g, Vector<T>.Zero);
            Vector.StoreUnsafe(Vector.LoadUnsafe(ref s) + g, ref s);
            Vector.StoreUnsafe(Vector.LoadUnsafe(ref t) + g * Vector.LoadUnsafe(ref x0, (nuint)(v * w)), ref t);
            p += w; if (p == _length) p = 0;
        }
        for (int i = vectors * w; i < x.Length; i++)
        {
            var g = masked && !(y[i] > T.Zero) ? T.Zero : dy[i];
            sums[i % _length] += g; dots[i % _length] += g * x[i];
        }
    }

    /// <summary>dx += a[p] dy + b[p] x + d[p], or dx = that with `assign` (Prepare(a, b, d) first; dy masked by y > 0 where y is given).</summary>
    public void AddLinearRange(ReadOnlySpan<T> dy, ReadOnlySpan<T> x, Span<T> dx, ReadOnlySpan<T> y = default, bool assign = false)
    {
        bool masked = !y.IsEmpty;
        ref T y0 = ref MemoryMarshal.GetReference(y);
        int w = Vector<T>.Count, vectors = x.Length / w, p = 0;
        ref T x0 = ref MemoryMarshal.GetReference(x);
        ref T g0 = ref MemoryMarshal.GetReference(dy);
        ref T r0 = ref MemoryMarshal.GetReference(dx);
        ref T a0 = ref MemoryMarshal.GetArrayDataReference(_a);
        ref T b0 = ref MemoryMarshal.GetArrayDataReference(_b);
        ref T d0 = ref MemoryMarshal.GetArrayDataReference(_d);
        for (int v = 0; v < vectors; v++)
        {
            nuint at = (nuint)(v * w);
            var g = Vector.LoadUnsafe(ref g0, at);
            if (masked) g = Vector.ConditionalSelect(Vector.GreaterThan(Vector.LoadUnsafe(ref y0, at), Vector<T>.Zero), g, Vector<T>.Zero);
            var r = (assign ? Vector<T>.Zero : Vector.LoadUnsafe(ref r0, at)) + Vector.LoadUnsafe(ref a0, (nuint)p) * g
                    + Vector.LoadUnsafe(ref b0, (nuint)p) * Vector.LoadUnsafe(ref x0, at) + Vector.LoadUnsafe(ref d0, (nuint)p);
            Vector.StoreUnsafe(r, ref r0, at);
            p += w; if (p == _length) p = 0;
        }
        for (int i = vectors * w; i < x.Length; i++)
            dx[i] = (assign ? T.Zero : dx[i]) + _a[i % _length] * (masked && !(y[i] > T.Zero) ? T.Zero : dy[i]) + _b[i % _length] * x[i] + _d[i % _length];
    }
}
