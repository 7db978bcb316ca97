using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using CnnDsl.Graph;
using CnnDsl.Runtime.Blas;

namespace CnnDsl.Runtime.Layers;

/// <summary>
/// A stride-1 convolution by the convolution theorem (Mathieu, Henaff and LeCun, "Fast Training of
/// Convolutional Networks through FFTs", 2014; Vasilache et al., "Fast Convolutional Nets with
/// fbfft", 2015): each padded image plane and each kernel is zero-filled to an Ny x Nx grid (at
/// least the padded input's size, so that no output wraps around), transformed, and the
/// correlation Y = X * W becomes, at every frequency, Y^ = X^ conj(W^), summed over channels: one
/// complex GEMM per frequency, (images x C) by (C x F), in place of kh kw products per output.
/// The seed model's 32 -> 64 7x7 convolution on 22x22 maps: 49 x 16 x 16 = 12,544 multiplications
/// per image and channel pair directly, 24 x 13 x 4 = 1,248 here on a 24x24 grid (10x fewer).
/// Only the half spectrum of a real plane is kept (Nx/2 + 1 columns). A complex product is written
/// as one real GEMM on stacked parts: [Xr Xi] (images x 2C) times U = [Wr -Wi; Wi Wr] (2C x 2F) is
/// [Re Y^, Im Y^].
/// Backward, each gradient is itself a convolution done the same way: dX^ = dY^ W^ (dY placed at the
/// origin; the full convolution lands on the input's place in the grid), which is [dYr dYi] U^T;
/// dW^ = sum over images of conj(dY^) X^, whose parts are sums of the four blocks of
/// [Xr Xi]^T [dYr dYi] (2C x 2F), then inverse-transformed and cut to kh x kw.
/// The transforms (LaneFft) run a vector of channels (or filters) at a time on NHWC data, so C and
/// F are whole vectors (ColumnPlan checks), and are split over the cores image by image.
/// Buffer: V (images x bins x 2C), M (images x bins x 2F), U and dU (2C x bins x 2F each): each
/// frequency's matrices are strided (leading dimension bins x 2C or bins x 2F), so that one plane's
/// transform reads or writes one contiguous stretch (bin-major, they were a page apart per bin: 3x slower).
/// </summary>
public sealed class FftConv<T> : IBatchWork where T : unmanaged, INumber<T>
{
    private readonly int _h, _w, _c, _f, _oh, _ow, _kh, _kw, _top, _left, _ny, _nx, _half;
    private readonly LaneFft<T> _rowFft, _columnFft;
    private readonly Vector<T> _scale;

    // The job that IBatchWork.Run does, and its arrays (set before BatchParallel.For).
    private enum Job { Weights, Input, Output, OutputAdjoint, InputAdjoint, WeightAdjoint, Products, WeightProducts, InputProducts }
    private Job _job;
    private T[] _data = [], _target = [];
    private T _beta;
    private int _chunkFirst, _count, _chunk;

    public FftConv(int height, int width, int channels, int filters, int outHeight, int outWidth, Window window)
    {
        (_h, _w, _c, _f, _oh, _ow) = (height, width, channels, filters, outHeight, outWidth);
        (_kh, _kw, _top, _left) = (window.KernelH, window.KernelW, window.Padding.Top, window.Padding.Left);
        _ny = GridSize(height + window.Padding.Top + window.Padding.Bottom);
        _nx = GridSize(width + window.Padding.Left + window.Padding.Right);
        _half = _nx / 2 + 1;
        _rowFft = new LaneFft<T>(_nx);
        _columnFft = new LaneFft<T>(_ny);
        _scale = new Vector<T>(T.One / T.CreateChecked(_ny * _nx));
    }

    /// <summary>The grid's side for a padded side n: the smallest length of at least n that LaneFft
    /// transforms (prime factors 2, 3 and 5: 22 -> 24, 10 -> 10, 16 -> 16).</summary>
    public static int GridSize(int n) =>
        ColumnPlan.FftPowerOfTwoGrids ? (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(2, n)) : LaneFft<T>.LengthAtLeast(n);

    /// <summary>The largest grid side the transforms take (their scratch is on the stack: 64 x 64
    /// complex values of one vector each, 290 KB).</summary>
    public const int MaxGrid = 64;

    /// <summary>Stride 1, no dilation, channels and filters in whole vectors, and a padded input
    /// within MaxGrid on each side.</summary>
    public static bool Applies(Window window, int height, int width, int channels, int filters) =>
        window.StrideH == 1 && window.StrideW == 1 && window.DilationH == 1 && window.DilationW == 1 &&
        channels % Vector<float>.Count == 0 && filters % Vector<float>.Count == 0 &&
        GridSize(height + window.Padding.Top + window.Padding.Bottom) <= MaxGrid &&
        GridSize(width + window.Padding.Left + window.Padding.Right) <= MaxGrid;

    /// <summary>The transform's grid: Ny rows, Nx columns.</summary>
    public int GridHeight => _ny;
    public int GridWidth => _nx;

    /// <summary>Frequencies kept: Ny (Nx/2 + 1).</summary>
    public int Bins => _ny * _half;

    /// <summary>Values of the layer's buffer for a batch run `imagesPerChunk` images at a time.</summary>
    public long Elements(int batch, int imagesPerChunk) => ChunkElements(Math.Min(batch, imagesPerChunk)) + 8L * Bins * _c * _f;

    /// <summary>Values of one chunk's spectra (V and M) for `images` images.</summary>
    public long ChunkElements(int images) => 2L * Bins * images * (_c + _f);

    /// <summary>How many times fewer multiplications the products make than the direct form:
    /// kh kw oh ow C F against 4 Bins C F per image.</summary>
    public double Saving => (double)_kh * _kw * _oh * _ow / (4.0 * Bins);

    private int VLength(int images) => 2 * Bins * images * _c;
    private int MLength(int images) => 2 * Bins * images * _f;
    private int UOffset => VLength(_chunk) + MLength(_chunk);
    private int ULength => 4 * Bins * _c * _f;

    /// <summary>Forward, `chunk` images at a time.</summary>
    public void Forward(T[] input, T[] weights, T[] buffer, T[] output, int batch, int chunk)
    {
        _chunk = Math.Min(chunk, batch);
        Run(Job.Weights, weights, buffer, _c);
        for (int first = 0; first < batch; first += _chunk)
        {
            int count = Math.Min(_chunk, batch - first);
            _chunkFirst = first; _count = count;
            Run(Job.Input, input, buffer, count);
            Run(Job.Products, buffer, buffer, Bins);
            Run(Job.Output, buffer, output, count);
        }
    }

    /// <summary>dW (when wanted; assigned) and dX (when wanted; added), a chunk at a time. V must
    /// hold this batch's spectra when the batch is one chunk, unless `transformFirst` says to rebuild
    /// them; with several chunks each chunk's is rebuilt. U must hold the transformed weights
    /// (forward leaves them).</summary>
    public void Backward(T[] input, T[] outputGradient, T[] buffer, T[]? weightGradient, bool wantWeights,
        T[] inputGradient, bool wantInput, int batch, int chunk, bool transformFirst)
    {
        _chunk = Math.Min(chunk, batch);
        for (int first = 0; first < batch; first += _chunk)
        {
            int count = Math.Min(_chunk, batch - first);
            _chunkFirst = first; _count = count;
            Run(Job.OutputAdjoint, outputGradient, buffer, count);
            if (wantWeights)
            {
                if (transformFirst || _chunk < batch) Run(Job.Input, input, buffer, count);
                _beta = first == 0 ? T.Zero : T.One;
                Run(Job.WeightProducts, buffer, buffer, Bins);
            }
            if (!wantInput) continue;
            Run(Job.InputProducts, buffer, buffer, Bins);
            Run(Job.InputAdjoint, buffer, inputGradient, count);
        }
        if (wantWeights) Run(Job.WeightAdjoint, buffer, weightGradient!, _c);
    }

    /// <summary>Runs a job over the chunk's images 0 .. count - 1 (channels 0 .. C - 1 for the weight
    /// transforms, frequencies for the products), split over the cores.</summary>
    private void Run(Job job, T[] data, T[] target, int count)
    {
        (_job, _data, _target) = (job, data, target);
        long size = job is Job.Weights or Job.WeightAdjoint or Job.Products or Job.WeightProducts or Job.InputProducts
            ? 4L * Bins * _c * _f : 2L * Bins * count * (_c + _f);
        BatchParallel.For(count, size, this);
    }

    void IBatchWork.Run(int first, int count)
    {
        if (_job >= Job.Products) { Products(first, count); return; }
        int lanes = Vector<T>.Count;
        // scratch: one real plane, the grid's spectrum (real and imaginary parts), a row or column,
        // and a place for the unused second half of an odd row pair
        int largest = Math.Max(_ny, _nx);
        Span<Vector<T>> plane = stackalloc Vector<T>[_ny * _nx];
        Span<Vector<T>> gridRe = stackalloc Vector<T>[Bins];
        Span<Vector<T>> gridIm = stackalloc Vector<T>[Bins];
        Span<Vector<T>> lineRe = stackalloc Vector<T>[largest];
        Span<Vector<T>> lineIm = stackalloc Vector<T>[largest];
        Span<Vector<T>> spare = stackalloc Vector<T>[2 * _half];
        var scratch = new Scratch(gridRe, gridIm, lineRe, lineIm, spare);
        ref T data = ref MemoryMarshal.GetArrayDataReference(_data);
        ref T target = ref MemoryMarshal.GetArrayDataReference(_target);
        int c2 = 2 * _c, f2 = 2 * _f;
        for (int item = first; item < first + count; item++)
        {
            // images: n in the batch, t in the chunk
            int n = _chunkFirst + item, t = item;
            switch (_job)
            {
                case Job.Input:
                    // x (lanes: channels) at (top, left) -> V[bin][t][re: c, im: C + c]
                    for (int c = 0; c < _c; c += lanes)
                        PlaneSpectrum(ref data, (long)n * _h * _w * _c + c, _c, _h, _w, _top, _left,
                            ref Unsafe.Add(ref target, (nint)t * Bins * c2 + c), c2, _c, plane, scratch);
                    break;
                case Job.OutputAdjoint:
                    // dY (lanes: filters) at the origin -> M[bin][t][re: f, im: F + f]
                    for (int f = 0; f < _f; f += lanes)
                        PlaneSpectrum(ref data, (long)n * _oh * _ow * _f + f, _f, _oh, _ow, 0, 0,
                            ref Unsafe.Add(ref target, VLength(_count) + (nint)t * Bins * f2 + f), f2, _f, plane, scratch);
                    break;
                case Job.Output:
                    // M -> y (assigned), the oh x ow corner of the grid
                    for (int f = 0; f < _f; f += lanes)
                    {
                        ref T m = ref Unsafe.Add(ref data, VLength(_count) + (nint)t * Bins * f2 + f);
                        for (int k = 0; k < Bins; k++)
                        {
                            nuint at = (nuint)(k * f2);
                            gridRe[k] = Vector.LoadUnsafe(ref m, at);
                            gridIm[k] = Vector.LoadUnsafe(ref m, at + (nuint)_f);
                        }
                        Inverse2d(plane, _oh, _ow, 0, 0, scratch);
                        for (int i = 0; i < _oh * _ow; i++)
                            Vector.StoreUnsafe(plane[i] * _scale, ref target, (nuint)(((long)n * _oh * _ow + i) * _f + f));
                    }
                    break;
                case Job.InputAdjoint:
                    // dV -> dx (added), the input's place in the grid
                    for (int c = 0; c < _c; c += lanes)
                    {
                        ref T v = ref Unsafe.Add(ref data, (nint)t * Bins * c2 + c);
                        for (int k = 0; k < Bins; k++)
                        {
                            nuint at = (nuint)(k * c2);
                            gridRe[k] = Vector.LoadUnsafe(ref v, at);
                            gridIm[k] = Vector.LoadUnsafe(ref v, at + (nuint)_c);
                        }
                        Inverse2d(plane, _h, _w, _top, _left, scratch);
                        for (int i = 0; i < _h * _w; i++)
                        {
                            ref T r = ref Unsafe.Add(ref target, (nint)(((long)n * _h * _w + i) * _c + c));
                            Vector.StoreUnsafe(Vector.LoadUnsafe(ref r) + plane[i] * _scale, ref r);
                        }
                    }
                    break;
                case Job.Weights:
                    // W (HWIO; lanes: filters) at the origin -> U[bin] = [Wr -Wi; Wi Wr] (2C x 2F)
                    for (int c = item, f = 0; f < _f; f += lanes)
                    {
                        for (int i = 0; i < _kh * _kw; i++) plane[i] = Vector.LoadUnsafe(ref data, (nuint)(((long)i * _c + c) * _f + f));
                        Forward2d(plane, _kh, _kw, 0, 0, scratch);
                        ref T u = ref Unsafe.Add(ref target, UOffset + (nint)c * Bins * f2 + f);
                        for (int k = 0; k < Bins; k++)
                        {
                            nuint at = (nuint)(k * f2), below = (nuint)((long)_c * Bins * f2);
                            Vector.StoreUnsafe(gridRe[k], ref u, at);
                            Vector.StoreUnsafe(-gridIm[k], ref u, at + (nuint)_f);
                            Vector.StoreUnsafe(gridIm[k], ref u, at + below);
                            Vector.StoreUnsafe(gridRe[k], ref u, at + below + (nuint)_f);
                        }
                    }
                    break;
                case Job.WeightAdjoint:
                    // dU's blocks -> conj(dY^) X^ -> dW (assigned), the kh x kw corner of the grid
                    for (int c = item, f = 0; f < _f; f += lanes)
                    {
                        ref T du = ref Unsafe.Add(ref data, UOffset + ULength + (nint)c * Bins * f2 + f);
                        for (int k = 0; k < Bins; k++)
                        {
                            nuint at = (nuint)(k * f2), below = (nuint)((long)_c * Bins * f2);
                            var (rr, ri) = (Vector.LoadUnsafe(ref du, at), Vector.LoadUnsafe(ref du, at + (nuint)_f));
                            var (ir, ii) = (Vector.LoadUnsafe(ref du, at + below), Vector.LoadUnsafe(ref du, at + below + (nuint)_f));
                            gridRe[k] = rr + ii;
                            gridIm[k] = ir - ri;
                        }
                        Inverse2d(plane, _kh, _kw, 0, 0, scratch);
                        for (int i = 0; i < _kh * _kw; i++)
                            Vector.StoreUnsafe(plane[i] * _scale, ref target, (nuint)(((long)i * _c + c) * _f + f));
                    }
                    break;
            }
        }
    }

    /// <summary>The products of frequencies first .. first + count - 1 (the chunk's V, M, U and dU
    /// in the buffer, _data). Several threads share the frequencies, each product then on its own
    /// thread only: hundreds of small products (images x 2C by 2C x 2F) cost MKL a fork and join
    /// of its threads each.</summary>
    private void Products(int first, int count)
    {
        int c2 = 2 * _c, f2 = 2 * _f, images = _count;
        var buffer = _data.AsSpan();
        var v = buffer[..VLength(images)];
        var m = buffer.Slice(VLength(images), MLength(images));
        var u = buffer.Slice(UOffset, ULength);
        var du = buffer.Slice(UOffset + ULength, ULength);
        bool shared = BatchParallel.Threads > 1;
        if (shared) Gemm.Current.SetCallerThreads(1);
        try
        {
            for (int k = first; k < first + count; k++)
                switch (_job)
                {
                    case Job.Products:
                        Gemm.Multiply(false, false, images, f2, c2, T.One, v[(k * c2)..], Bins * c2, u[(k * f2)..], Bins * f2, T.Zero, m[(k * f2)..], Bins * f2);
                        break;
                    case Job.WeightProducts:
                        Gemm.Multiply(true, false, c2, f2, images, T.One, v[(k * c2)..], Bins * c2, m[(k * f2)..], Bins * f2, _beta, du[(k * f2)..], Bins * f2);
                        break;
                    default:
                        Gemm.Multiply(false, true, images, c2, f2, T.One, m[(k * f2)..], Bins * f2, u[(k * f2)..], Bins * f2, T.Zero, v[(k * c2)..], Bins * c2);
                        break;
                }
        }
        finally { if (shared) Gemm.Current.SetCallerThreads(0); }
    }

    private readonly ref struct Scratch(Span<Vector<T>> gridRe, Span<Vector<T>> gridIm, Span<Vector<T>> lineRe, Span<Vector<T>> lineIm, Span<Vector<T>> spare)
    {
        public readonly Span<Vector<T>> GridRe = gridRe, GridIm = gridIm, LineRe = lineRe, LineIm = lineIm, Spare = spare;
    }

    /// <summary>One image's plane of a vector of channels (rows x cols pixels of NHWC data with
    /// `channels` channels, from `at`), transformed at (top, left) of the grid, its spectrum stored
    /// from `into`: bin k at k x stride, its imaginary part `imaginary` further.</summary>
    private void PlaneSpectrum(ref T source, long at, int channels, int rows, int cols, int top, int left,
        ref T into, int stride, int imaginary, Span<Vector<T>> plane, Scratch s)
    {
        for (int i = 0; i < rows * cols; i++) plane[i] = Vector.LoadUnsafe(ref source, (nuint)(at + (long)i * channels));
        Forward2d(plane, rows, cols, top, left, s);
        for (int k = 0; k < Bins; k++)
        {
            nuint o = (nuint)(k * stride);
            Vector.StoreUnsafe(s.GridRe[k], ref into, o);
            Vector.StoreUnsafe(s.GridIm[k], ref into, o + (nuint)imaginary);
        }
    }

    /// <summary>The half spectrum (into the scratch's grid) of a rows x cols real plane placed at
    /// (top, left) of the zero grid: rows two at a time, then each of the Nx/2 + 1 columns.</summary>
    private void Forward2d(ReadOnlySpan<Vector<T>> plane, int rows, int cols, int top, int left, Scratch s)
    {
        int half = _half, nx = _nx;
        // rows outside top .. top + rows - 1 are zero (the others are written below)
        s.GridRe[..(top * half)].Clear(); s.GridIm[..(top * half)].Clear();
        s.GridRe[((top + rows) * half)..].Clear(); s.GridIm[((top + rows) * half)..].Clear();
        var re = s.LineRe[..nx]; var im = s.LineIm[..nx];
        for (int r = 0; r < rows; r += 2)
        {
            re.Clear(); im.Clear();
            plane.Slice(r * cols, cols).CopyTo(re[left..]);
            bool pair = r + 1 < rows;
            if (pair) plane.Slice((r + 1) * cols, cols).CopyTo(im[left..]);
            int y = top + r;
            var bRe = pair ? s.GridRe.Slice((y + 1) * half, half) : s.Spare[..half];
            var bIm = pair ? s.GridIm.Slice((y + 1) * half, half) : s.Spare[half..];
            _rowFft.RealPair(re, im, s.GridRe.Slice(y * half, half), s.GridIm.Slice(y * half, half), bRe, bIm);
        }
        // columns, in place (only rows top .. top + rows - 1 are non-zero)
        ref var gridRe = ref MemoryMarshal.GetReference(s.GridRe);
        ref var gridIm = ref MemoryMarshal.GetReference(s.GridIm);
        for (int k = 0; k < half; k++)
            _columnFft.Transform(ref Unsafe.Add(ref gridRe, k), ref Unsafe.Add(ref gridIm, k), half, inverse: false);
    }

    /// <summary>The rows x cols real plane at (top, left) of the inverse transform (unscaled: Ny Nx
    /// times the signal) of the half spectrum in the scratch's grid (which it overwrites).</summary>
    private void Inverse2d(Span<Vector<T>> plane, int rows, int cols, int top, int left, Scratch s)
    {
        int half = _half, nx = _nx;
        ref var gridRe = ref MemoryMarshal.GetReference(s.GridRe);
        ref var gridIm = ref MemoryMarshal.GetReference(s.GridIm);
        for (int k = 0; k < half; k++)
            _columnFft.Transform(ref Unsafe.Add(ref gridRe, k), ref Unsafe.Add(ref gridIm, k), half, inverse: true);
        var re = s.LineRe[..nx]; var im = s.LineIm[..nx];
        for (int r = 0; r < rows; r += 2)
        {
            int y = top + r, y2 = r + 1 < rows ? y + 1 : y;
            _rowFft.InverseRealPair(s.GridRe.Slice(y * half, half), s.GridIm.Slice(y * half, half),
                s.GridRe.Slice(y2 * half, half), s.GridIm.Slice(y2 * half, half), re, im);
            re.Slice(left, cols).CopyTo(plane[(r * cols)..]);
            if (r + 1 < rows) im.Slice(left, cols).CopyTo(plane[((r + 1) * cols)..]);
        }
    }
}
