/// `dsl run`: train a model on its data set, checkpoint every epoch, evaluate on the test set.
module CnnDsl.Cli.RunCommand

open System
open System.IO
open CnnDsl.Graph
open CnnDsl.Dsl
open CnnDsl.Runtime
open CnnDsl.Runtime.Data
open CnnDsl.Runtime.Training
open CnnDsl.Cli.Shell
open CnnDsl.Cli.Render
open CnnDsl.Cli.Plot
open CnnDsl

/// Command-line overrides of the file's `train` section.
type RunOptions =
    { Data: string option; Epochs: int option; Batch: int option; LearningRate: float option
      Optimizer: string option; Seed: int option; Validation: float option; Out: string option
      Resume: bool; Quiet: bool; Json: bool; Limit: int option; Weights: string option; Plot: string option
      /// Start a new run in a folder that holds one (its checkpoints are replaced).
      Force: bool
      /// Test hook (CNNDSL_PAUSE_AT=EPOCH,BATCH): before this epoch (from 1) and batch (from 0)
      /// the run says "dsl: paused ..." on stderr and waits for a stop (Ctrl+C, SIGTERM), so
      /// that tests interrupt at a known batch without timing.
      PauseAt: (int * int) option }
    static member Empty =
        { Data = None; Epochs = None; Batch = None; LearningRate = None; Optimizer = None; Seed = None
          Validation = None; Out = None; Resume = false; Quiet = false; Json = false; Limit = None; Weights = None; Plot = None
          Force = false; PauseAt = None }

/// The API's options for a run from the command line's.
let trainingOptions (o: RunOptions) =
    let n (v: 'a option) = Option.toNullable v
    TrainingOptions(
        Data = Option.toObj o.Data, Epochs = n o.Epochs, BatchSize = n o.Batch, LearningRate = n o.LearningRate,
        Optimizer = Option.toObj o.Optimizer, Seed = n o.Seed, Validation = n o.Validation, OutputFolder = Option.toObj o.Out,
        Resume = o.Resume, Force = o.Force, InitialWeights = Option.toObj o.Weights, Limit = n o.Limit,
        ProgressInterval = TimeSpan.FromSeconds 0.5)

/// The settings of a run (the command line over the file over Keras's defaults), or the message
/// that refuses them.
let settingsOf (file: string) (graph: Graph) (o: RunOptions) : Result<TrainingSettings * string option, string> =
    try Ok (Runs.settingsOf cliSpelling (Path.GetFileNameWithoutExtension file) graph (trainingOptions o))
    with :? CnnDslException as e -> Error e.Message

/// The test set's figures after a run, as text or JSON, and the confusion picture with --plot.
let private reportTest (console: Console) (file: string) (options: RunOptions) (result: TrainingResult) =
    match result.Test with
    | null ->
        // Nothing to evaluate: said plainly (JSON has no NaN); the training itself succeeded.
        if options.Json then console.Out.WriteLine(jsonObject [ "test_loss", "null"; "test_accuracy", "null"; "test_examples", "0" ])
        else
            console.Out.WriteLine(
                sprintf "Test: %s has no test examples, so the model was not evaluated; its checkpoints are in %s"
                    result.Settings.Data result.OutputFolder)
    | test ->
        if options.Json then
            console.Out.WriteLine(
                jsonObject [ "test_loss", jsonNumber test.Loss; "test_accuracy", jsonNumber test.Accuracy; "test_examples", string test.Count ])
        elif not options.Quiet then
            console.Out.WriteLine(testLine test)
            console.Out.Write(confusionText test)
        else console.Out.WriteLine(sprintf "test accuracy %.4f" test.Accuracy)
        options.Plot |> Option.filter (fun _ -> test.HasConfusionMatrix) |> Option.iter (fun folder ->
            let path = Path.Combine(folder, "confusion.png")
            writeConfusion path (Path.GetFileNameWithoutExtension file) test
            if not options.Json && not options.Quiet then
                console.Out.WriteLine(sprintf "Pictures: %s, %s" (Path.Combine(folder, "curves.png")) path))

/// `dsl run FILE`: train, checkpoint every epoch, then evaluate on the test set (the API's run,
/// with the console's report, plots and notes).
let run (console: Console) (file: string) (options: RunOptions) (stop: Threading.CancellationToken) : int =
    withModel console file (fun text graph ->
    let outFolder = defaultArg options.Out (Path.Combine("runs", Path.GetFileNameWithoutExtension file))
    let problem =
        folderProblem "--out" outFolder (Path.Combine("runs", Path.GetFileNameWithoutExtension file))
        |> Option.orElse (options.Plot |> Option.bind (fun folder -> folderProblem "--plot" folder (Path.Combine(outFolder, "pictures"))))
    match problem with
    | Some problem -> console.Err.WriteLine("dsl: " + problem); CannotRun
    | None ->
    let batch = defaultArg options.Batch (defaultArg graph.Training.BatchSize 32)
    let live = not options.Quiet && not options.Json && not System.Console.IsOutputRedirected && obj.ReferenceEquals(console.Out, System.Console.Out)
    let consoleReport = ConsoleReport(console, options.Quiet, options.Json, live, batch) :> ITrainingReport
    guarded console (fun () ->
    // inside guarded: a plot folder that cannot be made (no permission) is one line, not a stack trace
    let plot = options.Plot |> Option.map (fun folder -> PlotReport(consoleReport, folder, Path.GetFileNameWithoutExtension file))
    let hooks : Runs.Hooks =
        { Report = Some (match plot with Some p -> p :> ITrainingReport | None -> consoleReport)
          Note = (fun note -> if not options.Json then console.Out.WriteLine note)
          PauseAt = options.PauseAt
          Paused = (fun () ->
              let epoch, batch = options.PauseAt.Value
              console.Err.WriteLine(sprintf "dsl: paused before epoch %d, batch %d (CNNDSL_PAUSE_AT); waiting for Ctrl+C or SIGTERM" epoch batch)
              console.Err.Flush())
          Spell = cliSpelling
          Starting = (fun epoch -> plot |> Option.iter (fun p -> p.Begin epoch)) }
    let name = Path.GetFileNameWithoutExtension file
    let result =
        try Ok (Runs.run hooks name file text graph (trainingOptions options) null null stop)
        // a refusal before any work: said as the memory plan says it
        with :? ModelSizeException as e -> Error e.Message
    match result with
    | Error message -> console.Err.WriteLine("dsl: " + message); CannotRun
    | Ok result ->
    match result.Status with
    | TrainingStatus.Cancelled -> Interrupted
    | TrainingStatus.Diverged -> Diverged
    | _ -> reportTest console file options result; Clean))
