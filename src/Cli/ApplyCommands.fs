/// `dsl apply` and `dsl predict`: a model on one input, or on images.
module CnnDsl.Cli.ApplyCommands

open System
open System.IO
open CnnDsl.Graph
open CnnDsl.Dsl
open CnnDsl.Runtime
open CnnDsl.Runtime.Data
open CnnDsl.Runtime.Training
open CnnDsl.Cli.Shell
open CnnDsl.Cli.Render
open CnnDsl

/// `dsl apply FILE INPUT`: one forward pass, printing every layer's output.
let apply (console: Console) (file: string) (input: string) (weights: string option) (seed: int) (png: string option) : int =
    match png |> Option.bind (fun folder -> folderProblem "--png" folder "maps") with
    | Some problem -> console.Err.WriteLine("dsl: " + problem); CannotRun
    | None ->
    withModel console file (fun text graph ->
    guarded console (fun () ->
        let wanted = match graph.Input.OutputShape with Image (_, _, c) -> Some c | Vector _ -> None
        let image = InputFiles.Read(input, Option.toNullable wanted)
        CnnDsl.Runs.checkFinite input image
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
let internal singleOutputText (graph: Graph) (value: float32) =
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
        // The API's predictor: an any-size (?x?) model gets a network at each image's size.
        let predictor = Predictor(Model.OfGraph(Path.GetFileNameWithoutExtension file, text, file, graph), weights, 1)
        for image in images do
            let prediction = predictor.PredictFile image
            if prediction.Probabilities.Count = 1 then
                console.Out.WriteLine(sprintf "%s: %s" image (singleOutputText graph prediction.Probabilities[0]))
            else
            let ranked = prediction.Top top |> Seq.map (fun p -> sprintf "%s %.4f" p.Name p.Probability)
            console.Out.WriteLine(sprintf "%s: %s" image (String.Join(", ", ranked)))
        Clean))
