using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace CnnDsl.Runtime.Blas;

/// <summary>
/// A blocked, vectorised, multi-threaded GEMM in C#, used when MKL is missing.
/// Transposed operands are first packed into row-major copies (thread-local buffers that
/// grow once and are reused), then a 4-row x 2-vector register tile runs over K blocks.
/// </summary>
public sealed class ManagedGemm : IGemm
{
    private const int KBlock = 256;
    /// <summary>Below this many multiply-adds a product runs on one thread.</summary>
    private const long ParallelWork = 1L << 18;

    public string Description => $"managed GEMM (Vector<float> x {Vector<float>.Count}), {Environment.ProcessorCount} threads";

    public void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
        => Run(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

    public void Dgemm(bool transA, bool transB, int m, int n, int k, double alpha,
        ReadOnlySpan<double> a, int lda, ReadOnlySpan<double> b, int ldb, double beta, Span<double> c, int ldc)
        => Run(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

    private static class Scratch<T> where T : unmanaged
    {
        [ThreadStatic] public static T[]? A;
        [ThreadStatic] public static T[]? B;
    }

    private static T[] Grow<T>(ref T[]? buffer, int size) where T : unmanaged
    {
        if (buffer == null || buffer.Length < size) buffer = new T[size];
        return buffer;
    }

    /// <summary>op(X) as a row-major rows x cols copy.</summary>
    private static void Transpose<T>(ReadOnlySpan<T> x, int ld, int rows, int cols, Span<T> into) where T : unmanaged
    {
        // x holds the cols x rows matrix (row stride ld); into[r, c] = x[c, r].
        for (int c = 0; c < cols; c++)
        {
            var src = x.Slice(c * ld, rows);
            for (int r = 0; r < rows; r++) into[r * cols + c] = src[r];
        }
    }

    private static void Run<T>(bool transA, bool transB, int m, int n, int k, T alpha,
        ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb, T beta, Span<T> c, int ldc)
        where T : unmanaged, INumber<T>
    {
        if (m == 0 || n == 0) return;
        // C = beta * C first; the kernel then accumulates alpha * A * B.
        for (int i = 0; i < m; i++)
        {
            var row = c.Slice(i * ldc, n);
            if (T.IsZero(beta)) row.Clear();
            else if (beta != T.One) for (int j = 0; j < n; j++) row[j] *= beta;
        }
        if (k == 0 || T.IsZero(alpha)) return;
        if (transA && !transB)
        {
            // A^T B (weight gradients, K large): transpose A one K-slab at a time, small enough
            // to stay in cache, and run the row kernel on each slab; transposing all of A at
            // once would stream it through memory with strided writes.
            const int slab = 64;
            var packedA = Grow(ref Scratch<T>.A, m * slab);
            for (int p0 = 0; p0 < k; p0 += slab)
            {
                int kb = Math.Min(slab, k - p0);
                for (int p = 0; p < kb; p++)
                {
                    var src = a.Slice((p0 + p) * lda, m);
                    for (int i = 0; i < m; i++) packedA[i * kb + p] = src[i];
                }
                RunRows(packedA, kb, b.Slice(p0 * ldb), ldb, c, ldc, m, n, kb, alpha);
            }
            return;
        }
        if (transA)
        {
            var packed = Grow(ref Scratch<T>.A, m * k);
            Transpose(a, lda, m, k, packed);
            a = packed; lda = k;
        }
        if (transB)
        {
            var packed = Grow(ref Scratch<T>.B, k * n);
            Transpose(b, ldb, k, n, packed);
            b = packed; ldb = n;
        }
        RunRows(a, lda, b, ldb, c, ldc, m, n, k, alpha);
    }

    /// <summary>C += alpha * A B for row-major A [m, k] and B [k, n], rows of C in parallel.</summary>
    private static void RunRows<T>(ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb, Span<T> c, int ldc, int m, int n, int k, T alpha)
        where T : unmanaged, INumber<T>
    {
        unsafe
        {
            fixed (T* pa = a) fixed (T* pb = b) fixed (T* pc = c)
            {
                var job = new Job<T>(pa, lda, pb, ldb, pc, ldc, n, k, alpha);
                int blocks = (m + 3) / 4;
                if ((long)m * n * k < ParallelWork || blocks == 1)
                    for (int blk = 0; blk < blocks; blk++) job.Rows(blk * 4, Math.Min(4, m - blk * 4));
                else
                    Parallel.For(0, blocks, blk =>
                    {
                        Denormals.FlushToZero();
                        job.Rows(blk * 4, Math.Min(4, m - blk * 4));
                    });
            }
        }
    }

    private readonly unsafe struct Job<T>(T* a, int lda, T* b, int ldb, T* c, int ldc, int n, int k, T alpha)
        where T : unmanaged, INumber<T>
    {
        /// <summary>C[i0..i0+rows, :] += alpha * A[i0.., :] * B.</summary>
        public void Rows(int i0, int rows)
        {
            int w = Vector<T>.Count;
            for (int k0 = 0; k0 < k; k0 += KBlock)
            {
                int kEnd = Math.Min(k, k0 + KBlock);
                int j = 0;
                for (; j + 2 * w <= n; j += 2 * w) Tile(i0, rows, j, k0, kEnd);
                for (; j < n; j++) Column(i0, rows, j, k0, kEnd);
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private void Tile(int i0, int rows, int j, int k0, int kEnd)
        {
            int w = Vector<T>.Count;
            Vector<T> c00 = default, c01 = default, c10 = default, c11 = default,
                      c20 = default, c21 = default, c30 = default, c31 = default;
            T* a0 = a + i0 * lda, a1 = a0 + (rows > 1 ? lda : 0), a2 = a0 + (rows > 2 ? 2 * lda : 0), a3 = a0 + (rows > 3 ? 3 * lda : 0);
            for (int p = k0; p < kEnd; p++)
            {
                var bRow = b + p * ldb + j;
                var b0 = Unsafe.ReadUnaligned<Vector<T>>(bRow);
                var b1 = Unsafe.ReadUnaligned<Vector<T>>(bRow + w);
                var x = new Vector<T>(a0[p]); c00 += x * b0; c01 += x * b1;
                x = new Vector<T>(a1[p]); c10 += x * b0; c11 += x * b1;
                x = new Vector<T>(a2[p]); c20 += x * b0; c21 += x * b1;
                x = new Vector<T>(a3[p]); c30 += x * b0; c31 += x * b1;
            }
            var s = new Vector<T>(alpha);
            Store(i0, j, c00 * s, c01 * s);
            if (rows > 1) Store(i0 + 1, j, c10 * s, c11 * s);
            if (rows > 2) Store(i0 + 2, j, c20 * s, c21 * s);
            if (rows > 3) Store(i0 + 3, j, c30 * s, c31 * s);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private void Store(int i, int j, Vector<T> v0, Vector<T> v1)
        {
            var p = c + i * ldc + j;
            Unsafe.WriteUnaligned(p, Unsafe.ReadUnaligned<Vector<T>>(p) + v0);
            Unsafe.WriteUnaligned(p + Vector<T>.Count, Unsafe.ReadUnaligned<Vector<T>>(p + Vector<T>.Count) + v1);
        }

        private void Column(int i0, int rows, int j, int k0, int kEnd)
        {
            for (int r = 0; r < rows; r++)
            {
                T sum = T.Zero;
                var ar = a + (i0 + r) * lda;
                for (int p = k0; p < kEnd; p++) sum += ar[p] * b[p * ldb + j];
                c[(i0 + r) * ldc + j] += alpha * sum;
            }
        }
    }
}
