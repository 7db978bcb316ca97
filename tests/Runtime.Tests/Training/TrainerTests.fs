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

/// A run of `model` stopped (as by Ctrl+C) before batch 5 of its first epoch, in `out`.
let private stopBeforeBatch5 (out: string) =
    use source = new CancellationTokenSource()
    let t = Trainer(model, data.Train, settings out 2, Silent(), PauseAt = Nullable<struct (int * int)>(struct (0, 5)), Paused = Action(fun () -> source.Cancel()))
    t.Run(TrainingPosition.Start, source.Token) |> ignore

/// The message of the refusal to resume last.ckpt of the run's folder with settings `s`.
let private attempt (s: TrainingSettings) =
    let t = Trainer(model, data.Train, s, Silent())
    (Assert.Throws<CheckpointError>(fun () -> t.Load(t.LastCheckpoint, true) |> ignore)).Message

[<Fact>]
let ``a resume with another batch size, optimizer or seed is refused, naming what the checkpoint was made with`` () =
    let out = folder ()
    stopBeforeBatch5 out
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
    Assert.EndsWith("start a new run from its weights with --weights " + old + " and --out DIR (or --force)", e.Message)

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
    let stop = report.Stops |> Seq.exactlyOne
    Assert.StartsWith("the loss became", stop)
    Assert.Contains(" at epoch 1, batch ", stop)
    Assert.Contains("learning rate", stop)

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
    // a thousand classes still have one (square: as many outputs as classes)
    let thousand = graph "input 2\ndense 1000 softmax"
    let set = Dataset("thousand", 1, 1, 2, pixels, Array.init 10 (fun i -> i * 99), Array.init 1000 string)
    let t = Trainer(thousand, set, TrainingSettings(1, 4, 1, 0.0, Optimizer.Adam (0.01, 0.9, 0.999, 1e-7), Loss.CrossEntropy, 0.0, folder ()), Silent())
    let e = t.Evaluate set
    Assert.Equal((1000, 1000), (e.Confusion.GetLength 0, e.Confusion.GetLength 1))

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

/// A network of batch 1 holding a copy of the trainer's weights: an independent forward pass.
let private singleCopy (g: CnnDsl.Graph.Graph) (t: Trainer) =
    let single = Network<float32>(g, 1)
    for (a: Parameter<float32>), b in Seq.zip single.Weights t.Network.Weights do b.Value.CopyTo(a.Value, 0)
    single

/// The outputs for example `index` of `set`, mirrored left to right when asked (pixel (y, x, k)
/// read from (y, w - 1 - x, k)), by the network of batch 1.
let private outputsOf (single: Network<float32>) (set: Dataset) (index: int) (mirrored: bool) =
    let h, w, c = set.Height, set.Width, set.Channels
    for y in 0 .. h - 1 do
        for x in 0 .. w - 1 do
            for k in 0 .. c - 1 do
                let from = if mirrored then w - 1 - x else x
                single.Input[(y * w + x) * c + k] <- float32 set.Pixels[index * set.ExampleSize + (y * w + from) * c + k] / 255.0f
    single.Forward(false)
    single.Output.ToArray() |> Array.map float

/// The first index of the largest value (ties go to the first, as Keras's argmax).
let private argmax (y: float[]) = y |> Array.indexed |> Array.fold (fun (bi, bv) (i, v) -> if v > bv then (i, v) else (bi, bv)) (0, y[0]) |> fst

[<Fact>]
let ``PredictBatch counts the examples whose most likely class is their label, for any indices and a partial batch`` () =
    let t = Trainer(plain, data.Train, TrainingSettings(1, 16, 5, 0.2, Optimizer.Adam (0.01, 0.9, 0.999, 1e-7), Loss.CrossEntropy, 0.0, folder ()), Silent())
    t.Run(TrainingPosition.Start, CancellationToken.None) |> ignore
    // an independent forward pass, one example at a time, on pixels / 255 computed here
    let single = singleCopy plain t
    let set = data.Test
    let predicted index = argmax (outputsOf single set index false)
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

// ---- evaluation, the training step and the epoch's figures against independent computations ----

let private rgb count seed =
    let rng = Random(seed: int)
    let pixels = Array.init (count * 5 * 6 * 3) (fun _ -> byte (rng.Next 256))
    // classes 0 and 1 only: class 2 has no examples (its accuracy is undefined)
    Dataset("rgb", 5, 6, 3, pixels, Array.init count (fun i -> (i * 7 + i / 3) % 2), [| "a"; "b"; "c" |])

[<Fact>]
let ``evaluation's loss, accuracy and confusion matrix equal a forward pass per image, with and without test-time flips`` () =
    // A non-square RGB image (5x6x3: a mirror confusing width and channels shows), 23 images in
    // batches of 8 (a partial last batch), and 4 outputs for 3 classes (a fourth column).
    let g = graph "input 5x6x3\nconv 2 3x3 relu\nflatten\ndense 4 softmax"
    let set = rgb 23 4
    for tta in [ false; true ] do
        let s = TrainingSettings(1, 8, 3, 0.0, Optimizer.Adam (0.01, 0.9, 0.999, 1e-7), Loss.CrossEntropy, 0.0, folder (), TestTimeFlip = tta)
        let t = Trainer(g, set, s, Silent())
        let single = singleCopy g t
        let confusion = Array2D.zeroCreate 3 4
        let mutable lossSum, right = 0.0, 0
        for i in 0 .. set.Count - 1 do
            let y = set.Labels[i]
            let direct = outputsOf single set i false
            let p, loss =
                if tta then
                    let m = outputsOf single set i true
                    // a mirror must change the outputs, or this test could not tell
                    Assert.NotEqual<float[]>(direct, m)
                    Array.map2 (fun a b -> (a + b) / 2.0) direct m, (-(log direct[y]) - log m[y]) / 2.0
                else direct, -(log direct[y])
            lossSum <- lossSum + loss
            let predicted = argmax p
            if predicted = y then right <- right + 1
            confusion[y, min predicted 3] <- confusion[y, min predicted 3] + 1
        let e = t.Evaluate set
        Assert.Equal(float right / 23.0, e.Accuracy)
        Assert.Equal(lossSum / 23.0, e.Loss, 5)
        Assert.Equal<int>(Seq.cast<int> confusion, Seq.cast<int> e.Confusion)
        Assert.Equal(4, e.Confusion.GetLength 1)
        for c in 0 .. 1 do
            let total = Seq.sum [ for p in 0 .. 3 -> confusion[c, p] ]
            Assert.Equal(float confusion[c, c] / float total, e.ClassAccuracy c)
        Assert.True(Double.IsNaN(e.ClassAccuracy 2))

[<Fact>]
let ``a training step runs in training mode and advances the steps; evaluation and PredictBatch leave the moving statistics alone`` () =
    let g = graph "input 16x16x1\nconv 4 3x3 relu\nbatchnorm\nflatten\ndense 3 softmax"
    let t = Trainer(g, data.Train, settings (folder ()) 1, Silent())
    let statistics () = t.Network.Weights |> Seq.filter (fun p -> p.Name.EndsWith "moving_mean") |> Seq.collect (fun p -> p.Value) |> Array.ofSeq
    let before = statistics ()
    Assert.NotEmpty before
    t.TrainBatch(ReadOnlySpan [| 0 .. 15 |]) |> ignore
    let after = statistics ()
    // batchnorm's moving mean moves only in training mode
    Assert.NotEqual<float32[]>(before, after)
    Assert.Equal(1L, t.Network.Step)
    Assert.Equal(1L, t.Optimizer.Step)
    t.Evaluate data.Test |> ignore
    t.PredictBatch(data.Test, ReadOnlySpan [| 0 .. 15 |]) |> ignore
    Assert.Equal<float32[]>(after, statistics ())

[<Fact>]
let ``an epoch trains the batches of the order drawn from (seed, epoch), and its record holds their mean loss and accuracy`` () =
    // 470 examples in batches of 16: 29 full batches and one of 6.
    let set = data.Train.Slice(0, 470)
    let s = TrainingSettings(2, 16, 5, 0.0, Optimizer.Sgd (0.05, 0.0, false), Loss.CrossEntropy, 0.0, folder ())
    let report = Silent()
    let run = Trainer(plain, set, s, report)
    let clock = Diagnostics.Stopwatch.StartNew()
    let records = run.Run(TrainingPosition.Start, CancellationToken.None)
    let wall = clock.Elapsed.TotalSeconds
    Assert.Equal<EpochRecord>(report.Records, records)
    // the same steps by hand: the permutation of Random(seed * 1,000,003 + epoch), batch by batch
    let manual = Trainer(plain, set, s, Silent())
    for epoch in 0 .. 1 do
        let order = Array.init 470 id
        Random(5 * 1_000_003 + epoch).Shuffle(order)
        let mutable lossSum, right = 0.0, 0
        for b in 0 .. 29 do
            let size = min 16 (470 - b * 16)
            let struct (loss, r) = manual.TrainBatch(ReadOnlySpan(order, b * 16, size))
            lossSum <- lossSum + loss * float size
            right <- right + r
        let r = records[epoch]
        Assert.Equal((epoch + 1, 2), (r.Epoch, r.Epochs))
        Assert.Equal(lossSum / 470.0, r.Loss)
        Assert.Equal(float right / 470.0, r.Accuracy)
        Assert.False(r.ValidationLoss.HasValue || r.ValidationAccuracy.HasValue)
        Assert.InRange(r.Seconds, 1e-9, wall)
        Assert.Equal(470.0, r.ImagesPerSecond * r.Seconds, 6)
    Assert.Equal<float32[]>(weights manual, weights run)
    Assert.Equal(60L, run.Network.Step)
    // an epoch's end is a clean position: nothing carried into the next epoch
    let struct (last, _) = Checkpoint.Load(run.LastCheckpoint, plain)
    Assert.Equal((2, 0, 0.0, 0L, 0L, 0.0), (last.Epoch, last.Batch, last.LossSum, last.Correct, last.Seen, last.Seconds))

/// Records the rate scale and the figures of every progress report.
type private Progresses(trainer: Trainer ref) =
    member val Reports = ResizeArray<int * int * int * float * float * float * float>()
    member val Records = ResizeArray<EpochRecord>()
    interface ITrainingReport with
        member _.Started _ = ()
        member this.Progress(epoch, b, batches, loss, accuracy, rate) =
            this.Reports.Add((epoch, b, batches, loss, accuracy, rate, trainer.Value.Optimizer.LearningRateScale))
        member this.EpochDone r = this.Records.Add r
        member _.Stopped _ = ()

[<Fact>]
let ``warm-up raises the rate per step over its epochs, and progress reports the epoch's running figures`` () =
    // 96 examples in batches of 16: 6 batches an epoch; one epoch of warm-up, then constant.
    let set = data.Train.Slice(0, 96)
    let s = TrainingSettings(2, 16, 5, 0.0, Optimizer.Adam (0.01, 0.9, 0.999, 1e-7), Loss.CrossEntropy, 0.0, folder (), Warmup = 1)
    let trainer = ref Unchecked.defaultof<Trainer>
    let every = Progresses trainer
    trainer.Value <- Trainer(plain, set, s, every, ProgressInterval = TimeSpan.Zero)
    trainer.Value.Run(TrainingPosition.Start, CancellationToken.None) |> ignore
    let scales = [ for (_, _, _, _, _, _, scale) in every.Reports -> scale ]
    Assert.Equal<float list>([ for b in 1 .. 6 -> float b / 6.0 ] @ List.replicate 6 1.0, scales)
    Assert.Equal<(int * int * int) list>([ for e in 0 .. 1 do for b in 1 .. 6 -> e, b, 6 ], [ for (e, b, n, _, _, _, _) in every.Reports -> e, b, n ])
    // the last report of an epoch holds the epoch's figures
    for e in 0 .. 1 do
        let (_, _, _, loss, accuracy, rate, _) = every.Reports[e * 6 + 5]
        Assert.Equal((every.Records[e].Loss, every.Records[e].Accuracy), (loss, accuracy))
        // images a second of the epoch so far: at its last batch, the epoch's own figure (its
        // seconds end a moment later)
        Assert.InRange(rate, every.Records[e].ImagesPerSecond, every.Records[e].ImagesPerSecond * 1.5)
    // with a long interval, one report an epoch: at its last batch
    let rare = Progresses trainer
    trainer.Value <- Trainer(plain, set, s, rare, ProgressInterval = TimeSpan.FromHours 1.0)
    trainer.Value.Run(TrainingPosition.Start, CancellationToken.None) |> ignore
    Assert.Equal<(int * int) list>([ 0, 6; 1, 6 ], [ for (e, b, _, _, _, _, _) in rare.Reports -> e, b ])

[<Fact>]
let ``best.ckpt holds the epoch with the best validation accuracy, and a tie does not replace it`` () =
    let out = folder ()
    let report = Silent()
    let t = Trainer(plain, data.Train, TrainingSettings(3, 16, 5, 0.2, Optimizer.Adam (0.01, 0.9, 0.999, 1e-7), Loss.CrossEntropy, 0.0, out), report)
    Assert.Equal((384, 96), (t.TrainCount, t.ValidationCount))
    t.Run(TrainingPosition.Start, CancellationToken.None) |> ignore
    let accuracies = [ for r in report.Records -> r.ValidationAccuracy.Value ]
    let bestAccuracy = List.max accuracies
    let struct (best, _) = Checkpoint.Load(t.BestCheckpoint, plain)
    Assert.Equal(bestAccuracy, best.BestValidation)
    Assert.Equal(1 + List.findIndex ((=) bestAccuracy) accuracies, best.Epoch)
    // a rate of 0: every epoch ties with the first, whose checkpoint stays best.ckpt
    let still = Trainer(plain, data.Train, TrainingSettings(3, 16, 5, 0.0, Optimizer.Sgd (0.0, 0.0, false), Loss.CrossEntropy, 0.0, folder ()), Silent())
    still.Run(TrainingPosition.Start, CancellationToken.None) |> ignore
    let struct (best, _) = Checkpoint.Load(still.BestCheckpoint, plain)
    let struct (last, _) = Checkpoint.Load(still.LastCheckpoint, plain)
    Assert.Equal((1, 3), (best.Epoch, last.Epoch))

/// Zero weights: every output equal (a tie, which goes to the first class) and every
/// example's loss the same, so the training loss is the same every epoch in any order.
let private zeroed (t: Trainer) =
    for p in t.Network.Weights do Array.Clear p.Value
    t

[<Fact>]
let ``a tie predicts the first class, a sigmoid's 0.5 predicts class 1, and early stopping without validation names the training loss`` () =
    let flat = graph "input 16x16x1\nflatten\ndense 3 softmax"
    let report = Silent()
    let s = TrainingSettings(20, 16, 5, 0.0, Optimizer.Sgd (0.0, 0.0, false), Loss.CrossEntropy, 0.0, folder (), EarlyStopping = Nullable 2)
    let t = zeroed (Trainer(flat, data.Train, s, report))
    t.Run(TrainingPosition.Start, CancellationToken.None) |> ignore
    Assert.Equal("early stopping after epoch 3: no better loss for 2 epochs (best 1.0986)", report.Stops |> Seq.exactlyOne)
    let zeros = data.Test.Labels |> Array.filter ((=) 0) |> Array.length
    Assert.Equal(float zeros / float data.Test.Count, t.Evaluate(data.Test).Accuracy)
    // (the classes are balanced: on examples of one class a tie to the last class would show)
    let ofClass (set: Dataset) c = [| for i in 0 .. set.Count - 1 do if set.Labels[i] = c then yield i |] |> Array.truncate 16
    let zeros, twos = ofClass data.Test 0, ofClass data.Test 2
    Assert.True(zeros.Length > 4 && twos.Length > 4)
    Assert.Equal(zeros.Length, t.PredictBatch(data.Test, ReadOnlySpan zeros))
    Assert.Equal(0, t.PredictBatch(data.Test, ReadOnlySpan twos))
    let two = DataSets.Shapes(64, 40, 2)
    let sigmoid = zeroed (Trainer(graph "input 16x16x1\nflatten\ndense 1 sigmoid", two.Train, TrainingSettings(1, 16, 5, 0.0, Optimizer.Sgd (0.1, 0.0, false), Loss.BinaryCrossEntropy, 0.0, folder ()), Silent()))
    let ones, zeros = ofClass two.Test 1, ofClass two.Test 0
    Assert.True(ones.Length > 4 && zeros.Length > 4)
    Assert.Equal(ones.Length, sigmoid.PredictBatch(two.Test, ReadOnlySpan ones))
    Assert.Equal(0, sigmoid.PredictBatch(two.Test, ReadOnlySpan zeros))
    // with a validation split the message names the validation loss
    let report = Silent()
    let s = TrainingSettings(20, 16, 5, 0.2, Optimizer.Sgd (0.0, 0.0, false), Loss.CrossEntropy, 0.0, folder (), EarlyStopping = Nullable 2)
    (zeroed (Trainer(flat, data.Train, s, report))).Run(TrainingPosition.Start, CancellationToken.None) |> ignore
    Assert.Equal("early stopping after epoch 3: no better validation loss for 2 epochs (best 1.0986)", report.Stops |> Seq.exactlyOne)

[<Fact>]
let ``reported losses: cross-entropy on one sigmoid is binary cross-entropy, several sigmoids average theirs, and mean squared error ignores label smoothing`` () =
    let two = DataSets.Shapes(64, 40, 2)
    let three = DataSets.Shapes(64, 40, 3)
    // (model, data, loss, smoothing, the loss of one example from its outputs and label)
    let bce (p: float) (y: float) = -(y * log p + (1.0 - y) * log (1.0 - p))
    let cases : (string * DataSplit * Loss * float * (float[] -> int -> float)) list =
        [ "input 16x16x1\nflatten\ndense 1 sigmoid", two, Loss.CrossEntropy, 0.0, (fun o y -> bce o[0] (float y))
          "input 16x16x1\nflatten\ndense 3 sigmoid", three, Loss.BinaryCrossEntropy, 0.0,
            (fun o y -> Array.averageBy (fun j -> bce o[j] (if j = y then 1.0 else 0.0)) [| 0 .. 2 |])
          "input 16x16x1\nflatten\ndense 3 softmax", three, Loss.MeanSquaredError, 0.2,
            (fun o y -> Array.averageBy (fun j -> (o[j] - (if j = y then 1.0 else 0.0)) ** 2.0) [| 0 .. 2 |]) ]
    for text, split, loss, smoothing, perExample in cases do
        let g = graph text
        // batches of 16 over 40 test images: a stale target from an earlier batch would show
        let s = TrainingSettings(1, 16, 5, 0.0, Optimizer.Sgd (0.1, 0.0, false), loss, 0.0, folder (), LabelSmoothing = smoothing)
        let t = Trainer(g, split.Train, s, Silent())
        t.Run(TrainingPosition.Start, CancellationToken.None) |> ignore
        let single = singleCopy g t
        let expected = [ for i in 0 .. split.Test.Count - 1 -> perExample (outputsOf single split.Test i false) split.Test.Labels[i] ] |> List.average
        Assert.Equal(expected, t.Evaluate(split.Test).Loss, 5)

[<Fact>]
let ``a vector input takes images of as many values, an image input needs their height, width and channels, and too few outputs are refused`` () =
    Trainer(graph "input 256\ndense 3 softmax", data.Train, settings (folder ()) 1, Silent()) |> ignore
    let e = Assert.Throws<DataError>(fun () -> Trainer(graph "input 8x32x1\nflatten\ndense 3 softmax", data.Train, settings (folder ()) 1, Silent()) |> ignore)
    Assert.Contains("make the model's first line 'input 16x16x1'", e.Message)
    let e = Assert.Throws<DataError>(fun () -> Trainer(graph "input 16x16x1\nflatten\ndense 2 softmax", data.Train, settings (folder ()) 1, Silent()) |> ignore)
    Assert.Contains("the model ends in 2 values but", e.Message)
    Assert.Contains("has 3 classes; make the last layer 'dense 3 softmax'", e.Message)
    // the test set is checked too, and test-time flips need images
    let t = Trainer(plain, data.Train, settings (folder ()) 1, Silent())
    Assert.Throws<DataError>(fun () -> t.Evaluate(DataSets.Shapes(16, 16, 3, 8, 8).Test) |> ignore) |> ignore
    let flipped = TrainingSettings(1, 16, 5, 0.0, Optimizer.Adam (0.01, 0.9, 0.999, 1e-7), Loss.CrossEntropy, 0.0, folder (), TestTimeFlip = true)
    let e = Assert.Throws<DataError>(fun () -> Trainer(graph "input 256\ndense 3 softmax", data.Train, flipped, Silent()).Evaluate(data.Test) |> ignore)
    Assert.Contains("'tta flip' mirrors images, and the model's input is a vector; remove 'tta flip'", e.Message)

[<Fact>]
let ``a resume names every setting that differs and its fix: optimizer, seed, training examples, a missing average`` () =
    let out = folder ()
    stopBeforeBatch5 out
    let last = Path.Combine(out, "last.ckpt")
    let other = TrainingSettings(2, 16, 6, 0.1, Optimizer.Sgd (0.01, 0.0, false), Loss.CrossEntropy, 0.0, out)
    Assert.Equal(last + ": was made with optimizer adam (this run: sgd), seed 5 (this run: 6), 384 training examples (this run: 432); "
                 + "resume with --optimizer adam --seed 5 the same --data, --limit and --validation, or start a new run with --force or --out DIR", attempt other)
    let averaged = TrainingSettings(2, 16, 5, 0.2, Optimizer.Adam (0.01, 0.9, 0.999, 1e-7), Loss.CrossEntropy, 0.0, out, Ema = 0.9)
    Assert.Equal(last + ": was made without 'ema', which this run has: its weights' average cannot continue; start a new run with --weights "
                 + last + " and --out DIR (or --force)", attempt averaged)
    // a position past the epoch's batches is a caller's error
    let t = Trainer(model, data.Train, settings (folder ()) 2, Silent())
    Assert.Throws<ArgumentOutOfRangeException>(fun () -> t.Run(TrainingPosition(0, 24, 0L, 0L, 0.5), CancellationToken.None) |> ignore) |> ignore

[<Fact>]
let ``a pause is not training time, and the position saved there holds the epoch's figures so far`` () =
    let out = folder ()
    use source = new CancellationTokenSource()
    // the cancel arrives a second after the pause: the run must wait for it at that batch
    let t = Trainer(plain, data.Train, settings out 1, Silent(), PauseAt = Nullable<struct (int * int)>(struct (0, 3)),
                    Paused = Action(fun () -> Tasks.Task.Delay(1000).ContinueWith(fun (_: Tasks.Task) -> source.Cancel()) |> ignore))
    t.Run(TrainingPosition.Start, source.Token) |> ignore
    let struct (p, _) = Checkpoint.Load(t.LastCheckpoint, plain)
    Assert.Equal((0, 3, 48L), (p.Epoch, p.Batch, p.Seen))
    Assert.InRange(p.Correct, 0L, 48L)
    Assert.True(p.LossSum > 0.0)
    Assert.InRange(p.Seconds, 1e-9, 0.99)

/// The weights of a checkpoint's tensors by name.
let private tensorsOf (path: string) (g: CnnDsl.Graph.Graph) = let struct (_, t) = Checkpoint.Load(path, g) in t

[<Fact>]
let ``a run's moving average starts at its first weights, also after a transfer, and follows every step`` () =
    let source = Trainer(plain, data.Train, settings (folder ()) 1, Silent())
    source.Run(TrainingPosition.Start, CancellationToken.None) |> ignore
    // a rate of 0: the weights stay the transferred ones, and so must their average
    let s = TrainingSettings(1, 16, 5, 0.0, Optimizer.Sgd (0.0, 0.0, false), Loss.CrossEntropy, 0.0, folder (), Ema = 0.5)
    let t = Trainer(plain, data.Train, s, Silent())
    let struct (copied, kept) = t.Transfer source.LastCheckpoint
    Assert.Empty kept
    Assert.Equal(Seq.length t.Network.Weights, copied.Count)
    t.Run(TrainingPosition.Start, CancellationToken.None) |> ignore
    let saved = tensorsOf t.LastCheckpoint plain
    for p in t.Network.Weights do
        Assert.Equal<float32[]>(p.Value, saved[p.Name])
        Assert.Equal<float32[]>(p.Value, saved["ema/" + p.Name])
    // a rate above 0: the average moved from the start and lags the weights
    let s = TrainingSettings(1, 16, 5, 0.0, Optimizer.Adam (0.01, 0.9, 0.999, 1e-7), Loss.CrossEntropy, 0.0, folder (), Ema = 0.9)
    let t = Trainer(plain, data.Train, s, Silent())
    let start = weights t
    t.Run(TrainingPosition.Start, CancellationToken.None) |> ignore
    let saved = tensorsOf t.LastCheckpoint plain
    let average = t.Network.Weights |> Seq.collect (fun p -> saved["ema/" + p.Name]) |> Array.ofSeq
    Assert.NotEqual<float32[]>(start, average)
    Assert.NotEqual<float32[]>(weights t, average)
    // loading it for evaluation: the average is what evaluates, as in a network given its weights
    let evaluating = Trainer(plain, data.Train, s, Silent())
    evaluating.Load(t.LastCheckpoint, false) |> ignore
    let plainNet = Trainer(plain, data.Train, settings (folder ()) 1, Silent())
    plainNet.Load(t.LastCheckpoint, false) |> ignore
    let expected, actual = plainNet.Evaluate data.Test, evaluating.Evaluate data.Test
    Assert.Equal((expected.Loss, expected.Accuracy), (actual.Loss, actual.Accuracy))
    Assert.Equal<int>(Seq.cast<int> expected.Confusion, Seq.cast<int> actual.Confusion)

[<Fact>]
let ``a transfer copies the tensors whose names and sizes match, the average where the run kept one`` () =
    let source = Trainer(plain, data.Train, TrainingSettings(1, 16, 5, 0.0, Optimizer.Adam (0.01, 0.9, 0.999, 1e-7), Loss.CrossEntropy, 0.0, folder (), Ema = 0.9), Silent())
    source.Run(TrainingPosition.Start, CancellationToken.None) |> ignore
    let saved = tensorsOf source.LastCheckpoint plain
    // the same convolution, another head: the head's tensors keep their initial values
    let wider = graph "input 16x16x1\nconv 4 3x3 relu\nmaxpool 2\ndense 5 softmax"
    let t = Trainer(wider, DataSets.Shapes(40, 10, 5).Train, settings (folder ()) 1, Silent())
    let before = t.Network.Weights |> Seq.map (fun p -> p.Name, Array.copy p.Value) |> Map.ofSeq
    let struct (copied, kept) = t.Transfer source.LastCheckpoint
    Assert.NotEmpty copied
    Assert.NotEmpty kept
    for p in t.Network.Weights do
        if copied.Contains p.Name then Assert.Equal<float32[]>(saved["ema/" + p.Name], p.Value)
        else
            Assert.Contains(p.Name, kept)
            Assert.Equal<float32[]>(before[p.Name], p.Value)
            Assert.True(not (saved.ContainsKey p.Name) || saved[p.Name].Length <> p.Value.Length)

[<Fact>]
let ``a resume at an epoch's first batch with a moving average ends byte for byte as an uninterrupted run`` () =
    let straight, resumed, _, _ = interruptedAndStraight (recipe Schedule.Cosine) (1, 0)
    Assert.Equal<byte[]>(File.ReadAllBytes(Path.Combine(straight, "last.ckpt")), File.ReadAllBytes(Path.Combine(resumed, "last.ckpt")))

[<Fact>]
let ``augmentation draws anew for every step and seed, and a run without it sees the pixels as they are`` () =
    let s seed augment = TrainingSettings(1, 16, seed, 0.0, Optimizer.Sgd (0.0, 0.0, false), Loss.CrossEntropy, 0.0, folder (), Augment = augment)
    let inputs (t: Trainer) = t.Network.Input.ToArray()
    let batch = [| 0 .. 15 |]
    let a = Trainer(plain, data.Train, s 5 [| "flip"; "cutout 4" |], Silent())
    a.TrainBatch(ReadOnlySpan batch) |> ignore
    let first = inputs a
    a.TrainBatch(ReadOnlySpan batch) |> ignore
    Assert.NotEqual<float32[]>(first, inputs a)
    let b = Trainer(plain, data.Train, s 6 [| "flip"; "cutout 4" |], Silent())
    b.TrainBatch(ReadOnlySpan batch) |> ignore
    Assert.NotEqual<float32[]>(first, inputs b)
    let c = Trainer(plain, data.Train, s 5 [||], Silent())
    c.TrainBatch(ReadOnlySpan batch) |> ignore
    let raw = Array.zeroCreate<float32> (16 * 256)
    for i in 0 .. 15 do data.Train.CopyExample(i, raw.AsSpan(i * 256, 256))
    Assert.Equal<float32[]>(raw, (inputs c)[.. 16 * 256 - 1])
    Assert.NotEqual<float32[]>(raw, first[.. 16 * 256 - 1])

[<Fact>]
let ``without room for an inference network evaluation runs in the training network, and the next evaluation tries again`` () =
    let t = Trainer(model, data.Train, settings (folder ()) 1, Silent())
    // the run's validation, too, in the training network
    t.InferenceBudget <- fun () -> 0L
    t.Run(TrainingPosition.Start, CancellationToken.None) |> ignore
    Assert.Same(t.Network, t.InferenceNetwork)
    let cramped = t.Evaluate(data.Test)
    // memory came free: an inference network is built, and evaluates as the training one did
    t.InferenceBudget <- fun () -> 1L <<< 30
    let inference = t.InferenceNetwork
    Assert.NotSame(t.Network, inference)
    Assert.True(inference.IsInference)
    let roomy = t.Evaluate(data.Test)
    Assert.Equal(cramped.Accuracy, roomy.Accuracy, 12)
    Assert.Equal(cramped.Loss, roomy.Loss, 5)
