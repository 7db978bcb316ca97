module CnnDsl.Runtime.Tests.GroupedConv2dTests

open System
open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open CnnDsl.Runtime
open CnnDsl.Runtime.Layers
open CnnDsl.Runtime.Tests.TestSupport
open CnnDsl.Runtime.Tests.GradientCheck

/// Grouped and depthwise convolutions of every shape the language allows: groups 1-4 of 1-3
/// channels and 1-3 filters each, non-square kernels, strides, dilations and paddings.
let private groupedModel : Gen<string> =
    gen {
        let! groups = Gen.choose (1, 4)
        let! cg = Gen.choose (1, 3)
        let! fg = Gen.choose (1, 3)
        let! kh = Gen.choose (1, 3)
        let! kw = Gen.choose (1, 3)
        let! sh = Gen.choose (1, 2)
        let! sw = Gen.choose (1, 3)
        let! dh = Gen.choose (1, 2)
        let! padding = Gen.elements [ ""; "same"; "p1"; "p0x2" ]
        let! extra = Gen.choose (0, 3)
        let! act = Gen.elements [ ""; "relu"; "tanh" ]
        let! depthwise = Gen.elements [ true; false ]
        let h, w = dh * (kh - 1) + 1 + extra, kw + 2
        let layer =
            if depthwise then sprintf "dwconv %dx%d s%dx%d d%dx1 %s %s" kh kw sh sw dh padding act
            else sprintf "conv %d %dx%d groups %d s%dx%d d%dx1 %s %s" (groups * fg) kh kw groups sh sw dh padding act
        return sprintf "input %dx%dx%d\n%s" h w (groups * cg) layer
    }

[<Cases 100>]
let ``grouped and depthwise convolution gradients match finite differences`` () =
    Prop.forAll (Arb.fromGen groupedModel) (fun text -> assertGradients text 2)

/// An independent reference: a grouped convolution is an ordinary one whose kernel is zero
/// between groups (the ordinary one runs im2col + GEMM, a different code path).
let private equalsBlockDiagonal (text: string) =
    let grouped = network text 2
    let layer = grouped.Layers[1] :?> GroupedConv2d<double>
    let node = layer.Node
    let conv = match node.Kind with CnnDsl.Graph.LayerKind.Conv c -> c | _ -> failwith "not a conv"
    let c = CnnDsl.Graph.Cost.channels node.InputShapes.Head
    let full = { node with Kind = CnnDsl.Graph.LayerKind.Conv { conv with Groups = 1 } }
    let plain = Network<double>({ Nodes = [ grouped.Graph.Nodes.Head; full ]; Training = grouped.Graph.Training }, 2, 1, true)
    let dense = plain.Layers[1] :?> Conv2d<double>
    let kh, kw, f, groups = conv.Window.KernelH, conv.Window.KernelW, conv.Filters, conv.Groups
    let cg, fg = c / groups, f / groups
    let rng = Random 3
    let compact = layer.Kernel.Value
    for i in 0 .. compact.Length - 1 do compact[i] <- rng.NextDouble() - 0.5
    match Option.ofObj layer.Bias, Option.ofObj dense.Bias with
    | Some b, Some d ->
        for i in 0 .. b.Value.Length - 1 do b.Value[i] <- rng.NextDouble()
        b.Value.CopyTo(d.Value, 0)
    | _ -> ()
    let expanded = dense.Kernel.Value
    Array.Clear expanded
    for cell in 0 .. kh * kw - 1 do
        for o in 0 .. f - 1 do
            let g = o / fg
            for i in 0 .. cg - 1 do
                expanded[(cell * c + g * cg + i) * f + o] <- compact[(cell * cg + i) * f + o]
    let input = randomArray rng grouped.Input.Length
    copyFrom input grouped.Input
    copyFrom input plain.Input
    grouped.Forward(false)
    plain.Forward(false)
    assertClose 1e-12 (plain.Output.ToArray()) (grouped.Output.ToArray())
    true

[<Cases 60>]
let ``a grouped convolution equals the ordinary one with a block-diagonal kernel`` () =
    // One group of channels is an ordinary convolution (Conv2d), compared elsewhere.
    let model = groupedModel |> Gen.filter (fun text -> (network text 1).Layers[1] :? GroupedConv2d<double>)
    Prop.forAll (Arb.fromGen model) equalsBlockDiagonal

/// The generator's groups have at most 3 filters, fewer than a vector holds: groups of 8 and 12
/// filters (and 16 depthwise channels) take the vector loops of the products too.
[<Fact>]
let ``groups as wide as a vector equal the block-diagonal convolution and have right gradients`` () =
    for text in [ "input 5x6x16\nconv 16 3x3 groups 2 same"; "input 5x6x24\nconv 24 2x3 groups 2 s2"; "input 5x6x16\ndwconv 3x3 same" ] do
        Assert.True(equalsBlockDiagonal text, text)
        assertGradients text 2

[<Fact>]
let ``a depthwise kernel filters each channel with its own kernel`` () =
    // Two channels, 2x2 kernels [[1 0] [0 1]] and [[0 1] [1 0]]: sums of the diagonals.
    let net = network "input 3x3x2\ndwconv 2x2 nobias" 1
    let k = (net.Layers[1] :?> GroupedConv2d<double>).Kernel.Value
    copyFrom [| 1.; 0.; 0.; 1.; 0.; 1.; 1.; 0. |] (Span k) // HWIO with I = 1, O = 2: (y, x, channel)
    copyFrom [| for i in 0 .. 8 do yield float i; yield float (10 * i) |] net.Input
    net.Forward(false)
    // channel 0: x[y][x] + x[y+1][x+1]; channel 1: 10 * (x[y][x+1] + x[y+1][x])
    assertClose 1e-12 [| 4.; 40.; 6.; 60.; 10.; 100.; 12.; 120. |] (net.Output.ToArray())

/// One forward and backward pass with fixed inputs and output gradient: the outputs and the
/// parameters' gradients.
let private pass (net: Network<double>) =
    let rng = Random 5
    copyFrom (randomArray rng net.Input.Length) net.Input
    net.Forward(true)
    copyFrom (randomArray rng net.OutputGradient.Length) net.OutputGradient
    net.Backward()
    net.Output.ToArray(), [ for p in net.Parameters -> Array.copy p.Gradient ]

[<Fact>]
let ``a grouped convolution names its tensors, has no bias under nobias, and computes its weights' gradient without an input gradient, the same on every pass`` () =
    for text, bias in [ "input 5x6x4\nconv 6 3x3 groups 2 relu", true; "input 5x6x4\nconv 6 3x3 groups 2 nobias relu", false; "input 5x6x4\ndwconv 3x3 same nobias", false ] do
        let g = graph text
        // the first layer: nobody asks for its input's gradient
        let net = Network<double>(g, 2, 1, false)
        Assert.IsType<GroupedConv2d<double>>(net.Layers[1]) |> ignore
        let name = net.Layers[1].Node.Name
        Assert.Equal<string list>((name + "/kernel") :: (if bias then [ name + "/bias" ] else []), [ for p in net.Parameters -> p.Name ])
        let output, gradients = pass net
        // a second pass with the same values gives the same outputs and gradients (nothing accumulates)
        let output2, gradients2 = pass net
        Assert.Equal<float[]>(output, output2)
        Assert.Equal<float[] list>(gradients, gradients2)
        // and the same as a network asked for its input gradient too
        let _, withInput = pass (Network<double>(g, 2, 1, true))
        Assert.Equal<float[] list>(withInput, gradients)
