module CnnDsl.Runtime.Tests.NormalizationTests

open System
open System.IO
open System.Threading
open Xunit
open CnnDsl.Graph
open CnnDsl.Runtime
open CnnDsl.Runtime.Data
open CnnDsl.Runtime.Training
open CnnDsl.Runtime.Tests.TestSupport

let private set (rng: Random) n h w c =
    let pixels = Array.init (n * h * w * c) (fun i -> byte (rng.Next(0, 256) / (1 + i % c)))
    Dataset("t", h, w, c, pixels, Array.init n (fun i -> i % 3), [| "a"; "b"; "c" |])

[<Fact>]
let ``the statistics are numpy's per-channel mean and population deviation of the images in [0, 1]`` () =
    let data = set (Random 3) 7 5 4 3
    let struct (mean, deviation) = Normalization.Of data
    let answer = oracle "normalize.py" {| pixels = Array.map int data.Pixels; shape = [| 7; 5; 4; 3 |] |}
    assertRelative 1e-6 1e-9 "mean" (numbers (answer.GetProperty "mean")) (Array.map float mean)
    assertRelative 1e-6 1e-9 "deviation" (numbers (answer.GetProperty "std")) (Array.map float deviation)

let private model = "input 6x5x3\nconv 4 3x3 relu\nflatten\ndense 3 softmax\n"

[<Fact>]
let ``a normalizing network computes the plain network on (x - mean) / deviation, and its input gradient is the raw input's`` () =
    let plainGraph = graph model
    let normalized = graph (model + "train\n  normalize")
    let a = Network<float>(plainGraph, 2, 4, inputGradient = true)
    let b = Network<float>(normalized, 2, 4, inputGradient = true)
    let (mean, deviation) = b.InputStatistics.Value.ToTuple()
    mean.Value.[0..2] <- [| 0.5; -0.2; 0.1 |]
    deviation.Value.[0..2] <- [| 0.25; 2.0; 0.7 |]
    let rng = Random 9
    let raw = Array.init b.Input.Length (fun _ -> rng.NextDouble())
    copyFrom raw b.Input
    copyFrom (raw |> Array.mapi (fun i x -> (x - mean.Value[i % 3]) / deviation.Value[i % 3])) a.Input
    a.Forward(true); b.Forward(true)
    assertClose 1e-12 (a.Output.ToArray()) (b.Output.ToArray())
    Losses.CrossEntropy(a, ReadOnlySpan [| 0; 2 |]) |> ignore
    Losses.CrossEntropy(b, ReadOnlySpan [| 0; 2 |]) |> ignore
    a.Backward(); b.Backward()
    // d loss / d raw by central differences on the normalizing network
    let analytic = b.InputGradient.ToArray()
    for i in [ 0; 1; 2; 17; 44; b.Input.Length - 1 ] do
        let at v =
            b.Input[i] <- v
            b.Forward(true)
            Losses.CrossEntropy(b, ReadOnlySpan [| 0; 2 |])
        let numerical = (at (raw[i] + 1e-6) - at (raw[i] - 1e-6)) / 2e-6
        b.Input[i] <- raw[i]
        Assert.True(abs (analytic[i] - numerical) < 1e-6 * max 1.0 (abs numerical), sprintf "input %d: %g against %g" i analytic[i] numerical)
    assertClose 1e-12 (a.InputGradient.ToArray() |> Array.mapi (fun i g -> g / deviation.Value[i % 3])) analytic

let private silent =
    { new ITrainingReport with
        member _.Started _ = ()
        member _.Progress(_, _, _, _, _, _) = ()
        member _.EpochDone _ = ()
        member _.Stopped m = failwith m }

[<Fact>]
let ``a run stores the training part's statistics in its checkpoint; predictions load them, and a checkpoint without them loads as no normalisation`` () =
    let g = graph (model + "train\n  normalize")
    let data = set (Random 4) 40 6 5 3
    let out = Path.Combine(Path.GetTempPath(), "cnndsl-norm-" + Path.GetRandomFileName())
    let t = Trainer(g, data, TrainingSettings(1, 8, 1, 0.25, Optimizer.Sgd (0.01, 0.0, false), Loss.CrossEntropy, 0.0, out), silent)
    // the statistics of the 30 training examples, not of the 10 held out
    let struct (expectedMean, expectedDeviation) = Normalization.Of(data.Slice(0, 30))
    let struct (allMean, _) = Normalization.Of data
    let (mean, deviation) = t.Network.InputStatistics.Value.ToTuple()
    Assert.Equal<float32[]>(expectedMean, mean.Value)
    Assert.NotEqual<float32[]>(allMean, mean.Value)
    t.Run(TrainingPosition.Start, CancellationToken.None) |> ignore
    let struct (_, tensors) = Checkpoint.Load(t.LastCheckpoint, g)
    Assert.Equal<float32[]>(expectedDeviation, tensors[Normalization.Deviation])
    let net = Network<float32>(g, 1, 0)
    Checkpoint.LoadWeights(t.LastCheckpoint, g, net.Weights)
    Assert.Equal<float32[]>(expectedMean, (fst (net.InputStatistics.Value.ToTuple())).Value)
    // a checkpoint of the model without normalize (the architecture is the same) loads as mean 0, deviation 1
    let plain = graph model
    let old = Trainer(plain, data, TrainingSettings(1, 8, 1, 0.0, Optimizer.Sgd (0.01, 0.0, false), Loss.CrossEntropy, 0.0, out + "-old"), silent)
    old.Run(TrainingPosition.Start, CancellationToken.None) |> ignore
    let again = Network<float32>(g, 1, 0)
    Checkpoint.LoadWeights(old.LastCheckpoint, g, again.Weights)
    let (m, d) = again.InputStatistics.Value.ToTuple()
    Assert.Equal<float32[]>([| 0.0f; 0.0f; 0.0f |], m.Value)
    Assert.Equal<float32[]>([| 1.0f; 1.0f; 1.0f |], d.Value)
    let evaluator = Trainer(g, data, TrainingSettings(1, 8, 1, 0.0, Optimizer.Sgd (0.01, 0.0, false), Loss.CrossEntropy, 0.0, out + "-eval"), silent)
    evaluator.Load(old.LastCheckpoint, false) |> ignore
    Assert.Equal((old.Evaluate data).Accuracy, (evaluator.Evaluate data).Accuracy)
