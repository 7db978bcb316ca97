/// Trains LeNet (models/lenet.cnn) through the CnnDsl library, then predicts one image:
///
///   dotnet run --project samples/TrainLeNet.FSharp -c Release -- [--epochs N] [--limit N]
///       [--data NAME|FOLDER] [--out DIR] [--image FILE] [--model FILE]
module TrainLeNet.Program

open System
open System.IO
open System.Threading
open CnnDsl

/// Reports at once on the training thread (Progress<T> would post to the thread pool).
let progress (f: 'T -> unit) = { new IProgress<'T> with member _.Report(value) = f value }

/// models/NAME in this folder or the nearest one above that has it.
let findModel (name: string) =
    let rec up (dir: DirectoryInfo | null) =
        match dir with
        | null -> Path.Combine("models", name)
        | dir ->
            let path = Path.Combine(dir.FullName, "models", name)
            if File.Exists path then path else up dir.Parent
    up (DirectoryInfo(Directory.GetCurrentDirectory()))

[<EntryPoint>]
let main args =
    let value name = match Array.IndexOf(args, name) with i when i >= 0 && i + 1 < args.Length -> Some args[i + 1] | _ -> None
    let number name = value name |> Option.map int
    try
        let model = Model.Load(value "--model" |> Option.defaultWith (fun () -> findModel "lenet.cnn"))
        printfn "Model %O, %s parameters" model (model.Summary().TotalParameters.ToString("N0"))
        // The data once, in memory: for training, and for a test image to classify.
        let data = model.LoadData(value "--data" |> Option.toObj)
        let data = match number "--limit" with Some n -> data.Limit n | None -> data
        printfn "Data %s: %d training, %d test examples of %s" data.Train.Name data.Train.Count data.Test.Count data.Train.ShapeText
        use stop = new CancellationTokenSource()
        Console.CancelKeyPress.Add(fun e -> e.Cancel <- true; stop.Cancel())
        let options =
            TrainingOptions(
                TrainingData = data,
                Epochs = Nullable(defaultArg (number "--epochs") 1),
                OutputFolder = defaultArg (value "--out") (Path.Combine("runs", "lenet-fsharp")),
                Force = true,
                ProgressInterval = TimeSpan.FromSeconds 1.0)
        let result =
            model.Train(options,
                        progress (fun (p: TrainingProgress) -> eprintf "\r  batch %d/%d - loss %.4f   " p.Batch p.Batches p.Loss),
                        progress (fun (epoch: EpochResult) -> eprintf "\r"; printfn "%O" epoch),
                        stop.Token)
        if not result.Succeeded then
            eprintfn "%s" result.Message
            1
        else
            match result.Test with
            | null -> ()
            | test -> printfn "Test: loss %.4f - accuracy %.4f (%d examples)" test.Loss test.Accuracy test.Count
            let checkpoint = match result.BestCheckpoint with null -> result.LastCheckpoint | best -> best
            printfn "Checkpoint: %s" checkpoint
            // A predictor is thread-safe: one can serve a whole web application.
            let predictor = Predictor(model, checkpoint)
            let prediction =
                match value "--image" with
                | Some image ->
                    printf "Image %s: " image
                    predictor.PredictFile image
                | None ->
                    printf "Test image 0 (%s): " data.Test.ClassNames[data.Test.Labels[0]]
                    predictor.Predict(data.Test.GetExample 0)
            printfn "predicted %s (%.4f)" prediction.BestClass prediction.BestProbability
            prediction.Probabilities |> Seq.iteri (fun i p -> printfn "  %s: %.4f" predictor.ClassNames[i] p)
            0
    with :? CnnDslException as e ->
        // Bad input (a model with mistakes, a missing data set or checkpoint): the message says what to do.
        eprintfn "error: %s" e.Message
        2
