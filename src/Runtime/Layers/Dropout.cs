using System.Numerics;
using CnnDsl.Graph;

namespace CnnDsl.Runtime.Layers;

/// <summary>Inverted dropout (Srivastava et al., 2014, as Keras does it): in training each
/// value is kept with probability 1 - rate and scaled by 1 / (1 - rate); in inference the
/// layer passes values through. Each image's mask comes from the step's seed and the image's
/// place in the batch, so a run is reproducible and the images can be split over the layer
/// threads (the masks do not depend on how).</summary>
public sealed class Dropout<T> : Layer<T>, IBatchWork where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly double _rate;
    private readonly T[] _mask;
    private T _keep;

    /// <param name="output">the input's buffer in an inference network, where dropout passes values through</param>
    public Dropout(Node node, Activations<T>[] inputs, int batch, Activations<T>? output = null) : base(node, inputs, batch, output)
    {
        _rate = ((LayerKind.Dropout)node.Kind).rate;
        _mask = SharesInput ? [] : new T[Output.Value.Length];
    }

    public override long WorkspaceBytes => BytesOf(_mask);

    public override void Forward(bool training)
    {
        // an inference network's pass-through (Network keeps it out of training mode)
        if (SharesInput) return;
        var x = Inputs[0].Value.AsSpan();
        var y = Output.Value.AsSpan();
        if (!training || _rate == 0)
        {
            _mask.AsSpan().Fill(T.One);
            x.CopyTo(y);
            return;
        }
        _keep = T.CreateChecked(1.0 / (1.0 - _rate));
        BatchParallel.For(Batch, y.Length, this);
    }

    /// <summary>Images first .. first + count - 1: their masks and outputs.</summary>
    void IBatchWork.Run(int first, int count)
    {
        int per = Output.PerExample;
        var x = Inputs[0].Value;
        var y = Output.Value;
        for (int n = first; n < first + count; n++)
        {
            // the image's own stream: the step's seed with the image's place hashed in
            var random = new SplitMix64(StepSeed ^ ((ulong)n + 1) * 0xD1B54A32D192ED03UL);
            for (int i = n * per; i < (n + 1) * per; i++)
            {
                _mask[i] = random.NextDouble() >= _rate ? _keep : T.Zero;
                y[i] = x[i] * _mask[i];
            }
        }
    }

    public override bool WritesWholeInputGradient => true;

    public override void Backward()
    {
        if (!InputNeedsGradient[0]) return;
        var dx = Inputs[0].Gradient.AsSpan();
        var dy = Output.Gradient.AsSpan();
        if (AssignsInputGradient(0))
            for (int i = 0; i < dy.Length; i++) dx[i] = dy[i] * _mask[i];
        else
            for (int i = 0; i < dy.Length; i++) dx[i] += dy[i] * _mask[i];
    }
}
