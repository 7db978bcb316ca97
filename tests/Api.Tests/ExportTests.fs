module CnnDsl.Api.Tests.ExportTests

open System
open System.IO
open Xunit
open CnnDsl
open CnnDsl.Api.Tests.TestSupport

[<Fact>]
let ``ToOnnx and ExportOnnx write the model with a checkpoint's weights or the initial ones`` () =
    let model = shapesModel ()
    let result = model.Train(TrainingOptions(TrainingData = shapes 32, OutputFolder = temp "export"))
    let trained = model.ToOnnx result.LastCheckpoint
    let initial = model.ToOnnx null
    Assert.True(trained.Length > 1000)
    Assert.Equal(initial.Length, trained.Length)
    Assert.NotEqual<byte>(initial, trained)
    let file = temp "model" + ".onnx"
    model.ExportOnnx(file, result.LastCheckpoint)
    Assert.Equal<byte>(trained, File.ReadAllBytes file)
    let e = Assert.ThrowsAny<CnnDslException>(fun () -> model.ExportOnnx(Path.GetTempPath(), null))
    Assert.Contains("that is a folder; give a file name, such as", e.Message)
    Assert.Throws<CheckpointException>(fun () -> model.ToOnnx(file) |> ignore) |> ignore

[<Fact>]
let ``ExportPyTorch writes the PyTorch project and names its files`` () =
    let model = Model.Load lenetPath
    let folder = temp "pytorch"
    let files = model.ExportPyTorch(folder, null)
    let names = files |> Seq.map Path.GetFileName |> Set.ofSeq
    for name in [ "model.py"; "train.py"; "dsl_torch.py"; "README.md" ] do
        Assert.Contains(name, names)
        Assert.True(File.Exists(Path.Combine(folder, name)), name)
