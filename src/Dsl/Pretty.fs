/// Syntax tree -> source text, in the canonical layout (one layer per line, blocks on one line).
/// Parsing the printed text gives back the same tree (a property test holds it to that).
module CnnDsl.Dsl.Pretty

open System
open System.Globalization
open CnnDsl.Dsl.Syntax

/// A float prints with a '.' or an exponent, so that it reads back as a float.
let float (v: float) =
    let s = v.ToString("R", CultureInfo.InvariantCulture)
    if s.Contains '.' || s.Contains 'E' || s.Contains 'e' || s.Contains "N" || s.Contains "∞" then s else s + ".0"

let number =
    function
    | Int v -> string v
    | Float v -> float v
    | Ref name -> name

let dims (d: Dims) =
    d.Value
    |> List.map (function
        | Size n -> number n
        | Unknown -> "?")
    |> String.concat "x"

let activation =
    let withAlpha name (alpha: Located<Number> option) =
        match alpha with
        | Some a -> sprintf "%s %s" name (number a.Value)
        | None -> name
    function
    | Relu -> "relu"
    | Sigmoid -> "sigmoid"
    | Tanh -> "tanh"
    | Softmax -> "softmax"
    | Linear -> "linear"
    | Elu alpha -> withAlpha "elu" alpha
    | LeakyRelu alpha -> withAlpha "leakyrelu" alpha

let rec tensor (t: TensorLiteral) =
    match t with
    | Scalar v -> float v
    | Items items -> "[" + (items |> List.map (fun i -> tensor i.Value) |> String.concat " ") + "]"

let layerOption =
    function
    | Stride d -> "s" + dims d
    | PadSame -> "same"
    | PadValid -> "valid"
    | Pad d -> "p" + dims d
    | Dilation d -> "d" + dims d
    | NoBias -> "nobias"
    | Frozen -> "frozen"
    | Project -> "project"
    | Activation a -> activation a
    | Weights t -> "weights " + tensor t
    | BiasValues t -> "bias " + tensor t
    | Groups n -> "groups " + number n.Value
    | UnknownOption w -> w

let private poolWord global' kind =
    match global', kind with
    | false, MaxPool -> "maxpool"
    | false, AvgPool -> "avgpool"
    | false, MinPool -> "minpool"
    | true, MaxPool -> "globalmaxpool"
    | true, AvgPool -> "globalavgpool"
    | true, MinPool -> "globalminpool"

let rec layer (l: Layer) =
    let head =
        match l.Syntax with
        | Input d -> "input " + dims d
        | Conv (f, k) -> sprintf "conv %s %s" (number f.Value) (dims k)
        | DepthwiseConv k -> "dwconv " + dims k
        | SeparableConv (f, k) -> sprintf "sepconv %s %s" (number f.Value) (dims k)
        | Maxout n -> "maxout " + number n.Value
        | NamedKernel name -> name
        | LiteralKernel rows ->
            let row (r: Located<float list>) = "[" + (r.Value |> List.map float |> String.concat ",") + "]"
            "kernel [" + (rows |> List.map row |> String.concat ",") + "]"
        | Pool (kind, size) -> sprintf "%s %s" (poolWord false kind) (dims size)
        | GlobalPool kind -> poolWord true kind
        | Dense units -> "dense " + number units.Value
        | Flatten -> "flatten"
        | Reshape d -> "reshape " + dims d
        | Dropout rate -> "dropout " + number rate.Value
        | BatchNorm -> "batchnorm"
        | ActivationLayer a -> activation a
        | Repeat (n, body) -> sprintf "repeat %s (%s)" (number n.Value) (block body)
        | Residual (body, None) -> sprintf "residual (%s)" (block body)
        | Residual (body, Some sc) -> sprintf "residual (%s) shortcut (%s)" (block body) (block sc)
        | Concat branches -> sprintf "concat (%s)" (branches |> List.map block |> String.concat " | ")
        | Call (name, args) -> String.Join(" ", name :: (args |> List.map (fun a -> number a.Value)))
    String.Join(" ", head :: (l.Options |> List.map (fun o -> layerOption o.Value)))

and block (layers: Layer list) = layers |> List.map layer |> String.concat "; "

let settingValue =
    function
    | Word w -> w
    | Text t -> "\"" + t + "\""
    | Num n -> number n

let program (p: Program) =
    let items =
        p.Items
        |> List.map (function
            | LayerItem l -> layer l
            | LetItem b ->
                let ps = b.Parameters |> List.map (fun p -> " " + p.Value) |> String.concat ""
                sprintf "let %s%s = (%s)" b.Name.Value ps (block b.Body))
    let training =
        match p.Training with
        | None -> []
        | Some section ->
            "train"
            :: (section.Value
                |> List.map (fun s -> "  " + String.Join(" ", s.Key.Value :: (s.Values |> List.map (fun v -> settingValue v.Value)))))
    String.concat "\n" (items @ training) + "\n"
