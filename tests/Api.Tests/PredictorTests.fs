module CnnDsl.Api.Tests.PredictorTests

open System
open System.IO
open System.Threading.Tasks
open Xunit
open CnnDsl
open CnnDsl.Api.Tests.TestSupport

/// One trained checkpoint of the shapes model, shared by the tests of this module.
let private trained =
    lazy (
        let model = shapesModel ()
        let result = model.Train(TrainingOptions(TrainingData = shapes 500, OutputFolder = temp "predictor", Epochs = Nullable 3))
        model, result.LastCheckpoint)

/// A grey PNG of values in [0, 1], one byte per pixel (as the data sets keep them).
let private pngOf (values: float32[]) (h: int) (w: int) =
    use stream = new MemoryStream()
    let pixels = values |> Array.map (fun v -> byte (MathF.Round(v * 255.0f)))
    StbImageWriteSharp.ImageWriter().WritePng(pixels, w, h, StbImageWriteSharp.ColorComponents.Grey, stream)
    stream.ToArray()

[<Fact>]
let ``Predict gives probabilities that sum to 1 and agree with the batched and concurrent calls`` () =
    let model, checkpoint = trained.Force()
    let predictor = model.CreatePredictor checkpoint
    Assert.Equal<string>([ "horizontal"; "vertical"; "square" ], predictor.ClassNames)
    Assert.Equal(3, predictor.OutputSize)
    let test = (shapes 200).Test
    let inputs = [| for i in 0 .. test.Count - 1 -> test.GetExample i |]
    let one = inputs |> Array.map (fun (x: float32[]) -> predictor.Predict x)
    for p in one do
        Assert.Equal(3, p.Probabilities.Count)
        Assert.Equal(1.0f, Seq.sum p.Probabilities, 4)
        let top = p.Top 1
        Assert.Equal(top[0].Index, p.BestIndex)
    // a batch of 40 runs in parts of MaxBatchSize (32) and gives the same numbers
    let batch = predictor.PredictBatch(inputs :> Collections.Generic.IReadOnlyList<_>)
    let flat = predictor.PredictBatch(ReadOnlySpan(Array.concat inputs), inputs.Length)
    for i in 0 .. inputs.Length - 1 do
        Assert.Equal<float32>(one[i].ToArray(), batch[i].ToArray())
        Assert.Equal<float32>(one[i].ToArray(), flat[i].ToArray())
    // concurrent callers each use their own network: the same results
    let concurrent = Array.zeroCreate inputs.Length
    Parallel.For(0, 200, fun k -> let i = k % inputs.Length in concurrent[i] <- predictor.Predict(inputs[i]).ToArray()) |> ignore
    for i in 0 .. inputs.Length - 1 do Assert.Equal<float32>(one[i].ToArray(), concurrent[i])
    // most test shapes are recognised after three epochs on 500
    let right = one |> Array.mapi (fun i p -> if p.BestIndex = test.Labels[i] then 1 else 0) |> Array.sum
    Assert.True(right > inputs.Length / 2, sprintf "%d of %d right" right inputs.Length)

[<Fact>]
let ``Top ranks the classes and ToString is dsl predict's line`` () =
    let model, checkpoint = trained.Force()
    let p = Predictor(model, checkpoint).Predict((shapes 50).Test.GetExample 0)
    let top = p.Top 3
    Assert.Equal(3, top.Count)
    Assert.True(top[0].Probability >= top[1].Probability && top[1].Probability >= top[2].Probability)
    Assert.Equal(p.BestClass, top[0].Name)
    Assert.Equal(p.BestProbability, top[0].Probability)
    Assert.Equal(String.Join(", ", top |> Seq.map (fun c -> sprintf "%s %.4f" c.Name c.Probability)), string p)
    Assert.Throws<ArgumentOutOfRangeException>(fun () -> p.Top 0 |> ignore) |> ignore

[<Fact>]
let ``images are read as dsl predict reads them: files, bytes, and a wrong size named`` () =
    let model, checkpoint = trained.Force()
    let predictor = Predictor(model, checkpoint)
    let example = (shapes 50).Test.GetExample 1
    let png = pngOf example 16 16
    let file = temp "image" + ".png"
    File.WriteAllBytes(file, png)
    let fromFile = predictor.PredictFile file
    let fromBytes = predictor.PredictImage png
    let fromValues = predictor.Predict example
    // an image's values are v/255 in double, a data set's v * (1/255) in float: the same up to rounding
    let near (a: Prediction) (b: Prediction) = Array.iter2 (fun (x: float32) y -> Assert.Equal(float x, float y, 5)) (a.ToArray()) (b.ToArray())
    near fromValues fromFile
    Assert.Equal<float32>(fromFile.ToArray(), fromBytes.ToArray())
    let files = predictor.PredictFiles [| file; file |]
    Assert.Equal<float32>(fromFile.ToArray(), files[1].ToArray())
    let small = temp "small" + ".png"
    File.WriteAllBytes(small, pngOf (Array.zeroCreate 100) 10 10)
    let e = Assert.Throws<DataException>(fun () -> predictor.PredictFile small |> ignore)
    Assert.Equal(sprintf "%s: is 10x10x1 but the model's input is 16x16x1; give a matching input (resize images first) or change the model's input line" small, e.Message)
    let e = Assert.Throws<DataException>(fun () -> predictor.PredictImage [| 1uy; 2uy; 3uy |] |> ignore)
    Assert.StartsWith("image: not a readable image", e.Message)
    let e = Assert.Throws<DataException>(fun () -> predictor.Predict(Array.create 256 Single.NaN) |> ignore)
    Assert.Equal("input: holds NaN at row 1, column 1: inputs must be finite numbers between -3.4e38 and 3.4e38; correct that value", e.Message)
    Assert.Throws<DataException>(fun () -> predictor.Predict(Array.zeroCreate 255) |> ignore) |> ignore

[<Fact>]
let ``a checkpoint of another model or no checkpoint is a CheckpointException`` () =
    let model, checkpoint = trained.Force()
    Assert.Contains("no such checkpoint", (Assert.Throws<CheckpointException>(fun () -> Predictor(model, checkpoint + ".missing") |> ignore)).Message)
    let lenet = Model.Load lenetPath
    Assert.Throws<CheckpointException>(fun () -> Predictor(lenet, checkpoint) |> ignore) |> ignore

[<Fact>]
let ``an any-size model predicts at each input's size`` () =
    let model = Model.Parse("input ?x?x1\nconv 8 3x3 relu\nglobalmaxpool\ndense 3 softmax\ntrain\n  data shapes\n  optimizer adam\n  batch 16\n", "anysize")
    let result = model.Train(TrainingOptions(TrainingData = shapes 64, OutputFolder = temp "anysize-predict"))
    let predictor = model.CreatePredictor result.LastCheckpoint
    let at16 = predictor.Predict(ReadOnlySpan((shapes 50).Test.GetExample 0), 16, 16)
    let at24 = predictor.Predict(ReadOnlySpan(Array.create (24 * 20) 0.5f), 24, 20)
    Assert.Equal(1.0f, Seq.sum at16.Probabilities, 4)
    Assert.Equal(1.0f, Seq.sum at24.Probabilities, 4)
    let e = Assert.ThrowsAny<CnnDslException>(fun () -> predictor.Predict(Array.zeroCreate 256) |> ignore)
    Assert.Contains("takes any input size (?x?x1); give the input's height and width", e.Message)
    let file = temp "any" + ".png"
    File.WriteAllBytes(file, pngOf (Array.create (12 * 30) 0.2f) 12 30)
    Assert.Equal(3, (predictor.PredictFile file).Probabilities.Count)
    // A batch of any-size inputs at one size equals the inputs one by one.
    let rng = Random 3
    let three = Array.init (3 * 24 * 20) (fun _ -> float32 (rng.NextDouble()))
    let batch = predictor.PredictBatch(ReadOnlySpan three, 3, 24, 20)
    for i in 0 .. 2 do
        let alone = predictor.Predict(ReadOnlySpan(three, i * 480, 480), 24, 20)
        Assert.Equal<float32>(alone.ToArray(), batch[i].ToArray())

[<Fact>]
let ``a model ending in one sigmoid unit ranks classes 1 and 0 as BestClass reads its output`` () =
    let model = Model.Parse("input 2\ndense 4 relu\ndense 1 sigmoid\ntrain\n  data xor\n  loss bce\n  optimizer adam\n  batch 4\n  seed 1\n", "binary")
    let result = model.Train(TrainingOptions(OutputFolder = temp "binary", Epochs = Nullable 2))
    let predictor = model.CreatePredictor result.LastCheckpoint
    Assert.Equal<string>([ "0"; "1" ], predictor.ClassNames)
    for input in [ [| 0.0f; 0.0f |]; [| 0.0f; 1.0f |]; [| 1.0f; 0.0f |]; [| 3.0f; -2.0f |] ] do
        let p = predictor.Predict input
        let output = p.Probabilities[0]
        let top = p.Top 2
        Assert.Equal(2, top.Count)
        // Top(1) was class 0 with the probability of class 1, whatever the output
        Assert.Equal(p.BestIndex, top[0].Index)
        Assert.Equal(p.BestClass, top[0].Name)
        Assert.Equal(p.BestProbability, top[0].Probability)
        let one = top |> Seq.find (fun c -> c.Index = 1)
        Assert.Equal(output, one.Probability)
        Assert.Equal("1", one.Name)
        Assert.Equal(1.0f - output, (top |> Seq.find (fun c -> c.Index = 0)).Probability)
        Assert.Equal(string top[0] + ", " + string top[1], string p)
