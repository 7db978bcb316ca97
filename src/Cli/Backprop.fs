/// `dsl backprop FILE INPUT --target T`: one forward and one backward pass on one input,
/// printing what the course's backpropagation slides print: every layer's output, the loss,
/// and for every layer dL/d(output), dL/d(weights), dL/d(bias), and dL/d(input).
module CnnDsl.Cli.Backprop

open System
open System.IO
open CnnDsl.Graph
open CnnDsl.Dsl
open CnnDsl.Runtime
open CnnDsl.Runtime.Data
open CnnDsl.Runtime.Training
open CnnDsl.Cli.Shell
open CnnDsl.Cli.Render

/// The loss named on the command line, else the file's, else Keras-like cross-entropy.
let lossOf (graph: Graph) (name: string option) : Result<Loss, string> =
    match name with
    | None -> Ok (defaultArg graph.Training.Loss Loss.CrossEntropy)
    | Some "mse" -> Ok Loss.MeanSquaredError
    | Some "mae" -> Ok Loss.MeanAbsoluteError
    | Some "crossentropy" -> Ok Loss.CrossEntropy
    | Some "binary_crossentropy" | Some "binarycrossentropy" -> Ok Loss.BinaryCrossEntropy
    | Some other -> Error (sprintf "--loss %s is not a loss; use mse, mae, crossentropy or binary_crossentropy" other)

/// A target: a file of numbers (as an input matrix) or the numbers themselves ("1 1 1 1").
let private readTarget (target: string) : double[] =
    if File.Exists target then (InputFiles.Read(target, Nullable())).Values
    else
        let cells = target.Split([| ' '; '\t'; ','; ';'; '['; ']' |], StringSplitOptions.RemoveEmptyEntries)
        let parse (c: string) =
            match Double.TryParse(c, Globalization.NumberStyles.Float, Globalization.CultureInfo.InvariantCulture) with
            | true, v when Double.IsFinite v -> v
            | _ -> raise (DataError("--target", sprintf "'%s' is neither a file nor a number; give the target values (\"1 1 1 1\") or a file of them" c))
        if cells.Length = 0 then raise (DataError("--target", "no values; give the target values (\"1 1 1 1\") or a file of them"))
        cells |> Array.map parse

/// A kernel's gradient as the file writes weights: one kh x kw matrix per filter and input
/// channel (conv, HWIO inside), or one row per unit (dense, [in, out] inside).
let private kernelText (node: Node) (shape: int[]) (g: double[]) =
    let sb = Text.StringBuilder()
    match shape with
    | [| kh; kw; cin; f |] ->
        for fi in 0 .. f - 1 do
            for ci in 0 .. cin - 1 do
                if f * cin > 1 then sb.AppendLine(sprintf "  filter %d, channel %d:" (fi + 1) (ci + 1)) |> ignore
                let m = Array.init (kh * kw) (fun i -> g[(i * cin + ci) * f + fi])
                sb.Append(matrixText (Image (Dim.Known kh, Dim.Known kw, 1)) m) |> ignore
    | [| n; u |] ->
        let m = Array.init (u * n) (fun i -> g[(i % n) * u + i / n])
        sb.Append(matrixText (Image (Dim.Known u, Dim.Known n, 1)) m) |> ignore
    | _ -> sb.Append(matrixText (Vector g.Length) g) |> ignore
    sb.ToString()

let private title (node: Node) =
    match node.Kind, node.Activation with
    | LayerKind.ActivationLayer, _ | _, Activation.Linear -> Summary.typeName node
    | _, a -> sprintf "%s, %s" (Summary.typeName node) (Summary.activationName a)

let backprop (console: Console) (file: string) (input: string) (target: string) (lossOption: string option) (weights: string option) (seed: int) : int =
    withModel console file (fun text graph ->
    match lossOf graph lossOption with
    | Error message -> console.Err.WriteLine("dsl: " + message); CannotRun
    | Ok loss ->
    match graph.Nodes |> List.tryFind (fun n -> match n.Kind with LayerKind.BatchNormalization _ -> true | _ -> false) with
    | Some bn ->
        console.Err.WriteLine(
            sprintf "dsl: backprop runs one example in inference mode (as the slides' layer(x)), %s"
                (sprintf "where %s (line %d) has no batch statistics to differentiate; " bn.Name bn.SourceLine
                 + "remove batchnorm, or use 'dsl gradcheck' for the whole model"))
        CannotRun
    | None ->
    guarded console (fun () ->
        let wanted = match graph.Input.OutputShape with Image (_, _, c) -> Some c | Vector _ -> None
        let image = InputFiles.Read(input, Option.toNullable wanted)
        // as apply and predict: a NaN would run through every layer and gradient
        CnnDsl.Runs.checkFinite input image
        let graph = sizedFor text graph input image
        let net = Network<double>(graph, 1, seed, inputGradient = true)
        weights |> Option.iter (fun w -> Checkpoint.LoadWeights(w, graph, net.Weights))
        // The target is checked before anything is printed.
        let values = readTarget target
        let outputs = net.OutputSize
        let outputShape = net.OutputLayer.Node.OutputShape
        let label =
            match loss with
            | Loss.CrossEntropy when values.Length = 1 && outputs > 1 ->
                let label = values[0]
                if label <> Math.Round label || label < 0.0 || label >= float outputs then
                    raise (DataError("--target", sprintf "%s is not a class of the model's %d outputs; give a class 0..%d, or %d values" (string label) outputs (outputs - 1) outputs))
                Some (int label)
            | _ when values.Length <> outputs ->
                raise (DataError("--target", sprintf "%d values, but the model's output %O has %d; give %d values%s" values.Length outputShape outputs outputs
                                                (if loss = Loss.CrossEntropy then " (one-hot) or one class number" else "")))
            | _ -> None
        image.Values.AsSpan().CopyTo(net.Input)
        net.Forward(false)
        let out = console.Out
        out.WriteLine "Forward pass (one example, float64):"
        for layer in net.Layers do
            let node = layer.Node
            out.WriteLine(sprintf "%s (%s): %O" node.Name (title node) node.OutputShape)
            out.Write(matrixText node.OutputShape layer.Output.Value)
        let lossValue =
            match label with
            | Some label -> Losses.CrossEntropy(net, ReadOnlySpan [| label |])
            | None -> Losses.Compute(loss, net, ReadOnlySpan values)
        out.WriteLine(sprintf "Loss (%s against the target): %s" (CnnDsl.Runs.lossText loss) (lossValue.ToString("G8", Globalization.CultureInfo.InvariantCulture)))
        // A layer's output gradient is complete just before its own backward pass, which may
        // turn it into the gradient before its activation: copy it then.
        let outputGradients = Array.zeroCreate<double[]> net.Layers.Count
        net.BackwardObserver <- Action<int, bool>(fun i after -> if not after then outputGradients[i] <- net.Layers[i].Output.Gradient.Clone() :?> double[])
        net.Backward()
        net.BackwardObserver <- null
        out.WriteLine "Backward pass:"
        let last = net.Layers.Count - 1
        for i in last .. -1 .. 1 do
            let layer = net.Layers[i]
            let node = layer.Node
            out.WriteLine(sprintf "%s (%s)" node.Name (title node))
            if i = last && layer.ActivationFusedIntoLoss then
                out.WriteLine(sprintf "  dL/d(output before %s), fused with the loss:" (Summary.activationName node.Activation))
            else out.WriteLine "  dL/d(output):"
            out.Write(matrixText node.OutputShape outputGradients[i])
            for p in layer.Parameters do
                let what = p.Name.Substring(p.Name.LastIndexOf('/') + 1)
                out.WriteLine(sprintf "  dL/d(%s):" what)
                out.Write(if what = "kernel" then kernelText node p.Shape p.Gradient else matrixText (Vector p.Gradient.Length) p.Gradient)
        let first = net.Layers[0]
        out.WriteLine(sprintf "%s: dL/d(input):" first.Node.Name)
        out.Write(matrixText first.Node.OutputShape (net.InputGradient.ToArray()))
        Clean))
