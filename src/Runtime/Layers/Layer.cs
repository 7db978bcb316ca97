using System.Numerics;
using CnnDsl.Graph;

namespace CnnDsl.Runtime.Layers;

/// <summary>
/// One node of the graph, running forward and backward over a whole batch.
/// Backward reads Output.Gradient and adds into its inputs' gradients (a node may feed
/// several others, as in residual blocks, so every contribution accumulates), or assigns them
/// where it writes first (AssignsInputGradient).
/// </summary>
public abstract class Layer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <param name="output">an existing buffer to write into instead of a new one: in an inference
    /// network, a layer that passes its input through (dropout, flatten) or that is folded into
    /// the layer before (batchnorm into its convolution) shares that layer's output.</param>
    protected Layer(Node node, Activations<T>[] inputs, int batch, Activations<T>? output = null)
    {
        Node = node;
        Inputs = inputs;
        Batch = batch;
        Rows = batch;
        if (output != null && (output.Batch != batch || output.PerExample != Shapes.Elements(node.OutputShape)))
            throw new ArgumentException($"{node.Name} cannot share a buffer of another size");
        Output = output ?? new Activations<T>(batch, Shapes.Elements(node.OutputShape));
    }

    /// <summary>Whether the output is the input's own buffer (an inference network's pass-through or folded layer).</summary>
    public bool SharesInput => Inputs.Length == 1 && ReferenceEquals(Output, Inputs[0]);

    public Node Node { get; }
    public Activations<T>[] Inputs { get; }
    public Activations<T> Output { get; }
    public int Batch { get; }

    /// <summary>How many leading rows of the batch are real examples (a partial last batch is
    /// padded to the network's size). Layers that mix rows (batchnorm's statistics) use only
    /// these; row-wise layers may compute the padding too, whose gradient the loss sets to 0.</summary>
    public int Rows { get; internal set; }

    /// <summary>False for the network's input, whose gradient nobody reads.</summary>
    public bool[] InputNeedsGradient { get; internal set; } = [];

    /// <summary>Per input: whether this layer's backward pass is the first to write that input's
    /// gradient in a step (it is the input's last reader in graph order, and WritesWholeInputGradient),
    /// so it assigns instead of adding and the network does not clear the buffer before the pass
    /// (Network.Backward: clearing every gradient buffer took 5 ms of fashion-mnist-best's 130 ms
    /// step at batch 128).</summary>
    public bool[] AssignInputGradient { get; internal set; } = [];

    /// <summary>Whether Backward, asked to assign an input's gradient, writes every value of it
    /// (the padding rows of a partial batch too).</summary>
    public virtual bool WritesWholeInputGradient => false;

    /// <summary>Whether input k's gradient is assigned rather than added to.</summary>
    protected bool AssignsInputGradient(int k) => k < AssignInputGradient.Length && AssignInputGradient[k];

    /// <summary>Set when the loss has already turned the output gradient into the gradient of
    /// the pre-activation (fused softmax + cross-entropy, sigmoid + binary cross-entropy).</summary>
    public bool ActivationFusedIntoLoss { get; set; }

    public virtual IReadOnlyList<Parameter<T>> Parameters => [];

    /// <summary>Non-learned state saved with the weights (batchnorm's moving statistics).</summary>
    public virtual IReadOnlyList<Parameter<T>> State => [];

    /// <summary>Random state for the step (dropout); set by the network before each forward pass.</summary>
    public ulong StepSeed { get; set; }

    /// <summary>Bytes of the layer's own buffers besides its output (MemoryPlan predicts them).</summary>
    public virtual long WorkspaceBytes => 0;

    protected static long BytesOf<TElement>(TElement[]? array) where TElement : unmanaged =>
        array == null ? 0 : (long)array.Length * System.Runtime.CompilerServices.Unsafe.SizeOf<TElement>();

    public abstract void Forward(bool training);
    public abstract void Backward();

    protected int ActivationRow => Shapes.Channels(Node.OutputShape);

    protected void Activate() => ActivationFunctions.Forward(Node.Activation, Output.Value.AsSpan(), ActivationRow);

    /// <summary>Turns the output gradient into the gradient of the pre-activation, in place.</summary>
    protected void ActivationBackward()
    {
        if (!ActivationFusedIntoLoss)
            ActivationFunctions.Backward(Node.Activation, Output.Value, Output.Gradient.AsSpan(), ActivationRow);
    }
}
