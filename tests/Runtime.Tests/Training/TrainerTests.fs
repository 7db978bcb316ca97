module CnnDsl.Runtime.Tests.TrainerTests

open System
open System.IO
open System.Threading
open Xunit
open CnnDsl.Graph
open CnnDsl.Runtime
open CnnDsl.Runtime.Data
open CnnDsl.Runtime.Training
open CnnDsl.Runtime.Blas
open CnnDsl.Runtime.Tests.TestSupport

type private Silent() =
    member val Records = ResizeArray<EpochRecord>()
    member val Stops = ResizeArray<string>()
    interface ITrainingReport with
        member _.Started _ = ()
        member _.Progress(_, _, _, _, _, _) = ()
        member this.EpochDone r = this.Records.Add r
        member this.Stopped m = this.Stops.Add m

/// Stops after a number of progress reports' worth of batches: a programmatic Ctrl+C.
type private StopAfter(batches: int, source: CancellationTokenSource) =
    interface ITrainingReport with
        member _.Started _ = ()
        member _.Progress(_, b, _, _, _, _) = if b >= batches then source.Cancel()
        member _.EpochDone _ = ()
        member _.Stopped _ = ()

let private model = graph "input 16x16x1\nconv 4 3x3 relu\nmaxpool 2\ndropout 0.2\nbatchnorm\ndense 3 softmax"
let private data = DataSets.Shapes(480, 120, 3)
let private settings folder epochs = TrainingSettings(epochs, 16, 5, 0.2, Optimizer.Adam (0.01, 0.9, 0.999, 1e-7), Loss.CrossEntropy, 0.0, folder)
let private folder () = Path.Combine(Path.GetTempPath(), "cnndsl-train-" + Path.GetRandomFileName())
let private weights (t: Trainer) = t.Network.Weights |> Seq.collect (fun p -> p.Value) |> Array.ofSeq

[<Fact>]
let ``a small model learns the generated shapes`` () =
    let report = Silent()
    let t = Trainer(model, data.Train, settings (folder ()) 4, report)
    t.Run(TrainingPosition.Start, CancellationToken.None) |> ignore
    Assert.Equal(4, report.Records.Count)
    Assert.True(report.Records[3].Loss < report.Records[0].Loss)
    let test = t.Evaluate(data.Test)
    Assert.True(test.Accuracy > 0.9, sprintf "test accuracy %f" test.Accuracy)
    Assert.True(File.Exists t.BestCheckpoint && File.Exists t.LastCheckpoint)

[<Fact>]
let ``the same seed gives the same weights`` () =
    let run () =
        let t = Trainer(model, data.Train, settings (folder ()) 1, Silent())
        t.Run(TrainingPosition.Start, CancellationToken.None) |> ignore
        weights t
    Assert.Equal<float32[]>(run (), run ())

[<Fact>]
let ``stopping mid-epoch and resuming ends with the weights of an uninterrupted run`` () =
    let straight = Trainer(model, data.Train, settings (folder ()) 2, Silent())
    straight.Run(TrainingPosition.Start, CancellationToken.None) |> ignore
    let out = folder ()
    use source = new CancellationTokenSource()
    let first = Trainer(model, data.Train, settings out 2, StopAfter(7, source), ProgressInterval = TimeSpan.Zero)
    first.Run(TrainingPosition.Start, source.Token) |> ignore
    Assert.True(source.IsCancellationRequested)
    let second = Trainer(model, data.Train, settings out 2, Silent())
    let position = second.Load(second.LastCheckpoint, true)
    Assert.Equal(0, position.Epoch)
    Assert.True(position.Batch > 0)
    second.Run(position, CancellationToken.None) |> ignore
    Assert.Equal<float32[]>(weights straight, weights second)

/// Runs `settings` into a new folder, stopping before (epoch, batch) as Ctrl+C would (through
/// the trainer's pause hook: deterministic), then resumes it in a new trainer; returns both folders
/// (uninterrupted, interrupted and resumed) and both runs' epoch records.
let private interruptedAndStraight (s: string -> TrainingSettings) (epoch: int, batch: int) =
    let straightOut, resumedOut = folder (), folder ()
    let straightReport = Silent()
    Trainer(model, data.Train, s straightOut, straightReport).Run(TrainingPosition.Start, CancellationToken.None) |> ignore
    use source = new CancellationTokenSource()
    let firstReport = Silent()
    let first = Trainer(model, data.Train, s resumedOut, firstReport, PauseAt = Nullable<struct (int * int)>(struct (epoch, batch)), Paused = Action(fun () -> source.Cancel()))
    first.Run(TrainingPosition.Start, source.Token) |> ignore
    Assert.StartsWith(sprintf "stopped at epoch %d, batch %d" (epoch + 1) batch, firstReport.Stops |> Seq.exactlyOne)
    let secondReport = Silent()
    let second = Trainer(model, data.Train, s resumedOut, secondReport)
    let position = second.Load(second.LastCheckpoint, true)
    Assert.Equal((epoch, batch), (position.Epoch, position.Batch))
    second.Run(position, CancellationToken.None) |> ignore
    straightOut, resumedOut, straightReport.Records, Seq.append firstReport.Records secondReport.Records |> ResizeArray

[<Fact>]
let ``a resumed run's checkpoints equal an uninterrupted run's, byte for byte, and so do its epoch figures`` () =
    // No validation split: best.ckpt, the plateau schedule and early stopping then follow the
    // training loss and accuracy, which a resume must carry over from the epoch's first part.
    let s out = TrainingSettings(4, 16, 5, 0.0, Optimizer.Adam (0.01, 0.9, 0.999, 1e-7), Loss.CrossEntropy, 0.0, out, Schedule = Schedule.Plateau (1, 0.5))
    let straight, resumed, straightRecords, resumedRecords = interruptedAndStraight s (1, 7)
    for name in [ "last.ckpt"; "best.ckpt" ] do
        Assert.Equal<byte[]>(File.ReadAllBytes(Path.Combine(straight, name)), File.ReadAllBytes(Path.Combine(resumed, name)))
    let figures (r: EpochRecord) = r.Epoch, r.Loss, r.Accuracy, r.ValidationLoss, r.ValidationAccuracy
    Assert.Equal<obj>(straightRecords |> Seq.map figures |> Array.ofSeq, resumedRecords |> Seq.map figures |> Array.ofSeq)

[<Fact>]
let ``a resume with another batch size, optimizer or seed is refused, naming what the checkpoint was made with`` () =
    let out = folder ()
    use source = new CancellationTokenSource()
    let first = Trainer(model, data.Train, settings out 2, Silent(), PauseAt = Nullable<struct (int * int)>(struct (0, 5)), Paused = Action(fun () -> source.Cancel()))
    first.Run(TrainingPosition.Start, source.Token) |> ignore
    let attempt (s: TrainingSettings) =
        let t = Trainer(model, data.Train, s, Silent())
        (Assert.Throws<CheckpointError>(fun () -> t.Load(t.LastCheckpoint, true) |> ignore)).Message
    let bigger = TrainingSettings(2, 64, 5, 0.2, Optimizer.Adam (0.01, 0.9, 0.999, 1e-7), Loss.CrossEntropy, 0.0, out)
    Assert.Contains("was made with batch 16 (this run: 64); resume with --batch 16, or start a new run with --force or --out DIR", attempt bigger)
    let rms = TrainingSettings(2, 16, 5, 0.2, Optimizer.RmsProp (0.001, 0.9, 0.0, 1e-7), Loss.CrossEntropy, 0.0, out)
    Assert.Contains("optimizer adam (this run: rmsprop)", attempt rms)
    let seed = TrainingSettings(2, 16, 6, 0.2, Optimizer.Adam (0.01, 0.9, 0.999, 1e-7), Loss.CrossEntropy, 0.0, out)
    Assert.Contains("seed 5 (this run: 6)", attempt seed)
    // eval and --weights read the weights alone, whatever the settings
    Trainer(model, data.Train, bigger, Silent()).Load(Path.Combine(out, "last.ckpt"), false) |> ignore
    // a version 2 checkpoint (no settings recorded) gives its weights, but is not resumed
    let old = Path.Combine(out, "old.ckpt")
    let t = Trainer(model, data.Train, settings out 2, Silent())
    CheckpointTests.writeVersion2 old model [ for p in t.Network.Weights -> p.Name, Array.copy p.Value ] |> ignore
    t.Load(old, false) |> ignore
    let e = Assert.Throws<CheckpointError>(fun () -> t.Load(old, true) |> ignore)
    Assert.Contains("was written by an earlier dsl (format version 2)", e.Message)
    Assert.Contains("start a new run from its weights with --weights " + old, e.Message)

[<Fact>]
let ``a model that does not fit the data is refused with the fix`` () =
    let wrong = graph "input 28x28x1\nconv 4 3x3\ndense 3 softmax"
    let e = Assert.Throws<DataError>(fun () -> Trainer(wrong, data.Train, settings (folder ()) 1, Silent()) |> ignore)
    Assert.Contains("make the model's first line 'input 16x16x1'", e.Message)

[<Fact>]
let ``a diverging loss stops the run at its batch`` () =
    let report = Silent()
    let s = TrainingSettings(1, 16, 5, 0.0, Optimizer.Sgd (1e30, 0.0, false), Loss.MeanSquaredError, 0.0, folder ())
    let t = Trainer(graph "input 16x16x1\ndense 3", data.Train, s, report)
    t.Run(TrainingPosition.Start, CancellationToken.None) |> ignore
    Assert.Empty(report.Records)
    Assert.Contains("learning rate", report.Stops |> Seq.exactlyOne)

[<Fact>]
let ``schedules set the rate per epoch, and early stopping ends a run that stopped improving`` () =
    let record = Silent()
    let adam = Optimizer.Adam (0.01, 0.9, 0.999, 1e-7)
    let s = TrainingSettings(6, 16, 5, 0.2, adam, Loss.CrossEntropy, 0.0, folder (), Schedule = Schedule.Step (2, 0.5))
    let t = Trainer(model, data.Train, s, record)
    t.Run(TrainingPosition.Start, CancellationToken.None) |> ignore
    Assert.Equal(0.01 * 0.25, t.Optimizer.LearningRate, 12) // epochs 5 and 6 run at 0.01 * 0.5^2
    let cosine = Trainer(model, data.Train, TrainingSettings(4, 16, 5, 0.2, adam, Loss.CrossEntropy, 0.0, folder (), Schedule = Schedule.Cosine), Silent())
    cosine.Run(TrainingPosition.Start, CancellationToken.None) |> ignore
    Assert.Equal(0.01 * 0.5 * (1.0 + cos (Math.PI * 3.0 / 4.0)), cosine.Optimizer.LearningRate, 12)
    // A learning rate of 0 never improves the loss: early stopping after `patience` epochs.
    let frozen = Silent()
    let still = TrainingSettings(20, 16, 5, 0.2, Optimizer.Sgd (0.0, 0.0, false), Loss.CrossEntropy, 0.0, folder (), EarlyStopping = Nullable 2)
    let t = Trainer(model, data.Train, still, frozen)
    t.Run(TrainingPosition.Start, CancellationToken.None) |> ignore
    Assert.True(t.StoppedEarly)
    Assert.Equal(3, frozen.Records.Count)
    Assert.Contains("early stopping after epoch 3", frozen.Stops |> Seq.exactlyOne)

[<Fact>]
let ``a set smaller than a batch trains in one partial batch, and every example is seen once an epoch`` () =
    // Seed 001's XOR with Keras's default batch of 32: one batch of 4 an epoch.
    let xor = graph "input 2\ndense 8 relu\ndense 1 sigmoid"
    let split = DataSets.Load("xor")
    let report = Silent()
    let settings = TrainingSettings(300, 32, 1, 0.0, Optimizer.Adam (0.05, 0.9, 0.999, 1e-7), Loss.BinaryCrossEntropy, 0.0, folder ())
    let t = Trainer(xor, split.Train, settings, report)
    t.Run(TrainingPosition.Start, CancellationToken.None) |> ignore
    Assert.Equal(300, report.Records.Count)
    Assert.Equal(1.0, report.Records[299].Accuracy)
    Assert.Equal(1.0, t.Evaluate(split.Test).Accuracy)
    // 10 examples at batch 4: batches of 4, 4 and 2, all counted.
    let ten = DataSets.Shapes(10, 5, 2)
    let report = Silent()
    let t = Trainer(model, ten.Train, TrainingSettings(1, 4, 5, 0.0, Optimizer.Adam (0.01, 0.9, 0.999, 1e-7), Loss.CrossEntropy, 0.0, folder ()), report)
    t.Run(TrainingPosition.Start, CancellationToken.None) |> ignore
    Assert.Equal(3L, t.Optimizer.Step)
