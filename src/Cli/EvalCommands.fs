/// `dsl eval` and `dsl show confusion`: a checkpoint on the model's test set.
module CnnDsl.Cli.EvalCommands

open System
open System.IO
open CnnDsl.Graph
open CnnDsl.Dsl
open CnnDsl.Runtime
open CnnDsl.Runtime.Data
open CnnDsl.Runtime.Training
open CnnDsl.Cli.Shell
open CnnDsl.Cli.Render
open CnnDsl.Cli.RunCommand

/// Evaluates a checkpoint on the model's test set and hands the result to `f`.
let internal evaluate (console: Console) (command: string) (file: string) (options: RunOptions) (f: Evaluation -> int) : int =
    match options.Weights with
    | None ->
        console.Err.WriteLine(sprintf "dsl: %s needs --weights CHECKPOINT (for example runs/lenet/best.ckpt)" command)
        CannotRun
    | Some weights ->
    withModel console file (fun text graph ->
    match settingsOf file graph options with
    | Error message -> console.Err.WriteLine("dsl: " + message); CannotRun
    | Ok (_, None) -> console.Err.WriteLine(sprintf "dsl: no data set: add 'data NAME' to the train section of %s, or give --data NAME|FOLDER" file); CannotRun
    | Ok (settings, Some dataName) ->
    guarded console (fun () ->
        let split = loadData dataName graph |> limitSplit options.Limit
        let graph = sizedToData text graph split.Train
        let trainer = Trainer(graph, split.Train, TrainingSettings(1, settings.BatchSize, 0, 0.0, settings.Optimizer, settings.Loss, 0.0, settings.OutputFolder), ConsoleReport(console, true, false, false, settings.BatchSize))
        trainer.Load(weights, false) |> ignore
        if split.Test.Count = 0 then raise (DataError(split.Test.Name, sprintf "has no test examples, so there is nothing to %s; give --data a set with a test part" command))
        let test = trainer.Evaluate(split.Test)
        console.Out.WriteLine(sprintf "Test: loss %.4f - accuracy %.4f (%s examples)" test.Loss test.Accuracy (Messages.thousands (int64 split.Test.Count)))
        f test))

/// `dsl eval FILE --weights W`: the test set's loss, accuracy and confusion matrix.
let eval (console: Console) (file: string) (options: RunOptions) : int =
    evaluate console "eval" file options (fun test ->
        console.Out.Write(confusionText test)
        Clean)

/// A picture's default file name: the model's and the layer's names, made safe for a path.
let internal pictureName (file: string) (what: string) =
    let safe (s: string) = String(s |> Seq.map (fun c -> if Char.IsAsciiLetterOrDigit c || c = '-' || c = '_' then c else '_') |> Array.ofSeq)
    sprintf "%s-%s.png" (safe (Path.GetFileNameWithoutExtension file)) (safe what)

/// `dsl show confusion FILE --weights W [-o OUT]`: the test set's confusion matrix as a heat map.
let showConfusion (console: Console) (file: string) (options: RunOptions) (output: string option) : int =
    match output |> Option.bind (fun o -> fileProblem "-o" o "confusion.png") with
    | Some problem -> console.Err.WriteLine("dsl: " + problem); CannotRun
    | None ->
    evaluate console "show confusion" file options (fun test ->
        if test.Confusion.Length = 0 then
            console.Err.WriteLine(sprintf "dsl: the data set has more than %s classes: no confusion matrix is kept" (Messages.thousands (int64 Trainer.MaxConfusionClasses)))
            CannotRun
        else
        let path = defaultArg output (pictureName file "confusion")
        Pictures.write path (Pictures.confusion (sprintf "%s: test accuracy %.4f" (Path.GetFileNameWithoutExtension file) test.Accuracy) test.Confusion test.ClassNames)
        console.Out.WriteLine(sprintf "wrote %s" path)
        Clean)
