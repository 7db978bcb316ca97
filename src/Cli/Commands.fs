/// The `dsl` commands as plain functions over text writers, so that tests can run them
/// in-process and pin their exact output.
module CnnDsl.Cli.Commands

open System
open System.IO
open CnnDsl.Dsl

/// Exit codes: 0 clean, 1 the model has errors, 2 the command could not run (usage, files).
let Clean, ModelErrors, CannotRun = 0, 1, 2

type Console = { Out: TextWriter; Err: TextWriter }

/// A model file is a few hundred lines of text; past this it is taken for a wrong file.
let maxModelBytes = 4 * 1024 * 1024

let private readModel (console: Console) (path: string) : string option =
    try
        if Directory.Exists path then
            console.Err.WriteLine(sprintf "dsl: '%s' is a folder; give a model file such as models/lenet.cnn" path)
            None
        elif not (File.Exists path) then
            console.Err.WriteLine(sprintf "dsl: cannot read '%s': no such file" path)
            None
        else
            // Read at most one byte past the limit: a device (/dev/zero) or a huge file
            // reports no useful length, so the length is never trusted.
            use stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite)
            let buffer = Array.zeroCreate<byte> (maxModelBytes + 1)
            let mutable count = 0
            let mutable reading = true
            while reading && count < buffer.Length do
                let n = stream.Read(buffer, count, buffer.Length - count)
                if n = 0 then reading <- false else count <- count + n
            let nul = Array.IndexOf(buffer, 0uy, 0, count)
            if nul >= 0 then
                console.Err.WriteLine(sprintf "dsl: '%s' is not a text file (byte %d is NUL); give a model file such as models/lenet.cnn" path nul)
                None
            elif count > maxModelBytes then
                console.Err.WriteLine(sprintf "dsl: '%s' is larger than %d MB; a model file is a short text file (give the .cnn file, not a data set or checkpoint)" path (maxModelBytes / 1024 / 1024))
                None
            else Some (Text.UTF8Encoding(false).GetString(buffer, 0, count).TrimStart('\uFEFF'))
    with
    | :? IOException | :? UnauthorizedAccessException as e ->
        console.Err.WriteLine(sprintf "dsl: cannot read '%s': %s" path e.Message)
        None

/// Reads and checks a model, printing its diagnostics; runs `f` on a clean model (with the
/// file's text, for commands that re-check it at another input size).
let internal withModel (console: Console) (file: string) (f: string -> CnnDsl.Graph.Graph -> int) : int =
    match readModel console file with
    | None -> CannotRun
    | Some text ->
        match Frontend.compile text with
        | Ok (graph, warnings) ->
            console.Err.Write(Diagnostic.renderAll file text warnings)
            f text graph
        | Error diagnostics ->
            console.Err.Write(Diagnostic.renderAll file text diagnostics)
            ModelErrors

/// `dsl check FILE...`: diagnostics only; nothing when clean.
let check (console: Console) (files: string list) (json: bool) : int =
    let results =
        files |> List.map (fun file ->
            match readModel console file with
            | None -> file, None
            | Some text ->
                let diagnostics = match Frontend.compile text with Ok (_, ws) -> ws | Error ds -> ds
                file, Some (text, diagnostics))
    if json then
        let arrays =
            results |> List.choose (fun (file, r) -> r |> Option.map (fun (_, ds) -> (Diagnostic.toJson file ds).Trim('[', ']')))
                    |> List.filter (fun s -> s <> "")
        console.Out.WriteLine("[" + String.Join(",", arrays) + "]")
    else
        for file, r in results do
            r |> Option.iter (fun (text, ds) -> console.Out.Write(Diagnostic.renderAll file text ds))
    if results |> List.exists (fun (_, r) -> r.IsNone) then CannotRun
    elif results |> List.exists (fun (_, r) -> r |> Option.exists (fun (_, ds) -> ds |> List.exists Diagnostic.isError)) then ModelErrors
    else Clean

/// The working set of a training run at a batch size, from the runtime's memory plan.
let memoryText (graph: CnnDsl.Graph.Graph) (batch: int) =
    let dynamic = graph.Nodes |> List.exists (fun n -> (CnnDsl.Graph.Cost.elements n.OutputShape).IsNone)
    if dynamic then sprintf "Training memory at batch %d: ? (the input size is dynamic)\n" batch
    else
        // The optimizer `dsl run` would use: the train section's, else run's default, rmsprop
        // (settingsOf); its values per trainable parameter are the arrays Optimizers allocates.
        let optimizer, given =
            match graph.Training.Optimizer with
            | Some o -> o, "from the train section"
            | None -> CnnDsl.Graph.Optimizer.RmsProp (0.001, 0.9, 0.0, 1e-7), "dsl run's default"
        let name, slots =
            match optimizer with
            | CnnDsl.Graph.Optimizer.Adam _ -> "adam", 2
            | CnnDsl.Graph.Optimizer.AdamW _ -> "adamw", 2
            | CnnDsl.Graph.Optimizer.RmsProp (_, _, momentum, _) -> "rmsprop", (if momentum > 0.0 then 2 else 1)
            | CnnDsl.Graph.Optimizer.Sgd (_, momentum, _) -> "sgd", (if momentum > 0.0 then 1 else 0)
        let plan = CnnDsl.Runtime.MemoryPlan.Estimate(graph, batch, optimizerSlots = slots)
        sprintf "Training memory at batch %d (float32, %s, %s: %d value%s per parameter): %s = activations and gradients %s + layer buffers %s + parameters and gradients %s + optimizer state %s\n"
            batch name given slots (if slots = 1 then "" else "s") (Summary.bytesText plan.Total) (Summary.bytesText plan.Activations) (Summary.bytesText plan.Workspace)
            (Summary.bytesText plan.Parameters) (Summary.bytesText plan.OptimizerState)

/// `dsl summary FILE [--batch N] [--graph dot|mermaid]`: the Keras-like table, or the layer
/// graph as text for Graphviz or Mermaid; diagnostics (to stderr) when the model has errors.
let summary (console: Console) (file: string) (batch: int option) (diagram: string option) : int =
    withModel console file (fun _ graph ->
        match diagram with
        | Some "dot" -> console.Out.Write(Diagram.dot (Path.GetFileNameWithoutExtension file) graph)
        | Some _ -> console.Out.Write(Diagram.mermaid graph)
        | None ->
            console.Out.Write(Summary.render (Path.GetFileNameWithoutExtension file) graph)
            batch |> Option.iter (fun b -> console.Out.Write(memoryText graph b))
        Clean)

/// `dsl explain FILE [--markdown]`: each layer's size and parameter formulas with its numbers.
let explain (console: Console) (file: string) (markdown: bool) : int =
    withModel console file (fun _ graph ->
        console.Out.Write(if markdown then Explain.markdown graph else Explain.text graph)
        Clean)

// ---- dsl run / dsl eval ----

open CnnDsl.Graph
open CnnDsl.Runtime
open CnnDsl.Runtime.Data
open CnnDsl.Runtime.Training

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

/// Runs a command's body, turning bad data, checkpoints and files into one-line messages.
let internal guarded (console: Console) (body: unit -> int) : int =
    try body () with
    | :? DataError as e -> console.Err.WriteLine("dsl: data: " + e.Message); CannotRun
    | :? CheckpointError as e -> console.Err.WriteLine("dsl: checkpoint " + e.Message); CannotRun
    | :? ModelSizeError as e -> console.Err.WriteLine("dsl: the model is too large: " + e.Message); CannotRun
    | :? IOException | :? UnauthorizedAccessException as e -> console.Err.WriteLine("dsl: " + e.Message); CannotRun

/// Exit codes beyond the checker's: an interrupted run (as a shell reports SIGINT), a diverged one.
let Interrupted, Diverged = 130, 3

let private invariant (v: float) = v.ToString("0.####", Globalization.CultureInfo.InvariantCulture)

/// A JSON number: NaN and infinities are not JSON, so they are written as null.
let private jsonNumber (v: float) = if Double.IsFinite v then invariant v else "null"

/// What is wrong with an output file given to `flag`, found before any work is done: an empty
/// name, or a folder (`example` is a file name to suggest).
let fileProblem (flag: string) (path: string) (example: string) : string option =
    if String.IsNullOrWhiteSpace path then Some (sprintf "%s: the file name is empty; give one, such as %s" flag example)
    elif Directory.Exists path then Some (sprintf "%s %s: that is a folder; give a file name, such as %s" flag path (Path.Combine(path, example)))
    else None

/// The same for an output folder: an empty name, or an existing file.
let folderProblem (flag: string) (path: string) (example: string) : string option =
    if String.IsNullOrWhiteSpace path then Some (sprintf "%s: the folder name is empty; give one, such as %s" flag example)
    elif File.Exists path then Some (sprintf "%s %s: that is a file, not a folder; give a folder, such as %s" flag path example)
    else None

/// Refuses input values that are not finite float32 numbers (NaN, infinities, beyond 3.4e38),
/// naming the file and the value's row, column and channel.
let private checkFinite (file: string) (image: InputImage) =
    let limit = float Single.MaxValue
    match image.Values |> Array.tryFindIndex (fun v -> not (Double.IsFinite v) || abs v > limit) with
    | None -> ()
    | Some i ->
        let c = image.Channels
        let pixel = i / c
        let where = sprintf "row %d, column %d%s" (pixel / image.Width + 1) (pixel % image.Width + 1) (if c > 1 then sprintf ", channel %d" (i % c + 1) else "")
        raise (DataError(file, sprintf "holds %s at %s: inputs must be finite numbers between -3.4e38 and 3.4e38; correct that value" (image.Values[i].ToString(Globalization.CultureInfo.InvariantCulture)) where))

/// The settings of a run: the command line over the file over Keras's defaults
/// (optimizer rmsprop, as Keras's compile; batch 32; one epoch; no validation split).
let settingsOf (file: string) (graph: Graph) (o: RunOptions) : Result<TrainingSettings * string option, string> =
    let t = graph.Training
    let optimizer =
        let name = o.Optimizer |> Option.orElse (t.Optimizer |> Option.map (function Optimizer.Adam _ -> "adam" | Optimizer.AdamW _ -> "adamw" | Optimizer.Sgd _ -> "sgd" | Optimizer.RmsProp _ -> "rmsprop"))
        let fromFile kind = match t.Optimizer with Some opt when (match opt, kind with Optimizer.Adam _, "adam" | Optimizer.AdamW _, "adamw" | Optimizer.Sgd _, "sgd" | Optimizer.RmsProp _, "rmsprop" -> true | _ -> false) -> Some opt | _ -> None
        match defaultArg name "rmsprop" with
        | "adam" -> Ok (fromFile "adam" |> Option.defaultValue (Optimizer.Adam (0.001, 0.9, 0.999, 1e-7)))
        | "sgd" -> Ok (fromFile "sgd" |> Option.defaultValue (Optimizer.Sgd (0.01, 0.0, false)))
        | "rmsprop" -> Ok (fromFile "rmsprop" |> Option.defaultValue (Optimizer.RmsProp (0.001, 0.9, 0.0, 1e-7)))
        | "adamw" -> Ok (fromFile "adamw" |> Option.defaultValue (Optimizer.AdamW (0.001, 0.9, 0.999, 1e-8, 0.01, [])))
        | other -> Error (sprintf "--optimizer %s: use adam, adamw, sgd or rmsprop" other)
    let withRate (opt: Optimizer) =
        match o.LearningRate, opt with
        | None, _ -> opt
        | Some lr, Optimizer.Adam (_, b1, b2, e) -> Optimizer.Adam (lr, b1, b2, e)
        | Some lr, Optimizer.Sgd (_, m, n) -> Optimizer.Sgd (lr, m, n)
        | Some lr, Optimizer.RmsProp (_, r, m, e) -> Optimizer.RmsProp (lr, r, m, e)
        | Some lr, Optimizer.AdamW (_, b1, b2, e, wd, ex) -> Optimizer.AdamW (lr, b1, b2, e, wd, ex)
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
                EarlyStopping = Option.toNullable t.EarlyStopping,
                LabelSmoothing = defaultArg t.LabelSmoothing 0.0, Warmup = defaultArg t.Warmup 0,
                Ema = defaultArg t.Ema 0.0, TestTimeFlip = List.contains "flip" t.Tta)
        Ok (settings, data)

let private optimizerText (opt: Optimizer) =
    match opt with
    | Optimizer.Adam (lr, _, _, _) -> sprintf "adam (lr %s)" (invariant lr)
    | Optimizer.Sgd (lr, m, n) -> sprintf "sgd (lr %s, momentum %s%s)" (invariant lr) (invariant m) (if n then ", nesterov" else "")
    | Optimizer.RmsProp (lr, _, _, _) -> sprintf "rmsprop (lr %s)" (invariant lr)
    | Optimizer.AdamW (lr, _, _, _, wd, _) -> sprintf "adamw (lr %s, weight decay %s)" (invariant lr) (invariant wd)

let internal lossText (l: Loss) =
    match l with
    | Loss.CrossEntropy -> "crossentropy" | Loss.BinaryCrossEntropy -> "binary crossentropy"
    | Loss.MeanSquaredError -> "mse" | Loss.MeanAbsoluteError -> "mae"

/// Console output: a live line while a terminal watches, Keras-style epoch lines, or JSON.
type private ConsoleReport(console: Console, quiet: bool, json: bool, live: bool, batchSize: int) =
    interface ITrainingReport with
        member _.Started(description) = if not quiet && not json then console.Out.WriteLine description
        member _.Progress(epoch, batch, batches, loss, accuracy, rate) =
            if live && not quiet && not json then
                let width = 24
                let filled = batch * width / max 1 batches
                let eta = float ((batches - batch) * batchSize) / max 1e-9 rate
                console.Out.Write(
                    sprintf "\r%6d/%d [%s%s] - ETA %.0fs - loss: %.4f - accuracy: %.4f - %s img/s   "
                        batch batches (String('=', filled)) (String('.', width - filled)) eta loss accuracy (Messages.thousands (int64 rate)))
        member _.EpochDone(r) =
            if json then
                let v (x: Nullable<float>) = if x.HasValue then jsonNumber x.Value else "null"
                console.Out.WriteLine(
                    sprintf "{\"epoch\":%d,\"seconds\":%s,\"loss\":%s,\"accuracy\":%s,\"val_loss\":%s,\"val_accuracy\":%s,\"images_per_second\":%s}"
                        r.Epoch (jsonNumber r.Seconds) (jsonNumber r.Loss) (jsonNumber r.Accuracy) (v r.ValidationLoss) (v r.ValidationAccuracy) (jsonNumber r.ImagesPerSecond))
            elif not quiet then
                if live then console.Out.Write("\r" + String(' ', 100) + "\r")
                let validation =
                    if r.ValidationLoss.HasValue then sprintf " - val_loss: %.4f - val_accuracy: %.4f" r.ValidationLoss.Value r.ValidationAccuracy.Value else ""
                console.Out.WriteLine(
                    sprintf "Epoch %d/%d - %.1fs - %s img/s - loss: %.4f - accuracy: %.4f%s"
                        r.Epoch r.Epochs r.Seconds (Messages.thousands (int64 r.ImagesPerSecond)) r.Loss r.Accuracy validation)
        member _.Stopped(message) =
            if live then console.Out.WriteLine()
            console.Err.WriteLine("dsl: " + message)

/// `--plot DIR`: after every epoch, DIR/history.csv gains the epoch's line, DIR/progress.csv
/// the running figures reported within it, and DIR/curves.png is redrawn from both (a resumed
/// run keeps what came before its start).
type private PlotReport(inner: ITrainingReport, folder: string, title: string) =
    let history = Path.Combine(folder, "history.csv")
    let progressFile = Path.Combine(folder, "progress.csv")
    let header = "epoch,seconds,loss,accuracy,val_loss,val_accuracy,images_per_second"
    let text (v: float) = v.ToString("R", Globalization.CultureInfo.InvariantCulture)
    let parse (s: string) = match Double.TryParse(s, Globalization.NumberStyles.Float, Globalization.CultureInfo.InvariantCulture) with | true, v -> Some v | _ -> None
    let optional (s: string) = if s = "" then Some (Nullable()) else parse s |> Option.map Nullable
    let records = Collections.Generic.List<EpochRecord>()
    let progress = Collections.Generic.List<Pictures.Progress>()
    // (an empty or header-only file has no rows; rows that do not parse are skipped by Begin)
    let rows (path: string) = if File.Exists path then (match File.ReadAllLines path with [||] -> [||] | lines -> Array.tail lines) |> Array.map (fun l -> l.Split ',') else [||]
    let save (path: string) (head: string) (lines: string seq) = AtomicFile.WriteAllLines(path, Seq.append [ head ] lines)
    do Directory.CreateDirectory folder |> ignore
    /// A run starting at `firstEpoch` (0 unless resumed) keeps the files' earlier epochs.
    member _.Begin(firstEpoch: int) =
        records.Clear()
        progress.Clear()
        if firstEpoch > 0 then
            for row in rows history do
                match row |> Array.map optional with
                | [| Some e; Some s; Some l; Some a; Some vl; Some va; Some ips |] when e.HasValue && e.Value <= float firstEpoch && s.HasValue && l.HasValue && a.HasValue && ips.HasValue ->
                    records.Add(EpochRecord(int e.Value, 0, s.Value, l.Value, a.Value, vl, va, ips.Value))
                | _ -> ()
            for row in rows progressFile do
                match row |> Array.map parse with
                | [| Some x; Some l; Some a |] when x <= float firstEpoch -> progress.Add { Epoch = x; Loss = l; Accuracy = a }
                | _ -> ()
    member _.Save() =
        let v (x: Nullable<float>) = if x.HasValue then text x.Value else ""
        save history header (records |> Seq.map (fun r -> String.Join(",", string r.Epoch, text r.Seconds, text r.Loss, text r.Accuracy, v r.ValidationLoss, v r.ValidationAccuracy, text r.ImagesPerSecond)))
        save progressFile "epoch,loss,accuracy" (progress |> Seq.map (fun p -> String.Join(",", text p.Epoch, text p.Loss, text p.Accuracy)))
        Pictures.write (Path.Combine(folder, "curves.png")) (Pictures.curves title (List.ofSeq records) (List.ofSeq progress))
    interface ITrainingReport with
        member _.Started(d) = inner.Started d
        member _.Progress(e, b, n, l, a, r) =
            progress.Add { Epoch = float e + float b / float (max 1 n); Loss = l; Accuracy = a }
            inner.Progress(e, b, n, l, a, r)
        member this.EpochDone(r) =
            records.Add r
            this.Save()
            inner.EpochDone r
        member _.Stopped(m) = inner.Stopped m

let private confusionText (e: Evaluation) =
    if e.Confusion.Length = 0 then
        sprintf "Per class accuracy and the confusion matrix: not kept for more than %s classes\n" (Messages.thousands (int64 Trainer.MaxConfusionClasses))
    else
    let names = e.ClassNames
    let n = names.Length
    let columns = e.Confusion.GetLength 1   // n, or n + 1 with a column for outputs beyond the classes
    let sb = Text.StringBuilder()
    let width = max 6 (names |> Array.map String.length |> Array.max)
    sb.AppendLine("Per class (accuracy):") |> ignore
    for c in 0 .. n - 1 do sb.AppendLine(sprintf "  %-*s %.4f" width names[c] (e.ClassAccuracy c)) |> ignore
    sb.AppendLine("Confusion matrix (rows: true class, columns: predicted):") |> ignore
    sb.Append(String(' ', width + 2)) |> ignore
    for p in 0 .. n - 1 do sb.Append(sprintf "%6d" p) |> ignore
    if columns > n then sb.Append("  other") |> ignore
    sb.AppendLine() |> ignore
    for c in 0 .. n - 1 do
        sb.Append(sprintf "  %-*s" width names[c]) |> ignore
        for p in 0 .. columns - 1 do sb.Append(sprintf "%6d" e.Confusion[c, p]) |> ignore
        sb.AppendLine() |> ignore
    sb.ToString()

let private limitSplit (limit: int option) (split: DataSplit) =
    match limit with
    | Some n -> DataSplit(split.Train.Slice(0, min n split.Train.Count), split.Test.Slice(0, min (max 1 (n / 5)) split.Test.Count))
    | None -> split

let private isDynamic (graph: Graph) =
    match graph.Input.OutputShape with Image (h, w, _) -> h = Dim.Dynamic || w = Dim.Dynamic | Vector _ -> false

/// A data set by name or path; the generated `shapes` set is made at the model's input size.
let private loadData (name: string) (graph: Graph) =
    match graph.Input.OutputShape with
    | Image (Dim.Known h, Dim.Known w, c) -> DataSets.Load(name, h, w, c)
    | _ -> DataSets.Load name

/// A model with a dynamic input (`input ?x?x1`) trains and evaluates at its data set's size.
let private sizedToData (text: string) (graph: Graph) (data: Dataset) =
    if not (isDynamic graph) then graph
    else
        match Frontend.compileWithInput text data.Height data.Width with
        | Some (Ok (g, _)) -> g
        | Some (Error ds) ->
            raise (DataError(data.Name, sprintf "is %s, and at %dx%d the model does not check: %s" data.ShapeText data.Height data.Width
                                            (ds |> List.map (fun d -> d.Message) |> String.concat "; ")))
        | None -> graph

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
            console.Err.WriteLine(
                sprintf "dsl: %s needs %s at batch %d (activations and gradients %s, layer buffers %s, parameters and gradients %s, optimizer state %s), but %s of memory is available; %s"
                    file (Summary.bytesText plan.Total) settings.BatchSize (Summary.bytesText plan.Activations) (Summary.bytesText plan.Workspace)
                    (Summary.bytesText plan.Parameters) (Summary.bytesText plan.OptimizerState) (Summary.bytesText available)
                    (if fits > 0 then sprintf "the largest batch that fits is %d: use --batch %d" fits fits
                     else "even batch 1 does not fit: use a smaller input or fewer filters"))
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
            sprintf "dsl: %s already holds a run (%s); continue it with --resume, replace it with --force, or train into another folder with --out DIR"
                folder (String.Join(", ", existing |> List.map Path.GetFileName)))
        CannotRun
    elif options.Resume && not (File.Exists last) then
        raise (CheckpointError(last,
                if File.Exists best then sprintf "nothing to resume: there is no last.ckpt, only %s (an interrupted write?); start a new run from its weights with --weights %s --out DIR" best best
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
                sprintf "Note: the model has %d outputs and %s has %d classes; the other outputs are never the answer (the confusion matrix counts them as 'other')"
                    outputs split.Train.Name split.Train.ClassNames.Length)
        let trainer = Trainer(graph, split.Train, settings, report)
        let trainable, frozen = graph.Nodes |> List.map Cost.parameters |> List.fold (fun (a, b) (x, y) -> a + x, b + y) (0L, 0L)
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
        let notice = match Blas.Gemm.Notice with null -> "" | n -> "\n" + n
        // how each convolution is lowered at this batch size (ColumnPlan chooses by measured speed)
        let lowerings =
            [ for n in graph.Nodes do
                if n.Kind.IsConv || n.Kind.IsFixedConv then yield (Layers.ColumnPlan.For(n, settings.BatchSize)).Lowering, n.Name ]
            |> List.groupBy fst
            |> List.map (fun (how, names) -> sprintf "%s (%s)" how (String.Join(", ", names |> List.map snd)))
        let notice = (if lowerings.IsEmpty then "" else "\nConvolutions: " + String.Join("; ", lowerings)) + notice
        report.Started(
            sprintf "Model %s: %s parameters (%s trainable)\nData %s: %s training, %s validation, %s test examples of %s\nTraining: %d epoch%s, batch %d, %s, loss %s, seed %d%s%s\nEngine: %s; im2col and pooling on %s; denormals %s; checkpoints in %s%s"
                file (Messages.thousands (trainable + frozen)) (Messages.thousands trainable)
                split.Train.Name (Messages.thousands (int64 trainer.TrainCount)) (Messages.thousands (int64 trainer.ValidationCount))
                (Messages.thousands (int64 split.Test.Count)) split.Train.ShapeText
                settings.Epochs (if settings.Epochs = 1 then "" else "s") settings.BatchSize (optimizerText settings.Optimizer) (lossText settings.Loss) settings.Seed
                (if settings.Augment.Count > 0 then ", augment " + String.Join(" ", settings.Augment) else "")
                (if start.Epoch > 0 || start.Batch > 0 then sprintf "\nResuming at epoch %d, batch %d" (start.Epoch + 1) start.Batch else "")
                Blas.Gemm.Current.Description (if BatchParallel.Threads = 1 then "one thread" else sprintf "%d threads" BatchParallel.Threads) (if Denormals.Enabled then "flushed to zero" else "kept") settings.OutputFolder notice)
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

/// Evaluates a checkpoint on the model's test set and hands the result to `f`.
let private evaluate (console: Console) (command: string) (file: string) (options: RunOptions) (f: Evaluation -> int) : int =
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
        let trainer = Trainer(graph, split.Train, TrainingSettings(1, settings.BatchSize, 0, 0.0, settings.Optimizer, settings.Loss, 0.0, settings.OutputFolder,
                                                                   LabelSmoothing = settings.LabelSmoothing, TestTimeFlip = settings.TestTimeFlip), ConsoleReport(console, true, false, false, settings.BatchSize))
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
let private pictureName (file: string) (what: string) =
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

/// `dsl gradcheck FILE`: the test suite's gradient check on the user's model, in double
/// precision at a small input size, with a verdict per layer.
let gradcheck (console: Console) (file: string) (weights: string option) (breakLayer: string option) : int =
    withModel console file (fun text graph ->
    // A big input costs time, not coverage: try smaller sizes the model still accepts
    // (unless trained weights fix the input size of a dense layer).
    let size (g: Graph) = match g.Input.OutputShape with Image (Dim.Known h, Dim.Known w, _) -> Some (max h w) | Image _ -> Some Int32.MaxValue | Vector _ -> None
    let small =
        match size graph, weights with
        | Some s, None when s > 16 ->
            // The smallest square input from 16 up that the model accepts (AlexNet needs 67),
            // then the smaller ones.
            [ yield! [ 16 .. min s 256 ]; yield! [ 15 .. -1 .. 4 ] ]
            |> List.tryPick (fun n -> match Frontend.compileWithInput text n n with Some (Ok (g, _)) -> Some g | _ -> None)
            |> Option.defaultValue graph
        | _ -> graph
    if small.Nodes |> List.exists (fun n -> (Cost.elements n.OutputShape).IsNone) then
        console.Err.WriteLine "dsl: gradcheck needs a fixed input size, and no size from 4 to 256 fits this model"
        CannotRun
    else
    match breakLayer with
    | Some name when not (small.Nodes |> List.exists (fun n -> n.Name = name)) ->
        console.Err.WriteLine(sprintf "dsl: no layer named '%s' (dsl summary lists the names)" name)
        CannotRun
    | _ ->
    guarded console (fun () ->
        let net = Network<double>(small, 2, 1, true)
        weights |> Option.iter (fun w -> Checkpoint.LoadWeights(w, small, net.Weights))
        GradientCheck.KeepParameters <- weights.IsSome
        // --break: scale the gradient a layer passes back, as a wrong backward pass would.
        let fault =
            breakLayer |> Option.map (fun name ->
                let index = net.Layers |> Seq.findIndex (fun l -> l.Node.Name = name)
                Action<int, bool>(fun i after ->
                    if after && i = index then
                        for input in net.Layers[i].Inputs do
                            for j in 0 .. input.Gradient.Length - 1 do input.Gradient[j] <- input.Gradient[j] * 1.5))
        let errors = GradientCheck.RunWithFault(net, 1, 24, Option.toObj fault) |> List.ofSeq
        let scientific (v: float) = v.ToString("0.00e+00", Globalization.CultureInfo.InvariantCulture)
        console.Out.WriteLine(sprintf "Gradient check of %s at input %O, batch 2, float64, central differences (eps %g), tolerance %g:" file small.Input.OutputShape GradientCheck.Epsilon GradientCheck.Tolerance)
        let width = errors |> List.map (fun e -> e.Layer.Length + e.Tensor.Length + 3) |> List.fold max 20
        for e in errors do
            let label = sprintf "%s %s" e.Layer (if e.Tensor.Contains '/' then e.Tensor.Substring(e.Tensor.IndexOf '/' + 1) else e.Tensor)
            console.Out.WriteLine(sprintf "  %-*s worst error %s  %s" width label (scientific e.Worst) (if e.Worst <= GradientCheck.Tolerance then "ok" else "WRONG"))
        match GradientCheck.Culprit(net, errors) with
        | null ->
            console.Out.WriteLine(sprintf "gradcheck passed: %d gradients, worst error %s" errors.Length (scientific (errors |> List.map (fun e -> e.Worst) |> List.fold max 0.0)))
            Clean
        | culprit ->
            console.Out.WriteLine(sprintf "gradcheck FAILED: the backward pass of %s disagrees with finite differences" culprit)
            ModelErrors))

/// A layer's values as one matrix per channel, numbers aligned.
let matrixText (shape: Shape) (values: float[]) =
    let h, w, c = match shape with Image (Dim.Known h, Dim.Known w, c) -> h, w, c | Vector n -> 1, n, 1 | _ -> 1, values.Length, 1
    let number (v: float) =
        let v = if abs v < 1e-12 then 0.0 else v
        if v = Math.Round v && abs v < 1e15 then (int64 v).ToString(Globalization.CultureInfo.InvariantCulture)
        else v.ToString("G6", Globalization.CultureInfo.InvariantCulture)
    let cells = Array.init values.Length (fun i -> number values[i])
    let width = cells |> Array.map String.length |> Array.max
    let sb = Text.StringBuilder()
    for k in 0 .. c - 1 do
        if c > 1 then sb.AppendLine(sprintf "  channel %d:" (k + 1)) |> ignore
        for y in 0 .. h - 1 do
            sb.Append("    ") |> ignore
            for x in 0 .. w - 1 do sb.Append(cells[(y * w + x) * c + k].PadLeft(width + 1)) |> ignore
            sb.AppendLine() |> ignore
    sb.ToString()


/// An input must have the model's input shape (a vector model takes any shape of its length).
let private checkInput (graph: Graph) (file: string) (image: InputImage) =
    let fits =
        match graph.Input.OutputShape with
        | Image (Dim.Known h, Dim.Known w, c) -> h = image.Height && w = image.Width && c = image.Channels
        | shape -> Cost.elements shape = Some (int64 image.Values.Length)
    if not fits then
        raise (DataError(file, sprintf "is %dx%dx%d but the model's input is %O; give a matching input (resize images first) or change the model's input line"
                                    image.Height image.Width image.Channels graph.Input.OutputShape))

/// The graph at the size of an input: a dynamic input takes the size of what is applied;
/// a fixed one must match it.
let internal sizedFor (text: string) (graph: Graph) (input: string) (image: InputImage) =
    let graph =
        match graph.Input.OutputShape with
        | Image (h, w, _) when h = Dim.Dynamic || w = Dim.Dynamic ->
            match Frontend.compileWithInput text image.Height image.Width with
            | Some (Ok (g, _)) -> g
            | Some (Error ds) ->
                raise (DataError(input, sprintf "at %dx%d the model does not check: %s" image.Height image.Width (ds |> List.map (fun d -> d.Message) |> String.concat "; ")))
            | None -> graph
        | _ -> graph
    checkInput graph input image
    graph

/// `dsl apply FILE INPUT`: one forward pass, printing every layer's output.
let apply (console: Console) (file: string) (input: string) (weights: string option) (seed: int) (png: string option) : int =
    match png |> Option.bind (fun folder -> folderProblem "--png" folder "maps") with
    | Some problem -> console.Err.WriteLine("dsl: " + problem); CannotRun
    | None ->
    withModel console file (fun text graph ->
    guarded console (fun () ->
        let wanted = match graph.Input.OutputShape with Image (_, _, c) -> Some c | Vector _ -> None
        let image = InputFiles.Read(input, Option.toNullable wanted)
        checkFinite input image
        let graph = sizedFor text graph input image
        let net = Network<double>(graph, 1, seed)
        weights |> Option.iter (fun w -> Checkpoint.LoadWeights(w, graph, net.Weights))
        image.Values.AsSpan().CopyTo(net.Input)
        net.Forward(false)
        for layer in net.Layers do
            let node = layer.Node
            let kind = match node.Kind with LayerKind.FixedConv f -> sprintf "%s kernel" f.Name | _ -> Summary.typeName node
            console.Out.WriteLine(sprintf "%s (%s): %O" node.Name kind node.OutputShape)
            match png with
            | Some folder ->
                Directory.CreateDirectory folder |> ignore
                let struct (h, w, c) = Shapes.Hwc node.OutputShape
                let path = Path.Combine(folder, Export.FeatureMaps.FileName(node.Id, node.Name))
                AtomicFile.WriteAllBytes(path, Export.FeatureMaps.Png(ReadOnlySpan layer.Output.Value, h, w, c))
                console.Out.WriteLine("  " + path)
            | None -> console.Out.Write(matrixText node.OutputShape layer.Output.Value)
        if weights.IsNone && net.Layers |> Seq.exists (fun l -> l.Parameters.Count > 0 && l.Node.Given.IsNone) then
            console.Err.WriteLine "dsl: learned layers ran with their initial (random) weights; give --weights CHECKPOINT for trained ones"
        Clean))

/// A model with one output gives a value, not a ranking of classes: after a sigmoid, the
/// probability of class 1.
let private singleOutputText (graph: Graph) (value: float32) =
    let last = graph.Nodes |> List.rev |> List.find (fun n -> match n.Kind with LayerKind.Reshape | LayerKind.Flatten | LayerKind.Dropout _ -> false | _ -> true)
    if last.Activation = Activation.Sigmoid then sprintf "p = %.4f (class 1 if > 0.5)" value
    else sprintf "%.4f" value

/// `dsl predict FILE --weights W IMAGE...`: the top classes of each image, with probabilities.
let predict (console: Console) (file: string) (weights: string option) (images: string list) (top: int) : int =
    match weights with
    | None -> console.Err.WriteLine "dsl: predict needs --weights CHECKPOINT (for example runs/lenet/best.ckpt)"; CannotRun
    | Some _ when top < 1 -> console.Err.WriteLine(sprintf "dsl: --top %d: show at least 1 class (--top 1 gives the most likely)" top); CannotRun
    | Some weights ->
    withModel console file (fun text graph ->
    guarded console (fun () ->
        // A fixed-size model runs every image in one network; an any-size one (?x?) in a
        // network built at each image's size, with the same weights.
        let networks = Collections.Generic.Dictionary<Shape, Network<float32>>()
        let networkFor (g: Graph) =
            match networks.TryGetValue g.Input.OutputShape with
            | true, net -> net
            | _ ->
                let net = Network<float32>(g, 1, 0)
                Checkpoint.LoadWeights(weights, g, net.Weights)
                networks[g.Input.OutputShape] <- net
                net
        if not (isDynamic graph) then networkFor graph |> ignore
        let classes = DataSets.ClassNamesOf(Option.toObj graph.Training.Data)
        let wanted = match graph.Input.OutputShape with Image (_, _, c) -> Some c | Vector _ -> None
        for image in images do
            let input = InputFiles.Read(image, Option.toNullable wanted)
            let net = networkFor (sizedFor text graph image input)
            checkFinite image input
            for i in 0 .. input.Values.Length - 1 do net.Input[i] <- float32 input.Values[i]
            net.Forward(false)
            let output = net.Output.ToArray()
            if output.Length = 1 then console.Out.WriteLine(sprintf "%s: %s" image (singleOutputText graph output[0]))
            else
            let ranked = output |> Array.mapi (fun i p -> i, p) |> Array.sortByDescending snd |> Array.truncate top
            let name i = if isNull classes || i >= classes.Length then string i else classes[i]
            console.Out.WriteLine(sprintf "%s: %s" image (String.Join(", ", ranked |> Array.map (fun (i, p) -> sprintf "%s %.4f" (name i) p))))
        Clean))

/// The model itself when its sizes are fixed; an any-size (?x?) model at the first size it
/// accepts (28, 32, then 16 to 256): its weights are the same at every size.
let private concreteGraph (text: string) (graph: Graph) =
    if not (isDynamic graph) then Some graph
    else [ 28; 32; yield! [ 16 .. 256 ] ] |> List.tryPick (fun n -> match Frontend.compileWithInput text n n with Some (Ok (g, _)) -> Some g | _ -> None)

/// `dsl export FILE [--weights W] -o OUT.onnx`: the model as ONNX (opset 13), NHWC in and out.
/// A dynamic input (`?x?xC`) becomes symbolic dimensions; its weights do not depend on the size,
/// so they are held by a network built at the first size the model accepts.
/// With format "pytorch", `-o DIR` receives a PyTorch project (src/Runtime/Export/PyTorch.cs).
let exportAs (console: Console) (file: string) (weights: string option) (output: string) (format: string) : int =
    let pytorch = format = "pytorch"
    let problem =
        if pytorch then folderProblem "-o" output (Path.GetFileNameWithoutExtension file + "-pt")
        else fileProblem "-o" output (Path.GetFileNameWithoutExtension file + ".onnx")
    match problem with
    | Some problem -> console.Err.WriteLine("dsl: " + problem); CannotRun
    | None ->
    withModel console file (fun text graph ->
    match concreteGraph text graph with
    | None ->
        console.Err.WriteLine "dsl: export builds the network at a size from 16 to 256, and the model accepts none of them"
        CannotRun
    | Some concrete ->
    guarded console (fun () ->
        let net = Network<float32>(concrete, 1, 0)
        match weights with
        | Some w when isDynamic graph ->
            // The checkpoint was trained at its data's size; match tensors by name and length.
            Checkpoint.Restore(w, Checkpoint.LoadTensors w, net.Weights |> Seq.map (fun p -> struct (p.Name, p.Value)))
        | Some w when pytorch ->
            // Named by its first differing tensor, before the architecture hash's general refusal.
            match Export.PyTorchExport.FirstDifference(Checkpoint.LoadTensors w, net) |> Option.ofObj with
            | Some difference -> raise (CheckpointError(w, difference + "; it was saved from another model"))
            | None -> Checkpoint.LoadWeights(w, graph, net.Weights)
        | Some w -> Checkpoint.LoadWeights(w, graph, net.Weights)
        | None when net.Layers |> Seq.exists (fun l -> l.Parameters.Count > 0 && l.Node.Given.IsNone) ->
            console.Err.WriteLine "dsl: no --weights given: exporting the initial (random) weights"
        | None -> ()
        try
          if pytorch then
            Export.PyTorchExport.Write(graph, Path.GetFileNameWithoutExtension file, net, weights.IsSome, output) |> ignore
            console.Out.WriteLine(sprintf "wrote %s (model.py, train.py, dsl_torch.py, README.md%s); see %s" output (if weights.IsSome then ", weights.ckpt" else "") (Path.Combine(output, "README.md")))
            Clean
          else
            let bytes = Export.OnnxExport.Export(graph, net)
            AtomicFile.WriteAllBytes(output, bytes)
            console.Out.WriteLine(sprintf "wrote %s (%s, ONNX opset 13, input NHWC %O)" output (Summary.bytesText (int64 bytes.Length)) graph.Input.OutputShape)
            Clean
        with :? Export.ExportError as e ->
            console.Err.WriteLine("dsl: cannot export: " + e.Message)
            CannotRun))

let export (console: Console) (file: string) (weights: string option) (output: string) : int =
    exportAs console file weights output "onnx"

/// Loads a checkpoint into a network, or says that the weights are the initial ones.
let private loadOrWarn (console: Console) (graph: Graph) (net: Network<float32>) (weights: string option) =
    match weights with
    | Some w -> Checkpoint.LoadWeights(w, graph, net.Weights)
    | None -> console.Err.WriteLine "dsl: no --weights given: showing the initial (random) weights"

/// `dsl show filters FILE --weights W [--layer NAME] [-o OUT]`: a convolution's kernels as a
/// grid of small images; a first layer on colour input shows each kernel in colour.
let showFilters (console: Console) (file: string) (weights: string option) (layer: string option) (output: string option) : int =
    match output |> Option.bind (fun o -> fileProblem "-o" o "filters.png") with
    | Some problem -> console.Err.WriteLine("dsl: " + problem); CannotRun
    | None ->
    withModel console file (fun text graph ->
    let convs = graph.Nodes |> List.filter (fun n -> n.Kind.IsConv)
    let chosen = match layer with Some name -> convs |> List.tryFind (fun n -> n.Name = name) | None -> List.tryHead convs
    match chosen with
    | None ->
        console.Err.WriteLine(
            match layer, convs with
            | _, [] -> sprintf "dsl: %s has no learned convolution to show" file
            | Some name, _ -> sprintf "dsl: no convolution named '%s'; the convolutions are %s" name (convs |> List.map (fun n -> n.Name) |> String.concat ", ")
            | None, _ -> "dsl: no convolution")
        CannotRun
    | Some node ->
    guarded console (fun () ->
        // Kernels do not depend on the input's size: an any-size model is built at one it accepts.
        let graph =
            match concreteGraph text graph with
            | Some g -> g
            | None -> raise (ModelSizeError "the model accepts no input size from 16 to 256 to build its kernels at")
        let net = Network<float32>(graph, 1, 0)
        loadOrWarn console graph net weights
        let kernel = net.Layers[node.Id].Parameters[0]
        let kh, kw, c, f = kernel.Shape[0], kernel.Shape[1], kernel.Shape[2], kernel.Shape[3]
        let at y x ch filter = float kernel.Value[((y * kw + x) * c + ch) * f + filter]
        let scale = Pictures.scaleFor 48 (max kh kw)
        let block =
            if c = 3 then
                // RGB input: each kernel as one colour picture, scaled by its own range.
                let cells = [ for filter in 0 .. f - 1 ->
                                let values = [| for y in 0 .. kh - 1 do for x in 0 .. kw - 1 do for ch in 0 .. 2 -> at y x ch filter |]
                                { Pictures.Height = kh; Pictures.Width = kw; Pictures.Colour = true; Pictures.Values = Pictures.normalise values } ]
                sprintf "%d kernels of %dx%dx3, in colour (each scaled to its own range)" f kh kw, cells, scale, 8
            elif c = 1 then
                let cells = [ for filter in 0 .. f - 1 ->
                                let values = [| for y in 0 .. kh - 1 do for x in 0 .. kw - 1 -> at y x 0 filter |]
                                { Pictures.Height = kh; Pictures.Width = kw; Pictures.Colour = false; Pictures.Values = Pictures.normalise values } ]
                sprintf "%d kernels of %dx%d (black: most negative, white: most positive)" f kh kw, cells, scale, 8
            else
                // Deeper layers: one row per kernel (up to 32), one cell per input channel (up to 16).
                let rows, columns = min f 32, min c 16
                let cells = [ for filter in 0 .. rows - 1 do
                                let values = [| for ch in 0 .. columns - 1 do for y in 0 .. kh - 1 do for x in 0 .. kw - 1 -> at y x ch filter |] |> Pictures.normalise
                                for ch in 0 .. columns - 1 ->
                                    { Pictures.Height = kh; Pictures.Width = kw; Pictures.Colour = false; Pictures.Values = Array.sub values (ch * kh * kw) (kh * kw) } ]
                sprintf "rows: kernels 1-%d of %d; columns: input channels 1-%d of %d (%dx%d each)" rows f columns c kh kw, cells, scale, columns
        let path = defaultArg output (pictureName file (node.Name + "-filters"))
        Pictures.write path (Pictures.sheet (sprintf "%s, layer %s" (Path.GetFileName file) node.Name) [ block ])
        console.Out.WriteLine(sprintf "wrote %s (%s: %d kernels of %dx%dx%d)" path node.Name f kh kw c)
        Clean))

/// `dsl show activations FILE --weights W (IMAGE | --test N) [-o OUT]`: the input and the
/// feature maps after every convolution and pooling layer for one input, one block per layer.
let showActivations (console: Console) (file: string) (weights: string option) (image: string option) (testIndex: int option) (data: string option) (output: string option) : int =
    match output |> Option.bind (fun o -> fileProblem "-o" o "activations.png") with
    | Some problem -> console.Err.WriteLine("dsl: " + problem); CannotRun
    | None ->
    withModel console file (fun text graph ->
    guarded console (fun () ->
        let wanted = match graph.Input.OutputShape with Image (_, _, c) -> Some c | Vector _ -> None
        let input, label, classes =
            match image, testIndex with
            | Some path, None -> InputFiles.Read(path, Option.toNullable wanted), Path.GetFileName path, DataSets.ClassNamesOf(Option.toObj graph.Training.Data)
            | None, Some n ->
                match data |> Option.orElse graph.Training.Data with
                | None -> raise (DataError(file, "has no data set for --test: add 'data NAME' to its train section, or give --data NAME|FOLDER"))
                | Some name ->
                    let test = (loadData name graph).Test
                    if n < 0 || n >= test.Count then raise (DataError(name, sprintf "--test %d: the test set has examples 0 to %d" n (test.Count - 1)))
                    let values = Array.zeroCreate<float> test.ExampleSize
                    test.CopyExample(n, Span values)
                    let names = test.ClassNames
                    InputImage(test.Height, test.Width, test.Channels, values),
                    sprintf "test example %d (%s)" n (if test.Labels[n] < names.Length then names[test.Labels[n]] else string test.Labels[n]),
                    names
            | _ -> raise (DataError(file, "show activations needs one input: an image file, or --test N for the N-th test example"))
        checkFinite (defaultArg image file) input
        let graph = sizedFor text graph (defaultArg image file) input
        let net = Network<float32>(graph, 1, 0)
        loadOrWarn console graph net weights
        for i in 0 .. input.Values.Length - 1 do net.Input[i] <- float32 input.Values[i]
        net.Forward(false)
        let maps (h: int) (w: int) (c: int) (values: float[]) (limit: int) =
            [ for ch in 0 .. min c limit - 1 ->
                let channel = Array.init (h * w) (fun i -> values[i * c + ch])
                // a map that is the same everywhere (a unit that never fires) shows black, not mid-grey
                let shown = if Array.max channel = Array.min channel then Array.zeroCreate channel.Length else Pictures.normalise channel
                { Pictures.Height = h; Pictures.Width = w; Pictures.Colour = false; Pictures.Values = shown } ]
        let inputBlock =
            let h, w, c = input.Height, input.Width, input.Channels
            let cells =
                if c = 3 then [ { Pictures.Height = h; Pictures.Width = w; Pictures.Colour = true; Pictures.Values = Array.map (fun v -> Math.Clamp(v, 0.0, 1.0)) input.Values } ]
                else maps h w c input.Values 16
            sprintf "input %dx%dx%d: %s" h w c label, cells, Pictures.scaleFor 84 (max h w), 16
        let layerBlocks =
            [ for layer in net.Layers do
                let node = layer.Node
                match node.Kind, node.OutputShape with
                | (LayerKind.Conv _ | LayerKind.FixedConv _ | LayerKind.Pool _), Image (Dim.Known h, Dim.Known w, c) ->
                    let values = layer.Output.Value |> Array.map float
                    let shown = min c 32
                    let caption = sprintf "%s (%s) %dx%dx%d%s" node.Name (Summary.typeName node) h w c (if shown < c then sprintf ", channels 1-%d" shown else "")
                    yield caption, maps h w c values 32, Pictures.scaleFor 56 (max h w), 16
                | _ -> () ]
        let prediction =
            let output = net.Output.ToArray()
            if output.Length > 1 then
                let best = Array.findIndex (fun v -> v = Array.max output) output
                let name = if isNull classes || best >= classes.Length then string best else classes[best]
                sprintf "; predicted %s (%.2f)" name output[best]
            else ""
        let path = defaultArg output (pictureName file "activations")
        Pictures.write path (Pictures.sheet (sprintf "%s: feature maps%s" (Path.GetFileName file) prediction) (inputBlock :: layerBlocks))
        console.Out.WriteLine(sprintf "wrote %s (%d layers)" path layerBlocks.Length)
        Clean))
