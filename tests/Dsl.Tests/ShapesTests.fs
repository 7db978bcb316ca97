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

/// TensorFlow's rule for `same` (tf.nn.convolution, padding='SAME'), written out on its own:
/// the output is ceil(n / s), the total padding is what that output needs and never negative,
/// the smaller half goes before (top/left) and the rest after (bottom/right).
let private tensorFlowSame n k s =
    let out = (n + s - 1) / s
    let total = max ((out - 1) * s + k - n) 0
    total / 2, total - total / 2

[<Fact>]
let ``same padding splits as TensorFlow does for every kernel 1-7, stride 1-4 and size 1-20`` () =
    let wrong =
        [ for k in 1 .. 7 do
            for s in 1 .. 4 do
                for n in 1 .. 20 do
                    let before, after = tensorFlowSame n k s
                    let actual = Shapes.samePadding (int64 n) (int64 k) (int64 s)
                    let out = Shapes.outputSize (int64 n) (fst actual + snd actual) (int64 k) (int64 s)
                    if actual <> (int64 before, int64 after) || out <> int64 ((n + s - 1) / s) then
                        yield sprintf "n=%d k=%d s=%d: TensorFlow (%d, %d), ours %A giving %d outputs" n k s before after actual out ]
    Assert.True(wrong.IsEmpty, String.concat "\n" wrong)

[<Fact>]
let ``the checker gives each axis of a same conv or pool TensorFlow's padding (kernels smaller than strides too)`` () =
    let wrong =
        [ for k in 1 .. 7 do
            for s in 1 .. 4 do
                for n in 1 .. 20 do
                    // the width axis takes other sizes, kernels, strides and a dilation, so that the axes differ
                    let n2, k2, s2, d2 = 21 - n, 1 + (k + 2) % 7, 1 + (s + 1) % 4, 1 + n % 2
                    let top, bottom = tensorFlowSame n k s
                    for layer, dilation in [ sprintf "conv 2 %dx%d s%dx%d d1x%d same" k k2 s s2 d2, d2; sprintf "maxpool %dx%d s%dx%d same" k k2 s s2, 1 ] do
                        let left, right = tensorFlowSame n2 (dilation * (k2 - 1) + 1) s2
                        let expected = { Top = top; Bottom = bottom; Left = left; Right = right }
                        let text = sprintf "input %dx%dx1\n%s" n n2 layer
                        match compile text with
                        | Error ds -> yield sprintf "%s: %s" (text.Replace("\n", "; ")) (ds |> List.map (fun d -> d.Code) |> String.concat ", ")
                        | Ok (g, _) ->
                            let w = match g.Output.Kind with LayerKind.Conv c -> c.Window | LayerKind.Pool p -> p.Window | k -> failwithf "%A" k
                            let shape = Image (Dim.Known ((n + s - 1) / s), Dim.Known ((n2 + s2 - 1) / s2), (if layer.StartsWith "conv" then 2 else 1))
                            if w.Padding <> expected || g.Output.OutputShape <> shape then
                                let show (p: Padding) = sprintf "top %d bottom %d left %d right %d" p.Top p.Bottom p.Left p.Right
                                yield sprintf "%s: padding %s, output %O; TensorFlow: %s, %O" (text.Replace("\n", "; ")) (show w.Padding) g.Output.OutputShape (show expected) shape ]
    Assert.True(wrong.IsEmpty, String.concat "\n" (List.truncate 20 wrong))
