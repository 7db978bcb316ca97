using CnnDsl.Graph;

namespace CnnDsl.Runtime;

/// <summary>
/// How an inference network (evaluation, prediction) differs from a training one, decided from
/// the graph alone: which layers write nothing of their own, and the batch it runs in.
/// </summary>
public static class InferencePlan
{
    /// <summary>Per node id: whether the layer's output is its input's buffer. Dropout (a pass-through
    /// in inference) and a linear flatten or reshape (NHWC order is kept) share it; so does a
    /// batchnorm whose input is a learned, ungrouped, linear convolution read by nothing else, which
    /// the convolution then folds in (Conv2d.FoldBatchNorm).</summary>
    public static bool[] Sharing(CnnDsl.Graph.Graph graph)
    {
        var nodes = graph.Nodes.ToArray();
        var readers = new int[nodes.Length];
        foreach (var node in nodes) foreach (var id in node.Inputs) readers[id]++;
        var sharing = new bool[nodes.Length];
        foreach (var node in nodes)
        {
            if (node.Inputs.Length != 1) continue;
            var input = nodes[node.Inputs.Head];
            sharing[node.Id] = node.Kind switch
            {
                LayerKind.Dropout => true,
                var k when k.IsFlatten || k.IsReshape => node.Activation.IsLinear,
                LayerKind.BatchNormalization => input.Kind is LayerKind.Conv conv && conv.Item.Groups == 1
                    && input.Activation.IsLinear && readers[input.Id] == 1,
                _ => false,
            };
        }
        return sharing;
    }

    /// <summary>Bytes an inference network's activations take per example (values only; shared
    /// layers add nothing).</summary>
    public static long BytesPerExample(CnnDsl.Graph.Graph graph, int elementSize = sizeof(float))
    {
        var sharing = Sharing(graph);
        return graph.Nodes.Where(n => !sharing[n.Id]).Sum(n => (long)Shapes.Elements(n.OutputShape)) * elementSize;
    }

    /// <summary>The activations an inference batch may take and still stay in cache (the two
    /// cores' L2 and a share of L3), and the smallest batch worth cutting a larger one into.</summary>
    public static long CacheBytes { get; set; } = 4L << 20;
    public const int MinimumPiece = 64;

    /// <summary>The batch an inference network runs `requested` examples in. When fewer than
    /// `requested` but at least MinimumPiece examples' activations fit CacheBytes, the batch is
    /// cut into that many pieces of equal size as fit (a partial piece costs a whole one: the
    /// layers run every row); else it is `requested` (for large models a cache-sized piece is too
    /// small for the GEMMs, which measured slower).</summary>
    public static int Batch(CnnDsl.Graph.Graph graph, int requested)
    {
        long perExample = Math.Max(1, BytesPerExample(graph));
        long fits = CacheBytes / perExample;
        if (fits < MinimumPiece || fits >= requested) return requested;
        long pieces = (requested + fits - 1) / fits;
        return (int)((requested + pieces - 1) / pieces);
    }
}
