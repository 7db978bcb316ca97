using CnnDsl.Graph;

namespace CnnDsl.Runtime;

/// <summary>
/// The memory a network of a given batch size allocates, computed from the graph alone
/// (before anything is allocated): activations and their gradients, each layer's own
/// buffers (im2col columns, pooling arg-max indices, batchnorm and dropout buffers), the
/// column buffers the large convolutions share,
/// parameters, their gradients and the optimizer's state. A test holds it equal to what
/// Network allocates.
/// </summary>
/// <summary>A network too large to build at the asked batch size (a user's mistake, not a bug).</summary>
public sealed class ModelSizeError(string message) : Exception(message);

public sealed record MemoryPlan(long Activations, long Workspace, long Parameters, long OptimizerState)
{
    public long Total => Activations + Workspace + Parameters + OptimizerState;

    /// <param name="optimizerSlots">values the optimizer keeps per parameter: Adam 2, SGD with momentum 1, RMSprop 1-2</param>
    /// <param name="inference">an inference network's plan (InferencePlan): values without gradients,
    /// nothing for layers that share their input's buffer, the folded convolutions' weights, no optimizer</param>
    public static MemoryPlan Estimate(CnnDsl.Graph.Graph graph, int batch, int elementSize = sizeof(float), int optimizerSlots = 2, bool inference = false)
    {
        long activations = 0, workspace = 0, parameters = 0;
        var sharing = inference ? InferencePlan.Sharing(graph) : null;
        var nodes = graph.Nodes.ToArray();
        int copies = inference ? 1 : 2; // values, and gradients when training
        foreach (var node in nodes)
        {
            long output = (long)batch * Shapes.Elements(node.OutputShape);
            var (trainable, frozen) = Cost.parameters(node);
            // (batchnorm's moving statistics keep a gradient array too)
            parameters += copies * (trainable + frozen) * elementSize;
            if (sharing?[node.Id] == true)
            {
                // no output of its own; a folded batchnorm keeps its buffers, and its convolution
                // the folded kernel, scale and bias
                if (node.Kind.IsBatchNormalization)
                {
                    var conv = nodes[node.Inputs.Head];
                    var window = ((LayerKind.Conv)conv.Kind).Item.Window;
                    long f = Shapes.Channels(conv.OutputShape);
                    workspace += LayerWorkspace(node, batch, elementSize)
                                 + ((long)window.KernelH * window.KernelW * Shapes.Channels(conv.InputShapes.Head) * f + 2 * f) * elementSize;
                }
                continue;
            }
            activations += copies * output * elementSize;
            workspace += LayerWorkspace(node, batch, elementSize);
        }
        workspace += Layers.ColumnPlan.SharedElements(graph, batch) * elementSize;
        long optimizer = inference ? 0 : graph.Nodes.Sum(n => Cost.parameters(n).Item1) * optimizerSlots * elementSize;
        return new MemoryPlan(activations, workspace, parameters, optimizer);
    }

    /// <summary>
    /// Refuses, before anything is allocated, a network that cannot be built at this batch
    /// size: a tensor past what one array holds, or a working set past the memory this
    /// process may use. Other code then never sees an overflowing size.
    /// </summary>
    public static void EnsureFits(CnnDsl.Graph.Graph graph, int batch, int elementSize, bool inference = false)
    {
        foreach (var node in graph.Nodes)
        {
            long perExample = Cost.elements(node.OutputShape) is { } e ? e.Value : 0;
            if ((long)batch * perExample > Array.MaxLength)
                throw new ModelSizeError(
                    $"{node.Name}'s output ({node.OutputShape}) at batch {batch} has {(long)batch * perExample:N0} values, more than one array holds ({Array.MaxLength:N0}); " +
                    (batch > 1 ? "use a smaller --batch, or a smaller input" : "use a smaller input, or pool or stride earlier"));
            var (trainable, frozen) = Cost.parameters(node);
            if (trainable + frozen > Array.MaxLength)
                throw new ModelSizeError($"{node.Name} has {trainable + frozen:N0} parameters, more than one array holds; use fewer units or filters");
        }
        long total = Estimate(graph, batch, elementSize, inference: inference).Total;
        long available = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        if (total > available)
            throw new ModelSizeError(
                $"the model at batch {batch} needs {total / 1e9:0.##} GB but this machine lets the process use {available / 1e9:0.##} GB; " +
                (batch > 1 ? "use a smaller --batch, or a smaller input" : "use a smaller input, or pool or stride earlier"));
    }

    /// <summary>The buffers a layer keeps besides its output and output gradient.</summary>
    public static long LayerWorkspace(Node node, int batch, int elementSize)
    {
        long output = (long)batch * Shapes.Elements(node.OutputShape);
        switch (node.Kind)
        {
            case LayerKind.Conv or LayerKind.FixedConv:
                var window = node.Kind is LayerKind.Conv c ? c.Item.Window : ((LayerKind.FixedConv)node.Kind).Item.Window;
                int ch = Shapes.Channels(node.InputShapes.Head), f = Shapes.Channels(node.OutputShape);
                long constant = node.Kind.IsFixedConv ? (long)window.KernelH * window.KernelW * ch * f * elementSize : 0;
                // the column buffer, unless it is the shared one (counted once)
                var plan = Layers.ColumnPlan.For(node, batch);
                return (plan.Shared ? 0 : plan.Elements * elementSize) + constant;
            case LayerKind.Pool pool:
                return pool.Item.Kind.IsAverage ? 0 : output * sizeof(int);
            case LayerKind.GlobalPool kind:
                return kind.Item.IsAverage ? 0 : output * sizeof(int);
            case LayerKind.BatchNormalization:
            {
                // per-channel mean, 1/std and two sums; and two periods of partial sums per image
                // where an image is a whole number of periods (BatchNorm splits the work by image),
                // two in all otherwise
                int channels = Shapes.Channels(node.OutputShape), lanes = elementSize == 4 ? System.Numerics.Vector<float>.Count : System.Numerics.Vector<double>.Count;
                long period = Layers.ChannelPattern<float>.PeriodOf(channels, lanes);
                long partials = 2L * (Shapes.Elements(node.OutputShape) % period == 0 ? batch : 1) * period;
                return (4L * channels + partials) * elementSize;
            }
            case LayerKind.Dropout:
                return output * elementSize;
            case LayerKind.Maxout:
                return output * sizeof(int); // the winning piece of each output
            default:
                return 0;
        }
    }
}
