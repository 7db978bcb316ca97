/// Shared test helpers: the repository's folders, position stripping, and FsCheck
/// generators of syntax trees (used by the round-trip and robustness properties).
module CnnDsl.Dsl.Tests.TestSupport

open System
open System.IO
open Xunit
open FsCheck
open FsCheck.FSharp
open CnnDsl.Dsl
open CnnDsl.Dsl.Syntax

let rec private findRoot (dir: DirectoryInfo) =
    if isNull dir then failwith "CnnDsl.sln not found above the test folder"
    elif File.Exists(Path.Combine(dir.FullName, "CnnDsl.sln")) then dir.FullName
    else findRoot dir.Parent

let repoRoot = findRoot (DirectoryInfo(System.AppContext.BaseDirectory))
let repoPath (parts: string list) = Path.Combine(repoRoot :: parts |> Array.ofList)

let compile (text: string) = Frontend.compile text

let diagnostics text =
    match compile text with
    | Ok (_, ws) -> ws
    | Error ds -> ds

let graph text =
    match compile text with
    | Ok (g, _) -> g
    | Error ds -> failwithf "expected a clean model, got:\n%s" (Diagnostic.renderAll "test.cnn" text ds)

// ---- positions do not take part in tree equality ----

let private noPos (l: Located<'a>) = { l with Pos = Pos.None }

let private stripDims (d: Dims) = noPos d

let private stripActivation a =
    match a with
    | Elu x -> Elu (Option.map noPos x)
    | LeakyRelu x -> LeakyRelu (Option.map noPos x)
    | a -> a

let rec private stripTensor (t: TensorLiteral) =
    match t with
    | Items items -> Items (items |> List.map (fun i -> { Value = stripTensor i.Value; Pos = Pos.None }))
    | scalar -> scalar

let private stripOption (o: Located<LayerOption>) =
    let v =
        match o.Value with
        | Weights t -> Weights (stripTensor t)
        | BiasValues t -> BiasValues (stripTensor t)
        | Groups n -> Groups (noPos n)
        | Stride d -> Stride (stripDims d)
        | Pad d -> Pad (stripDims d)
        | Dilation d -> Dilation (stripDims d)
        | Activation a -> Activation (stripActivation a)
        | v -> v
    { Value = v; Pos = Pos.None }

let rec stripLayer (l: Layer) : Layer =
    let syntax =
        match l.Syntax with
        | Input d -> Input (stripDims d)
        | Conv (f, k) -> Conv (noPos f, stripDims k)
        | LiteralKernel rows -> LiteralKernel (rows |> List.map noPos)
        | Pool (k, d) -> Pool (k, stripDims d)
        | Dense u -> Dense (noPos u)
        | Reshape d -> Reshape (stripDims d)
        | Dropout r -> Dropout (noPos r)
        | ActivationLayer a -> ActivationLayer (stripActivation a)
        | Repeat (n, body) -> Repeat (noPos n, body |> List.map stripLayer)
        | Residual (body, shortcut) -> Residual (body |> List.map stripLayer, shortcut |> Option.map (List.map stripLayer))
        | DepthwiseConv k -> DepthwiseConv (stripDims k)
        | SeparableConv (f, k) -> SeparableConv (noPos f, stripDims k)
        | Maxout n -> Maxout (noPos n)
        | Concat branches -> Concat (branches |> List.map (List.map stripLayer))
        | Call (name, args) -> Call (name, args |> List.map noPos)
        | s -> s
    { Syntax = syntax; Options = l.Options |> List.map stripOption; Pos = Pos.None }

let strip (p: Program) : Program =
    { Items =
        p.Items
        |> List.map (function
            | LayerItem l -> LayerItem (stripLayer l)
            | LetItem b ->
                LetItem { Name = noPos b.Name; Parameters = b.Parameters |> List.map noPos; Body = b.Body |> List.map stripLayer })
      Training =
        p.Training
        |> Option.map (fun t ->
            { Value = t.Value |> List.map (fun s -> { Key = noPos s.Key; Values = s.Values |> List.map noPos }); Pos = Pos.None }) }

// ---- generators ----

let private at v = { Value = v; Pos = Pos.None }
let private smallInt = Gen.choose (0, 600) |> Gen.map (int64 >> Int)
let private positiveFloat = Gen.choose (1, 999) |> Gen.map (fun n -> Float (float n / 1000.0))
let private paramNames = [ "f"; "n"; "k"; "width" ]
let private number = Gen.frequency [ 6, smallInt; 1, Gen.elements paramNames |> Gen.map Ref ]

let private dims count =
    Gen.listOfLength count (Gen.choose (1, 64) |> Gen.map (int64 >> Int >> Size)) |> Gen.map at

let private dimsOneOrTwo = Gen.oneof [ dims 1; dims 2 ]

let private activation =
    Gen.oneof
        [ Gen.elements [ Relu; Sigmoid; Tanh; Softmax; Linear ]
          Gen.oneof [ Gen.constant None; positiveFloat |> Gen.map (at >> Some) ] |> Gen.map Elu
          Gen.oneof [ Gen.constant None; positiveFloat |> Gen.map (at >> Some) ] |> Gen.map LeakyRelu ]

/// Literals up to `depth` levels deep: ragged, empty and negative ones included.
let rec private tensor depth : Gen<TensorLiteral> =
    let scalar = Gen.choose (-99, 99) |> Gen.map (fun n -> Scalar (float n / 4.0))
    if depth = 0 then scalar
    else Gen.oneof [ scalar; Gen.choose (0, 3) |> Gen.bind (fun n -> Gen.listOfLength n (tensor (depth - 1) |> Gen.map at)) |> Gen.map Items ]

let private layerOption =
    Gen.oneof
        [ dimsOneOrTwo |> Gen.map Stride
          Gen.elements [ PadSame; PadValid; NoBias; Frozen; Project ]
          dimsOneOrTwo |> Gen.map Pad
          dimsOneOrTwo |> Gen.map Dilation
          activation |> Gen.map Activation
          tensor 3 |> Gen.map Weights
          tensor 1 |> Gen.map BiasValues
          number |> Gen.map (at >> Groups)
          Gen.elements [ "foo"; "bogus"; "relux"; "samee" ] |> Gen.map UnknownOption ]
    |> Gen.map at

let rec private layerOfDepth depth : Gen<Layer> =
    let leaf =
        [ Gen.oneof [ dims 1; dims 3 ] |> Gen.map Input
          Gen.map2 (fun f k -> Conv (at f, k)) number dimsOneOrTwo
          dimsOneOrTwo |> Gen.map DepthwiseConv
          Gen.map2 (fun f k -> SeparableConv (at f, k)) number dimsOneOrTwo
          number |> Gen.map (at >> Maxout)
          Gen.elements Kernels.names |> Gen.map NamedKernel
          Gen.listOfLength 3 (Gen.listOfLength 3 (Gen.choose (-9, 9) |> Gen.map float) |> Gen.map at) |> Gen.map LiteralKernel
          Gen.map2 (fun k d -> Pool (k, d)) (Gen.elements [ MaxPool; AvgPool; MinPool ]) dimsOneOrTwo
          Gen.elements [ MaxPool; AvgPool; MinPool ] |> Gen.map GlobalPool
          number |> Gen.map (at >> Dense)
          Gen.constant Flatten
          Gen.oneof [ dims 1; dims 3 ] |> Gen.map Reshape
          positiveFloat |> Gen.map (at >> Dropout)
          Gen.constant BatchNorm
          activation |> Gen.map ActivationLayer
          Gen.map2 (fun n args -> Call (n, args)) (Gen.elements [ "block"; "stage"; "stem" ]) (Gen.listOf (number |> Gen.map at) |> Gen.map (List.truncate 3)) ]
    let nested =
        if depth <= 0 then []
        else
            let body = Gen.choose (1, 3) |> Gen.bind (fun n -> Gen.listOfLength n (layerOfDepth (depth - 1)))
            [ Gen.map2 (fun n b -> Repeat (at n, b)) number body
              body |> Gen.map (fun b -> Residual (b, None))
              Gen.map2 (fun b s -> Residual (b, Some s)) body body
              Gen.choose (1, 3) |> Gen.bind (fun n -> Gen.listOfLength n body) |> Gen.map Concat ]
    gen {
        let! syntax = Gen.oneof (leaf @ nested)
        // After a block's arguments an unknown word would read as one more argument.
        let option =
            match syntax with
            | Call _ -> layerOption |> Gen.filter (fun o -> match o.Value with UnknownOption _ -> false | _ -> true)
            | _ -> layerOption
        let! options = Gen.choose (0, 3) |> Gen.bind (fun n -> Gen.listOfLength n option)
        return { Syntax = syntax; Options = options; Pos = Pos.None }
    }

let layer = layerOfDepth 2

let private letBinding =
    gen {
        let! name = Gen.elements [ "block"; "stage"; "stem" ]
        let! ps = Gen.choose (0, 3) |> Gen.map (fun n -> paramNames |> List.truncate n |> List.map at)
        let! n = Gen.choose (1, 3)
        let! body = Gen.listOfLength n layer
        return { Name = at name; Parameters = ps; Body = body }
    }

let private setting =
    gen {
        let! key = Gen.elements [ "data"; "optimizer"; "lr"; "epochs"; "augment"; "whatever" ]
        let value = Gen.oneof [ Gen.elements [ "adam"; "fashion-mnist"; "flip" ] |> Gen.map Word
                                Gen.elements [ "some/path"; "x y" ] |> Gen.map Text
                                smallInt |> Gen.map Num
                                positiveFloat |> Gen.map Num ]
        let! values = Gen.choose (0, 2) |> Gen.bind (fun n -> Gen.listOfLength n (value |> Gen.map at))
        return { Key = at key; Values = values }
    }

let program : Gen<Program> =
    gen {
        let! n = Gen.choose (1, 8)
        let! items = Gen.listOfLength n (Gen.frequency [ 5, layer |> Gen.map LayerItem; 1, letBinding |> Gen.map LetItem ])
        let! hasTraining = Gen.elements [ true; false ]
        let! settings = Gen.choose (0, 4) |> Gen.bind (fun n -> Gen.listOfLength n setting)
        return { Items = items; Training = (if hasTraining then Some (at settings) else None) }
    }

/// The models in models/, as (name, text).
let models () =
    Directory.GetFiles(repoPath [ "models" ], "*.cnn")
    |> Array.sort
    |> Array.map (fun f -> Path.GetFileName f, File.ReadAllText f)

/// Golden files pin the exact text of `dsl summary`, `dsl check` and `summary --graph`, so that any change
/// to either is a visible diff. Set UPDATE_GOLDEN=1 to rewrite them after a deliberate change.
let golden (name: string) (actual: string) =
    let path = repoPath [ "tests"; "Dsl.Tests"; "golden"; name ]
    if Environment.GetEnvironmentVariable "UPDATE_GOLDEN" = "1" then File.WriteAllText(path, actual)
    Assert.True(File.Exists path, sprintf "missing golden file %s (run with UPDATE_GOLDEN=1)" path)
    Assert.Equal(File.ReadAllText(path).Replace("\r\n", "\n"), actual)
