module CnnDsl.Lsp.Tests.LayersTests

open System.IO
open Xunit
open CnnDsl.Dsl
open CnnDsl.Dsl.Syntax
open CnnDsl.Graph
open CnnDsl.Lsp
open CnnDsl.Lsp.Tests.TestSupport

let private mapOf (text: string) =
    let program, errors = Parser.parse text
    Assert.Empty errors
    match Frontend.compile text with
    | Ok (graph, _) -> program, graph, Layers.build program graph
    | Error ds -> failwithf "%A" ds

let private layerOnLine (program: Program) line =
    Layers.everyLayer program |> List.find (fun l -> l.Pos.Line = line)

[<Fact>]
let ``a block's layers get one group of nodes per use, and each use the block's nodes`` () =
    let text = "input 8x8x1\nlet two f = (conv f 3x3 same; relu)\ntwo 4\ntwo 8\nflatten\n"
    let program, graph, map = mapOf text
    let conv = layerOnLine program 2
    Assert.Equal(2, map[conv.Pos].Count)
    Assert.Equal<string list>([ "conv2d"; "conv2d_1" ], [ for u in map[conv.Pos] -> (List.head u).Name ])
    let secondUse = (program.Items |> List.choose (function LayerItem l when l.Pos.Line = 4 -> Some l | _ -> None)).Head
    Assert.Equal<string list>([ "conv2d_1"; "activation_1" ], map[secondUse.Pos].[0] |> List.map (fun n -> n.Name))
    Assert.Equal(Image (Dim.Known 8, Dim.Known 8, 8), (List.last map[secondUse.Pos].[0]).OutputShape)
    ignore graph

[<Fact>]
let ``repeat, an implicit flatten before dense, residual projections and concat are followed`` () =
    let text = "input 8x8x2\nrepeat 3 (conv 2 3x3 same)\nresidual (conv 4 3x3 s2 same) project\nconcat (conv 2 1x1 | conv 3 1x1)\ndense 5\n"
    let program, graph, map = mapOf text
    let inner = layerOnLine program 2 |> fun rep -> match rep.Syntax with Repeat (_, [ c ]) -> c | _ -> failwith "repeat"
    Assert.Equal(3, map[inner.Pos].Count)
    let residual = layerOnLine program 3
    Assert.Equal<string list>([ "conv2d_3"; "conv2d_4"; "add" ], map[residual.Pos].[0] |> List.map (fun n -> n.Name))
    let concat = layerOnLine program 4
    Assert.Equal("concatenate", (List.last map[concat.Pos].[0]).Name)
    let dense = layerOnLine program 5
    Assert.Equal<string list>([ "flatten"; "dense" ], map[dense.Pos].[0] |> List.map (fun n -> n.Name))
    ignore graph

[<Fact>]
let ``every model's top-level layers account for every node exactly once`` () =
    for file in Directory.GetFiles(repoPath [ "models" ], "*.cnn") do
        let program, graph, map = mapOf (File.ReadAllText file)
        let top =
            program.Items |> List.collect (function LayerItem l -> map[l.Pos].[0] | LetItem _ -> [])
        Assert.True((top |> List.map (fun n -> n.Id)) = (graph.Nodes |> List.map (fun n -> n.Id)), file)

[<Fact>]
let ``separable convolutions give two nodes, a written shortcut its own before the sum`` () =
    let text = "input 8x8x4\nsepconv 8 3x3 same\ndwconv 3x3 same\nresidual (conv 8 3x3 same) shortcut (conv 8 1x1)\nmaxout 2\n"
    let program, _, map = mapOf text
    Assert.Equal<string list>([ "separable_conv2d_depthwise"; "separable_conv2d" ], map[(layerOnLine program 2).Pos].[0] |> List.map (fun n -> n.Name))
    Assert.Equal<string list>([ "depthwise_conv2d" ], map[(layerOnLine program 3).Pos].[0] |> List.map (fun n -> n.Name))
    let residual = map[(layerOnLine program 4).Pos].[0]
    Assert.Equal<string list>([ "conv2d"; "conv2d_1"; "add" ], residual |> List.map (fun n -> n.Name))
    Assert.Equal("maxout", (List.head map[(layerOnLine program 5).Pos].[0]).Name)
