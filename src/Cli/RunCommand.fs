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

/// The settings of a run: the command line over the file over Keras's defaults
/// (optimizer rmsprop, as Keras's compile; batch 32; one epoch; no validation split).
let settingsOf (file: string) (graph: Graph) (o: RunOptions) : Result<TrainingSettings * string option, string> =
    let t = graph.Training
    let optimizer =
        let name = o.Optimizer |> Option.orElse (t.Optimizer |> Option.map (function Optimizer.Adam _ -> "adam" | Optimizer.Sgd _ -> "sgd" | Optimizer.RmsProp _ -> "rmsprop"))
        let fromFile kind = match t.Optimizer with Some opt when (match opt, kind with Optimizer.Adam _, "adam" | Optimizer.Sgd _, "sgd" | Optimizer.RmsProp _, "rmsprop" -> true | _ -> false) -> Some opt | _ -> None
        match defaultArg name "rmsprop" with
        | "adam" -> Ok (fromFile "adam" |> Option.defaultValue (Optimizer.Adam (0.001, 0.9, 0.999, 1e-7)))
        | "sgd" -> Ok (fromFile "sgd" |> Option.defaultValue (Optimizer.Sgd (0.01, 0.0, false)))
        | "rmsprop" -> Ok (fromFile "rmsprop" |> Option.defaultValue (Optimizer.RmsProp (0.001, 0.9, 0.0, 1e-7)))
        | other -> Error (sprintf "--optimizer %s: use adam, sgd or rmsprop" other)
    let withRate (opt: Optimizer) =
        match o.LearningRate, opt with
        | None, _ -> opt
        | Some lr, Optimizer.Adam (_, b1, b2, e) -> Optimizer.Adam (lr, b1, b2, e)
        | Some lr, Optimizer.Sgd (_, m, n) -> Optimizer.Sgd (lr, m, n)
        | Some lr, Optimizer.RmsProp (_, r, m, e) -> Optimizer.RmsProp (lr, r, m, e)
    match optimizer, o.Data |> Option.orElse t.Data with
    | Error e, _ -> Error e
    | Ok opt, data ->
        let name = Path.GetFileNameWithoutExtension file
        let settings =
            TrainingSettings(
                defaultArg o.Epochs (defaultArg t.Epochs 1), defaultArg o.Batch (defaultArg t.BatchSize 32),
                defaultArg o.Seed (defaultArg t.Seed 0), defaultArg o.Validation (defaultArg t.ValidationSplit 0.0),
                withRate opt, defaultArg t.Loss Loss.CrossEntropy, defaultArg t.WeightDecay 0.0,
                defaultArg o.Out (Path.Combine("runs", name)),
                Augment = (t.Augment |> List.toArray :> Collections.Generic.IReadOnlyList<string>),
                Schedule = Option.toObj t.Schedule,
                EarlyStopping = Option.toNullable t.EarlyStopping)
        Ok (settings, data)

/// `dsl run FILE`: train, checkpoint every epoch, then evaluate on the test set.
let run (console: Console) (file: string) (options: RunOptions) (stop: Threading.CancellationToken) : int =
    withModel console file (fun text graph ->
    match settingsOf file graph options with
    | Error message ->
        console.Err.WriteLine("dsl: " + message)
        CannotRun
    | Ok (settings, dataName) ->
    // Refuse before allocating what the machine cannot give (the operating system would kill
    // the run later, losing its work); a tenth is left for the data and the program itself.
    let fits (graph: Graph) =
        let plan = MemoryPlan.Estimate(graph, settings.BatchSize)
        let available = Memory.AvailableBytes()
        let budget = available / 10L * 9L
        if plan.Total <= budget then true
        else
            // The suggestion keeps 5% in hand, so that it still fits when free memory moves a little.
            let fits = Memory.LargestBatch(graph, budget / 100L * 95L, settings.BatchSize)
            let advice =
                if fits > 0 then sprintf "the largest batch that fits is %d: use --batch %d" fits fits
                else "even batch 1 does not fit: use a smaller input or fewer filters"
            console.Err.WriteLine(
                sprintf "dsl: %s needs %s at batch %d (%s), but %s of memory is available; %s"
                    file (Summary.bytesText plan.Total) settings.BatchSize (planParts plan) (Summary.bytesText available) advice)
            false
    // A fixed-size model is measured before its data is read; a dynamic one once the data gives its size.
    if not (isDynamic graph) && not (fits graph) then CannotRun
    else
    match dataName with
    | None ->
        console.Err.WriteLine(sprintf "dsl: no data set: add 'data fashion-mnist' to the train section of %s, or give --data NAME|FOLDER" file)
        CannotRun
    | Some dataName ->
    let folder = settings.OutputFolder
    let last, best = Path.Combine(folder, "last.ckpt"), Path.Combine(folder, "best.ckpt")
    match folderProblem "--out" folder (Path.Combine("runs", Path.GetFileNameWithoutExtension file)) with
    | Some problem -> console.Err.WriteLine("dsl: " + problem); CannotRun
    | None ->
    guarded console (fun () ->
    // One run per output folder at a time: an OS lock on DIR/.lock, held until the process
    // ends (the OS releases it however the run ends, even on SIGKILL).
    Directory.CreateDirectory folder |> ignore
    let lockFile =
        try Some (new FileStream(Path.Combine(folder, ".lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None))
        with :? IOException -> None
    match lockFile with
    | None ->
        console.Err.WriteLine(sprintf "dsl: another run is writing to %s (it holds %s); wait for it to finish, or give this one another --out DIR" folder (Path.Combine(folder, ".lock")))
        CannotRun
    | Some lockFile ->
    use _ = lockFile
    let existing = [ last; best ] |> List.filter File.Exists
    if not options.Resume && not options.Force && not existing.IsEmpty then
        // A finished run's checkpoints are hours of work: never replaced without being asked.
        console.Err.WriteLine(
            sprintf "dsl: %s already holds a run (%s); %s" folder (String.Join(", ", existing |> List.map Path.GetFileName))
                "continue it with --resume, replace it with --force, or train into another folder with --out DIR")
        CannotRun
    elif options.Resume && not (File.Exists last) then
        raise (CheckpointError(last,
                if File.Exists best then
                    sprintf "nothing to resume: there is no last.ckpt, only %s (an interrupted write?); %s" best
                        (sprintf "start a new run from its weights with --weights %s --out DIR" best)
                else "nothing to resume: no checkpoint here yet; run without --resume"))
    else
        let split = loadData dataName graph |> limitSplit options.Limit
        let graph = sizedToData text graph split.Train
        if not (fits graph) then CannotRun else
        let live = not options.Quiet && not options.Json && not System.Console.IsOutputRedirected && obj.ReferenceEquals(console.Out, System.Console.Out)
        let consoleReport = ConsoleReport(console, options.Quiet, options.Json, live, settings.BatchSize) :> ITrainingReport
        let plot = options.Plot |> Option.map (fun folder -> PlotReport(consoleReport, folder, Path.GetFileNameWithoutExtension file))
        let report = match plot with Some p -> p :> ITrainingReport | None -> consoleReport
        let outputs = Cost.elements graph.Output.OutputShape |> Option.defaultValue 0L
        if outputs > int64 split.Train.ClassNames.Length && outputs > 1L && not options.Json then
            console.Out.WriteLine(
                sprintf "Note: the model has %d outputs and %s has %d classes; %s"
                    outputs split.Train.Name split.Train.ClassNames.Length
                    "the other outputs are never the answer (the confusion matrix counts them as 'other')")
        let trainer = Trainer(graph, split.Train, settings, report)
        let start =
            if options.Resume then trainer.Load(trainer.LastCheckpoint, true)
            else
                options.Weights |> Option.iter (fun w ->
                    let struct (copied, kept) = trainer.Transfer w
                    if copied.Count = 0 then raise (CheckpointError(w, "has no tensor whose name and size match this model's; layer names come from dsl summary"))
                    if not options.Json then
                        console.Out.WriteLine(
                            sprintf "Transferred %d tensors from %s%s" copied.Count w
                                (if kept.Count = 0 then "" else sprintf "; %d start from scratch (%s)" kept.Count (String.Join(", ", kept)))))
                TrainingPosition.Start
        // --force: the old run's checkpoints go once the starting weights are loaded (they may
        // come from them), so that its best.ckpt is never mistaken for this run's.
        if not options.Resume then for f in existing do File.Delete f
        options.PauseAt |> Option.iter (fun (epoch, batch) ->
            trainer.PauseAt <- Nullable<struct (int * int)>(struct (epoch - 1, batch))
            trainer.Paused <- Action(fun () ->
                console.Err.WriteLine(sprintf "dsl: paused before epoch %d, batch %d (CNNDSL_PAUSE_AT); waiting for Ctrl+C or SIGTERM" epoch batch)
                console.Err.Flush()))
        plot |> Option.iter (fun p -> p.Begin start.Epoch)
        let trainable, frozen = graph.Nodes |> List.map Cost.parameters |> List.fold (fun (a, b) (x, y) -> a + x, b + y) (0L, 0L)
        report.Started(
            runDescription
                { File = file; Parameters = trainable + frozen; Trainable = trainable; Data = split.Train.Name
                  Shape = split.Train.ShapeText; Training = trainer.TrainCount; Validation = trainer.ValidationCount
                  Test = split.Test.Count; Settings = settings; Start = start; Graph = graph })
        let records = trainer.Run(start, stop)
        if stop.IsCancellationRequested then Interrupted
        elif records.Count < settings.Epochs - start.Epoch && not trainer.StoppedEarly then Diverged
        else
            if split.Test.Count = 0 then
                // Nothing to evaluate: said plainly (JSON has no NaN); the training itself succeeded.
                if options.Json then console.Out.WriteLine "{\"test_loss\":null,\"test_accuracy\":null,\"test_examples\":0}"
                else console.Out.WriteLine(sprintf "Test: %s has no test examples, so the model was not evaluated; its checkpoints are in %s" split.Test.Name folder)
                Clean
            else
            let test = trainer.Evaluate(split.Test)
            if options.Json then
                console.Out.WriteLine(sprintf "{\"test_loss\":%s,\"test_accuracy\":%s,\"test_examples\":%d}" (jsonNumber test.Loss) (jsonNumber test.Accuracy) split.Test.Count)
            elif not options.Quiet then
                console.Out.WriteLine(sprintf "Test: loss %.4f - accuracy %.4f (%s examples)" test.Loss test.Accuracy (Messages.thousands (int64 split.Test.Count)))
                console.Out.Write(confusionText test)
            else console.Out.WriteLine(sprintf "test accuracy %.4f" test.Accuracy)
            options.Plot |> Option.filter (fun _ -> test.Confusion.Length > 0) |> Option.iter (fun folder ->
                let path = Path.Combine(folder, "confusion.png")
                Pictures.write path (Pictures.confusion (sprintf "%s: test accuracy %.4f" (Path.GetFileNameWithoutExtension file) test.Accuracy) test.Confusion test.ClassNames)
                if not options.Json && not options.Quiet then
                    console.Out.WriteLine(sprintf "Pictures: %s, %s" (Path.Combine(folder, "curves.png")) path))
            Clean))
