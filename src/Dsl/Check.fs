/// Syntax tree -> validated layer graph. Expands `let` blocks and `repeat`, resolves every
/// option, computes every output shape with the seeds' formula and reports every mistake
/// (not just the first) with its position. No tensor is allocated here.
module CnnDsl.Dsl.Check

open System
open System.Collections.Generic
open CnnDsl.Graph
open CnnDsl.Dsl.Syntax

module M = Messages

/// Past this many nodes a `repeat` is taken for a mistake.
let maxNodes = 100_000

/// The runtime indexes one example's tensor (and a layer's weights) with 32-bit integers.
let maxTensorElements = int64 Int32.MaxValue

/// Layers visited while expanding blocks and repeats, whether or not they add a node (after
/// an error a block is still walked for its own mistakes): a bound on the checker's work.
let private maxVisits = 1_000_000

/// Beyond this a parameter count or an activation is refused as absurd.
let private absurd = 1e12

/// Warn beyond these (per example).
let private manyParameters = 1_000_000_000L
let private manyActivationBytes = 1L <<< 30

/// Where a layer's input comes from: a node and its shape, or nothing known because of
/// an earlier error (checks that need the shape are then skipped, not reported twice).
type private Flow = (int * Shape) option

type private Options =
    { Stride: Dims option
      Padding: Located<LayerOption> option
      Dilation: Dims option
      NoBias: bool
      Frozen: bool
      Project: bool
      Activation: Located<ActivationSyntax> option
      Weights: Located<TensorLiteral> option
      Bias: Located<TensorLiteral> option
      Groups: Located<Number> option }

type private Builder(program: Program) =
    let nodes = ResizeArray<Node>()
    let diagnostics = ResizeArray<Diagnostic>()
    let counters = Dictionary<string, int>()
    let lets = Dictionary<string, LetBinding>()
    let softmaxAt = Dictionary<int, Pos>()
    let mutable context: string list = []
    let mutable tooMany = false
    let mutable visits = 0
    let active = Stack<string>()
    let mutable current: Pos = { Line = 1; Col = 1; Length = 1 }
    let warned = HashSet<int * int>()
    let positions = Dictionary<int, Pos>()

    member _.Nodes = nodes
    member _.Diagnostics = diagnostics
    member _.Lets = lets
    member _.SoftmaxAt = softmaxAt
    /// Where each node's layer is written (for diagnostics about the finished graph).
    member _.Positions = positions
    /// The blocks being expanded, innermost first (a block may not use itself).
    member _.Active = active
    member _.TooMany = tooMany
    /// The layer being checked: where a diagnostic from Add points.
    member _.Current with get () = current and set v = current <- v

    /// True the first time a warning is reported at this place (a block used many times
    /// would otherwise repeat it for every use).
    member _.FirstWarningAt (pos: Pos) = warned.Add((pos.Line, pos.Col))

    /// Attaches a node's hand-set weights (nodes are immutable records, so the node is replaced).
    member _.SetGiven (id: int) (given: GivenWeights) = nodes[id] <- { nodes[id] with Given = Some given }

    /// Counts one layer visit; false (reported once) when expansion has gone on too long.
    member b.Visit (pos: Pos) =
        visits <- visits + 1
        if tooMany then false
        elif visits > maxVisits then
            tooMany <- true
            b.Report M.ShapeTooLarge pos (sprintf "the model expands to more than %s layers" (M.thousands (int64 maxVisits)))
                (Some "check the counts of 'repeat' and how often blocks use each other")
            false
        else true

    member _.Report (entry: M.Entry) (pos: Pos) (message: string) (hint: string option) =
        // Inside a block, say which use of the block this is.
        let message =
            match context with
            | [] -> message
            | uses -> sprintf "%s (in %s)" message (String.concat ", in " uses)
        diagnostics.Add(M.make entry pos message hint)

    member _.WithContext (text: string) (f: unit -> 'a) =
        let saved = context
        context <- text :: context
        try f () finally context <- saved

    member b.Add (kind: LayerKind) (activation: Activation) (inputs: (int * Shape) list) (output: Shape) (trainable: bool) (line: int) (baseName: string) =
        if nodes.Count >= maxNodes then
            if not tooMany then
                tooMany <- true
                b.Report M.ShapeTooLarge { Line = line; Col = 1; Length = 1 } (sprintf "the model expands to more than %d layers" maxNodes)
                    (Some "check the counts of 'repeat'")
            None
        else
        match Cost.elements output with
        | Some total when total > maxTensorElements ->
            b.Report M.ShapeTooLarge (if current.Line = line then current else { Line = line; Col = 1; Length = 1 })
                (sprintf "this layer's output %O has %s values per example, more than the runtime's limit of %s for one tensor" output (M.thousands total) (M.thousands maxTensorElements))
                (Some "pool or stride earlier, use fewer channels or a smaller input")
            None
        | _ ->
            let n = match counters.TryGetValue baseName with | true, n -> n | _ -> 0
            counters[baseName] <- n + 1
            let name = if n = 0 then baseName else sprintf "%s_%d" baseName n
            let id = nodes.Count
            nodes.Add
                { Id = id; Name = name; Kind = kind; Activation = activation
                  Inputs = inputs |> List.map fst; InputShapes = inputs |> List.map snd
                  OutputShape = output; Trainable = trainable; SourceLine = line; Given = None }
            positions[id] <- if current.Line = line then current else { Line = line; Col = 1; Length = 1 }
            Some (id, output)

let private describeShape (s: Shape) =
    match s with
    | Image (h, w, c) -> sprintf "%Ox%Ox%d" h w c
    | Vector n -> sprintf "vector of %s" (M.thousands (int64 n))

let private plural n word = if n = 1L then sprintf "%d %s" n word else sprintf "%d %ss" n word

// ---- numbers ----

/// A whole number from the source, with `let` parameters substituted.
let private resolveNumber (b: Builder) (env: Map<string, Number>) (n: Located<Number>) : Number option =
    match n.Value with
    | Ref name ->
        match env.TryFind name with
        | Some v -> Some v
        | None ->
            let hint =
                match M.didYouMean name (env |> Map.keys) with
                | Some h -> Some h
                | None when env.IsEmpty -> Some "numbers here must be literal, or a parameter of the enclosing 'let' block"
                | None -> Some (sprintf "the parameters here are: %s" (String.Join(", ", env |> Map.keys)))
            b.Report M.UnboundParameter n.Pos (sprintf "'%s' is not a number nor a parameter of this block" name) hint
            None
    | v -> Some v

let private resolveInt (b: Builder) env (what: string) (minimum: int64) (n: Located<Number>) : int option =
    match resolveNumber b env n with
    | Some (Int v) when v > int64 Int32.MaxValue ->
        b.Report M.NumberTooLarge n.Pos (sprintf "%s %s is too large" what (M.thousands v)) (Some "sizes and counts must be below 2,147,483,648")
        None
    | Some (Int v) when v < minimum ->
        b.Report M.NotPositive n.Pos (sprintf "%s must be at least %d, found %d" what minimum v) None
        None
    | Some (Int v) -> Some (int v)
    | Some (Float v) ->
        b.Report M.ExpectedInteger n.Pos (sprintf "%s must be a whole number, found %s" what (Pretty.float v)) None
        None
    | Some (Ref _) | None -> None

let private resolveFloat (b: Builder) env (n: Located<Number>) : float option =
    match resolveNumber b env n with
    | Some (Int v) -> Some (float v)
    | Some (Float v) -> Some v
    | _ -> None

/// A size with one or two parts (a lone number is square); `?` is not allowed here.
let private resolvePair (b: Builder) env (what: string) (minimum: int64) (d: Dims) : (int * int) option =
    let part p =
        match p with
        | Size n -> resolveInt b env what minimum { Value = n; Pos = d.Pos }
        | Unknown ->
            b.Report M.BadDims d.Pos (sprintf "%s cannot be '?'" what) (Some "only the input's height and width may be dynamic")
            None
    match d.Value with
    | [ p ] -> part p |> Option.map (fun v -> v, v)
    | [ ph; pw ] ->
        match part ph, part pw with
        | Some h, Some w -> Some (h, w)
        | _ -> None
    | parts ->
        b.Report M.BadDims d.Pos (sprintf "%s takes one size (3) or two (3x3), found %d" what parts.Length) None
        None

// ---- options ----

let private optionName (o: LayerOption) = Pretty.layerOption o

let private allowedOptions (syntax: LayerSyntax) : string list =
    let window = [ "sN"; "same"; "valid"; "pN"; "dN" ]
    let acts = Parser.activationNames
    match syntax with
    | Conv _ -> window @ [ "nobias"; "frozen"; "weights"; "bias"; "groups" ] @ acts
    | DepthwiseConv _ | SeparableConv _ -> window @ [ "nobias"; "frozen" ] @ acts
    | Maxout _ -> []
    | NamedKernel _ | LiteralKernel _ -> window @ acts
    | Pool _ -> [ "sN"; "same"; "valid"; "pN" ]
    | Dense _ -> [ "nobias"; "frozen"; "weights"; "bias" ] @ acts
    | BatchNorm -> [ "frozen" ] @ acts
    | Residual _ -> [ "project" ] @ acts
    | Concat _ -> acts
    | Call _ | Repeat _ -> [ "frozen" ]
    | Input _ | GlobalPool _ | Flatten | Reshape _ | Dropout _ | ActivationLayer _ -> []

let private isAllowed (allowed: string list) (o: LayerOption) =
    match o with
    | Stride _ -> List.contains "sN" allowed
    | Pad _ -> List.contains "pN" allowed
    | Dilation _ -> List.contains "dN" allowed
    | Activation _ -> List.contains "relu" allowed
    | PadSame -> List.contains "same" allowed
    | PadValid -> List.contains "valid" allowed
    | NoBias -> List.contains "nobias" allowed
    | Frozen -> true // any layer may be frozen; on a layer without parameters it changes nothing
    | Project -> List.contains "project" allowed
    | Weights _ -> List.contains "weights" allowed
    | BiasValues _ -> List.contains "bias" allowed
    | Groups _ -> List.contains "groups" allowed
    | UnknownOption _ -> false

let private layerWord (syntax: LayerSyntax) =
    match syntax with
    | Input _ -> "input" | Conv _ -> "conv" | NamedKernel n -> n | LiteralKernel _ -> "kernel"
    | DepthwiseConv _ -> "dwconv" | SeparableConv _ -> "sepconv" | Maxout _ -> "maxout"
    | Pool (MaxPool, _) -> "maxpool" | Pool (AvgPool, _) -> "avgpool" | Pool (MinPool, _) -> "minpool"
    | GlobalPool _ -> "global pool" | Dense _ -> "dense" | Flatten -> "flatten" | Reshape _ -> "reshape"
    | Dropout _ -> "dropout" | BatchNorm -> "batchnorm" | ActivationLayer a -> Pretty.activation a
    | Repeat _ -> "repeat" | Residual _ -> "residual" | Concat _ -> "concat" | Call (n, _) -> n

let private readOptions (b: Builder) (layer: Layer) : Options =
    let allowed = allowedOptions layer.Syntax
    let word = layerWord layer.Syntax
    let mutable result =
        { Stride = None; Padding = None; Dilation = None; NoBias = false; Frozen = false; Project = false; Activation = None
          Weights = None; Bias = None; Groups = None }
    let twice (o: Located<LayerOption>) (kind: string) =
        b.Report M.DuplicateOption o.Pos (sprintf "'%s' gives %s a second %s" (optionName o.Value) word kind) (Some "keep one of them")
    // An unknown layer (CNN002, often Keras's `Dense 10 softmax`) has no options to judge.
    let unknownLayer = match layer.Syntax with Call (name, _) -> not (b.Lets.ContainsKey name) | _ -> false
    for o in (if unknownLayer then [] else layer.Options) do
        match o.Value with
        | UnknownOption w ->
            let hint =
                if List.contains w Parser.layerKeywords then
                    Some (sprintf "'%s' is a layer: separate layers with ';' or a new line" w)
                else
                    M.kerasOrDidYouMean w (allowed |> List.filter (fun a -> not (a.EndsWith("N", StringComparison.Ordinal))))
                    |> Option.orElse (
                        if allowed.IsEmpty then Some (sprintf "%s takes no options" word)
                        else Some (sprintf "%s takes: %s" word (String.Join(", ", allowed))))
            b.Report M.UnknownOption o.Pos (sprintf "'%s' is not an option of %s" w word) hint
        | v when not (isAllowed allowed v) ->
            let hint = if allowed.IsEmpty then Some (sprintf "%s takes no options" word) else Some (sprintf "%s takes: %s" word (String.Join(", ", allowed)))
            b.Report M.NotAnOption o.Pos (sprintf "'%s' is not an option of %s" (optionName v) word) hint
        | Stride d -> if result.Stride.IsSome then twice o "stride" else result <- { result with Stride = Some d }
        | PadSame | PadValid | Pad _ -> if result.Padding.IsSome then twice o "padding" else result <- { result with Padding = Some o }
        | Dilation d -> if result.Dilation.IsSome then twice o "dilation" else result <- { result with Dilation = Some d }
        | NoBias -> result <- { result with NoBias = true }
        | Frozen -> result <- { result with Frozen = true }
        | Project -> result <- { result with Project = true }
        | Weights t -> if result.Weights.IsSome then twice o "set of weights" else result <- { result with Weights = Some { Value = t; Pos = o.Pos } }
        | BiasValues t -> if result.Bias.IsSome then twice o "bias" else result <- { result with Bias = Some { Value = t; Pos = o.Pos } }
        | Groups n -> if result.Groups.IsSome then twice o "group count" else result <- { result with Groups = Some n }
        | Activation a ->
            if result.Activation.IsSome then twice o "activation"
            else result <- { result with Activation = Some { Value = a; Pos = o.Pos } }
    result

let private activation (b: Builder) env (a: ActivationSyntax) : Activation =
    let alpha (n: Located<Number> option) fallback =
        n |> Option.bind (resolveFloat b env) |> Option.defaultValue fallback
    match a with
    | ActivationSyntax.Relu -> Activation.Relu
    | ActivationSyntax.Sigmoid -> Activation.Sigmoid
    | ActivationSyntax.Tanh -> Activation.Tanh
    | ActivationSyntax.Softmax -> Activation.Softmax
    | ActivationSyntax.Linear -> Activation.Linear
    | ActivationSyntax.Elu n -> Activation.Elu (alpha n 1.0) // Keras: alpha=1.0
    | ActivationSyntax.LeakyRelu n -> Activation.LeakyRelu (alpha n 0.3) // Keras: negative_slope=0.3

let private optionActivation (b: Builder) env (opts: Options) =
    match opts.Activation with
    | Some a -> activation b env a.Value
    | None -> Activation.Linear

// ---- windows (convolution and pooling) ----

type private Axis = { N: Dim; K: int; S: int; D: int }

/// Resolve one axis: padding per side and output size; errors are returned, not reported.
let private axis (mode: PaddingMode) (explicitPad: int) (a: Axis) : Result<int * int * Dim, int64 * int64> =
    let kEff = Shapes.effectiveKernel (int64 a.K) (int64 a.D)
    match a.N with
    | Dim.Dynamic ->
        let p = if mode = Explicit then explicitPad else 0
        Ok (p, p, Dim.Dynamic)
    | Dim.Known n ->
        let n = int64 n
        let before, after =
            match mode with
            | Valid -> 0L, 0L
            | Explicit -> int64 explicitPad, int64 explicitPad
            | Same -> Shapes.samePadding n kEff (int64 a.S)
        let out = Shapes.outputSize n (before + after) kEff (int64 a.S)
        if out < 1L || kEff > n + before + after then Result.Error (out, kEff)
        elif out > maxTensorElements || before > maxTensorElements || after > maxTensorElements then Result.Error (out, kEff)
        else Ok (int before, int after, Dim.Known (int out))

let private formula (n: int) (padTotal: int64) (k: int) (d: int) (s: int) (out: int64) =
    let kText = if d = 1 then string k else sprintf "%d (k = %d(%d-1)+1 with dilation)" (Shapes.effectiveKernel (int64 k) (int64 d)) d k
    let pText = if padTotal % 2L = 0L then sprintf "2*%d" (padTotal / 2L) else string padTotal
    sprintf "out = floor((%d + %s - %s)/%d) + 1 = %d" n pText kText s out

type private WindowSpec =
    { Kernel: int * int; Stride: int * int; Dilation: int * int; Mode: PaddingMode; Pad: int * int }

/// Apply a window to an image shape; reports (with the formula) when it does not fit,
/// and warns when the stride leaves rows or columns uncovered.
let private window (b: Builder) (pos: Pos) (warnAt: Pos) (what: string) (isPool: bool) (input: Shape) (spec: WindowSpec) : (Window * Dim * Dim) option =
    match input with
    | Vector n ->
        b.Report M.NeedsImage pos (sprintf "%s needs an image (HxWxC) but gets a vector of %s" what (M.thousands (int64 n)))
            (Some "place it before flatten/dense, or use 'reshape HxWxC' first")
        None
    | Image (h, w, _) ->
        let (kh, kw), (sh, sw), (dh, dw), (ph, pw) = spec.Kernel, spec.Stride, spec.Dilation, spec.Pad
        let rh = axis spec.Mode ph { N = h; K = kh; S = sh; D = dh }
        let rw = axis spec.Mode pw { N = w; K = kw; S = sw; D = dw }
        match rh, rw with
        | Ok (top, bottom, oh), Ok (left, right, ow) ->
            let win =
                { KernelH = kh; KernelW = kw; StrideH = sh; StrideW = sw; DilationH = dh; DilationW = dw
                  Padding = { Top = top; Bottom = bottom; Left = left; Right = right }; PaddingMode = spec.Mode }
            // The seeds' integer-output check: (n + 2p - k) mod s rows are never covered. Only
            // a real loss is reported: not when the uncovered rows are padding, nor when they
            // are no more than the gap a stride wider than the kernel skips between every two
            // windows anyway (a 1x1 stride-2 shortcut); and once per place in the file.
            if spec.Mode <> Same then
                let left n k d s p =
                    match n with
                    | Dim.Known n ->
                        let kEff = Shapes.effectiveKernel (int64 k) (int64 d)
                        let rem = Shapes.uncovered (int64 n) (int64 (2 * p)) kEff (int64 s)
                        if rem - int64 p > max 0L (int64 s - kEff) then rem else 0L
                    | Dim.Dynamic -> 0L
                let lh, lw = left h kh dh sh ph, left w kw dw sw pw
                if (lh > 0L || lw > 0L) && b.FirstWarningAt warnAt then
                    let rows = if lh > 0L then [ plural lh "row" ] else []
                    let cols = if lw > 0L then [ plural lw "column" ] else []
                    let n = match (if lh > 0L then h else w) with Dim.Known n -> n | Dim.Dynamic -> 0
                    let k, s, p, rem = if lh > 0L then kh, sh, ph, lh else kw, sw, pw, lw
                    b.Report M.UncoveredPixels warnAt
                        (sprintf "%s on a %Ox%O input leaves the last %s never covered: (%d + 2*%d - %d) mod %d = %d"
                            what h w (String.Join(" and ", rows @ cols)) n p k s rem)
                        (Some "use padding 'same', or a size where (n + 2p - k) is divisible by the stride")
            Some (win, oh, ow)
        | _ ->
            let failing =
                [ match h, rh with Dim.Known n, Result.Error (out, _) -> yield "height", n, kh, dh, sh, ph, out | _ -> ()
                  match w, rw with Dim.Known n, Result.Error (out, _) -> yield "width", n, kw, dw, sw, pw, out | _ -> () ]
            let _, n, k, d, s, p, out = List.head failing
            let padTotal = match spec.Mode with Explicit -> 2L * int64 p | _ -> 0L
            let largest (n: int) (p: int) (d: int) = (int64 n + 2L * int64 p - 1L) / int64 d + 1L
            let hint =
                if isPool then
                    Some (sprintf "use a pool of at most %dx%d, or padding 'same'" (largest (match h with Dim.Known n -> n | _ -> kh) ph 1) (largest (match w with Dim.Known n -> n | _ -> kw) pw 1))
                else
                    let kmax = failing |> List.map (fun (_, n, _, d, _, p, _) -> largest n (if spec.Mode = Explicit then p else 0) d) |> List.min
                    Some (sprintf "use padding 'same' or a kernel of at most %d" kmax)
            let entry = if isPool then M.PoolTooLarge else M.ConvTooSmall
            if out > maxTensorElements then
                b.Report M.ShapeTooLarge pos
                    (sprintf "%s on a %Ox%O input would be %s wide: %s" what h w (M.thousands out) (formula n padTotal k d s out))
                    (Some "check the padding and the input size")
                None
            else
            let message =
                if isPool then
                    sprintf "%s window %dx%d is larger than its %Ox%O input: %s" what kh kw h w (formula n padTotal k d s out)
                else
                    sprintf "kernel %dx%d on a %Ox%O input gives no output: %s" kh kw h w (formula n padTotal k d s out)
            b.Report entry pos message hint
            None

let private windowSpec (b: Builder) env (kernel: int * int) (defaultStride: int * int) (opts: Options) : WindowSpec option =
    let stride = opts.Stride |> Option.map (resolvePair b env "stride" 1L)
    let dilation = opts.Dilation |> Option.map (resolvePair b env "dilation" 1L)
    let mode, pad =
        match opts.Padding with
        | None -> Valid, Some (0, 0)
        | Some { Value = PadSame } -> Same, Some (0, 0)
        | Some { Value = PadValid } -> Valid, Some (0, 0)
        | Some { Value = Pad d } -> Explicit, resolvePair b env "padding" 0L d
        | Some _ -> Valid, Some (0, 0)
    match stride, dilation, pad with
    | Some None, _, _ | _, Some None, _ | _, _, None -> None
    | s, d, Some p ->
        Some
            { Kernel = kernel; Stride = s |> Option.flatten |> Option.defaultValue defaultStride
              Dilation = d |> Option.flatten |> Option.defaultValue (1, 1); Mode = mode; Pad = p }

/// Where a stride warning points: the stride option when there is one.
let private strideAt (opts: Options) (fallback: Pos) =
    match opts.Stride with
    | Some d when d.Pos.Line > 0 -> d.Pos
    | _ -> fallback

// ---- shapes that must be known ----

let private checkSize (b: Builder) (pos: Pos) (what: string) (count: float) =
    if count > float maxTensorElements then
        b.Report M.ShapeTooLarge pos
            (sprintf "%s would have %.4g values, more than the runtime's limit of %s for one tensor" what count (M.thousands maxTensorElements))
            (Some "check the sizes: use fewer filters or units, or pool before this layer")
        false
    else true

/// A channel count computed from others (concatenation, a fixed kernel bank), checked
/// before it is narrowed to the graph's 32-bit size.
let private channelCount (b: Builder) (pos: Pos) (what: string) (c: int64) : int option =
    if c > maxTensorElements then
        b.Report M.ShapeTooLarge pos (sprintf "%s would have %s channels" what (M.thousands c)) (Some "use fewer channels")
        None
    else Some (int c)

/// A lower bound on the layers a list expands to (a `repeat` count given by a parameter
/// counts once), saturating, so that expansion is refused before it starts.
let private expandedSize (lets: Dictionary<string, LetBinding>) (ls: Layer list) : int64 =
    let cap = 1L <<< 50
    let sat (v: int64) = min v cap
    let mul (a: int64) (c: int64) = if a = 0L || c = 0L then 0L elif a > cap / c then cap else sat (a * c)
    let memo = Dictionary<string, int64>()
    let visiting = HashSet<string>()
    let rec size (ls: Layer list) = ls |> List.fold (fun acc l -> sat (acc + one l)) 0L
    and one (l: Layer) =
        match l.Syntax with
        | Repeat (count, body) ->
            let n = match count.Value with Int n when n > 0L -> n | _ -> 1L
            mul n (size body)
        | Residual (body, shortcut) -> sat (size body + (shortcut |> Option.map size |> Option.defaultValue 1L) + 1L)
        | SeparableConv _ -> 2L
        | Concat branches -> branches |> List.fold (fun acc br -> sat (acc + size br)) 1L
        | Call (name, _) ->
            match memo.TryGetValue name, lets.TryGetValue name with
            | (true, n), _ -> n
            | _, (true, binding) when visiting.Add name ->
                let n = size binding.Body
                visiting.Remove name |> ignore
                memo[name] <- n
                n
            | _ -> 1L
        | _ -> 1L
    size ls

let private knownElements (b: Builder) (pos: Pos) (what: string) (shape: Shape) : int option =
    match shape with
    | Vector n -> Some n
    | Image (Dim.Known h, Dim.Known w, c) ->
        let total = int64 h * int64 w * int64 c
        if total > int64 Int32.MaxValue then
            b.Report M.ShapeTooLarge pos (sprintf "%s on a %dx%dx%d input would have %s values" what h w c (M.thousands total)) None
            None
        else Some (int total)
    | Image _ ->
        b.Report M.DynamicFlatten pos (sprintf "%s needs a fixed size, but its input is %s" what (describeShape shape))
            (Some "end a fully-convolutional model with a 1x1 conv and 'globalavgpool' (or 'globalmaxpool') instead")
        None

// ---- hand-set weights ----

/// A literal's sizes, outermost first; or the first entry whose size differs from its
/// siblings' (with its position).
let rec private literalShape (t: Located<TensorLiteral>) : Result<int list, Pos * string> =
    match t.Value with
    | Scalar _ -> Ok []
    | Items [] -> Result.Error (t.Pos, "an empty list has no values")
    | Items items ->
        let shapes = items |> List.map literalShape
        match shapes |> List.tryPick (function Result.Error e -> Some e | Ok _ -> None) with
        | Some e -> Result.Error e
        | None ->
            let shapes = shapes |> List.map (function Ok s -> s | Result.Error _ -> [])
            let text (s: string list) = if List.isEmpty s then "a number" else String.Join("x", s)
            match shapes |> List.tryFindIndex (fun s -> s <> shapes.Head) with
            | Some i -> Result.Error (items[i].Pos, sprintf "this entry is %s but the first is %s" (text (List.map string shapes[i])) (text (List.map string shapes.Head)))
            | None -> Ok (items.Length :: shapes.Head)

let rec private literalValues (t: TensorLiteral) =
    match t with
    | Scalar v -> [ v ]
    | Items items -> items |> List.collect (fun i -> literalValues i.Value)

/// A value the runtime cannot hold: the engines keep weights as float32, so 1e39, finite as a
/// double, would train and export as infinity.
let private notFloat32 (v: float) = Double.IsNaN v || Double.IsInfinity v || abs v > float Single.MaxValue

let private notFloat32Message = "the weights must be finite numbers of at most 3.4e38 in size (float32)"

/// The shape a literal must have: the full one, with any level of size 1 (one filter, one
/// channel, a 1x1 kernel's rows and columns) left out or kept: the values' order is the same.
let private accepts (full: int list) (_inner: int) (shape: int list) =
    let sizes = List.filter (fun n -> n <> 1)
    sizes shape = sizes full

/// A kernel and bias written in the file, checked against the layer's sizes and turned into
/// the engines' layouts. `full` is the literal's layout (conv: filters x channels x kh x kw;
/// dense: units x inputs); `toEngine` maps a literal index (row-major) to the engine's.
let private given (b: Builder) (opts: Options) (what: string) (full: int list) (inner: int) (layout: string) (toEngine: int -> int) (biasCount: int) (hasBias: bool) : GivenWeights option option =
    let sizes (s: int list) = String.Join("x", s |> List.map string)
    let kernel =
        opts.Weights |> Option.map (fun w ->
            match literalShape w with
            | Result.Error (pos, message) ->
                b.Report M.BadWeights pos (sprintf "the weights are not rectangular: %s" message) (Some "every row of a matrix has the same length")
                None
            | Ok shape when not (accepts full inner shape) ->
                b.Report M.BadWeights w.Pos
                    (sprintf "%s takes weights of %s (%s), found %s" what (sizes full) layout (if shape.IsEmpty then "one number" else sizes shape))
                    (Some (sprintf "write %s; levels of size 1 may be left out" layout))
                None
            | Ok _ ->
                let values = literalValues w.Value |> Array.ofList
                match values |> Array.tryFind notFloat32 with
                | Some v -> b.Report M.BadWeights w.Pos (sprintf "%s, found %g" notFloat32Message v) None; None
                | None ->
                    let engine = Array.zeroCreate values.Length
                    values |> Array.iteri (fun i v -> engine[toEngine i] <- v)
                    Some engine)
    let bias =
        opts.Bias |> Option.map (fun t ->
            if not hasBias then
                b.Report M.BadWeights t.Pos (sprintf "%s has 'nobias' and a bias" what) (Some "keep one of them")
                None
            else
            match literalShape t with
            | Ok ([] | [ _ ]) when literalValues t.Value |> List.exists notFloat32 ->
                b.Report M.BadWeights t.Pos (sprintf "%s, found %g" notFloat32Message (literalValues t.Value |> List.find notFloat32)) None
                None
            | Ok [] -> Some (Array.create biasCount (literalValues t.Value).Head)
            | Ok [ n ] when n = biasCount -> Some (literalValues t.Value |> Array.ofList)
            | Ok shape ->
                b.Report M.BadWeights t.Pos (sprintf "%s takes %d bias value%s, found %s" what biasCount (if biasCount = 1 then "" else "s") (sizes shape))
                    (Some (sprintf "write one number for all, or a list of %d: bias [%s]" biasCount (String.Join(" ", List.replicate (min biasCount 4) "0") + (if biasCount > 4 then " ..." else ""))))
                None
            | Result.Error (pos, message) -> b.Report M.BadWeights pos message None; None)
    match kernel, bias with
    | Some None, _ | _, Some None -> None // reported
    | None, None -> Some None
    | None, Some _ ->
        b.Report M.BadWeights opts.Bias.Value.Pos (sprintf "%s has a hand-set bias but random weights" what)
            (Some "give its weights too: weights [[...]]")
        None
    | Some (Some k), bias -> Some (Some { Kernel = k; Bias = bias |> Option.flatten })

// ---- layers ----

/// A learned convolution node (conv, dwconv, either half of sepconv): window, groups, the
/// kernel's size limit and hand-set weights. `filters` None: an earlier error, reported.
let private convolution (b: Builder) env (opts: Options) (l: Layer) (flow: Flow) (filters: int option) (filtersPos: Pos)
                        (kernel: Dims) (groups: int) (bias: bool) (act: Activation) (name: string) (allowGiven: bool) : Flow =
    let k = resolvePair b env "the kernel size" 1L kernel
    let spec = k |> Option.bind (fun k -> windowSpec b env k (1, 1) opts)
    let pos = l.Pos
    let what = match l.Syntax with DepthwiseConv _ -> "dwconv" | SeparableConv _ -> "sepconv" | LiteralKernel _ -> "kernel" | _ -> "conv"
    match flow, filters, spec with
    | Some (id, shape), Some f, Some spec ->
        let cin = Cost.channels shape
        let groupsAt = opts.Groups |> Option.map (fun g -> g.Pos) |> Option.defaultValue pos
        if groups > 1 && (cin % groups <> 0 || f % groups <> 0) then
            let which = if cin % groups <> 0 then sprintf "its %d input channels" cin else sprintf "its %d filters" f
            b.Report M.NotDivisible groupsAt (sprintf "%d groups do not divide %s: every group needs the same number of channels and filters" groups which)
                (Some (sprintf "use a group count that divides both %d and %d" cin f))
            None
        else
        window b pos (strideAt opts pos) what false shape spec
        |> Option.bind (fun (win, oh, ow) ->
            let cg = cin / groups
            let kh, kw = spec.Kernel
            if checkSize b filtersPos "this conv's kernel" (float kh * float kw * float cg * float f) then
                // Written filters x channels (of the filter's group) x rows x columns; held HWIO.
                let toEngine i =
                    let x, i = i % kw, i / kw
                    let y, i = i % kh, i / kh
                    let ci, fi = i % cg, i / cg
                    ((y * kw + x) * cg + ci) * f + fi
                let layout = sprintf "one %dx%d matrix per filter%s" kh kw (if cg > 1 then " and input channel, filters outermost" else "")
                let weights =
                    if allowGiven then given b opts (sprintf "conv %d %dx%d on %d channel%s" f kh kw cg (if cg = 1 then "" else "s")) [ f; cg; kh; kw ] 2 layout toEngine f bias
                    else Some None
                match weights with
                | None -> None
                | Some weights ->
                    let kind = LayerKind.Conv { Filters = f; Window = win; Bias = bias; Groups = groups }
                    let result = b.Add kind act [ id, shape ] (Image (oh, ow, f)) (not opts.Frozen) pos.Line name
                    match result with
                    | Some (nid, _) ->
                        weights |> Option.iter (b.SetGiven nid)
                        match opts.Activation with
                        | Some { Value = ActivationSyntax.Softmax; Pos = p } when act = Activation.Softmax -> b.SoftmaxAt[nid] <- p
                        | _ -> ()
                    | None -> ()
                    result
            else None)
    | _ -> None

let rec private layer (b: Builder) (env: Map<string, Number>) (flow: Flow) (l: Layer) : Flow =
    if not (b.Visit l.Pos) then None else
    b.Current <- l.Pos
    let opts = readOptions b l
    let line = l.Pos.Line
    let act = optionActivation b env opts
    let trainable = not opts.Frozen
    let add kind activation inputs output name = b.Add kind activation inputs output trainable line name
    let addMany kind activation inputs output name =
        let result = add kind activation inputs output name
        match opts.Activation, result with
        | Some { Value = ActivationSyntax.Softmax; Pos = p }, Some (id, _) -> b.SoftmaxAt[id] <- p
        | _ -> ()
        result
    let addOne kind activation (input: int * Shape) output name = addMany kind activation [ input ] output name
    let pos = l.Pos
    match l.Syntax with
    | Input _ ->
        b.Report M.MisplacedInput pos "'input' may only be the first layer" (Some "a model has one input; remove this line")
        flow
    | Conv (filters, kernel) ->
        let f = resolveInt b env "the number of filters" 1L filters
        let groups = opts.Groups |> Option.map (resolveInt b env "the group count" 1L)
        match groups with
        | Some None -> None
        | _ ->
        let groups = groups |> Option.flatten |> Option.defaultValue 1
        convolution b env opts l flow f filters.Pos kernel groups (not opts.NoBias) act "conv2d" true
    | DepthwiseConv kernel ->
        // Keras's DepthwiseConv2D (depth_multiplier 1): one kernel per input channel.
        let c = flow |> Option.map (fun (_, shape) -> Cost.channels shape)
        convolution b env opts l flow c l.Pos kernel (defaultArg c 1) (not opts.NoBias) act "depthwise_conv2d" false
    | SeparableConv (filters, kernel) ->
        // Keras's SeparableConv2D: a depthwise kernel (no bias), then a 1x1 convolution with
        // the bias and the activation; two nodes, Keras's parameter count.
        let f = resolveInt b env "the number of filters" 1L filters
        let c = flow |> Option.map (fun (_, shape) -> Cost.channels shape)
        let depthwise = convolution b env { opts with NoBias = true } l flow c l.Pos kernel (defaultArg c 1) false Activation.Linear "separable_conv2d_depthwise" false
        let pointwise = { Syntax = Conv (filters, { Value = [ Size (Int 1L) ]; Pos = kernel.Pos }); Options = []; Pos = l.Pos }
        convolution b env { opts with Stride = None; Padding = None; Dilation = None } pointwise depthwise f filters.Pos
            { Value = [ Size (Int 1L) ]; Pos = kernel.Pos } 1 (not opts.NoBias) act "separable_conv2d" false
    | Maxout pieces ->
        match flow, resolveInt b env "the number of pieces" 1L pieces with
        | Some (id, (Image (h, w, c) as shape)), Some k ->
            if c % k <> 0 then
                b.Report M.NotDivisible pieces.Pos (sprintf "maxout %d on %d channels: %d is not divisible by %d" k c c k)
                    (Some (sprintf "use a number of pieces that divides %d, or give the layer before %d channels" c ((c + k - 1) / k * k)))
                None
            else addOne (LayerKind.Maxout k) Activation.Linear (id, shape) (Image (h, w, c / k)) "maxout"
        | Some (id, (Vector n as shape)), Some k ->
            if n % k <> 0 then
                b.Report M.NotDivisible pieces.Pos (sprintf "maxout %d on %d values: %d is not divisible by %d" k n n k) None
                None
            else addOne (LayerKind.Maxout k) Activation.Linear (id, shape) (Vector (n / k)) "maxout"
        | _ -> None
    | LiteralKernel t when (match literalShape t with Ok [ _; _; _ ] -> true | _ -> false) ->
        // One matrix per input channel, summed into one output channel: a convolution with one
        // filter whose kernel is the literal, frozen and without bias, so that the runtime
        // needs no layer of its own for it (a named or 2-D kernel is depthwise instead).
        let c, kh, kw = match literalShape t with Ok [ c; kh; kw ] -> c, kh, kw | _ -> 0, 0, 0
        match flow with
        | Some (_, (Image (_, _, cin) as shape)) when cin <> c ->
            b.Report M.BadWeights t.Pos
                (sprintf "this kernel has %d %s, one per input channel, but its input %s has %s" c (if c = 1 then "matrix" else "matrices") (describeShape shape) (plural (int64 cin) "channel"))
                (Some (sprintf "write %d %dx%d matri%s, one per channel, or one matrix to apply to every channel separately" cin kh kw (if cin = 1 then "x" else "ces")))
            None
        | _ ->
            let kernel = { Value = [ Size (Int (int64 kh)); Size (Int (int64 kw)) ]; Pos = t.Pos }
            convolution b env { opts with Weights = Some t; Frozen = true; NoBias = true } l flow (Some 1) t.Pos kernel 1 false act "kernel" true
    | NamedKernel _ | LiteralKernel _ ->
        let name, kernels =
            match l.Syntax with
            | NamedKernel n -> n, Kernels.tryFind n |> Option.map Array.ofSeq
            | LiteralKernel t ->
                let example = "write it row by row, as kernel [[1 0 -1] [1 0 -1] [1 0 -1]], or one matrix per input channel, as kernel [[[1]] [[1]] [[1]]]"
                match literalShape t with
                | Ok [ _; _ ] when literalValues t.Value |> List.exists notFloat32 ->
                    b.Report M.BadKernelLiteral t.Pos
                        (sprintf "the kernel must hold finite numbers of at most 3.4e38 in size (float32), found %g" (literalValues t.Value |> List.find notFloat32)) None
                    "kernel", None
                | Ok [ _; _ ] ->
                    let rows = match t.Value with Items rows -> rows | Scalar _ -> []
                    "kernel", Some [| rows |> List.map (fun r -> literalValues r.Value |> Array.ofList) |> Array.ofList |]
                | Ok shape ->
                    b.Report M.BadKernelLiteral t.Pos
                        (sprintf "a kernel is a matrix or one matrix per input channel, found %s" (if shape.IsEmpty then "one number" else String.Join("x", shape) + " values"))
                        (Some example)
                    "kernel", None
                | Result.Error (p, message) ->
                    let message = if message.StartsWith("an empty", StringComparison.Ordinal) then "the kernel is empty" else sprintf "the kernel is not rectangular: %s" message
                    b.Report M.BadKernelLiteral p message (Some example)
                    "kernel", None
            | _ -> "kernel", None
        match flow, kernels with
        | Some (id, shape), Some ks ->
            let kh, kw = ks.[0].Length, ks.[0].[0].Length
            windowSpec b env (kh, kw) (1, 1) opts
            |> Option.bind (fun spec -> window b pos (strideAt opts pos) name false shape spec)
            |> Option.bind (fun (win, oh, ow) ->
                channelCount b pos name (int64 (Cost.channels shape) * int64 ks.Length)
                |> Option.bind (fun c -> addOne (LayerKind.FixedConv { Name = name; Kernels = ks; Window = win }) act (id, shape) (Image (oh, ow, c)) name))
        | _ -> None
    | Pool (kind, size) ->
        let k = resolvePair b env "the pool size" 1L size
        // Keras: strides default to the pool size.
        let spec = k |> Option.bind (fun k -> windowSpec b env k k opts)
        let word, kind', name =
            match kind with
            | MaxPool -> "maxpool", PoolKind.Max, "max_pooling2d"
            | AvgPool -> "avgpool", PoolKind.Average, "average_pooling2d"
            | MinPool -> "minpool", PoolKind.Min, "min_pooling2d"
        match flow, spec with
        | Some (id, shape), Some spec ->
            window b pos (strideAt opts (if size.Pos.Line > 0 then size.Pos else pos)) word true shape spec
            |> Option.bind (fun (win, oh, ow) ->
                addOne (LayerKind.Pool { Kind = kind'; Window = win }) Activation.Linear (id, shape) (Image (oh, ow, Cost.channels shape)) name)
        | _ -> None
    | GlobalPool kind ->
        let kind', name =
            match kind with
            | MaxPool -> PoolKind.Max, "global_max_pooling2d"
            | AvgPool -> PoolKind.Average, "global_average_pooling2d"
            | MinPool -> PoolKind.Min, "global_min_pooling2d"
        match flow with
        | Some (id, (Image (_, _, c) as shape)) -> addOne (LayerKind.GlobalPool kind') Activation.Linear (id, shape) (Vector c) name
        | Some (_, (Vector n)) ->
            b.Report M.NeedsImage pos (sprintf "a global pool needs an image (HxWxC) but gets a vector of %s" (M.thousands (int64 n)))
                (Some "global pools go after the convolutions, before dense layers")
            None
        | None -> None
    | Dense units ->
        let u = resolveInt b env "the number of units" 1L units
        match flow, u with
        | Some (id, shape), Some u ->
            // A dense layer after a spatial one flattens implicitly (Caffe's InnerProduct, Darknet's connected).
            let flat =
                match shape with
                | Vector _ -> Some (id, shape)
                | Image _ ->
                    knownElements b pos "dense" shape
                    |> Option.bind (fun n -> add LayerKind.Flatten Activation.Linear [ id, shape ] (Vector n) "flatten")
            flat
            |> Option.bind (fun (fid, fshape) ->
                let n = match fshape with Vector n -> n | _ -> 0
                if checkSize b units.Pos "this dense layer's weight matrix" (float n * float u) then
                    // Written one row per unit (as W x); held [in, out].
                    let toEngine i = (i % n) * u + i / n
                    let layout = sprintf "one row of %d input weight%s per unit" n (if n = 1 then "" else "s")
                    match given b opts (sprintf "dense %d on %d input%s" u n (if n = 1 then "" else "s")) [ u; n ] 1 layout toEngine u (not opts.NoBias) with
                    | None -> None
                    | Some weights ->
                        let result = addOne (LayerKind.Dense (u, not opts.NoBias)) act (fid, fshape) (Vector u) "dense"
                        match result, weights with
                        | Some (nid, _), Some g -> b.SetGiven nid g
                        | _ -> ()
                        result
                else None)
        | _ -> None
    | Flatten ->
        match flow with
        | Some (id, shape) ->
            knownElements b pos "flatten" shape |> Option.bind (fun n -> addOne LayerKind.Flatten Activation.Linear (id, shape) (Vector n) "flatten")
        | None -> None
    | Reshape target ->
        let parts =
            target.Value
            |> List.map (function
                | Size n -> resolveInt b env "a reshape size" 1L { Value = n; Pos = target.Pos }
                | Unknown ->
                    b.Report M.BadDims target.Pos "reshape sizes cannot be '?'" (Some "give the target shape in full, as 10x10x1")
                    None)
        let targetShape =
            if parts |> List.forall Option.isSome then
                match parts |> List.map Option.get with
                | [ n ] -> Some (Vector n)
                | [ h; w; c ] -> Some (Image (Dim.Known h, Dim.Known w, c))
                | other ->
                    b.Report M.BadDims target.Pos (sprintf "reshape takes HxWxC or a length, found %d sizes" other.Length) None
                    None
            else None
        match flow, targetShape with
        | Some (id, shape), Some t ->
            knownElements b pos "reshape" shape
            |> Option.bind (fun n ->
                match Cost.elements t with
                | Some m when m = int64 n -> addOne LayerKind.Reshape Activation.Linear (id, shape) t "reshape"
                | Some m ->
                    b.Report M.ReshapeMismatch target.Pos
                        (sprintf "reshape to %O needs %s values but its input %s has %s" t (M.thousands m) (describeShape shape) (M.thousands (int64 n)))
                        (Some "the product of the new sizes must equal the number of values coming in")
                    None
                | None -> None)
        | _ -> None
    | Dropout rate ->
        let r = resolveFloat b env rate
        match r with
        | Some r when r < 0.0 || r >= 1.0 ->
            b.Report M.DropoutRange rate.Pos (sprintf "dropout rate must be in [0, 1), found %s" (Pretty.number rate.Value))
                (Some "it is the fraction of units dropped: 0.25 drops a quarter")
            flow // the shape goes on unchanged, so later layers are still checked
        | Some r -> flow |> Option.bind (fun (id, shape) -> addOne (LayerKind.Dropout r) Activation.Linear (id, shape) shape "dropout")
        | None -> None
    | BatchNorm ->
        // Keras's defaults: epsilon=0.001, momentum=0.99.
        flow |> Option.bind (fun (id, shape) ->
            addOne (LayerKind.BatchNormalization { Epsilon = 0.001; Momentum = 0.99 }) act (id, shape) shape "batch_normalization")
    | ActivationLayer a ->
        let result = flow |> Option.bind (fun (id, shape) -> add LayerKind.ActivationLayer (activation b env a) [ id, shape ] shape "activation")
        match a, result with
        | ActivationSyntax.Softmax, Some (id, _) -> b.SoftmaxAt[id] <- pos
        | _ -> ()
        result
    | Repeat (count, body) ->
        match resolveInt b env "the repeat count" 1L count with
        | Some n when int64 n * expandedSize b.Lets body > int64 (maxNodes - b.Nodes.Count) ->
            // Refused before expanding: the result's size is known from the text.
            let total = int64 n * expandedSize b.Lets body
            b.Report M.ShapeTooLarge count.Pos
                (sprintf "repeat %s expands to at least %s layers, more than the limit of %s" (M.thousands (int64 n)) (M.thousands total) (M.thousands (int64 maxNodes)))
                (Some "check the counts of 'repeat'")
            None
        | Some n ->
            let mutable current = flow
            let mutable i = 1
            // After the first copy, a copy with no input (an earlier error) checks nothing new.
            while i <= n && (i = 1 || current.IsSome) && not b.TooMany do
                // Diagnostics from the body are reported once, from its first copy.
                if i = 1 then current <- layers b env current body
                else
                    let before = b.Diagnostics.Count
                    current <- layers b env current body
                    b.Diagnostics.RemoveRange(before, b.Diagnostics.Count - before)
                i <- i + 1
            current
        | None -> layers b env flow body |> ignore; None
    | Residual (body, Some shortcut) ->
        let out = layers b env flow body
        let skip = layers b env flow shortcut
        if opts.Project then
            b.Report M.ResidualMismatch pos "'project' and a written shortcut both make the shortcut" (Some "keep one of them")
            None
        else
        match out, skip with
        | Some (oid, oshape), Some (kid, kshape) when oshape = kshape -> addMany LayerKind.Add act [ oid, oshape; kid, kshape ] oshape "add"
        | Some (_, oshape), Some (_, kshape) ->
            b.Report M.ResidualMismatch pos
                (sprintf "the block ends in %s but its shortcut in %s; a residual sum needs equal shapes" (describeShape oshape) (describeShape kshape))
                (Some "make the shortcut's convolution give the block's shape (filters and stride)")
            None
        | _ -> None
    | Residual (body, None) ->
        let out = layers b env flow body
        match flow, out with
        | Some (sid, sshape), Some (oid, oshape) ->
            let skip =
                if sshape = oshape && not opts.Project then Some (sid, sshape)
                elif opts.Project then projection b pos line trainable (sid, sshape) oshape
                else
                    b.Report M.ResidualMismatch pos
                        (sprintf "the block changes the shape from %s to %s, but a residual sum needs equal shapes" (describeShape sshape) (describeShape oshape))
                        (Some "add 'project' after the block's ')' to bring the input to the new shape with a 1x1 conv")
                    None
            skip |> Option.bind (fun skip -> addMany LayerKind.Add act [ oid, oshape; skip ] oshape "add")
        | _ -> None
    | Concat branches ->
        let outs = branches |> List.map (fun br -> layers b env flow br)
        if outs |> List.forall Option.isSome then
            let outs = outs |> List.map Option.get
            let shapes = outs |> List.map snd
            let total () = shapes |> List.sumBy (Cost.channels >> int64)
            let merged =
                match shapes with
                | Image (h, w, _) :: _ when shapes |> List.forall (function Image (h', w', _) -> h' = h && w' = w | _ -> false) ->
                    channelCount b pos "the concatenation" (total ()) |> Option.map (fun c -> Image (h, w, c))
                | Vector _ :: _ when shapes |> List.forall (function Vector _ -> true | _ -> false) ->
                    channelCount b pos "the concatenation" (total ()) |> Option.map Vector
                | _ ->
                    b.Report M.ConcatMismatch pos
                        (sprintf "the branches end in %s; concatenating on channels needs equal heights and widths"
                            (String.Join(", ", shapes |> List.map describeShape)))
                        (Some "use padding 'same' in every branch, or pool them to one size")
                    None
            merged |> Option.bind (fun shape -> addMany LayerKind.Concat act outs shape "concatenate")
        else None
    | Call (name, args) ->
        match b.Lets.TryGetValue name with
        | true, binding when binding.Parameters.Length <> args.Length ->
            b.Report M.WrongArity pos
                (sprintf "'%s' takes %d argument%s, found %d" name binding.Parameters.Length (if binding.Parameters.Length = 1 then "" else "s") args.Length)
                (Some (sprintf "write: %s" (String.Join(" ", name :: (binding.Parameters |> List.map (fun p -> p.Value))))))
            None
        | true, _ when b.Active.Contains name ->
            // The stack holds the innermost block first; the cycle starts at the first use of this one.
            let chain = (List.ofSeq b.Active |> List.rev |> List.skipWhile ((<>) name)) @ [ name ]
            b.Report M.RecursiveBlock pos
                (sprintf "'%s' uses itself (%s), so it never ends" name (String.Join(" -> ", chain)))
                (Some "a block may only use blocks defined before it; write the layers out, or use 'repeat N (...)'")
            None
        | true, binding when expandedSize b.Lets binding.Body > int64 (maxNodes - b.Nodes.Count) ->
            b.Report M.ShapeTooLarge pos
                (sprintf "'%s' expands to at least %s layers, more than the limit of %s" name (M.thousands (expandedSize b.Lets binding.Body)) (M.thousands (int64 maxNodes)))
                (Some "check the counts of 'repeat' and how often blocks use each other")
            None
        | true, binding ->
            let values = args |> List.map (resolveNumber b env)
            if values |> List.forall Option.isSome then
                let env' = List.zip (binding.Parameters |> List.map (fun p -> p.Value)) (values |> List.map Option.get) |> Map.ofList
                b.Active.Push name
                try b.WithContext (sprintf "'%s' used at line %d" name line) (fun () -> layers b env' flow binding.Body)
                finally b.Active.Pop() |> ignore
            else None
        | _ ->
            let candidates = Parser.layerKeywords @ [ "let"; "train" ] @ List.ofSeq b.Lets.Keys
            let hint =
                M.kerasOrDidYouMean name candidates
                |> Option.orElse (Some "define it first with 'let NAME = ...', or see docs/language.md for the layers")
            b.Report M.UnknownLayer pos (sprintf "unknown layer or block '%s'" name) hint
            None

and private layers (b: Builder) env (flow: Flow) (ls: Layer list) : Flow =
    ls |> List.fold (layer b env) flow

/// A 1x1 conv (or, on vectors, a dense layer) that brings a residual's input to the block's shape.
and private projection (b: Builder) (pos: Pos) (line: int) trainable (sid: int, sshape: Shape) (target: Shape) : Flow =
    // The smallest whole stride s with ceil(n / s) = out, if any.
    let fits (n: int) (out: int) =
        if out < 1 then None
        else
            let s = max 1L ((int64 n + int64 out - 1L) / int64 out)
            if (int64 n + s - 1L) / s = int64 out && s <= int64 (max 1 n) then Some (int s) else None
    match sshape, target with
    | Image (Dim.Known h, Dim.Known w, _), Image (Dim.Known oh, Dim.Known ow, c) ->
        match fits h oh, fits w ow with
        | Some sh, Some sw ->
            let win =
                { KernelH = 1; KernelW = 1; StrideH = sh; StrideW = sw; DilationH = 1; DilationW = 1
                  Padding = Padding.Zero; PaddingMode = Valid }
            b.Add (LayerKind.Conv { Filters = c; Window = win; Bias = true; Groups = 1 }) Activation.Linear [ sid, sshape ] target trainable line "conv2d"
        | _ ->
            b.Report M.ResidualMismatch pos
                (sprintf "no 1x1 projection with a whole stride turns %s into %s" (describeShape sshape) (describeShape target))
                (Some "make the block's output size the input size divided by its stride")
            None
    | Image (h, w, _), Image (oh, ow, c) when h = oh && w = ow ->
        let win =
            { KernelH = 1; KernelW = 1; StrideH = 1; StrideW = 1; DilationH = 1; DilationW = 1
              Padding = Padding.Zero; PaddingMode = Valid }
        b.Add (LayerKind.Conv { Filters = c; Window = win; Bias = true; Groups = 1 }) Activation.Linear [ sid, sshape ] target trainable line "conv2d"
    | Vector _, Vector n -> b.Add (LayerKind.Dense (n, true)) Activation.Linear [ sid, sshape ] target trainable line "dense"
    | _ ->
        b.Report M.ResidualMismatch pos
            (sprintf "cannot project %s onto %s" (describeShape sshape) (describeShape target))
            (Some "a residual block keeps its input's kind: image to image, vector to vector")
        None

// ---- the input ----

let private inputShape (b: Builder) (d: Dims) : Shape option =
    let part what (p: DimPart) : Dim option =
        match p with
        | Unknown -> Some Dim.Dynamic
        | Size n -> resolveInt b Map.empty what 1L { Value = n; Pos = d.Pos } |> Option.map Dim.Known
    match d.Value with
    | [ Size n ] -> resolveInt b Map.empty "the input length" 1L { Value = n; Pos = d.Pos } |> Option.map Vector
    | [ h; w; Size c ] ->
        match part "the input height" h, part "the input width" w, resolveInt b Map.empty "the channel count" 1L { Value = c; Pos = d.Pos } with
        | Some h, Some w, Some c -> Some (Image (h, w, c))
        | _ -> None
    | [ _; _; Unknown ] ->
        b.Report M.BadDims d.Pos "the number of channels cannot be '?'" (Some "only height and width may be dynamic: input ?x?x1")
        None
    | parts ->
        b.Report M.BadDims d.Pos (sprintf "input takes HxWxC (as 28x28x1) or a vector length (as 784), found %d sizes" parts.Length)
            (Some "write 28x28x1 for a one-channel image")
        None

// ---- the training section ----

let private training (b: Builder) (section: Located<Setting list> option) : Training =
    let settings = section |> Option.map (fun s -> s.Value) |> Option.defaultValue []
    let keys =
        [ "data"; "optimizer"; "lr"; "momentum"; "nesterov"; "beta1"; "beta2"; "epsilon"; "rho"; "loss"; "epochs"
          "batch"; "validation"; "seed"; "weightdecay"; "augment"; "schedule"; "earlystop"
          "labelsmoothing"; "warmup"; "nodecay"; "ema"; "tta"; "normalize" ]
    let seen = Dictionary<string, Setting>()
    for s in settings do
        let k = s.Key.Value
        if not (List.contains k keys) then
            b.Report M.UnknownSetting s.Key.Pos (sprintf "unknown training setting '%s'" k)
                (M.kerasOrDidYouMean k keys |> Option.orElse (Some (sprintf "the settings are: %s" (String.Join(", ", keys)))))
        elif seen.ContainsKey k then
            b.Report M.DuplicateSetting s.Key.Pos (sprintf "'%s' is set twice (first at line %d)" k seen[k].Key.Pos.Line) (Some "keep one of them")
        else seen[k] <- s
    let bad (s: Setting) (message: string) (hint: string) =
        let pos = match s.Values with v :: _ -> v.Pos | [] -> s.Key.Pos
        b.Report M.BadSetting pos message (Some hint)
    let single (k: string) (read: Setting -> Located<SettingValue> -> 'a option) : 'a option =
        match seen.TryGetValue k with
        | true, s ->
            match s.Values with
            | [ v ] -> read s v
            | _ ->
                bad s (sprintf "'%s' takes one value, found %d" k s.Values.Length) (sprintf "write: %s VALUE" k)
                None
        | _ -> None
    let numberIn k (lo: float) (hi: float) (loOpen: bool) (hiOpen: bool) : float option =
        single k (fun s v ->
            let ok x = (if loOpen then x > lo else x >= lo) && (if hiOpen then x < hi else x <= hi)
            match v.Value with
            | Num (Int i) when ok (float i) -> Some (float i)
            | Num (Float f) when ok f -> Some f
            | _ ->
                let range = sprintf "%s%s, %s%s" (if loOpen then "(" else "[") (Pretty.float lo) (if Double.IsPositiveInfinity hi then "inf" else Pretty.float hi) (if hiOpen then ")" else "]")
                bad s (sprintf "'%s' must be a number in %s, found %s" k range (Pretty.settingValue v.Value)) (sprintf "for example: %s 0.1" k)
                None)
    let wholeAtLeast k (lo: int64) : int option =
        single k (fun s v ->
            match v.Value with
            | Num (Int i) when i >= lo && i <= int64 Int32.MaxValue -> Some (int i)
            | _ ->
                bad s (sprintf "'%s' must be a whole number of at least %d, found %s" k lo (Pretty.settingValue v.Value)) (sprintf "for example: %s 10" k)
                None)
    let choice k (options: (string * 'a) list) : 'a option =
        single k (fun s v ->
            match v.Value with
            | Word w when options |> List.exists (fun (n, _) -> n = w) -> options |> List.find (fun (n, _) -> n = w) |> snd |> Some
            | other ->
                let text = Pretty.settingValue other
                let names = options |> List.map fst
                let hint = M.kerasOrDidYouMean text names |> Option.defaultValue (sprintf "one of: %s" (String.Join(", ", names)))
                bad s (sprintf "'%s' cannot be %s" k text) hint
                None)
    let data =
        single "data" (fun s v ->
            // A path is read at run time (it may not exist yet when the model is written);
            // a name must be one of the built-in sets, so that a misspelling fails here.
            let isPath (w: string) = w.Contains '/' || w.Contains '.' || w.Contains '\\'
            match v.Value with
            | Word w | Text w when isPath w || List.contains (w.Trim().ToLowerInvariant()) M.dataSetNames -> Some w
            | Word w | Text w ->
                let names = String.Join(", ", M.dataSetNames)
                let hint =
                    match M.suggest w M.dataSetNames with
                    | Some n -> sprintf "did you mean '%s'? (the data sets are %s, or a path)" n names
                    | None -> sprintf "the data sets are %s; a folder or .csv file is written as a path, as data \"./%s\"" names w
                bad s (sprintf "'%s' is not a known data set nor a path" w) hint
                None
            | Num _ -> bad s "'data' names a data set or a path" "for example: data fashion-mnist, or data \"path/to/folder\""; None)
    let inf = Double.PositiveInfinity
    let lr = numberIn "lr" 0.0 inf true false
    let momentum = numberIn "momentum" 0.0 1.0 false true
    let beta1 = numberIn "beta1" 0.0 1.0 false true
    let beta2 = numberIn "beta2" 0.0 1.0 false true
    let epsilon = numberIn "epsilon" 0.0 inf true false
    let rho = numberIn "rho" 0.0 1.0 false true
    let nesterov =
        match seen.TryGetValue "nesterov" with
        | true, s ->
            match s.Values with
            | [] | [ { Value = Word "true" } ] -> true
            | [ { Value = Word "false" } ] -> false
            | _ -> bad s "'nesterov' takes no value, or true or false" "write: nesterov"; false
        | _ -> false
    let optimizerName = choice "optimizer" [ "adam", "adam"; "sgd", "sgd"; "rmsprop", "rmsprop"; "adamw", "adamw" ]
    let weightDecay = numberIn "weightdecay" 0.0 inf false false
    let noDecay =
        // which tensors AdamW's weight decay leaves alone (PyTorch decays every one unless told)
        match seen.TryGetValue "nodecay" with
        | true, s ->
            let names =
                s.Values |> List.choose (fun v ->
                    match v.Value with
                    | Word ("biases" | "batchnorm" as w) -> Some w
                    | other ->
                        b.Report M.BadSetting v.Pos (sprintf "'nodecay' cannot be %s" (Pretty.settingValue other))
                            (Some (M.didYouMean (Pretty.settingValue other) [ "biases"; "batchnorm" ] |> Option.defaultValue "choose from: biases, batchnorm"))
                        None)
            if s.Values.IsEmpty then bad s "'nodecay' names the tensors weight decay leaves alone" "for example: nodecay biases batchnorm"
            names |> List.distinct
        | _ -> []
    let misplaced (key: string) (owners: string) =
        if seen.ContainsKey key then
            let s = seen[key]
            b.Report M.BadSetting s.Key.Pos (sprintf "'%s' is a setting of %s" key owners) (Some "choose that optimizer, or remove this line")
    let optimizer =
        let anyOptimizerKey = [ "lr"; "momentum"; "nesterov"; "beta1"; "beta2"; "epsilon"; "rho" ] |> List.exists seen.ContainsKey
        let name =
            match optimizerName with
            | Some n -> Some n
            | None when seen.ContainsKey "optimizer" -> None
            | None when anyOptimizerKey -> Some "adam"
            | None -> None
        if name <> Some "adamw" && seen.ContainsKey "nodecay" then
            b.Report M.BadSetting seen["nodecay"].Key.Pos "'nodecay' is a setting of adamw (the other optimizers' weight decay applies to kernels only)"
                (Some "use optimizer adamw, or remove this line")
        // Keras's defaults for each optimizer.
        match name with
        | Some "adam" ->
            misplaced "momentum" "sgd and rmsprop"; misplaced "nesterov" "sgd"; misplaced "rho" "rmsprop"
            Some (Optimizer.Adam (defaultArg lr 0.001, defaultArg beta1 0.9, defaultArg beta2 0.999, defaultArg epsilon 1e-7))
        | Some "sgd" ->
            misplaced "beta1" "adam"; misplaced "beta2" "adam"; misplaced "epsilon" "adam and rmsprop"; misplaced "rho" "rmsprop"
            Some (Optimizer.Sgd (defaultArg lr 0.01, defaultArg momentum 0.0, nesterov))
        | Some "rmsprop" ->
            misplaced "beta1" "adam"; misplaced "beta2" "adam"; misplaced "nesterov" "sgd"
            Some (Optimizer.RmsProp (defaultArg lr 0.001, defaultArg rho 0.9, defaultArg momentum 0.0, defaultArg epsilon 1e-7))
        | Some "adamw" ->
            // PyTorch's AdamW defaults: lr 0.001, betas (0.9, 0.999), eps 1e-8, weight_decay 0.01
            misplaced "momentum" "sgd and rmsprop"; misplaced "nesterov" "sgd"; misplaced "rho" "rmsprop"
            Some (Optimizer.AdamW (defaultArg lr 0.001, defaultArg beta1 0.9, defaultArg beta2 0.999, defaultArg epsilon 1e-8,
                                   defaultArg weightDecay 0.01, noDecay))
        | _ -> None
    let loss =
        choice "loss"
            [ "crossentropy", Loss.CrossEntropy; "binarycrossentropy", Loss.BinaryCrossEntropy; "bce", Loss.BinaryCrossEntropy
              "mse", Loss.MeanSquaredError; "mae", Loss.MeanAbsoluteError ]
    let augment =
        // Words, some with arguments: shift, flip, rotate, crop P [zero|reflect], cutout S; kept
        // as the runtime reads them ("crop 4 reflect", "cutout 8").
        match seen.TryGetValue "augment" with
        | true, s ->
            let allowed = [ "shift"; "flip"; "rotate"; "crop"; "cutout" ]
            let whole (v: Located<SettingValue>) = match v.Value with Num (Int i) when i >= 1L && i <= 1024L -> Some (int i) | _ -> None
            let rec read (values: Located<SettingValue> list) (acc: string list) =
                match values with
                | [] -> List.rev acc
                | { Value = Word ("shift" | "flip" | "rotate" as w) } :: rest -> read rest (w :: acc)
                | { Value = Word "crop" } as c :: rest ->
                    match rest with
                    | p :: { Value = Word ("zero" | "reflect" as mode) } :: rest' when (whole p).IsSome ->
                        read rest' ((if mode = "reflect" then sprintf "crop %d reflect" (whole p).Value else sprintf "crop %d" (whole p).Value) :: acc)
                    | p :: rest' when (whole p).IsSome -> read rest' (sprintf "crop %d" (whole p).Value :: acc)
                    | p :: rest' when (match p.Value with Num _ -> true | _ -> false) ->
                        b.Report M.BadSetting p.Pos (sprintf "'crop' pads by a whole number of pixels from 1 to 1024, found %s" (Pretty.settingValue p.Value))
                            (Some "for example: augment crop 4 (zero padding) or crop 4 reflect")
                        read rest' acc
                    | _ ->
                        b.Report M.BadSetting c.Pos "'crop' needs the padding in pixels" (Some "for example: augment crop 4 (zero padding) or crop 4 reflect")
                        read rest acc
                | { Value = Word "cutout" } as c :: rest ->
                    match rest with
                    | p :: rest' when (whole p).IsSome -> read rest' (sprintf "cutout %d" (whole p).Value :: acc)
                    | p :: rest' when (match p.Value with Num _ -> true | _ -> false) ->
                        b.Report M.BadSetting p.Pos (sprintf "'cutout' erases a square of a whole number of pixels from 1 to 1024, found %s" (Pretty.settingValue p.Value))
                            (Some "for example: augment cutout 8")
                        read rest' acc
                    | _ ->
                        b.Report M.BadSetting c.Pos "'cutout' needs the side of the square in pixels" (Some "for example: augment cutout 8")
                        read rest acc
                | v :: rest ->
                    b.Report M.BadSetting v.Pos (sprintf "'augment' cannot be %s" (Pretty.settingValue v.Value))
                        (Some (M.didYouMean (Pretty.settingValue v.Value) allowed |> Option.defaultValue "choose from: shift, flip, rotate, crop P [reflect], cutout S"))
                    read rest acc
            let names = read s.Values []
            let kind (n: string) = n.Split(' ')[0]
            names
            |> List.groupBy kind
            |> List.iter (fun (k, ns) ->
                if ns.Length > 1 then
                    let second = s.Values |> List.filter (fun v -> v.Value = Word k) |> List.tail |> List.head
                    b.Report M.BadSetting second.Pos (sprintf "'%s' is given twice in 'augment'" k) (Some "keep one of them"))
            names |> List.distinctBy kind
        | _ -> []
    let schedule =
        match seen.TryGetValue "schedule" with
        | true, s ->
            let number (v: Located<SettingValue>) = match v.Value with Num (Int i) -> Some (float i) | Num (Float f) -> Some f | _ -> None
            match s.Values |> List.map (fun v -> v.Value) with
            | [ Word "cosine" ] -> Some Schedule.Cosine
            | Word "step" :: _ ->
                match s.Values |> List.tail |> List.map number with
                | [ Some every; Some factor ] when every >= 1.0 && every = floor every && factor > 0.0 && factor <= 1.0 -> Some (Schedule.Step (int every, factor))
                | _ -> bad s "'schedule step' takes the number of epochs and a factor in (0, 1]" "for example: schedule step 10 0.5"; None
            | Word "plateau" :: _ ->
                // Keras's ReduceLROnPlateau defaults: patience 10, factor 0.1.
                match s.Values |> List.tail |> List.map number with
                | [] -> Some (Schedule.Plateau (10, 0.1))
                | [ Some p; Some factor ] when p >= 1.0 && p = floor p && factor > 0.0 && factor < 1.0 -> Some (Schedule.Plateau (int p, factor))
                | _ -> bad s "'schedule plateau' takes a patience in epochs and a factor in (0, 1)" "for example: schedule plateau 3 0.5"; None
            | Word "onecycle" :: _ ->
                // PyTorch's OneCycleLR: pct_start 0.3, cosine annealing unless `linear`
                let rest = s.Values |> List.tail
                let pct, linear, bads =
                    rest |> List.fold (fun (pct, linear, bads) v ->
                        match v.Value with
                        | Num (Float f) when f > 0.0 && f < 1.0 && pct = None -> Some f, linear, bads
                        | Word "linear" when not linear -> pct, true, bads
                        | Word "cos" -> pct, linear, bads
                        | _ -> pct, linear, v :: bads) (None, false, [])
                match List.rev bads with
                | [] -> Some (Schedule.OneCycle (defaultArg pct 0.3, linear))
                | v :: _ ->
                    b.Report M.BadSetting v.Pos (sprintf "'schedule onecycle' takes the warm-up fraction in (0, 1) and 'linear' or 'cos', found %s" (Pretty.settingValue v.Value))
                        (Some "for example: schedule onecycle, or schedule onecycle 0.25 linear")
                    None
            | _ -> bad s "'schedule' is step, cosine, plateau or onecycle" "for example: schedule cosine"; None
        | _ -> None
    let labelSmoothing =
        // Keras's CategoricalCrossentropy(label_smoothing=) and BinaryCrossentropy's: a in [0, 1]
        let a = numberIn "labelsmoothing" 0.0 1.0 false false
        match a, loss with
        | Some _, Some (Loss.MeanSquaredError | Loss.MeanAbsoluteError) ->
            bad seen["labelsmoothing"] "'labelsmoothing' applies to cross-entropy losses only" "remove it, or use loss crossentropy"
            None
        | _ -> a
    let epochs = wholeAtLeast "epochs" 1L
    let warmup =
        match wholeAtLeast "warmup" 1L, schedule with
        | Some _, Some (Schedule.OneCycle _) ->
            bad seen["warmup"] "'warmup' does not combine with 'schedule onecycle', whose first phase is a warm-up" "remove 'warmup', or set the fraction: schedule onecycle 0.2"
            None
        | Some w, _ when epochs.IsSome && w >= epochs.Value ->
            bad seen["warmup"] (sprintf "'warmup' takes %d epochs of the %d the run has" w epochs.Value) "warm up for fewer epochs than the run, as warmup 1"
            None
        | w, _ -> w
    { Data = data; Optimizer = optimizer; Loss = loss
      Epochs = epochs; BatchSize = wholeAtLeast "batch" 1L
      ValidationSplit = numberIn "validation" 0.0 1.0 false true
      Seed = single "seed" (fun s v -> match v.Value with Num (Int i) when i >= 0L && i <= int64 Int32.MaxValue -> Some (int i) | _ -> bad s "'seed' must be a whole number from 0" "for example: seed 42"; None)
      // AdamW carries its own (PyTorch's default 0.01); the others' is Keras 3's, on kernels
      WeightDecay = (match optimizer with Some (Optimizer.AdamW _) -> None | _ -> weightDecay)
      Augment = augment
      Schedule = schedule
      EarlyStopping = wholeAtLeast "earlystop" 1L
      LabelSmoothing = labelSmoothing
      Warmup = warmup
      // timm's ModelEmaV2 decay: in (0, 1), typically 0.999 or 0.9998
      Ema = numberIn "ema" 0.0 1.0 true true
      Tta =
        // "flip" and "shift N" (airbench's translated views), kept as the runtime reads them
        match seen.TryGetValue "tta" with
        | true, s ->
            let hint = "the test-time augmentations are: tta flip (the image and its mirror), tta shift 1 (also the image moved 1 pixel down-right and up-left), or both"
            let rec read (values: Located<SettingValue> list) (acc: string list) =
                match values with
                | [] -> Some (List.rev acc)
                | { Value = Word ("flip" | "shift" as w) } as v :: _ when acc |> List.exists (fun a -> a.StartsWith w) ->
                    b.Report M.BadSetting v.Pos (sprintf "'%s' is given twice in 'tta'" w) (Some "give each test-time augmentation once, for example: tta flip shift 1")
                    None
                | { Value = Word "flip" } :: rest -> read rest ("flip" :: acc)
                | { Value = Word "shift" } :: { Value = Num (Int n) } :: rest when n >= 1L && n <= 64L ->
                    read rest (sprintf "shift %d" n :: acc)
                | { Value = Word "shift" } as v :: rest ->
                    let at = match rest with p :: _ -> p.Pos | [] -> v.Pos
                    b.Report M.BadSetting at "'shift' in 'tta' needs the distance in pixels, a whole number from 1 to 64" (Some "for example: tta flip shift 1")
                    None
                | v :: _ ->
                    b.Report M.BadSetting v.Pos (sprintf "'tta' cannot be %s" (String.Join(" ", s.Values |> List.map (fun v -> Pretty.settingValue v.Value))))
                        (Some hint)
                    None
            match s.Values with
            | [] -> bad s "'tta' names the test-time augmentation" "write: tta flip, or tta flip shift 1"; []
            | values -> read values [] |> Option.defaultValue []
        | _ -> []
      Normalize =
        match seen.TryGetValue "normalize" with
        | true, s ->
            match s.Values with
            | [] | [ { Value = Word "true" } ] -> true
            | [ { Value = Word "false" } ] -> false
            | _ -> bad s "'normalize' takes no value, or true or false" "write: normalize (per-channel mean and deviation of the training images)"; false
        | _ -> false }

// ---- the whole program ----

/// The validated graph and its warnings, or every diagnostic (errors and warnings).
let check (program: Program) : Result<Graph * Diagnostic list, Diagnostic list> =
    let b = Builder(program)
    // Blocks are visible from their definition on; a block cannot use itself.
    let mutable flow: Flow = None
    let mutable sawInput = false
    let mutable firstLayer: Pos option = None
    for item in program.Items do
        match item with
        | LetItem binding ->
            let name = binding.Name.Value
            if List.contains name Parser.layerKeywords || name = "let" || name = "train" then
                b.Report M.DuplicateLet binding.Name.Pos (sprintf "'%s' is a layer name and cannot be redefined" name) (Some "choose another name")
            elif b.Lets.ContainsKey name then
                b.Report M.DuplicateLet binding.Name.Pos (sprintf "'%s' is already defined at line %d" name b.Lets[name].Name.Pos.Line) (Some "choose another name")
            else b.Lets[name] <- binding
            let dupes = binding.Parameters |> List.countBy (fun p -> p.Value) |> List.filter (fun (_, n) -> n > 1)
            for (p, _) in dupes do
                let at = binding.Parameters |> List.findBack (fun q -> q.Value = p)
                b.Report M.DuplicateLet at.Pos (sprintf "parameter '%s' is named twice" p) None
        | LayerItem l ->
            if firstLayer.IsNone then firstLayer <- Some l.Pos
            match l.Syntax with
            | Input d when not sawInput ->
                sawInput <- true
                b.Current <- l.Pos
                readOptions b l |> ignore
                flow <- inputShape b d |> Option.bind (fun shape -> b.Add LayerKind.Input Activation.Linear [] shape true l.Pos.Line "input_layer")
            | _ when not sawInput ->
                sawInput <- true
                b.Report M.MissingInput l.Pos "the model must start with its input shape"
                    (Some "add a first line such as 'input 28x28x1' (height x width x channels) or 'input 784'")
                flow <- layer b Map.empty None l
            | _ -> flow <- layer b Map.empty flow l
    if not sawInput then
        b.Report M.MissingInput (defaultArg firstLayer { Line = 1; Col = 1; Length = 1 }) "the model has no layers"
            (Some "start with 'input 28x28x1', then one layer per line")
    elif b.Nodes.Count = 1 && not (b.Diagnostics |> Seq.exists Diagnostic.isError) then
        b.Report M.EmptyModel { Line = b.Nodes[0].SourceLine; Col = 1; Length = 5 } "the model has an input but no layers" (Some "add layers after 'input', one per line")
    let settings = training b program.Training
    // Augmentations and test-time views move and mirror pixels: on a vector input they would
    // shuffle its features (Darknet-style silence is what this avoids).
    match program.Training with
    | Some section when b.Nodes.Count > 0 && (match b.Nodes[0].OutputShape with Vector _ -> true | _ -> false) ->
        let n = match b.Nodes[0].OutputShape with Vector n -> n | _ -> 0
        for setting in section.Value do
            if (setting.Key.Value = "augment" || setting.Key.Value = "tta") && not setting.Values.IsEmpty then
                b.Report M.NeedsImage setting.Key.Pos
                    (sprintf "'%s' works on images (it moves, mirrors or erases pixels), and the model's input is a vector of %s" setting.Key.Value (M.thousands (int64 n)))
                    (Some (sprintf "remove '%s', or give the model an image input such as 'input 28x28x1'" setting.Key.Value))
    // A test-time shift of the image's size or more leaves its moved views blank.
    | Some section when b.Nodes.Count > 0 ->
        match b.Nodes[0].OutputShape with
        | Image (Dim.Known h, Dim.Known w, _) ->
            let side = min h w
            for setting in section.Value do
                if setting.Key.Value = "tta" then
                    for v in setting.Values do
                        match v.Value with
                        | Num (Int d) when d >= int64 side && d <= 64L ->
                            b.Report M.BadSetting v.Pos (sprintf "a shift of %d pixels moves the %dx%d image out of view" d h w)
                                (Some (sprintf "shift by fewer than %d pixels, for example: tta flip shift 1" side))
                        | _ -> ()
        | _ -> ()
    | _ -> ()
    // Softmax must end the model when the loss is cross-entropy (the fused, stable
    // softmax-cross-entropy needs it there); shape-only layers may follow it.
    if settings.Loss = None || settings.Loss = Some Loss.CrossEntropy then
        let nodes = b.Nodes
        for KeyValue (id, pos) in b.SoftmaxAt do
            let later = nodes |> Seq.skip (id + 1) |> Seq.filter (fun n -> match n.Kind with LayerKind.Reshape | LayerKind.Flatten | LayerKind.Dropout _ -> false | _ -> true)
            match Seq.tryHead later with
            | Some next ->
                b.Report M.SoftmaxNotLast pos
                    (sprintf "softmax is followed by %s (line %d); with cross-entropy it must be the last layer" next.Name next.SourceLine)
                    (Some "move softmax to the last layer, or use relu here")
            | None -> ()
    let nodes = List.ofSeq b.Nodes
    // Cross-entropy reads the outputs as probabilities: after a layer without softmax it
    // clamps raw values and trains on them silently. Said where the file means to train (it
    // has a train section) and has something to train (not fixed kernels alone); a model
    // written to be applied or explained is left alone.
    if program.Training.IsSome && (settings.Loss = None || settings.Loss = Some Loss.CrossEntropy) && not (b.Diagnostics |> Seq.exists Diagnostic.isError) then
        let last = nodes |> List.rev |> List.tryFind (fun n -> match n.Kind with LayerKind.Reshape | LayerKind.Flatten | LayerKind.Dropout _ -> false | _ -> true)
        let learns = nodes |> List.exists (fun n -> fst (Cost.parameters n) > 0L)
        match last with
        | Some n when learns && n.Kind <> LayerKind.Input && n.Activation <> Activation.Softmax ->
            let at = match b.Positions.TryGetValue n.Id with | true, p -> p | _ -> { Line = n.SourceLine; Col = 1; Length = 1 }
            let loss = if settings.Loss.IsNone then "cross-entropy (the default loss)" else "cross-entropy"
            let outputs = Cost.elements n.OutputShape
            if n.Activation = Activation.Sigmoid && outputs = Some 1L then
                b.Report M.NoSoftmax at
                    (sprintf "%s on one sigmoid output: cross-entropy expects one probability per class" loss)
                    (Some "for a yes/no output, set 'loss binarycrossentropy' in the train section")
            else
                let act =
                    match n.Activation with
                    | Activation.Linear -> "linear" | Activation.Relu -> "relu" | Activation.Sigmoid -> "sigmoid"
                    | Activation.Tanh -> "tanh" | Activation.Elu _ -> "elu" | Activation.LeakyRelu _ -> "leakyrelu" | Activation.Softmax -> "softmax"
                b.Report M.NoSoftmax at
                    (sprintf "%s after %s, which ends in %s, not softmax: training would read its raw outputs, clamped, as probabilities" loss n.Name act)
                    (Some "end the model with softmax (as 'dense 10 softmax'), or set another loss in the train section, as 'loss mse'")
        | _ -> ()
    if sawInput && not nodes.IsEmpty && not (b.Diagnostics |> Seq.exists Diagnostic.isError) then
        let trainable, frozen = nodes |> List.map Cost.parameters |> List.fold (fun (a, c) (x, y) -> a + x, c + y) (0L, 0L)
        let peak = nodes |> List.choose Cost.activationBytes |> List.fold (+) 0L
        let at = { Line = nodes.Head.SourceLine; Col = 1; Length = 5 }
        if trainable + frozen > manyParameters then
            b.Report M.LargeModel at (sprintf "the model has %s parameters (%s MB as float32)" (M.thousands (trainable + frozen)) (M.thousands ((trainable + frozen) * 4L / 1_000_000L)))
                (Some "check the dense layer after the last convolution: pooling first shrinks it")
        if peak > manyActivationBytes then
            b.Report M.LargeModel at (sprintf "one example's activations take %s MB" (M.thousands (peak / 1_000_000L)))
                (Some "pool or stride earlier, or use a smaller input")
    // One mistake read twice (both sides of `0x0`) is reported once.
    let diagnostics = b.Diagnostics |> List.ofSeq |> List.distinct |> Diagnostic.sort
    if diagnostics |> List.exists Diagnostic.isError || nodes.IsEmpty then Error diagnostics
    else Ok ({ Nodes = nodes; Training = settings }, diagnostics)
