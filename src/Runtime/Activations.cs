using System.Numerics;

namespace CnnDsl.Runtime;

/// <summary>One example's values and their gradients, for every example of a batch,
/// stored NHWC (channels last, as the graph writes shapes and as Keras stores them):
/// im2col rows are then output pixels and a convolution is one GEMM for the whole batch.
/// The gradient is allocated on first use (the network's first backward pass allocates every
/// gradient on one thread before any layer reads one), so a network that only runs forward,
/// an inference network, never holds gradient buffers.</summary>
public sealed class Activations<T> where T : unmanaged
{
    private T[]? _gradient;

    public Activations(int batch, int perExample)
    {
        PerExample = perExample;
        Batch = batch;
        Value = new T[batch * perExample];
    }

    public int Batch { get; }
    public int PerExample { get; }
    public T[] Value { get; }
    public T[] Gradient => _gradient ?? Interlocked.CompareExchange(ref _gradient, new T[Value.Length], null) ?? _gradient;
    /// <summary>Whether the gradient buffer exists (false until a backward pass or a reader needs it).</summary>
    public bool HasGradient => _gradient != null;
}

/// <summary>A learned tensor and its gradient (Keras's layouts: conv kernels HWIO, dense [in, out]).</summary>
public sealed class Parameter<T>(string name, int[] shape, bool trainable) where T : unmanaged
{
    public string Name { get; } = name;
    public int[] Shape { get; } = shape;
    public bool Trainable { get; } = trainable;
    private T[]? _gradient;
    public T[] Value { get; } = new T[shape.Aggregate(1, (a, b) => a * b)];
    /// <summary>Allocated on first use, as an activation's (an inference network never makes it).</summary>
    public T[] Gradient => _gradient ?? Interlocked.CompareExchange(ref _gradient, new T[Value.Length], null) ?? _gradient;
    public bool HasGradient => _gradient != null;
}

/// <summary>A small, allocation-free random generator (SplitMix64) for dropout masks,
/// seeded per layer and per step so that a run is reproducible and a gradient check
/// sees the same mask on every forward pass of one step.</summary>
public struct SplitMix64(ulong seed)
{
    private ulong _state = seed;

    public ulong Next()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, 1).</summary>
    public double NextDouble() => (Next() >> 11) * (1.0 / (1UL << 53));
}
