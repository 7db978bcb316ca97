module CnnDsl.Cli.Program

open System
open System.CommandLine

let private console () : Commands.Console = { Out = Console.Out; Err = Console.Error }

let private checkCommand () =
    let files = Argument<string[]>("files", Description = "model files (.cnn)", Arity = ArgumentArity.OneOrMore)
    let format = Option<string>("--format", Description = "text (default) or json", DefaultValueFactory = (fun _ -> "text"))
    format.AcceptOnlyFromAmong("text", "json") |> ignore
    let command = Command("check", "Report every mistake in the model files, with positions; prints nothing when they are clean.")
    command.Arguments.Add files
    command.Options.Add format
    command.SetAction(fun (r: ParseResult) ->
        Commands.check (console ()) (List.ofArray (r.GetValue files)) (r.GetValue format = "json"))
    command

let private summaryCommand () =
    let file = Argument<string>("file", Description = "a model file (.cnn)")
    let batch = Option<int>("--batch", Description = "also print the training working set at this batch size")
    batch.Validators.Add(fun result ->
        if result.GetValueOrDefault<int>() < 1 then result.AddError "--batch must be a whole number of at least 1")
    let command = Command("summary", "Print the layer table: output shapes, parameters, multiply-adds and memory.")
    command.Arguments.Add file
    command.Options.Add batch
    command.SetAction(fun (r: ParseResult) ->
        let b = r.GetResult batch |> Option.ofObj |> Option.map (fun _ -> r.GetValue batch)
        Commands.summary (console ()) (r.GetValue file) b)
    command

[<EntryPoint>]
let main argv =
    let root = RootCommand("dsl: write, check, train and understand convolutional networks from a text file.")
    root.Subcommands.Add(checkCommand ())
    root.Subcommands.Add(summaryCommand ())
    root.Parse(argv).Invoke()
