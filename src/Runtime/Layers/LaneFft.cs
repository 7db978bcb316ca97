using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace CnnDsl.Runtime.Layers;

/// <summary>
/// Fast Fourier transforms of one length on vectors of lanes: each Vector&lt;T&gt; holds the same
/// element of Vector&lt;T&gt;.Count independent signals (the channels or filters of NHWC data), so
/// every butterfly serves all of them with no shuffles. Forward: X[k] = sum_j x[j] e^(-2 pi i jk / n);
/// inverse: the same with +, unscaled.
/// Powers of two: iterative radix-2 Cooley-Tukey, decimation in time (bit-reversed input order,
/// then log2 n stages of butterflies). Other lengths whose prime factors are 2, 3 and 5 (6, 10, 12,
/// 24 ...: a convolution's grid need not round up to the next power of two): recursive mixed-radix
/// decimation in time, n = p n', X[k1 + n' k2] = sum_j2 e^(-2 pi i j2 k2 / p) e^(-2 pi i j2 k1 / n)
/// DFT_n'(x[p j1 + j2])[k1], each p-point DFT written out as its sum.
/// Real signals go two at a time through one complex transform, one as the real part and one as
/// the imaginary part, and are separated by the spectrum's conjugate symmetry
/// (Press et al., Numerical Recipes, 3rd ed., section 12.3.2).
/// </summary>
public sealed class LaneFft<T> where T : unmanaged, INumber<T>
{
    private readonly int _n;
    private readonly bool _powerOfTwo;
    // powers of two: the bit-reversal permutation
    private readonly int[] _reverse = [];
    // other lengths: the radices, first to last (each 2, 3 or 5)
    private readonly int[] _radices = [];
    // cos(2 pi k / n), sin(2 pi k / n) and -sin(2 pi k / n), each in every lane, for k < n / 2
    // (powers of two) or k < n
    private readonly Vector<T>[] _cos, _sin, _minusSin;
    private static readonly Vector<T> Half = new(T.One / (T.One + T.One)), Sqrt3Half = new(T.CreateChecked(Math.Sqrt(3) / 2));

    /// <summary>Whether a length has a transform here: at least 2, prime factors 2, 3 and 5 only.</summary>
    public static bool Supports(int length)
    {
        if (length < 2) return false;
        foreach (int p in (int[])[2, 3, 5])
            while (length % p == 0) length /= p;
        return length == 1;
    }

    /// <summary>The smallest supported length of at least n.</summary>
    public static int LengthAtLeast(int n)
    {
        int m = Math.Max(2, n);
        while (!Supports(m)) m++;
        return m;
    }

    public LaneFft(int length)
    {
        if (!Supports(length)) throw new ArgumentOutOfRangeException(nameof(length), "a length of at least 2 whose prime factors are 2, 3 and 5");
        _n = length;
        _powerOfTwo = (length & (length - 1)) == 0;
        int table = _powerOfTwo ? length / 2 : length;
        if (_powerOfTwo)
        {
            int bits = BitOperations.Log2((uint)length);
            _reverse = new int[length];
            for (int i = 0; i < length; i++)
            {
                int r = 0;
                for (int b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
                _reverse[i] = r;
            }
        }
        else
        {
            var radices = new List<int>();
            for (int rest = length; rest > 1;)
                foreach (int p in (int[])[2, 3, 5])
                    if (rest % p == 0) { radices.Add(p); rest /= p; break; }
            _radices = [.. radices];
        }
        _cos = new Vector<T>[table];
        _sin = new Vector<T>[table];
        _minusSin = new Vector<T>[table];
        for (int k = 0; k < table; k++)
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
        if (!_powerOfTwo)
        {
            // out of place: from a copy, back into the strided values
            Span<Vector<T>> copyRe = stackalloc Vector<T>[_n];
            Span<Vector<T>> copyIm = stackalloc Vector<T>[_n];
            for (int j = 0; j < _n; j++) { copyRe[j] = Unsafe.Add(ref re, j * stride); copyIm[j] = Unsafe.Add(ref im, j * stride); }
            Mixed(ref MemoryMarshal.GetReference(copyRe), ref MemoryMarshal.GetReference(copyIm), 1, ref re, ref im, stride, _n, 0,
                inverse ? _sin : _minusSin);
            return;
        }
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

    /// <summary>The n-point DFT of x[0], x[xs], ... into y[0], y[ys], ..., radices[level] first:
    /// the radix p's n / p-point DFTs of x's p decimated sequences into p blocks of y, then in each
    /// column k1 of the blocks a twiddle and a p-point DFT across them, in place.</summary>
    private void Mixed(ref Vector<T> xRe, ref Vector<T> xIm, int xs, ref Vector<T> yRe, ref Vector<T> yIm, int ys, int n, int level,
        Vector<T>[] sines)
    {
        int p = _radices[level], m = n / p, step = _n / n;
        if (m > 1)
            for (int j2 = 0; j2 < p; j2++)
                Mixed(ref Unsafe.Add(ref xRe, j2 * xs), ref Unsafe.Add(ref xIm, j2 * xs), xs * p,
                    ref Unsafe.Add(ref yRe, j2 * m * ys), ref Unsafe.Add(ref yIm, j2 * m * ys), ys, m, level + 1, sines);
        // when m is 1 the p values come straight from x; otherwise from the sub-DFTs in y
        ref var inRe = ref m > 1 ? ref yRe : ref xRe;
        ref var inIm = ref m > 1 ? ref yIm : ref xIm;
        int inStep = m > 1 ? m * ys : xs;
        Span<Vector<T>> tr = stackalloc Vector<T>[5];
        Span<Vector<T>> ti = stackalloc Vector<T>[5];
        for (int k1 = 0; k1 < m; k1++)
        {
            int at = m > 1 ? k1 * ys : 0;
            // t[j2] = w_n^(j2 k1) times the j2-th value (j2 k1 step < n step = _n: no wrap)
            for (int j2 = 0; j2 < p; j2++)
            {
                var a = Unsafe.Add(ref inRe, at + j2 * inStep);
                var b = Unsafe.Add(ref inIm, at + j2 * inStep);
                int t = j2 * k1 * step;
                if (t == 0) { tr[j2] = a; ti[j2] = b; continue; }
                var (wr, wi) = (_cos[t], sines[t]);
                tr[j2] = a * wr - b * wi;
                ti[j2] = a * wi + b * wr;
            }
            // y[k1 + m k2] = sum_j2 w_p^(j2 k2) t[j2]
            ref var outRe = ref Unsafe.Add(ref yRe, k1 * ys);
            ref var outIm = ref Unsafe.Add(ref yIm, k1 * ys);
            int outStep = m * ys;
            if (p == 2)
            {
                outRe = tr[0] + tr[1]; outIm = ti[0] + ti[1];
                Unsafe.Add(ref outRe, outStep) = tr[0] - tr[1]; Unsafe.Add(ref outIm, outStep) = ti[0] - ti[1];
                continue;
            }
            if (p == 3)
            {
                // w_3 = -1/2 -+ i sqrt(3)/2: y1, y2 = t0 - (t1 + t2)/2 -+ i sqrt(3)/2 (t1 - t2) (forward; inverse swaps)
                var (sr, si) = (tr[1] + tr[2], ti[1] + ti[2]);
                var (dr, di) = (tr[1] - tr[2], ti[1] - ti[2]);
                var (cr, ci) = (tr[0] - sr * Half, ti[0] - si * Half);
                // (-i sqrt3/2) d = sqrt3/2 (di - i dr), times -1 for the inverse
                var (er, ei) = sines == _minusSin ? (Sqrt3Half * di, -Sqrt3Half * dr) : (-Sqrt3Half * di, Sqrt3Half * dr);
                outRe = tr[0] + sr; outIm = ti[0] + si;
                Unsafe.Add(ref outRe, outStep) = cr + er; Unsafe.Add(ref outIm, outStep) = ci + ei;
                Unsafe.Add(ref outRe, 2 * outStep) = cr - er; Unsafe.Add(ref outIm, 2 * outStep) = ci - ei;
                continue;
            }
            for (int k2 = 0; k2 < p; k2++)
            {
                var (sr, si) = (tr[0], ti[0]);
                for (int j2 = 1; j2 < p; j2++)
                {
                    int t = j2 * k2 % p * (_n / p);
                    var (wr, wi) = (_cos[t], sines[t]);
                    sr += tr[j2] * wr - ti[j2] * wi;
                    si += tr[j2] * wi + ti[j2] * wr;
                }
                Unsafe.Add(ref outRe, k2 * outStep) = sr;
                Unsafe.Add(ref outIm, k2 * outStep) = si;
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
            int m = (n - k) % n;
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
