/// `dsl check`, `dsl summary`, `dsl explain` and `dsl gradcheck`: what can be said of a
/// model without data.
module CnnDsl.Cli.CheckCommands

open System
open System.IO
open CnnDsl.Graph
open CnnDsl.Dsl
open CnnDsl.Runtime
open CnnDsl.Runtime.Data
open CnnDsl.Runtime.Training
open CnnDsl.Cli.Shell
open CnnDsl.Cli.Render

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

/// `dsl gradcheck FILE`: the test suite's gradient check on the user's model, in double
/// precision at a small input size, with a verdict per layer.
let gradcheck (console: Console) (file: string) (weights: string option) (breakLayer: string option) (batch: int) : int =
    if batch < 1 || batch > 64 then
        console.Err.WriteLine(sprintf "dsl: --batch %d: the gradient check takes 1 to 64 examples per batch" batch)
        CannotRun
    else
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
        let net = Network<double>(small, batch, 1, true)
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
        console.Out.WriteLine(sprintf "Gradient check of %s at input %O, batch %d, float64, central differences (eps %g), tolerance %g:" file small.Input.OutputShape batch GradientCheck.Epsilon GradientCheck.Tolerance)
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
            let normalisesBatch = small.Nodes |> List.exists (fun n -> match n.Kind with LayerKind.BatchNormalization _ -> true | _ -> false)
            if normalisesBatch && batch < 8 && breakLayer.IsNone then
                console.Out.WriteLine(sprintf "  hint: batchnorm normalises over the batch; over %d examples of small maps" batch)
                console.Out.WriteLine "  its gradient is ill-conditioned and finite differences drift: try --batch 8"
            ModelErrors))
