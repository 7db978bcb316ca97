module CnnDsl.Runtime.Tests.Conv2dTests

open System
open Xunit
open FsCheck.Xunit
open CnnDsl.Graph
open CnnDsl.Runtime
open CnnDsl.Runtime.Layers
open CnnDsl.Runtime.Tests.TestSupport
open CnnDsl.Runtime.Tests.GradientCheck

let private activations = [| "linear"; "relu"; "tanh"; "sigmoid"; "elu"; "leakyrelu 0.2" |]

/// A valid conv from arbitrary (shrinkable) integers. Each axis has its own kernel (1-4), stride
/// (1-3, so kernels smaller than strides too), dilation (1-2) and explicit padding (0-2); the
/// input is made at least as large as the dilated kernel so that every generated case has an output.
let private convModel (k0: byte) (s0: byte) (p0: byte) (d0: byte) (extra: byte) (c0: byte) (f0: byte) (mode: byte) (act: byte) =
    let kh, kw = 1 + int k0 % 4, 1 + int k0 / 4 % 4
    let sh, sw = 1 + int s0 % 3, 1 + int s0 / 3 % 3
    let dh, dw = 1 + int d0 % 2, 1 + int d0 / 2 % 2
    let h, w = dh * (kh - 1) + 1 + int extra % 5, dw * (kw - 1) + 1 + int extra / 5 % 5
    let c, f = 1 + int c0 % 3, 1 + int f0 % 4
    let padding = match int mode % 3 with 0 -> "valid" | 1 -> "same" | _ -> sprintf "p%dx%d" (int p0 % 3) (int p0 / 3 % 3)
    sprintf "input %dx%dx%d\nconv %d %dx%d s%dx%d %s d%dx%d %s" h w c f kh kw sh sw padding dh dw activations[int act % activations.Length]

// These run the im2col path (small convolutions would otherwise run direct: DirectConvTests).
[<Cases 100>]
let ``conv gradients match finite differences`` k s p d extra c f mode act (b0: byte) =
    withDirectLimit 0 (fun () -> assertGradients (convModel k s p d extra c f mode act) (1 + int b0 % 2))

[<Cases 100>]
let ``a 1x1 stride-1 conv (no im2col) and a conv without bias have right gradients`` (c0: byte) (f0: byte) =
    assertGradients (sprintf "input 4x5x%d\nconv %d 1x1 relu\nconv 2 3x3 same nobias" (1 + int c0 % 3) (1 + int f0 % 4)) 2

[<Cases 100>]
let ``fixed kernels pass the gradient to their input`` (which: byte) (mode: byte) =
    let name = CnnDsl.Dsl.Kernels.names[int which % CnnDsl.Dsl.Kernels.names.Length]
    assertGradients (sprintf "input 7x6x2\nconv 2 1x1\n%s %s" name (if mode % 2uy = 0uy then "same" else "s2")) 2

/// Direct convolution with explicit loops, the definition the GEMM form must equal.
let private direct (x: float[]) (h, w, c) (kernel: float[]) (bias: float[]) (win: Window) (oh, ow, f) =
    Array.init (oh * ow * f) (fun o ->
        let oy, ox, j = o / (ow * f), (o / f) % ow, o % f
        let mutable sum = if bias.Length > 0 then bias[j] else 0.0
        for ky in 0 .. win.KernelH - 1 do
            for kx in 0 .. win.KernelW - 1 do
                let iy = oy * win.StrideH - win.Padding.Top + ky * win.DilationH
                let ix = ox * win.StrideW - win.Padding.Left + kx * win.DilationW
                if iy >= 0 && iy < h && ix >= 0 && ix < w then
                    for ch in 0 .. c - 1 do
                        sum <- sum + x[(iy * w + ix) * c + ch] * kernel[((ky * win.KernelW + kx) * c + ch) * f + j]
        sum)

[<Cases 100>]
let ``conv forward equals the direct convolution`` k s p d extra c f mode (seed: int) =
    let text = (convModel k s p d extra c f mode 0uy)
    withDirectLimit 0 <| fun () ->
    onEveryBackend (fun () ->
        let net = network text 1
        let rng = Random seed
        let input = randomArray rng net.Input.Length
        copyFrom input net.Input
        let conv = net.Layers[1] :?> Conv2d<float>
        randomArray rng conv.Bias.Value.Length |> fun b -> b.CopyTo(conv.Bias.Value, 0)
        net.Forward(false)
        let node = conv.Node
        let win = match node.Kind with LayerKind.Conv c -> c.Window | _ -> failwith "not a conv"
        let struct (h, w, c) = Shapes.Hwc node.InputShapes.Head
        let struct (oh, ow, f) = Shapes.Hwc node.OutputShape
        let expected = direct input (h, w, c) conv.Kernel.Value conv.Bias.Value win (oh, ow, f)
        assertClose 1e-9 expected (net.Output.ToArray()))
    true

// ---- the seeds' worked examples (values computed correctly; the slides slip in places) ----

let private seed002Image = [| 1.;0.;1.;0.;1.; 1.;0.;0.;1.;1.; 0.;1.;1.;0.;0.; 1.;0.;0.;1.;0.; 0.;0.;1.;1.;0. |]
let private seed002Kernel = "kernel [[0,1,0],[1,0,-1],[0,1,0]]"

[<Fact>]
let ``seed 002: the 5x5 image and kernel at stride 1, stride 2 and padding 1`` () =
    onEveryBackend (fun () ->
        assertClose 1e-12 [| 2.;1.;-1.; -1.;1.;3.; 2.;1.;1. |] (forward ("input 5x5x1\n" + seed002Kernel) seed002Image)
        assertClose 1e-12 [| 2.;-1.; 2.;1. |] (forward ("input 5x5x1\n" + seed002Kernel + " s2") seed002Image)
        assertClose 1e-12
            [| 1.;0.;0.;1.;1.; 1.;2.;1.;-1.;2.; 1.;-1.;1.;3.;1.; 0.;2.;1.;1.;1.; 1.;-1.;-1.;2.;1. |]
            (forward ("input 5x5x1\n" + seed002Kernel + " p1") seed002Image))

[<Fact>]
let ``seed 003: vertical and horizontal edges on 6x6 images`` () =
    onEveryBackend (fun () ->
        let vertical = Array.init 36 (fun i -> if i % 6 < 3 then 10. else 0.)
        assertClose 1e-12 (Array.init 16 (fun i -> if i % 4 = 1 || i % 4 = 2 then 30. else 0.)) (forward "input 6x6x1\nvedge" vertical)
        let horizontal = Array.init 36 (fun i -> if (i / 6 < 3) = (i % 6 < 3) then 10. else 0.)
        assertClose 1e-12 [| 0.;0.;0.;0.; 30.;10.;-10.;-30.; 30.;10.;-10.;-30.; 0.;0.;0.;0. |] (forward "input 6x6x1\nhedge" horizontal))

[<Fact>]
let ``seed 000: conv backward with relu and MSE against ones`` () =
    onEveryBackend (fun () ->
        let net = network "input 3x3x1\nconv 1 2x2 relu\ntrain\n loss mse" 1
        copyFrom [| 1.;1.;2.; 1.;2.;1.; 2.;1.;1. |] net.Input
        let conv = net.Layers[1] :?> Conv2d<float>
        [| 0.6779961; -0.3282364; 0.61954254; -0.02001727 |].CopyTo(conv.Kernel.Value, 0)
        net.Forward(true)
        assertClose 1e-6 [| 0.9292677; 1.2405912; 1.2405912; 1.6272811 |] (net.Output.ToArray())
        let loss = Losses.Compute(Loss.MeanSquaredError, net, ReadOnlySpan [| 1.; 1.; 1.; 1. |])
        Assert.Equal(0.12856321, loss, 6)
        net.Backward()
        assertClose 1e-6 [| 0.83250606; 0.75945675; 0.75945675; 0.4834994 |] conv.Kernel.Gradient
        // the seed prints Keras's float32 result
        Assert.InRange(conv.Bias.Gradient[0], 0.5188656 - 2e-6, 0.5188656 + 2e-6))

/// One forward and backward pass of a batch of 3 random inputs: the outputs, the parameters'
/// gradients, the input's gradient and the network.
let private step (text: string) (seed: int) =
    let net = network text 3
    let rng = Random seed
    copyFrom (randomArray rng net.Input.Length) net.Input
    net.Forward(true)
    Losses.CrossEntropy(net, ReadOnlySpan [| 0; 1; 1 |]) |> ignore
    net.Backward()
    net.Output.ToArray(), (net.Parameters |> Seq.collect (fun p -> p.Gradient) |> Array.ofSeq), net.InputGradient.ToArray(), net

/// The same batch through `step`'s network again: its outputs and parameters' gradients (nothing
/// of the first pass may remain in them).
let private stepAgain (net: Network<float>) =
    net.Forward(true)
    Losses.CrossEntropy(net, ReadOnlySpan [| 0; 1; 1 |]) |> ignore
    net.Backward()
    net.Output.ToArray(), (net.Parameters |> Seq.collect (fun p -> p.Gradient) |> Array.ofSeq)

/// Runs `f` with column limits so small that every convolution with columns is chunked through
/// the network's shared buffers, `elements` column values per chunk (at least one image).
let private chunked (elements: int64) (f: unit -> 'a) : 'a =
    let limit, chunk = ColumnPlan.PrivateLimit, ColumnPlan.ChunkElements
    ColumnPlan.PrivateLimit <- 1L
    ColumnPlan.ChunkElements <- elements
    try f () finally
        ColumnPlan.PrivateLimit <- limit
        ColumnPlan.ChunkElements <- chunk

[<Cases 100>]
let ``chunked convolutions through shared columns have right gradients`` k s p d extra c f mode act =
    // two stacked convs share the buffers, so the first one's columns must be rebuilt in backward
    chunked 1L (fun () -> withDirectLimit 0 (fun () -> assertGradients (convModel k s p d extra c f mode act + "\nconv 2 2x2 same") 3))

/// Runs `f` with the layers' own columns written, multiplied and backpropagated one image at a time.
let private ownChunks (f: unit -> 'a) : 'a =
    let cache, rows = ColumnPlan.CacheElements, ColumnPlan.MinimumRows
    ColumnPlan.CacheElements <- 1L
    ColumnPlan.MinimumRows <- 1
    try f () finally
        ColumnPlan.CacheElements <- cache
        ColumnPlan.MinimumRows <- rows

[<Cases 100>]
let ``convolutions going by chunks of their own columns have right gradients`` k s p d extra c f mode act =
    ownChunks (fun () -> withDirectLimit 0 (fun () -> assertGradients (convModel k s p d extra c f mode act + "\nconv 2 2x2 same") 3))

[<Fact>]
let ``chunked and whole-batch columns give the same outputs and gradients, and the plan counts the shared buffers once`` () =
    let text = "input 9x8x3\nconv 4 3x3 same relu\nconv 5 3x3 s2 relu\nconv 3 1x1\nglobalavgpool\ndense 2 softmax"
    // im2col for both 3x3 convs (they would run direct); batch 3 (`step`)
    withDirectLimit 0 <| fun () ->
    let run () = let o, g, _, net = step text 4 in o, g, net
    let outputs, gradients, whole = run ()
    Assert.Equal(0L, whole.SharedWorkspaceBytes)
    // columns per image: 9x8 outputs x 3x3x3 = 1944 for the first conv, 4x3 x 3x3x4 = 432 for the
    // second; chunks of 864 values hold one image of the first (three chunks) and two of the second (2 + 1)
    chunked 864L (fun () ->
        let outputs2, gradients2, net = run ()
        let plans = [ for l in net.Layers do if l.Node.Kind.IsConv && not (ColumnPlan.IsIdentity (match l.Node.Kind with LayerKind.Conv c -> c.Window | _ -> failwith "conv")) then yield ColumnPlan.For(l.Node, 3) ]
        Assert.Equal<(bool * bool * int) list>([ true, false, 1; true, false, 2 ], [ for p in plans -> p.Shared, p.Direct, p.ImagesPerChunk ])
        assertClose 1e-12 outputs outputs2
        assertClose 1e-12 gradients gradients2
        let plan = MemoryPlan.Estimate(graph text, 3, sizeof<float>)
        Assert.True(net.SharedWorkspaceBytes > 0L)
        Assert.Equal((net.Layers |> Seq.sumBy (fun l -> l.WorkspaceBytes)) + net.SharedWorkspaceBytes, plan.Workspace))

[<Fact>]
let ``chunked columns split over two threads, and a second pass, give the whole batch's values`` () =
    let text = "input 9x8x3\nconv 4 3x3 same relu\nconv 5 3x3 s2 relu\nconv 3 1x1\nglobalavgpool\ndense 2 softmax"
    withDirectLimit 0 <| fun () ->
    let outputs, gradients, inputGradient, _ = step text 4
    // chunks of two images of the second conv: on two threads each takes one, at an offset
    chunked 864L (fun () ->
        onTwoThreads (fun () ->
            let outputs2, gradients2, inputGradient2, net = step text 4
            assertClose 1e-12 outputs outputs2
            assertClose 1e-12 gradients gradients2
            assertClose 1e-12 inputGradient inputGradient2
            // the same batch again: the first pass's gradients must not remain in the second's
            assertClose 1e-12 gradients (snd (stepAgain net))))

/// Runs `f` with im2col forward fused on two threads (im2col, product, bias and ReLU), or not; one
/// piece a thread (the batch of 3 as 2 + 1 images) and groups of one image, so that a piece's
/// groups start at images other than its first.
let private fusedColumns (on: bool) (f: unit -> 'a) : 'a =
    let fused, rows, pieces = ColumnPlan.ColumnsFused, ColumnPlan.ColumnsFusedMinimumRows, BatchParallel.PiecesPerThread
    ColumnPlan.ColumnsFused <- on
    ColumnPlan.ColumnsFusedMinimumRows <- 1
    BatchParallel.PiecesPerThread <- 1
    try ownChunks (fun () -> onTwoThreads f) finally
        ColumnPlan.ColumnsFused <- fused
        ColumnPlan.ColumnsFusedMinimumRows <- rows
        BatchParallel.PiecesPerThread <- pieces

[<Cases 100>]
let ``im2col forward fused per layer thread gives the unfused outputs and gradients`` k s p d extra c f mode act =
    // a ReLU conv with bias, whose bias the fused pass adds, then one without bias
    let text = convModel k s p d extra c f mode act + "\nconv 8 2x2 same relu\nconv 3 2x2 same nobias\nglobalavgpool\ndense 2 softmax"
    withDirectLimit 0 <| fun () ->
    let outputs, gradients, inputGradient, _ = fusedColumns false (fun () -> step text 5)
    let outputs2, gradients2, inputGradient2, _ = fusedColumns true (fun () -> step text 5)
    assertClose 1e-12 outputs outputs2
    assertClose 1e-12 gradients gradients2
    assertClose 1e-12 inputGradient inputGradient2
    true

/// Fixed kernels apply to each input channel: channel c's kernel j is output channel c n + j.
[<Fact>]
let ``sobel on two channels gives x then y for each channel, channel by channel`` () =
    let net = network "input 3x3x2\nsobel" 1
    // channel 0 rises by 1 to the right and 3 downward; channel 1 by 10 to the right only
    copyFrom [| for y in 0 .. 2 do for x in 0 .. 2 do yield float (3 * y + x); yield float (10 * x) |] net.Input
    net.Forward(false)
    // sobelx of channel 0: 1 + 2 + 1 times the rise of 2 = 8; sobely: (1 + 2 + 1) x 6 = 24;
    // channel 1: 4 x 20 = 80 and 0
    assertClose 1e-12 [| 8.; 24.; 80.; 0. |] (net.Output.ToArray())

/// Runs `f` with every stride-1 convolution lowered to shifted GEMMs (ShiftedGemm), whatever its channels.
let private shifted (f: unit -> 'a) : 'a =
    let minimum = ColumnPlan.ShiftedMinChannels
    ColumnPlan.ShiftedMinChannels <- 1
    ColumnPlan.ShiftedEverywhere <- true
    try f () finally
        ColumnPlan.ShiftedMinChannels <- minimum
        ColumnPlan.ShiftedEverywhere <- false

[<Cases 100>]
let ``shifted-GEMM convolutions have right gradients`` k p extra c f mode act (b0: byte) =
    // stride 1 and no dilation: the cases the shifted path takes
    shifted (fun () -> assertGradients (convModel k 0uy p 0uy extra c f mode act + "\nconv 2 3x3 same") (1 + int b0 % 2))

[<Fact>]
let ``shifted GEMMs and im2col give the same outputs and gradients`` () =
    let text = "input 9x8x3\nconv 4 3x3 same relu\nconv 5 2x3 p1 relu\nconv 3 5x5 valid\nglobalavgpool\ndense 2 softmax"
    let run () = step text 8
    let outputs, gradients, inputGradient, _ = run ()
    shifted (fun () ->
        let outputs2, gradients2, inputGradient2, net = run ()
        Assert.Equal(3, net.Layers |> Seq.filter (fun l -> l.Node.Kind.IsConv && (ColumnPlan.For(l.Node, 3)).Shifted) |> Seq.length)
        assertClose 1e-12 outputs outputs2
        assertClose 1e-12 gradients gradients2
        assertClose 1e-12 inputGradient inputGradient2
        let plan = MemoryPlan.Estimate(graph text, 3, sizeof<float>)
        Assert.Equal((net.Layers |> Seq.sumBy (fun l -> l.WorkspaceBytes)) + net.SharedWorkspaceBytes, plan.Workspace))

[<Fact>]
let ``a shifted-GEMM convolution gives the same outputs and gradients on a second pass`` () =
    // its first kernel cell's product overwrites the extended output, the others add to it
    shifted (fun () ->
        let text = "input 9x8x3\nconv 4 3x3 same relu\nconv 5 2x3 p1 relu\nglobalavgpool\ndense 2 softmax"
        let outputs, gradients, _, net = step text 8
        let outputs2, gradients2 = stepAgain net
        assertClose 1e-12 outputs outputs2
        assertClose 1e-12 gradients gradients2)
