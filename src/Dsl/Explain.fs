/// `dsl explain`: every layer's output size and parameter count worked out with the layer's
/// own numbers, as the seeds' "Calculate Output Size" and "Calculate the number of
/// parameters" tables do.
module CnnDsl.Dsl.Explain

open System
open System.Text
open CnnDsl.Graph

let private n (v: int64) = Messages.thousands v

let private dim (d: Dim) = match d with Dim.Known v -> Some v | Dim.Dynamic -> None

/// One axis of a window: the formula with its numbers, and a note when the division is not exact.
let private axisText (name: string) (input: Dim) (output: Dim) (k: int) (s: int) (d: int) (before: int) (after: int) (mode: PaddingMode) =
    match dim input, dim output with
    | Some n', Some out ->
        let kEff = d * (k - 1) + 1
        let kText = if d = 1 then string k else sprintf "%d" kEff
        let dilation = if d = 1 then "" else sprintf " (dilated kernel: %d*(%d-1)+1 = %d)" d k kEff
        match mode with
        | Same ->
            sprintf "%s: same padding: out = ceil(%d/%d) = %d; padding total = max((%d-1)*%d + %s - %d, 0) = %d, split %d before and %d after%s"
                name n' s out out s kText n' (before + after) before after dilation, None
        | _ ->
            let p = before
            let span = n' + before + after - kEff
            let exact = span % s = 0
            let line = sprintf "%s: out = floor((%d + 2*%d - %s)/%d) + 1 = %d%s" name n' p kText s out dilation
            let note =
                if exact then None
                else Some (sprintf "%s: (%d + 2*%d - %s)/%d = %d/%d is not a whole number: the last %d %s never covered"
                                name n' p kText s span s (span % s) (if span % s = 1 then "row/column is" else "rows/columns are"))
            line, note
    | _ -> sprintf "%s: ? (dynamic: out = floor((n + 2p - k)/s) + 1 once n is known)" name, None

let private windowLines (input: Shape) (output: Shape) (w: Window) =
    match input, output with
    | Image (h, wd, _), Image (oh, ow, _) ->
        let square = w.KernelH = w.KernelW && w.StrideH = w.StrideW && w.DilationH = w.DilationW && w.Padding.Top = w.Padding.Left && w.Padding.Bottom = w.Padding.Right && h = wd
        let hl, hn = axisText (if square then "height and width" else "height") h oh w.KernelH w.StrideH w.DilationH w.Padding.Top w.Padding.Bottom w.PaddingMode
        if square then [ hl ], Option.toList hn
        else
            let wl, wn = axisText "width" wd ow w.KernelW w.StrideW w.DilationW w.Padding.Left w.Padding.Right w.PaddingMode
            [ hl; wl ], Option.toList hn @ Option.toList wn
    | _ -> [], []

let private channels (s: Shape) = Cost.channels s

/// (layer heading, output size lines, parameter line, notes) per node after the input.
let explainNode (node: Node) =
    let input = match node.InputShapes with s :: _ -> s | [] -> node.OutputShape
    let outputs, notes, parameters =
        match node.Kind with
        | LayerKind.Conv c ->
            let lines, notes = windowLines input node.OutputShape c.Window
            let k = c.Window
            let bias = if c.Bias then " + 1" else ""
            let perFilter = if c.Groups = 1 then string (channels input) else sprintf "(%d/%d)" (channels input) c.Groups
            let groups = if c.Groups = 1 then [] else [ sprintf "%d groups: each filter sees %d of the %d input channels" c.Groups (channels input / c.Groups) (channels input) ]
            lines, notes @ groups,
            sprintf "params = (%d*%d*%s%s) * %d = %s" k.KernelH k.KernelW perFilter bias c.Filters (n (fst (Cost.parameters node) + snd (Cost.parameters node)))
        | LayerKind.FixedConv f ->
            let lines, notes = windowLines input node.OutputShape f.Window
            lines, notes, sprintf "params = 0 (fixed %s kernels, %d per input channel: %d*%d = %d channels)" f.Name f.Kernels.Length (channels input) f.Kernels.Length (channels node.OutputShape)
        | LayerKind.Pool p ->
            let lines, notes = windowLines input node.OutputShape p.Window
            lines, notes, "params = 0"
        | LayerKind.GlobalPool _ -> [ sprintf "one value per channel: %d" (channels node.OutputShape) ], [], "params = 0"
        | LayerKind.Flatten | LayerKind.Reshape ->
            let text =
                match input with
                | Image (Dim.Known h, Dim.Known w, c) -> sprintf "%d*%d*%d = %s values" h w c (n (int64 h * int64 w * int64 c))
                | _ -> sprintf "%O" node.OutputShape
            [ sprintf "%s -> %O" text node.OutputShape ], [], "params = 0"
        | LayerKind.Dense (units, bias) ->
            let inputs = Cost.elements input |> Option.defaultValue 0L
            let b = if bias then " + 1" else ""
            [ sprintf "%d units" units ], [], sprintf "params = (%s%s) * %d = %s" (n inputs) b units (n (fst (Cost.parameters node) + snd (Cost.parameters node)))
        | LayerKind.BatchNormalization _ ->
            let c = channels node.OutputShape
            [ "same size" ], [], sprintf "params = 4 * %d = %s (gamma and beta trained; moving mean and variance not)" c (n (int64 (4 * c)))
        | LayerKind.Add -> [ "same size: the inputs are added" ], [], "params = 0"
        | LayerKind.Concat ->
            [ sprintf "channels %s = %d" (String.Join(" + ", node.InputShapes |> List.map channels)) (channels node.OutputShape) ], [], "params = 0"
        | LayerKind.Dropout rate -> [ sprintf "same size (%g of the units dropped in training)" rate ], [], "params = 0"
        | LayerKind.Maxout pieces ->
            [ sprintf "channels %d / %d = %d (the largest of every %d consecutive channels)" (channels input) pieces (channels node.OutputShape) pieces ], [], "params = 0"
        | LayerKind.ActivationLayer | LayerKind.Input -> [ "same size" ], [], "params = 0"
    outputs, notes, parameters

let heading (node: Node) =
    let act = match node.Activation with Activation.Linear -> "" | a -> ", " + Summary.activationName a
    sprintf "%s (%s%s), line %d: %O -> %O" node.Name (Summary.typeName node) act node.SourceLine
        (match node.InputShapes with s :: _ -> s | [] -> node.OutputShape) node.OutputShape

/// Plain text: a paragraph per layer.
let text (graph: Graph) =
    let sb = StringBuilder()
    let input = graph.Input
    sb.AppendLine(sprintf "input: %O" input.OutputShape) |> ignore
    for node in graph.Nodes |> List.tail do
        let outputs, notes, parameters = explainNode node
        sb.AppendLine().AppendLine(heading node) |> ignore
        for line in outputs do sb.AppendLine("  " + line) |> ignore
        sb.AppendLine("  " + parameters) |> ignore
        for note in notes do sb.AppendLine("  note: " + note) |> ignore
    let t, f = graph.Nodes |> List.map Cost.parameters |> List.fold (fun (a, b) (x, y) -> a + x, b + y) (0L, 0L)
    sb.AppendLine().AppendLine(sprintf "Total params: %s (trainable %s, non-trainable %s)" (n (t + f)) (n t) (n f)) |> ignore
    sb.ToString()

/// A Markdown table a teacher can paste.
let markdown (graph: Graph) =
    let sb = StringBuilder()
    sb.AppendLine("| layer | output size | parameters |").AppendLine("| --- | --- | --- |") |> ignore
    sb.AppendLine(sprintf "| input | %O | 0 |" graph.Input.OutputShape) |> ignore
    for node in graph.Nodes |> List.tail do
        let outputs, notes, parameters = explainNode node
        let cell (lines: string list) = String.Join("<br>", lines).Replace("|", "\\|")
        sb.AppendLine(sprintf "| %s (%s) | %s | %s |" node.Name (Summary.typeName node) (cell (outputs @ (notes |> List.map (fun n -> "note: " + n)))) (cell [ parameters ])) |> ignore
    let t, f = graph.Nodes |> List.map Cost.parameters |> List.fold (fun (a, b) (x, y) -> a + x, b + y) (0L, 0L)
    sb.AppendLine(sprintf "| **total** | | **%s** |" (n (t + f))) |> ignore
    sb.ToString()
