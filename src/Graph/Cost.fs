/// What a node costs: parameters, multiply-adds and activation memory per example.
/// Defined beside the contract so that every engine and every report counts alike.
module CnnDsl.Graph.Cost

/// Number of values in one example of this shape; None when a size is dynamic.
let elements (shape: Shape) : int64 option =
    match shape with
    | Vector n -> Some (int64 n)
    | Image (Dim.Known h, Dim.Known w, c) -> Some (int64 h * int64 w * int64 c)
    | Image _ -> None

let channels (shape: Shape) =
    match shape with
    | Image (_, _, c) -> c
    | Vector n -> n

/// Parameter count of a node as Keras counts it: (trainable, non-trainable).
/// Batchnorm's moving mean and variance are non-trainable; a frozen layer's are all non-trainable.
let parameters (node: Node) : int64 * int64 =
    let inputChannels () = node.InputShapes |> List.head |> channels |> int64
    let learned, statistics =
        match node.Kind with
        | LayerKind.Conv c ->
            let w = int64 c.Window.KernelH * int64 c.Window.KernelW * (inputChannels () / int64 c.Groups) * int64 c.Filters
            (w + (if c.Bias then int64 c.Filters else 0L)), 0L
        | LayerKind.Dense (units, bias) ->
            let inputs = node.InputShapes |> List.head |> elements |> Option.defaultValue 0L
            (inputs * int64 units + (if bias then int64 units else 0L)), 0L
        | LayerKind.BatchNormalization _ ->
            let c = int64 (channels node.OutputShape)
            2L * c, 2L * c
        | LayerKind.Input | LayerKind.FixedConv _ | LayerKind.Pool _ | LayerKind.GlobalPool _ | LayerKind.Flatten
        | LayerKind.Reshape | LayerKind.Dropout _ | LayerKind.ActivationLayer | LayerKind.Add | LayerKind.Concat | LayerKind.Maxout _ -> 0L, 0L
    if node.Trainable then learned, statistics else 0L, learned + statistics

/// Multiply-adds for one example in the forward pass (convolutions, dense layers and
/// batchnorm's scale-and-shift); None when the input size is dynamic.
let multiplyAdds (node: Node) : int64 option =
    let outElems = elements node.OutputShape
    match node.Kind with
    | LayerKind.Conv c ->
        outElems
        |> Option.map (fun o -> o * int64 c.Window.KernelH * int64 c.Window.KernelW * int64 (channels (List.head node.InputShapes) / c.Groups))
    | LayerKind.FixedConv f -> outElems |> Option.map (fun o -> o * int64 f.Window.KernelH * int64 f.Window.KernelW)
    | LayerKind.Dense (units, _) -> node.InputShapes |> List.head |> elements |> Option.map (fun i -> i * int64 units)
    | LayerKind.BatchNormalization _ -> outElems
    | _ -> Some 0L

/// Bytes of one example's output activations, in float32.
let activationBytes (node: Node) : int64 option =
    elements node.OutputShape |> Option.map (fun n -> n * 4L)
