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

[<Fact>]
let ``ExportWeights writes the weights alone, evaluating as the checkpoint, and the weight average when kept`` () =
    let data = shapes 64
    for recipe in [ ""; "  ema 0.9\n" ] do
        let model = Model.Parse(shapesText + recipe, "shapes-net")
        let result = model.Train(TrainingOptions(TrainingData = data, OutputFolder = temp "weights", Epochs = 2))
        let file = temp "released" + ".ckpt"
        model.ExportWeights(file, result.LastCheckpoint)
        // Adam keeps two values per parameter: the weights alone are about a third of the file.
        let full, alone = (FileInfo result.LastCheckpoint).Length, (FileInfo file).Length
        Assert.True(alone * 2L < full, sprintf "%d bytes of %d" alone full)
        let original, released = model.Evaluate(result.LastCheckpoint, data.Test), model.Evaluate(file, data.Test)
        Assert.Equal(original.Loss, released.Loss, 12)
        Assert.Equal(original.Accuracy, released.Accuracy)
        // Both predictors give the same probabilities.
        let image = data.Test.GetExample 0
        Assert.Equal<float32>((model.CreatePredictor result.LastCheckpoint).Predict(image).ToArray(),
                              (model.CreatePredictor file).Predict(image).ToArray())
    let e = Assert.ThrowsAny<CnnDslException>(fun () -> (shapesModel ()).ExportWeights(Path.GetTempPath(), "none.ckpt"))
    Assert.Contains("that is a folder; give a file name, such as", e.Message)
