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

[<Fact>]
let ``a checkpoint made before normalize was added exports to PyTorch as eval and ONNX read it: mean 0, deviation 1`` () =
    let plain = shapesModel ()
    let result = plain.Train(TrainingOptions(TrainingData = shapes 32, OutputFolder = temp "before-normalize"))
    let normalized = Model.Parse(shapesText + "  normalize\n", "shapes-net")
    // eval and ONNX accept it (a checkpoint without normalize's statistics)
    normalized.Evaluate(result.LastCheckpoint, (shapes 32).Test) |> ignore
    normalized.ToOnnx result.LastCheckpoint |> ignore
    // the PyTorch export refused it as "saved from another model"
    let folder = temp "pytorch-normalize"
    let files = normalized.ExportPyTorch(folder, result.LastCheckpoint)
    let weights = files |> Seq.find (fun f -> Path.GetFileName f = "weights.ckpt")
    let tensors = CnnDsl.Runtime.Training.Checkpoint.LoadTensors weights
    Assert.Equal<float32>([| 0.0f |], tensors["normalize/mean"])
    Assert.Equal<float32>([| 1.0f |], tensors["normalize/deviation"])
    // the same predictions as the checkpoint gives the model without normalize
    let example = (shapes 32).Test.GetExample 0
    Assert.Equal<float32>(plain.CreatePredictor(result.LastCheckpoint).Predict(example).ToArray(),
                          normalized.CreatePredictor(weights).Predict(example).ToArray())

[<Fact>]
let ``an any-size model's export refuses another model's checkpoint, as its predictor does`` () =
    let trainedText = "input ?x?x1\nconv 4 3x3 relu\nglobalmaxpool\ndense 3 softmax\ntrain\n  data shapes\n  batch 16\n"
    let trained = Model.Parse(trainedText, "anysize")
    let result = trained.Train(TrainingOptions(TrainingData = shapes 32, OutputFolder = temp "anysize-export"))
    // the same tensors (names and lengths), another pooling: not the model the weights were trained in
    let other = Model.Parse(trainedText.Replace("globalmaxpool", "globalavgpool"), "anysize")
    Assert.Throws<CheckpointException>(fun () -> other.CreatePredictor result.LastCheckpoint |> ignore) |> ignore
    let e = Assert.Throws<CheckpointException>(fun () -> other.ToOnnx result.LastCheckpoint |> ignore)
    Assert.Contains("it was saved from a different model", e.Message)
    Assert.Throws<CheckpointException>(fun () -> other.ExportPyTorch(temp "anysize-pt", result.LastCheckpoint) |> ignore) |> ignore
    // its own model exports it
    Assert.True((trained.ToOnnx result.LastCheckpoint).Length > 100)
