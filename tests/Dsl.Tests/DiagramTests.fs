module CnnDsl.Dsl.Tests.DiagramTests

open System.IO
open System.Text.RegularExpressions
open Xunit
open CnnDsl.Graph
open CnnDsl.Dsl
open CnnDsl.Dsl.Tests.TestSupport

let private model name = File.ReadAllText(repoPath [ "models"; name + ".cnn" ])

[<Fact>]
let ``the branches of the inception block are pinned as DOT`` () =
    golden "inception-block.dot" (Diagram.dot "inception-block" (graph (model "inception-block")))

[<Fact>]
let ``LeNet is pinned as Mermaid`` () =
    golden "lenet.mermaid" (Diagram.mermaid (graph (model "lenet")))

/// Every model: one box per layer and one edge per input, labelled with the shape that flows.
[<Fact>]
let ``every layer and every connection of every model is drawn, with its shape`` () =
    for name, text in models () do
        let g = graph text
        let dot = Diagram.dot name g
        let mermaid = Diagram.mermaid g
        let edges = g.Nodes |> List.sumBy (fun n -> n.Inputs.Length)
        Assert.Equal(g.Nodes.Length, Regex.Matches(dot, @"^  n\d+ \[label=", RegexOptions.Multiline).Count)
        Assert.Equal(edges, Regex.Matches(dot, @" -> ").Count)
        Assert.Equal(edges, Regex.Matches(mermaid, @" -->\|").Count)
        let nodes = List.toArray g.Nodes
        for n in nodes do
            for i in n.Inputs do
                Assert.Contains(sprintf "n%d -> n%d [label=\"%O\"];" i n.Id nodes[i].OutputShape, dot)
