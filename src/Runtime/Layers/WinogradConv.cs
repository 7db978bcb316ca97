using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using CnnDsl.Graph;
using CnnDsl.Runtime.Blas;

namespace CnnDsl.Runtime.Layers;

/// <summary>
/// A 3x3, stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3) (Lavin and Gray, "Fast
/// Algorithms for Convolutional Neural Networks", 2016): each 2x2 block of outputs is
/// Y = A^T [(G g G^T) . (B^T d B)] A for the 4x4 input tile d under it, so the 36 products per
/// block and channel pair of the direct form become 16, and the 16 element-wise products over
/// all tiles are 16 GEMMs: M[xi] = V[xi] (tiles x C) . U[xi] (C x F).
/// Backward is the adjoint of every step: dM = A dY A^T per tile, dU[xi] = V[xi]^T dM[xi] and
/// dW = G^T dU G; dV[xi] = dM[xi] U[xi]^T and dX += B dV B^T, scattered over the overlapping tiles.
/// The transforms run on NHWC data a vector of channels at a time, so C and F are multiples of
/// the vector width (ColumnPlan checks). Buffer: V (16 T C), M (16 T F), U and dU (16 C F each).
/// B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
/// A^T = [1 1 1 0; 0 1 -1 -1].
/// </summary>
public sealed class WinogradConv<T> where T : unmanaged, INumber<T>
{
    private readonly int _h, _w, _c, _f, _oh, _ow, _th, _tw, _top, _left;

    public WinogradConv(int height, int width, int channels, int filters, int outHeight, int outWidth, Window window)
    {
        (_h, _w, _c, _f, _oh, _ow) = (height, width, channels, filters, outHeight, outWidth);
        (_top, _left) = (window.Padding.Top, window.Padding.Left);
        _th = (outHeight + 1) / 2;
        _tw = (outWidth + 1) / 2;
    }

    /// <summary>3x3, stride 1, no dilation, and channels and filters in whole vectors.</summary>
    public static bool Applies(Window window, int channels, int filters) =>
        window.KernelH == 3 && window.KernelW == 3 && window.StrideH == 1 && window.StrideW == 1 &&
        window.DilationH == 1 && window.DilationW == 1 &&
        channels % Vector<float>.Count == 0 && filters % Vector<float>.Count == 0;

    private long Tiles(int batch) => (long)batch * _th * _tw;

    /// <summary>Values of the layer's buffer for a batch.</summary>
    public long Elements(int batch) => 16 * Tiles(batch) * (_c + _f) + 32L * _c * _f;

    private Span<T> V(Span<T> buffer, int batch) => buffer[..(int)(16 * Tiles(batch) * _c)];
    private Span<T> M(Span<T> buffer, int batch) => buffer.Slice((int)(16 * Tiles(batch) * _c), (int)(16 * Tiles(batch) * _f));
    private Span<T> U(Span<T> buffer, int batch) => buffer.Slice((int)(16 * Tiles(batch) * (_c + _f)), 16 * _c * _f);
    private Span<T> DU(Span<T> buffer, int batch) => buffer.Slice((int)(16 * Tiles(batch) * (_c + _f)) + 16 * _c * _f, 16 * _c * _f);

    public void Forward(ReadOnlySpan<T> input, ReadOnlySpan<T> weights, Span<T> buffer, Span<T> output, int batch)
    {
        var v = V(buffer, batch); var m = M(buffer, batch); var u = U(buffer, batch);
        TransformWeights(weights, u);
        TransformInput(input, v, batch);
        int tiles = (int)Tiles(batch);
        for (int xi = 0; xi < 16; xi++)
            Gemm.Multiply(false, false, tiles, _f, _c, T.One, v.Slice(xi * tiles * _c), _c, u.Slice(xi * _c * _f), _f, T.Zero, m.Slice(xi * tiles * _f), _f);
        TransformOutput(m, output, batch);
    }

    /// <summary>dW (when wanted; assigned) and dX (when wanted; added). V must hold this batch's
    /// transformed input unless `transformFirst` says to rebuild it (an earlier backward pass
    /// overwrote it with dV); U must hold the transformed weights (forward leaves them).</summary>
    public void Backward(ReadOnlySpan<T> input, ReadOnlySpan<T> outputGradient, Span<T> buffer, Span<T> weightGradient, bool wantWeights,
        Span<T> inputGradient, bool wantInput, int batch, bool transformFirst)
    {
        var v = V(buffer, batch); var m = M(buffer, batch); var u = U(buffer, batch);
        int tiles = (int)Tiles(batch);
        OutputAdjoint(outputGradient, m, batch);
        if (wantWeights)
        {
            if (transformFirst) TransformInput(input, v, batch);
            var du = DU(buffer, batch);
            for (int xi = 0; xi < 16; xi++)
                Gemm.Multiply(true, false, _c, _f, tiles, T.One, v.Slice(xi * tiles * _c), _c, m.Slice(xi * tiles * _f), _f, T.Zero, du.Slice(xi * _c * _f), _f);
            WeightAdjoint(du, weightGradient);
        }
        if (!wantInput) return;
        for (int xi = 0; xi < 16; xi++)
            Gemm.Multiply(false, true, tiles, _c, _f, T.One, m.Slice(xi * tiles * _f), _f, u.Slice(xi * _c * _f), _f, T.Zero, v.Slice(xi * tiles * _c), _c);
        InputAdjoint(v, inputGradient, batch);
    }

    /// <summary>U[xi][c, f] = (G g G^T)[xi] for each channel c and filter f (weights HWIO).</summary>
    private void TransformWeights(ReadOnlySpan<T> g, Span<T> u)
    {
        int w = Vector<T>.Count, plane = _c * _f;
        var half = new Vector<T>(T.One / (T.One + T.One));
        ref T g0 = ref MemoryMarshal.GetReference(g);
        ref T u0 = ref MemoryMarshal.GetReference(u);
        Span<Vector<T>> t = stackalloc Vector<T>[12];
        for (int c = 0; c < _c; c++)
            for (int f = 0; f < _f; f += w)
            {
                nuint at = (nuint)(c * _f + f);
                // t = G g (4x3), column by column of g
                for (int kx = 0; kx < 3; kx++)
                {
                    var a = Vector.LoadUnsafe(ref g0, at + (nuint)((0 * 3 + kx) * plane));
                    var b = Vector.LoadUnsafe(ref g0, at + (nuint)((1 * 3 + kx) * plane));
                    var d = Vector.LoadUnsafe(ref g0, at + (nuint)((2 * 3 + kx) * plane));
                    t[0 * 3 + kx] = a;
                    t[1 * 3 + kx] = (a + b + d) * half;
                    t[2 * 3 + kx] = (a - b + d) * half;
                    t[3 * 3 + kx] = d;
                }
                for (int i = 0; i < 4; i++)
                {
                    var a = t[i * 3]; var b = t[i * 3 + 1]; var d = t[i * 3 + 2];
                    Vector.StoreUnsafe(a, ref u0, at + (nuint)((i * 4 + 0) * plane));
                    Vector.StoreUnsafe((a + b + d) * half, ref u0, at + (nuint)((i * 4 + 1) * plane));
                    Vector.StoreUnsafe((a - b + d) * half, ref u0, at + (nuint)((i * 4 + 2) * plane));
                    Vector.StoreUnsafe(d, ref u0, at + (nuint)((i * 4 + 3) * plane));
                }
            }
    }

    /// <summary>dW = G^T dU G (3x3 from 4x4) per channel and filter.</summary>
    private void WeightAdjoint(ReadOnlySpan<T> du, Span<T> dg)
    {
        int w = Vector<T>.Count, plane = _c * _f;
        var half = new Vector<T>(T.One / (T.One + T.One));
        ref T d0 = ref MemoryMarshal.GetReference(du);
        ref T g0 = ref MemoryMarshal.GetReference(dg);
        Span<Vector<T>> s = stackalloc Vector<T>[12];
        for (int c = 0; c < _c; c++)
            for (int f = 0; f < _f; f += w)
            {
                nuint at = (nuint)(c * _f + f);
                // s = G^T dU (3x4), column by column
                for (int j = 0; j < 4; j++)
                {
                    var a = Vector.LoadUnsafe(ref d0, at + (nuint)((0 * 4 + j) * plane));
                    var b = Vector.LoadUnsafe(ref d0, at + (nuint)((1 * 4 + j) * plane));
                    var e = Vector.LoadUnsafe(ref d0, at + (nuint)((2 * 4 + j) * plane));
                    var d = Vector.LoadUnsafe(ref d0, at + (nuint)((3 * 4 + j) * plane));
                    s[0 * 4 + j] = a + (b + e) * half;
                    s[1 * 4 + j] = (b - e) * half;
                    s[2 * 4 + j] = (b + e) * half + d;
                }
                for (int i = 0; i < 3; i++)
                {
                    var a = s[i * 4]; var b = s[i * 4 + 1]; var e = s[i * 4 + 2]; var d = s[i * 4 + 3];
                    Vector.StoreUnsafe(a + (b + e) * half, ref g0, at + (nuint)((i * 3 + 0) * plane));
                    Vector.StoreUnsafe((b - e) * half, ref g0, at + (nuint)((i * 3 + 1) * plane));
                    Vector.StoreUnsafe((b + e) * half + d, ref g0, at + (nuint)((i * 3 + 2) * plane));
                }
            }
    }

    /// <summary>V[xi][tile, c] = (B^T d B)[xi] for each tile's 4x4 input (zero outside the image).</summary>
    private void TransformInput(ReadOnlySpan<T> x, Span<T> v, int batch)
    {
        int w = Vector<T>.Count, tiles = (int)Tiles(batch);
        long plane = (long)tiles * _c;
        ref T x0 = ref MemoryMarshal.GetReference(x);
        ref T v0 = ref MemoryMarshal.GetReference(v);
        Span<Vector<T>> d = stackalloc Vector<T>[16];
        for (int n = 0, tile = 0; n < batch; n++)
            for (int ty = 0; ty < _th; ty++)
                for (int tx = 0; tx < _tw; tx++, tile++)
                {
                    int y0 = 2 * ty - _top, x0i = 2 * tx - _left;
                    bool inside = y0 >= 0 && x0i >= 0 && y0 + 4 <= _h && x0i + 4 <= _w;
                    for (int c = 0; c < _c; c += w)
                    {
                        for (int i = 0; i < 4; i++)
                            for (int j = 0; j < 4; j++)
                            {
                                int iy = y0 + i, ix = x0i + j;
                                d[i * 4 + j] = inside || (iy >= 0 && iy < _h && ix >= 0 && ix < _w)
                                    ? Vector.LoadUnsafe(ref x0, (nuint)(((n * _h + iy) * _w + ix) * _c + c)) : Vector<T>.Zero;
                            }
                        // t = B^T d, then V = t B
                        for (int j = 0; j < 4; j++)
                        {
                            var a = d[j]; var b = d[4 + j]; var e = d[8 + j]; var f = d[12 + j];
                            d[j] = a - e; d[4 + j] = b + e; d[8 + j] = e - b; d[12 + j] = b - f;
                        }
                        ref T at = ref Unsafe.Add(ref v0, (nint)((long)tile * _c + c));
                        for (int i = 0; i < 4; i++)
                        {
                            var a = d[i * 4]; var b = d[i * 4 + 1]; var e = d[i * 4 + 2]; var f = d[i * 4 + 3];
                            Vector.StoreUnsafe(a - e, ref at, (nuint)((i * 4 + 0) * plane));
                            Vector.StoreUnsafe(b + e, ref at, (nuint)((i * 4 + 1) * plane));
                            Vector.StoreUnsafe(e - b, ref at, (nuint)((i * 4 + 2) * plane));
                            Vector.StoreUnsafe(b - f, ref at, (nuint)((i * 4 + 3) * plane));
                        }
                    }
                }
    }

    /// <summary>dX += B dV B^T for each tile (the tiles overlap: contributions add), inside the image only.</summary>
    private void InputAdjoint(ReadOnlySpan<T> dv, Span<T> dx, int batch)
    {
        int w = Vector<T>.Count, tiles = (int)Tiles(batch);
        long plane = (long)tiles * _c;
        ref T v0 = ref MemoryMarshal.GetReference(dv);
        ref T x0 = ref MemoryMarshal.GetReference(dx);
        Span<Vector<T>> s = stackalloc Vector<T>[16];
        for (int n = 0, tile = 0; n < batch; n++)
            for (int ty = 0; ty < _th; ty++)
                for (int tx = 0; tx < _tw; tx++, tile++)
                {
                    int y0 = 2 * ty - _top, x0i = 2 * tx - _left;
                    bool inside = y0 >= 0 && x0i >= 0 && y0 + 4 <= _h && x0i + 4 <= _w;
                    for (int c = 0; c < _c; c += w)
                    {
                        ref T at = ref Unsafe.Add(ref v0, (nint)((long)tile * _c + c));
                        // s = B dV (rows), then dd = s B^T
                        for (int j = 0; j < 4; j++)
                        {
                            var a = Vector.LoadUnsafe(ref at, (nuint)((0 * 4 + j) * plane));
                            var b = Vector.LoadUnsafe(ref at, (nuint)((1 * 4 + j) * plane));
                            var e = Vector.LoadUnsafe(ref at, (nuint)((2 * 4 + j) * plane));
                            var f = Vector.LoadUnsafe(ref at, (nuint)((3 * 4 + j) * plane));
                            s[j] = a; s[4 + j] = b - e + f; s[8 + j] = b + e - a; s[12 + j] = -f;
                        }
                        for (int i = 0; i < 4; i++)
                        {
                            var a = s[i * 4]; var b = s[i * 4 + 1]; var e = s[i * 4 + 2]; var f = s[i * 4 + 3];
                            s[i * 4] = a; s[i * 4 + 1] = b - e + f; s[i * 4 + 2] = b + e - a; s[i * 4 + 3] = -f;
                        }
                        for (int i = 0; i < 4; i++)
                            for (int j = 0; j < 4; j++)
                            {
                                int iy = y0 + i, ix = x0i + j;
                                if (!inside && (iy < 0 || iy >= _h || ix < 0 || ix >= _w)) continue;
                                ref T r = ref Unsafe.Add(ref x0, ((n * _h + iy) * _w + ix) * _c + c);
                                Vector.StoreUnsafe(Vector.LoadUnsafe(ref r) + s[i * 4 + j], ref r);
                            }
                    }
                }
    }

    /// <summary>Y = A^T M A per tile: its 2x2 outputs, those inside the output only.</summary>
    private void TransformOutput(ReadOnlySpan<T> m, Span<T> y, int batch)
    {
        int w = Vector<T>.Count, tiles = (int)Tiles(batch);
        long plane = (long)tiles * _f;
        ref T m0 = ref MemoryMarshal.GetReference(m);
        ref T y0 = ref MemoryMarshal.GetReference(y);
        for (int n = 0, tile = 0; n < batch; n++)
            for (int ty = 0; ty < _th; ty++)
                for (int tx = 0; tx < _tw; tx++, tile++)
                {
                    int oy = 2 * ty, ox = 2 * tx;
                    bool right = ox + 1 < _ow, below = oy + 1 < _oh;
                    for (int f = 0; f < _f; f += w)
                    {
                        ref T at = ref Unsafe.Add(ref m0, (nint)((long)tile * _f + f));
                        // t = A^T M (2x4), column by column; then Y = t A
                        Column(ref at, 0, plane, out var t00, out var t10);
                        Column(ref at, 1, plane, out var t01, out var t11);
                        Column(ref at, 2, plane, out var t02, out var t12);
                        Column(ref at, 3, plane, out var t03, out var t13);
                        int row = (n * _oh + oy) * _ow + ox;
                        Vector.StoreUnsafe(t00 + t01 + t02, ref y0, (nuint)(row * _f + f));
                        if (right) Vector.StoreUnsafe(t01 - t02 - t03, ref y0, (nuint)((row + 1) * _f + f));
                        if (below)
                        {
                            Vector.StoreUnsafe(t10 + t11 + t12, ref y0, (nuint)((row + _ow) * _f + f));
                            if (right) Vector.StoreUnsafe(t11 - t12 - t13, ref y0, (nuint)((row + _ow + 1) * _f + f));
                        }
                    }
                }
    }

    /// <summary>Column j of t = A^T M: M0 + M1 + M2 and M1 - M2 - M3.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Column(ref T at, int j, long plane, out Vector<T> top, out Vector<T> bottom)
    {
        var a = Vector.LoadUnsafe(ref at, (nuint)((0 * 4 + j) * plane));
        var b = Vector.LoadUnsafe(ref at, (nuint)((1 * 4 + j) * plane));
        var e = Vector.LoadUnsafe(ref at, (nuint)((2 * 4 + j) * plane));
        var d = Vector.LoadUnsafe(ref at, (nuint)((3 * 4 + j) * plane));
        top = a + b + e;
        bottom = b - e - d;
    }

    /// <summary>dM = A dY A^T per tile (dY zero outside the output).</summary>
    private void OutputAdjoint(ReadOnlySpan<T> dy, Span<T> m, int batch)
    {
        int w = Vector<T>.Count, tiles = (int)Tiles(batch);
        long plane = (long)tiles * _f;
        ref T d0 = ref MemoryMarshal.GetReference(dy);
        ref T m0 = ref MemoryMarshal.GetReference(m);
        for (int n = 0, tile = 0; n < batch; n++)
            for (int ty = 0; ty < _th; ty++)
                for (int tx = 0; tx < _tw; tx++, tile++)
                {
                    int oy = 2 * ty, ox = 2 * tx;
                    bool right = ox + 1 < _ow, below = oy + 1 < _oh;
                    int row = (n * _oh + oy) * _ow + ox;
                    for (int f = 0; f < _f; f += w)
                    {
                        var g00 = Vector.LoadUnsafe(ref d0, (nuint)(row * _f + f));
                        var g01 = right ? Vector.LoadUnsafe(ref d0, (nuint)((row + 1) * _f + f)) : Vector<T>.Zero;
                        var g10 = below ? Vector.LoadUnsafe(ref d0, (nuint)((row + _ow) * _f + f)) : Vector<T>.Zero;
                        var g11 = right && below ? Vector.LoadUnsafe(ref d0, (nuint)((row + _ow + 1) * _f + f)) : Vector<T>.Zero;
                        // s = A dY (4x2): rows dY0, dY0 + dY1, dY0 - dY1, -dY1; then dM = s A^T
                        ref T at = ref Unsafe.Add(ref m0, (nint)((long)tile * _f + f));
                        Row(ref at, 0, plane, g00, g01);
                        Row(ref at, 1, plane, g00 + g10, g01 + g11);
                        Row(ref at, 2, plane, g00 - g10, g01 - g11);
                        Row(ref at, 3, plane, -g10, -g11);
                    }
                }
    }

    /// <summary>Row i of dM = s A^T from s's row (p, q): p, p + q, p - q, -q.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Row(ref T at, int i, long plane, Vector<T> p, Vector<T> q)
    {
        Vector.StoreUnsafe(p, ref at, (nuint)((i * 4 + 0) * plane));
        Vector.StoreUnsafe(p + q, ref at, (nuint)((i * 4 + 1) * plane));
        Vector.StoreUnsafe(p - q, ref at, (nuint)((i * 4 + 2) * plane));
        Vector.StoreUnsafe(-q, ref at, (nuint)((i * 4 + 3) * plane));
    }
}
