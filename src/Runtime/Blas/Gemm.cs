using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace CnnDsl.Runtime.Blas;

/// <summary>
/// The process-wide GEMM backend: MKL when it loads, the managed one otherwise (with a
/// one-line notice), or the one named by CNNDSL_GEMM=mkl|managed.
/// </summary>
public static class Gemm
{
    private static IGemm? _current;
    private static string? _notice;

    /// <summary>Why the managed backend was chosen, when it was not asked for; null otherwise.</summary>
    public static string? Notice { get { _ = Current; return _notice; } }

    private static readonly object Gate = new();

    /// <summary>The backend, chosen on first use (by one thread: the first product may be on a
    /// layer's worker, beside the caller).</summary>
    public static IGemm Current
    {
        get
        {
            if (Volatile.Read(ref _current) is { } current) return current;
            lock (Gate) return _current ??= Choose();
        }
        set => _current = value;
    }

    private static IGemm Choose()
    {
        var wanted = Environment.GetEnvironmentVariable("CNNDSL_GEMM")?.Trim().ToLowerInvariant();
        if (wanted == "managed") return new ManagedGemm();
        var mkl = MklGemm.TryLoad(out var why);
        if (mkl != null) return mkl;
        _notice = $"MKL not available ({why}); using the managed GEMM. Install MKL with scripts/setup.sh in a clone, or as README.md (\"Intel MKL\") says.";
        if (wanted == "mkl") throw new InvalidOperationException("CNNDSL_GEMM=mkl, but " + _notice);
        return new ManagedGemm();
    }

    /// <summary>The product in the element type of the network (float or double).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Multiply<T>(bool transA, bool transB, int m, int n, int k, T alpha,
        ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb, T beta, Span<T> c, int ldc)
        where T : unmanaged
    {
        // The type tests are constants after JIT specialisation.
        if (typeof(T) == typeof(float))
            Current.Sgemm(transA, transB, m, n, k, Unsafe.As<T, float>(ref alpha),
                MemoryMarshal.Cast<T, float>(a), lda, MemoryMarshal.Cast<T, float>(b), ldb,
                Unsafe.As<T, float>(ref beta), MemoryMarshal.Cast<T, float>(c), ldc);
        else if (typeof(T) == typeof(double))
            Current.Dgemm(transA, transB, m, n, k, Unsafe.As<T, double>(ref alpha),
                MemoryMarshal.Cast<T, double>(a), lda, MemoryMarshal.Cast<T, double>(b), ldb,
                Unsafe.As<T, double>(ref beta), MemoryMarshal.Cast<T, double>(c), ldc);
        else throw new NotSupportedException($"GEMM on {typeof(T).Name}");
    }
}
