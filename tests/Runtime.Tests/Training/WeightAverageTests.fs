module CnnDsl.Runtime.Tests.WeightAverageTests

open System
open System.IO
open System.Threading
open Xunit
open CnnDsl.Graph
open CnnDsl.Runtime
open CnnDsl.Runtime.Data
open CnnDsl.Runtime.Training
open CnnDsl.Runtime.Tests.TestSupport

[<Fact>]
let ``the moving average follows timm's ModelEmaV2 step by step`` () =
    let rng = Random 8
    let ps = [| Parameter<float32>("a/kernel", [| 19 |], true); Parameter<float32>("b/moving_mean", [| 3 |], false) |]
    for p in ps do for i in 0 .. p.Value.Length - 1 do p.Value[i] <- float32 (rng.NextDouble() * 2.0 - 1.0)
    let start = ps |> Array.map (fun p -> Array.map float p.Value)
    let average = WeightAverage(ps, 0.9)
    let steps, ours =
        [ for _ in 1 .. 12 ->
            for p in ps do for i in 0 .. p.Value.Length - 1 do p.Value[i] <- p.Value[i] + float32 (rng.NextDouble() - 0.5)
            let weights = ps |> Array.map (fun p -> Array.map float p.Value)
            average.Update()
            weights, [| for struct (_, v) in average.Tensors -> Array.map float v |] ]
        |> List.unzip
    let answer = oracle "ema.py" {| decay = 0.9; start = start; steps = steps |}
    for t, (mine, theirs) in Seq.indexed (Seq.zip ours (answer.GetProperty("averages").EnumerateArray())) do
        for i, expected in Seq.indexed (theirs.EnumerateArray()) do
            assertRelative 1e-6 1e-6 (sprintf "step %d, tensor %d" (t + 1) i) (numbers expected) mine[i]
    // the averages lag the weights; a swap exchanges them, a second restores them
    let live = ps |> Array.map (fun p -> Array.copy p.Value)
    average.Swap()
    Assert.NotEqual<float32[]>(live[0], ps[0].Value)
    let struct (_, first) = Seq.head average.Tensors
    Assert.Equal<float32[]>(first, live[0])
    average.Swap()
    Assert.Equal<float32[]>(live[0], ps[0].Value)

let private model = graph "input 16x16x1\nconv 4 3x3 relu\nmaxpool 2\nbatchnorm\ndense 3 softmax"
let private data = DataSets.Shapes(240, 90, 3)
let private folder () = Path.Combine(Path.GetTempPath(), "cnndsl-ema-" + Path.GetRandomFileName())
let private silent =
    { new ITrainingReport with
        member _.Started _ = ()
        member _.Progress(_, _, _, _, _, _) = ()
        member _.EpochDone _ = ()
        member _.Stopped m = failwith m }
let private settings out = TrainingSettings(2, 16, 3, 0.0, Optimizer.Adam (0.01, 0.9, 0.999, 1e-7), Loss.CrossEntropy, 0.0, out)
let private withEma out = TrainingSettings(2, 16, 3, 0.0, Optimizer.Adam (0.01, 0.9, 0.999, 1e-7), Loss.CrossEntropy, 0.0, out, Ema = 0.9)

[<Fact>]
let ``with ema, evaluation runs on the averages, which the checkpoint holds and dsl eval's loading picks`` () =
    let out = folder ()
    let t = Trainer(model, data.Train, withEma out, silent)
    t.Run(TrainingPosition.Start, CancellationToken.None) |> ignore
    let withAverage = t.Evaluate(data.Test)
    let struct (_, tensors) = Checkpoint.Load(t.LastCheckpoint, model)
    // every weight and batchnorm statistic has its average, and the averages differ from the weights
    for p in t.Network.Weights do
        Assert.True(tensors.ContainsKey("ema/" + p.Name), p.Name)
        Assert.Equal<float32[]>(p.Value, tensors[p.Name])
    Assert.NotEqual<float32[]>(tensors["conv2d/kernel"], tensors["ema/conv2d/kernel"])
    // a trainer without ema loading the checkpoint's weights (as dsl eval) evaluates the averages
    let fresh = Trainer(model, data.Train, settings (folder ()), silent)
    fresh.Load(t.LastCheckpoint, false) |> ignore
    Assert.Equal<float32[]>(tensors["ema/conv2d/kernel"], (fresh.Network.Weights |> Seq.head).Value)
    let loaded = fresh.Evaluate(data.Test)
    // and so does LoadWeights (dsl predict, apply, show)
    let net = Network<float32>(model, 1, 0)
    Checkpoint.LoadWeights(t.LastCheckpoint, model, net.Weights)
    for p in net.Weights do Assert.Equal<float32[]>(tensors["ema/" + p.Name], p.Value)
    Assert.Equal((withAverage.Loss, withAverage.Accuracy), (loaded.Loss, loaded.Accuracy))
    // the live weights evaluate otherwise
    let live = Trainer(model, data.Train, settings (folder ()), silent)
    Checkpoint.Restore(t.LastCheckpoint, tensors, live.Network.Weights |> Seq.map (fun p -> struct (p.Name, p.Value)))
    Assert.NotEqual(withAverage.Loss, live.Evaluate(data.Test).Loss)

/// The set with every image mirrored left to right.
let private mirrored (set: Dataset) =
    let h, w, c = set.Height, set.Width, set.Channels
    let pixels = Array.copy set.Pixels
    for i in 0 .. set.Count - 1 do
        for y in 0 .. h - 1 do
            for x in 0 .. w - 1 do
                for k in 0 .. c - 1 do
                    pixels[((i * h + y) * w + x) * c + k] <- set.Pixels[((i * h + y) * w + (w - 1 - x)) * c + k]
    Dataset(set.Name, h, w, c, pixels, set.Labels, set.ClassNames)

/// The set with every image read from (y + d, x + d), zeros outside.
let private moved d (set: Dataset) =
    let h, w, c = set.Height, set.Width, set.Channels
    let pixels = Array.zeroCreate set.Pixels.Length
    for i in 0 .. set.Count - 1 do
        for y in 0 .. h - 1 do
            for x in 0 .. w - 1 do
                let sy, sx = y + d, x + d
                if sy >= 0 && sy < h && sx >= 0 && sx < w then
                    for k in 0 .. c - 1 do
                        pixels[((i * h + y) * w + x) * c + k] <- set.Pixels[((i * h + sy) * w + sx) * c + k]
    Dataset(set.Name, h, w, c, pixels, set.Labels, set.ClassNames)

/// A trainer evaluating with these test-time views, loaded from the checkpoint.
let private withViews flip shift checkpoint =
    let t = Trainer(model, data.Train, TrainingSettings(1, 16, 3, 0.0, Optimizer.Adam (0.01, 0.9, 0.999, 1e-7), Loss.CrossEntropy, 0.0, folder (), TestTimeFlip = flip, TestTimeShift = shift), silent)
    t.Load(checkpoint, false) |> ignore
    t

/// The reference accuracy: each test image's views (its place in each weighted set) by
/// single-example forward passes, their outputs weighted and summed; the largest decides.
let private mixtureAccuracy checkpoint (views: (Dataset * float) list) =
    let net = Network<float32>(model, 1, 0)
    Checkpoint.LoadWeights(checkpoint, model, net.Weights)
    let outputs (set: Dataset) i =
        set.CopyExample(i, net.Input)
        net.Forward(false)
        net.Output.ToArray()
    let right =
        [ for i in 0 .. data.Test.Count - 1 ->
            let mean = views |> List.map (fun (set, weight) -> outputs set i |> Array.map (fun o -> float32 weight * o)) |> List.reduce (Array.map2 (+))
            if Array.IndexOf(mean, Array.max mean) = data.Test.Labels[i] then 1 else 0 ] |> List.sum
    float right / float data.Test.Count

[<Fact>]
let ``tta flip predicts from the mean of the outputs for each image and its mirror, and reports the two views' mean loss`` () =
    let plain = Trainer(model, data.Train, settings (folder ()), silent)
    plain.Run(TrainingPosition.Start, CancellationToken.None) |> ignore
    let tta = (withViews true 0 plain.LastCheckpoint).Evaluate(data.Test)
    let a, b = plain.Evaluate(data.Test), plain.Evaluate(mirrored data.Test)
    Assert.Equal((a.Loss + b.Loss) / 2.0, tta.Loss, 6)
    Assert.Equal(mixtureAccuracy plain.LastCheckpoint [ data.Test, 0.5; mirrored data.Test, 0.5 ], tta.Accuracy, 12)

[<Fact>]
let ``tta flip shift 1 weighs airbench's six views: the image and its mirror a half, the four moved views the other half`` () =
    let plain = Trainer(model, data.Train, settings (folder ()), silent)
    plain.Run(TrainingPosition.Start, CancellationToken.None) |> ignore
    let tta = (withViews true 1 plain.LastCheckpoint).Evaluate(data.Test)
    // moved, then mirrored, as airbench's infer_mirror of a translated batch
    let sets = [ data.Test, 0.25; mirrored data.Test, 0.25
                 moved 1 data.Test, 0.125; mirrored (moved 1 data.Test), 0.125
                 moved -1 data.Test, 0.125; mirrored (moved -1 data.Test), 0.125 ]
    Assert.Equal(sets |> List.sumBy (fun (set, weight) -> weight * plain.Evaluate(set).Loss), tta.Loss, 5)
    Assert.Equal(mixtureAccuracy plain.LastCheckpoint sets, tta.Accuracy, 12)
    // the moved views change the outcome (else this test could not tell them apart)
    Assert.NotEqual((withViews true 0 plain.LastCheckpoint).Evaluate(data.Test).Loss, tta.Loss)

[<Fact>]
let ``a resume with ema from a checkpoint made without it is refused with the way out`` () =
    let out = folder ()
    let t = Trainer(model, data.Train, settings out, silent)
    t.Run(TrainingPosition.Start, CancellationToken.None) |> ignore
    let resumed = Trainer(model, data.Train, withEma out, silent)
    let e = Assert.Throws<CheckpointError>(fun () -> resumed.Load(resumed.LastCheckpoint, true) |> ignore)
    Assert.Contains("was made without 'ema'", e.Message)

[<Fact>]
let ``the decay must lie strictly between 0 and 1, and Reset starts the averages at the current weights`` () =
    let ps = [| Parameter<float32>("a/kernel", [| 5 |], true) |]
    for d in [ 0.0; 1.0; -0.5; 1.5; nan ] do
        let e = Assert.Throws<ArgumentOutOfRangeException>(fun () -> WeightAverage(ps, d) |> ignore)
        Assert.StartsWith("the decay is in (0, 1)", e.Message)
    let average = WeightAverage(ps, 0.999)
    ps[0].Value[2] <- 4.0f
    average.Update()
    let struct (_, v) = Seq.head average.Tensors
    Assert.NotEqual(4.0f, v[2])
    average.Reset()
    let struct (_, v) = Seq.head average.Tensors
    Assert.Equal<float32[]>(ps[0].Value, v)
