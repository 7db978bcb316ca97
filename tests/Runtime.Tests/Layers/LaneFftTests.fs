module CnnDsl.Runtime.Tests.LaneFftTests

open System
open System.Numerics
open Xunit
open CnnDsl.Runtime.Layers

let private lanes = Vector<float>.Count

/// n vectors of lanes, each lane its own random signal.
let private signal (rng: Random) (n: int) =
    Array.init n (fun _ -> Vector<float>(Array.init lanes (fun _ -> rng.NextDouble() * 2.0 - 1.0)))

/// The definition: X[k] = sum_j x[j] e^(sign 2 pi i jk / n), one lane at a time.
let private dft (sign: float) (re: Vector<float>[]) (im: Vector<float>[]) (lane: int) =
    let n = re.Length
    Array.init n (fun k ->
        let mutable sr, si = 0.0, 0.0
        for j in 0 .. n - 1 do
            let angle = sign * 2.0 * Math.PI * float (j * k % n) / float n
            let c, s = cos angle, sin angle
            sr <- sr + re[j][lane] * c - im[j][lane] * s
            si <- si + re[j][lane] * s + im[j][lane] * c
        sr, si)

let private near (expected: float) (actual: float) what =
    if not (abs (expected - actual) <= 1e-12 * 64.0) then failwithf "%s: expected %.15g, got %.15g" what expected actual

[<Theory>]
[<InlineData(2)>] [<InlineData(4)>] [<InlineData(8)>] [<InlineData(16)>] [<InlineData(32)>] [<InlineData(64)>]
[<InlineData(3)>] [<InlineData(5)>] [<InlineData(6)>] [<InlineData(9)>] [<InlineData(10)>] [<InlineData(12)>] [<InlineData(24)>] [<InlineData(30)>] [<InlineData(60)>]
let ``the complex transform and its inverse are the DFT's definition, in every lane`` (n: int) =
    let fft = LaneFft<float>(n)
    for inverse in [ false; true ] do
        let rng = Random(n + (if inverse then 1 else 0))
        let re, im = signal rng n, signal rng n
        let tr, ti = Array.copy re, Array.copy im
        fft.Transform(tr.AsSpan(), ti.AsSpan(), inverse)
        for lane in 0 .. lanes - 1 do
            let expected = dft (if inverse then 1.0 else -1.0) re im lane
            for k in 0 .. n - 1 do
                let er, ei = expected[k]
                near er (tr[k].[lane]) (sprintf "n %d inverse %b lane %d bin %d (re)" n inverse lane k)
                near ei (ti[k].[lane]) (sprintf "n %d inverse %b lane %d bin %d (im)" n inverse lane k)

[<Theory>]
[<InlineData(2)>] [<InlineData(4)>] [<InlineData(16)>] [<InlineData(32)>] [<InlineData(3)>] [<InlineData(10)>] [<InlineData(15)>] [<InlineData(24)>]
let ``two real signals' half spectra come apart from one transform, and go back together`` (n: int) =
    let fft = LaneFft<float>(n)
    let rng = Random n
    let a, b = signal rng n, signal rng n
    let zero = Array.create n Vector<float>.Zero
    let half = n / 2 + 1
    let aRe, aIm, bRe, bIm = Array.zeroCreate half, Array.zeroCreate half, Array.zeroCreate half, Array.zeroCreate half
    fft.RealPair((Array.copy a).AsSpan(), (Array.copy b).AsSpan(), aRe.AsSpan(), aIm.AsSpan(), bRe.AsSpan(), bIm.AsSpan())
    for lane in 0 .. lanes - 1 do
        let ea, eb = dft -1.0 a zero lane, dft -1.0 b zero lane
        for k in 0 .. half - 1 do
            let (ar, ai), (br, bi) = ea[k], eb[k]
            near ar (aRe[k].[lane]) (sprintf "A[%d] re" k); near ai (aIm[k].[lane]) (sprintf "A[%d] im" k)
            near br (bRe[k].[lane]) (sprintf "B[%d] re" k); near bi (bIm[k].[lane]) (sprintf "B[%d] im" k)
    let re, im = Array.zeroCreate n, Array.zeroCreate n
    fft.InverseRealPair(ReadOnlySpan aRe, ReadOnlySpan aIm, ReadOnlySpan bRe, ReadOnlySpan bIm, re.AsSpan(), im.AsSpan())
    for lane in 0 .. lanes - 1 do
        for j in 0 .. n - 1 do
            near (float n * a[j].[lane]) (re[j].[lane]) (sprintf "a[%d]" j)
            near (float n * b[j].[lane]) (im[j].[lane]) (sprintf "b[%d]" j)

[<Fact>]
let ``lengths with a prime factor above 5 are refused, and each size rounds up to the next length there is`` () =
    for n in [ 0; 1; 7; 14; 22; 49 ] do
        Assert.False(LaneFft<float>.Supports n, string n)
        Assert.Throws<ArgumentOutOfRangeException>(fun () -> LaneFft<float>(n) |> ignore) |> ignore
    Assert.Equal<int list>([ 2; 2; 2; 3; 4; 5; 6; 8; 8; 9; 10; 12; 16; 24; 24; 25; 64; 72 ],
                           [ for n in [ -1; 0; 2; 3; 4; 5; 6; 7; 8; 9; 10; 11; 16; 22; 24; 25; 64; 65 ] -> LaneFft<float>.LengthAtLeast n ])
