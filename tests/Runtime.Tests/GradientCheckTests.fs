module CnnDsl.Runtime.Tests.GradientCheckTests

open Xunit
open CnnDsl.Runtime
open CnnDsl.Runtime.Tests.TestSupport

let private model = "input 6x6x2\nconv 3 3x3 relu\nmaxpool 2\nflatten\ndense 4 tanh\ndense 2"

[<Fact>]
let ``a correct network passes, and every layer's output and parameters are checked`` () =
    let net = Network<double>(graph model, 2, 1, true)
    let errors = GradientCheck.Run(net, 3, 16)
    Assert.All(errors, fun e -> Assert.True(e.Worst < GradientCheck.Tolerance, sprintf "%A" e))
    let names = errors |> Seq.map (fun e -> e.Layer, e.Tensor) |> Set.ofSeq
    Assert.Contains(("input_layer", "input"), names)
    Assert.Contains(("max_pooling2d", "output"), names)
    Assert.Contains(("conv2d", "conv2d/kernel"), names)
    Assert.Null(GradientCheck.Culprit(net, errors))

/// Breaks one layer's backward pass on purpose: after it runs, the gradient it passed to its
/// input is scaled, as an off-by-one or a wrong factor would.
let private broken (layer: string) =
    let net = Network<double>(graph model, 2, 1, true)
    let index = net.Layers |> Seq.findIndex (fun l -> l.Node.Name = layer)
    let faulty = System.Action<int, bool>(fun i after ->
        if after && i = index then
            let g = net.Layers[i].Inputs[0].Gradient
            for j in 0 .. g.Length - 1 do g[j] <- g[j] * 1.5)
    net, faulty

[<Theory>]
[<InlineData("max_pooling2d")>]
[<InlineData("dense")>]
let ``a broken backward pass is caught and the layer is named`` (layer: string) =
    let net, fault = broken layer
    let errors = GradientCheck.RunWithFault(net, 3, 16, fault)
    Assert.Contains(errors, fun e -> e.Worst > GradientCheck.Tolerance)
    Assert.Equal(layer, GradientCheck.Culprit(net, errors))

/// A NaN compares false with everything, so a check written as "error > tolerance" would pass
/// it: a backward pass that yields NaN must be reported as the worst error there is.
[<Fact>]
let ``a NaN gradient is caught, not passed`` () =
    let net = Network<double>(graph model, 2, 1, true)
    let index = net.Layers |> Seq.findIndex (fun l -> l.Node.Name = "dense")
    let fault = System.Action<int, bool>(fun i after ->
        if after && i = index then
            let g = net.Layers[i].Inputs[0].Gradient
            for j in 0 .. g.Length - 1 do g[j] <- nan)
    let errors = GradientCheck.RunWithFault(net, 3, 16, fault)
    Assert.Contains(errors, fun e -> e.Worst = infinity)
    Assert.Equal("dense", GradientCheck.Culprit(net, errors))
