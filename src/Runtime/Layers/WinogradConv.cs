using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using CnnDsl.Graph;
using CnnDsl.Runtime.Blas;

namespace CnnDsl.Runtime.Layers;

/// <summary>
/// A stride-1 convolution by Winograd's minimal filtering F(m x m, r x r) (Lavin and Gray, "Fast
/// Algorithms for Convolutional Neural Networks", 2016): F(2x2, 3x3), F(4x4, 3x3), F(5x5, 3x3), F(7x7, 3x3) and F(2x2, 7x7).
/// Each m x m block of outputs is Y = A^T [(G g G^T) . (B^T d B)] A for the a x a input tile d under
/// it (a = m + r - 1), so the r^2 m^2 products per block and channel pair of the direct form become
/// a^2 (F(2x2, 3x3): 36 -> 16, 2.25x fewer; F(4x4, 3x3): 144 -> 36, 4x; F(5x5, 3x3): 225 -> 49,
/// 4.6x; F(7x7, 3x3): 441 -> 81, 5.4x; F(2x2, 7x7): 196 -> 64, 3.06x), and the a^2 element-wise products over all tiles are a^2 GEMMs:
/// M[xi] = V[xi] (tiles x C) . U[xi] (C x F).
/// Backward is the adjoint of every step: dM = A dY A^T per tile, dU[xi] = V[xi]^T dM[xi] and
/// dW = G^T dU G; dV[xi] = dM[xi] U[xi]^T and dX += B dV B^T, scattered over the overlapping tiles.
/// The transforms run on NHWC data a vector of channels at a time, so C and F are multiples of
/// the vector width (ColumnPlan checks). Buffer: V (a^2 T C), M (a^2 T F), U and dU (a^2 C F each),
/// each a^2 planes spaced a little more than their size apart (Spaced).
/// Matrices (Toom-Cook at the points 0, 1, -1, 2, -2, 1/2, -1/2 and infinity, the first a - 1 of
/// them; F(2x2, 3x3) and F(4x4, 3x3) are the paper's sections 4.1 and 4.2; F(2x2, 7x7)'s were made
/// and checked against direct correlation by scripts/winograd.py; 1D transforms below, applied to
/// columns then rows):
/// F(2x2, 3x3): B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
/// A^T = [1 1 1 0; 0 1 -1 -1].
/// F(4x4, 3x3): B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1],
/// G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1],
/// A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1].
/// F(2x2, 7x7): in the comment above its 1D transforms at the end (an 8x8 B^T with entries up to 160).
/// F(7x7, 3x3): 9x9 tiles, Toom-Cook at 0, +-1, +-2, +-1/2, 3/2 and infinity (B^T's entries up to 248);
/// F(5x5, 3x3): 7x7 tiles at +-1, +-2, +-1/2 and infinity (up to 80); their 1D transforms at the end.
/// The larger tiles' constants cost float accuracy (docs/results.md gives each one's error against double).
/// </summary>
public sealed class WinogradConv<T> : IBatchWork where T : unmanaged, INumber<T>
{
    private readonly int _h, _w, _c, _f, _oh, _ow, _th, _tw, _top, _left, _m, _r, _a;
    private readonly Kind _kind;

    private enum Kind { F2x3, F4x3, F5x3, F7x3, F2x7 }

    // The transform that IBatchWork.Run does over a chunk's images, and its arrays (set before
    // BatchParallel.For): the per-image transforms ran on one thread while MKL's GEMMs used all.
    private enum Job { Input, InputAdjoint, Output, OutputAdjoint, Forward, WeightProducts }
    private Job _job;
    private T[] _source = [], _target = [], _buffer = [];
    private int _chunkFirst, _chunkCount, _chunkCapacity;
    // forward's bias (or none) and whether a ReLU follows: both applied by the output transform
    private T[]? _bias;
    private bool _relu;

    /// <summary>`tile` is m, the side of each tile's block of outputs: 2, 4, 5 or 7 for 3x3 windows, 2 for 7x7.</summary>
    public WinogradConv(int height, int width, int channels, int filters, int outHeight, int outWidth, Window window, int tile = 2)
    {
        (_h, _w, _c, _f, _oh, _ow) = (height, width, channels, filters, outHeight, outWidth);
        (_top, _left) = (window.Padding.Top, window.Padding.Left);
        (_m, _r) = (tile, window.KernelH);
        _a = _m + _r - 1;
        _kind = (_m, _r) switch
        {
            (2, 3) => Kind.F2x3,
            (4, 3) => Kind.F4x3,
            (5, 3) => Kind.F5x3,
            (7, 3) => Kind.F7x3,
            (2, 7) => Kind.F2x7,
            _ => throw new ArgumentOutOfRangeException(nameof(tile), $"no Winograd F({tile}x{tile}, {_r}x{_r})"),
        };
        _th = (outHeight + tile - 1) / tile;
        _tw = (outWidth + tile - 1) / tile;
    }

    /// <summary>The tiles (m) there are for a window: 2, 4, 5 and 7 for 3x3, 2 for 7x7, none otherwise.</summary>
    public static int[] TileSizes(Window window) => window.KernelH != window.KernelW ? [] : window.KernelH switch { 3 => [2, 4, 5, 7], 7 => [2], _ => [] };

    /// <summary>3x3 or 7x7, stride 1, no dilation, and channels and filters in whole vectors.</summary>
    public static bool Applies(Window window, int channels, int filters) =>
        TileSizes(window).Length > 0 && window.StrideH == 1 && window.StrideW == 1 &&
        window.DilationH == 1 && window.DilationW == 1 &&
        channels % Vector<float>.Count == 0 && filters % Vector<float>.Count == 0;

    private long Tiles(int images) => (long)images * _th * _tw;

    private int Points => _a * _a;

    /// <summary>Values of the layer's buffer for a batch run `imagesPerChunk` images at a time
    /// (V and M hold one chunk's tiles; U and dU are whole).</summary>
    public long Elements(int batch, int imagesPerChunk) => ChunkElements(Math.Min(batch, imagesPerChunk)) + 2L * Points * UPlane;

    /// <summary>Values of one chunk's transformed input and products (V and M) for `images` images.</summary>
    public long ChunkElements(int images) => Points * (VPlane(images) + MPlane(images));

    /// <summary>The distance between two of a buffer's planes (one per point xi) of `values` values:
    /// whole 4 KB pages and one cache line more. Planes a power of two (times a small factor) apart
    /// put a tile's a^2 values in one cache set, which holds 8: the transforms, which read or
    /// write all a^2 at once, then missed L1 and L2 on almost every access (F(4x4, 3x3)'s output
    /// transform on 12x12 -> 10x10 maps took 270 ns per tile and vector of filters).</summary>
    private static long Spaced(long values) => (values + 1023) / 1024 * 1024 + 16;

    private long VPlane(int images) => Spaced(Tiles(images) * _c);
    private long MPlane(int images) => Spaced(Tiles(images) * _f);
    private long UPlane => Spaced((long)_c * _f);

    private Span<T> V(Span<T> buffer, int images) => buffer[..(int)(Points * VPlane(images))];
    private Span<T> M(Span<T> buffer, int images) => buffer.Slice((int)(Points * VPlane(images)), (int)(Points * MPlane(images)));
    private Span<T> U(Span<T> buffer, int chunk) => buffer.Slice((int)ChunkElements(chunk), (int)(Points * UPlane));
    private Span<T> DU(Span<T> buffer, int chunk) => buffer.Slice((int)(ChunkElements(chunk) + Points * UPlane), (int)(Points * UPlane));

    /// <summary>Forward, `chunk` images at a time: each chunk's transformed input and products stay
    /// small enough to be read back from cache (the whole batch's would not, for 8x8 tiles). The
    /// bias (F values, or null) and a ReLU are applied as the output transform stores each output:
    /// a pass of their own over the output cost more (13 MB at batch 256 on the strided model's
    /// third layer).</summary>
    public void Forward(T[] input, ReadOnlySpan<T> weights, T[] buffer, T[] output, int batch, int chunk, T[]? bias = null, bool relu = false)
    {
        (_bias, _relu) = (bias, relu);
        chunk = Math.Min(chunk, batch);
        _chunkCapacity = chunk;
        var u = U(buffer, chunk);
        TransformWeights(weights, u);
        for (int first = 0; first < batch; first += chunk)
        {
            int count = Math.Min(chunk, batch - first), tiles = (int)Tiles(count);
            // (fewer images than threads would leave one thread, its products without MKL's threads)
            if (Fused && count >= BatchParallel.Threads)
            {
                Run(Job.Forward, input, output, buffer, first, count);
                continue;
            }
            long vp = VPlane(count), mp = MPlane(count), up = UPlane;
            var v = V(buffer, count); var m = M(buffer, count);
            Run(Job.Input, input, buffer, buffer, first, count);
            for (int xi = 0; xi < Points; xi++)
                Gemm.Multiply(false, false, tiles, _f, _c, T.One, v[(int)(xi * vp)..], _c, u[(int)(xi * up)..], _f, T.Zero, m[(int)(xi * mp)..], _f);
            Run(Job.Output, buffer, output, buffer, first, count);
        }
    }

    /// <summary>dW (when wanted; assigned) and dX (when wanted; added), a chunk at a time. V must
    /// hold this batch's transformed input when the batch is one chunk, unless `transformFirst` says
    /// to rebuild it (an earlier backward pass overwrote it with dV); with several chunks each
    /// chunk's is rebuilt. U must hold the transformed weights (forward leaves them).</summary>
    public void Backward(T[] input, T[] outputGradient, T[] buffer, Span<T> weightGradient, bool wantWeights,
        T[] inputGradient, bool wantInput, int batch, int chunk, bool transformFirst)
    {
        chunk = Math.Min(chunk, batch);
        _chunkCapacity = chunk;
        var u = U(buffer, chunk); var du = DU(buffer, chunk);
        for (int first = 0; first < batch; first += chunk)
        {
            int count = Math.Min(chunk, batch - first), tiles = (int)Tiles(count);
            long vp = VPlane(count), mp = MPlane(count), up = UPlane;
            var v = V(buffer, count); var m = M(buffer, count);
            Run(Job.OutputAdjoint, outputGradient, buffer, buffer, first, count);
            if (wantWeights)
            {
                if (transformFirst || chunk < batch) Run(Job.Input, input, buffer, buffer, first, count);
                (_buffer, _chunkFirst, _chunkCount, _job) = (buffer, first, count, Job.WeightProducts);
                if (WeightProductsByPoint) BatchParallel.For(Points, (long)Points * tiles * (_c + _f), this);
                else WeightProducts(first, count, 0, Points);
            }
            if (!wantInput) continue;
            for (int xi = 0; xi < Points; xi++)
                Gemm.Multiply(false, true, tiles, _c, _f, T.One, m[(int)(xi * mp)..], _f, u[(int)(xi * up)..], _f, T.Zero, v[(int)(xi * vp)..], _c);
            Run(Job.InputAdjoint, buffer, inputGradient, buffer, first, count);
        }
        if (wantWeights) WeightAdjoint(du, weightGradient);
    }

    /// <summary>Runs a transform over the chunk of images first .. first + count - 1, split by image
    /// over the layer threads.</summary>
    private void Run(Job job, T[] source, T[] target, T[] buffer, int first, int count)
    {
        (_job, _source, _target, _buffer, _chunkFirst, _chunkCount) = (job, source, target, buffer, first, count);
        BatchParallel.For(count, Points * Tiles(count) * (_c + _f), this);
    }

    /// <summary>Images from .. from + count - 1 of the current chunk.</summary>
    void IBatchWork.Run(int from, int count)
    {
        int first = _chunkFirst, images = _chunkCount, to = from + count;
        var buffer = _buffer.AsSpan();
        switch (_job)
        {
            case Job.Input: TransformInput(_source, V(buffer, images), first, images, from, to); break;
            case Job.InputAdjoint: InputAdjoint(V(buffer, images), _target, first, images, from, to); break;
            case Job.Output: TransformOutput(M(buffer, images), _target, first, images, from, to); break;
            case Job.Forward: FusedForward(first, images, from, to); break;
            case Job.WeightProducts:
                // each point's product on this thread alone: the layer threads share the points
                Gemm.Current.SetCallerThreads(1);
                try { WeightProducts(first, images, from, to); }
                finally { Gemm.Current.SetCallerThreads(0); }
                break;
            default: OutputAdjoint(_source, M(buffer, images), first, images, from, to); break;
        }
    }

    // dU's products, C x F each over all the chunk's tiles, were left to MKL's threads one point
    // at a time: so small an output gives its threads little to share. Split by point over the
    // layer threads instead, each product on its own thread. Measured (`cnndsl-bench conv --batch
    // 128`, 2 threads, a Stopwatch about the products, two layers): 32 -> 32 on 28x28 maps
    // 10.4-10.7 -> 8.1-9.3 ms, 64 -> 64 on 14x14 6.8-7.8 -> 5.6, 128 -> 128 on 7x7 3.6-5.0 -> 3.5-3.9.
    // They stay bound by reading V and M (42 MB for the 28x28 layer).
    private bool WeightProductsByPoint => BatchParallel.Threads > 1;

    /// <summary>dU[xi] (+)= V[xi]^T M[xi] for the points from .. to - 1 (assigned for the first
    /// chunk, added for the others).</summary>
    private void WeightProducts(int first, int images, int from, int to)
    {
        var buffer = _buffer.AsSpan();
        int tiles = (int)Tiles(images);
        long vp = VPlane(images), mp = MPlane(images), up = UPlane;
        var v = V(buffer, images); var m = M(buffer, images); var du = DU(buffer, _chunkCapacity);
        var beta = first == 0 ? T.Zero : T.One;
        for (int xi = from; xi < to; xi++)
            Gemm.Multiply(true, false, _c, _f, tiles, T.One, v[(int)(xi * vp)..], _c, m[(int)(xi * mp)..], _f, beta, du[(int)(xi * up)..], _f);
    }

    // With one layer thread the products keep MKL's threads (the step-by-step path). F(7x7, 3x3)
    // has few tiles per image on small maps, so a thread's few images made thin products: its
    // 128 -> 128 forward pass on 7x7 maps (1 tile an image) took 7.6-9.6 ms fused against 5.1-5.6
    // step by step, and 64 -> 64 on 14x14 (4 tiles) gained nothing; 32 -> 32 on 28x28 maps (16
    // tiles) went from 11.1-17.1 to 9.7-12.5 ms fused (`cnndsl-bench conv --first --batch 128`,
    // 2 threads, a noisy machine).
    private bool Fused => ColumnPlan.WinogradFused && BatchParallel.Threads > 1 && (_kind != Kind.F7x3 || _th * _tw >= 16);

    /// <summary>Images from .. to - 1 of the chunk (first, images) through all three forward steps,
    /// a few at a time; their rows of V and M are theirs alone, so threads share nothing.</summary>
    private void FusedForward(int first, int images, int from, int to)
    {
        var buffer = _buffer.AsSpan();
        int perImage = _th * _tw;
        long vp = VPlane(images), mp = MPlane(images), up = UPlane;
        int step = (int)Math.Clamp(ColumnPlan.WinogradFusedElements / ChunkElements(1), 1, to - from);
        var v = V(buffer, images); var m = M(buffer, images); var u = U(buffer, _chunkCapacity);
        Gemm.Current.SetCallerThreads(1);
        try
        {
            for (int s = from; s < to; s += step)
            {
                int e = Math.Min(to, s + step), rows = (e - s) * perImage, row = s * perImage;
                TransformInput(_source, v, first, images, s, e);
                for (int xi = 0; xi < Points; xi++)
                    Gemm.Multiply(false, false, rows, _f, _c, T.One, v[(int)(xi * vp + row * _c)..], _c, u[(int)(xi * up)..], _f, T.Zero,
                        m[(int)(xi * mp + row * _f)..], _f);
                TransformOutput(m, _target, first, images, s, e);
            }
        }
        finally { Gemm.Current.SetCallerThreads(0); }
    }

    /// <summary>U[xi][c, f] = (G g G^T)[xi] for each channel c and filter f (weights HWIO).</summary>
    private void TransformWeights(ReadOnlySpan<T> g, Span<T> u)
    {
        int w = Vector<T>.Count, plane = _c * _f, spaced = (int)UPlane, a = _a, r = _r;
        ref T g0 = ref MemoryMarshal.GetReference(g);
        ref T u0 = ref MemoryMarshal.GetReference(u);
        Span<Vector<T>> k = stackalloc Vector<T>[r * r];
        Span<Vector<T>> t = stackalloc Vector<T>[a * r];   // G g: a x r
        Span<Vector<T>> row = stackalloc Vector<T>[a];
        for (int c = 0; c < _c; c++)
            for (int f = 0; f < _f; f += w)
            {
                nuint at = (nuint)(c * _f + f);
                for (int i = 0; i < r * r; i++) k[i] = Vector.LoadUnsafe(ref g0, at + (nuint)(i * plane));
                for (int kx = 0; kx < r; kx++) Kernel(k, kx, r, t, kx, r);
                for (int i = 0; i < a; i++)
                {
                    Kernel(t, i * r, 1, row, 0, 1);
                    for (int j = 0; j < a; j++) Vector.StoreUnsafe(row[j], ref u0, at + (nuint)((i * a + j) * spaced));
                }
            }
    }

    /// <summary>dW = G^T dU G (r x r from a x a) per channel and filter.</summary>
    private void WeightAdjoint(ReadOnlySpan<T> du, Span<T> dg)
    {
        int w = Vector<T>.Count, plane = _c * _f, spaced = (int)UPlane, a = _a, r = _r;
        ref T d0 = ref MemoryMarshal.GetReference(du);
        ref T g0 = ref MemoryMarshal.GetReference(dg);
        Span<Vector<T>> d = stackalloc Vector<T>[a * a];
        Span<Vector<T>> s = stackalloc Vector<T>[r * a];   // G^T dU: r x a
        Span<Vector<T>> row = stackalloc Vector<T>[r];
        for (int c = 0; c < _c; c++)
            for (int f = 0; f < _f; f += w)
            {
                nuint at = (nuint)(c * _f + f);
                for (int i = 0; i < a * a; i++) d[i] = Vector.LoadUnsafe(ref d0, at + (nuint)(i * spaced));
                for (int j = 0; j < a; j++) KernelAdjoint(d, j, a, s, j, a);
                for (int i = 0; i < r; i++)
                {
                    KernelAdjoint(s, i * a, 1, row, 0, 1);
                    for (int j = 0; j < r; j++) Vector.StoreUnsafe(row[j], ref g0, at + (nuint)((i * r + j) * plane));
                }
            }
    }

    /// <summary>V[xi][tile, c] = (B^T d B)[xi] for each tile's a x a input (zero outside the image).</summary>
    private void TransformInput(ReadOnlySpan<T> x, Span<T> v, int first, int count, int from, int to)
    {
        int w = Vector<T>.Count, a = _a;
        long plane = VPlane(count);
        ref T x0 = ref MemoryMarshal.GetReference(x);
        ref T v0 = ref MemoryMarshal.GetReference(v);
        Span<Vector<T>> d = stackalloc Vector<T>[a * a];
        Span<Vector<T>> e = stackalloc Vector<T>[a * a];
        for (int n = first + from, tile = from * _th * _tw; n < first + to; n++)
            for (int ty = 0; ty < _th; ty++)
                for (int tx = 0; tx < _tw; tx++, tile++)
                {
                    int y0 = _m * ty - _top, x0i = _m * tx - _left;
                    bool inside = y0 >= 0 && x0i >= 0 && y0 + a <= _h && x0i + a <= _w;
                    for (int c = 0; c < _c; c += w)
                    {
                        for (int i = 0; i < a; i++)
                            for (int j = 0; j < a; j++)
                            {
                                int iy = y0 + i, ix = x0i + j;
                                d[i * a + j] = inside || (iy >= 0 && iy < _h && ix >= 0 && ix < _w)
                                    ? Vector.LoadUnsafe(ref x0, (nuint)(((n * _h + iy) * _w + ix) * _c + c)) : Vector<T>.Zero;
                            }
                        // B^T d (columns), then that times B (rows)
                        for (int j = 0; j < a; j++) Data(d, j, a, e, j, a);
                        for (int i = 0; i < a; i++) Data(e, i * a, 1, d, i * a, 1);
                        ref T at = ref Unsafe.Add(ref v0, (nint)((long)tile * _c + c));
                        for (int i = 0; i < a * a; i++) Vector.StoreUnsafe(d[i], ref at, (nuint)(i * plane));
                    }
                }
    }

    /// <summary>dX += B dV B^T for each tile (the tiles overlap: contributions add), inside the image only.</summary>
    private void InputAdjoint(ReadOnlySpan<T> dv, Span<T> dx, int first, int count, int from, int to)
    {
        int w = Vector<T>.Count, a = _a;
        long plane = VPlane(count);
        ref T v0 = ref MemoryMarshal.GetReference(dv);
        ref T x0 = ref MemoryMarshal.GetReference(dx);
        Span<Vector<T>> s = stackalloc Vector<T>[a * a];
        Span<Vector<T>> e = stackalloc Vector<T>[a * a];
        for (int n = first + from, tile = from * _th * _tw; n < first + to; n++)
            for (int ty = 0; ty < _th; ty++)
                for (int tx = 0; tx < _tw; tx++, tile++)
                {
                    int y0 = _m * ty - _top, x0i = _m * tx - _left;
                    bool inside = y0 >= 0 && x0i >= 0 && y0 + a <= _h && x0i + a <= _w;
                    for (int c = 0; c < _c; c += w)
                    {
                        ref T at = ref Unsafe.Add(ref v0, (nint)((long)tile * _c + c));
                        for (int i = 0; i < a * a; i++) s[i] = Vector.LoadUnsafe(ref at, (nuint)(i * plane));
                        for (int j = 0; j < a; j++) DataAdjoint(s, j, a, e, j, a);
                        for (int i = 0; i < a; i++) DataAdjoint(e, i * a, 1, s, i * a, 1);
                        for (int i = 0; i < a; i++)
                            for (int j = 0; j < a; j++)
                            {
                                int iy = y0 + i, ix = x0i + j;
                                if (!inside && (iy < 0 || iy >= _h || ix < 0 || ix >= _w)) continue;
                                ref T r = ref Unsafe.Add(ref x0, ((n * _h + iy) * _w + ix) * _c + c);
                                Vector.StoreUnsafe(Vector.LoadUnsafe(ref r) + s[i * a + j], ref r);
                            }
                    }
                }
    }

    /// <summary>Y = A^T M A per tile: its m x m outputs, those inside the output only.</summary>
    private void TransformOutput(ReadOnlySpan<T> m, Span<T> y, int first, int count, int from, int to)
    {
        int w = Vector<T>.Count, a = _a, mm = _m;
        long plane = MPlane(count);
        ref T m0 = ref MemoryMarshal.GetReference(m);
        ref T y0 = ref MemoryMarshal.GetReference(y);
        bool biased = _bias != null, relu = _relu;
        ReadOnlySpan<T> bias = _bias;
        Span<Vector<T>> d = stackalloc Vector<T>[a * a];
        Span<Vector<T>> t = stackalloc Vector<T>[mm * a];   // A^T M: m x a
        Span<Vector<T>> row = stackalloc Vector<T>[mm];
        for (int n = first + from, tile = from * _th * _tw; n < first + to; n++)
            for (int ty = 0; ty < _th; ty++)
                for (int tx = 0; tx < _tw; tx++, tile++)
                {
                    int oy = mm * ty, ox = mm * tx;
                    int rows = Math.Min(mm, _oh - oy), columns = Math.Min(mm, _ow - ox);
                    for (int f = 0; f < _f; f += w)
                    {
                        ref T at = ref Unsafe.Add(ref m0, (nint)((long)tile * _f + f));
                        for (int i = 0; i < a * a; i++) d[i] = Vector.LoadUnsafe(ref at, (nuint)(i * plane));
                        for (int j = 0; j < a; j++) Output(d, j, a, t, j, a);
                        var b = biased ? new Vector<T>(bias[f..]) : Vector<T>.Zero;
                        for (int i = 0; i < rows; i++)
                        {
                            Output(t, i * a, 1, row, 0, 1);
                            int pixel = (n * _oh + oy + i) * _ow + ox;
                            for (int j = 0; j < columns; j++)
                            {
                                var value = row[j] + b;
                                Vector.StoreUnsafe(relu ? Vector.Max(value, Vector<T>.Zero) : value, ref y0, (nuint)((pixel + j) * _f + f));
                            }
                        }
                    }
                }
    }

    /// <summary>dM = A dY A^T per tile (dY zero outside the output).</summary>
    private void OutputAdjoint(ReadOnlySpan<T> dy, Span<T> m, int first, int count, int from, int to)
    {
        int w = Vector<T>.Count, a = _a, mm = _m;
        long plane = MPlane(count);
        ref T d0 = ref MemoryMarshal.GetReference(dy);
        ref T m0 = ref MemoryMarshal.GetReference(m);
        Span<Vector<T>> g = stackalloc Vector<T>[mm * mm];
        Span<Vector<T>> s = stackalloc Vector<T>[a * mm];   // A dY: a x m
        Span<Vector<T>> row = stackalloc Vector<T>[a];
        for (int n = first + from, tile = from * _th * _tw; n < first + to; n++)
            for (int ty = 0; ty < _th; ty++)
                for (int tx = 0; tx < _tw; tx++, tile++)
                {
                    int oy = mm * ty, ox = mm * tx;
                    int rows = Math.Min(mm, _oh - oy), columns = Math.Min(mm, _ow - ox);
                    for (int f = 0; f < _f; f += w)
                    {
                        for (int i = 0; i < mm; i++)
                            for (int j = 0; j < mm; j++)
                                g[i * mm + j] = i < rows && j < columns
                                    ? Vector.LoadUnsafe(ref d0, (nuint)(((n * _oh + oy + i) * _ow + ox + j) * _f + f)) : Vector<T>.Zero;
                        for (int j = 0; j < mm; j++) OutputAdjoint(g, j, mm, s, j, mm);
                        ref T at = ref Unsafe.Add(ref m0, (nint)((long)tile * _f + f));
                        for (int i = 0; i < a; i++)
                        {
                            OutputAdjoint(s, i * mm, 1, row, 0, 1);
                            for (int j = 0; j < a; j++) Vector.StoreUnsafe(row[j], ref at, (nuint)((i * a + j) * plane));
                        }
                    }
                }
    }

    // The 1D transforms, each from the values x[o], x[o + s], ... (a tile's column when s is its
    // width, a row when s is 1) to y[yo], y[yo + ys], ...: the matrices' products written out, with
    // the sums and differences that the paired points (1 and -1, 2 and -2, 1/2 and -1/2) share.

    private static readonly Vector<T> Two = new(T.CreateChecked(2)), Four = new(T.CreateChecked(4)),
        Five = new(T.CreateChecked(5)), Eight = new(T.CreateChecked(8)), Half = new(T.One / T.CreateChecked(2)),
        Quarter = new(T.One / T.CreateChecked(4)), Sixth = new(T.One / T.CreateChecked(6)),
        Twelfth = new(T.One / T.CreateChecked(12)), TwentyFourth = new(T.One / T.CreateChecked(24));

    /// <summary>B^T x: a values in, a out.</summary>
    private void Data(ReadOnlySpan<Vector<T>> x, int o, int s, Span<Vector<T>> y, int yo, int ys)
    {
        if (_kind == Kind.F7x3) { Data7x3(x, o, s, y, yo, ys); return; }
        if (_kind == Kind.F5x3) { Data5x3(x, o, s, y, yo, ys); return; }
        if (_kind == Kind.F2x3)
        {
            var (a, b, e, f) = (x[o], x[o + s], x[o + 2 * s], x[o + 3 * s]);
            y[yo] = a - e; y[yo + ys] = b + e; y[yo + 2 * ys] = e - b; y[yo + 3 * ys] = b - f;
            return;
        }
        if (_kind == Kind.F2x7) { Data7(x, o, s, y, yo, ys); return; }
        var (x0, x1, x2, x3, x4, x5) = (x[o], x[o + s], x[o + 2 * s], x[o + 3 * s], x[o + 4 * s], x[o + 5 * s]);
        var p = x4 - Four * x2; var q = x3 - Four * x1;          // rows 1 and 2: p +- q
        var u = x4 - x2; var v = Two * (x3 - x1);                 // rows 3 and 4: u +- v
        y[yo] = Four * x0 - Five * x2 + x4;
        y[yo + ys] = p + q; y[yo + 2 * ys] = p - q;
        y[yo + 3 * ys] = u + v; y[yo + 4 * ys] = u - v;
        y[yo + 5 * ys] = Four * x1 - Five * x3 + x5;
    }

    /// <summary>B x (the adjoint of Data).</summary>
    private void DataAdjoint(ReadOnlySpan<Vector<T>> x, int o, int s, Span<Vector<T>> y, int yo, int ys)
    {
        if (_kind == Kind.F7x3) { DataAdjoint7x3(x, o, s, y, yo, ys); return; }
        if (_kind == Kind.F5x3) { DataAdjoint5x3(x, o, s, y, yo, ys); return; }
        if (_kind == Kind.F2x3)
        {
            var (a, b, e, f) = (x[o], x[o + s], x[o + 2 * s], x[o + 3 * s]);
            y[yo] = a; y[yo + ys] = b - e + f; y[yo + 2 * ys] = b + e - a; y[yo + 3 * ys] = -f;
            return;
        }
        if (_kind == Kind.F2x7) { DataAdjoint7(x, o, s, y, yo, ys); return; }
        var (y0, y1, y2, y3, y4, y5) = (x[o], x[o + s], x[o + 2 * s], x[o + 3 * s], x[o + 4 * s], x[o + 5 * s]);
        y[yo] = Four * y0;
        y[yo + ys] = Four * (y2 - y1 + y5) + Two * (y4 - y3);
        y[yo + 2 * ys] = -Five * y0 - Four * (y1 + y2) - y3 - y4;
        y[yo + 3 * ys] = y1 - y2 + Two * (y3 - y4) - Five * y5;
        y[yo + 4 * ys] = y0 + y1 + y2 + y3 + y4;
        y[yo + 5 * ys] = y5;
    }

    /// <summary>G g: r values in, a out.</summary>
    private void Kernel(ReadOnlySpan<Vector<T>> x, int o, int s, Span<Vector<T>> y, int yo, int ys)
    {
        if (_kind == Kind.F7x3) { Kernel7x3(x, o, s, y, yo, ys); return; }
        if (_kind == Kind.F5x3) { Kernel5x3(x, o, s, y, yo, ys); return; }
        if (_kind == Kind.F2x7) { Kernel7(x, o, s, y, yo, ys); return; }
        var (g0, g1, g2) = (x[o], x[o + s], x[o + 2 * s]);
        if (_kind == Kind.F2x3)
        {
            y[yo] = g0; y[yo + ys] = (g0 + g1 + g2) * Half; y[yo + 2 * ys] = (g0 - g1 + g2) * Half; y[yo + 3 * ys] = g2;
            return;
        }
        var even = g0 + g2;
        y[yo] = g0 * Quarter;
        y[yo + ys] = -(even + g1) * Sixth;
        y[yo + 2 * ys] = (g1 - even) * Sixth;
        var e2 = g0 * TwentyFourth + g2 * Sixth; var o2 = g1 * Twelfth;
        y[yo + 3 * ys] = e2 + o2;
        y[yo + 4 * ys] = e2 - o2;
        y[yo + 5 * ys] = g2;
    }

    /// <summary>G^T u: a values in, r out.</summary>
    private void KernelAdjoint(ReadOnlySpan<Vector<T>> x, int o, int s, Span<Vector<T>> y, int yo, int ys)
    {
        if (_kind == Kind.F7x3) { KernelAdjoint7x3(x, o, s, y, yo, ys); return; }
        if (_kind == Kind.F5x3) { KernelAdjoint5x3(x, o, s, y, yo, ys); return; }
        if (_kind == Kind.F2x3)
        {
            var (a, b, e, d) = (x[o], x[o + s], x[o + 2 * s], x[o + 3 * s]);
            y[yo] = a + (b + e) * Half; y[yo + ys] = (b - e) * Half; y[yo + 2 * ys] = (b + e) * Half + d;
            return;
        }
        if (_kind == Kind.F2x7) { KernelAdjoint7(x, o, s, y, yo, ys); return; }
        var (u0, u1, u2, u3, u4, u5) = (x[o], x[o + s], x[o + 2 * s], x[o + 3 * s], x[o + 4 * s], x[o + 5 * s]);
        var sum12 = u1 + u2; var sum34 = u3 + u4;
        y[yo] = u0 * Quarter - sum12 * Sixth + sum34 * TwentyFourth;
        y[yo + ys] = (u2 - u1) * Sixth + (u3 - u4) * Twelfth;
        y[yo + 2 * ys] = (sum34 - sum12) * Sixth + u5;
    }

    /// <summary>A^T x: a values in, m out.</summary>
    private void Output(ReadOnlySpan<Vector<T>> x, int o, int s, Span<Vector<T>> y, int yo, int ys)
    {
        if (_kind == Kind.F7x3) { Output7x3(x, o, s, y, yo, ys); return; }
        if (_kind == Kind.F5x3) { Output5x3(x, o, s, y, yo, ys); return; }
        if (_kind == Kind.F2x3)
        {
            var (a, b, e, d) = (x[o], x[o + s], x[o + 2 * s], x[o + 3 * s]);
            y[yo] = a + b + e; y[yo + ys] = b - e - d;
            return;
        }
        if (_kind == Kind.F2x7) { Output7(x, o, s, y, yo, ys); return; }
        var (m0, m1, m2, m3, m4, m5) = (x[o], x[o + s], x[o + 2 * s], x[o + 3 * s], x[o + 4 * s], x[o + 5 * s]);
        var sum12 = m1 + m2; var dif12 = m1 - m2; var sum34 = m3 + m4; var dif34 = m3 - m4;
        y[yo] = m0 + sum12 + sum34;
        y[yo + ys] = dif12 + Two * dif34;
        y[yo + 2 * ys] = sum12 + Four * sum34;
        y[yo + 3 * ys] = dif12 + Eight * dif34 + m5;
    }

    /// <summary>A y: m values in, a out (the adjoint of Output).</summary>
    private void OutputAdjoint(ReadOnlySpan<Vector<T>> x, int o, int s, Span<Vector<T>> y, int yo, int ys)
    {
        if (_kind == Kind.F7x3) { OutputAdjoint7x3(x, o, s, y, yo, ys); return; }
        if (_kind == Kind.F5x3) { OutputAdjoint5x3(x, o, s, y, yo, ys); return; }
        if (_kind == Kind.F2x3)
        {
            var (p, q) = (x[o], x[o + s]);
            y[yo] = p; y[yo + ys] = p + q; y[yo + 2 * ys] = p - q; y[yo + 3 * ys] = -q;
            return;
        }
        if (_kind == Kind.F2x7) { OutputAdjoint7(x, o, s, y, yo, ys); return; }
        var (o0, o1, o2, o3) = (x[o], x[o + s], x[o + 2 * s], x[o + 3 * s]);
        var even = o0 + o2; var odd = o1 + o3; var even2 = o0 + Four * o2; var odd2 = Two * o1 + Eight * o3;
        y[yo] = o0;
        y[yo + ys] = even + odd;
        y[yo + 2 * ys] = even - odd;
        y[yo + 3 * ys] = even2 + odd2;
        y[yo + 4 * ys] = even2 - odd2;
        y[yo + 5 * ys] = o3;
    }

    private static readonly Vector<T> Ten = new(T.CreateChecked(10)), Sixteen = new(T.CreateChecked(16)),
        Seventeen = new(T.CreateChecked(17)), TwentyOne = new(T.CreateChecked(21)), ThirtyTwo = new(T.CreateChecked(32)),
        SixtyFour = new(T.CreateChecked(64)), Eighty = new(T.CreateChecked(80)), OneTwentyEight = new(T.CreateChecked(128)),
        OneSixty = new(T.CreateChecked(160)), Eighteenth = Inverse(18), Over45 = Inverse(45), Over90 = Inverse(90),
        Over180 = Inverse(180), Over360 = Inverse(360), Over720 = Inverse(720), Over1440 = Inverse(1440),
        Over2880 = Inverse(2880), TwoOver45 = new(T.CreateChecked(2) / T.CreateChecked(45)),
        FourOver45 = new(T.CreateChecked(4) / T.CreateChecked(45)), EightOver45 = new(T.CreateChecked(8) / T.CreateChecked(45));

    private static Vector<T> Inverse(int n) => new(T.One / T.CreateChecked(n));

    // F(2x2, 7x7) (scripts/winograd.py):
    // B^T = [4 0 -21 0 21 0 -4 0; 0 4 4 -17 -17 4 4 0; 0 4 -4 -17 17 4 -4 0; 0 2 1 -10 -5 8 4 0;
    //        0 2 -1 -10 5 8 -4 0; 0 64 128 -80 -160 16 32 0; 0 64 -128 -80 160 16 -32 0; 0 4 0 -21 0 21 0 -4],
    // G = [1/4 0 0 0 0 0 0; -1/18 (x7); 1/18 -1/18 1/18 -1/18 1/18 -1/18 1/18;
    //      1/360 1/180 1/90 1/45 2/45 4/45 8/45; -1/360 1/180 -1/90 1/45 -2/45 4/45 -8/45;
    //      1/45 1/90 1/180 1/360 1/720 1/1440 1/2880; -1/45 1/90 -1/180 1/360 -1/720 1/1440 -1/2880; 0 0 0 0 0 0 -1/4],
    // A^T = [1 1 1 1 1 1 1 0; 0 1 -1 2 -2 1/2 -1/2 1].

    private static void Data7(ReadOnlySpan<Vector<T>> x, int o, int s, Span<Vector<T>> y, int yo, int ys)
    {
        var (x0, x1, x2, x3, x4, x5, x6, x7) = (x[o], x[o + s], x[o + 2 * s], x[o + 3 * s], x[o + 4 * s], x[o + 5 * s], x[o + 6 * s], x[o + 7 * s]);
        var odd1 = Four * (x1 + x5) - Seventeen * x3; var even1 = Four * (x2 + x6) - Seventeen * x4;
        var odd3 = Two * x1 - Ten * x3 + Eight * x5; var even3 = x2 - Five * x4 + Four * x6;
        var odd5 = SixtyFour * x1 - Eighty * x3 + Sixteen * x5; var even5 = OneTwentyEight * x2 - OneSixty * x4 + ThirtyTwo * x6;
        y[yo] = Four * (x0 - x6) + TwentyOne * (x4 - x2);
        y[yo + ys] = odd1 + even1; y[yo + 2 * ys] = odd1 - even1;
        y[yo + 3 * ys] = odd3 + even3; y[yo + 4 * ys] = odd3 - even3;
        y[yo + 5 * ys] = odd5 + even5; y[yo + 6 * ys] = odd5 - even5;
        y[yo + 7 * ys] = Four * (x1 - x7) + TwentyOne * (x5 - x3);
    }

    private static void DataAdjoint7(ReadOnlySpan<Vector<T>> x, int o, int s, Span<Vector<T>> y, int yo, int ys)
    {
        var (x0, x1, x2, x3, x4, x5, x6, x7) = (x[o], x[o + s], x[o + 2 * s], x[o + 3 * s], x[o + 4 * s], x[o + 5 * s], x[o + 6 * s], x[o + 7 * s]);
        var sa = x1 + x2; var da = x1 - x2; var sb = x3 + x4; var db = x3 - x4; var sc = x5 + x6; var dc = x5 - x6;
        y[yo] = Four * x0;
        y[yo + ys] = Four * (sa + x7) + Two * sb + SixtyFour * sc;
        y[yo + 2 * ys] = Four * da + db + OneTwentyEight * dc - TwentyOne * x0;
        y[yo + 3 * ys] = -(Seventeen * sa + Ten * sb + Eighty * sc + TwentyOne * x7);
        y[yo + 4 * ys] = TwentyOne * x0 - Seventeen * da - Five * db - OneSixty * dc;
        y[yo + 5 * ys] = Four * sa + Eight * sb + Sixteen * sc + TwentyOne * x7;
        y[yo + 6 * ys] = Four * (da + db - x0) + ThirtyTwo * dc;
        y[yo + 7 * ys] = -Four * x7;
    }

    private static void Kernel7(ReadOnlySpan<Vector<T>> x, int o, int s, Span<Vector<T>> y, int yo, int ys)
    {
        var (g0, g1, g2, g3, g4, g5, g6) = (x[o], x[o + s], x[o + 2 * s], x[o + 3 * s], x[o + 4 * s], x[o + 5 * s], x[o + 6 * s]);
        var even = (g0 + g2 + g4 + g6) * Eighteenth; var odd = (g1 + g3 + g5) * Eighteenth;
        var even3 = g0 * Over360 + g2 * Over90 + g4 * TwoOver45 + g6 * EightOver45; var odd3 = g1 * Over180 + g3 * Over45 + g5 * FourOver45;
        var even5 = g0 * Over45 + g2 * Over180 + g4 * Over720 + g6 * Over2880; var odd5 = g1 * Over90 + g3 * Over360 + g5 * Over1440;
        y[yo] = g0 * Quarter;
        y[yo + ys] = -(even + odd); y[yo + 2 * ys] = even - odd;
        y[yo + 3 * ys] = even3 + odd3; y[yo + 4 * ys] = odd3 - even3;
        y[yo + 5 * ys] = even5 + odd5; y[yo + 6 * ys] = odd5 - even5;
        y[yo + 7 * ys] = -g6 * Quarter;
    }

    private static void KernelAdjoint7(ReadOnlySpan<Vector<T>> x, int o, int s, Span<Vector<T>> y, int yo, int ys)
    {
        var (u0, u1, u2, u3, u4, u5, u6, u7) = (x[o], x[o + s], x[o + 2 * s], x[o + 3 * s], x[o + 4 * s], x[o + 5 * s], x[o + 6 * s], x[o + 7 * s]);
        var even = (u2 - u1) * Eighteenth; var odd = -(u1 + u2) * Eighteenth;
        var s34 = u3 + u4; var d34 = u3 - u4; var s56 = u5 + u6; var d56 = u5 - u6;
        y[yo] = u0 * Quarter + even + d34 * Over360 + d56 * Over45;
        y[yo + ys] = odd + s34 * Over180 + s56 * Over90;
        y[yo + 2 * ys] = even + d34 * Over90 + d56 * Over180;
        y[yo + 3 * ys] = odd + s34 * Over45 + s56 * Over360;
        y[yo + 4 * ys] = even + d34 * TwoOver45 + d56 * Over720;
        y[yo + 5 * ys] = odd + s34 * FourOver45 + s56 * Over1440;
        y[yo + 6 * ys] = even + d34 * EightOver45 + d56 * Over2880 - u7 * Quarter;
    }

    private static void Output7(ReadOnlySpan<Vector<T>> x, int o, int s, Span<Vector<T>> y, int yo, int ys)
    {
        var (m0, m1, m2, m3, m4, m5, m6, m7) = (x[o], x[o + s], x[o + 2 * s], x[o + 3 * s], x[o + 4 * s], x[o + 5 * s], x[o + 6 * s], x[o + 7 * s]);
        y[yo] = m0 + m1 + m2 + m3 + m4 + m5 + m6;
        y[yo + ys] = m1 - m2 + Two * (m3 - m4) + Half * (m5 - m6) + m7;
    }

    private static void OutputAdjoint7(ReadOnlySpan<Vector<T>> x, int o, int s, Span<Vector<T>> y, int yo, int ys)
    {
        var (p, q) = (x[o], x[o + s]);
        var q2 = Two * q; var half = Half * q;
        y[yo] = p; y[yo + ys] = p + q; y[yo + 2 * ys] = p - q; y[yo + 3 * ys] = p + q2;
        y[yo + 4 * ys] = p - q2; y[yo + 5 * ys] = p + half; y[yo + 6 * ys] = p - half; y[yo + 7 * ys] = q;
    }

    // F(7x7, 3x3): Toom-Cook at 0, 1, -1, 2, -2, 1/2, -1/2, 3/2 and infinity (the eighth finite
    // point has no partner, so the rows share no sums); F(5x5, 3x3): at 1, -1, 2, -2, 1/2, -1/2 and
    // infinity (without 0: a third of the float error with 0 in place of -1/2). Each 1D transform
    // is its matrix's nonzero entries written out, as `scripts/winograd.py --csharp` prints them
    // (a loop over the entries cost F(7x7)'s forward pass of a 128 -> 128 layer on 7x7 maps 11 ms
    // against 7-9 for F(4x4, 3x3)).
    private static readonly Vector<T> C10 = new(T.CreateChecked(10)),
        C12 = new(T.CreateChecked(12)),
        C128 = new(T.CreateChecked(128)),
        C14 = new(T.CreateChecked(14)),
        C16 = new(T.CreateChecked(16)),
        C160 = new(T.CreateChecked(160)),
        C17 = new(T.CreateChecked(17)),
        C184 = new(T.CreateChecked(184)),
        C1_105 = new(T.CreateChecked(1) / T.CreateChecked(105)),
        C1_12 = new(T.CreateChecked(1) / T.CreateChecked(12)),
        C1_1260 = new(T.CreateChecked(1) / T.CreateChecked(1260)),
        C1_16 = new(T.CreateChecked(1) / T.CreateChecked(16)),
        C1_18 = new(T.CreateChecked(1) / T.CreateChecked(18)),
        C1_180 = new(T.CreateChecked(1) / T.CreateChecked(180)),
        C1_2 = new(T.CreateChecked(1) / T.CreateChecked(2)),
        C1_2520 = new(T.CreateChecked(1) / T.CreateChecked(2520)),
        C1_32 = new(T.CreateChecked(1) / T.CreateChecked(32)),
        C1_360 = new(T.CreateChecked(1) / T.CreateChecked(360)),
        C1_4 = new(T.CreateChecked(1) / T.CreateChecked(4)),
        C1_45 = new(T.CreateChecked(1) / T.CreateChecked(45)),
        C1_630 = new(T.CreateChecked(1) / T.CreateChecked(630)),
        C1_64 = new(T.CreateChecked(1) / T.CreateChecked(64)),
        C1_70 = new(T.CreateChecked(1) / T.CreateChecked(70)),
        C1_8 = new(T.CreateChecked(1) / T.CreateChecked(8)),
        C1_90 = new(T.CreateChecked(1) / T.CreateChecked(90)),
        C2 = new(T.CreateChecked(2)),
        C20 = new(T.CreateChecked(20)),
        C21 = new(T.CreateChecked(21)),
        C22 = new(T.CreateChecked(22)),
        C243_32 = new(T.CreateChecked(243) / T.CreateChecked(32)),
        C248 = new(T.CreateChecked(248)),
        C27_8 = new(T.CreateChecked(27) / T.CreateChecked(8)),
        C28 = new(T.CreateChecked(28)),
        C32 = new(T.CreateChecked(32)),
        C34 = new(T.CreateChecked(34)),
        C35 = new(T.CreateChecked(35)),
        C3_140 = new(T.CreateChecked(3) / T.CreateChecked(140)),
        C3_2 = new(T.CreateChecked(3) / T.CreateChecked(2)),
        C4 = new(T.CreateChecked(4)),
        C40 = new(T.CreateChecked(40)),
        C42 = new(T.CreateChecked(42)),
        C43 = new(T.CreateChecked(43)),
        C46 = new(T.CreateChecked(46)),
        C48 = new(T.CreateChecked(48)),
        C5 = new(T.CreateChecked(5)),
        C59 = new(T.CreateChecked(59)),
        C6 = new(T.CreateChecked(6)),
        C63 = new(T.CreateChecked(63)),
        C64 = new(T.CreateChecked(64)),
        C68 = new(T.CreateChecked(68)),
        C7 = new(T.CreateChecked(7)),
        C729_64 = new(T.CreateChecked(729) / T.CreateChecked(64)),
        C8 = new(T.CreateChecked(8)),
        C80 = new(T.CreateChecked(80)),
        C81_16 = new(T.CreateChecked(81) / T.CreateChecked(16)),
        C84 = new(T.CreateChecked(84)),
        C85 = new(T.CreateChecked(85)),
        C96 = new(T.CreateChecked(96)),
        C9_4 = new(T.CreateChecked(9) / T.CreateChecked(4));

    /// <summary>B^T x for F(7x7, 3x3): 9 values in, 9 out.</summary>
    private static void Data7x3(ReadOnlySpan<Vector<T>> x, int o, int s, Span<Vector<T>> y, int yo, int ys)
    {
        var (x0, x1, x2, x3, x4, x5, x6, x7, x8) = (x[o], x[o + s], x[o + 2 * s], x[o + 3 * s], x[o + 4 * s], x[o + 5 * s], x[o + 6 * s], x[o + 7 * s], x[o + 8 * s]);
        y[yo] = C12 * x0 - C8 * x1 - C63 * x2 + C42 * x3 + C63 * x4 - C42 * x5 - C12 * x6 + C8 * x7;
        y[yo + ys] = C12 * x1 + C4 * x2 - C59 * x3 - C17 * x4 + C46 * x5 + C4 * x6 - C8 * x7;
        y[yo + 2 * ys] = C12 * x1 - C20 * x2 - C43 * x3 + C85 * x4 - C22 * x5 - C20 * x6 + C8 * x7;
        y[yo + 3 * ys] = C6 * x1 - x2 - C32 * x3 + C5 * x4 + C34 * x5 - C4 * x6 - C8 * x7;
        y[yo + 4 * ys] = C6 * x1 - C7 * x2 - C28 * x3 + C35 * x4 + C14 * x5 - C28 * x6 + C8 * x7;
        y[yo + 5 * ys] = C96 * x1 + C128 * x2 - C248 * x3 - C160 * x4 + C184 * x5 + C32 * x6 - C32 * x7;
        y[yo + 6 * ys] = C48 * x1 - C128 * x2 + C4 * x3 + C160 * x4 - C68 * x5 - C32 * x6 + C16 * x7;
        y[yo + 7 * ys] = C16 * x1 - C84 * x3 + C84 * x5 - C16 * x7;
        y[yo + 8 * ys] = C12 * x1 - C8 * x2 - C63 * x3 + C42 * x4 + C63 * x5 - C42 * x6 - C12 * x7 + C8 * x8;
    }

    /// <summary>B x for F(7x7, 3x3) (the adjoint of Data7x3).</summary>
    private static void DataAdjoint7x3(ReadOnlySpan<Vector<T>> x, int o, int s, Span<Vector<T>> y, int yo, int ys)
    {
        var (x0, x1, x2, x3, x4, x5, x6, x7, x8) = (x[o], x[o + s], x[o + 2 * s], x[o + 3 * s], x[o + 4 * s], x[o + 5 * s], x[o + 6 * s], x[o + 7 * s], x[o + 8 * s]);
        y[yo] = C12 * x0;
        y[yo + ys] = -C8 * x0 + C12 * x1 + C12 * x2 + C6 * x3 + C6 * x4 + C96 * x5 + C48 * x6 + C16 * x7 + C12 * x8;
        y[yo + 2 * ys] = -C63 * x0 + C4 * x1 - C20 * x2 - x3 - C7 * x4 + C128 * x5 - C128 * x6 - C8 * x8;
        y[yo + 3 * ys] = C42 * x0 - C59 * x1 - C43 * x2 - C32 * x3 - C28 * x4 - C248 * x5 + C4 * x6 - C84 * x7 - C63 * x8;
        y[yo + 4 * ys] = C63 * x0 - C17 * x1 + C85 * x2 + C5 * x3 + C35 * x4 - C160 * x5 + C160 * x6 + C42 * x8;
        y[yo + 5 * ys] = -C42 * x0 + C46 * x1 - C22 * x2 + C34 * x3 + C14 * x4 + C184 * x5 - C68 * x6 + C84 * x7 + C63 * x8;
        y[yo + 6 * ys] = -C12 * x0 + C4 * x1 - C20 * x2 - C4 * x3 - C28 * x4 + C32 * x5 - C32 * x6 - C42 * x8;
        y[yo + 7 * ys] = C8 * x0 - C8 * x1 + C8 * x2 - C8 * x3 + C8 * x4 - C32 * x5 + C16 * x6 - C16 * x7 - C12 * x8;
        y[yo + 8 * ys] = C8 * x8;
    }

    /// <summary>G g for F(7x7, 3x3): 3 values in, 9 out.</summary>
    private static void Kernel7x3(ReadOnlySpan<Vector<T>> x, int o, int s, Span<Vector<T>> y, int yo, int ys)
    {
        var (x0, x1, x2) = (x[o], x[o + s], x[o + 2 * s]);
        y[yo] = C1_12 * x0;
        y[yo + ys] = -C1_18 * x0 - C1_18 * x1 - C1_18 * x2;
        y[yo + 2 * ys] = C1_90 * x0 - C1_90 * x1 + C1_90 * x2;
        y[yo + 3 * ys] = -C1_360 * x0 - C1_180 * x1 - C1_90 * x2;
        y[yo + 4 * ys] = -C1_2520 * x0 + C1_1260 * x1 - C1_630 * x2;
        y[yo + 5 * ys] = C1_45 * x0 + C1_90 * x1 + C1_180 * x2;
        y[yo + 6 * ys] = -C1_45 * x0 + C1_90 * x1 - C1_180 * x2;
        y[yo + 7 * ys] = C1_105 * x0 + C1_70 * x1 + C3_140 * x2;
        y[yo + 8 * ys] = C1_8 * x2;
    }

    /// <summary>G^T u for F(7x7, 3x3): 9 values in, 3 out.</summary>
    private static void KernelAdjoint7x3(ReadOnlySpan<Vector<T>> x, int o, int s, Span<Vector<T>> y, int yo, int ys)
    {
        var (x0, x1, x2, x3, x4, x5, x6, x7, x8) = (x[o], x[o + s], x[o + 2 * s], x[o + 3 * s], x[o + 4 * s], x[o + 5 * s], x[o + 6 * s], x[o + 7 * s], x[o + 8 * s]);
        y[yo] = C1_12 * x0 - C1_18 * x1 + C1_90 * x2 - C1_360 * x3 - C1_2520 * x4 + C1_45 * x5 - C1_45 * x6 + C1_105 * x7;
        y[yo + ys] = -C1_18 * x1 - C1_90 * x2 - C1_180 * x3 + C1_1260 * x4 + C1_90 * x5 + C1_90 * x6 + C1_70 * x7;
        y[yo + 2 * ys] = -C1_18 * x1 + C1_90 * x2 - C1_90 * x3 - C1_630 * x4 + C1_180 * x5 - C1_180 * x6 + C3_140 * x7 + C1_8 * x8;
    }

    /// <summary>A^T x for F(7x7, 3x3): 9 values in, 7 out.</summary>
    private static void Output7x3(ReadOnlySpan<Vector<T>> x, int o, int s, Span<Vector<T>> y, int yo, int ys)
    {
        var (x0, x1, x2, x3, x4, x5, x6, x7, x8) = (x[o], x[o + s], x[o + 2 * s], x[o + 3 * s], x[o + 4 * s], x[o + 5 * s], x[o + 6 * s], x[o + 7 * s], x[o + 8 * s]);
        y[yo] = x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7;
        y[yo + ys] = x1 - x2 + C2 * x3 - C2 * x4 + C1_2 * x5 - C1_2 * x6 + C3_2 * x7;
        y[yo + 2 * ys] = x1 + x2 + C4 * x3 + C4 * x4 + C1_4 * x5 + C1_4 * x6 + C9_4 * x7;
        y[yo + 3 * ys] = x1 - x2 + C8 * x3 - C8 * x4 + C1_8 * x5 - C1_8 * x6 + C27_8 * x7;
        y[yo + 4 * ys] = x1 + x2 + C16 * x3 + C16 * x4 + C1_16 * x5 + C1_16 * x6 + C81_16 * x7;
        y[yo + 5 * ys] = x1 - x2 + C32 * x3 - C32 * x4 + C1_32 * x5 - C1_32 * x6 + C243_32 * x7;
        y[yo + 6 * ys] = x1 + x2 + C64 * x3 + C64 * x4 + C1_64 * x5 + C1_64 * x6 + C729_64 * x7 + x8;
    }

    /// <summary>A y for F(7x7, 3x3): 7 values in, 9 out (the adjoint of Output7x3).</summary>
    private static void OutputAdjoint7x3(ReadOnlySpan<Vector<T>> x, int o, int s, Span<Vector<T>> y, int yo, int ys)
    {
        var (x0, x1, x2, x3, x4, x5, x6) = (x[o], x[o + s], x[o + 2 * s], x[o + 3 * s], x[o + 4 * s], x[o + 5 * s], x[o + 6 * s]);
        y[yo] = x0;
        y[yo + ys] = x0 + x1 + x2 + x3 + x4 + x5 + x6;
        y[yo + 2 * ys] = x0 - x1 + x2 - x3 + x4 - x5 + x6;
        y[yo + 3 * ys] = x0 + C2 * x1 + C4 * x2 + C8 * x3 + C16 * x4 + C32 * x5 + C64 * x6;
        y[yo + 4 * ys] = x0 - C2 * x1 + C4 * x2 - C8 * x3 + C16 * x4 - C32 * x5 + C64 * x6;
        y[yo + 5 * ys] = x0 + C1_2 * x1 + C1_4 * x2 + C1_8 * x3 + C1_16 * x4 + C1_32 * x5 + C1_64 * x6;
        y[yo + 6 * ys] = x0 - C1_2 * x1 + C1_4 * x2 - C1_8 * x3 + C1_16 * x4 - C1_32 * x5 + C1_64 * x6;
        y[yo + 7 * ys] = x0 + C3_2 * x1 + C9_4 * x2 + C27_8 * x3 + C81_16 * x4 + C243_32 * x5 + C729_64 * x6;
        y[yo + 8 * ys] = x6;
    }

    /// <summary>B^T x for F(5x5, 3x3): 7 values in, 7 out.</summary>
    private static void Data5x3(ReadOnlySpan<Vector<T>> x, int o, int s, Span<Vector<T>> y, int yo, int ys)
    {
        var (x0, x1, x2, x3, x4, x5, x6) = (x[o], x[o + s], x[o + 2 * s], x[o + 3 * s], x[o + 4 * s], x[o + 5 * s], x[o + 6 * s]);
        y[yo] = C4 * x0 + C4 * x1 - C17 * x2 - C17 * x3 + C4 * x4 + C4 * x5;
        y[yo + ys] = C4 * x0 - C4 * x1 - C17 * x2 + C17 * x3 + C4 * x4 - C4 * x5;
        y[yo + 2 * ys] = C2 * x0 + x1 - C10 * x2 - C5 * x3 + C8 * x4 + C4 * x5;
        y[yo + 3 * ys] = C2 * x0 - x1 - C10 * x2 + C5 * x3 + C8 * x4 - C4 * x5;
        y[yo + 4 * ys] = C32 * x0 + C64 * x1 - C40 * x2 - C80 * x3 + C8 * x4 + C16 * x5;
        y[yo + 5 * ys] = C32 * x0 - C64 * x1 - C40 * x2 + C80 * x3 + C8 * x4 - C16 * x5;
        y[yo + 6 * ys] = C4 * x0 - C21 * x2 + C21 * x4 - C4 * x6;
    }

    /// <summary>B x for F(5x5, 3x3) (the adjoint of Data5x3).</summary>
    private static void DataAdjoint5x3(ReadOnlySpan<Vector<T>> x, int o, int s, Span<Vector<T>> y, int yo, int ys)
    {
        var (x0, x1, x2, x3, x4, x5, x6) = (x[o], x[o + s], x[o + 2 * s], x[o + 3 * s], x[o + 4 * s], x[o + 5 * s], x[o + 6 * s]);
        y[yo] = C4 * x0 + C4 * x1 + C2 * x2 + C2 * x3 + C32 * x4 + C32 * x5 + C4 * x6;
        y[yo + ys] = C4 * x0 - C4 * x1 + x2 - x3 + C64 * x4 - C64 * x5;
        y[yo + 2 * ys] = -C17 * x0 - C17 * x1 - C10 * x2 - C10 * x3 - C40 * x4 - C40 * x5 - C21 * x6;
        y[yo + 3 * ys] = -C17 * x0 + C17 * x1 - C5 * x2 + C5 * x3 - C80 * x4 + C80 * x5;
        y[yo + 4 * ys] = C4 * x0 + C4 * x1 + C8 * x2 + C8 * x3 + C8 * x4 + C8 * x5 + C21 * x6;
        y[yo + 5 * ys] = C4 * x0 - C4 * x1 + C4 * x2 - C4 * x3 + C16 * x4 - C16 * x5;
        y[yo + 6 * ys] = -C4 * x6;
    }

    /// <summary>G g for F(5x5, 3x3): 3 values in, 7 out.</summary>
    private static void Kernel5x3(ReadOnlySpan<Vector<T>> x, int o, int s, Span<Vector<T>> y, int yo, int ys)
    {
        var (x0, x1, x2) = (x[o], x[o + s], x[o + 2 * s]);
        y[yo] = -C1_18 * x0 - C1_18 * x1 - C1_18 * x2;
        y[yo + ys] = -C1_18 * x0 + C1_18 * x1 - C1_18 * x2;
        y[yo + 2 * ys] = C1_180 * x0 + C1_90 * x1 + C1_45 * x2;
        y[yo + 3 * ys] = C1_180 * x0 - C1_90 * x1 + C1_45 * x2;
        y[yo + 4 * ys] = C1_45 * x0 + C1_90 * x1 + C1_180 * x2;
        y[yo + 5 * ys] = C1_45 * x0 - C1_90 * x1 + C1_180 * x2;
        y[yo + 6 * ys] = -C1_4 * x2;
    }

    /// <summary>G^T u for F(5x5, 3x3): 7 values in, 3 out.</summary>
    private static void KernelAdjoint5x3(ReadOnlySpan<Vector<T>> x, int o, int s, Span<Vector<T>> y, int yo, int ys)
    {
        var (x0, x1, x2, x3, x4, x5, x6) = (x[o], x[o + s], x[o + 2 * s], x[o + 3 * s], x[o + 4 * s], x[o + 5 * s], x[o + 6 * s]);
        y[yo] = -C1_18 * x0 - C1_18 * x1 + C1_180 * x2 + C1_180 * x3 + C1_45 * x4 + C1_45 * x5;
        y[yo + ys] = -C1_18 * x0 + C1_18 * x1 + C1_90 * x2 - C1_90 * x3 + C1_90 * x4 - C1_90 * x5;
        y[yo + 2 * ys] = -C1_18 * x0 - C1_18 * x1 + C1_45 * x2 + C1_45 * x3 + C1_180 * x4 + C1_180 * x5 - C1_4 * x6;
    }

    /// <summary>A^T x for F(5x5, 3x3): 7 values in, 5 out.</summary>
    private static void Output5x3(ReadOnlySpan<Vector<T>> x, int o, int s, Span<Vector<T>> y, int yo, int ys)
    {
        var (x0, x1, x2, x3, x4, x5, x6) = (x[o], x[o + s], x[o + 2 * s], x[o + 3 * s], x[o + 4 * s], x[o + 5 * s], x[o + 6 * s]);
        y[yo] = x0 + x1 + x2 + x3 + x4 + x5;
        y[yo + ys] = x0 - x1 + C2 * x2 - C2 * x3 + C1_2 * x4 - C1_2 * x5;
        y[yo + 2 * ys] = x0 + x1 + C4 * x2 + C4 * x3 + C1_4 * x4 + C1_4 * x5;
        y[yo + 3 * ys] = x0 - x1 + C8 * x2 - C8 * x3 + C1_8 * x4 - C1_8 * x5;
        y[yo + 4 * ys] = x0 + x1 + C16 * x2 + C16 * x3 + C1_16 * x4 + C1_16 * x5 + x6;
    }

    /// <summary>A y for F(5x5, 3x3): 5 values in, 7 out (the adjoint of Output5x3).</summary>
    private static void OutputAdjoint5x3(ReadOnlySpan<Vector<T>> x, int o, int s, Span<Vector<T>> y, int yo, int ys)
    {
        var (x0, x1, x2, x3, x4) = (x[o], x[o + s], x[o + 2 * s], x[o + 3 * s], x[o + 4 * s]);
        y[yo] = x0 + x1 + x2 + x3 + x4;
        y[yo + ys] = x0 - x1 + x2 - x3 + x4;
        y[yo + 2 * ys] = x0 + C2 * x1 + C4 * x2 + C8 * x3 + C16 * x4;
        y[yo + 3 * ys] = x0 - C2 * x1 + C4 * x2 - C8 * x3 + C16 * x4;
        y[yo + 4 * ys] = x0 + C1_2 * x1 + C1_4 * x2 + C1_8 * x3 + C1_16 * x4;
        y[yo + 5 * ys] = x0 - C1_2 * x1 + C1_4 * x2 - C1_8 * x3 + C1_16 * x4;
        y[yo + 6 * ys] = x4;
    }
}
