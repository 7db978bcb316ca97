/// `dsl summary`: a table like Keras's model.summary(), plus each layer's multiply-adds
/// and activation memory per image.
module CnnDsl.Dsl.Summary

open System
open System.Text
open CnnDsl.Graph

let typeName (node: Node) =
    match node.Kind with
    | LayerKind.Input -> "InputLayer"
    | LayerKind.Conv c when c.Groups > 1 && c.Groups = Cost.channels (List.head node.InputShapes) -> "DepthwiseConv2D"
    | LayerKind.Conv _ -> "Conv2D"
    | LayerKind.FixedConv _ -> "FixedConv2D"
    | LayerKind.Pool p ->
        match p.Kind with
        | PoolKind.Max -> "MaxPooling2D"
        | PoolKind.Average -> "AveragePooling2D"
        | PoolKind.Min -> "MinPooling2D"
    | LayerKind.GlobalPool PoolKind.Max -> "GlobalMaxPooling2D"
    | LayerKind.GlobalPool PoolKind.Average -> "GlobalAveragePooling2D"
    | LayerKind.GlobalPool PoolKind.Min -> "GlobalMinPooling2D"
    | LayerKind.Dense _ -> "Dense"
    | LayerKind.Flatten -> "Flatten"
    | LayerKind.Reshape -> "Reshape"
    | LayerKind.Dropout _ -> "Dropout"
    | LayerKind.BatchNormalization _ -> "BatchNormalization"
    | LayerKind.ActivationLayer -> "Activation"
    | LayerKind.Add -> "Add"
    | LayerKind.Concat -> "Concatenate"
    | LayerKind.Maxout _ -> "Maxout"

let activationName (a: Activation) =
    match a with
    | Activation.Linear -> "linear"
    | Activation.Relu -> "relu"
    | Activation.Sigmoid -> "sigmoid"
    | Activation.Tanh -> "tanh"
    | Activation.Softmax -> "softmax"
    | Activation.Elu alpha -> sprintf "elu %g" alpha
    | Activation.LeakyRelu alpha -> sprintf "leakyrelu %g" alpha

/// Keras's notation: (None, 22, 22, 32); a dynamic size is None too.
let shapeText (s: Shape) =
    let dim = function Dim.Known n -> string n | Dim.Dynamic -> "None"
    match s with
    | Image (h, w, c) -> sprintf "(None, %s, %s, %d)" (dim h) (dim w) c
    | Vector n -> sprintf "(None, %d)" n

/// Bytes in Keras's units (powers of 1024).
let bytesText (b: int64) =
    let b = float b
    if b >= 1024.0 ** 3.0 then sprintf "%.2f GB" (b / 1024.0 ** 3.0)
    elif b >= 1024.0 ** 2.0 then sprintf "%.2f MB" (b / 1024.0 ** 2.0)
    elif b >= 1024.0 then sprintf "%.2f KB" (b / 1024.0)
    else sprintf "%.0f B" b

let private count (n: int64 option) =
    match n with
    | Some n -> Messages.thousands n
    | None -> "?"

/// True when every node but the input reads exactly the node before it.
let isSequential (graph: Graph) =
    graph.Nodes |> List.forall (fun n -> n.Id = 0 || n.Inputs = [ n.Id - 1 ])

let render (modelName: string) (graph: Graph) =
    let sequential = isSequential graph
    let nameOf id = (graph.Nodes |> List.item id).Name
    let rows =
        graph.Nodes
        |> List.map (fun n ->
            let trainable, frozen = Cost.parameters n
            let kind =
                match n.Kind, n.Activation with
                | LayerKind.ActivationLayer, a -> sprintf "%s (%s, %s)" n.Name (typeName n) (activationName a)
                | _, Activation.Linear -> sprintf "%s (%s)" n.Name (typeName n)
                | _, a -> sprintf "%s (%s, %s)" n.Name (typeName n) (activationName a)
            [ kind
              shapeText n.OutputShape
              Messages.thousands (trainable + frozen)
              count (Cost.multiplyAdds n)
              (Cost.activationBytes n |> Option.map bytesText |> Option.defaultValue "?")
              (if sequential then "" else String.Join(", ", n.Inputs |> List.map nameOf)) ])
    let headers =
        [ "Layer (type)"; "Output Shape"; "Param #"; "Mult-adds"; "Activations"; (if sequential then "" else "Connected to") ]
    let columns = if sequential then 5 else 6
    let widths =
        [ for i in 0 .. columns - 1 -> (headers[i] :: (rows |> List.map (fun r -> r[i]))) |> List.map String.length |> List.max ]
    let rightAligned i = i = 2 || i = 3 || i = 4
    let line (cells: string list) =
        let parts =
            [ for i in 0 .. columns - 1 ->
                if rightAligned i then cells[i].PadLeft widths[i] else cells[i].PadRight widths[i] ]
        (" " + String.Join("   ", parts)).TrimEnd()
    let width = (line headers).Length + 1
    let sb = StringBuilder()
    let add (s: string) = sb.Append(s).Append('\n') |> ignore
    add (sprintf "Model: \"%s\"" modelName)
    add (String('_', width))
    add (line headers)
    add (String('=', width))
    rows |> List.iteri (fun i r ->
        add (line r)
        if i < rows.Length - 1 then add (String('_', width)))
    add (String('=', width))
    let trainable, frozen = graph.Nodes |> List.map Cost.parameters |> List.fold (fun (a, b) (x, y) -> a + x, b + y) (0L, 0L)
    let total = trainable + frozen
    let macs = graph.Nodes |> List.map Cost.multiplyAdds
    let acts = graph.Nodes |> List.map Cost.activationBytes
    add (sprintf "Total params: %s (%s)" (Messages.thousands total) (bytesText (total * 4L)))
    add (sprintf "Trainable params: %s (%s)" (Messages.thousands trainable) (bytesText (trainable * 4L)))
    add (sprintf "Non-trainable params: %s (%s)" (Messages.thousands frozen) (bytesText (frozen * 4L)))
    if macs |> List.forall Option.isSome then
        let m = macs |> List.sumBy Option.get
        let scaled = if m >= 1_000_000_000L then sprintf "%.2f G" (float m / 1e9) elif m >= 1_000_000L then sprintf "%.2f M" (float m / 1e6) else sprintf "%.2f K" (float m / 1e3)
        add (sprintf "Mult-adds per image: %s (%s)" (Messages.thousands m) scaled)
    else add "Mult-adds per image: ? (the input size is dynamic)"
    if acts |> List.forall Option.isSome then
        add (sprintf "Activation memory per image: %s (forward pass, float32)" (bytesText (acts |> List.sumBy Option.get)))
    else add "Activation memory per image: ? (the input size is dynamic)"
    sb.ToString()
