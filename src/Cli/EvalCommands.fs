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
let internal evaluate (console: Console) (command: string) (file: string) (options: RunOptions) (f: CnnDsl.Evaluation -> int) : int =
    match options.Weights with
    | None ->
        console.Err.WriteLine(sprintf "dsl: %s needs --weights CHECKPOINT (for example runs/lenet/best.ckpt)" command)
        CannotRun
    | Some weights ->
    withModel console file (fun text graph ->
    match settingsOf file graph options with
    | Error message -> console.Err.WriteLine("dsl: " + message); CannotRun
    | Ok (_, None) -> console.Err.WriteLine(sprintf "dsl: no data set: add 'data NAME' to the train section of %s, or give --data NAME|FOLDER" file); CannotRun
    | Ok (_, Some dataName) ->
    guarded console (fun () ->
        let test = (loadData dataName graph |> limitSplit options.Limit).Test
        if test.Count = 0 then
            raise (DataError(test.Name, sprintf "has no test examples, so there is nothing to %s; give --data a set with a test part" command))
        let name = Path.GetFileNameWithoutExtension file
        let evaluation = CnnDsl.Runs.evaluate cliSpelling name text graph weights test (Option.toNullable options.Batch)
        console.Out.WriteLine(testLine evaluation)
        f evaluation))

/// `dsl eval FILE --weights W`: the test set's loss, accuracy and confusion matrix.
let eval (console: Console) (file: string) (options: RunOptions) : int =
    evaluate console "eval" file options (fun test ->
        console.Out.Write(confusionText test)
        Clean)

/// `dsl show confusion FILE --weights W [-o OUT]`: the test set's confusion matrix as a heat map.
let showConfusion (console: Console) (file: string) (options: RunOptions) (output: string option) : int =
    match output |> Option.bind (fun o -> fileProblem "-o" o "confusion.png") with
    | Some problem -> console.Err.WriteLine("dsl: " + problem); CannotRun
    | None ->
    evaluate console "show confusion" file options (fun test ->
        if not test.HasConfusionMatrix then
            console.Err.WriteLine(
                sprintf "dsl: the data set has more than %s classes: no confusion matrix is kept"
                    (Messages.thousands (int64 Trainer.MaxConfusionClasses)))
            CannotRun
        else
        let path = defaultArg output (pictureName file "confusion")
        writeConfusion path (Path.GetFileNameWithoutExtension file) test
        console.Out.WriteLine(sprintf "wrote %s" path)
        Clean)
