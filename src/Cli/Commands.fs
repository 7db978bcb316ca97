/// The `dsl` commands as plain functions over text writers, so that tests can run them
/// in-process and pin their exact output.
module CnnDsl.Cli.Commands

open System
open System.IO
open CnnDsl.Dsl

/// Exit codes: 0 clean, 1 the model has errors, 2 the command could not run (usage, files).
let Clean, ModelErrors, CannotRun = 0, 1, 2

type Console = { Out: TextWriter; Err: TextWriter }

let private readModel (console: Console) (path: string) : string option =
    try
        if Directory.Exists path then
            console.Err.WriteLine(sprintf "dsl: '%s' is a folder; give a model file such as models/lenet.cnn" path)
            None
        elif not (File.Exists path) then
            console.Err.WriteLine(sprintf "dsl: cannot read '%s': no such file" path)
            None
        else Some (File.ReadAllText path)
    with
    | :? IOException | :? UnauthorizedAccessException as e ->
        console.Err.WriteLine(sprintf "dsl: cannot read '%s': %s" path e.Message)
        None

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
        let plan = CnnDsl.Runtime.MemoryPlan.Estimate(graph, batch)
        sprintf "Training memory at batch %d (float32, Adam): %s = activations and gradients %s + layer buffers %s + parameters and gradients %s + optimizer state %s\n"
            batch (Summary.bytesText plan.Total) (Summary.bytesText plan.Activations) (Summary.bytesText plan.Workspace)
            (Summary.bytesText plan.Parameters) (Summary.bytesText plan.OptimizerState)

/// `dsl summary FILE [--batch N]`: the Keras-like table; diagnostics (to stderr) when the model has errors.
let summary (console: Console) (file: string) (batch: int option) : int =
    match readModel console file with
    | None -> CannotRun
    | Some text ->
        match Frontend.compile text with
        | Ok (graph, warnings) ->
            console.Err.Write(Diagnostic.renderAll file text warnings)
            console.Out.Write(Summary.render (Path.GetFileNameWithoutExtension file) graph)
            batch |> Option.iter (fun b -> console.Out.Write(memoryText graph b))
            Clean
        | Error diagnostics ->
            console.Err.Write(Diagnostic.renderAll file text diagnostics)
            ModelErrors
