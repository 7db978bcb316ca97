/// The substance of `dsl run`, `dsl eval`, `dsl predict` and `dsl export` (src/Cli/Commands.fs),
/// rewritten over the API's types; the names are the CLI's (settingsOf, loadData, sizedToData,
/// limitSplit, run), so that the CLI can call these instead of its own copies.
module internal CnnDsl.Runs

open System
open System.Collections.Generic
open System.Collections.ObjectModel
open System.IO
open System.Threading
open CnnDsl.Dsl
open CnnDsl.Graph
open CnnDsl.Runtime
open CnnDsl.Runtime.Data
open CnnDsl.Runtime.Training

/// A model file is a few hundred lines of text; past this it is taken for a wrong file.
let maxModelBytes = 4 * 1024 * 1024

/// The text of a model file, or a ModelFileException with the CLI's message (without `dsl: `).
let readModel (path: string) : string =
    let fail message = raise (ModelFileException(path, message))
    try
        if Directory.Exists path then fail (sprintf "'%s' is a folder; give a model file such as models/lenet.cnn" path)
        elif not (File.Exists path) then fail (sprintf "cannot read '%s': no such file" path)
        else
            // At most one byte past the limit: a device (/dev/zero) reports no useful length.
            use stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite)
            let buffer = Array.zeroCreate<byte> (maxModelBytes + 1)
            let mutable count = 0
            let mutable reading = true
            while reading && count < buffer.Length do
                let n = stream.Read(buffer, count, buffer.Length - count)
                if n = 0 then reading <- false else count <- count + n
            let nul = Array.IndexOf(buffer, 0uy, 0, count)
            if nul >= 0 then fail (sprintf "'%s' is not a text file (byte %d is NUL); give a model file such as models/lenet.cnn" path nul)
            elif count > maxModelBytes then
                fail (sprintf "'%s' is larger than %d MB; a model file is a short text file (give the .cnn file, not a data set or checkpoint)" path (maxModelBytes / 1024 / 1024))
            else Text.UTF8Encoding(false).GetString(buffer, 0, count).TrimStart('\uFEFF')
    with
    | :? IOException | :? UnauthorizedAccessException as e -> fail (sprintf "cannot read '%s': %s" path e.Message)

/// Refuses input values that are not finite float32 numbers (NaN, infinities, beyond 3.4e38),
/// naming the file and the value's row, column and channel.
let checkFinite (file: string) (image: InputImage) =
    let limit = float Single.MaxValue
    match image.Values |> Array.tryFindIndex (fun v -> not (Double.IsFinite v) || abs v > limit) with
    | None -> ()
    | Some i ->
        let c = image.Channels
        let pixel = i / c
        let channel = if c > 1 then sprintf ", channel %d" (i % c + 1) else ""
        let where = sprintf "row %d, column %d%s" (pixel / image.Width + 1) (pixel % image.Width + 1) channel
        let value = image.Values[i].ToString(Globalization.CultureInfo.InvariantCulture)
        raise (DataError(file, sprintf "holds %s at %s: inputs must be finite numbers between -3.4e38 and 3.4e38; correct that value" value where))

let isDynamic (graph: Graph) =
    match graph.Input.OutputShape with Image (h, w, _) -> h = Dim.Dynamic || w = Dim.Dynamic | Vector _ -> false

let optimizerName (opt: Optimizer) =
    match opt with Optimizer.Adam _ -> "adam" | Optimizer.AdamW _ -> "adamw" | Optimizer.Sgd _ -> "sgd" | Optimizer.RmsProp _ -> "rmsprop"

let learningRate (opt: Optimizer) =
    match opt with Optimizer.Adam (lr, _, _, _) | Optimizer.Sgd (lr, _, _) | Optimizer.RmsProp (lr, _, _, _) | Optimizer.AdamW (lr, _, _, _, _, _) -> lr

let lossText (l: Loss) =
    match l with
    | Loss.CrossEntropy -> "crossentropy" | Loss.BinaryCrossEntropy -> "binary crossentropy"
    | Loss.MeanSquaredError -> "mse" | Loss.MeanAbsoluteError -> "mae"

let private invariant (v: float) = v.ToString("0.####", Globalization.CultureInfo.InvariantCulture)

/// The optimizer as the run header names it; `weightDecay` is the train section's decoupled decay
/// of adam, sgd and rmsprop (adamw carries its own).
let optimizerText (opt: Optimizer) (weightDecay: float) =
    let decay = if weightDecay > 0.0 then sprintf ", weight decay %s" (invariant weightDecay) else ""
    match opt with
    | Optimizer.Adam (lr, _, _, _) -> sprintf "adam (lr %s%s)" (invariant lr) decay
    | Optimizer.Sgd (lr, m, n) -> sprintf "sgd (lr %s, momentum %s%s%s)" (invariant lr) (invariant m) (if n then ", nesterov" else "") decay
    | Optimizer.RmsProp (lr, _, _, _) -> sprintf "rmsprop (lr %s%s)" (invariant lr) decay
    | Optimizer.AdamW (lr, _, _, _, wd, _) -> sprintf "adamw (lr %s, weight decay %s)" (invariant lr) (invariant wd)

let private positive (what: string) (v: Nullable<int>) =
    if v.HasValue && v.Value < 1 then raise (CnnDslException(sprintf "%s %d: use at least 1" what v.Value))

/// The settings of a run: the options over the file over Keras's defaults (optimizer rmsprop,
/// as Keras's compile; batch 32; one epoch; no validation split); and the data set's name.
/// `spell` writes an option's name as the caller knows it (TrainingOptions.Optimizer, --optimizer).
let settingsOf (spell: string -> string) (name: string) (graph: Graph) (o: TrainingOptions) : TrainingSettings * string option =
    // named as the caller sets them, as the optimizer's message names it
    positive (spell "Epochs") o.Epochs
    positive (spell "BatchSize") o.BatchSize
    positive (spell "Limit") o.Limit
    if o.Seed.HasValue && o.Seed.Value < 0 then raise (CnnDslException(sprintf "%s %d: the seed must be 0 or more" (spell "Seed") o.Seed.Value))
    if o.LearningRate.HasValue && not (o.LearningRate.Value > 0.0) then
        raise (CnnDslException(sprintf "%s %g: the learning rate must be above 0" (spell "LearningRate") o.LearningRate.Value))
    if o.Validation.HasValue && not (o.Validation.Value >= 0.0 && o.Validation.Value < 1.0) then
        raise (CnnDslException(sprintf "%s %g: the validation fraction must be in [0, 1)" (spell "Validation") o.Validation.Value))
    let t = graph.Training
    let fromFile kind = t.Optimizer |> Option.filter (fun opt -> optimizerName opt = kind)
    let optimizer =
        let chosen = match o.Optimizer with null -> t.Optimizer |> Option.map optimizerName | s -> Some (s.Trim().ToLowerInvariant())
        match defaultArg chosen "rmsprop" with
        | "adam" -> fromFile "adam" |> Option.defaultValue (Optimizer.Adam (0.001, 0.9, 0.999, 1e-7))
        | "sgd" -> fromFile "sgd" |> Option.defaultValue (Optimizer.Sgd (0.01, 0.0, false))
        | "rmsprop" -> fromFile "rmsprop" |> Option.defaultValue (Optimizer.RmsProp (0.001, 0.9, 0.0, 1e-7))
        | "adamw" -> fromFile "adamw" |> Option.defaultValue (Optimizer.AdamW (0.001, 0.9, 0.999, 1e-8, 0.01, []))
        | _ -> raise (CnnDslException(sprintf "%s %s: use adam, adamw, sgd or rmsprop" (spell "Optimizer") o.Optimizer))
    let withRate (opt: Optimizer) =
        if not o.LearningRate.HasValue then opt
        else
            let lr = o.LearningRate.Value
            match opt with
            | Optimizer.Adam (_, b1, b2, e) -> Optimizer.Adam (lr, b1, b2, e)
            | Optimizer.Sgd (_, m, n) -> Optimizer.Sgd (lr, m, n)
            | Optimizer.RmsProp (_, r, m, e) -> Optimizer.RmsProp (lr, r, m, e)
            | Optimizer.AdamW (_, b1, b2, e, wd, ex) -> Optimizer.AdamW (lr, b1, b2, e, wd, ex)
    let orElse (v: Nullable<'T>) (fileValue: 'T option) (fallback: 'T) = if v.HasValue then v.Value else defaultArg fileValue fallback
    let settings =
        TrainingSettings(
            orElse o.Epochs t.Epochs 1, orElse o.BatchSize t.BatchSize 32, orElse o.Seed t.Seed 0, orElse o.Validation t.ValidationSplit 0.0,
            withRate optimizer, defaultArg t.Loss Loss.CrossEntropy, defaultArg t.WeightDecay 0.0,
            (match o.OutputFolder with null -> Path.Combine("runs", name) | f -> f),
            Augment = (t.Augment |> List.toArray :> IReadOnlyList<string>),
            Schedule = Option.toObj t.Schedule,
            EarlyStopping = Option.toNullable t.EarlyStopping,
            LabelSmoothing = defaultArg t.LabelSmoothing 0.0, Warmup = defaultArg t.Warmup 0,
            Ema = defaultArg t.Ema 0.0, TestTimeFlip = List.contains "flip" t.Tta,
            TestTimeShift = (t.Tta |> List.tryPick (fun v -> if v.StartsWith "shift " then Some (int (v.Substring 6)) else None) |> Option.defaultValue 0))
    settings, (match o.Data with null -> t.Data | d -> Some d)

/// A data set by name or path; the generated `shapes` set is made at the model's input size.
let loadData (name: string) (graph: Graph) =
    match graph.Input.OutputShape with
    | Image (Dim.Known h, Dim.Known w, c) -> DataSets.Load(name, h, w, c)
    | _ -> DataSets.Load name

let limitSplit (limit: Nullable<int>) (split: CnnDsl.Runtime.Data.DataSplit) =
    if limit.HasValue then
        let n = limit.Value
        CnnDsl.Runtime.Data.DataSplit(split.Train.Slice(0, min n split.Train.Count), split.Test.Slice(0, min (max 1 (n / 5)) split.Test.Count))
    else split

/// A model with a dynamic input (`input ?x?x1`) trains and evaluates at its data set's size.
let sizedToData (text: string) (graph: Graph) (data: CnnDsl.Runtime.Data.Dataset) =
    if not (isDynamic graph) then graph
    else
        match Frontend.compileWithInput text data.Height data.Width with
        | Some (Ok (g, _)) -> g
        | Some (Error ds) ->
            raise (DataError(data.Name, sprintf "is %s, and at %dx%d the model does not check: %s" data.ShapeText data.Height data.Width
                                            (ds |> List.map (fun d -> d.Message) |> String.concat "; ")))
        | None -> graph

/// The model itself when its sizes are fixed; an any-size (?x?) model at the first size it
/// accepts (28, 32, then 16 to 256): its weights are the same at every size.
let concreteGraph (text: string) (graph: Graph) =
    if not (isDynamic graph) then Some graph
    else [ 28; 32; yield! [ 16 .. 256 ] ] |> List.tryPick (fun n -> match Frontend.compileWithInput text n n with Some (Ok (g, _)) -> Some g | _ -> None)

/// An input must have the model's input shape (a vector model takes any shape of its length).
let checkInput (graph: Graph) (file: string) (height: int) (width: int) (channels: int) =
    let fits =
        match graph.Input.OutputShape with
        | Image (Dim.Known h, Dim.Known w, c) -> h = height && w = width && c = channels
        | shape -> Cost.elements shape = Some (int64 height * int64 width * int64 channels)
    if not fits then
        raise (DataError(file, sprintf "is %dx%dx%d but the model's input is %O; give a matching input (resize images first) or change the model's input line"
                                    height width channels graph.Input.OutputShape))

/// The graph at an input's size: a dynamic input takes the size of what is applied; a fixed one must match it.
let sizedFor (text: string) (graph: Graph) (input: string) (height: int) (width: int) (channels: int) =
    let graph =
        match graph.Input.OutputShape with
        | Image (h, w, _) when h = Dim.Dynamic || w = Dim.Dynamic ->
            match Frontend.compileWithInput text height width with
            | Some (Ok (g, _)) -> g
            | Some (Error ds) ->
                raise (DataError(input, sprintf "at %dx%d the model does not check: %s" height width (ds |> List.map (fun d -> d.Message) |> String.concat "; ")))
            | None -> graph
        | _ -> graph
    checkInput graph input height width channels
    graph

/// Refuses before allocating what the machine cannot give (the operating system would kill the
/// run later, losing its work); a tenth is left for the data and the program itself.
let fits (spell: string -> string) (name: string) (graph: Graph) (batch: int) =
    let plan = MemoryPlan.Estimate(graph, batch)
    let available = Memory.AvailableBytes()
    let budget = available / 10L * 9L
    if plan.Total > budget then
        // The suggestion keeps 5% in hand, so that it still fits when free memory moves a little.
        let largest = Memory.LargestBatch(graph, budget / 100L * 95L, batch)
        let b = Summary.bytesText
        let parts =
            sprintf "activations and gradients %s, layer buffers %s, parameters and gradients %s, optimizer state %s"
                (b plan.Activations) (b plan.Workspace) (b plan.Parameters) (b plan.OptimizerState)
        let advice =
            if largest > 0 then sprintf "the largest batch that fits is %d: use %s %d" largest (spell "BatchSize") largest
            else "even batch 1 does not fit: use a smaller input or fewer filters"
        raise (ModelSizeException(
                sprintf "%s needs %s at batch %d (%s), but %s of memory is available; %s" name (b plan.Total) batch parts (b available) advice,
                null))

/// Options named as a .NET caller sets them.
let apiSpelling (option: string) = "TrainingOptions." + option

/// What the CLI adds to a run (the API's callers have IProgress instead): its own report (the
/// console's lines, JSON, plots), the remarks printed before training, the pause test hook.
type Hooks =
    { /// hears everything the runtime reports, the run's description first
      Report: ITrainingReport option
      /// a remark before training (a transfer, outputs beyond the classes)
      Note: string -> unit
      /// CNNDSL_PAUSE_AT: before this epoch (from 1) and batch (from 0), call Paused and wait for the stop
      PauseAt: (int * int) option
      Paused: unit -> unit
      /// an option's name as the caller writes it, in messages (TrainingOptions.Resume, --resume)
      Spell: string -> string
      /// told the epoch the run starts at (0, or where a resumed run continues) before it starts
      Starting: int -> unit }
    static member None = { Report = None; Note = ignore; PauseAt = None; Paused = ignore; Spell = apiSpelling; Starting = ignore }

/// Forwards the runtime's reports to the caller's IProgress objects (on the training thread) and to the hooks' report.
type ProgressReport(epochs: int, progress: IProgress<TrainingProgress> | null, epochDone: IProgress<EpochResult> | null, inner: ITrainingReport option,
                    spell: string -> string) =
    member val Stopped : string | null = null with get, set
    interface ITrainingReport with
        member _.Started(description) = inner |> Option.iter (fun r -> r.Started description)
        member _.Progress(epoch, batch, batches, loss, accuracy, rate) =
            match progress with
            | null -> ()
            | p -> p.Report(TrainingProgress(epoch + 1, epochs, batch, batches, loss, accuracy, rate))
            inner |> Option.iter (fun r -> r.Progress(epoch, batch, batches, loss, accuracy, rate))
        member _.EpochDone(r) =
            match epochDone with
            | null -> ()
            | p -> p.Report(EpochResult(r.Epoch, r.Epochs, r.Seconds, r.Loss, r.Accuracy, r.ValidationLoss, r.ValidationAccuracy, r.ImagesPerSecond))
            inner |> Option.iter (fun i -> i.EpochDone r)
        member this.Stopped(message) =
            // the runtime says how to continue in dsl's words; the result says it in the caller's
            let resume = (spell "Resume")
            this.Stopped <- if resume = "--resume" then message else message.Replace("continue with --resume", "continue with " + resume)
            inner |> Option.iter (fun r -> r.Stopped message)

/// The run's description, as `dsl run` prints it before the first epoch: the model, the data, the
/// settings, and the engine (how each convolution is lowered at this batch size).
let describe (file: string) (graph: Graph) (split: CnnDsl.Runtime.Data.DataSplit) (settings: TrainingSettings) (trainer: Trainer) (start: TrainingPosition) =
    let s = settings
    let n (v: int64) = Messages.thousands v
    let trainable, frozen = graph.Nodes |> List.map Cost.parameters |> List.fold (fun (a, b) (x, y) -> a + x, b + y) (0L, 0L)
    // ColumnPlan chooses each convolution's lowering by measured speed at this batch size
    let lowerings =
        [ for node in graph.Nodes do
            if node.Kind.IsConv || node.Kind.IsFixedConv then
                yield (Layers.ColumnPlan.For(node, s.BatchSize)).Lowering, node.Name ]
        |> List.groupBy fst
        |> List.map (fun (how, names) -> sprintf "%s (%s)" how (String.Join(", ", names |> List.map snd)))
    let threads = if BatchParallel.Threads = 1 then "one thread" else sprintf "%d threads" BatchParallel.Threads
    let denormals = if Denormals.Enabled then "flushed to zero" else "kept"
    let augment = if s.Augment.Count > 0 then ", augment " + String.Join(" ", s.Augment) else ""
    // the recipe settings in force (issue 19), each only when set
    let recipe =
        [ match Option.ofObj s.Schedule with
          | Some (Schedule.OneCycle (pct, linear)) -> yield sprintf "schedule onecycle %s%s" (invariant pct) (if linear then " linear" else "")
          | Some Schedule.Cosine -> yield "schedule cosine"
          | _ -> ()
          if s.Warmup > 0 then yield sprintf "warmup %d" s.Warmup
          if s.LabelSmoothing > 0.0 then yield sprintf "labelsmoothing %s" (invariant s.LabelSmoothing)
          if graph.Training.Normalize then yield "normalize"
          if s.Ema > 0.0 then yield sprintf "ema %s" (invariant s.Ema)
          match [ if s.TestTimeFlip then "flip"
                  if s.TestTimeShift > 0 then sprintf "shift %d" s.TestTimeShift ] with
          | [] -> ()
          | views -> yield "tta " + String.Join(" ", views) ]
    let augment = augment + String.concat "" (recipe |> List.map (fun r -> ", " + r))
    let examples = sprintf "%s training, %s validation, %s test examples"
                       (n (int64 trainer.TrainCount)) (n (int64 trainer.ValidationCount)) (n (int64 split.Test.Count))
    [ yield sprintf "Model %s: %s parameters (%s trainable)" file (n (trainable + frozen)) (n trainable)
      yield sprintf "Data %s: %s of %s" split.Train.Name examples split.Train.ShapeText
      yield sprintf "Training: %d epoch%s, batch %d, %s, loss %s, seed %d%s"
                s.Epochs (if s.Epochs = 1 then "" else "s") s.BatchSize (optimizerText s.Optimizer s.WeightDecay) (lossText s.Loss) s.Seed augment
      if start.Epoch > 0 || start.Batch > 0 then
          yield sprintf "Resuming at epoch %d, batch %d" (start.Epoch + 1) start.Batch
      yield sprintf "Engine: %s; work between GEMMs on %s; denormals %s; checkpoints in %s"
                Blas.Gemm.Current.Description threads denormals s.OutputFolder
      if not lowerings.IsEmpty then yield "Convolutions: " + String.Join("; ", lowerings)
      match Blas.Gemm.Notice with null -> () | notice -> yield notice ]
    |> String.concat "\n"

let epochResult (r: EpochRecord) =
    EpochResult(r.Epoch, r.Epochs, r.Seconds, r.Loss, r.Accuracy, r.ValidationLoss, r.ValidationAccuracy, r.ImagesPerSecond)

/// The data of a run: the options' data in memory, else a data set by name (the options', the file's).
let private dataOf (spell: string -> string) (name: string) (graph: Graph) (options: TrainingOptions) (dataName: string option) =
    match options.TrainingData with
    | null ->
        match dataName with
        | None -> raise (CnnDslException(sprintf "no data set: add 'data fashion-mnist' to the train section of %s, or give %s" name (spell "Data")))
        | Some d -> d, loadData d graph
    | split -> split.Train.Name, CnnDsl.Runtime.Data.DataSplit(split.Train.Inner, split.Test.Inner)

/// `dsl run`: trains, checkpoints every epoch, then evaluates on the test set.
/// `file` names the model in messages (its path, or its name when it was given as text).
let rec run (hooks: Hooks) (name: string) (file: string) (text: string) (graph: Graph) (options: TrainingOptions) (progress: IProgress<TrainingProgress> | null)
        (epochDone: IProgress<EpochResult> | null) (stop: CancellationToken) : TrainingResult =
    // The runtime's advice names dsl's flags (resume with --batch 16, start a new run with
    // --weights FILE and --out DIR); a .NET caller reads it with the options it sets.
    let spell = hooks.Spell
    try runWith hooks name file text graph options progress epochDone stop with
    | :? CheckpointError as e when spell "Resume" <> "--resume" -> raise (CnnDsl.CheckpointException(respell spell e.Message, e))
    | :? ModelSizeError as e when spell "Resume" <> "--resume" -> raise (CnnDsl.ModelSizeException(respell spell e.Message, e))
    | :? IOException as e when spell "Resume" <> "--resume" -> raise (CnnDslException(respell spell e.Message, e))

/// A runtime message with dsl's flags written as the caller's options.
and private respell (spell: string -> string) (message: string) =
    [ "--batch", "BatchSize"; "--optimizer", "Optimizer"; "--seed", "Seed"; "--weights", "InitialWeights"; "--out DIR", "OutputFolder"
      "--force", "Force"; "--resume", "Resume"; "--data", "Data"; "--limit", "Limit"; "--validation", "Validation" ]
    |> List.fold (fun (m: string) (flag, option) -> Text.RegularExpressions.Regex.Replace(m, Text.RegularExpressions.Regex.Escape flag + @"\b", spell option)) message

and private runWith (hooks: Hooks) (name: string) (file: string) (text: string) (graph: Graph) (options: TrainingOptions) (progress: IProgress<TrainingProgress> | null)
        (epochDone: IProgress<EpochResult> | null) (stop: CancellationToken) : TrainingResult =
    let spell = hooks.Spell
    let settings, dataName = settingsOf spell name graph options
    // one continues the folder's run, the other replaces it: both at once is a slip, not a choice
    if options.Resume && options.Force then
        raise (CnnDslException(sprintf "%s continues the run in the folder and %s replaces it; give one of them" (spell "Resume") (spell "Force")))
    // A fixed-size model is measured before its data is read; a dynamic one once the data gives its size.
    if not (isDynamic graph) then fits spell file graph settings.BatchSize
    if isNull options.TrainingData && dataName.IsNone then dataOf spell file graph options dataName |> ignore
    let folder = settings.OutputFolder
    let example = Path.Combine("runs", name)
    if String.IsNullOrWhiteSpace folder then
        raise (CnnDslException(sprintf "%s: the folder name is empty; give one, such as %s" (spell "OutputFolder") example))
    if File.Exists folder then
        raise (CnnDslException(sprintf "%s %s: that is a file, not a folder; give a folder, such as %s" (spell "OutputFolder") folder example))
    let last, best = Path.Combine(folder, "last.ckpt"), Path.Combine(folder, "best.ckpt")
    try Directory.CreateDirectory folder |> ignore
    with :? IOException | :? UnauthorizedAccessException as e ->
        raise (CnnDslException(sprintf "cannot create the folder %s (%s); give another %s" folder (e.Message.TrimEnd('.')) (spell "OutputFolder"), e))
    // One run per output folder at a time: an OS lock on DIR/.lock, held until the run ends.
    let lockFile =
        try new FileStream(Path.Combine(folder, ".lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None)
        with :? IOException ->
            let lock = Path.Combine(folder, ".lock")
            raise (CnnDslException(sprintf "another run is writing to %s (it holds %s); wait for it to finish, or give this one another %s"
                                       folder lock (spell "OutputFolder")))
    use _ = lockFile
    let existing = [ last; best ] |> List.filter File.Exists
    if not options.Resume && not options.Force && not existing.IsEmpty then
        // A finished run's checkpoints are hours of work: never replaced without being asked.
        let files = String.Join(", ", existing |> List.map Path.GetFileName)
        raise (CnnDslException(
                sprintf "%s already holds a run (%s); continue it with %s, replace it with %s, or train into another folder with %s"
                    folder files (spell "Resume") (spell "Force") (spell "OutputFolder")))
    if options.Resume && not (File.Exists last) then
        raise (CheckpointException(
                last + ": " +
                (if File.Exists best then
                    sprintf "nothing to resume: there is no last.ckpt, only %s (an interrupted write?); %s" best
                        (sprintf "start a new run from its weights with %s %s and another %s" (spell "InitialWeights") best (spell "OutputFolder"))
                 else sprintf "nothing to resume: no checkpoint here yet; run without %s" (spell "Resume")), null))
    let dataName, split = dataOf spell file graph options dataName
    let split = limitSplit options.Limit split
    // The validation part comes from the training set's end (as the Trainer takes it): a run
    // must keep at least one example to train on, or its checkpoints record none and never load.
    let held = int (Math.Round(float split.Train.Count * settings.ValidationSplit))
    if split.Train.Count - held < 1 then
        raise (DataError(split.Train.Name,
                         if split.Train.Count = 0 then "has no training examples, so there is nothing to train on; give a data set with some"
                         else sprintf "has %d training example%s, and validation %s holds out %d, leaving none to train on; lower %s or give more examples"
                                  split.Train.Count (if split.Train.Count = 1 then "" else "s") (invariant settings.ValidationSplit) held (spell "Validation")))
    let graph = sizedToData text graph split.Train
    if isDynamic graph |> not then fits spell file graph settings.BatchSize
    let notes = List<string>()
    let note (s: string) = notes.Add s; hooks.Note s
    let report = ProgressReport(settings.Epochs, progress, epochDone, hooks.Report, spell)
    let trainer = Trainer(graph, split.Train, settings, report, ProgressInterval = options.ProgressInterval)
    let start =
        if options.Resume then trainer.Load(trainer.LastCheckpoint, true)
        else
            match options.InitialWeights with
            | null -> ()
            | w ->
                let struct (copied, kept) = trainer.Transfer w
                if copied.Count = 0 then raise (CheckpointError(w, "has no tensor whose name and size match this model's; layer names come from dsl summary"))
                note (sprintf "Transferred %d tensors from %s%s" copied.Count w
                            (if kept.Count = 0 then "" else sprintf "; %d start from scratch (%s)" kept.Count (String.Join(", ", kept))))
            TrainingPosition.Start
    // (said once the starting weights loaded, so that a refused checkpoint is the only message)
    let outputs = Cost.elements graph.Output.OutputShape |> Option.defaultValue 0L
    if outputs > int64 split.Train.ClassNames.Length && outputs > 1L then
        note (sprintf "Note: the model has %d outputs and %s has %d classes; %s"
                    outputs split.Train.Name split.Train.ClassNames.Length
                    "the other outputs are never the answer (the confusion matrix counts them as 'other')")
    // Force: the old run's checkpoints go once the starting weights are loaded (they may come from them).
    if not options.Resume then for f in existing do File.Delete f
    hooks.PauseAt |> Option.iter (fun (epoch, batch) ->
        trainer.PauseAt <- Nullable<struct (int * int)>(struct (epoch - 1, batch))
        trainer.Paused <- Action hooks.Paused)
    hooks.Starting start.Epoch
    (report :> ITrainingReport).Started(describe file graph split settings trainer start)
    let records = trainer.Run(start, stop)
    let ran = records.Count
    let status =
        if ran < settings.Epochs - start.Epoch && stop.IsCancellationRequested then TrainingStatus.Cancelled
        elif trainer.StoppedEarly then TrainingStatus.StoppedEarly
        elif ran < settings.Epochs - start.Epoch then TrainingStatus.Diverged
        else TrainingStatus.Completed
    let test : CnnDsl.Evaluation | null =
        if (status = TrainingStatus.Completed || status = TrainingStatus.StoppedEarly) && options.EvaluateTestSet && split.Test.Count > 0 then
            CnnDsl.Evaluation.Of(trainer.Evaluate split.Test, split.Test.Count)
        else null
    let used =
        TrainingSettingsUsed(settings.Epochs, settings.BatchSize, optimizerName settings.Optimizer, learningRate settings.Optimizer,
                             lossText settings.Loss, settings.Seed, settings.ValidationSplit, dataName)
    TrainingResult(status, report.Stopped,
                   ReadOnlyCollection(records |> Seq.map epochResult |> Array.ofSeq), folder, test, ReadOnlyCollection(notes.ToArray()), used,
                   trainer.TrainCount, trainer.ValidationCount, split.Test.Count, start.Epoch, start.Batch)

/// `dsl eval`: a checkpoint's loss, accuracy and confusion matrix on a data set.
let evaluate (spell: string -> string) (name: string) (text: string) (graph: Graph) (weights: string) (data: CnnDsl.Runtime.Data.Dataset) (batch: Nullable<int>) =
    let options = TrainingOptions(BatchSize = batch)
    let settings, _ = settingsOf spell name graph options
    if data.Count = 0 then raise (DataError(data.Name, "has no examples, so there is nothing to evaluate"))
    let graph = sizedToData text graph data
    let trainer =
        Trainer(graph, data, TrainingSettings(1, settings.BatchSize, 0, 0.0, settings.Optimizer, settings.Loss, 0.0, settings.OutputFolder,
                                              LabelSmoothing = settings.LabelSmoothing, TestTimeFlip = settings.TestTimeFlip,
                                              TestTimeShift = settings.TestTimeShift, Augment = settings.Augment),
                ProgressReport(1, null, null, None, spell))
    trainer.Load(weights, false) |> ignore
    CnnDsl.Evaluation.Of(trainer.Evaluate data, data.Count)
