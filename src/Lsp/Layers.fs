/// Which graph nodes each layer of the source became. The checker expands `let` blocks and
/// `repeat` and records only a node's source line; this walks the syntax tree in the checker's
/// order over a valid graph's nodes (which come out in that order), so that a layer written
/// once and used three times gets its three groups of nodes. Built on the public Syntax and
/// Graph types only.
module CnnDsl.Lsp.Layers

open System.Collections.Generic
open CnnDsl.Dsl
open CnnDsl.Dsl.Syntax
open CnnDsl.Graph

/// For each layer's keyword position, the nodes of each of its uses (in order).
type LayerMap = Dictionary<Pos, ResizeArray<Node list>>

exception private OutOfStep

/// Every `let` block of the program by name (the first definition of a name).
let lets (program: Program) =
    let d = Dictionary<string, LetBinding>()
    for item in program.Items do
        match item with
        | LetItem b when not (d.ContainsKey b.Name.Value) -> d[b.Name.Value] <- b
        | _ -> ()
    d

/// The map for a program whose check succeeded with this graph; empty if the walk and the
/// nodes ever disagree (then nothing is shown rather than a wrong shape).
let build (program: Program) (graph: Graph) : LayerMap =
    let nodes = Array.ofList graph.Nodes
    let blocks = lets program
    let map = LayerMap()
    let mutable next = 0
    let take (line: int) =
        if next >= nodes.Length then raise OutOfStep
        let n = nodes[next]
        if line > 0 && n.SourceLine <> line then raise OutOfStep
        next <- next + 1
        n
    let peek () = if next < nodes.Length then Some nodes[next] else None
    let count (env: Map<string, Number>) (n: Located<Number>) =
        match n.Value with
        | Int v -> int v
        | Ref name ->
            match env.TryFind name with
            | Some (Int v) -> int v
            | _ -> raise OutOfStep
        | Float _ -> raise OutOfStep
    let rec layer (env: Map<string, Number>) (l: Layer) : Node list =
        let line = l.Pos.Line
        let own =
            match l.Syntax with
            | Input _ | Conv _ | DepthwiseConv _ | Maxout _ | NamedKernel _ | LiteralKernel _ | Pool _ | GlobalPool _
            | Flatten | Reshape _ | Dropout _ | BatchNorm | ActivationLayer _ -> [ take line ]
            // depthwise, then pointwise: two nodes
            | SeparableConv _ -> let d = take line in [ d; take line ]
            | Dense _ ->
                // A dense layer on an image flattens first (a node of its own, on its line).
                match peek () with
                | Some n when n.Kind = LayerKind.Flatten -> let f = take line in [ f; take line ]
                | _ -> [ take line ]
            | Repeat (n, body) -> [ for _ in 1 .. count env n do yield! layers env body ]
            | Residual (body, Some shortcut) ->
                let inner = layers env body
                let skip = layers env shortcut
                inner @ skip @ [ take line ]
            | Residual (body, None) ->
                let inner = layers env body
                let projection =
                    match peek () with
                    | Some n when n.Kind <> LayerKind.Add -> [ take line ]
                    | _ -> []
                inner @ projection @ [ take line ]
            | Concat branches ->
                let inner = branches |> List.collect (layers env)
                inner @ [ take line ]
            | Call (name, args) ->
                match blocks.TryGetValue name with
                | true, b ->
                    let values = args |> List.map (fun a -> match a.Value with Ref r -> (match env.TryFind r with Some v -> v | None -> raise OutOfStep) | v -> v)
                    let env' = List.zip (b.Parameters |> List.map (fun p -> p.Value)) values |> Map.ofList
                    layers env' b.Body
                | _ -> raise OutOfStep
        match map.TryGetValue l.Pos with
        | true, uses -> uses.Add own
        | _ -> map[l.Pos] <- ResizeArray [ own ]
        own
    and layers env (ls: Layer list) = ls |> List.collect (layer env)
    try
        for item in program.Items do
            match item with
            | LayerItem l -> layer Map.empty l |> ignore
            | LetItem _ -> ()
        if next <> nodes.Length then LayerMap() else map
    with OutOfStep -> LayerMap()

/// All layers of a list, nested ones included, outermost first.
let rec allLayers (ls: Layer list) : Layer list =
    ls |> List.collect (fun l ->
        l :: (match l.Syntax with
              | Repeat (_, body) | Residual (body, None) -> allLayers body
              | Residual (body, Some shortcut) -> allLayers body @ allLayers shortcut
              | Concat branches -> branches |> List.collect allLayers
              | _ -> []))

/// Every layer of the program: top level, in blocks, nested.
let everyLayer (program: Program) =
    program.Items |> List.collect (function
        | LayerItem l -> allLayers [ l ]
        | LetItem b -> allLayers b.Body)
