module CnnDsl.Runtime.Tests.DataSetsTests

open System.IO
open Xunit
open CnnDsl.Graph
open CnnDsl.Runtime.Data
open CnnDsl.Runtime.Training
open CnnDsl.Runtime.Tests.TestSupport
open CnnDsl.Runtime.Tests.DataFiles

[<Fact>]
let ``the generated shapes set is refused at an input too large for memory, before it is generated`` () =
    let mutable e = null
    // 2,500 images of 1024x1024x3 are 7.3 GB: more than any budget (at most one array's 2 GB).
    let bytes = allocated (fun () -> e <- Assert.Throws<DataError>(fun () -> DataSets.Load("shapes", 1024, 1024, 3) |> ignore))
    Assert.Equal("shapes", e.File)
    Assert.Contains("at 1024x1024x3, the 2000 training and 500 test images generated would take 7.32 GB", e.Problem)
    Assert.Matches("give the model an input of at most [0-9]+x[0-9]+x3 to train on shapes", e.Problem)
    Assert.True(bytes < 1_000_000L, sprintf "%d bytes allocated" bytes)

[<Fact>]
let ``the size the shapes message suggests is one that loads`` () =
    withBudget 3_000_000L (fun () ->
        let e = Assert.Throws<DataError>(fun () -> DataSets.Load("shapes", 64, 64, 1) |> ignore)
        let side = int (System.Text.RegularExpressions.Regex.Match(e.Problem, "at most ([0-9]+)x").Groups[1].Value)
        Assert.Equal(34, side)
        let split = DataSets.Load("shapes", side, side, 1)
        Assert.Equal((2000, 500, side), (split.Train.Count, split.Test.Count, split.Train.Height)))

let private imageSet (grey: bool) (folder: string) =
    for c in [ "a"; "b" ] do
        Directory.CreateDirectory(Path.Combine(folder, c)) |> ignore
        for i in 0 .. 1 do
            let bytes = if grey then png 4 4 1 (Array.create 16 (byte (i * 50))) else png 4 4 3 (Array.create 48 (byte (i * 50)))
            File.WriteAllBytes(Path.Combine(folder, c, sprintf "%d.png" i), bytes)

[<Fact>]
let ``colour test images for a grey training set are refused, naming the test folder`` () =
    let d = tempFolder "cnndsl-split-"
    imageSet true (Path.Combine(d, "train"))
    imageSet false (Path.Combine(d, "test"))
    let e = Assert.Throws<DataError>(fun () -> DataSets.Load d |> ignore)
    Assert.StartsWith(Path.Combine(d, "test"), e.File)
    Assert.Contains(sprintf "but the training images are 4x4x1; the test images in %s must have the training images' size" (Path.Combine(d, "test")), e.Problem)
    imageSet true (Path.Combine(d, "test"))
    Assert.Equal(4, (DataSets.Load d).Test.Count)

[<Fact>]
let ``evaluating on a set of another shape than the model's input is a data error`` () =
    let model = graph "input 16x16x1\nconv 2 3x3 relu\nglobalavgpool\ndense 3 softmax"
    let settings = TrainingSettings(1, 4, 1, 0.0, Optimizer.Sgd (0.1, 0.0, false), Loss.CrossEntropy, 0.0, tempFolder "cnndsl-eval-")
    let report =
        { new ITrainingReport with
            member _.Started _ = ()
            member _.Progress(_, _, _, _, _, _) = ()
            member _.EpochDone _ = ()
            member _.Stopped _ = () }
    let trainer = Trainer(model, (DataSets.Shapes(8, 4, 1)).Train, settings, report)
    let small = (DataSets.Shapes(8, 4, 1, 14, 14, 1)).Test
    Assert.Contains("the model's input is", (Assert.Throws<DataError>(fun () -> trainer.Evaluate small |> ignore)).Problem)
    Assert.Equal(4, (trainer.Evaluate (DataSets.Shapes(8, 4, 1)).Test).Confusion |> Seq.cast<int> |> Seq.sum)
