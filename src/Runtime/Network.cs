using System.Numerics;
using CnnDsl.Graph;
using CnnDsl.Runtime.Layers;
using MathNet.Numerics.Distributions;

namespace CnnDsl.Runtime;

/// <summary>
/// A validated graph made runnable for one batch size: a layer per node, every buffer
/// (activations, im2col columns) allocated here once, the gradients on the first backward pass,
/// none per batch.
/// </summary>
public sealed class Network<T> : IBatchWork where T : unmanaged, IFloatingPointIeee754<T>
{
    // The output gradients that their first writer adds to (the others it assigns; the last
    // layer's the loss sets), cleared before each backward pass by rows over the layer threads;
    // gathered on the first backward pass, which allocates every gradient buffer on one thread.
    private T[][]? _gradients;
    private long _gradientValues;
    private bool[] _assigned = [];
    private readonly Layer<T>[] _layers;
    private readonly SharedColumns<T>? _sharedColumns;
    private readonly ulong _seed;
    private ulong _step;
    /// <summary>With `normalize`: the raw input the caller fills, the per-channel statistics
    /// applied to it before the first layer, and the gradient with respect to the raw input.</summary>
    private readonly T[]? _rawInput, _rawGradient;
    private readonly Parameter<T>? _mean, _deviation;

    /// <param name="inputGradient">compute the gradient with respect to the input too
    /// (gradient checks, saliency); training does not need it.</param>
    /// <param name="inference">an inference network (evaluation, prediction): forward only, in
    /// inference mode; no gradient buffers; dropout and flatten pass their input's buffer on,
    /// and a batchnorm that is a convolution's only reader is folded into it (InferencePlan).</param>
    public Network(CnnDsl.Graph.Graph graph, int batch, int seed = 0, bool inputGradient = false, bool inference = false)
    {
        if (batch < 1) throw new ArgumentOutOfRangeException(nameof(batch), "the batch size must be at least 1");
        if (inference && inputGradient) throw new ArgumentException("an inference network has no gradients", nameof(inputGradient));
        Graph = graph;
        BatchSize = batch;
        IsInference = inference;
        _seed = (ulong)seed;
        MemoryPlan.EnsureFits(graph, batch, System.Runtime.CompilerServices.Unsafe.SizeOf<T>(), inference);
        var nodes = graph.Nodes.ToArray();
        _layers = new Layer<T>[nodes.Length];
        long shared = ColumnPlan.SharedElements(graph, batch);
        _sharedColumns = shared > 0 ? new SharedColumns<T>(shared) : null;
        var sharing = inference ? InferencePlan.Sharing(graph) : new bool[nodes.Length];
        foreach (var node in nodes)
        {
            var inputs = node.Inputs.Select(id => _layers[id].Output).ToArray();
            var layer = Create(node, inputs, batch, _sharedColumns, sharing[node.Id] ? inputs[0] : null);
            layer.InputNeedsGradient = node.Inputs.Select(id => id != 0 || inputGradient).ToArray();
            _layers[node.Id] = layer;
            if (sharing[node.Id] && layer is BatchNorm<T> batchNorm) ((Conv2d<T>)_layers[node.Inputs.Head]).FoldBatchNorm(batchNorm);
        }
        if (!inference) PlanGradientWrites();
        Initialise(new Random(seed));
        if (graph.Training.Normalize && graph.Input.OutputShape is Shape.Image image)
        {
            _mean = new Parameter<T>(Normalization.Mean, [image.channels], false);
            _deviation = new Parameter<T>(Normalization.Deviation, [image.channels], false);
            Array.Fill(_deviation.Value, T.One);
            _rawInput = new T[_layers[0].Output.Value.Length];
            _rawGradient = inputGradient ? new T[_rawInput.Length] : [];
        }
    }

    /// <summary>The per-channel mean and standard deviation applied to the input (null without `normalize`).</summary>
    public (Parameter<T> Mean, Parameter<T> Deviation)? InputStatistics => _mean == null ? null : (_mean, _deviation!);

    public CnnDsl.Graph.Graph Graph { get; }
    public int BatchSize { get; }
    /// <summary>Built for inference: Forward(false) only.</summary>
    public bool IsInference { get; }

    /// <summary>The real examples in the current batch, 1 to BatchSize: a partial last batch
    /// runs in the same buffers (nothing is allocated), its first Rows rows filled.</summary>
    public int Rows
    {
        get => _layers[0].Rows;
        set
        {
            if (value < 1 || value > BatchSize) throw new ArgumentOutOfRangeException(nameof(value), $"{value} rows in a batch of {BatchSize}");
            foreach (var layer in _layers) layer.Rows = value;
        }
    }
    public IReadOnlyList<Layer<T>> Layers => _layers;
    public Layer<T> OutputLayer => _layers[^1];

    /// <summary>The batch's input values (NHWC), to be filled before Forward.</summary>
    public Span<T> Input => _rawInput ?? _layers[0].Output.Value;
    public ReadOnlySpan<T> InputGradient => _rawGradient ?? _layers[0].Output.Gradient;
    public ReadOnlySpan<T> Output => OutputLayer.Output.Value;
    /// <summary>The loss's gradient with respect to the output; set by a loss before Backward.</summary>
    public Span<T> OutputGradient => OutputLayer.Output.Gradient;
    public int InputSize => _layers[0].Output.PerExample;
    public int OutputSize => OutputLayer.Output.PerExample;

    public IEnumerable<Parameter<T>> Parameters => _layers.SelectMany(l => l.Parameters);
    /// <summary>Parameters and non-learned state (batchnorm statistics): what a checkpoint holds.</summary>
    public IEnumerable<Parameter<T>> Weights =>
        _layers.SelectMany(l => l.Parameters.Concat(l.State)).Concat(_mean == null ? [] : [_mean, _deviation!]);

    /// <summary>Bytes of the column buffers the large convolutions share (see ColumnPlan).</summary>
    public long SharedWorkspaceBytes =>
        _sharedColumns == null ? 0 : (long)_sharedColumns.Columns.Length * System.Runtime.CompilerServices.Unsafe.SizeOf<T>();

    /// <param name="output">the input's buffer, for a layer an inference network lets share it</param>
    private static Layer<T> Create(Node node, Activations<T>[] inputs, int batch, SharedColumns<T>? shared, Activations<T>? output) => node.Kind switch
    {
        var k when k.IsInput || k.IsActivationLayer => new ActivationLayer<T>(node, inputs, batch),
        LayerKind.Conv conv when conv.Item.Groups > 1 => new GroupedConv2d<T>(node, inputs, batch),
        LayerKind.Conv or LayerKind.FixedConv => new Conv2d<T>(node, inputs, batch, shared),
        LayerKind.Maxout => new Maxout<T>(node, inputs, batch),
        LayerKind.Pool => new Pool2d<T>(node, inputs, batch),
        LayerKind.GlobalPool => new GlobalPool2d<T>(node, inputs, batch),
        LayerKind.Dense => new Dense<T>(node, inputs, batch),
        var k when k.IsFlatten || k.IsReshape => new Reshape<T>(node, inputs, batch, output),
        LayerKind.Dropout => new Dropout<T>(node, inputs, batch, output),
        LayerKind.BatchNormalization => new BatchNorm<T>(node, inputs, batch, output),
        var k when k.IsAdd => new Add<T>(node, inputs, batch),
        var k when k.IsConcat => new Concat<T>(node, inputs, batch),
        _ => throw new NotSupportedException($"no runtime layer for {node.Name}"),
    };

    /// <summary>Keras's defaults: Glorot-uniform kernels, limit = sqrt(6 / (fan_in + fan_out))
    /// (Glorot and Bengio, 2010), zero biases; batchnorm starts at gamma 1, beta 0.</summary>
    private void Initialise(Random random)
    {
        foreach (var layer in _layers)
        {
            Parameter<T>? kernel = layer switch
            {
                Conv2d<T> conv => conv.Kernel,
                GroupedConv2d<T> grouped => grouped.Kernel,
                Dense<T> dense => dense.Kernel,
                _ => null,
            };
            if (kernel == null) continue;
            // HWIO / [in, out]: fan_in = receptive field x inputs, fan_out = receptive field x outputs.
            var shape = kernel.Shape;
            int receptive = shape.Length == 4 ? shape[0] * shape[1] : 1;
            int fanIn = receptive * shape[^2], fanOut = receptive * shape[^1];
            var limit = Math.Sqrt(6.0 / (fanIn + fanOut));
            var uniform = new ContinuousUniform(-limit, limit, random);
            for (int i = 0; i < kernel.Value.Length; i++) kernel.Value[i] = T.CreateChecked(uniform.Sample());
            // Hand-set weights replace the random ones after they are drawn, so the random
            // stream (and every other layer's draw) is the same with or without them.
            if (layer.Node.Given is { } given)
            {
                var bias = layer switch { Conv2d<T> c => c.Bias, GroupedConv2d<T> g => g.Bias, Dense<T> d => d.Bias, _ => null };
                for (int i = 0; i < kernel.Value.Length; i++) kernel.Value[i] = T.CreateChecked(given.Value.Kernel[i]);
                if (bias != null && given.Value.Bias is { } b)
                    for (int i = 0; i < bias.Value.Length; i++) bias.Value[i] = T.CreateChecked(b.Value[i]);
            }
        }
    }

    /// <summary>Runs every layer forward. Dropout masks depend on the seed and the step, so
    /// repeated calls within a step (gradient checks) see the same mask.</summary>
    public void Forward(bool training) => ForwardFrom(0, training);

    /// <summary>Which layer writes each output's gradient first in a backward pass: its last reader
    /// in graph order (backward runs the layers in reverse). Where that layer writes the whole
    /// gradient it assigns, and Backward does not clear the buffer; the others are cleared.</summary>
    private void PlanGradientWrites()
    {
        var lastReader = new int[_layers.Length];
        Array.Fill(lastReader, -1);
        foreach (var layer in _layers)
            foreach (var id in layer.Node.Inputs) lastReader[id] = layer.Node.Id;
        var assigned = new bool[_layers.Length];
        foreach (var layer in _layers)
        {
            var inputs = layer.Node.Inputs.ToArray();
            layer.AssignInputGradient = new bool[inputs.Length];
            for (int k = 0; k < inputs.Length; k++)
            {
                int id = inputs[k];
                // (an input read twice by the layer gets two contributions: both add)
                if (lastReader[id] != layer.Node.Id || !layer.WritesWholeInputGradient || !layer.InputNeedsGradient[k]
                    || Array.IndexOf(inputs, id) != Array.LastIndexOf(inputs, id)) continue;
                layer.AssignInputGradient[k] = true;
                assigned[id] = true;
            }
        }
        _assigned = assigned;
    }

    /// <summary>Backpropagates OutputGradient (set by a loss) to every parameter.</summary>
    public void Backward()
    {
        if (IsInference) throw new InvalidOperationException("an inference network has no backward pass");
        Denormals.FlushToZero();
        if (_gradients == null)
        {
            foreach (var layer in _layers) _ = layer.Output.Gradient;
            _gradients = _layers[..^1].Where(l => !_assigned[l.Node.Id]).Select(l => l.Output.Gradient).ToArray();
            _gradientValues = _gradients.Sum(g => (long)g.Length);
        }
        BatchParallel.For(BatchSize, _gradientValues, this);
        for (int i = _layers.Length - 1; i > 0; i--)
        {
            // A layer's output gradient is complete here: every consumer comes later in the graph.
            BackwardObserver?.Invoke(i, false);
            _layers[i].Backward();
            BackwardObserver?.Invoke(i, true);
        }
        if (_rawGradient is { Length: > 0 })
        {
            // d/d raw = d/d normalised / deviation
            var g = _layers[0].Output.Gradient;
            int c = _deviation!.Value.Length;
            for (int i = 0; i < _rawGradient.Length; i++) _rawGradient[i] = g[i] / _deviation.Value[i % c];
        }
    }

    /// <summary>Rows first .. first + count - 1 of every gradient that is added to cleared.</summary>
    void IBatchWork.Run(int first, int count)
    {
        foreach (var g in _gradients!)
        {
            int per = g.Length / BatchSize;
            g.AsSpan(first * per, count * per).Clear();
        }
    }

    /// <summary>Called before (false) and after (true) each layer's backward pass, with the
    /// layer's index: gradient checks read complete output gradients there.</summary>
    public Action<int, bool>? BackwardObserver { get; set; }

    /// <summary>Runs the layers from `start` on (the earlier outputs are kept as they are).</summary>
    public void ForwardFrom(int start, bool training)
    {
        if (IsInference && training) throw new InvalidOperationException("an inference network does not train");
        Denormals.FlushToZero();
        if (start == 0 && _rawInput != null)
        {
            // (x - mean) / deviation per channel, as torchvision's Normalize
            var x = _layers[0].Output.Value;
            int c = _mean!.Value.Length, n = Rows * InputSize;
            var mean = _mean.Value; var deviation = _deviation!.Value;
            for (int i = 0; i < n; i++) x[i] = (_rawInput[i] - mean[i % c]) / deviation[i % c];
        }
        for (int i = start; i < _layers.Length; i++)
        {
            var layer = _layers[i];
            layer.StepSeed = _seed * 0x9E3779B97F4A7C15UL ^ ((ulong)layer.Node.Id << 40) ^ _step;
            layer.Forward(training);
        }
    }

    /// <summary>Moves to the next training step (new dropout masks).</summary>
    public void NextStep() => _step++;

    /// <summary>Training steps taken (saved in checkpoints so that a resumed run draws the same masks).</summary>
    public long Step { get => (long)_step; set => _step = (ulong)value; }
}
