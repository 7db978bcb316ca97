namespace CnnDsl.Runtime.Blas;

/// <summary>
/// General matrix product on row-major matrices: C = alpha * op(A) * op(B) + beta * C,
/// where op(A) is M x K and op(B) is K x N. Leading dimensions are row strides.
/// Implemented in float (training) and double (gradient checks).
/// </summary>
public interface IGemm
{
    /// <summary>A one-line description for run headers: backend, code path, threads.</summary>
    string Description { get; }

    void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc);

    /// <summary>Threads the backend may use for products called from the calling thread: 1 where the
    /// caller already splits independent products over the cores (FftConv's one product per
    /// frequency: small, and many), 0 to go back to the process-wide count.</summary>
    void SetCallerThreads(int threads);

    void Dgemm(bool transA, bool transB, int m, int n, int k, double alpha,
        ReadOnlySpan<double> a, int lda, ReadOnlySpan<double> b, int ldb, double beta, Span<double> c, int ldc);
}
