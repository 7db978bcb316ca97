using System.Numerics;
using CnnDsl.Graph;
using CnnDsl.Runtime.Blas;

namespace CnnDsl.Runtime.Layers;

/// <summary>
/// 2-D convolution (cross-correlation, as every CNN framework computes it), lowered as its
/// ColumnPlan says: a direct kernel (DirectConv), FFT (FftConv), Winograd F(4x4, 3x3), F(5x5, 3x3), F(7x7, 3x3), F(2x2, 3x3) or F(2x2, 7x7) (WinogradConv), a shifted
/// GEMM (ShiftedGemm), or im2col + GEMM over the batch in chunks: Y[P, F] = col[P, K] x W[K, F] + b.
/// im2col's backward: dW = col^T dY, db = column sums of dY, dcol = dY W^T, then col2im.
/// Fixed kernels (sobel, a literal matrix ...) run here too, with a constant W and no
/// parameter gradients.
/// In an inference network, a batchnorm that is the convolution's only reader is folded into it
/// (FoldBatchNorm): W' = W a, b' = a b + beta - a mean with a = gamma / sqrt(var + eps) per
/// filter, the batchnorm's activation applied in the bias's pass, one pass over the output.
/// </summary>
public sealed class Conv2d<T> : Layer<T>, IBatchWork where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly Im2Col _im2col;
    private readonly ShiftedGemm _shifted;
    private readonly DirectConv<T>? _direct;
    private readonly WinogradConv<T>? _winograd;
    private readonly FftConv<T>? _fft;
    // The bias and its gradient run over NHWC data with F channels.
    private readonly ChannelPattern<T> _channels;
    private readonly int _filters;
    private readonly T[] _weights;
    private readonly Parameter<T>? _kernel, _bias;
    // One buffer serves the columns and, in backward once the weight gradient has read them,
    // their gradient (the next forward pass rebuilds the columns anyway).
    private readonly T[]? _col;
    private readonly ColumnPlan _plan;
    // Images whose columns forward writes and multiplies at a time.
    private readonly int _forwardChunk;
    // Shifted GEMM, direct, Winograd and FFT: whether the buffer holds this batch's (padded or
    // transformed) input: forward wrote it and backward has not yet overwritten it with the
    // input's gradient. Shifted GEMM: whether its padded copy's border is still zero.
    private bool _paddedHoldsInput, _paddedBorderZero = true;
    // What IBatchWork.Run does, and for which chunk (set before BatchParallel.For).
    private enum Job { Expand, Collapse, Forward }
    private Job _job;
    private int _chunkFirst;
    private Memory<T> _chunkColumns;
    // The fused forward's weights and whether it adds the bias (with a ReLU) itself.
    private T[] _forwardWeights = [];
    private bool _forwardBias;
    private readonly Parameter<T>[] _parameters;

    /// <param name="shared">the network's shared column buffers, used when the plan says so</param>
    public Conv2d(Node node, Activations<T>[] inputs, int batch, SharedColumns<T>? shared = null) : base(node, inputs, batch)
    {
        var (h, w, c) = Shapes.Hwc(node.InputShapes.Head);
        var (oh, ow, f) = Shapes.Hwc(node.OutputShape);
        Window window;
        switch (node.Kind)
        {
            case LayerKind.Conv conv:
                window = conv.Item.Window;
                _kernel = new Parameter<T>(node.Name + "/kernel", [window.KernelH, window.KernelW, c, f], node.Trainable);
                _bias = conv.Item.Bias ? new Parameter<T>(node.Name + "/bias", [f], node.Trainable) : null;
                _weights = _kernel.Value;
                break;
            case LayerKind.FixedConv fixedConv:
                window = fixedConv.Item.Window;
                _weights = FixedWeights(fixedConv.Item.Kernels, c);
                break;
            default:
                throw new ArgumentException($"{node.Name} is not a convolution");
        }
        _filters = f;
        _channels = new ChannelPattern<T>(f);
        _im2col = new Im2Col(h, w, c, oh, ow, window);
        _shifted = new ShiftedGemm(h, w, c, f, window);
        _parameters = new[] { _kernel, _bias }.Where(p => p != null).Select(p => p!).ToArray();
        _plan = ColumnPlan.For(node, batch);
        if (_plan.Direct) _direct = new DirectConv<T>(h, w, c, f, oh, ow, window);
        if (_plan.Winograd) _winograd = new WinogradConv<T>(h, w, c, f, oh, ow, window, _plan.WinogradTile);
        if (_plan.Fft) _fft = new FftConv<T>(h, w, c, f, oh, ow, window);
        if (_plan.Shared)
        {
            if (shared == null || shared.Columns.Length < _plan.Elements)
                throw new ArgumentException($"{node.Name} needs the network's shared column buffers of {_plan.Elements} values");
            _col = shared.Columns;
        }
        else if (_plan.Elements > 0)
        {
            _col = new T[_plan.Elements];
        }
        // Own columns are written in cache-sized chunks, each multiplied while still in cache
        // (but never below ColumnPlan.MinimumRows rows: MKL's small products cost more than the
        // cache saves); they stay in place for backward's weight gradient.
        int rowsPerImage = _im2col.Rows(1);
        _forwardChunk = _plan.Shared ? _plan.ImagesPerChunk : Math.Max(
            (int)(ColumnPlan.CacheElements / Math.Max(1, (long)rowsPerImage * _im2col.Columns)),
            (ColumnPlan.MinimumRows + rowsPerImage - 1) / rowsPerImage);
    }

    public Parameter<T>? Kernel => _kernel;
    public Parameter<T>? Bias => _bias;
    // Read when backward needs it (Parameter allocates a gradient on first use).
    private T[]? WeightGradient => _kernel?.Gradient;

    // The batchnorm folded into this convolution (inference networks only), and the folded
    // weights and bias, recomputed on every forward pass from the current weights.
    private BatchNorm<T>? _folded;
    private T[]? _foldedWeights, _foldedBias, _foldScale;

    /// <summary>Folds `batchNorm` (this layer's only reader, whose output is this layer's) into the
    /// convolution: for an inference network, which never runs backward.</summary>
    internal void FoldBatchNorm(BatchNorm<T> batchNorm)
    {
        if (_kernel == null || !Node.Activation.IsLinear)
            throw new InvalidOperationException($"{Node.Name}: only a learned convolution without an activation takes a batchnorm");
        _folded = batchNorm;
        _foldedWeights = new T[_weights.Length];
        _foldedBias = new T[_filters];
        _foldScale = new T[_filters];
    }

    /// <summary>The folded layer's weights and bias: W' = W a per filter, b' = a b + shift.</summary>
    private (T[] Weights, T[] Bias) Fold()
    {
        var scale = _foldScale!;
        var bias = _foldedBias!;
        _folded!.InferenceAffine(scale, bias);
        if (_bias != null) for (int f = 0; f < _filters; f++) bias[f] += scale[f] * _bias.Value[f];
        var w = _foldedWeights!;
        for (int i = 0; i < w.Length; i += _filters)
            for (int f = 0; f < _filters; f++) w[i + f] = _weights[i + f] * scale[f];
        return (w, bias);
    }

    public override IReadOnlyList<Parameter<T>> Parameters => _parameters;
    /// <summary>The layer's own buffers (shared columns are counted once, by the network).</summary>
    public override long WorkspaceBytes => (_plan.Shared ? 0 : BytesOf(_col)) + (_kernel == null ? BytesOf(_weights) : 0)
        + BytesOf(_foldedWeights) + BytesOf(_foldedBias) + BytesOf(_foldScale);

    /// <summary>Depthwise constant kernels as a full HWIO matrix: input channel c feeds only
    /// output channels c * n .. c * n + n - 1 (channel-major, as the graph defines them).</summary>
    public static T[] FixedWeights(double[][][] kernels, int channels)
    {
        int kh = kernels[0].Length, kw = kernels[0][0].Length, n = kernels.Length, f = channels * n;
        var w = new T[kh * kw * channels * f];
        for (int y = 0; y < kh; y++)
            for (int x = 0; x < kw; x++)
                for (int c = 0; c < channels; c++)
                    for (int j = 0; j < n; j++)
                        w[((y * kw + x) * channels + c) * f + c * n + j] = T.CreateChecked(kernels[j][y][x]);
        return w;
    }

    /// <summary>A shifted-GEMM layer's buffer: the padded input, then the extended output.</summary>
    private Span<T> Padded => _col.AsSpan(0, (int)_shifted.Sizes(Batch).Padded);
    private Span<T> Extended => _col.AsSpan((int)_shifted.Sizes(Batch).Padded);

    public override void Forward(bool training)
    {
        int k = _im2col.Columns, rowsPerImage = _im2col.Rows(1);
        var y = Output.Value.AsSpan();
        var (weights, bias) = _folded == null ? (_weights, _bias?.Value) : Fold();
        // a folded batchnorm's activation replaces the convolution's (linear) one
        var activation = _folded == null ? Node.Activation : _folded.Node.Activation;
        if (_direct != null)
        {
            // the bias, and a ReLU, in the same pass
            _direct.Forward(Inputs[0].Value, weights, bias, _col!, Output.Value, Batch, relu: activation.IsRelu);
            _paddedHoldsInput = true;
            if (!activation.IsRelu) ActivationFunctions.Forward(activation, y, ActivationRow);
            return;
        }
        if (_winograd != null)
        {
            // the bias, and a ReLU, in the output transform
            _winograd.Forward(Inputs[0].Value, weights, _col!, Output.Value, Batch, _plan.ImagesPerChunk, bias, activation.IsRelu);
            _paddedHoldsInput = true;
            if (!activation.IsRelu) ActivationFunctions.Forward(activation, y, ActivationRow);
            return;
        }
        if (_fft != null)
        {
            _fft.Forward(Inputs[0].Value, weights, _col!, Output.Value, Batch, _plan.ImagesPerChunk);
            _paddedHoldsInput = true;
        }
        else if (_plan.Shifted)
        {
            _shifted.Forward<T>(Inputs[0].Value, weights, Padded, Extended, y, Batch, clearBorder: !_paddedBorderZero);
            _paddedHoldsInput = _paddedBorderZero = true;
        }
        else if (_col == null)
        {
            // 1x1 stride 1: the input is the column matrix.
            Gemm.Multiply(false, false, _im2col.Rows(Batch), _filters, k, T.One, Inputs[0].Value, k, weights, _filters, T.Zero, y, _filters);
        }
        else if (FusedColumns)
        {
            // bias and ReLU in each piece's pass when every image starts the channel pattern afresh
            _forwardWeights = weights;
            _forwardBias = bias != null && activation.IsRelu && _im2col.Rows(1) * _filters % _channels.Length == 0;
            if (_forwardBias) _channels.Prepare(bias, bias);   // (AddRange reads the pattern's b)
            _job = Job.Forward;
            BatchParallel.For(Batch, (long)_im2col.Rows(Batch) * k, this);
            if (_forwardBias) return;
        }
        else
        {
            for (int first = 0; first < Batch; first += _forwardChunk)
            {
                int count = Math.Min(_forwardChunk, Batch - first), rows = count * rowsPerImage;
                var columns = _plan.Shared ? _col.AsMemory() : _col.AsMemory(first * rowsPerImage * k);
                Expand(first, count, columns);
                Gemm.Multiply(false, false, rows, _filters, k, T.One, columns.Span, k, weights, _filters, T.Zero,
                    y.Slice(first * rowsPerImage * _filters, rows * _filters), _filters);
            }
        }
        // a ReLU goes in the bias's pass
        bool relu = activation.IsRelu;
        if (bias != null) _channels.Add(y, bias, relu);
        if (bias == null || !relu) ActivationFunctions.Forward(activation, y, ActivationRow);
    }

    public override void Backward()
    {
        int k = _im2col.Columns, rowsPerImage = _im2col.Rows(1);
        if (_folded != null) throw new InvalidOperationException("an inference network has no backward pass");
        bool weights = Node.Trainable && _kernel != null, input = InputNeedsGradient[0];
        var weightGradient = WeightGradient;
        // a ReLU's backward pass and the bias gradient in one pass over dY, or each in its own
        if (weights && _bias != null && Node.Activation.IsRelu && !ActivationFusedIntoLoss)
            _channels.ReluBackwardSum(Output.Value, Output.Gradient, _bias.Gradient);
        else
        {
            ActivationBackward();
            if (weights && _bias != null) _channels.Sum(Output.Gradient, _bias.Gradient);
        }
        ReadOnlySpan<T> dy = Output.Gradient;
        if (_direct != null)
        {
            _direct.Backward(Inputs[0].Value, _weights, Output.Gradient, _col!, weightGradient, weights, Inputs[0].Gradient, input, Batch,
                padFirst: !_paddedHoldsInput);
            if (input && _direct.Padded) _paddedHoldsInput = false;
            return;
        }
        if (_winograd != null)
        {
            _winograd.Backward(Inputs[0].Value, Output.Gradient, _col!, weightGradient, weights, Inputs[0].Gradient, input, Batch, _plan.ImagesPerChunk,
                transformFirst: !_paddedHoldsInput);
            if (input) _paddedHoldsInput = false;
            return;
        }
        if (_fft != null)
        {
            _fft.Backward(Inputs[0].Value, Output.Gradient, _col!, weightGradient, weights, Inputs[0].Gradient, input, Batch, _plan.ImagesPerChunk,
                transformFirst: !_paddedHoldsInput);
            if (input) _paddedHoldsInput = false;
            return;
        }
        if (_plan.Shifted)
        {
            _shifted.Backward<T>(Inputs[0].Value, _weights, dy, Padded, Extended, weightGradient, weights, Inputs[0].Gradient, input, Batch,
                padFirst: weights && !_paddedHoldsInput);
            if (input) _paddedHoldsInput = _paddedBorderZero = false;
            return;
        }
        if (_col == null)
        {
            int p = _im2col.Rows(Batch);
            if (weights) Gemm.Multiply(true, false, k, _filters, p, T.One, Inputs[0].Value, k, dy, _filters, T.Zero, weightGradient, _filters);
            // 1x1 stride 1: the column matrix is the input, so dcol is the input gradient.
            if (input) Gemm.Multiply(false, true, p, k, _filters, T.One, dy, _filters, _weights, _filters, T.One, Inputs[0].Gradient, k);
            return;
        }
        // Backward goes by forward's chunks: each chunk's columns feed the weight gradient and are
        // then overwritten by their own gradient and collapsed while still in cache.
        for (int first = 0; first < Batch; first += _forwardChunk)
        {
            int count = Math.Min(_forwardChunk, Batch - first), rows = count * rowsPerImage;
            var dyChunk = dy.Slice(first * rowsPerImage * _filters, rows * _filters);
            var columns = _plan.Shared ? _col.AsMemory() : _col.AsMemory(first * rowsPerImage * k);
            if (weights)
            {
                // Shared columns were overwritten by later layers: rebuild this chunk's.
                if (_plan.Shared) Expand(first, count, columns);
                Gemm.Multiply(true, false, k, _filters, rows, T.One, columns.Span, k, dyChunk, _filters, first == 0 ? T.Zero : T.One, weightGradient, _filters);
            }
            if (input)
            {
                Gemm.Multiply(false, true, rows, k, _filters, T.One, dyChunk, _filters, _weights, _filters, T.Zero, columns.Span, k);
                _chunkFirst = first;
                _job = Job.Collapse;
                _chunkColumns = columns;
                BatchParallel.For(count, (long)rows * k, this);
            }
        }
    }

    /// <summary>Whether forward runs im2col and the product image by image on each layer thread (the
    /// product on that thread alone) instead of im2col over the threads, then a product on MKL's:
    /// own columns only, several layer threads, ColumnPlan.ColumnsFused, and a group of images
    /// that fits the cache has at least ColumnPlan.ColumnsFusedMinimumRows rows (fewer would
    /// read the whole weight matrix again for every few rows of output), and at least as many
    /// images as threads (fewer would leave one thread, its product without MKL's threads).</summary>
    private bool FusedColumns => ColumnPlan.ColumnsFused && !_plan.Shared && BatchParallel.Threads > 1 && Batch >= BatchParallel.Threads
        && (long)FusedStep * _im2col.Rows(1) >= ColumnPlan.ColumnsFusedMinimumRows;

    /// <summary>Images whose columns fit ColumnPlan.CacheElements (at least one).</summary>
    private int FusedStep => (int)Math.Clamp(ColumnPlan.CacheElements / ((long)_im2col.Rows(1) * _im2col.Columns), 1, Batch);

    /// <summary>Images first .. first + count - 1: im2col, product, and (when _forwardBias) bias and
    /// ReLU, a cache-sized group of images at a time.</summary>
    private void FusedForward(int first, int count)
    {
        int k = _im2col.Columns, rowsPerImage = _im2col.Rows(1);
        int step = Math.Min(FusedStep, count);
        var columns = _col.AsSpan();
        var y = Output.Value.AsSpan();
        Gemm.Current.SetCallerThreads(1);
        try
        {
            for (int s = first; s < first + count; s += step)
            {
                int n = Math.Min(step, first + count - s), rows = n * rowsPerImage;
                var chunk = columns.Slice(s * rowsPerImage * k, rows * k);
                var outputs = y.Slice(s * rowsPerImage * _filters, rows * _filters);
                _im2col.Expand<T>(Inputs[0].Value, chunk, s, n);
                Gemm.Multiply(false, false, rows, _filters, k, T.One, chunk, k, _forwardWeights, _filters, T.Zero, outputs, _filters);
                if (_forwardBias) _channels.AddRange(outputs, relu: true);
            }
        }
        finally { Gemm.Current.SetCallerThreads(0); }
    }

    /// <summary>im2col of images first .. first + count - 1 into the column buffer, split over the cores.</summary>
    private void Expand(int first, int count, Memory<T> columns)
    {
        _chunkFirst = first;
        _job = Job.Expand;
        _chunkColumns = columns;
        BatchParallel.For(count, (long)count * _im2col.Rows(1) * _im2col.Columns, this);
    }

    /// <summary>Images first .. first + count - 1 of the current chunk (counted from its start).</summary>
    void IBatchWork.Run(int first, int count)
    {
        if (_job == Job.Forward) { FusedForward(first, count); return; }
        int offset = first * _im2col.Rows(1) * _im2col.Columns;
        if (_job == Job.Collapse) _im2col.Collapse<T>(_chunkColumns.Span.Slice(offset), Inputs[0].Gradient, _chunkFirst + first, count);
        else _im2col.Expand<T>(Inputs[0].Value, _chunkColumns.Span.Slice(offset), _chunkFirst + first, count);
    }
}
