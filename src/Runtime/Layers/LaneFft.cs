using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace CnnDsl.Runtime.Layers;

/// <summary>
/// Radix-2 fast Fourier transforms of one power-of-two length on vectors of lanes: each
/// Vector&lt;T&gt; holds the same element of Vector&lt;T&gt;.Count independent signals (the channels or
/// filters of NHWC data), so every butterfly serves all of them with no shuffles. Iterative
/// Cooley-Tukey, decimation in time (bit-reversed input order, then log2 n stages of butterflies).
/// Forward: X[k] = sum_j x[j] e^(-2 pi i jk / n); inverse: the same with +, unscaled.
/// Real signals go two at a time through one complex transform, one as the real part and one as
/// the imaginary part, and are separated by the spectrum's conjugate symmetry
/// (Press et al., Numerical Recipes, 3rd ed., section 12.3.2).
/// </summary>
public sealed class LaneFft<T> where T : unmanaged, INumber<T>
{
    private readonly int _n;
    private readonly int[] _reverse;
    // cos(2 pi k / n), sin(2 pi k / n) and -sin(2 pi k / n) for k < n / 2, each in every lane
    private readonly Vector<T>[] _cos, _sin, _minusSin;
    private static readonly Vector<T> Half = new(T.One / (T.One + T.One));

    public LaneFft(int length)
    {
        if (length < 2 || (length & (length - 1)) != 0) throw new ArgumentOutOfRangeException(nameof(length), "a power of two of at least 2");
        _n = length;
        int bits = BitOperations.Log2((uint)length);
        _reverse = new int[length];
        for (int i = 0; i < length; i++)
        {
            int r = 0;
            for (int b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
            _reverse[i] = r;
        }
        _cos = new Vector<T>[length / 2];
        _sin = new Vector<T>[length / 2];
        _minusSin = new Vector<T>[length / 2];
        for (int k = 0; k < length / 2; k++)
        {
            _cos[k] = new Vector<T>(T.CreateChecked(Math.Cos(2 * Math.PI * k / length)));
            _sin[k] = new Vector<T>(T.CreateChecked(Math.Sin(2 * Math.PI * k / length)));
            _minusSin[k] = -_sin[k];
        }
    }

    public int Length => _n;

    /// <summary>The complex transform of (re, im), in place; `inverse` flips the exponent's sign.</summary>
    public void Transform(Span<Vector<T>> re, Span<Vector<T>> im, bool inverse)
    {
        if (re.Length < _n || im.Length < _n) throw new ArgumentException($"the transform takes {_n} values");
        Transform(ref MemoryMarshal.GetReference(re), ref MemoryMarshal.GetReference(im), 1, inverse);
    }

    /// <summary>The complex transform of the n values re[0], re[stride], ... (and im's), in place.
    /// The caller guarantees (n - 1) stride + 1 values behind each reference.</summary>
    internal void Transform(ref Vector<T> re, ref Vector<T> im, int stride, bool inverse)
    {
        int n = _n;
        for (int i = 0; i < n; i++)
        {
            int j = _reverse[i];
            if (j <= i) continue;
            ref var ri = ref Unsafe.Add(ref re, i * stride); ref var rj = ref Unsafe.Add(ref re, j * stride);
            (ri, rj) = (rj, ri);
            ref var ii = ref Unsafe.Add(ref im, i * stride); ref var ij = ref Unsafe.Add(ref im, j * stride);
            (ii, ij) = (ij, ii);
        }
        // the first stage's twiddle is 1
        for (int a = 0; a < n; a += 2)
        {
            ref var ra = ref Unsafe.Add(ref re, a * stride); ref var rb = ref Unsafe.Add(ref re, (a + 1) * stride);
            ref var ia = ref Unsafe.Add(ref im, a * stride); ref var ib = ref Unsafe.Add(ref im, (a + 1) * stride);
            var (r, s) = (rb, ib);
            rb = ra - r; ib = ia - s;
            ra += r; ia += s;
        }
        var sines = inverse ? _sin : _minusSin;
        for (int size = 4; size <= n; size <<= 1)
        {
            int half = size >> 1, step = n / size;
            for (int k = 0; k < half; k++)
            {
                var wr = _cos[k * step];
                var wi = sines[k * step];
                for (int a = k; a < n; a += size)
                {
                    ref var ra = ref Unsafe.Add(ref re, a * stride); ref var rb = ref Unsafe.Add(ref re, (a + half) * stride);
                    ref var ia = ref Unsafe.Add(ref im, a * stride); ref var ib = ref Unsafe.Add(ref im, (a + half) * stride);
                    var tr = rb * wr - ib * wi;
                    var ti = rb * wi + ib * wr;
                    rb = ra - tr; ib = ia - ti;
                    ra += tr; ia += ti;
                }
            }
        }
    }

    /// <summary>The half spectra (n/2 + 1 bins each) of two real signals: the first in `re`, the
    /// second in `im` on entry (both overwritten). A[k] = (Z[k] + conj Z[n-k]) / 2 and
    /// B[k] = (Z[k] - conj Z[n-k]) / 2i, where Z is the transform of re + i im.</summary>
    public void RealPair(Span<Vector<T>> re, Span<Vector<T>> im,
        Span<Vector<T>> aRe, Span<Vector<T>> aIm, Span<Vector<T>> bRe, Span<Vector<T>> bIm)
    {
        Transform(re, im, inverse: false);
        int n = _n;
        for (int k = 0; k <= n / 2; k++)
        {
            int m = (n - k) & (n - 1);
            var (zr, zi, cr, ci) = (re[k], im[k], re[m], -im[m]);
            aRe[k] = (zr + cr) * Half; aIm[k] = (zi + ci) * Half;
            // (Z - conj Z[n-k]) / 2i: real part (Im d) / 2, imaginary part -(Re d) / 2
            bRe[k] = (zi - ci) * Half; bIm[k] = (cr - zr) * Half;
        }
    }

    /// <summary>The inverse (unscaled: n times the signals) of RealPair: two real signals, the
    /// first left in `re`, the second in `im`, from their half spectra A and B (n/2 + 1 bins each).
    /// The full spectrum of a + i b is Z[k] = A[k] + i B[k], with A[n-k] = conj A[k] (and B's likewise).</summary>
    public void InverseRealPair(ReadOnlySpan<Vector<T>> aRe, ReadOnlySpan<Vector<T>> aIm, ReadOnlySpan<Vector<T>> bRe, ReadOnlySpan<Vector<T>> bIm,
        Span<Vector<T>> re, Span<Vector<T>> im)
    {
        int n = _n;
        for (int k = 0; k <= n / 2; k++)
        {
            re[k] = aRe[k] - bIm[k]; im[k] = aIm[k] + bRe[k];
        }
        for (int k = n / 2 + 1; k < n; k++)
        {
            int m = n - k;
            // conj A[m] + i conj B[m]
            re[k] = aRe[m] + bIm[m]; im[k] = bRe[m] - aIm[m];
        }
        Transform(re, im, inverse: true);
    }
}
