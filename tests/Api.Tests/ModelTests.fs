module CnnDsl.Api.Tests.ModelTests

open System
open System.IO
open Xunit
open CnnDsl
open CnnDsl.Api.Tests.TestSupport

[<Fact>]
let ``Load checks models/lenet.cnn and gives its shapes, names and classes`` () =
    let model = Model.Load lenetPath
    Assert.Equal("lenet", model.Name)
    Assert.Equal(lenetPath, model.FilePath)
    Assert.Equal("28x28x1", string model.InputShape)
    Assert.Equal(Nullable 28, model.InputShape.Height)
    Assert.Equal(Nullable 784L, model.InputShape.ElementCount)
    Assert.Equal("10", string model.OutputShape)
    Assert.True(model.OutputShape.IsVector)
    Assert.False(model.IsDynamic)
    Assert.Equal("fashion-mnist", model.DataName)
    Assert.Equal("Ankle boot", model.ClassNames[9])
    Assert.Equal<string>([ "input_layer"; "conv2d"; "max_pooling2d"; "conv2d_1"; "max_pooling2d_1"; "flatten"; "dense"; "dense_1"; "dense_2" ], model.LayerNames)
    Assert.Empty(model.Warnings)

/// A model with two mistakes: a kernel larger than its input, and an unknown activation.
let private broken = "input 4x4x1\nconv 2 5x5\ndense 3 sofmax\n"

[<Fact>]
let ``a model that does not check throws a ModelException carrying every diagnostic with its place and hint`` () =
    let e = Assert.Throws<ModelException>(fun () -> Model.Parse(broken, "broken") |> ignore)
    Assert.True(e.Diagnostics.Count >= 2, e.Message)
    for d in e.Diagnostics do
        Assert.True(d.IsError)
        Assert.Equal(DiagnosticSeverity.Error, d.Severity)
        Assert.StartsWith("CNN", d.Code)
        Assert.True(d.Line >= 2 && d.Column >= 1 && d.EndColumn > d.Column, string d)
        // the compiler-style text dsl check prints, with the file name given
        Assert.StartsWith(sprintf "broken:%d:%d: error %s: %s" d.Line d.Column d.Code d.Message, string d)
    // the message is the diagnostics' text: what the CLI prints, no stack trace
    Assert.Equal(String.Join("\n", e.Diagnostics |> Seq.map string), e.Message)
    Assert.Contains("^", e.Message)

[<Fact>]
let ``CheckText and CheckFile return the diagnostics without throwing`` () =
    let bad = Model.CheckText(broken, "broken")
    Assert.False(bad.Succeeded)
    Assert.Null(bad.Model)
    Assert.True(bad.Diagnostics.Count >= 2)
    let good = Model.CheckFile lenetPath
    Assert.True(good.Succeeded)
    Assert.Equal("lenet", (nonNull good.Model).Name)
    Assert.Empty(good.Diagnostics)
    Assert.Equal("", string good)

[<Fact>]
let ``diagnostics are the front end's, in the same order and with the same codes as dsl check`` () =
    let expected =
        match CnnDsl.Dsl.Frontend.compile broken with
        | Error ds -> CnnDsl.Dsl.Diagnostic.sort ds
        | Ok _ -> failwith "the broken model checks"
    let actual = (Model.CheckText(broken, "broken")).Diagnostics
    Assert.Equal<string>(expected |> List.map (fun d -> d.Code), actual |> Seq.map (fun d -> d.Code))
    Assert.Equal<string>(expected |> List.map (fun d -> CnnDsl.Dsl.Diagnostic.render "broken" broken d |> fun s -> s.TrimEnd '\n'), actual |> Seq.map string)
    Assert.Equal<string>(expected |> List.map (fun d -> Option.toObj d.Hint), actual |> Seq.map (fun d -> d.Hint))

[<Fact>]
let ``a file that cannot be read throws a ModelFileException with the CLI's message`` () =
    let missing = Path.Combine(Path.GetTempPath(), "no-such-model.cnn")
    let e = Assert.Throws<ModelFileException>(fun () -> Model.Load missing |> ignore)
    Assert.Equal(sprintf "cannot read '%s': no such file" missing, e.Message)
    Assert.Equal(missing, e.Path)
    let folder = Assert.Throws<ModelFileException>(fun () -> Model.Load(Path.GetTempPath()) |> ignore)
    Assert.Contains("is a folder; give a model file such as models/lenet.cnn", folder.Message)
    let binary = temp "binary"
    File.WriteAllBytes(binary, [| 65uy; 0uy; 66uy |])
    Assert.Contains("is not a text file (byte 1 is NUL)", (Assert.Throws<ModelFileException>(fun () -> Model.CheckFile binary |> ignore)).Message)

[<Fact>]
let ``Summary gives Keras's numbers as data, and the printed table`` () =
    let model = Model.Load lenetPath
    let summary = model.Summary()
    Assert.Equal(61706L, summary.TotalParameters)
    Assert.Equal(61706L, summary.TrainableParameters)
    Assert.Equal(0L, summary.NonTrainableParameters)
    Assert.Equal(9, summary.Layers.Count)
    let conv = summary.Layers[1]
    Assert.Equal("conv2d", conv.Name)
    Assert.Equal("Conv2D", conv.Kind)
    Assert.Equal("relu", conv.Activation)
    Assert.Equal(4, conv.Line)
    Assert.Equal("28x28x6", string conv.OutputShape)
    Assert.Equal("(None, 28, 28, 6)", conv.OutputShape.KerasText)
    Assert.Equal(156L, conv.Parameters)
    // 28*28*6 outputs, 5*5*1 multiply-adds each; 4 bytes per value
    Assert.Equal(Nullable(28L * 28L * 6L * 25L), conv.MultiplyAdds)
    Assert.Equal(Nullable(28L * 28L * 6L * 4L), conv.ActivationBytes)
    Assert.Equal<string>([ "conv2d" ], summary.Layers[2].Inputs)
    Assert.Equal(Nullable(summary.Layers |> Seq.sumBy (fun l -> l.MultiplyAdds.Value)), summary.MultiplyAdds)
    let text = string summary
    Assert.StartsWith("Model: \"lenet\"", text)
    Assert.Contains("Total params: 61,706", text)
    Assert.Equal(CnnDsl.Dsl.Summary.render "lenet" (match CnnDsl.Dsl.Frontend.compile model.Source with Ok (g, _) -> g | Error _ -> failwith "lenet"), text)

[<Fact>]
let ``Explain works out each layer's size and parameters with its numbers`` () =
    let model = Model.Load lenetPath
    let layers = model.Explain()
    Assert.Equal(8, layers.Count)
    let conv = layers[0]
    Assert.Equal("conv2d", conv.Name)
    Assert.Equal("28x28x1", string conv.InputShape)
    Assert.Equal("params = (5*5*1 + 1) * 6 = 156", conv.ParameterLine)
    Assert.StartsWith("conv2d (Conv2D, relu), line 4: 28x28x1 -> 28x28x6", conv.Heading)
    Assert.Contains("same padding", conv.SizeLines[0])
    let dense = layers |> Seq.find (fun l -> l.Name = "dense")
    Assert.Equal("params = (400 + 1) * 120 = 48,120", dense.ParameterLine)
    Assert.Contains("conv2d (Conv2D, relu), line 4", model.ExplainText false)
    Assert.StartsWith("| layer | output size | parameters |", model.ExplainText true)

[<Fact>]
let ``TrainingMemory is the memory plan of dsl summary --batch; graphs render as DOT and Mermaid`` () =
    let model = Model.Load lenetPath
    let memory = nonNull (model.TrainingMemory 32)
    Assert.Equal("adam", memory.Optimizer)
    Assert.Equal(memory.Activations + memory.Workspace + memory.Parameters + memory.OptimizerState, memory.Total)
    // parameters and their gradients in float32; adam keeps two values per parameter
    Assert.Equal(61706L * 4L * 2L, memory.Parameters)
    Assert.Equal(61706L * 4L * 2L, memory.OptimizerState)
    Assert.True((nonNull (model.TrainingMemory 64)).Activations > memory.Activations)
    Assert.Null(Model.Parse("input ?x?x1\nconv 4 3x3\nglobalmaxpool\ndense 2 softmax\n").TrainingMemory 8)
    Assert.StartsWith("digraph", model.ToDot())
    Assert.Contains("flowchart", model.ToMermaid())

[<Fact>]
let ``an any-size model reports null sizes and resizes with WithInputSize`` () =
    let model = Model.Parse("input ?x?x1\nconv 4 3x3 relu\nglobalmaxpool\ndense 3 softmax\n", "anysize")
    Assert.True(model.IsDynamic)
    Assert.False(model.InputShape.Height.HasValue)
    Assert.Equal("?x?x1", string model.InputShape)
    Assert.Null(model.Summary().MultiplyAdds)
    let fixedModel = model.WithInputSize(20, 24)
    Assert.Equal("20x24x1", string fixedModel.InputShape)
    Assert.False(fixedModel.IsDynamic)
    let e = Assert.Throws<ModelException>(fun () -> model.WithInputSize(2, 2) |> ignore)
    Assert.NotEmpty(e.Diagnostics)
