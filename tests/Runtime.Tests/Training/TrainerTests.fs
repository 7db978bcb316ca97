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

/// The recipe settings of issue 19 (label smoothing, crop and cutout, per-step warm-up and
/// cosine or one-cycle; AdamW, EMA and normalisation as they come) keep a resume exact.
let private recipe (schedule: Schedule) out =
    let optimizer = if schedule.IsCosine then Optimizer.AdamW (0.01, 0.9, 0.999, 1e-8, 0.05, [ "biases" ]) else Optimizer.Adam (0.01, 0.9, 0.999, 1e-7)
    TrainingSettings(3, 16, 5, 0.0, optimizer, Loss.CrossEntropy, 0.0, out, Schedule = schedule,
                     LabelSmoothing = 0.1, Augment = [| "flip"; "crop 2 reflect"; "cutout 4" |],
                     Warmup = (if schedule.IsCosine then 1 else 0), Ema = 0.9, TestTimeFlip = true)

[<Fact>]
let ``a resumed run with the recipe settings ends byte for byte as an uninterrupted one`` () =
    for schedule in [ Schedule.Cosine; Schedule.OneCycle (0.3, true) ] do
        let straight, resumed, straightRecords, resumedRecords = interruptedAndStraight (recipe schedule) (1, 5)
        Assert.Equal<byte[]>(File.ReadAllBytes(Path.Combine(straight, "last.ckpt")), File.ReadAllBytes(Path.Combine(resumed, "last.ckpt")))
        Assert.Equal<float[]>(straightRecords |> Seq.map (fun r -> r.Loss) |> Array.ofSeq, resumedRecords |> Seq.map (fun r -> r.Loss) |> Array.ofSeq)

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
    // per step (Keras's CosineDecay over the run's steps): the last step has 0.5 (1 + cos(pi (T - 1) / T))
    let steps = 4.0 * ceil (float cosine.TrainCount / 16.0)
    Assert.Equal(0.01 * 0.5 * (1.0 + cos (Math.PI * (steps - 1.0) / steps)), cosine.Optimizer.LearningRate, 12)
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

[<Fact>]
let ``past a thousand classes no confusion matrix is kept, and evaluation still reports`` () =
    // 1,500 classes (a CSV's labels may go to 65,535: a full matrix there is 17 GB).
    let many = graph "input 2\ndense 1500 softmax"
    let pixels = Array.init 20 (fun i -> byte (i * 7))
    let set = Dataset("many", 1, 1, 2, pixels, Array.init 10 (fun i -> i * 149), Array.init 1500 string)
    let t = Trainer(many, set, TrainingSettings(1, 4, 1, 0.0, Optimizer.Adam (0.01, 0.9, 0.999, 1e-7), Loss.CrossEntropy, 0.0, folder ()), Silent())
    let e = t.Evaluate set
    Assert.Equal(0, e.Confusion.Length)
    Assert.InRange(e.Accuracy, 0.0, 1.0)
    Assert.True(Double.IsFinite e.Loss)

/// A model without dropout or batchnorm: with a learning rate of 0 its validation loss is the
/// same every epoch, and one batch's update is a pure function of the weights.
let private plain = graph "input 16x16x1\nconv 4 3x3 relu\nmaxpool 2\ndense 3 softmax"

[<Fact>]
let ``weight decay shrinks kernels by lr * decay before the step, and leaves biases alone`` () =
    let first (decay: float) =
        let s = TrainingSettings(1, 16, 5, 0.2, Optimizer.Sgd (0.1, 0.0, false), Loss.CrossEntropy, decay, folder ())
        let t = Trainer(plain, data.Train, s, Silent())
        let before = t.Network.Weights |> Seq.map (fun p -> p.Name, Array.copy p.Value) |> Array.ofSeq
        t.TrainBatch(ReadOnlySpan [| 0 .. 15 |]) |> ignore
        before, t.Network.Weights |> Seq.map (fun p -> Array.copy p.Value) |> Array.ofSeq
    let start, plainStep = first 0.0
    let start2, decayed = first 0.25
    // the same seed, so the same starting weights and gradients: only the decay differs
    Assert.Equal<float32[]>(start |> Array.collect snd, start2 |> Array.collect snd)
    for (name, w0), without, withDecay in Array.zip3 start plainStep decayed do
        let shrink = if name.EndsWith "/kernel" then 0.1 * 0.25 else 0.0
        let expected = Array.map2 (fun (w: float32) (u: float32) -> float u - shrink * float w) w0 without
        assertClose 1e-6 expected (Array.map float withDecay)

/// Records the rate scale each epoch ran at.
type private Rates(trainer: Trainer ref) =
    member val PerEpoch = ResizeArray<float>()
    interface ITrainingReport with
        member _.Started _ = ()
        member _.Progress(_, _, _, _, _, _) = ()
        member this.EpochDone _ = this.PerEpoch.Add trainer.Value.Optimizer.LearningRateScale
        member _.Stopped _ = ()

[<Fact>]
let ``reduce-on-plateau multiplies the rate by its factor after every patience epochs without a better validation loss`` () =
    let trainer = ref Unchecked.defaultof<Trainer>
    let rates = Rates trainer
    let s = TrainingSettings(7, 16, 5, 0.2, Optimizer.Sgd (0.0, 0.0, false), Loss.CrossEntropy, 0.0, folder (), Schedule = Schedule.Plateau (2, 0.5))
    trainer.Value <- Trainer(plain, data.Train, s, rates)
    trainer.Value.Run(TrainingPosition.Start, CancellationToken.None) |> ignore
    // epoch 1 sets the best loss; epochs 2 and 3 are no better: halved from epoch 4; 4 and 5: from epoch 6
    Assert.Equal<float list>([ 1.0; 1.0; 1.0; 0.5; 0.5; 0.25; 0.25 ], List.ofSeq rates.PerEpoch)

[<Fact>]
let ``PredictBatch counts the examples whose most likely class is their label, for any indices and a partial batch`` () =
    let t = Trainer(plain, data.Train, TrainingSettings(1, 16, 5, 0.2, Optimizer.Adam (0.01, 0.9, 0.999, 1e-7), Loss.CrossEntropy, 0.0, folder ()), Silent())
    t.Run(TrainingPosition.Start, CancellationToken.None) |> ignore
    // an independent forward pass, one example at a time, on pixels / 255 computed here
    let single = Network<float32>(plain, 1)
    for (a: Parameter<float32>), b in Seq.zip single.Weights t.Network.Weights do b.Value.CopyTo(a.Value, 0)
    let set = data.Test
    let predicted index =
        for i in 0 .. set.ExampleSize - 1 do single.Input[i] <- float32 set.Pixels[index * set.ExampleSize + i] / 255.0f
        single.Forward(false)
        let out = single.Output.ToArray()
        Array.findIndex ((=) (Array.max out)) out
    for indices in [ [| 0 .. 15 |]; [| for i in 0 .. 15 -> set.Count - 1 - 7 * i |]; [| 3; 50; 17; 99; 4 |] ] do
        let expected = indices |> Array.filter (fun i -> predicted i = set.Labels[i]) |> Array.length
        Assert.Equal(expected, t.PredictBatch(set, ReadOnlySpan indices))
    // (the trained model gets some right, so the counts above are not all trivially 0)
    Assert.InRange(t.PredictBatch(set, ReadOnlySpan [| 0 .. 15 |]), 1, 16)

[<Fact>]
let ``with one sigmoid output, label smoothing is Keras's BinaryCrossentropy's: targets y (1 - a) + a / 2`` () =
    let g = graph "input 16x16x1\nflatten\ndense 1 sigmoid"
    let two = DataSets.Shapes(64, 40, 2)
    let a = 0.2
    let t = Trainer(g, two.Train, TrainingSettings(1, 16, 5, 0.0, Optimizer.Sgd (0.1, 0.0, false), Loss.BinaryCrossEntropy, 0.0, folder (), LabelSmoothing = a), Silent())
    t.Run(TrainingPosition.Start, CancellationToken.None) |> ignore
    let reported = t.Evaluate(two.Test).Loss
    let net = Network<float32>(g, 1, 0)
    Checkpoint.LoadWeights(t.LastCheckpoint, g, net.Weights)
    let expected =
        [ for i in 0 .. two.Test.Count - 1 ->
            two.Test.CopyExample(i, net.Input)
            net.Forward(false)
            let p = float net.Output[0]
            let y = float two.Test.Labels[i] * (1.0 - a) + a / 2.0
            -(y * log p + (1.0 - y) * log (1.0 - p)) ] |> List.average
    Assert.Equal(expected, reported, 5)
