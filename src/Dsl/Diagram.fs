/// `dsl summary --graph`: the layer graph as Graphviz DOT or Mermaid text, one box per layer
/// (name, Keras type, the layer's own numbers) and the tensor shape on every edge, so that
/// residual and branch structure can be seen.
module CnnDsl.Dsl.Diagram

open System.Text
open CnnDsl.Graph

/// What a box says under the layer's name: the numbers that define it.
let private detail (node: Node) =
    let window (w: Window) =
        let k = sprintf "%dx%d" w.KernelH w.KernelW
        let s = if w.StrideH = 1 && w.StrideW = 1 then "" elif w.StrideH = w.StrideW then sprintf " s%d" w.StrideH else sprintf " s%dx%d" w.StrideH w.StrideW
        let p = match w.PaddingMode with Same -> " same" | Valid -> "" | Explicit -> sprintf " p%d" w.Padding.Top
        k + s + p
    let act = match node.Activation with Activation.Linear -> "" | a -> " " + Summary.activationName a
    let own =
        match node.Kind with
        | LayerKind.Input -> string node.OutputShape
        | LayerKind.Conv c when c.Groups > 1 -> sprintf "%d %s groups %d" c.Filters (window c.Window) c.Groups
        | LayerKind.Conv c -> sprintf "%d %s" c.Filters (window c.Window)
        | LayerKind.Maxout pieces -> sprintf "%d" pieces
        | LayerKind.FixedConv f -> sprintf "%s %s" f.Name (window f.Window)
        | LayerKind.Pool p -> window p.Window
        | LayerKind.Dense (units, _) -> string units
        | LayerKind.Dropout rate -> sprintf "%g" rate
        | _ -> ""
    (own + act).Trim()

let private edgeShape (s: Shape) = string s

/// Graphviz DOT: `dsl summary model.cnn --graph dot | dot -Tpng -o model.png`.
let dot (title: string) (graph: Graph) =
    let sb = StringBuilder()
    let line (s: string) = sb.Append(s).Append('\n') |> ignore
    let quote (s: string) = "\"" + s.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\""
    line (sprintf "digraph %s {" (quote title))
    line "  rankdir=TB;"
    line "  node [shape=box, style=rounded, fontname=\"Helvetica\"];"
    line "  edge [fontname=\"Helvetica\", fontsize=10];"
    for node in graph.Nodes do
        let d = detail node
        let label = if d = "" then sprintf "%s\\n%s" node.Name (Summary.typeName node) else sprintf "%s\\n%s %s" node.Name (Summary.typeName node) d
        line (sprintf "  n%d [label=\"%s\"];" node.Id (label.Replace("\"", "\\\"")))
    let nodes = List.toArray graph.Nodes
    for node in nodes do
        for input in node.Inputs do
            let shape = nodes[input].OutputShape
            line (sprintf "  n%d -> n%d [label=%s];" input node.Id (quote (edgeShape shape)))
    line "}"
    sb.ToString()

/// Mermaid flowchart (renders in GitHub Markdown inside a ```mermaid block).
let mermaid (graph: Graph) =
    let sb = StringBuilder()
    let line (s: string) = sb.Append(s).Append('\n') |> ignore
    // Mermaid's quoted labels take no double quotes; #quot; is its escape.
    let text (s: string) = s.Replace("\"", "#quot;")
    line "flowchart TD"
    for node in graph.Nodes do
        let d = detail node
        let label = if d = "" then sprintf "%s<br/>%s" node.Name (Summary.typeName node) else sprintf "%s<br/>%s %s" node.Name (Summary.typeName node) d
        line (sprintf "  n%d[\"%s\"]" node.Id (text label))
    let nodes = List.toArray graph.Nodes
    for node in nodes do
        for input in node.Inputs do
            line (sprintf "  n%d -->|\"%s\"| n%d" input (text (edgeShape nodes[input].OutputShape)) node.Id)
    sb.ToString()
