module CnnDsl.Runtime.Tests.GemmTests

open System
open Xunit
open FsCheck.Xunit
open MathNet.Numerics.LinearAlgebra
open CnnDsl.Runtime.Blas
open CnnDsl.Runtime.Tests.TestSupport

/// MathNet's matrix product is the reference (row-major arrays in, row-major out).
let private reference (ta: bool) (tb: bool) m n k (a: float[]) (b: float[]) =
    let ma = if ta then Matrix<float>.Build.Dense(k, m, fun i j -> a[i * m + j]).Transpose() else Matrix<float>.Build.Dense(m, k, fun i j -> a[i * k + j])
    let mb = if tb then Matrix<float>.Build.Dense(n, k, fun i j -> b[i * k + j]).Transpose() else Matrix<float>.Build.Dense(k, n, fun i j -> b[i * n + j])
    let c = ma * mb
    Array.init (m * n) (fun i -> c[i / n, i % n])

[<Cases 100>]
let ``both backends agree with MathNet in double and float`` (ta: bool) (tb: bool) (m0: uint16) (n0: uint16) (k0: uint16) (seed: int) =
    let m, n, k = 1 + int m0 % 40, 1 + int n0 % 70, 1 + int k0 % 300
    let rng = Random seed
    let a, b = randomArray rng (m * k), randomArray rng (k * n)
    let c0 = randomArray rng (m * n)
    let expected = Array.map2 (fun r c -> 2.0 * r + 0.5 * c) (reference ta tb m n k a b) c0
    for _, backend in backends () do
        let c = Array.copy c0
        backend.Dgemm(ta, tb, m, n, k, 2.0, ReadOnlySpan a, (if ta then m else k), ReadOnlySpan b, (if tb then k else n), 0.5, Span c, n)
        assertClose 1e-9 expected c
        let cf = Array.map float32 c0
        backend.Sgemm(ta, tb, m, n, k, 2.0f, ReadOnlySpan (Array.map float32 a), (if ta then m else k), ReadOnlySpan (Array.map float32 b), (if tb then k else n), 0.5f, Span cf, n)
        assertClose (1e-4 * float k) expected (Array.map float cf)
    true

[<Fact>]
let ``MKL loads on a machine set up by scripts/setup.sh`` () =
    match MklGemm.TryLoad() with
    | null, why ->
        // A skip would hide a broken setup in CI, where setup.sh installs MKL; say why instead.
        if Environment.GetEnvironmentVariable "CI" = "true" then failwithf "MKL did not load in CI: %s" why
    | mkl, _ -> Assert.Contains("threads", mkl.Description)
