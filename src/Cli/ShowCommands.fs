/// `dsl show filters` and `dsl show activations`: pictures of what a model learned.
module CnnDsl.Cli.ShowCommands

open System
open System.IO
open CnnDsl.Graph
open CnnDsl.Dsl
open CnnDsl.Runtime
open CnnDsl.Runtime.Data
open CnnDsl.Runtime.Training
open CnnDsl.Cli.Shell

/// Loads a checkpoint into a network, or says that the weights are the initial ones.
let internal loadOrWarn (console: Console) (graph: Graph) (net: Network<float32>) (weights: string option) =
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
            match CnnDsl.Runs.concreteGraph text graph with
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
        CnnDsl.Runs.checkFinite (defaultArg image file) input
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
