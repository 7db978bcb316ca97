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
