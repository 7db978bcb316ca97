/// `dsl export`: the model as ONNX, or as a PyTorch project.
module CnnDsl.Cli.ExportCommand

open System
open System.IO
open CnnDsl.Graph
open CnnDsl.Dsl
open CnnDsl.Runtime
open CnnDsl.Runtime.Data
open CnnDsl.Runtime.Training
open CnnDsl.Cli.Shell
open CnnDsl

/// `dsl export FILE [--weights W] -o OUT.onnx`: the model as ONNX (opset 13), NHWC in and out.
/// A dynamic input (`?x?xC`) becomes symbolic dimensions; its weights do not depend on the size,
/// so they are held by a network built at the first size the model accepts.
/// With format "pytorch", `-o DIR` receives a PyTorch project (src/Runtime/Export/PyTorch.cs).
let exportAs (console: Console) (file: string) (weights: string option) (output: string) (format: string) : int =
    let pytorch = format = "pytorch"
    let problem =
        if format = "weights" && weights.IsNone then
            Some "--format weights writes a checkpoint's weights alone: give the checkpoint with --weights FILE"
        elif format = "weights" then fileProblem "-o" output (Path.GetFileNameWithoutExtension file + ".ckpt")
        elif pytorch then folderProblem "-o" output (Path.GetFileNameWithoutExtension file + "-pt")
        else fileProblem "-o" output (Path.GetFileNameWithoutExtension file + ".onnx")
    match problem with
    | Some problem -> console.Err.WriteLine("dsl: " + problem); CannotRun
    | None ->
    withModel console file (fun text graph ->
    match CnnDsl.Runs.concreteGraph text graph with
    | None ->
        console.Err.WriteLine "dsl: export builds the network at a size from 16 to 256, and the model accepts none of them"
        CannotRun
    | Some _ ->
    guarded console (fun () ->
        let name = Path.GetFileNameWithoutExtension file
        let model = Model.OfGraph(name, text, file, graph)
        let learned = graph.Nodes |> List.exists (fun n -> fst (Cost.parameters n) > 0L && n.Given.IsNone)
        if format = "weights" then
            model.ExportWeights(output, weights.Value)
            let size = Summary.bytesText (FileInfo output).Length
            console.Out.WriteLine(sprintf "wrote %s (%s: the weights of %s, without optimizer state)" output size weights.Value)
            Clean
        else
        if weights.IsNone && learned then console.Err.WriteLine "dsl: no --weights given: exporting the initial (random) weights"
        try
            if pytorch then
                model.ExportPyTorch(output, Option.toObj weights) |> ignore
                let files = "model.py, train.py, dsl_torch.py, README.md" + (if weights.IsSome then ", weights.ckpt" else "")
                console.Out.WriteLine(sprintf "wrote %s (%s); see %s" output files (Path.Combine(output, "README.md")))
            else
                model.ExportOnnx(output, Option.toObj weights)
                let size = Summary.bytesText (FileInfo output).Length
                console.Out.WriteLine(sprintf "wrote %s (%s, ONNX opset 13, input NHWC %O)" output size graph.Input.OutputShape)
            Clean
        with :? ExportException as e ->
            console.Err.WriteLine("dsl: cannot export: " + e.Message)
            CannotRun))

let export (console: Console) (file: string) (weights: string option) (output: string) : int =
    exportAs console file weights output "onnx"
