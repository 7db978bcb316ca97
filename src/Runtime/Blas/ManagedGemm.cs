using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace CnnDsl.Runtime.Blas;

/// <summary>
/// A blocked, vectorised, multi-threaded GEMM in C#, used when MKL is missing.
/// B is packed into panels two vectors wide (a thread-local buffer that grows once and is
/// reused), A is read in place either way round, and a 6-row x 2-vector register tile of fused
/// multiply-adds (12 independent accumulators: enough to cover the FMA latency on two ports)
/// runs over K blocks, row tiles in parallel.
/// </summary>
public sealed class ManagedGemm : IGemm
{
    private const int KBlock = 256;
    private const int TileRows = 6;
    /// <summary>Below this many multiply-adds a product runs on one thread.</summary>
    private const long ParallelWork = 1L << 18;

    public string Description => $"managed GEMM (Vector<float> x {Vector<float>.Count}), {Environment.ProcessorCount} threads";

    /// <summary>Nothing to set: small products (all of FftConv's) already run on the calling thread.</summary>
    public void SetCallerThreads(int threads) { }

    public void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
        => Run(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

    public void Dgemm(bool transA, bool transB, int m, int n, int k, double alpha,
        ReadOnlySpan<double> a, int lda, ReadOnlySpan<double> b, int ldb, double beta, Span<double> c, int ldc)
        => Run(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

    private static class Scratch<T> where T : unmanaged
    {
        [ThreadStatic] public static T[]? B;
    }

    private static T[] Grow<T>(ref T[]? buffer, int size) where T : unmanaged
    {
        if (buffer == null || buffer.Length < size) buffer = new T[size];
        return buffer;
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
        // op(A)[i, p] sits at a[i * rowStride + p * colStride]: a transposed A (the weight
        // gradient's col^T) is read in place, its 6 rows of one k being 6 adjacent values.
        int rowStride = transA ? 1 : lda, colStride = transA ? lda : 1;
        // op(B)[p, j] sits at b[p * bRow + j * bCol]. Its columns are packed in panels of two
        // vectors (k x 2w values each, contiguous), so that the tile streams B; the columns past
        // the last whole panel are read in place.
        int bRow = transB ? 1 : ldb, bCol = transB ? ldb : 1;
        int w2 = 2 * Vector<T>.Count, panels = n / w2;
        var packed = Grow(ref Scratch<T>.B, Math.Max(1, panels * k * w2));
        for (int t = 0; t < panels; t++)
        {
            var panel = packed.AsSpan(t * k * w2, k * w2);
            if (!transB)
                for (int q = 0; q < k; q++) b.Slice(q * ldb + t * w2, w2).CopyTo(panel.Slice(q * w2, w2));
            else
                for (int jj = 0; jj < w2; jj++)
                {
                    var column = b.Slice((t * w2 + jj) * ldb, k);
                    for (int q = 0; q < k; q++) panel[q * w2 + jj] = column[q];
                }
        }
        RunRows(a, rowStride, colStride, packed, b, bRow, bCol, c, ldc, m, n, k, alpha);
    }

    /// <summary>C += alpha * op(A) op(B), both strided as Run says, B's whole panels packed; rows of C in parallel.</summary>
    private static void RunRows<T>(ReadOnlySpan<T> a, int rowStride, int colStride, ReadOnlySpan<T> panels, ReadOnlySpan<T> b, int bRow, int bCol,
        Span<T> c, int ldc, int m, int n, int k, T alpha)
        where T : unmanaged, INumber<T>
    {
        unsafe
        {
            fixed (T* pa = a) fixed (T* pp = panels) fixed (T* pb = b) fixed (T* pc = c)
            {
                var job = new Job<T>(pa, rowStride, colStride, pp, pb, bRow, bCol, pc, ldc, n, k, alpha);
                int blocks = (m + TileRows - 1) / TileRows;
                if ((long)m * n * k < ParallelWork || blocks == 1)
                    job.Blocks(0, blocks, m);
                else
                {
                    // A few contiguous ranges of row tiles per thread: each range walks K
                    // outermost, so one K block of packed B (KBlock x n) serves all its tiles
                    // from cache instead of being streamed once per tile.
                    int parts = Math.Min(blocks, 4 * Environment.ProcessorCount);
                    Parallel.For(0, parts, part =>
                    {
                        Denormals.FlushToZero();
                        job.Blocks(part * blocks / parts, (part + 1) * blocks / parts, m);
                    });
                }
            }
        }
    }

    private readonly unsafe struct Job<T>(T* a, int rs, int cs, T* panels, T* b, int bRow, int bCol, T* c, int ldc, int n, int k, T alpha)
        where T : unmanaged, INumber<T>
    {
        /// <summary>C[i0..i0+rows, :] += alpha * A[i0.., :] * B.</summary>
        /// <summary>C[rows of tiles first .. end - 1, :] += alpha * A[those rows, :] * B, K blocks outermost.</summary>
        public void Blocks(int first, int end, int m)
        {
            int w = Vector<T>.Count;
            for (int k0 = 0; k0 < k; k0 += KBlock)
            {
                int kEnd = Math.Min(k, k0 + KBlock);
                for (int blk = first; blk < end; blk++)
                {
                    int i0 = blk * TileRows, rows = Math.Min(TileRows, m - i0);
                    int j = 0;
                    for (; j + 2 * w <= n; j += 2 * w) Tile(i0, rows, j, k0, kEnd);
                    for (; j < n; j++) Column(i0, rows, j, k0, kEnd);
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector<T> Fma(Vector<T> x, Vector<T> y, Vector<T> acc)
        {
            // The type tests are constants after JIT specialisation.
            if (typeof(T) == typeof(float))
                return Vector.FusedMultiplyAdd(x.As<T, float>(), y.As<T, float>(), acc.As<T, float>()).As<float, T>();
            if (typeof(T) == typeof(double))
                return Vector.FusedMultiplyAdd(x.As<T, double>(), y.As<T, double>(), acc.As<T, double>()).As<double, T>();
            return acc + x * y;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private void Tile(int i0, int rows, int j, int k0, int kEnd)
        {
            int w = Vector<T>.Count;
            Vector<T> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
                      c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
            // Rows past the end read row 0 again (their sums are never stored).
            T* a0 = a + i0 * rs;
            T* panel = panels + (long)(j / (2 * w)) * k * 2 * w;
            int r1 = rows > 1 ? rs : 0, r2 = rows > 2 ? 2 * rs : 0, r3 = rows > 3 ? 3 * rs : 0;
            int r4 = rows > 4 ? 4 * rs : 0, r5 = rows > 5 ? 5 * rs : 0;
            for (int p = k0; p < kEnd; p++)
            {
                var bp = panel + p * 2 * w;
                var b0 = Unsafe.ReadUnaligned<Vector<T>>(bp);
                var b1 = Unsafe.ReadUnaligned<Vector<T>>(bp + w);
                T* ap = a0 + p * cs;
                var x = new Vector<T>(ap[0]); c00 = Fma(x, b0, c00); c01 = Fma(x, b1, c01);
                x = new Vector<T>(ap[r1]); c10 = Fma(x, b0, c10); c11 = Fma(x, b1, c11);
                x = new Vector<T>(ap[r2]); c20 = Fma(x, b0, c20); c21 = Fma(x, b1, c21);
                x = new Vector<T>(ap[r3]); c30 = Fma(x, b0, c30); c31 = Fma(x, b1, c31);
                x = new Vector<T>(ap[r4]); c40 = Fma(x, b0, c40); c41 = Fma(x, b1, c41);
                x = new Vector<T>(ap[r5]); c50 = Fma(x, b0, c50); c51 = Fma(x, b1, c51);
            }
            var s = new Vector<T>(alpha);
            Store(i0, j, c00 * s, c01 * s);
            if (rows > 1) Store(i0 + 1, j, c10 * s, c11 * s);
            if (rows > 2) Store(i0 + 2, j, c20 * s, c21 * s);
            if (rows > 3) Store(i0 + 3, j, c30 * s, c31 * s);
            if (rows > 4) Store(i0 + 4, j, c40 * s, c41 * s);
            if (rows > 5) Store(i0 + 5, j, c50 * s, c51 * s);
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
                var ar = a + (i0 + r) * rs;
                for (int p = k0; p < kEnd; p++) sum += ar[p * cs] * b[p * bRow + j * bCol];
                c[(i0 + r) * ldc + j] += alpha * sum;
            }
        }
    }
}
