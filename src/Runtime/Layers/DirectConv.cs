using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using CnnDsl.Graph;

namespace CnnDsl.Runtime.Layers;

/// <summary>
/// A convolution with few values per window (K = KH KW C: a first layer on 1-3 channels, LeNet's second on 6) and up to
/// 32 filters (ColumnPlan decides), computed straight from the input, without a column matrix:
/// im2col would write K values per output pixel
/// to feed a GEMM whose N (filters) and K are too small for MKL to run near its speed (LeNet's
/// first layer, K = 25 and N = 6, ran at 9-21 GFLOP/s). Output pixels are taken a few at a time,
/// filters a vector of W lanes at a time: Y[p, f..f+W] += X[base(p) + offset(k)] W[k, f..f+W] over
/// the K window cells, the accumulators kept in registers; base(p) is the pixel's window corner in
/// a zero-padded copy of the input (the input itself when there is no padding) and offset(k) the
/// cell's place from it, so any stride and dilation run the same way.
/// Two or three vectors of filters (9-24 at 8 lanes: LeNet's second layer's 16) take kernels that
/// read each input value once for two groups.
/// Backward: dW[k, f] = sum over p of X[base(p) + offset(k)] dY[p, f] (register-blocked the same
/// way); dX[base(p) + offset(k)] += dY[p, :] . W[k, :], as im2col's dcol = dY W^T and col2im but
/// four pixels at a time: their column gradients in vectors of cells from the transposed weights,
/// then added to the input a run of consecutive places (a window row) at a time.
/// The buffer (one array, `Elements` values) holds the padded input, then the weights packed to
/// whole vectors per cell, the bias likewise, the weight gradient's accumulators (one set
/// per unit of images, up to MaxUnits units, fixed by the batch size, added in unit order
/// after, so that the result does not depend on how many threads ran the units), and the
/// transposed weights.
/// Images (and units) are split over the layer threads (BatchParallel).
/// </summary>
public sealed class DirectConv<T> : IBatchWork where T : unmanaged, INumber<T>
{
    private readonly int _h, _w, _c, _f, _oh, _ow, _hp, _wp, _k, _groups, _lanes;
    private readonly Window _window;
    private readonly int[] _offsets;
    // Runs of cells whose input places are consecutive (a window row's KW C values at dilation 1):
    // the input gradient adds a pixel's column gradients to the input a run at a time.
    private readonly int[] _runCell, _runLength;

    /// <summary>The most units the weight gradient's sum is split into.</summary>
    public const int MaxUnits = 8;
    private static int Units(int batch) => Math.Min(batch, MaxUnits);

    // The job IBatchWork.Run does, and its arrays (set before BatchParallel.For).
    private enum Job { Forward, WeightGradient, InputGradient }
    private Job _job;
    private T[] _x = [], _y = [], _buffer = [], _dx = [];
    private int _batch, _block;
    // forward: whether the stores apply a ReLU (the convolution's activation, in the same pass)
    private bool _relu;

    public DirectConv(int height, int width, int channels, int filters, int outHeight, int outWidth, Window window)
    {
        (_h, _w, _c, _f, _oh, _ow, _window) = (height, width, channels, filters, outHeight, outWidth, window);
        _hp = height + window.Padding.Top + window.Padding.Bottom;
        _wp = width + window.Padding.Left + window.Padding.Right;
        _k = window.KernelH * window.KernelW * channels;
        _lanes = Vector<T>.Count;
        _groups = (filters + _lanes - 1) / _lanes;
        _offsets = new int[_k];
        for (int ky = 0, i = 0; ky < window.KernelH; ky++)
            for (int kx = 0; kx < window.KernelW; kx++)
                for (int ch = 0; ch < channels; ch++)
                    _offsets[i++] = (ky * window.DilationH * _wp + kx * window.DilationW) * channels + ch;
        var starts = new List<int>();
        for (int i = 0; i < _k; i++)
            if (i == 0 || _offsets[i] != _offsets[i - 1] + 1) starts.Add(i);
        _runCell = [.. starts];
        _runLength = new int[_runCell.Length];
        for (int r = 0; r < _runCell.Length; r++) _runLength[r] = (r + 1 < _runCell.Length ? _runCell[r + 1] : _k) - _runCell[r];
    }

    /// <summary>Whether the input is copied into a zero-padded buffer (which backward's input gradient then overwrites).</summary>
    public bool Padded => _hp != _h || _wp != _w;
    private long PaddedElements(int batch) => Padded ? (long)batch * _hp * _wp * _c : 0;
    // A cell's packed weights: F rounded up to 16, a whole number of vectors for float and double
    // at any vector width up to 512 bits, so that the buffer's size does not depend on T.
    private int Row => (_f + 15) / 16 * 16;

    // The transposed weights' row (one filter's K cells): K rounded up to 48, whole blocks of three
    // vectors at any vector width up to 512 bits.
    private int CellRow => (_k + 47) / 48 * 48;

    /// <summary>Values of the layer's buffer for a batch.</summary>
    public long Elements(int batch) => PaddedElements(batch) + (long)(_k + 1 + Units(batch) * _k) * Row + (long)_f * CellRow;

    private Span<T> PaddedPart(Span<T> buffer, int batch) => buffer[..(int)PaddedElements(batch)];
    private Span<T> PackedWeights(Span<T> buffer, int batch) => buffer.Slice((int)PaddedElements(batch), _k * Row);
    private Span<T> PackedBias(Span<T> buffer, int batch) => buffer.Slice((int)PaddedElements(batch) + _k * Row, Row);
    private Span<T> GradientAccumulators(Span<T> buffer, int batch, int unit) =>
        buffer.Slice((int)PaddedElements(batch) + _k * Row + Row + unit * _k * Row, _k * Row);
    private Span<T> TransposedWeights(Span<T> buffer, int batch) =>
        buffer.Slice((int)(PaddedElements(batch) + (long)(_k + 1 + Units(batch) * _k) * Row), _f * CellRow);
    private int PaddedImage => _hp * _wp * _c;
    private int InputImage => _h * _w * _c;

    /// <summary>Y = conv(X, W) + b (bias may be null), for the whole batch; then max(Y, 0) when `relu`
    /// (in the same pass, on the layer threads: as a pass of its own it ran on one thread).</summary>
    public void Forward(T[] input, T[] weights, T[]? bias, T[] buffer, T[] output, int batch, bool relu = false)
    {
        _relu = relu;
        var packed = PackedWeights(buffer, batch);
        var packedBias = PackedBias(buffer, batch);
        packed.Clear(); packedBias.Clear();
        for (int i = 0; i < _k; i++) weights.AsSpan(i * _f, _f).CopyTo(packed.Slice(i * Row));
        bias.AsSpan().CopyTo(packedBias);
        (_job, _x, _y, _buffer, _batch, _block) = (Job.Forward, input, output, buffer, batch, _groups >= 4 ? 3 : _groups >= 2 ? 6 : 8);
        BatchParallel.For(batch, (long)batch * _oh * _ow * _k, this);
    }

    void IBatchWork.Run(int first, int count)
    {
        switch (_job)
        {
            case Job.Forward: ForwardImages(first, count); break;
            case Job.WeightGradient: WeightGradientUnits(first, count); break;
            default: InputGradientImages(first, count); break;
        }
    }

    private void ForwardImages(int first, int count)
    {
        ReadOnlySpan<T> x = _x;
        Span<T> output = _y;
        var packed = PackedWeights(_buffer, _batch);
        var packedBias = PackedBias(_buffer, _batch);
        if (Padded)
        {
            var p = PaddedPart(_buffer, _batch);
            Pad(_x.AsSpan(first * InputImage, count * InputImage), p.Slice(first * PaddedImage, count * PaddedImage), count);
            x = p;
        }
        // this job's part of the output: a whole-vector store may not pass its end (another thread's images follow)
        int strideC = _window.StrideW * _c, block = _block, end = (first + count) * _oh * _ow * _f;
        for (int n = first; n < first + count; n++)
            for (int oy = 0; oy < _oh; oy++)
            {
                int rowBase = (n * _hp + oy * _window.StrideH) * _wp * _c, outRow = (n * _oh + oy) * _ow;
                for (int ox = 0; ox < _ow; ox += block)
                {
                    int g = 0;
                    for (; g + 4 <= _groups; g += 4) Forward4x3(x, packed, packedBias, output, rowBase, strideC, outRow, ox, g);
                    if (block == 6) for (; g + 2 <= _groups; g += 2) Forward2x6(x, packed, packedBias, output, rowBase, strideC, outRow, ox, g);
                    for (; g < _groups; g++) Forward1x8(x, packed, packedBias, output, rowBase, strideC, outRow, ox, g, block, end);
                }
            }
    }

    /// <summary>Pixels ox .. ox+2 of an output row (the last repeated past the row's end), filter groups g .. g+3.</summary>
    private void Forward4x3(ReadOnlySpan<T> x, ReadOnlySpan<T> packed, ReadOnlySpan<T> bias, Span<T> y, int rowBase, int strideC, int outRow, int ox, int g)
    {
        int w = _lanes, row = Row, last = _ow - 1;
        int b0 = rowBase + ox * strideC, b1 = rowBase + Math.Min(ox + 1, last) * strideC, b2 = rowBase + Math.Min(ox + 2, last) * strideC;
        ref T x0 = ref MemoryMarshal.GetReference(x);
        ref T wr = ref Unsafe.Add(ref MemoryMarshal.GetReference(packed), g * w);
        ref T br = ref Unsafe.Add(ref MemoryMarshal.GetReference(bias), g * w);
        Vector<T> c00 = Vector.LoadUnsafe(ref br), c01 = Vector.LoadUnsafe(ref br, (nuint)w), c02 = Vector.LoadUnsafe(ref br, (nuint)(2 * w)), c03 = Vector.LoadUnsafe(ref br, (nuint)(3 * w));
        Vector<T> c10 = c00, c11 = c01, c12 = c02, c13 = c03, c20 = c00, c21 = c01, c22 = c02, c23 = c03;
        for (int k = 0; k < _k; k++)
        {
            int o = _offsets[k];
            ref T wk = ref Unsafe.Add(ref wr, k * row);
            var w0 = Vector.LoadUnsafe(ref wk); var w1 = Vector.LoadUnsafe(ref wk, (nuint)w);
            var w2 = Vector.LoadUnsafe(ref wk, (nuint)(2 * w)); var w3 = Vector.LoadUnsafe(ref wk, (nuint)(3 * w));
            var a = new Vector<T>(Unsafe.Add(ref x0, b0 + o));
            c00 = MultiplyAdd(a, w0, c00); c01 = MultiplyAdd(a, w1, c01); c02 = MultiplyAdd(a, w2, c02); c03 = MultiplyAdd(a, w3, c03);
            a = new Vector<T>(Unsafe.Add(ref x0, b1 + o));
            c10 = MultiplyAdd(a, w0, c10); c11 = MultiplyAdd(a, w1, c11); c12 = MultiplyAdd(a, w2, c12); c13 = MultiplyAdd(a, w3, c13);
            a = new Vector<T>(Unsafe.Add(ref x0, b2 + o));
            c20 = MultiplyAdd(a, w0, c20); c21 = MultiplyAdd(a, w1, c21); c22 = MultiplyAdd(a, w2, c22); c23 = MultiplyAdd(a, w3, c23);
        }
        int count = Math.Min(3, _ow - ox);
        Store(y, (outRow + ox) * _f, g, 4, c00, c01, c02, c03);
        if (count > 1) Store(y, (outRow + ox + 1) * _f, g, 4, c10, c11, c12, c13);
        if (count > 2) Store(y, (outRow + ox + 2) * _f, g, 4, c20, c21, c22, c23);
    }

    /// <summary>Pixels ox .. ox+5 of an output row (the last repeated past the row's end), filter
    /// groups g and g+1: two or three groups (9-24 filters at 8 lanes, LeNet's second layer's 16)
    /// load each input value once for both groups, where the one-group kernel reads it per group.</summary>
    private void Forward2x6(ReadOnlySpan<T> x, ReadOnlySpan<T> packed, ReadOnlySpan<T> bias, Span<T> y, int rowBase, int strideC, int outRow, int ox, int g)
    {
        int w = _lanes, row = Row, last = _ow - 1;
        int b0 = rowBase + ox * strideC, b1 = rowBase + Math.Min(ox + 1, last) * strideC, b2 = rowBase + Math.Min(ox + 2, last) * strideC,
            b3 = rowBase + Math.Min(ox + 3, last) * strideC, b4 = rowBase + Math.Min(ox + 4, last) * strideC, b5 = rowBase + Math.Min(ox + 5, last) * strideC;
        ref T x0 = ref MemoryMarshal.GetReference(x);
        ref T wr = ref Unsafe.Add(ref MemoryMarshal.GetReference(packed), g * w);
        ref T br = ref Unsafe.Add(ref MemoryMarshal.GetReference(bias), g * w);
        Vector<T> c00 = Vector.LoadUnsafe(ref br), c01 = Vector.LoadUnsafe(ref br, (nuint)w);
        Vector<T> c10 = c00, c11 = c01, c20 = c00, c21 = c01, c30 = c00, c31 = c01, c40 = c00, c41 = c01, c50 = c00, c51 = c01;
        for (int k = 0; k < _k; k++)
        {
            int o = _offsets[k];
            ref T wk = ref Unsafe.Add(ref wr, k * row);
            var w0 = Vector.LoadUnsafe(ref wk); var w1 = Vector.LoadUnsafe(ref wk, (nuint)w);
            var a = new Vector<T>(Unsafe.Add(ref x0, b0 + o)); c00 = MultiplyAdd(a, w0, c00); c01 = MultiplyAdd(a, w1, c01);
            a = new Vector<T>(Unsafe.Add(ref x0, b1 + o)); c10 = MultiplyAdd(a, w0, c10); c11 = MultiplyAdd(a, w1, c11);
            a = new Vector<T>(Unsafe.Add(ref x0, b2 + o)); c20 = MultiplyAdd(a, w0, c20); c21 = MultiplyAdd(a, w1, c21);
            a = new Vector<T>(Unsafe.Add(ref x0, b3 + o)); c30 = MultiplyAdd(a, w0, c30); c31 = MultiplyAdd(a, w1, c31);
            a = new Vector<T>(Unsafe.Add(ref x0, b4 + o)); c40 = MultiplyAdd(a, w0, c40); c41 = MultiplyAdd(a, w1, c41);
            a = new Vector<T>(Unsafe.Add(ref x0, b5 + o)); c50 = MultiplyAdd(a, w0, c50); c51 = MultiplyAdd(a, w1, c51);
        }
        int count = Math.Min(6, _ow - ox), at = (outRow + ox) * _f;
        Store(y, at, g, 2, c00, c01);
        if (count > 1) Store(y, at + _f, g, 2, c10, c11);
        if (count > 2) Store(y, at + 2 * _f, g, 2, c20, c21);
        if (count > 3) Store(y, at + 3 * _f, g, 2, c30, c31);
        if (count > 4) Store(y, at + 4 * _f, g, 2, c40, c41);
        if (count > 5) Store(y, at + 5 * _f, g, 2, c50, c51);
    }

    /// <summary>Pixels ox .. ox+7 of an output row (the last repeated past the row's end), filter group g.</summary>
    private void Forward1x8(ReadOnlySpan<T> x, ReadOnlySpan<T> packed, ReadOnlySpan<T> bias, Span<T> y, int rowBase, int strideC, int outRow, int ox, int g, int block, int end)
    {
        int w = _lanes, row = Row, last = _ow - 1;
        int b0 = rowBase + ox * strideC, b1 = rowBase + Math.Min(ox + 1, last) * strideC, b2 = rowBase + Math.Min(ox + 2, last) * strideC,
            b3 = rowBase + Math.Min(ox + 3, last) * strideC, b4 = rowBase + Math.Min(ox + 4, last) * strideC, b5 = rowBase + Math.Min(ox + 5, last) * strideC,
            b6 = rowBase + Math.Min(ox + 6, last) * strideC, b7 = rowBase + Math.Min(ox + 7, last) * strideC;
        ref T x0 = ref MemoryMarshal.GetReference(x);
        ref T wr = ref Unsafe.Add(ref MemoryMarshal.GetReference(packed), g * w);
        var c0 = Vector.LoadUnsafe(ref Unsafe.Add(ref MemoryMarshal.GetReference(bias), g * w));
        Vector<T> c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
        for (int k = 0; k < _k; k++)
        {
            int o = _offsets[k];
            var wk = Vector.LoadUnsafe(ref wr, (nuint)(k * row));
            c0 = MultiplyAdd(new Vector<T>(Unsafe.Add(ref x0, b0 + o)), wk, c0);
            c1 = MultiplyAdd(new Vector<T>(Unsafe.Add(ref x0, b1 + o)), wk, c1);
            c2 = MultiplyAdd(new Vector<T>(Unsafe.Add(ref x0, b2 + o)), wk, c2);
            c3 = MultiplyAdd(new Vector<T>(Unsafe.Add(ref x0, b3 + o)), wk, c3);
            c4 = MultiplyAdd(new Vector<T>(Unsafe.Add(ref x0, b4 + o)), wk, c4);
            c5 = MultiplyAdd(new Vector<T>(Unsafe.Add(ref x0, b5 + o)), wk, c5);
            c6 = MultiplyAdd(new Vector<T>(Unsafe.Add(ref x0, b6 + o)), wk, c6);
            c7 = MultiplyAdd(new Vector<T>(Unsafe.Add(ref x0, b7 + o)), wk, c7);
        }
        // Only the first `block` pixels are this block's (a 4x3 block may have taken the others' groups).
        int count = Math.Min(block, _ow - ox), at = (outRow + ox) * _f;
        StoreGroup(y, at, g, c0, end); if (count > 1) StoreGroup(y, at + _f, g, c1, end);
        if (count > 2) StoreGroup(y, at + 2 * _f, g, c2, end); if (count > 3) StoreGroup(y, at + 3 * _f, g, c3, end);
        if (count > 4) StoreGroup(y, at + 4 * _f, g, c4, end); if (count > 5) StoreGroup(y, at + 5 * _f, g, c5, end);
        if (count > 6) StoreGroup(y, at + 6 * _f, g, c6, end); if (count > 7) StoreGroup(y, at + 7 * _f, g, c7, end);
    }

    /// <summary>A pixel's filter groups g .. g+count-1 into y[at + g W ..], only the lanes below F.</summary>
    private void Store(Span<T> y, int at, int g, int count, Vector<T> v0, Vector<T> v1 = default, Vector<T> v2 = default, Vector<T> v3 = default)
    {
        StoreGroup(y, at, g, v0, y.Length);
        if (count > 1) StoreGroup(y, at, g + 1, v1, y.Length);
        if (count > 2) StoreGroup(y, at, g + 2, v2, y.Length);
        if (count > 3) StoreGroup(y, at, g + 3, v3, y.Length);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void StoreGroup(Span<T> y, int at, int g, Vector<T> v, int end)
    {
        int w = _lanes, f0 = g * w;
        if (_relu) v = Vector.Max(v, Vector<T>.Zero);
        // With a single group (F < W) a whole vector may be stored: its lanes past F fall on the
        // next pixel's values, which are stored later (pixels go in increasing order), up to `end`.
        if (f0 + w <= _f || (_groups == 1 && at + w <= end))
            Vector.StoreUnsafe(v, ref MemoryMarshal.GetReference(y), (nuint)(at + f0));
        else
            for (int j = 0; f0 + j < _f; j++) y[at + f0 + j] = v[j];
    }

    /// <summary>dW = sum over pixels of X[base(p) + offset(k)] dY[p, :] (when wanted), and
    /// dX += the scattered dY W^T (when wanted). Forward's padded copy of the input is read unless
    /// `padFirst` says to rebuild it (an earlier backward pass overwrote it with the input's gradient).</summary>
    public void Backward(T[] input, T[] weights, T[] outputGradient, T[] buffer, T[]? weightGradient,
        bool wantWeights, T[] inputGradient, bool wantInput, int batch, bool padFirst)
    {
        if (Padded && wantWeights && padFirst) Pad(input, PaddedPart(buffer, batch), batch);
        (_x, _y, _buffer, _batch, _dx) = (input, outputGradient, buffer, batch, inputGradient);
        if (wantWeights)
        {
            _job = Job.WeightGradient;
            int units = Units(batch);
            BatchParallel.For(units, (long)batch * _oh * _ow * _k, this);
            // the units' sums in unit order
            var sum = GradientAccumulators(buffer, batch, 0);
            for (int u = 1; u < units; u++) Vectorised.Add(sum, GradientAccumulators(buffer, batch, u));
            for (int i = 0; i < _k; i++) sum.Slice(i * Row, _f).CopyTo(weightGradient.AsSpan(i * _f, _f));
        }
        if (!wantInput) return;
        var transposed = TransposedWeights(buffer, batch);
        transposed.Clear();
        for (int k = 0; k < _k; k++)
            for (int f = 0; f < _f; f++) transposed[f * CellRow + k] = weights[k * _f + f];
        _job = Job.InputGradient;
        BatchParallel.For(batch, (long)batch * _oh * _ow * _k, this);
    }

    /// <summary>Units first .. first + count - 1: each unit's images' weight gradient into its own accumulators.</summary>
    private void WeightGradientUnits(int first, int count)
    {
        ReadOnlySpan<T> x = Padded ? PaddedPart(_buffer, _batch) : _x;
        ReadOnlySpan<T> outputGradient = _y;
        int strideC = _window.StrideW * _c, units = Units(_batch);
        for (int u = first; u < first + count; u++)
        {
            var accumulators = GradientAccumulators(_buffer, _batch, u);
            accumulators.Clear();
            int from = (int)((long)_batch * u / units), to = (int)((long)_batch * (u + 1) / units);
            // groups the 4x3 kernel leaves, two at a time where there are two, over a whole image per call
            int pairFrom = _groups / 4 * 4, pairTo = pairFrom + (_groups - pairFrom) / 2 * 2;
            for (int n = from; n < to; n++)
                for (int g = pairFrom; g < pairTo; g += 2)
                    for (int k = 0; k < _k; k += 6)
                        WeightGradientImage2x6(x, outputGradient, accumulators, n, strideC, g, k);
            for (int n = from; n < to; n++)
                for (int oy = 0; oy < _oh; oy++)
                {
                    int rowBase = (n * _hp + oy * _window.StrideH) * _wp * _c, outRow = (n * _oh + oy) * _ow;
                    int g = 0;
                    for (; g + 4 <= _groups; g += 4)
                        for (int k = 0; k < _k; k += 3)
                            WeightGradientRow4x3(x, outputGradient, accumulators, rowBase, strideC, outRow * _f, g, k);
                    for (g = Math.Max(g, pairTo); g < _groups; g++)
                        for (int k = 0; k < _k; k += 8)
                            WeightGradientRow(x, outputGradient, accumulators, rowBase, strideC, outRow * _f, g, k);
                }
        }
    }

    /// <summary>Images first .. first + count - 1: dX += the scattered dY W^T (through the padded
    /// buffer, whose interior is then added to the input's gradient, when there is padding).</summary>
    private void InputGradientImages(int first, int count)
    {
        ReadOnlySpan<T> outputGradient = _y;
        int strideC = _window.StrideW * _c;
        Span<T> dx = Padded ? PaddedPart(_buffer, _batch) : _dx;
        if (Padded) dx.Slice(first * PaddedImage, count * PaddedImage).Clear();
        // four pixels' column gradients dcol[p, k] = dY[p, :] . W[k, :] (vectors of cells), then
        // added to the input a run of consecutive places at a time: im2col's dcol = dY W^T and
        // col2im, four pixels at a time in L1 instead of the whole batch's column matrix. Their
        // 4 CellRow values are on the stack (K up to 2,016), from the pool past that (only with
        // CNNDSL_DIRECT_MAX_K raised: the plan's limit is 160).
        ReadOnlySpan<T> transposed = TransposedWeights(_buffer, _batch);
        T[]? pooled = 4 * CellRow > StackColumns ? ArrayPool<T>.Shared.Rent(4 * CellRow) : null;
        Span<T> columns = pooled != null ? pooled : stackalloc T[4 * CellRow];
        for (int n = first; n < first + count; n++)
            for (int oy = 0; oy < _oh; oy++)
            {
                int rowBase = (n * _hp + oy * _window.StrideH) * _wp * _c, outRow = (n * _oh + oy) * _ow;
                for (int ox = 0; ox < _ow; ox += 4)
                {
                    int pixels = Math.Min(4, _ow - ox);
                    ColumnGradients(outputGradient, transposed, columns, (outRow + ox) * _f, pixels);
                    for (int p = 0; p < pixels; p++)
                    {
                        int b = rowBase + (ox + p) * strideC;
                        var column = columns.Slice(p * CellRow, CellRow);
                        for (int r = 0; r < _runCell.Length; r++)
                            Vectorised.Add(dx.Slice(b + _offsets[_runCell[r]], _runLength[r]), column.Slice(_runCell[r], _runLength[r]));
                    }
                }
            }
        if (pooled != null) ArrayPool<T>.Shared.Return(pooled);
        if (!Padded) return;
        // the interior of dP is the input's gradient
        new PaddedBatch(_h, _w, _c, _window.Padding).AddInterior<T>(dx.Slice(first * PaddedImage, count * PaddedImage),
            _dx.AsSpan(first * InputImage, count * InputImage), count);
    }

    // Values of the input gradient's column staging kept on the stack (32 KB of float).
    private const int StackColumns = 8192;

    /// <summary>columns[p CellRow + k] = sum over f of dY[at + p F + f] W^T[f, k] for pixels p below
    /// `pixels` (up to 4), cells three vectors at a time (12 accumulators; the pixels past `pixels`
    /// repeat the last one and are not stored).</summary>
    private void ColumnGradients(ReadOnlySpan<T> dy, ReadOnlySpan<T> transposed, Span<T> columns, int at, int pixels)
    {
        int w = _lanes, cellRow = CellRow, f = _f, last = pixels - 1;
        int a0 = at, a1 = at + Math.Min(1, last) * f, a2 = at + Math.Min(2, last) * f, a3 = at + Math.Min(3, last) * f;
        ref T d = ref MemoryMarshal.GetReference(dy);
        ref T t0 = ref MemoryMarshal.GetReference(transposed);
        ref T c = ref MemoryMarshal.GetReference(columns);
        // blocks of three vectors up to the last cell (CellRow may hold a block more)
        for (int kv = 0, end = (_k + 3 * w - 1) / (3 * w) * 3 * w; kv < end; kv += 3 * w)
        {
            Vector<T> c00 = default, c01 = default, c02 = default, c10 = default, c11 = default, c12 = default,
                      c20 = default, c21 = default, c22 = default, c30 = default, c31 = default, c32 = default;
            for (int j = 0; j < f; j++)
            {
                ref T t = ref Unsafe.Add(ref t0, j * cellRow + kv);
                var w0 = Vector.LoadUnsafe(ref t); var w1 = Vector.LoadUnsafe(ref t, (nuint)w); var w2 = Vector.LoadUnsafe(ref t, (nuint)(2 * w));
                var e = new Vector<T>(Unsafe.Add(ref d, a0 + j)); c00 = MultiplyAdd(e, w0, c00); c01 = MultiplyAdd(e, w1, c01); c02 = MultiplyAdd(e, w2, c02);
                e = new Vector<T>(Unsafe.Add(ref d, a1 + j)); c10 = MultiplyAdd(e, w0, c10); c11 = MultiplyAdd(e, w1, c11); c12 = MultiplyAdd(e, w2, c12);
                e = new Vector<T>(Unsafe.Add(ref d, a2 + j)); c20 = MultiplyAdd(e, w0, c20); c21 = MultiplyAdd(e, w1, c21); c22 = MultiplyAdd(e, w2, c22);
                e = new Vector<T>(Unsafe.Add(ref d, a3 + j)); c30 = MultiplyAdd(e, w0, c30); c31 = MultiplyAdd(e, w1, c31); c32 = MultiplyAdd(e, w2, c32);
            }
            ref T r = ref Unsafe.Add(ref c, kv);
            Vector.StoreUnsafe(c00, ref r); Vector.StoreUnsafe(c01, ref r, (nuint)w); Vector.StoreUnsafe(c02, ref r, (nuint)(2 * w));
            if (pixels > 1) { ref T r1 = ref Unsafe.Add(ref r, cellRow); Vector.StoreUnsafe(c10, ref r1); Vector.StoreUnsafe(c11, ref r1, (nuint)w); Vector.StoreUnsafe(c12, ref r1, (nuint)(2 * w)); }
            if (pixels > 2) { ref T r2 = ref Unsafe.Add(ref r, 2 * cellRow); Vector.StoreUnsafe(c20, ref r2); Vector.StoreUnsafe(c21, ref r2, (nuint)w); Vector.StoreUnsafe(c22, ref r2, (nuint)(2 * w)); }
            if (pixels > 3) { ref T r3 = ref Unsafe.Add(ref r, 3 * cellRow); Vector.StoreUnsafe(c30, ref r3); Vector.StoreUnsafe(c31, ref r3, (nuint)w); Vector.StoreUnsafe(c32, ref r3, (nuint)(2 * w)); }
        }
    }

    /// <summary>Adds X[base(p) + offset(k)] dY[p, group g] over an output row's pixels to the
    /// accumulators of cells k .. k+7 (fewer at the end: the missing ones repeat the last cell
    /// and are not stored), held in registers over the row.</summary>
    private void WeightGradientRow(ReadOnlySpan<T> x, ReadOnlySpan<T> dy, Span<T> accumulators, int rowBase, int strideC, int at, int g, int k)
    {
        int w = _lanes, row = Row, f0 = g * w, last = _k - 1, count = Math.Min(8, _k - k);
        int o0 = _offsets[k], o1 = _offsets[Math.Min(k + 1, last)], o2 = _offsets[Math.Min(k + 2, last)], o3 = _offsets[Math.Min(k + 3, last)],
            o4 = _offsets[Math.Min(k + 4, last)], o5 = _offsets[Math.Min(k + 5, last)], o6 = _offsets[Math.Min(k + 6, last)], o7 = _offsets[Math.Min(k + 7, last)];
        ref T x0 = ref MemoryMarshal.GetReference(x);
        ref T d0 = ref MemoryMarshal.GetReference(dy);
        Vector<T> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
        // a whole vector of dY is read where it stays inside dY (lanes past F are discarded); the
        // few pixels at the very end take the scalar loop below (no branch in this one, which
        // keeps the accumulators in registers)
        int room = dy.Length - at - f0 - w, whole = room < 0 ? 0 : Math.Min(_ow, room / _f + 1);
        for (int ox = 0; ox < whole; ox++)
        {
            int b = rowBase + ox * strideC;
            var d = Vector.LoadUnsafe(ref d0, (nuint)(at + ox * _f + f0));
            c0 = MultiplyAdd(new Vector<T>(Unsafe.Add(ref x0, b + o0)), d, c0);
            c1 = MultiplyAdd(new Vector<T>(Unsafe.Add(ref x0, b + o1)), d, c1);
            c2 = MultiplyAdd(new Vector<T>(Unsafe.Add(ref x0, b + o2)), d, c2);
            c3 = MultiplyAdd(new Vector<T>(Unsafe.Add(ref x0, b + o3)), d, c3);
            c4 = MultiplyAdd(new Vector<T>(Unsafe.Add(ref x0, b + o4)), d, c4);
            c5 = MultiplyAdd(new Vector<T>(Unsafe.Add(ref x0, b + o5)), d, c5);
            c6 = MultiplyAdd(new Vector<T>(Unsafe.Add(ref x0, b + o6)), d, c6);
            c7 = MultiplyAdd(new Vector<T>(Unsafe.Add(ref x0, b + o7)), d, c7);
        }
        ref T r = ref Unsafe.Add(ref MemoryMarshal.GetReference(accumulators), k * row + f0);
        Accumulate(ref r, c0);
        if (count > 1) Accumulate(ref Unsafe.Add(ref r, row), c1);
        if (count > 2) Accumulate(ref Unsafe.Add(ref r, 2 * row), c2);
        if (count > 3) Accumulate(ref Unsafe.Add(ref r, 3 * row), c3);
        if (count > 4) Accumulate(ref Unsafe.Add(ref r, 4 * row), c4);
        if (count > 5) Accumulate(ref Unsafe.Add(ref r, 5 * row), c5);
        if (count > 6) Accumulate(ref Unsafe.Add(ref r, 6 * row), c6);
        if (count > 7) Accumulate(ref Unsafe.Add(ref r, 7 * row), c7);
        for (int ox = whole; ox < _ow; ox++)
        {
            int b = rowBase + ox * strideC, p = at + ox * _f + f0;
            for (int j = 0; j < count; j++)
            {
                var a = x[b + _offsets[k + j]];
                for (int l = 0; l < w && f0 + l < _f; l++) accumulators[(k + j) * row + f0 + l] += a * dy[p + l];
            }
        }
    }

    /// <summary>As WeightGradientRow for filter groups g .. g+3 and cells k .. k+2 (12 accumulators:
    /// dY's four vectors are loaded once per pixel for three cells, where the one-group kernel
    /// loads one vector and reads the input once per group).</summary>
    private void WeightGradientRow4x3(ReadOnlySpan<T> x, ReadOnlySpan<T> dy, Span<T> accumulators, int rowBase, int strideC, int at, int g, int k)
    {
        int w = _lanes, row = Row, f0 = g * w, last = _k - 1, count = Math.Min(3, _k - k);
        int o0 = _offsets[k], o1 = _offsets[Math.Min(k + 1, last)], o2 = _offsets[Math.Min(k + 2, last)];
        ref T x0 = ref MemoryMarshal.GetReference(x);
        ref T d0 = ref MemoryMarshal.GetReference(dy);
        Vector<T> c00 = default, c01 = default, c02 = default, c03 = default, c10 = default, c11 = default, c12 = default, c13 = default,
                  c20 = default, c21 = default, c22 = default, c23 = default;
        // whole vectors of dY where they stay inside dY (lanes past F are discarded); the last
        // pixels take the scalar loop below
        int room = dy.Length - at - f0 - 4 * w, whole = room < 0 ? 0 : Math.Min(_ow, room / _f + 1);
        for (int ox = 0; ox < whole; ox++)
        {
            int b = rowBase + ox * strideC;
            nuint p = (nuint)(at + ox * _f + f0);
            var d0v = Vector.LoadUnsafe(ref d0, p); var d1v = Vector.LoadUnsafe(ref d0, p + (nuint)w);
            var d2v = Vector.LoadUnsafe(ref d0, p + (nuint)(2 * w)); var d3v = Vector.LoadUnsafe(ref d0, p + (nuint)(3 * w));
            var a = new Vector<T>(Unsafe.Add(ref x0, b + o0));
            c00 = MultiplyAdd(a, d0v, c00); c01 = MultiplyAdd(a, d1v, c01); c02 = MultiplyAdd(a, d2v, c02); c03 = MultiplyAdd(a, d3v, c03);
            a = new Vector<T>(Unsafe.Add(ref x0, b + o1));
            c10 = MultiplyAdd(a, d0v, c10); c11 = MultiplyAdd(a, d1v, c11); c12 = MultiplyAdd(a, d2v, c12); c13 = MultiplyAdd(a, d3v, c13);
            a = new Vector<T>(Unsafe.Add(ref x0, b + o2));
            c20 = MultiplyAdd(a, d0v, c20); c21 = MultiplyAdd(a, d1v, c21); c22 = MultiplyAdd(a, d2v, c22); c23 = MultiplyAdd(a, d3v, c23);
        }
        ref T r = ref Unsafe.Add(ref MemoryMarshal.GetReference(accumulators), k * row + f0);
        Accumulate(ref r, c00); Accumulate(ref Unsafe.Add(ref r, w), c01); Accumulate(ref Unsafe.Add(ref r, 2 * w), c02); Accumulate(ref Unsafe.Add(ref r, 3 * w), c03);
        if (count > 1)
        {
            ref T r1 = ref Unsafe.Add(ref r, row);
            Accumulate(ref r1, c10); Accumulate(ref Unsafe.Add(ref r1, w), c11); Accumulate(ref Unsafe.Add(ref r1, 2 * w), c12); Accumulate(ref Unsafe.Add(ref r1, 3 * w), c13);
        }
        if (count > 2)
        {
            ref T r2 = ref Unsafe.Add(ref r, 2 * row);
            Accumulate(ref r2, c20); Accumulate(ref Unsafe.Add(ref r2, w), c21); Accumulate(ref Unsafe.Add(ref r2, 2 * w), c22); Accumulate(ref Unsafe.Add(ref r2, 3 * w), c23);
        }
        for (int ox = whole; ox < _ow; ox++)
        {
            int b = rowBase + ox * strideC, p = at + ox * _f + f0;
            for (int j = 0; j < count; j++)
            {
                var a = x[b + _offsets[k + j]];
                for (int l = 0; l < 4 * w && f0 + l < _f; l++) accumulators[(k + j) * row + f0 + l] += a * dy[p + l];
            }
        }
    }

    /// <summary>As WeightGradientRow for filter groups g and g+1 and cells k .. k+5 (12 accumulators:
    /// each input value is read once for both groups), over every output row of image n: the
    /// accumulators stay in registers for the whole image (LeNet's second layer has rows of 10 pixels).</summary>
    private void WeightGradientImage2x6(ReadOnlySpan<T> x, ReadOnlySpan<T> dy, Span<T> accumulators, int n, int strideC, int g, int k)
    {
        int w = _lanes, row = Row, f0 = g * w, last = _k - 1, count = Math.Min(6, _k - k);
        int o0 = _offsets[k], o1 = _offsets[Math.Min(k + 1, last)], o2 = _offsets[Math.Min(k + 2, last)],
            o3 = _offsets[Math.Min(k + 3, last)], o4 = _offsets[Math.Min(k + 4, last)], o5 = _offsets[Math.Min(k + 5, last)];
        ref T x0 = ref MemoryMarshal.GetReference(x);
        ref T d0 = ref MemoryMarshal.GetReference(dy);
        Vector<T> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
                  c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        // whole vectors of dY where they stay inside dY (lanes past F are discarded); the pixels
        // at the very end of dY take the scalar loop below
        int at0 = n * _oh * _ow * _f, room = dy.Length - at0 - f0 - 2 * w, whole = room < 0 ? 0 : Math.Min(_oh * _ow, room / _f + 1);
        for (int oy = 0, q = 0; oy < _oh; oy++)
        {
            int rowBase = (n * _hp + oy * _window.StrideH) * _wp * _c;
            for (int ox = 0; ox < _ow && q < whole; ox++, q++)
            {
                int b = rowBase + ox * strideC;
                nuint p = (nuint)(at0 + q * _f + f0);
                var e0 = Vector.LoadUnsafe(ref d0, p); var e1 = Vector.LoadUnsafe(ref d0, p + (nuint)w);
                var a = new Vector<T>(Unsafe.Add(ref x0, b + o0)); c00 = MultiplyAdd(a, e0, c00); c01 = MultiplyAdd(a, e1, c01);
                a = new Vector<T>(Unsafe.Add(ref x0, b + o1)); c10 = MultiplyAdd(a, e0, c10); c11 = MultiplyAdd(a, e1, c11);
                a = new Vector<T>(Unsafe.Add(ref x0, b + o2)); c20 = MultiplyAdd(a, e0, c20); c21 = MultiplyAdd(a, e1, c21);
                a = new Vector<T>(Unsafe.Add(ref x0, b + o3)); c30 = MultiplyAdd(a, e0, c30); c31 = MultiplyAdd(a, e1, c31);
                a = new Vector<T>(Unsafe.Add(ref x0, b + o4)); c40 = MultiplyAdd(a, e0, c40); c41 = MultiplyAdd(a, e1, c41);
                a = new Vector<T>(Unsafe.Add(ref x0, b + o5)); c50 = MultiplyAdd(a, e0, c50); c51 = MultiplyAdd(a, e1, c51);
            }
        }
        ref T r = ref Unsafe.Add(ref MemoryMarshal.GetReference(accumulators), k * row + f0);
        Accumulate(ref r, c00); Accumulate(ref Unsafe.Add(ref r, w), c01);
        if (count > 1) { ref T r1 = ref Unsafe.Add(ref r, row); Accumulate(ref r1, c10); Accumulate(ref Unsafe.Add(ref r1, w), c11); }
        if (count > 2) { ref T r2 = ref Unsafe.Add(ref r, 2 * row); Accumulate(ref r2, c20); Accumulate(ref Unsafe.Add(ref r2, w), c21); }
        if (count > 3) { ref T r3 = ref Unsafe.Add(ref r, 3 * row); Accumulate(ref r3, c30); Accumulate(ref Unsafe.Add(ref r3, w), c31); }
        if (count > 4) { ref T r4 = ref Unsafe.Add(ref r, 4 * row); Accumulate(ref r4, c40); Accumulate(ref Unsafe.Add(ref r4, w), c41); }
        if (count > 5) { ref T r5 = ref Unsafe.Add(ref r, 5 * row); Accumulate(ref r5, c50); Accumulate(ref Unsafe.Add(ref r5, w), c51); }
        for (int q = whole; q < _oh * _ow; q++)
        {
            int b = (n * _hp + q / _ow * _window.StrideH) * _wp * _c + q % _ow * strideC, p = at0 + q * _f + f0;
            for (int j = 0; j < count; j++)
            {
                var a = x[b + _offsets[k + j]];
                for (int l = 0; l < 2 * w && f0 + l < _f; l++) accumulators[(k + j) * row + f0 + l] += a * dy[p + l];
            }
        }
    }

    /// <summary>a b + c, fused where the CPU has FMA (one rounding, and one instruction where there were two).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<T> MultiplyAdd(Vector<T> a, Vector<T> b, Vector<T> c)
    {
        if (System.Runtime.Intrinsics.X86.Fma.IsSupported)
        {
            if (typeof(T) == typeof(float)) return Vector.FusedMultiplyAdd(a.As<T, float>(), b.As<T, float>(), c.As<T, float>()).As<float, T>();
            if (typeof(T) == typeof(double)) return Vector.FusedMultiplyAdd(a.As<T, double>(), b.As<T, double>(), c.As<T, double>()).As<double, T>();
        }
        return a * b + c;
    }

    private static void Accumulate(ref T into, Vector<T> v) => Vector.StoreUnsafe(Vector.LoadUnsafe(ref into) + v, ref into);

    // The border is rewritten every time: backward's input gradient may have overwritten it.
    private void Pad(ReadOnlySpan<T> input, Span<T> padded, int batch) =>
        new PaddedBatch(_h, _w, _c, _window.Padding).Pad(input, padded, batch, clearBorder: true);
}
