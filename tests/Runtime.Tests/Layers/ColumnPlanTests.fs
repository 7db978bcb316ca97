module CnnDsl.Runtime.Tests.ColumnPlanTests

open Xunit
open CnnDsl.Graph
open CnnDsl.Runtime.Layers
open CnnDsl.Runtime.Tests.TestSupport

/// The plan of the model's first convolution (node 1) at a batch size.
let private planOf (text: string) (batch: int) = ColumnPlan.For((graph text).Nodes[1], batch)

/// The window of the convolution in `layer` on a 12x12x16 input.
let private windowOf (layer: string) =
    match (graph ("input 12x12x16\n" + layer)).Nodes[1].Kind with LayerKind.Conv c -> c.Window | _ -> failwith "conv"

/// Runs `f` with the plan's settings as given, restoring them after (they are process-wide).
let private withSettings (privateLimit: int64) (f: unit -> 'a) =
    let saved = ColumnPlan.PrivateLimit
    ColumnPlan.PrivateLimit <- privateLimit
    try f () finally ColumnPlan.PrivateLimit <- saved

// Each rule at its edge: the value on the rule's side and one step past it. The rules' reasons
// (measured speeds) are in ColumnPlan.cs.

[<Fact>]
let ``direct: at most 160 values per window, 32 filters and 2,400 values times filters`` () =
    // (the defaults: the tests run one at a time, and none leaves them changed)
    Assert.Equal((160, 32, 2400), (ColumnPlan.DirectMaxWindowValues, ColumnPlan.DirectMaxFilters, ColumnPlan.DirectMaxProduct))
    Assert.Equal("direct", (planOf "input 10x10x3\nconv 32 5x5" 4).Lowering)
    Assert.Equal("im2col + GEMM", (planOf "input 10x10x3\nconv 33 5x5" 4).Lowering)
    // LeNet's second layer: K 150, 16 filters; one filter more is past the product
    Assert.Equal("direct", (planOf "input 14x14x6\nconv 16 5x5" 4).Lowering)
    Assert.Equal("im2col + GEMM", (planOf "input 14x14x6\nconv 17 5x5" 4).Lowering)
    Assert.Equal("direct", (planOf "input 10x10x4\nconv 24 5x5" 4).Lowering)
    Assert.Equal("im2col + GEMM", (planOf "input 10x10x4\nconv 25 5x5" 4).Lowering)
    // 160 values per window, and one more (15 filters keep the product within 2,400)
    Assert.Equal("direct", (planOf "input 10x10x10\nconv 15 4x4" 4).Lowering)
    Assert.Equal("im2col + GEMM", (planOf "input 10x10x7\nconv 2 5x5" 4).Lowering)

[<Fact>]
let ``7x7 Winograd: at least 64 channels and an output of at least 8x8`` () =
    withoutFft <| fun () ->
    Assert.Equal("Winograd F(2x2,7x7)", (planOf "input 14x14x64\nconv 64 7x7" 4).Lowering)
    // one row or one column short of 8
    Assert.Equal("im2col + GEMM", (planOf "input 13x14x64\nconv 64 7x7" 4).Lowering)
    Assert.Equal("im2col + GEMM", (planOf "input 14x13x64\nconv 64 7x7" 4).Lowering)
    // 56 channels (a whole number of vectors, C x F above the minimum): still too few
    Assert.Equal("im2col + GEMM", (planOf "input 14x14x56\nconv 64 7x7" 4).Lowering)

[<Fact>]
let ``Winograd's chunks: 7x7 runs in chunks of images within 2M values, 3x3 takes the whole batch`` () =
    withoutFft <| fun () ->
    let seven = planOf "input 14x14x64\nconv 64 7x7" 256
    Assert.InRange(seven.ImagesPerChunk, 2, 255)
    Assert.Equal(256, (planOf "input 14x14x64\nconv 64 3x3" 256).ImagesPerChunk)

[<Fact>]
let ``shifted GEMM: stride 1, at least 16 channels, and a padded grid at most a fifth larger than the output`` () =
    // (the direct path off: these few-filter shapes are within its rule, which comes first)
    withDirectLimit 0 <| fun () ->
    // 16 channels and 8 filters (C x F below Winograd's minimum), 3x3 'same' on 32x32:
    // 5 x 34 x 34 = 5,780 <= 6 x 32 x 32 = 6,144
    Assert.Equal("shifted GEMM", (planOf "input 32x32x16\nconv 8 3x3 same" 2).Lowering)
    Assert.Equal("im2col + GEMM", (planOf "input 32x32x15\nconv 8 3x3 same" 2).Lowering)
    // on 10x10: 5 x 12 x 12 = 720 > 600 (the padding's share is too large)
    Assert.Equal("im2col + GEMM", (planOf "input 10x10x16\nconv 8 3x3 same" 2).Lowering)
    // the edge: 21x21 gives 5 x 23 x 23 = 2,645 <= 6 x 21 x 21 = 2,646; 20x20 gives 2,420 > 2,400
    Assert.Equal("shifted GEMM", (planOf "input 21x21x16\nconv 8 3x3 same" 2).Lowering)
    Assert.Equal("im2col + GEMM", (planOf "input 20x20x16\nconv 8 3x3 same" 2).Lowering)
    Assert.Equal("shifted GEMM", (planOf "input 21x22x16\nconv 8 3x3 same" 2).Lowering)
    Assert.Equal("im2col + GEMM", (planOf "input 21x20x16\nconv 8 3x3 same" 2).Lowering)
    // a 5x5 window (25 shifted products) is not worth it whatever the grid
    Assert.Equal("im2col + GEMM", (planOf "input 64x64x16\nconv 8 5x5 same" 2).Lowering)
    // stride 2 or dilation 2 has no shifted form
    Assert.Equal("im2col + GEMM", (planOf "input 32x32x16\nconv 8 3x3 s2 same" 2).Lowering)
    Assert.Equal("im2col + GEMM", (planOf "input 32x32x16\nconv 8 3x3 d2 same" 2).Lowering)

[<Fact>]
let ``past the private limit the columns run in chunks of whole images through the shared buffer`` () =
    let text = "input 20x20x16\nconv 8 5x5"
    // 16 x 16 outputs x 400 values per window: 102,400 per image
    let whole = planOf text 8
    Assert.Equal("im2col + GEMM", whole.Lowering)
    Assert.Equal((false, 8, 8L * 102_400L), (whole.Shared, whole.ImagesPerChunk, whole.Elements))
    // a limit of exactly the batch's columns keeps them private; one value less shares them
    Assert.False((withSettings (8L * 102_400L) (fun () -> planOf text 8)).Shared)
    let chunked = withSettings (8L * 102_400L - 1L) (fun () -> planOf text 8)
    Assert.Equal("im2col + GEMM in chunks", chunked.Lowering)
    let images = int (min 8L (ColumnPlan.ChunkElements / 102_400L))
    Assert.Equal((true, images, int64 images * 102_400L), (chunked.Shared, chunked.ImagesPerChunk, chunked.Elements))

[<Fact>]
let ``only a 1x1, stride-1, unpadded window reads its input as it is`` () =
    Assert.Equal("GEMM (1x1)", (planOf "input 6x6x4\nconv 8 1x1" 2).Lowering)
    for text in [ "conv 8 1x3"; "conv 8 3x1"; "conv 8 1x1 s2"; "conv 8 1x1 s1x2"; "conv 8 1x1 p1"; "conv 8 1x1 p0x1" ] do
        Assert.False(ColumnPlan.IsIdentity(windowOf text), text)

[<Fact>]
let ``past the private limit no lowering keeps a buffer of its own: direct, Winograd, FFT and shifted shapes take chunked columns`` () =
    for text in [ "input 10x10x3\nconv 8 5x5"; "input 14x14x64\nconv 64 3x3"; "input 22x22x32\nconv 64 7x7"; "input 32x32x16\nconv 8 3x3 same" ] do
        let plan = withSettings 1000L (fun () -> planOf text 4)
        Assert.Equal("im2col + GEMM in chunks", plan.Lowering)

[<Fact>]
let ``a forced Winograd tile applies only where the window has it`` () =
    withoutFft <| fun () ->
    let saved = ColumnPlan.WinogradTileChoice
    try
        ColumnPlan.WinogradTileChoice <- 4
        Assert.Equal("Winograd F(4x4,3x3)", (planOf "input 14x14x64\nconv 64 3x3" 4).Lowering)
        // 7x7 has only F(2x2, 7x7)
        Assert.Equal("Winograd F(2x2,7x7)", (planOf "input 14x14x64\nconv 64 7x7" 4).Lowering)
        ColumnPlan.WinogradTileChoice <- 2
        Assert.Equal("Winograd F(2x2,3x3)", (planOf "input 14x14x64\nconv 64 3x3" 4).Lowering)
    finally ColumnPlan.WinogradTileChoice <- saved

[<Fact>]
let ``a shifted GEMM needs stride 1 and dilation 1 on both axes`` () =
    Assert.True(ShiftedGemm.Applies(windowOf "conv 8 3x3 same"))
    for text in [ "conv 8 3x3 s1x2"; "conv 8 3x3 s2x1"; "conv 8 3x3 d1x2"; "conv 8 3x3 d2x1" ] do
        Assert.False(ShiftedGemm.Applies(windowOf text), text)

[<Fact>]
let ``FFT: stride 1, a window of at least 25 values, C x F at least 2048, 3x fewer multiplications, a grid within 64`` () =
    // the seed Fashion-MNIST model's second layer, on a 24x24 grid: 49 x 16 x 16 = 12,544 against 4 x 24 x 13 = 1,248 (10x)
    Assert.Equal("FFT 24x24", (planOf "input 22x22x32\nconv 64 7x7" 32).Lowering)
    // 5x5 (25 values) on 16x16: 25 x 144 = 3,600 against 4 x 16 x 9 = 576 (6.3x)
    Assert.Equal("FFT 16x16", (planOf "input 16x16x32\nconv 64 5x5" 32).Lowering)
    // 3x5 (15 values): below the window minimum
    Assert.Equal("im2col + GEMM", (planOf "input 16x16x32\nconv 64 3x5" 32).Lowering)
    // C x F = 32 x 56 = 1,792 < 2,048
    Assert.Equal("im2col + GEMM", (planOf "input 22x22x32\nconv 56 7x7" 32).Lowering)
    // stride 2
    Assert.Equal("im2col + GEMM", (planOf "input 22x22x32\nconv 64 7x7 s2" 32).Lowering)
    // channels not in whole vectors
    Assert.Equal("im2col + GEMM", (planOf "input 22x22x36\nconv 64 7x7" 32).Lowering)
    // the saving's edge: 10x10 -> 4x4 on a 10x10 grid is 49 x 16 = 784 against 4 x 10 x 6 = 240 (3.27x);
    // 9x9 -> 3x3 on a 9x9 grid 441 against 180 (2.45x)
    Assert.Equal("FFT 10x10", (planOf "input 10x10x128\nconv 256 7x7" 128).Lowering)
    Assert.Equal("im2col + GEMM", (planOf "input 9x9x128\nconv 256 7x7" 128).Lowering)
    // a side of 65 needs a 72 grid: past the largest
    Assert.Equal("im2col + GEMM", (planOf "input 65x65x32\nconv 64 7x7" 4).Lowering)
    Assert.Equal("FFT 64x64", (planOf "input 64x64x32\nconv 64 7x7" 4).Lowering)

[<Fact>]
let ``FFT: the images pay for the weights' transforms, Saving x B (C + F) at least 2 C F`` () =
    // 128 -> 256 on 10x10: 3.267 x B x 384 >= 65,536 from batch 53
    Assert.Equal("FFT 10x10", (planOf "input 10x10x128\nconv 256 7x7" 53).Lowering)
    Assert.Equal("im2col + GEMM", (planOf "input 10x10x128\nconv 256 7x7" 52).Lowering)
    // 32 -> 64 on 22x22: 10.05 x B x 96 >= 4,096 from batch 5
    Assert.Equal("FFT 24x24", (planOf "input 22x22x32\nconv 64 7x7" 5).Lowering)
    Assert.Equal("im2col + GEMM", (planOf "input 22x22x32\nconv 64 7x7" 4).Lowering)
