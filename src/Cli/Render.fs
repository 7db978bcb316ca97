/// Console rendering of results: Keras-style epoch lines, tables, matrices, JSON numbers.
/// The work is elsewhere; these functions only turn values into text.
module CnnDsl.Cli.Render

open System
open System.IO
open CnnDsl.Graph
open CnnDsl.Dsl
open CnnDsl.Runtime
open CnnDsl.Runtime.Data
open CnnDsl.Runtime.Training
open CnnDsl.Cli.Shell

let internal invariant (v: float) = v.ToString("0.####", Globalization.CultureInfo.InvariantCulture)

/// A JSON number: NaN and infinities are not JSON, so they are written as null.
let internal jsonNumber (v: float) = if Double.IsFinite v then invariant v else "null"

/// {"name":value,...} from names and values already written as JSON.
let jsonObject (fields: (string * string) list) =
    "{" + String.Join(",", fields |> List.map (fun (name, value) -> sprintf "\"%s\":%s" name value)) + "}"

/// Console output: a live line while a terminal watches, Keras-style epoch lines, or JSON.
type internal ConsoleReport(console: Console, quiet: bool, json: bool, live: bool, batchSize: int) =
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
                    jsonObject
                        [ "epoch", string r.Epoch; "seconds", jsonNumber r.Seconds; "loss", jsonNumber r.Loss
                          "accuracy", jsonNumber r.Accuracy; "val_loss", v r.ValidationLoss
                          "val_accuracy", v r.ValidationAccuracy; "images_per_second", jsonNumber r.ImagesPerSecond ])
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

/// "Test: loss L - accuracy A (N examples)".
let testLine (e: CnnDsl.Evaluation) =
    sprintf "Test: loss %.4f - accuracy %.4f (%s examples)" e.Loss e.Accuracy (Messages.thousands (int64 e.Count))

/// Per-class accuracy and the confusion matrix as text.
let internal confusionText (e: CnnDsl.Evaluation) =
    if not e.HasConfusionMatrix then
        sprintf "Per class accuracy and the confusion matrix: not kept for more than %s classes\n"
            (Messages.thousands (int64 Trainer.MaxConfusionClasses))
    else
    let names = Array.ofSeq e.ClassNames
    let n = names.Length
    let columns = if e.HasOtherColumn then n + 1 else n   // a column for outputs beyond the classes
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
        for p in 0 .. columns - 1 do sb.Append(sprintf "%6d" (e.Confusion(c, p))) |> ignore
        sb.AppendLine() |> ignore
    sb.ToString()

/// The confusion matrix as a heat map, titled with the model's name and test accuracy.
let writeConfusion (path: string) (model: string) (e: CnnDsl.Evaluation) =
    let matrix = array2D (e.ConfusionMatrix())
    Pictures.write path (Pictures.confusion (sprintf "%s: test accuracy %.4f" model e.Accuracy) matrix (Array.ofSeq e.ClassNames))

/// A memory plan's parts, as "activations and gradients X, layer buffers Y, ...".
let planParts (plan: MemoryPlan) =
    sprintf "activations and gradients %s, layer buffers %s, parameters and gradients %s, optimizer state %s"
        (Summary.bytesText plan.Activations) (Summary.bytesText plan.Workspace)
        (Summary.bytesText plan.Parameters) (Summary.bytesText plan.OptimizerState)

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
        let perParameter = sprintf "%d value%s per parameter" slots (if slots = 1 then "" else "s")
        sprintf "Training memory at batch %d (float32, %s, %s: %s): %s = %s\n"
            batch name given perParameter (Summary.bytesText plan.Total) ((planParts plan).Replace(", ", " + "))

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
