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
public sealed record MemoryPlan(long Activations, long Workspace, long Parameters, long OptimizerState)
{
    public long Total => Activations + Workspace + Parameters + OptimizerState;

    /// <param name="optimizerSlots">values the optimizer keeps per parameter: Adam 2, SGD with momentum 1, RMSprop 1-2</param>
    public static MemoryPlan Estimate(CnnDsl.Graph.Graph graph, int batch, int elementSize = sizeof(float), int optimizerSlots = 2)
    {
        long activations = 0, workspace = 0, parameters = 0;
        foreach (var node in graph.Nodes)
        {
            long output = (long)batch * Shapes.Elements(node.OutputShape);
            activations += 2 * output * elementSize; // values and gradients
            workspace += LayerWorkspace(node, batch, elementSize);
            var (trainable, frozen) = Cost.parameters(node);
            // values and gradients (batchnorm's moving statistics keep a gradient array too)
            parameters += 2 * (trainable + frozen) * elementSize;
        }
        workspace += Layers.ColumnPlan.SharedElements(graph, batch) * elementSize;
        long optimizer = graph.Nodes.Sum(n => Cost.parameters(n).Item1) * optimizerSlots * elementSize;
        return new MemoryPlan(activations, workspace, parameters, optimizer);
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
                return 4L * Shapes.Channels(node.OutputShape) * elementSize; // per-channel mean, 1/std and two sums
            case LayerKind.Dropout:
                return output * elementSize;
            default:
                return 0;
        }
    }
}
