module CnnDsl.Api.Tests.TrainingTests

open System
open System.IO
open System.Threading
open Xunit
open CnnDsl
open CnnDsl.Api.Tests.TestSupport

let private options (folder: string) (data: DataSplit) =
    TrainingOptions(TrainingData = data, OutputFolder = folder, Epochs = Nullable 2)

[<Fact>]
let ``Train runs the file's settings over the options, reports every batch and epoch, checkpoints and tests`` () =
    let model = shapesModel ()
    let folder = temp "train"
    let batches, epochs = Collections.Generic.List<TrainingProgress>(), Collections.Generic.List<EpochResult>()
    let result = model.Train(options folder (shapes 160), Immediate batches.Add, Immediate epochs.Add, CancellationToken.None)
    Assert.Equal(TrainingStatus.Completed, result.Status)
    Assert.True(result.Succeeded)
    Assert.Null(result.Message)
    // the file's batch 16, optimizer and seed; the options' epochs
    Assert.Equal(16, result.Settings.BatchSize)
    Assert.Equal("adam", result.Settings.Optimizer)
    Assert.Equal(0.001, result.Settings.LearningRate)
    Assert.Equal(4, result.Settings.Seed)
    Assert.Equal(2, result.Settings.Epochs)
    Assert.Equal("crossentropy", result.Settings.Loss)
    Assert.Equal("shapes", result.Settings.Data)
    Assert.Equal(160, result.TrainingExamples)
    Assert.Equal(32, result.TestExamples)
    // ten batches of 16 per epoch, each reported (ProgressInterval zero), and two epochs
    Assert.Equal(20, batches.Count)
    Assert.Equal<int>([ 1 .. 10 ], batches |> Seq.take 10 |> Seq.map (fun p -> p.Batch))
    Assert.True(batches |> Seq.forall (fun p -> p.Batches = 10 && p.Epochs = 2 && Double.IsFinite p.Loss))
    Assert.Equal<int>([ 1; 2 ], epochs |> Seq.map (fun e -> e.Epoch))
    Assert.Equal<int>([ 1; 2 ], result.Epochs |> Seq.map (fun e -> e.Epoch))
    Assert.Equal(epochs[1].Loss, result.Epochs[1].Loss)
    Assert.StartsWith("Epoch 2/2 - ", string result.Epochs[1])
    Assert.Equal(batches[19].Loss, result.Epochs[1].Loss, 9)
    Assert.True(File.Exists result.LastCheckpoint)
    Assert.NotNull(result.BestCheckpoint)
    let test = nonNull result.Test
    Assert.Equal(32, test.Count)
    Assert.Equal<string>([ "horizontal"; "vertical"; "square" ], test.ClassNames)
    Assert.Equal(32, test.ConfusionMatrix() |> Array.sumBy Array.sum)
    Assert.InRange(test.Accuracy, 0.0, 1.0)
    // Evaluate on the same checkpoint and test set gives the same figures
    let again = model.Evaluate(result.LastCheckpoint, (shapes 160).Test)
    Assert.Equal(test.Loss, again.Loss, 9)
    Assert.Equal(test.Accuracy, again.Accuracy)
    Assert.Equal(test.Confusion(1, 1), again.Confusion(1, 1))

[<Fact>]
let ``a cancelled run saves last.ckpt where it stopped, and a resume ends where an uninterrupted run ends`` () =
    let model = shapesModel ()
    let data = shapes 160
    let whole = model.Train(options (temp "whole") data)
    let folder = temp "stopped"
    use stop = new CancellationTokenSource()
    // cancel once the third batch of the second epoch is done: the run stops before the fourth
    let cancelAt (p: TrainingProgress) = if p.Epoch = 2 && p.Batch = 3 then stop.Cancel()
    let stopped = model.Train(options folder data, Immediate cancelAt, null, stop.Token)
    Assert.Equal(TrainingStatus.Cancelled, stopped.Status)
    Assert.False(stopped.Succeeded)
    Assert.Equal(1, stopped.Epochs.Count)
    Assert.Null(stopped.Test)
    Assert.Contains("stopped at epoch 2, batch 3; saved", nonNull stopped.Message)
    // continued as a .NET caller continues it, not with dsl's flag
    Assert.EndsWith("; continue with TrainingOptions.Resume", nonNull stopped.Message)
    Assert.True(File.Exists stopped.LastCheckpoint)
    // the same folder again, without Resume or Force, is refused
    let refused = Assert.Throws<CnnDslException>(fun () -> model.Train(options folder data) |> ignore)
    Assert.Contains("already holds a run (last.ckpt, best.ckpt); continue it with TrainingOptions.Resume", refused.Message)
    let resumed = model.Train(TrainingOptions(TrainingData = data, OutputFolder = folder, Epochs = Nullable 2, Resume = true))
    Assert.Equal(TrainingStatus.Completed, resumed.Status)
    Assert.Equal(1, resumed.StartEpoch)
    Assert.Equal(3, resumed.StartBatch)
    Assert.Equal(whole.Epochs[1].Loss, resumed.Epochs[0].Loss, 6)
    Assert.Equal((nonNull whole.Test).Loss, (nonNull resumed.Test).Loss, 6)
    // a resume with another batch size is refused with the checkpoint's settings
    let e = Assert.Throws<CheckpointException>(fun () ->
        model.Train(TrainingOptions(TrainingData = data, OutputFolder = folder, Epochs = Nullable 3, BatchSize = Nullable 8, Resume = true)) |> ignore)
    Assert.Contains("was made with batch 16 (this run: 8); resume with TrainingOptions.BatchSize 16, or start a new run with TrainingOptions.Force or TrainingOptions.OutputFolder", e.Message)

[<Fact>]
let ``TrainAsync trains on another thread and a cancelled token before the start saves at batch 0`` () =
    let model = shapesModel ()
    use stop = new CancellationTokenSource()
    stop.Cancel()
    let result = model.TrainAsync(options (temp "async") (shapes 32), stop.Token).Result
    Assert.Equal(TrainingStatus.Cancelled, result.Status)
    Assert.Contains("stopped at epoch 1, batch 0", nonNull result.Message)
    let result = model.TrainAsync(TrainingOptions(TrainingData = shapes 32, OutputFolder = temp "async2"), CancellationToken.None).Result
    Assert.Equal(TrainingStatus.Completed, result.Status)
    Assert.Equal(1, result.Epochs.Count)

[<Fact>]
let ``bad settings are refused with a message before anything is trained`` () =
    let model = shapesModel ()
    let folder = temp "bad"
    let message (o: TrainingOptions) = (Assert.ThrowsAny<CnnDslException>(fun () -> model.Train o |> ignore)).Message
    Assert.Equal("TrainingOptions.Optimizer adagrad: use adam, adamw, sgd or rmsprop", message (TrainingOptions(Optimizer = "adagrad", OutputFolder = folder)))
    Assert.Equal("TrainingOptions.Epochs 0: use at least 1", message (TrainingOptions(Epochs = Nullable 0, OutputFolder = folder)))
    Assert.Equal("TrainingOptions.Validation 1: the validation fraction must be in [0, 1)", message (TrainingOptions(Validation = Nullable 1.0, OutputFolder = folder)))
    Assert.Contains("nothing to resume: no checkpoint here yet", message (TrainingOptions(Resume = true, OutputFolder = folder)))
    Assert.Equal("TrainingOptions.LearningRate NaN: the learning rate must be above 0", message (TrainingOptions(LearningRate = Nullable Double.NaN, OutputFolder = folder)))
    Assert.Equal("TrainingOptions.BatchSize 0: use at least 1", message (TrainingOptions(BatchSize = Nullable 0, OutputFolder = folder)))
    let e = Assert.ThrowsAny<CnnDslException>(fun () -> model.Train(TrainingOptions(OutputFolder = "/proc/cnndsl-cannot-be-made")) |> ignore)
    Assert.StartsWith("cannot create the folder /proc/cnndsl-cannot-be-made (", e.Message)
    Assert.EndsWith("); give another TrainingOptions.OutputFolder", e.Message)
    Assert.Equal("TrainingOptions.Resume continues the run in the folder and TrainingOptions.Force replaces it; give one of them",
                 message (TrainingOptions(Resume = true, Force = true, OutputFolder = folder)))
    Assert.Throws<ArgumentOutOfRangeException>(fun () -> model.Evaluate(folder, (shapes 16).Test, 0) |> ignore) |> ignore
    // a model that does not fit the data: the runtime's message
    let wide = Model.Parse("input 16x16x1\nconv 4 3x3 relu\nglobalmaxpool\ndense 2 softmax\ntrain\n  data shapes\n", "narrow")
    let e = Assert.Throws<DataException>(fun () -> wide.Train(TrainingOptions(OutputFolder = temp "narrow", Limit = Nullable 32)) |> ignore)
    Assert.Contains("the model ends in 2 values but shapes has 3 classes", e.Message)
    let noData = Model.Parse("input 16x16x1\nconv 4 3x3 relu\nglobalmaxpool\ndense 3 softmax\n", "nodata")
    Assert.StartsWith("no data set: add 'data fashion-mnist' to the train section of nodata", (Assert.ThrowsAny<CnnDslException>(fun () -> noData.Train() |> ignore)).Message)

[<Fact>]
let ``InitialWeights transfers the tensors whose names and sizes match, with a note`` () =
    let model = shapesModel ()
    let first = model.Train(options (temp "first") (shapes 32))
    let other = Model.Parse("input 16x16x1\nconv 8 3x3 relu\nmaxpool 2\nconv 8 3x3 relu\nflatten\ndense 3 softmax\ntrain\n  data shapes\n  batch 16\n", "other")
    let result = other.Train(TrainingOptions(TrainingData = shapes 32, OutputFolder = temp "second", InitialWeights = first.LastCheckpoint))
    Assert.Equal(sprintf "Transferred 6 tensors from %s" first.LastCheckpoint, result.Notes[0])

[<Fact>]
let ``an any-size model trains at its data's size and evaluates`` () =
    let model = Model.Parse("input ?x?x1\nconv 8 3x3 relu\nglobalmaxpool\ndense 3 softmax\ntrain\n  data shapes\n  optimizer adam\n  batch 16\n", "anysize")
    let result = model.Train(TrainingOptions(TrainingData = shapes 64, OutputFolder = temp "anysize"))
    Assert.Equal(TrainingStatus.Completed, result.Status)
    let evaluation = model.Evaluate(result.LastCheckpoint, (shapes 64).Test)
    Assert.Equal((nonNull result.Test).Accuracy, evaluation.Accuracy)

/// What the CLI's report hears through the internal hooks (src/Cli will print these).
type private Recorded() =
    member val Lines = Collections.Generic.List<string>()
    interface CnnDsl.Runtime.Training.ITrainingReport with
        member this.Started(d) = this.Lines.Add("started " + d)
        member this.Progress(_, _, _, _, _, _) = ()
        member this.EpochDone(r) = this.Lines.Add(sprintf "epoch %d" r.Epoch)
        member this.Stopped(m) = this.Lines.Add("stopped " + m)

[<Fact>]
let ``the CLI's hooks hear the run's description (dsl run's header), the notes and every epoch`` () =
    let model = Model.Parse("input 16x16x1\nconv 4 3x3 relu\nglobalmaxpool\ndense 5 softmax\ntrain\n  data shapes\n  batch 16\n  weightdecay 0.0001\n", "wide")
    let recorded = Recorded()
    let notes = Collections.Generic.List<string>()
    let graph = match CnnDsl.Dsl.Frontend.compile model.Source with Ok (g, _) -> g | Error _ -> failwith "wide"
    let hooks = { Runs.Hooks.None with Report = Some recorded; Note = notes.Add }
    let result = Runs.run hooks "wide" "models/wide.cnn" model.Source graph (TrainingOptions(TrainingData = shapes 32, OutputFolder = temp "hooks")) null null CancellationToken.None
    Assert.Equal(TrainingStatus.Completed, result.Status)
    Assert.Equal<string>([ "Note: the model has 5 outputs and shapes has 3 classes; the other outputs are never the answer (the confusion matrix counts them as 'other')" ], notes)
    let started = recorded.Lines[0]
    Assert.StartsWith("started Model models/wide.cnn: 65 parameters (65 trainable)\nData shapes: 32 training, 0 validation, 6 test examples of 16x16x1\nTraining: 1 epoch, batch 16, rmsprop (lr 0.001, weight decay 0.0001), loss crossentropy, seed 0\nEngine: ", started)
    Assert.Contains("Convolutions: direct (conv2d)", started)
    Assert.Equal("epoch 1", recorded.Lines[1])
    Assert.True(result.Test.HasOtherColumn)

[<Fact>]
let ``a model too large for the memory at its batch size is a ModelSizeException before anything is allocated`` () =
    let huge = Model.Parse("input 2048x2048x3\nconv 256 3x3 same relu\nglobalmaxpool\ndense 3 softmax\ntrain\n  data shapes\n  batch 64\n", "huge")
    let e = Assert.Throws<ModelSizeException>(fun () -> huge.Train(TrainingOptions(OutputFolder = temp "huge")) |> ignore)
    Assert.StartsWith("huge needs ", e.Message)
    Assert.Contains("at batch 64 (activations and gradients ", e.Message)
    Assert.Contains(" of memory is available; ", e.Message)

[<Fact>]
let ``a learning rate far too high ends the run as Diverged, with dsl run's message`` () =
    let model = shapesModel ()
    let result = model.Train(TrainingOptions(TrainingData = shapes 64, OutputFolder = temp "diverged", Optimizer = "sgd", LearningRate = Nullable 1e30))
    Assert.Equal(TrainingStatus.Diverged, result.Status)
    Assert.False(result.Succeeded)
    Assert.Contains("the loss became", nonNull result.Message)
    Assert.Null(result.Test)

[<Fact>]
let ``Evaluate without a data set uses the model's own test set; a predictor evaluates its weights`` () =
    let model = shapesModel ()
    let result = model.Train(TrainingOptions(TrainingData = shapes 64, OutputFolder = temp "own-test"))
    let own = model.Evaluate result.LastCheckpoint
    Assert.Equal(500, own.Count)
    Assert.Equal(500, own.ConfusionMatrix() |> Array.sumBy Array.sum)
    let viaPredictor = model.CreatePredictor(result.LastCheckpoint).Evaluate((shapes 64).Test)
    Assert.Equal((nonNull result.Test).Accuracy, viaPredictor.Accuracy)
    let noData = Model.Parse("input 16x16x1\nconv 4 3x3 relu\nglobalmaxpool\ndense 3 softmax\n", "nodata")
    Assert.StartsWith("no data set: add 'data fashion-mnist' to the train section of nodata", (Assert.ThrowsAny<CnnDslException>(fun () -> noData.LoadData() |> ignore)).Message)

[<Fact>]
let ``a run with no example left to train on is refused before training, not saved as an unreadable checkpoint`` () =
    let model = shapesModel ()
    let data = shapes 1
    // one example and validation 0.9: the validation part takes it (Keras's split from the end)
    let folder = temp "none-left"
    let e = Assert.Throws<DataException>(fun () -> model.Train(TrainingOptions(TrainingData = data, OutputFolder = folder, Validation = Nullable 0.9)) |> ignore)
    Assert.Equal("shapes: has 1 training example, and validation 0.9 holds out 1, leaving none to train on; lower TrainingOptions.Validation or give more examples", e.Message)
    Assert.False(File.Exists(Path.Combine(folder, "last.ckpt")))
    let empty = DataSplit(data.Train.Take 0, data.Test)
    let e = Assert.Throws<DataException>(fun () -> model.Train(TrainingOptions(TrainingData = empty, OutputFolder = temp "empty")) |> ignore)
    Assert.Equal("shapes: has no training examples, so there is nothing to train on; give a data set with some", e.Message)
    // a validation part that leaves one is fine
    let result = model.Train(TrainingOptions(TrainingData = shapes 4, OutputFolder = temp "one-left", Validation = Nullable 0.6))
    Assert.Equal(TrainingStatus.Completed, result.Status)
    Assert.Equal(2, result.TrainingExamples)

[<Fact>]
let ``InitialWeights starts from a run's weight average, as evaluation and ExportWeights use it`` () =
    let text = shapesText + "  ema 0.5\n"
    let model = Model.Parse(text, "ema-net")
    let first = model.Train(TrainingOptions(TrainingData = shapes 64, OutputFolder = temp "ema-first"))
    let exported = Path.Combine(temp "ema-weights", "w.ckpt")
    Directory.CreateDirectory(Path.GetDirectoryName exported) |> ignore
    model.ExportWeights(exported, first.LastCheckpoint)
    let graph = match CnnDsl.Dsl.Frontend.compile text with Ok (g, _) -> g | Error _ -> failwith "does not check"
    let data = (shapes 64).Train
    let startFrom (checkpoint: string) =
        let settings = CnnDsl.Runtime.Training.TrainingSettings(1, 16, 0, 0.0, CnnDsl.Graph.Optimizer.Adam (0.001, 0.9, 0.999, 1e-7), CnnDsl.Graph.Loss.CrossEntropy, 0.0, temp "unused")
        let trainer = CnnDsl.Runtime.Training.Trainer(graph, data.Inner, settings, Runs.ProgressReport(1, null, null, None, Runs.apiSpelling))
        let struct (copied, kept) = trainer.Transfer checkpoint
        Assert.Empty(kept)
        trainer.Network.Weights |> Seq.map (fun p -> p.Name, Array.copy p.Value) |> List.ofSeq
    let tensors = CnnDsl.Runtime.Training.Checkpoint.LoadTensors first.LastCheckpoint
    // the average differs from the live weights after a few steps at decay 0.5
    Assert.NotEqual<float32>(tensors["conv2d/kernel"], tensors["ema/conv2d/kernel"])
    let fromRun, fromExport = startFrom first.LastCheckpoint, startFrom exported
    for (name, values), (_, exportedValues) in List.zip fromRun fromExport do
        Assert.Equal<float32>(exportedValues, values)
        Assert.Equal<float32>(tensors["ema/" + name], values)
