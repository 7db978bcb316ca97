module CnnDsl.Dsl.Tests.ShapesTests

open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open CnnDsl.Graph
open CnnDsl.Dsl
open CnnDsl.Dsl.Tests.TestSupport

/// Count the placements of a (dilated) kernel by walking it over the padded input.
let private placements n k s p d =
    let span = d * (k - 1) + 1
    Seq.initInfinite id |> Seq.takeWhile (fun i -> i * s + span <= n + 2 * p) |> Seq.length

[<Theory>]
[<InlineData(28, 3, 1, 0, 26)>] // seed 002: n = 28, f = 3, s = 1, p = 0 gives 26
[<InlineData(26, 3, 1, 0, 24)>]
[<InlineData(5, 3, 2, 0, 2)>]
[<InlineData(5, 3, 1, 1, 5)>]
[<InlineData(227, 11, 4, 0, 55)>]
let ``the seeds' formula`` (n: int) (k: int) (s: int) (p: int) (expected: int) =
    Assert.Equal(int64 expected, Shapes.outputSize (int64 n) (int64 (2 * p)) (int64 k) (int64 s))

[<Fact>]
let ``same padding follows TensorFlow: ceil(n/s), the extra cell after`` () =
    Assert.Equal((0L, 1L), Shapes.samePadding 28L 2L 1L) // even kernel: one pixel, bottom/right
    Assert.Equal((1L, 1L), Shapes.samePadding 28L 3L 1L)
    Assert.Equal((0L, 1L), Shapes.samePadding 28L 3L 2L) // out 14: (14-1)*2 + 3 - 28 = 1

[<Property(MaxTest = 1000)>]
let ``the formula equals a brute-force count of kernel placements`` () =
    let settings = Gen.zip (Gen.zip (Gen.choose (1, 40)) (Gen.choose (1, 9))) (Gen.zip3 (Gen.choose (1, 5)) (Gen.choose (0, 4)) (Gen.choose (1, 3)))
    Prop.forAll (Arb.fromGen settings) (fun ((n, k), (s, p, d)) ->
        let expected = placements n k s p d
        let out = Shapes.outputSize (int64 n) (int64 (2 * p)) (Shapes.effectiveKernel (int64 k) (int64 d)) (int64 s)
        (if expected = 0 then out <= 0L else out = int64 expected)
        |> Prop.label (sprintf "n=%d k=%d s=%d p=%d d=%d: formula %d, placements %d" n k s p d out expected))

[<Property(MaxTest = 300)>]
let ``the checker's conv output equals the brute-force count, or is reported`` () =
    let settings = Gen.zip (Gen.zip (Gen.choose (1, 30)) (Gen.choose (1, 7))) (Gen.zip3 (Gen.choose (1, 4)) (Gen.choose (0, 3)) (Gen.choose (1, 3)))
    Prop.forAll (Arb.fromGen settings) (fun ((n, k), (s, p, d)) ->
        let text = sprintf "input %dx%dx1\nconv 2 %dx%d s%d p%d d%d" n n k k s p d
        let expected = placements n k s p d
        match compile text with
        | Ok (g, _) -> expected > 0 && g.Output.OutputShape = Image (Dim.Known expected, Dim.Known expected, 2)
        | Error ds -> expected = 0 && ds |> List.exists (fun e -> e.Code = "CNN301"))

[<Property(MaxTest = 300)>]
let ``same padding keeps ceil(n/s) for every kernel and stride`` () =
    let settings = Gen.zip3 (Gen.choose (1, 40)) (Gen.choose (1, 7)) (Gen.choose (1, 4))
    Prop.forAll (Arb.fromGen settings) (fun (n, k, s) ->
        let g = graph (sprintf "input %dx%dx3\nconv 4 %dx%d s%d same" n n k k s)
        let out = (n + s - 1) / s
        g.Output.OutputShape = Image (Dim.Known out, Dim.Known out, 4))
