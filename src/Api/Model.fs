namespace CnnDsl

open System
open System.Collections.Concurrent
open System.Collections.Generic
open System.Collections.ObjectModel
open System.IO
open System.Threading
open System.Threading.Tasks
open CnnDsl.Graph
open CnnDsl.Runtime

/// <summary>
/// A checked model: a <c>.cnn</c> file or text whose every shape is consistent. Load one with
/// <see cref="M:CnnDsl.Model.Load(System.String)"/> or <see cref="M:CnnDsl.Model.Parse(System.String,System.String)"/>,
/// which throw a <see cref="T:CnnDsl.ModelException"/> carrying every diagnostic when the model does
/// not check; or check without an exception with <see cref="M:CnnDsl.Model.CheckFile(System.String)"/> and
/// <see cref="M:CnnDsl.Model.CheckText(System.String,System.String)"/>. A model is immutable and safe to share between threads;
/// each training run, evaluation or predictor builds its own network.
/// </summary>
[<Sealed>]
type Model private (name: string, text: string, file: string | null, graph: CnnDsl.Graph.Graph, warnings: IReadOnlyList<Diagnostic>) =
    let nodeName id = (graph.Nodes |> List.item id).Name

    member internal _.Graph = graph
    member internal _.Text = text

    /// <summary>The model's name: the file's name without <c>.cnn</c>, or the name given to Parse.</summary>
    member _.Name = name
    /// <summary>The model file's path; null for a model parsed from text.</summary>
    member _.FilePath : string | null = file
    /// <summary>The model's text.</summary>
    member _.Source = text
    /// <summary>Warnings found while checking (a model with errors does not load).</summary>
    member _.Warnings = warnings
    /// <summary>The shape of one input (HWC).</summary>
    member _.InputShape = TensorShape graph.Input.OutputShape
    /// <summary>The shape of one output: the number of classes for a classifier.</summary>
    member _.OutputShape = TensorShape graph.Output.OutputShape
    /// <summary>True when the input's height or width is <c>?</c>: the model runs at its data's or image's size.</summary>
    member _.IsDynamic = Runs.isDynamic graph
    /// <summary>The data set the file's <c>train</c> section names (<c>data fashion-mnist</c>); null when none.</summary>
    member _.DataName : string | null = Option.toObj graph.Training.Data
    /// <summary>The class names of that data set when it is a known one (<c>fashion-mnist</c>, <c>mnist</c>,
    /// <c>cifar10</c>, <c>shapes</c>); null otherwise.</summary>
    member _.ClassNames : IReadOnlyList<string> | null =
        match CnnDsl.Runtime.Data.DataSets.ClassNamesOf(Option.toObj graph.Training.Data) with
        | null -> null
        | names -> ReadOnlyCollection(Array.copy names)
    /// <summary>The layers' names, input first: the names checkpoints and exports use.</summary>
    member _.LayerNames : IReadOnlyList<string> = ReadOnlyCollection(graph.Nodes |> List.map (fun n -> n.Name) |> List.toArray)

    /// A model the caller has already read and checked (the `dsl` program prints its own diagnostics).
    static member internal OfGraph(name: string, text: string, file: string | null, graph: CnnDsl.Graph.Graph) =
        Model(name, text, file, graph, ReadOnlyCollection([||]))

    /// Checks the text; diagnostics name the file, else the model's name.
    static member private Compile(name: string, text: string, file: string | null) : Result<Model, IReadOnlyList<Diagnostic>> =
        let shown = match file with null -> name | f -> f
        match CnnDsl.Dsl.Frontend.compile text with
        | Ok (graph, warnings) -> Ok (Model(name, text, file, graph, Diagnostic.List shown text warnings))
        | Error ds -> Error (Diagnostic.List shown text ds)

    /// <summary>Reads and checks a model file. Throws a <see cref="T:CnnDsl.ModelFileException"/> when the
    /// file cannot be read, a <see cref="T:CnnDsl.ModelException"/> with every diagnostic when it does not check.</summary>
    static member Load(path: string) : Model =
        ArgumentNullException.ThrowIfNull path
        let text = Runs.readModel path
        match Model.Compile(nonNull (Path.GetFileNameWithoutExtension path), text, path) with
        | Ok m -> m
        | Error ds -> raise (ModelException ds)

    /// <summary>Checks a model given as text; <paramref name="name"/> names it in diagnostics and default
    /// folders. Throws a <see cref="T:CnnDsl.ModelException"/> with every diagnostic when it does not check.</summary>
    static member Parse(text: string, name: string) : Model =
        ArgumentNullException.ThrowIfNull text
        ArgumentNullException.ThrowIfNull name
        match Model.Compile(name, text, null) with
        | Ok m -> m
        | Error ds -> raise (ModelException ds)

    /// <summary>Checks a model given as text, named <c>model</c>.</summary>
    static member Parse(text: string) : Model = Model.Parse(text, "model")

    /// <summary>Checks a model given as text without throwing for its mistakes: the result holds the
    /// diagnostics, and the model when there is no error.</summary>
    static member CheckText(text: string, name: string) : ModelCheckResult =
        ArgumentNullException.ThrowIfNull text
        ArgumentNullException.ThrowIfNull name
        match Model.Compile(name, text, null) with
        | Ok m -> ModelCheckResult(m, m.Warnings)
        | Error ds -> ModelCheckResult(null, ds)

    /// <summary>Checks a model file without throwing for its mistakes (as <c>dsl check</c>); a file that
    /// cannot be read still throws a <see cref="T:CnnDsl.ModelFileException"/>.</summary>
    static member CheckFile(path: string) : ModelCheckResult =
        ArgumentNullException.ThrowIfNull path
        let text = Runs.readModel path
        match Model.Compile(nonNull (Path.GetFileNameWithoutExtension path), text, path) with
        | Ok m -> ModelCheckResult(m, m.Warnings)
        | Error ds -> ModelCheckResult(null, ds)

    /// <summary>The same model at another input height and width (channels kept): an any-size model at
    /// a fixed size, or a model at a smaller size for a quick try. Throws a <see cref="T:CnnDsl.ModelException"/>
    /// when the model does not check at that size.</summary>
    member _.WithInputSize(height: int, width: int) : Model =
        match CnnDsl.Dsl.Frontend.compileWithInput text height width with
        | Some (Ok (g, ws)) -> Model(name, text, file, g, Diagnostic.List (match file with null -> name | f -> f) text ws)
        | Some (Error ds) -> raise (ModelException(Diagnostic.List (match file with null -> name | f -> f) text ds))
        | None -> raise (CnnDslException(sprintf "%s has no input line to resize" name))

    // ---- summary and explain ----

    /// <summary>The summary table as data (<c>dsl summary</c>): a row per layer, with output shapes,
    /// parameters, multiply-adds and activation memory; <c>ToString()</c> gives the printed table.</summary>
    member _.Summary() : ModelSummary =
        let rows =
            graph.Nodes |> List.map (fun n ->
                let trainable, frozen = Cost.parameters n
                LayerSummary(n.Name, CnnDsl.Dsl.Summary.typeName n, CnnDsl.Dsl.Summary.activationName n.Activation, n.SourceLine, TensorShape n.OutputShape,
                             ReadOnlyCollection(n.Inputs |> List.map nodeName |> List.toArray), trainable, frozen,
                             Option.toNullable (Cost.multiplyAdds n), Option.toNullable (Cost.activationBytes n)))
        ModelSummary(name, ReadOnlyCollection(List.toArray rows), CnnDsl.Dsl.Summary.render name graph)

    /// <summary>Every layer after the input with its output size and parameter count worked out with its own
    /// numbers (<c>dsl explain</c>).</summary>
    member _.Explain() : IReadOnlyList<LayerExplanation> =
        graph.Nodes |> List.tail |> List.map (fun n ->
            let outputs, notes, parameters = CnnDsl.Dsl.Explain.explainNode n
            let input = match n.InputShapes with s :: _ -> s | [] -> n.OutputShape
            LayerExplanation(n.Name, CnnDsl.Dsl.Summary.typeName n, n.SourceLine, TensorShape input, TensorShape n.OutputShape, CnnDsl.Dsl.Explain.heading n,
                             ReadOnlyCollection(List.toArray outputs), parameters, ReadOnlyCollection(List.toArray notes)))
        |> List.toArray |> ReadOnlyCollection :> IReadOnlyList<_>

    /// <summary>The text <c>dsl explain</c> prints: a paragraph per layer, or a Markdown table.</summary>
    member _.ExplainText(markdown: bool) : string = if markdown then CnnDsl.Dsl.Explain.markdown graph else CnnDsl.Dsl.Explain.text graph

    /// <summary>The layer graph in Graphviz's DOT language, a box per layer and the shape on every edge.</summary>
    member _.ToDot() : string = CnnDsl.Dsl.Diagram.dot name graph

    /// <summary>The layer graph as a Mermaid flowchart.</summary>
    member _.ToMermaid() : string = CnnDsl.Dsl.Diagram.mermaid graph

    /// <summary>The memory a training run takes at a batch size (<c>dsl summary --batch</c>), with the
    /// file's optimizer (else rmsprop); null when the input size is dynamic.</summary>
    member _.TrainingMemory(batchSize: int) : TrainingMemory | null =
        if batchSize < 1 then raise (ArgumentOutOfRangeException(nameof batchSize, "the batch size must be at least 1"))
        if graph.Nodes |> List.exists (fun n -> (Cost.elements n.OutputShape).IsNone) then null
        else
            let optimizer = defaultArg graph.Training.Optimizer (Optimizer.RmsProp (0.001, 0.9, 0.0, 1e-7))
            let slots =
                match optimizer with
                | Optimizer.Adam _ | Optimizer.AdamW _ -> 2
                | Optimizer.RmsProp (_, _, momentum, _) -> if momentum > 0.0 then 2 else 1
                | Optimizer.Sgd (_, momentum, _) -> if momentum > 0.0 then 1 else 0
            let plan = Guard.run (fun () -> MemoryPlan.Estimate(graph, batchSize, optimizerSlots = slots))
            TrainingMemory(batchSize, Runs.optimizerName optimizer, plan.Activations, plan.Workspace, plan.Parameters, plan.OptimizerState)

    // ---- data ----

    /// <summary>The data set of the file's <c>train</c> section (<paramref name="nameOrPath"/> null), or the one named,
    /// as <c>dsl run</c> reads it (the built-in <c>shapes</c> set at the model's input size).</summary>
    member _.LoadData(nameOrPath: string | null) : DataSplit =
        let chosen =
            match nameOrPath with
            | null ->
                match graph.Training.Data with
                | Some d -> d
                | None -> raise (CnnDslException(sprintf "no data set: add 'data fashion-mnist' to the train section of %s, or give a data set's name or folder" name))
            | n -> n
        Guard.run (fun () -> DataSplit.Of(Runs.loadData chosen graph))

    /// <summary>The data set of the file's <c>train</c> section.</summary>
    member this.LoadData() : DataSplit = this.LoadData(null)

    // ---- training ----

    /// <summary>
    /// Trains the model as <c>dsl run</c> does: <paramref name="options"/> over the file's <c>train</c>
    /// section; <c>last.ckpt</c> after every epoch and <c>best.ckpt</c> when the validation (else training)
    /// accuracy improves, in <see cref="P:CnnDsl.TrainingOptions.OutputFolder"/>; then the test set's loss,
    /// accuracy and confusion matrix. <paramref name="progress"/> hears of every batch (or every
    /// <see cref="P:CnnDsl.TrainingOptions.ProgressInterval"/>) and <paramref name="epochCompleted"/> of every
    /// epoch, both called on the training thread (a <see cref="T:System.Progress`1"/> posts to its
    /// synchronization context). Cancelling <paramref name="cancellationToken"/> stops at the end of the
    /// current batch and saves <c>last.ckpt</c>, which <see cref="P:CnnDsl.TrainingOptions.Resume"/> continues
    /// exactly; the result's <see cref="P:CnnDsl.TrainingResult.Status"/> is then <c>Cancelled</c> (no exception).
    /// A diverged loss ends the run with status <c>Diverged</c>. Bad settings, data or checkpoints throw
    /// <see cref="T:CnnDsl.CnnDslException"/>s before anything is trained.
    /// </summary>
    member _.Train(options: TrainingOptions | null, progress: IProgress<TrainingProgress> | null, epochCompleted: IProgress<EpochResult> | null,
                   cancellationToken: CancellationToken) : TrainingResult =
        let options = match options with null -> TrainingOptions() | o -> o
        Guard.run (fun () -> Runs.run Runs.Hooks.None name (match file with null -> name | f -> f) text graph options progress epochCompleted cancellationToken)

    /// <summary>Trains with these options, without progress reports and without cancellation.</summary>
    member this.Train(options: TrainingOptions | null) : TrainingResult = this.Train(options, null, null, CancellationToken.None)

    /// <summary>Trains with the file's settings.</summary>
    member this.Train() : TrainingResult = this.Train(null, null, null, CancellationToken.None)

    /// <summary>As <see cref="M:CnnDsl.Model.Train(CnnDsl.TrainingOptions,System.IProgress{CnnDsl.TrainingProgress},System.IProgress{CnnDsl.EpochResult},System.Threading.CancellationToken)"/>,
    /// on a thread-pool thread.</summary>
    member this.TrainAsync(options: TrainingOptions | null, progress: IProgress<TrainingProgress> | null, epochCompleted: IProgress<EpochResult> | null,
                           cancellationToken: CancellationToken) : Task<TrainingResult> =
        Task.Run(fun () -> this.Train(options, progress, epochCompleted, cancellationToken))

    /// <summary>Trains on a thread-pool thread with these options, cancellable.</summary>
    member this.TrainAsync(options: TrainingOptions | null, cancellationToken: CancellationToken) : Task<TrainingResult> =
        this.TrainAsync(options, null, null, cancellationToken)

    // ---- evaluation ----

    /// <summary>A checkpoint's loss, accuracy and confusion matrix on a data set (<c>dsl eval</c>), at the
    /// file's batch size (else 32).</summary>
    member _.Evaluate(checkpointPath: string, data: Dataset) : Evaluation =
        ArgumentNullException.ThrowIfNull checkpointPath
        ArgumentNullException.ThrowIfNull data
        Guard.run (fun () -> Runs.evaluate Runs.apiSpelling name text graph checkpointPath data.Inner (Nullable()))

    /// <summary>As <see cref="M:CnnDsl.Model.Evaluate(System.String,CnnDsl.Dataset)"/> at this batch size.</summary>
    member _.Evaluate(checkpointPath: string, data: Dataset, batchSize: int) : Evaluation =
        ArgumentNullException.ThrowIfNull checkpointPath
        ArgumentNullException.ThrowIfNull data
        if batchSize < 1 then raise (ArgumentOutOfRangeException(nameof batchSize, "the batch size must be at least 1"))
        Guard.run (fun () -> Runs.evaluate Runs.apiSpelling name text graph checkpointPath data.Inner (Nullable batchSize))

    /// <summary>A checkpoint on the test set of the file's data set (<c>dsl eval FILE --weights CKPT</c>).</summary>
    member this.Evaluate(checkpointPath: string) : Evaluation =
        let split = this.LoadData()
        if split.Test.Count = 0 then raise (DataException(split.Test.Name, "has no test examples, so there is nothing to evaluate; give a data set with a test part", null))
        this.Evaluate(checkpointPath, split.Test)

    // ---- prediction ----

    /// <summary>A predictor with the weights of a checkpoint (see <see cref="T:CnnDsl.Predictor"/>).</summary>
    member this.CreatePredictor(checkpointPath: string) : Predictor = new Predictor(this, checkpointPath)

    // ---- export ----

    /// <summary>A network holding the weights of the checkpoint (or the initial ones): an any-size
    /// model at the first size it accepts; its weights do not depend on the size.</summary>
    member private _.ExportNetwork(checkpoint: string | null, pytorch: bool) =
        match Runs.concreteGraph text graph with
        | None -> raise (ExportException("export builds the network at a size from 16 to 256, and the model accepts none of them", null))
        | Some concrete ->
        let net = Network<float32>(concrete, 1, 0)
        match checkpoint with
        | null -> ()
        | w when Runs.isDynamic graph ->
            // The checkpoint was trained at its data's size; the architecture hash leaves sizes out, so
            // another model's checkpoint is refused here as predict and eval refuse it (LoadTensors
            // took any whose tensor names and lengths matched); tensors are matched by name and length.
            let struct (_, tensors) = CnnDsl.Runtime.Training.Checkpoint.Load(w, graph)
            let named (p: Parameter<float32>) = struct (CnnDsl.Runtime.Training.Checkpoint.EvaluationName(tensors, p.Name), p.Value)
            CnnDsl.Runtime.Training.Checkpoint.Restore(w, tensors, net.Weights |> Seq.map named)
        | w when pytorch ->
            match Export.PyTorchExport.FirstDifference(CnnDsl.Runtime.Training.Checkpoint.LoadTensors w, net) with
            | null -> CnnDsl.Runtime.Training.Checkpoint.LoadWeights(w, graph, net.Weights)
            | difference -> raise (CnnDsl.Runtime.Training.CheckpointError(w, difference + "; it was saved from another model"))
        | w -> CnnDsl.Runtime.Training.Checkpoint.LoadWeights(w, graph, net.Weights)
        net

    /// <summary>The model as ONNX bytes (opset 13; NHWC input and output, NCHW inside; a <c>?x?</c> input
    /// becomes symbolic dimensions), with a checkpoint's weights, or the initial (random) ones when
    /// <paramref name="checkpointPath"/> is null.</summary>
    member this.ToOnnx(checkpointPath: string | null) : byte[] =
        Guard.run (fun () -> Export.OnnxExport.Export(graph, this.ExportNetwork(checkpointPath, false)))

    /// <summary>Writes the model as an ONNX file (<c>dsl export</c>); see <see cref="M:CnnDsl.Model.ToOnnx(System.String)"/>.
    /// The file is replaced atomically.</summary>
    member this.ExportOnnx(outputPath: string, checkpointPath: string | null) : unit =
        ArgumentNullException.ThrowIfNull outputPath
        if String.IsNullOrWhiteSpace outputPath then raise (CnnDslException(sprintf "the file name is empty; give one, such as %s.onnx" name))
        if Directory.Exists outputPath then raise (CnnDslException(sprintf "%s: that is a folder; give a file name, such as %s" outputPath (Path.Combine(outputPath, name + ".onnx"))))
        let bytes = this.ToOnnx checkpointPath
        Guard.run (fun () -> CnnDsl.Runtime.Training.AtomicFile.WriteAllBytes(outputPath, bytes))

    /// <summary>Writes the model as a PyTorch project into a folder (<c>dsl export --format pytorch</c>):
    /// model.py, train.py, dsl_torch.py, README.md, and weights.ckpt with a checkpoint. Returns the files written.</summary>
    member this.ExportPyTorch(outputFolder: string, checkpointPath: string | null) : IReadOnlyList<string> =
        ArgumentNullException.ThrowIfNull outputFolder
        if String.IsNullOrWhiteSpace outputFolder then raise (CnnDslException(sprintf "the folder name is empty; give one, such as %s-pt" name))
        if File.Exists outputFolder then raise (CnnDslException(sprintf "%s: that is a file, not a folder; give a folder, such as %s-pt" outputFolder name))
        Guard.run (fun () ->
            let net = this.ExportNetwork(checkpointPath, true)
            ReadOnlyCollection(Array.ofSeq (Export.PyTorchExport.Write(graph, name, net, not (isNull checkpointPath), outputFolder))) :> IReadOnlyList<string>)

    /// <summary>Writes the weights of a checkpoint alone (no optimizer state; a run's weight average when it
    /// kept one, as evaluation uses): a smaller checkpoint for <c>dsl eval</c>, <c>dsl predict</c>,
    /// <c>dsl show</c> and for starting new runs (<c>--weights</c>), which a resume does not continue.
    /// The file is replaced atomically.</summary>
    member _.ExportWeights(outputPath: string, checkpointPath: string) : unit =
        ArgumentNullException.ThrowIfNull outputPath
        ArgumentNullException.ThrowIfNull checkpointPath
        if String.IsNullOrWhiteSpace outputPath then raise (CnnDslException(sprintf "the file name is empty; give one, such as %s.ckpt" name))
        if Directory.Exists outputPath then raise (CnnDslException(sprintf "%s: that is a folder; give a file name, such as %s" outputPath (Path.Combine(outputPath, name + ".ckpt"))))
        Guard.run (fun () ->
            let concrete =
                match Runs.concreteGraph text graph with
                | Some g -> g
                | None -> raise (ExportException("the model accepts no input size from 16 to 256 to list its weights at", null))
            let struct (position, tensors) = CnnDsl.Runtime.Training.Checkpoint.Load(checkpointPath, graph)
            let names = Network<float32>(concrete, 1, 0).Weights |> Seq.map (fun p -> p.Name) |> List.ofSeq
            let value (n: string) =
                match tensors.TryGetValue(CnnDsl.Runtime.Training.Checkpoint.EvaluationName(tensors, n)) with
                | true, v -> v
                | _ -> raise (CnnDsl.Runtime.Training.CheckpointError(checkpointPath, sprintf "has no tensor '%s'" n))
            let weights = [ for n in names -> struct (n, value n) ]
            CnnDsl.Runtime.Training.Checkpoint.Save(outputPath, graph, position, weights))

    /// <summary>The model's name and input and output shapes.</summary>
    override _.ToString() = sprintf "%s: %O -> %O" name graph.Input.OutputShape graph.Output.OutputShape

/// <summary>The result of checking a model without exceptions: the diagnostics, and the model when it has no error.</summary>
and [<Sealed>] ModelCheckResult internal (model: Model | null, diagnostics: IReadOnlyList<Diagnostic>) =
    /// <summary>True when the model has no error (it may have warnings).</summary>
    member _.Succeeded = not (isNull model)
    /// <summary>The checked model; null when it has errors.</summary>
    member _.Model : Model | null = model
    /// <summary>Every error and warning, sorted by position.</summary>
    member _.Diagnostics = diagnostics
    /// <summary>The diagnostics' text as <c>dsl check</c> prints it (empty when there are none).</summary>
    override _.ToString() = String.Join("\n", diagnostics |> Seq.map string)

/// <summary>
/// Runs a trained model on inputs: arrays or spans of floats (HWC, values as training scales them,
/// [0, 1] for images), or image files or their bytes (PNG, JPEG, BMP, GIF, TGA, read as <c>dsl predict</c>
/// reads them), one at a time or in batches, returning class probabilities.
/// <para>Thread-safe: every call takes a network from a pool (one per input size and batch capacity),
/// or builds one when all are busy, and gives it back when done; concurrent calls never share a network,
/// and at most as many networks are built as calls run at once. An any-size model (<c>input ?x?x1</c>)
/// gets networks per input size, as <c>dsl predict</c> does.</para>
/// </summary>
and [<Sealed>] Predictor(model: Model, checkpointPath: string, maxBatchSize: int) =
    do
        ArgumentNullException.ThrowIfNull model
        ArgumentNullException.ThrowIfNull checkpointPath
        if maxBatchSize < 1 then raise (ArgumentOutOfRangeException(nameof maxBatchSize, "the batch size must be at least 1"))
    let graph, text = model.Graph, model.Text
    // Read and checked once (the architecture hash does not depend on the input's size).
    let tensors = Guard.run (fun () -> let struct (_, t) = CnnDsl.Runtime.Training.Checkpoint.Load(checkpointPath, graph) in t)
    let classNames =
        // one output (a sigmoid unit) tells two classes apart: 0 and 1
        let outputs = match graph.Output.OutputShape with s -> Cost.channels s |> max 2
        match CnnDsl.Runtime.Data.DataSets.ClassNamesOf(Option.toObj graph.Training.Data) with
        | null -> Array.init outputs string
        | names -> Array.copy names
    let graphs = ConcurrentDictionary<struct (int * int), CnnDsl.Graph.Graph>()
    let pools = ConcurrentDictionary<struct (int * int * int), ConcurrentBag<Network<float32>>>()
    let wanted = match graph.Input.OutputShape with Image (_, _, c) -> Nullable c | Vector _ -> Nullable()
    let inputChannels = Cost.channels graph.Input.OutputShape
    let outputSize =
        match Runs.concreteGraph text graph with
        | Some g -> Cost.elements g.Output.OutputShape |> Option.defaultValue 0L |> int
        | None -> Cost.channels graph.Output.OutputShape

    /// The graph at an input's size, checked (cached per size).
    let graphAt (source: string) (h: int) (w: int) (c: int) =
        match graphs.TryGetValue(struct (h, w)) with
        | true, g -> Runs.checkInput g source h w c; g
        | _ ->
            let g = Runs.sizedFor text graph source h w c
            graphs[struct (h, w)] <- g
            g

    let rent (g: CnnDsl.Graph.Graph) (h: int) (w: int) (capacity: int) =
        let bag = pools.GetOrAdd(struct (h, w, capacity), fun _ -> ConcurrentBag())
        match bag.TryTake() with
        | true, net -> bag, net
        | _ ->
            // an inference network: no gradients, batchnorm folded into its convolution
            let net = Network<float32>(g, capacity, 0, inference = true)
            // the run's weight average where it kept one, as evaluation uses it
            let named (p: Parameter<float32>) = struct (CnnDsl.Runtime.Training.Checkpoint.EvaluationName(tensors, p.Name), p.Value)
            CnnDsl.Runtime.Training.Checkpoint.Restore(checkpointPath, tensors, net.Weights |> Seq.map named)
            bag, net

    let checkFinite (source: string) (values: ReadOnlySpan<float32>) (w: int) (c: int) =
        let mutable i = 0
        while i < values.Length do
            let v = values[i]
            if not (Single.IsFinite v) then
                let pixel = i / c
                let where = sprintf "row %d, column %d%s" (pixel / w + 1) (pixel % w + 1) (if c > 1 then sprintf ", channel %d" (i % c + 1) else "")
                raise (DataException(source, sprintf "holds %s at %s: inputs must be finite numbers between -3.4e38 and 3.4e38; correct that value" (v.ToString(Globalization.CultureInfo.InvariantCulture)) where, null))
            i <- i + 1

    /// Runs `count` inputs of h x w x c, laid one after another in `inputs`, in batches of at most MaxBatchSize.
    let run (source: string) (inputs: ReadOnlySpan<float32>) (count: int) (h: int) (w: int) (c: int) : Prediction[] =
        let g = Guard.run (fun () -> graphAt source h w c)
        let size = h * w * c
        if inputs.Length <> count * size then
            raise (DataException(source, sprintf "%d values, but %d inputs of %dx%dx%d need %d" inputs.Length count h w c (count * size), null))
        checkFinite source inputs w c
        let capacity = min count maxBatchSize
        let results = Array.zeroCreate<Prediction> count
        if count > 0 then
            let bag, net = Guard.run (fun () -> rent g h w capacity)
            try
                let per = net.OutputSize
                let mutable start = 0
                while start < count do
                    let n = min capacity (count - start)
                    inputs.Slice(start * size, n * size).CopyTo(net.Input)
                    net.Rows <- n
                    net.Forward(false)
                    let output = net.Output
                    for i in 0 .. n - 1 do
                        results[start + i] <- Prediction(output.Slice(i * per, per).ToArray(), classNames)
                    start <- start + n
            finally bag.Add net
        results

    let fixedSize (what: string) =
        match graph.Input.OutputShape with
        | Image (Dim.Known h, Dim.Known w, c) -> h, w, c
        | Vector n -> 1, 1, n
        | _ -> raise (CnnDslException(sprintf "%s takes any input size (%O); give the input's height and width: Predict(values, height, width)" model.Name graph.Input.OutputShape))

    let readImage (source: string) (read: unit -> CnnDsl.Runtime.Data.InputImage) =
        let image = Guard.run (fun () -> let image = read () in Runs.checkFinite source image; image)
        let values = image.Values |> Array.map float32
        values, image.Height, image.Width, image.Channels

    /// <summary>A predictor of a model with a checkpoint's weights, running up to 32 inputs at once.
    /// Throws a <see cref="T:CnnDsl.CheckpointException"/> when the checkpoint is missing, damaged, or of another model.</summary>
    new(model: Model, checkpointPath: string) = new Predictor(model, checkpointPath, 32)

    /// <summary>A predictor of a model file with a checkpoint's weights.</summary>
    static member Load(modelPath: string, checkpointPath: string) = new Predictor(Model.Load modelPath, checkpointPath)

    /// <summary>The model.</summary>
    member _.Model = model
    /// <summary>The checkpoint the weights come from.</summary>
    member _.CheckpointPath = checkpointPath
    /// <summary>The most inputs run in one pass; larger batches are run in parts.</summary>
    member _.MaxBatchSize = maxBatchSize
    /// <summary>The class names: the data set's when the model's <c>train</c> section names a known one, else the output numbers.</summary>
    member _.ClassNames : IReadOnlyList<string> = ReadOnlyCollection(Array.copy classNames)
    /// <summary>The shape of one input (HWC); its height and width are null for an any-size model.</summary>
    member _.InputShape = model.InputShape
    /// <summary>Outputs per input (classes).</summary>
    member _.OutputSize = outputSize

    /// <summary>The probabilities for one input of the model's input shape (HWC, height x width x channels values).</summary>
    member _.Predict(input: ReadOnlySpan<float32>) : Prediction =
        let h, w, c = fixedSize "Predict"
        (run "input" input 1 h w c)[0]

    /// <summary>The probabilities for one input of the model's input shape.</summary>
    member this.Predict(input: float32[]) : Prediction =
        ArgumentNullException.ThrowIfNull input
        this.Predict(ReadOnlySpan input)

    /// <summary>The probabilities for one input of this height and width (and the model's channels): for any-size models.</summary>
    member _.Predict(input: ReadOnlySpan<float32>, height: int, width: int) : Prediction =
        (run "input" input 1 height width inputChannels)[0]

    /// <summary>The probabilities for <paramref name="count"/> inputs of the model's input shape, laid one after another.</summary>
    member _.PredictBatch(inputs: ReadOnlySpan<float32>, count: int) : IReadOnlyList<Prediction> =
        if count < 0 then raise (ArgumentOutOfRangeException(nameof count))
        let h, w, c = fixedSize "PredictBatch"
        ReadOnlyCollection(run "inputs" inputs count h w c)

    /// <summary>The probabilities for <paramref name="count"/> inputs of <paramref name="height"/> x
    /// <paramref name="width"/> (an any-size model, <c>input ?x?xC</c>, or a fixed one at its own size),
    /// laid one after another, run in batches of at most <see cref="P:CnnDsl.Predictor.MaxBatchSize"/>.</summary>
    member _.PredictBatch(inputs: ReadOnlySpan<float32>, count: int, height: int, width: int) : IReadOnlyList<Prediction> =
        if count < 0 then raise (ArgumentOutOfRangeException(nameof count))
        ReadOnlyCollection(run "inputs" inputs count height width inputChannels)

    /// <summary>The probabilities for each input of the model's input shape.</summary>
    member _.PredictBatch(inputs: IReadOnlyList<float32[]>) : IReadOnlyList<Prediction> =
        ArgumentNullException.ThrowIfNull inputs
        let h, w, c = fixedSize "PredictBatch"
        let size = h * w * c
        let all = Array.zeroCreate<float32> (inputs.Count * size)
        for i in 0 .. inputs.Count - 1 do
            let x = inputs[i]
            if isNull (box x) || x.Length <> size then
                raise (DataException(sprintf "input %d" i, sprintf "%d values, but the model's input %O needs %d" (if isNull (box x) then 0 else x.Length) graph.Input.OutputShape size, null))
            x.CopyTo(all, i * size)
        ReadOnlyCollection(run "inputs" (ReadOnlySpan all) inputs.Count h w c)

    /// <summary>The probabilities for an image file (PNG, JPEG, BMP, GIF, TGA: scaled to [0, 1], converted to the
    /// model's channels) or a text matrix, as <c>dsl predict</c> reads it. It must have the model's input size
    /// unless the model takes any size.</summary>
    member _.PredictFile(path: string) : Prediction =
        ArgumentNullException.ThrowIfNull path
        let values, h, w, c = readImage path (fun () -> CnnDsl.Runtime.Data.InputFiles.Read(path, wanted))
        (run path (ReadOnlySpan values) 1 h w c)[0]

    /// <summary>The probabilities for an image given as the bytes of a PNG, JPEG, BMP, GIF or TGA file.</summary>
    member _.PredictImage(imageBytes: byte[]) : Prediction =
        ArgumentNullException.ThrowIfNull imageBytes
        let values, h, w, c = readImage "image" (fun () -> CnnDsl.Runtime.Data.InputFiles.ReadImage("image", imageBytes, (if wanted.HasValue then wanted.Value else 0)))
        (run "image" (ReadOnlySpan values) 1 h w c)[0]

    /// <summary>The probabilities for several files, in order; images of one size run in batches.</summary>
    member _.PredictFiles(paths: IReadOnlyList<string>) : IReadOnlyList<Prediction> =
        ArgumentNullException.ThrowIfNull paths
        let read = paths |> Seq.map (fun p -> p, readImage p (fun () -> CnnDsl.Runtime.Data.InputFiles.Read(p, wanted))) |> Array.ofSeq
        let results = Array.zeroCreate<Prediction> read.Length
        read
        |> Array.mapi (fun i (p, (v, h, w, c)) -> i, p, v, h, w, c)
        |> Array.groupBy (fun (_, _, _, h, w, c) -> h, w, c)
        |> Array.iter (fun ((h, w, c), group) ->
            let all = group |> Array.collect (fun (_, _, v, _, _, _) -> v)
            let source = match group with [| (_, p, _, _, _, _) |] -> p | _ -> sprintf "%s (and %d more)" (let (_, p, _, _, _, _) = group[0] in p) (group.Length - 1)
            let predictions = run source (ReadOnlySpan all) group.Length h w c
            group |> Array.iteri (fun k (i, _, _, _, _, _) -> results[i] <- predictions[k]))
        ReadOnlyCollection results

    /// <summary>The loss, accuracy and confusion matrix of these weights on a data set (as <see cref="M:CnnDsl.Model.Evaluate(System.String,CnnDsl.Dataset)"/>).</summary>
    member _.Evaluate(data: Dataset) : Evaluation = model.Evaluate(checkpointPath, data)
