/// What the server knows about one version of a document, computed from the front end:
/// diagnostics from Frontend.compile (exactly what `dsl check` prints), and, on demand, the
/// syntax tree, the layer-to-node map and the explanations that hover, inlay hints,
/// completion, navigation, symbols, folding and formatting read. Results are LSP JSON.
module CnnDsl.Lsp.Analysis

open System
open System.Collections.Generic
open System.Text.Json.Nodes
open System.Text.RegularExpressions
open CnnDsl.Dsl
open CnnDsl.Dsl.Syntax
open CnnDsl.Graph

/// Building LSP JSON.
module J =
    let str (s: string) = JsonValue.Create s :> JsonNode
    let num (n: int) = JsonValue.Create n :> JsonNode
    let bool (b: bool) = JsonValue.Create b :> JsonNode
    let obj (props: (string * JsonNode) list) = JsonObject(props |> List.map KeyValuePair) :> JsonNode
    let arr (items: JsonNode seq) = JsonArray(Array.ofSeq items) :> JsonNode
    let pos (p: LinePos) = obj [ "line", num p.Line; "character", num p.Character ]
    let range (r: TextRange) = obj [ "start", pos r.Start; "end", pos r.End ]
    let location (uri: string) (r: TextRange) = obj [ "uri", str uri; "range", range r ]
    let edit (r: TextRange) (text: string) = obj [ "range", range r; "newText", str text ]

let private offsetOf (doc: Document) (p: Pos) = doc.Offset { Line = p.Line - 1; Character = p.Col - 1 }

/// Where a top-level item starts (a `let` block at its keyword) and ends.
let itemSpan (doc: Document) (item: Item) : int * int =
    let start =
        match item with
        | LayerItem l -> offsetOf doc l.Pos
        | LetItem b ->
            let nameAt = offsetOf doc b.Name.Pos
            let i = doc.Text.LastIndexOf("let", max 0 (nameAt - 1), StringComparison.Ordinal)
            if i >= 0 then i else nameAt
    start, Scan.statementEnd doc.Text start

type Analysis(doc: Document) =
    // Lazy: a version replaced before anyone asks about it is never checked.
    let checkedText = lazy (Frontend.compile doc.Text)
    let parsed = lazy (Parser.parse doc.Text)
    /// The graph that shapes are read from: the whole model's, or, when it has errors, that of
    /// the statements before the first error (so that shapes show up to the line being fixed).
    let shaped =
        lazy (
            let program = fst parsed.Value
            match checkedText.Value with
            | Ok (graph, _) -> Some (program, graph)
            | Error ds ->
                match ds |> List.filter Diagnostic.isError |> List.map (fun d -> d.Pos.Line) |> List.filter (fun l -> l > 0) with
                | [] -> None
                | lines ->
                    let first = List.min lines
                    let before =
                        program.Items |> List.takeWhile (fun item -> (doc.PositionAt(snd (itemSpan doc item))).Line + 1 < first)
                    let prefix = { Items = before; Training = None }
                    match Check.check prefix with
                    | Ok (graph, _) -> Some (prefix, graph)
                    | Error _ -> None)
    let layerMap =
        lazy (
            match shaped.Value with
            | Some (program, graph) -> Layers.build program graph
            | None -> Layers.LayerMap())
    /// `dsl explain`'s paragraph of each node, by node name.
    let explained =
        lazy (
            match shaped.Value with
            | Some (_, graph) ->
                Explain.text graph
                |> fun t -> t.Replace("\r\n", "\n").Split("\n\n", StringSplitOptions.RemoveEmptyEntries)
                |> Array.choose (fun para ->
                    let para = para.Trim('\n')
                    let cut = para.IndexOf " ("
                    if cut > 0 && not (para.StartsWith "Total params") then Some (para.Substring(0, cut), para) else None)
                |> dict
            | None -> dict [])

    member _.Document = doc
    member _.Diagnostics = match checkedText.Value with Ok (_, ws) -> ws | Error ds -> ds
    member _.Program = fst parsed.Value
    member _.SyntaxErrors = snd parsed.Value
    member _.LayerMap = layerMap.Value
    member _.Explained = explained.Value

// ---- diagnostics and quick fixes ----

let private severity (d: Diagnostic) = if Diagnostic.isError d then 1 else 2

/// The LSP form of a diagnostic: `dsl check`'s range, code and message, its hint on a line below.
let diagnosticJson (doc: Document) (d: Diagnostic) =
    let message = match d.Hint with Some h -> d.Message + "\nhint: " + h | None -> d.Message
    J.obj
        [ "range", J.range (doc.RangeOf d.Pos)
          "severity", J.num (severity d)
          "code", J.str d.Code
          "source", J.str "dsl"
          "message", J.str message ]

let publishParams (uri: string) (version: int option) (a: Analysis) =
    J.obj
        [ yield "uri", J.str uri
          match version with Some v -> yield "version", J.num v | None -> ()
          yield "diagnostics", J.arr (a.Diagnostics |> Diagnostic.sort |> List.map (diagnosticJson a.Document)) ]

let private didYouMean = Regex(@"did you mean '([^']+)'\?", RegexOptions.Compiled)
let private largestPool = Regex(@"use a pool of at most (\d+)x(\d+)", RegexOptions.Compiled)

/// The edits that fix a diagnostic, where its hint names the fix: (title, range, new text).
let fixes (doc: Document) (d: Diagnostic) : (string * TextRange * string) list =
    let r = doc.RangeOf d.Pos
    let line = doc.Line r.Start.Line
    let at = r.Start.Character
    let covered = if at < line.Length then line.Substring(at, max 0 (min (r.End.Character - at) (line.Length - at))) else ""
    [ match d.Hint with
      | Some hint ->
          let m = didYouMean.Match hint
          if m.Success && covered.Length > 0 && not (covered.Contains ' ') then
              yield sprintf "Replace '%s' with '%s'" covered m.Groups[1].Value, r, m.Groups[1].Value
          let m = largestPool.Match hint
          if m.Success then
              // The diagnostic points at the pool's keyword; its size is the next word, if written.
              let h, w = m.Groups[1].Value, m.Groups[2].Value
              let after = line.Substring(min line.Length r.End.Character)
              let size = Regex.Match(after, @"^(\s+)([0-9?]+(x[0-9?]+)*)\b")
              if size.Success then
                  let written = size.Groups[2].Value
                  let text = if not (written.Contains 'x') && h = w then h else h + "x" + w
                  let start = r.End.Character + size.Groups[1].Length
                  yield sprintf "Use a %sx%s pool" h w, { Start = { r.Start with Character = start }; End = { r.Start with Character = start + written.Length } }, text
              else
                  yield sprintf "Use a %sx%s pool" h w, { Start = r.End; End = r.End }, " " + (if h = w then h else h + "x" + w)
          if d.Code = Messages.DuplicateOption.Code && covered.Length > 0 then
              // Remove the repeated option and the space before it.
              let mutable s = at
              while s > 0 && (line[s - 1] = ' ' || line[s - 1] = '\t') do s <- s - 1
              yield sprintf "Remove the second '%s'" covered, { r with Start = { r.Start with Character = s } }, ""
      | None -> () ]

let private intersects (a: TextRange) (b: TextRange) =
    not (a.End.Line < b.Start.Line || b.End.Line < a.Start.Line)

let codeActions (uri: string) (a: Analysis) (range: TextRange) =
    a.Diagnostics
    |> List.filter (fun d -> intersects (a.Document.RangeOf d.Pos) range)
    |> List.collect (fun d ->
        fixes a.Document d |> List.map (fun (title, r, text) ->
            J.obj
                [ "title", J.str title
                  "kind", J.str "quickfix"
                  "isPreferred", J.bool true
                  "diagnostics", J.arr [ diagnosticJson a.Document d ]
                  "edit", J.obj [ "changes", J.obj [ uri, J.arr [ J.edit r text ] ] ] ]))
    |> J.arr

// ---- statements and positions ----

let private rangeOf (doc: Document) (a: int, b: int) = { Start = doc.PositionAt a; End = doc.PositionAt b }

let private shapeText (s: Shape) = string s

let private paramsOf (nodes: Node list) = nodes |> List.sumBy (fun n -> let t, f = Cost.parameters n in t + f)

// ---- inlay hints ----

let private hintLabel (nodes: Node list) =
    let p = paramsOf nodes
    sprintf "-> %s%s" (shapeText (List.last nodes).OutputShape)
        (if p = 0L then "" elif p = 1L then "  1 param" else sprintf "  %s params" (Messages.thousands p))

let private isContainer (l: Layer) =
    match l.Syntax with
    | Repeat _ | Residual _ | Concat _ -> true
    | _ -> false

/// `-> 13x13x32  320 params` after every top-level layer: at the end of its line, or just
/// after the layer when another follows on the same line. A statement written over several
/// lines (a `concat (...)` with a branch per line) also gets them for the layers on each inner
/// line (the first copy's, inside a `repeat`).
let inlayHints (a: Analysis) (range: TextRange) =
    let doc = a.Document
    let map = a.LayerMap
    let firstUse (l: Layer) =
        match map.TryGetValue l.Pos with
        | true, uses when uses.Count > 0 && not uses[0].IsEmpty -> Some uses[0]
        | _ -> None
    let hint (at: LinePos) (nodes: Node list) =
        J.obj [ "position", J.pos at; "label", J.str (hintLabel nodes); "kind", J.num 1; "paddingLeft", J.bool true ]
    let lineEnd (line: int) = { Line = line; Character = (doc.Line line).TrimEnd().Length }
    let wanted (line: int) = line >= range.Start.Line && line <= range.End.Line
    if map.Count = 0 then J.arr []
    else
        let items = a.Program.Items |> List.choose (function LayerItem l -> Some l | LetItem _ -> None)
        [ for l in items do
            match l.Syntax, firstUse l with
            | Input _, _ | _, None -> ()
            | _, Some nodes ->
                let endPos = doc.PositionAt(snd (itemSpan doc (LayerItem l)))
                let startLine = l.Pos.Line - 1
                if endPos.Line > startLine then
                    let inner = Layers.allLayers [ l ] |> List.tail
                    for line in startLine .. endPos.Line - 1 do
                        let onLine = inner |> List.filter (fun x -> x.Pos.Line - 1 = line) |> List.sortBy (fun x -> x.Pos.Col)
                        // Containers opened on this line end on a later one: their hint is not here.
                        if wanted line && not (onLine |> List.exists isContainer) then
                            for i, x in List.indexed onLine do
                                match firstUse x with
                                | Some ns ->
                                    let at =
                                        if i = onLine.Length - 1 then lineEnd line
                                        else doc.PositionAt(Scan.layerEnd doc.Text (doc.Offset { Line = line; Character = x.Pos.Col - 1 }))
                                    yield hint at ns
                                | None -> ()
                if wanted endPos.Line then
                    let lineText = doc.Line endPos.Line
                    let othersFollow = lineText.Substring(endPos.Character).TrimStart().StartsWith ";"
                    yield hint (if othersFollow then endPos else lineEnd endPos.Line) nodes ]
        |> J.arr

// ---- hover ----

/// The layer written at a position: the innermost one whose keyword starts at or before it on that line.
let layerAt (a: Analysis) (p: LinePos) : Layer option =
    let onLine = Layers.everyLayer a.Program |> List.filter (fun l -> l.Pos.Line = p.Line + 1)
    match onLine |> List.filter (fun l -> l.Pos.Col - 1 <= p.Character) |> List.sortBy (fun l -> l.Pos.Col) |> List.tryLast with
    | Some l -> Some l
    | None -> onLine |> List.sortBy (fun l -> l.Pos.Col) |> List.tryHead

let private macsText (nodes: Node list) =
    let macs = nodes |> List.map Cost.multiplyAdds
    if macs |> List.forall Option.isSome then Messages.thousands (macs |> List.sumBy Option.get) else "? (dynamic input size)"

/// A node as `dsl explain` shows it (the input node has no paragraph there).
let private nodeText (a: Analysis) (n: Node) =
    match a.Explained.TryGetValue n.Name with
    | true, para -> para
    | _ -> sprintf "%s (%s): %O" n.Name (Summary.typeName n) n.OutputShape

let hoverText (a: Analysis) (l: Layer) : string option =
    match a.LayerMap.TryGetValue l.Pos with
    | true, uses when uses.Count > 0 && not uses[0].IsEmpty ->
        let nodes = uses[0]
        let first, last = List.head nodes, List.last nodes
        let input = match first.InputShapes with s :: _ -> s | [] -> first.OutputShape
        let body =
            if nodes.Length <= 3 then nodes |> List.map (nodeText a) |> String.concat "\n\n"
            else
                let lines = nodes |> List.map (fun n -> sprintf "  %s (%s): %O" n.Name (Summary.typeName n) n.OutputShape)
                sprintf "%d layers:\n%s" nodes.Length (String.concat "\n" lines)
        let summary =
            sprintf "input %O, output %O\nparams: %s\nmultiply-adds: %s per image" input last.OutputShape
                (Messages.thousands (paramsOf nodes)) (macsText nodes)
        let uses = if uses.Count > 1 then sprintf "\n(used %d times; the first use is shown)" uses.Count else ""
        Some (sprintf "```text\n%s\n\n%s%s\n```" body summary uses)
    | _ -> None

// ---- let blocks: definition, references, rename ----

/// Every place a block's name is written: its definition first, then each use.
let occurrences (a: Analysis) (name: string) : TextRange list =
    let doc = a.Document
    let defs =
        a.Program.Items |> List.choose (function LetItem b when b.Name.Value = name -> Some (doc.RangeOf b.Name.Pos) | _ -> None)
    let uses =
        Layers.everyLayer a.Program
        |> List.choose (fun l ->
            match l.Syntax with
            | Call (n, _) when n = name -> Some (doc.RangeOf { l.Pos with Length = n.Length })
            | _ -> None)
    defs @ uses

/// The block name at a position (on its definition or a use), if any.
let blockAt (a: Analysis) (p: LinePos) : string option =
    let blocks = Layers.lets a.Program
    match Scan.wordAt (a.Document.Line p.Line) p.Character with
    | Some (w, _) when blocks.ContainsKey w ->
        if occurrences a w |> List.exists (fun r -> r.Start.Line = p.Line && r.Start.Character <= p.Character && p.Character <= r.End.Character)
        then Some w else None
    | _ -> None

/// The hover text at a position: a layer's shapes and formulas (for a block's use, that use's);
/// on a block's definition, its body and how often it is used.
let hover (a: Analysis) (p: LinePos) : string option =
    let blocks = Layers.lets a.Program
    match blockAt a p with
    | Some name when blocks[name].Name.Pos.Line = p.Line + 1 ->
        let b = blocks[name]
        let ps = b.Parameters |> List.map (fun x -> x.Value)
        let uses = (occurrences a name).Length - 1
        Some (sprintf "```text\nlet %s = (%s)\nused %d time%s\n```" (String.Join(" ", name :: ps)) (Pretty.block b.Body) uses (if uses = 1 then "" else "s"))
    | _ -> layerAt a p |> Option.bind (hoverText a)

let definition (uri: string) (a: Analysis) (p: LinePos) =
    match blockAt a p with
    | Some name ->
        let b = (Layers.lets a.Program)[name]
        J.location uri (a.Document.RangeOf b.Name.Pos)
    | None -> null

let references (uri: string) (a: Analysis) (p: LinePos) (includeDeclaration: bool) =
    match blockAt a p with
    | Some name ->
        let all = occurrences a name
        (if includeDeclaration then all else List.tail all) |> List.map (J.location uri) |> J.arr
    | None -> J.arr []

/// The range of the block name under the cursor, for an editor to rename; None elsewhere.
let prepareRename (a: Analysis) (p: LinePos) : TextRange option =
    blockAt a p
    |> Option.bind (fun name ->
        occurrences a name |> List.tryFind (fun r -> r.Start.Line = p.Line && r.Start.Character <= p.Character && p.Character <= r.End.Character))

let private validName = Regex(@"^[A-Za-z_][A-Za-z0-9_-]*$", RegexOptions.Compiled)

/// The edits renaming a block, or why not.
let rename (uri: string) (a: Analysis) (p: LinePos) (newName: string) : Result<JsonNode, string> =
    match blockAt a p with
    | None -> Error "only 'let' blocks can be renamed: put the cursor on a block's name"
    | Some _ when not (validName.IsMatch newName) -> Error (sprintf "'%s' is not a name: use letters, digits, '_' and '-', starting with a letter" newName)
    | Some _ when List.contains newName Parser.layerKeywords || newName = "let" || newName = "train" ->
        Error (sprintf "'%s' is a layer name and cannot name a block" newName)
    | Some _ when (Layers.lets a.Program).ContainsKey newName -> Error (sprintf "a block named '%s' already exists" newName)
    | Some name ->
        let edits = occurrences a name |> List.map (fun r -> J.edit r newName)
        Ok (J.obj [ "changes", J.obj [ uri, J.arr edits ] ])

// ---- document symbols and folding ----

let private collapse (s: string) =
    let s = Regex.Replace(s, @"\s+", " ").Trim()
    if s.Length > 60 then s.Substring(0, 57) + "..." else s

let documentSymbols (a: Analysis) =
    let doc = a.Document
    let symbol name detail kind (range: TextRange) (selection: TextRange) (children: JsonNode list) =
        J.obj
            [ "name", J.str (if String.IsNullOrWhiteSpace name then "?" else name); "detail", J.str detail; "kind", J.num kind
              "range", J.range range; "selectionRange", J.range selection; "children", J.arr children ]
    let items =
        a.Program.Items |> List.map (fun item ->
            let s, e = itemSpan doc item
            let range = rangeOf doc (s, e)
            match item with
            | LetItem b ->
                let ps = b.Parameters |> List.map (fun p -> p.Value) |> String.concat " "
                symbol b.Name.Value (if ps = "" then "let" else "let " + ps) 12 range (doc.RangeOf b.Name.Pos) []
            | LayerItem l ->
                let detail =
                    match a.LayerMap.TryGetValue l.Pos with
                    | true, uses when uses.Count > 0 && not uses[0].IsEmpty ->
                        let last = List.last uses[0]
                        sprintf "%s -> %O" last.Name last.OutputShape
                    | _ -> ""
                let selection = rangeOf doc (s, min e (s + max 1 l.Pos.Length))
                symbol (collapse (doc.Text.Substring(s, e - s))) detail 8 range selection [])
    let training =
        match a.Program.Training with
        | Some section ->
            let start = offsetOf doc section.Pos
            let children =
                section.Value |> List.map (fun st ->
                    let s = offsetOf doc st.Key.Pos
                    let e = Scan.statementEnd doc.Text s
                    let values = st.Values |> List.map (fun v -> Pretty.settingValue v.Value) |> String.concat " "
                    symbol st.Key.Value values 7 (rangeOf doc (s, e)) (doc.RangeOf st.Key.Pos) [])
            let stop = match section.Value with [] -> start + 5 | ss -> Scan.statementEnd doc.Text (offsetOf doc (List.last ss).Key.Pos)
            [ symbol "train" "training settings" 3 (rangeOf doc (start, stop)) (doc.RangeOf section.Pos) children ]
        | None -> []
    J.arr (items @ training)

let foldingRanges (a: Analysis) =
    let doc = a.Document
    let text = doc.Text
    let region (s: int) (e: int) kind =
        let sp, ep = doc.PositionAt s, doc.PositionAt e
        if ep.Line > sp.Line then
            Some (J.obj [ yield "startLine", J.num sp.Line; yield "endLine", J.num ep.Line
                          match kind with Some k -> yield "kind", J.str k | None -> () ])
        else None
    let statements = a.Program.Items |> List.choose (fun item -> let s, e = itemSpan doc item in region s e (Some "region"))
    let training =
        match a.Program.Training with
        | Some section when not section.Value.IsEmpty ->
            let last = List.last section.Value
            region (offsetOf doc section.Pos) (Scan.statementEnd text (offsetOf doc last.Key.Pos)) (Some "region") |> Option.toList
        | _ -> []
    // Block comments over several lines, and runs of two or more `//` lines.
    let comments =
        [ let mutable i = 0
          while i < text.Length - 1 do
              if text[i] = '(' && text[i + 1] = '*' then
                  let start = i
                  let mutable depth = 1
                  i <- i + 2
                  while depth > 0 && i < text.Length - 1 do
                      if text[i] = '(' && text[i + 1] = '*' then (depth <- depth + 1; i <- i + 2)
                      elif text[i] = '*' && text[i + 1] = ')' then (depth <- depth - 1; i <- i + 2)
                      else i <- i + 1
                  match region start i (Some "comment") with Some r -> yield r | None -> ()
              else i <- i + 1
          let mutable runStart = -1
          for line in 0 .. doc.LineCount do
              let isComment = line < doc.LineCount && (doc.Line line).TrimStart().StartsWith "//"
              if isComment && runStart < 0 then runStart <- line
              elif not isComment && runStart >= 0 then
                  if line - 1 > runStart then
                      yield J.obj [ "startLine", J.num runStart; "endLine", J.num (line - 1); "kind", J.str "comment" ]
                  runStart <- -1 ]
    J.arr (statements @ training @ comments)

// ---- formatting ----

/// The pretty printer's text for each top-level statement and training setting, replacing the
/// statement only (comments between and after statements stay where they are; a statement with
/// a comment inside is left alone). None when the file has syntax errors or the result would
/// not read back as the same program.
let formatEdits (a: Analysis) : (TextRange * string) list option =
    let doc = a.Document
    let text = doc.Text
    if not a.SyntaxErrors.IsEmpty then None
    else
        let lineStart (offset: int) =
            // From the line's start when only spaces precede the statement: top level is not indented.
            let p = doc.PositionAt offset
            let before = (doc.Line p.Line).Substring(0, p.Character)
            if before.Trim() = "" then offset - p.Character else offset
        let items =
            a.Program.Items |> List.choose (fun item ->
                let s, e = itemSpan doc item
                if Scan.hasComment text s e then None
                else
                    let printed = (Pretty.program { Items = [ item ]; Training = None }).TrimEnd('\n')
                    Some (lineStart s, e, printed))
        let settings =
            match a.Program.Training with
            | Some section ->
                section.Value |> List.choose (fun st ->
                    let s = offsetOf doc st.Key.Pos
                    let e = Scan.statementEnd text s
                    let from = lineStart s
                    if from = s && st.Key.Pos.Line = section.Pos.Line then None // on the `train` line itself
                    else
                        let printed = "  " + String.Join(" ", st.Key.Value :: (st.Values |> List.map (fun v -> Pretty.settingValue v.Value)))
                        Some (from, e, printed))
            | None -> []
        let edits = (items @ settings) |> List.filter (fun (s, e, printed) -> text.Substring(s, e - s) <> printed)
        // Apply back to front, then require the same program.
        let formatted =
            edits |> List.sortByDescending (fun (s, _, _) -> s)
            |> List.fold (fun (t: string) (s, e, printed) -> t.Substring(0, s) + printed + t.Substring e) text
        let program, errors = Parser.parse formatted
        if errors.IsEmpty && Pretty.program program = Pretty.program a.Program then
            Some (edits |> List.map (fun (s, e, printed) -> rangeOf doc (s, e), printed))
        else None

// ---- semantic tokens ----

let tokenTypes = [ "keyword"; "function"; "parameter"; "number"; "comment"; "string"; "property"; "enumMember" ]
let tokenModifiers = [ "declaration" ]

/// (line, start, length, type, modifiers) of every token worth colouring, from the syntax tree
/// (comments from the text, which the tree does not keep); one line each, sorted, no overlaps.
let semanticTokens (a: Analysis) : (int * int * int * int * int) list =
    let doc = a.Document
    let text = doc.Text
    let kind name = List.findIndex ((=) name) tokenTypes
    let at (p: Pos) (length: int) name modifiers =
        if p.Line < 1 || length < 1 then [] else [ p.Line - 1, p.Col - 1, length, kind name, modifiers ]
    let located (p: Pos) name = at p p.Length name 0
    let number (n: Located<Number>) = located n.Pos (match n.Value with Ref _ -> "parameter" | _ -> "number")
    let dims (d: Dims) =
        match d.Value with
        | [ Size (Ref _) ] -> located d.Pos "parameter"
        | _ -> located d.Pos "number"
    let activationWord (a: ActivationSyntax) = (Pretty.activation (match a with Elu _ -> Elu None | LeakyRelu _ -> LeakyRelu None | x -> x)).Length
    let alpha (a: ActivationSyntax) = match a with Elu (Some n) | LeakyRelu (Some n) -> number n | _ -> []
    let option (o: Located<LayerOption>) =
        match o.Value with
        | Activation act -> at o.Pos (activationWord act) "enumMember" 0 @ alpha act
        | Weights _ -> at o.Pos 7 "enumMember" 0
        | BiasValues _ -> at o.Pos 4 "enumMember" 0
        | Groups n -> at o.Pos 6 "enumMember" 0 @ number n
        | UnknownOption _ -> []
        | _ -> located o.Pos "enumMember"
    let layer (l: Layer) =
        let head =
            match l.Syntax with
            | Call (name, args) -> at l.Pos name.Length "function" 0 @ (args |> List.collect number)
            | ActivationLayer act -> at l.Pos (activationWord act) "keyword" 0 @ alpha act
            | _ -> located l.Pos "keyword"
        let arguments =
            match l.Syntax with
            | Input d | Reshape d -> dims d
            | Conv (f, k) | SeparableConv (f, k) -> number f @ dims k
            | DepthwiseConv k -> dims k
            | Maxout n -> number n
            | Pool (_, size) -> dims size
            | Dense n | Dropout n | Repeat (n, _) -> number n
            | _ -> []
        head @ arguments @ (l.Options |> List.collect option)
    let program = a.Program
    let fromTree =
        [ for l in Layers.everyLayer program do yield! layer l
          for item in program.Items do
              match item with
              | LetItem b ->
                  let s, _ = itemSpan doc item
                  let p = doc.PositionAt s
                  yield (p.Line, p.Character, 3, kind "keyword", 0)
                  yield! at b.Name.Pos b.Name.Pos.Length "function" 1
                  for p in b.Parameters do yield! located p.Pos "parameter"
              | LayerItem _ -> ()
          match program.Training with
          | Some section ->
              yield! at section.Pos 5 "keyword" 0
              for st in section.Value do
                  yield! located st.Key.Pos "property"
                  for v in st.Values do
                      yield! located v.Pos (match v.Value with Num _ -> "number" | Text _ -> "string" | Word _ -> "enumMember")
          | None -> () ]
    // Comments, split at line ends; a `//` inside a string is not one.
    let comments =
        [ let mutable i = 0
          let mutable inString = false
          let piece (a: int) (b: int) =
              [ let mutable s = a
                while s < b do
                    let e = match text.IndexOf('\n', s) with -1 -> b | n -> min n b
                    let p = doc.PositionAt s
                    let len = (if e > s && text[e - 1] = '\r' then e - 1 else e) - s
                    if len > 0 then yield (p.Line, p.Character, len, kind "comment", 0)
                    s <- e + 1 ]
          while i < text.Length do
              let c = text[i]
              if inString then
                  if c = '"' || c = '\n' then inString <- false
                  i <- i + 1
              elif c = '"' then (inString <- true; i <- i + 1)
              elif c = '/' && i + 1 < text.Length && text[i + 1] = '/' then
                  let e = match text.IndexOf('\n', i) with -1 -> text.Length | n -> n
                  yield! piece i e
                  i <- e
              elif c = '(' && i + 1 < text.Length && text[i + 1] = '*' then
                  let start = i
                  let mutable depth = 1
                  i <- i + 2
                  while depth > 0 && i < text.Length do
                      if text[i] = '(' && i + 1 < text.Length && text[i + 1] = '*' then (depth <- depth + 1; i <- i + 2)
                      elif text[i] = '*' && i + 1 < text.Length && text[i + 1] = ')' then (depth <- depth - 1; i <- i + 2)
                      else i <- i + 1
                  yield! piece start i
              else i <- i + 1 ]
    let sorted = (fromTree @ comments) |> List.distinct |> List.sortBy (fun (l, c, _, _, _) -> l, c)
    // Drop any token that overlaps the one before it on its line.
    sorted
    |> List.fold (fun (acc, lastLine, lastEnd) ((l, c, n, _, _) as t) ->
        if l = lastLine && c < lastEnd then acc, lastLine, lastEnd else t :: acc, l, c + n) ([], -1, 0)
    |> fun (acc, _, _) -> List.rev acc

/// The LSP encoding: five numbers per token, line and start relative to the previous token.
let semanticTokensJson (a: Analysis) =
    let data = ResizeArray<JsonNode>()
    let mutable line, start = 0, 0
    for (l, c, n, t, m) in semanticTokens a do
        let dl = l - line
        let dc = if dl = 0 then c - start else c
        for v in [ dl; dc; n; t; m ] do data.Add(J.num v)
        line <- l
        start <- c
    J.obj [ "data", J.arr data ]

// ---- completion ----

let datasetNames = [ "fashion-mnist"; "mnist"; "cifar10"; "xor"; "shapes" ]

let trainingValues =
    dict
        [ "data", datasetNames
          "optimizer", [ "adam"; "adamw"; "sgd"; "rmsprop" ]
          "loss", [ "crossentropy"; "binarycrossentropy"; "bce"; "mse"; "mae" ]
          "augment", [ "shift"; "flip"; "rotate"; "crop"; "cutout" ]
          "schedule", [ "step"; "cosine"; "plateau"; "onecycle" ]
          "nodecay", [ "biases"; "batchnorm" ]
          "tta", [ "flip"; "shift" ]
          "nesterov", [ "true"; "false" ] ]

/// The training section's keys, as the checker accepts them (a test holds the two together).
let trainingKeys =
    [ "data"; "optimizer"; "lr"; "momentum"; "nesterov"; "beta1"; "beta2"; "epsilon"; "rho"; "loss"; "epochs"
      "batch"; "validation"; "seed"; "weightdecay"; "augment"; "schedule"; "earlystop"
      "labelsmoothing"; "warmup"; "nodecay"; "ema"; "tta"; "normalize" ]

/// (label, description) of the options a layer takes, as the checker allows them (a test holds
/// the two together); the activations come on top where a layer takes one.
let layerOptions (keyword: string) : (string * string) list * bool =
    let window = [ "s2", "stride (s2, or s2x1 per axis)"; "same", "padding that keeps the size (at stride 1)"; "valid", "no padding"; "p1", "zero padding per side (p1, or p1x2)"; "d2", "dilation (d2, or d2x1)" ]
    let learned =
        [ "nobias", "no bias term"; "frozen", "keep the weights as loaded (not trained)"
          "weights", "weights TENSOR: hand-set starting weights ([[...]])"; "bias", "bias TENSOR: hand-set starting bias (one number, or one per filter or unit)" ]
    match keyword with
    | "conv" -> window @ learned @ [ "groups", "groups N: grouped convolution (each filter sees 1/N of the channels)" ], true
    | "dwconv" | "sepconv" -> window @ (learned |> List.filter (fun (w, _) -> w = "nobias" || w = "frozen")), true
    | "kernel" -> window, true
    | k when List.contains k Kernels.names -> window, true
    | "maxpool" | "avgpool" | "minpool" -> window |> List.filter (fun (w, _) -> w <> "d2"), false
    | "dense" -> learned, true
    | "batchnorm" -> [ "frozen", "keep gamma and beta as loaded" ], true
    | "residual" -> [ "project", "a 1x1 conv bringing the input to the block's shape" ], true
    | "concat" -> [], true
    | "repeat" -> [ "frozen", "keep the weights as loaded" ], false
    | _ -> [], false

let private layerDescriptions =
    dict
        [ "input", "input HxWxC (28x28x1, ?x?x3) or a vector length"; "conv", "conv FILTERS KxK [options]"; "dwconv", "dwconv KxK: one kernel per input channel"
          "sepconv", "sepconv FILTERS KxK: depthwise, then 1x1"; "maxout", "maxout PIECES: max over groups of channels"; "kernel", "kernel [[...]]: a fixed kernel"
          "maxpool", "maxpool N (default 2)"; "avgpool", "avgpool N (default 2)"; "minpool", "minpool N (default 2)"
          "globalavgpool", "one value per channel"; "globalmaxpool", "one value per channel"; "globalminpool", "one value per channel"
          "dense", "dense UNITS [activation]"; "flatten", "image to vector"; "reshape", "reshape HxWxC or LENGTH"; "dropout", "dropout RATE (0 to 1)"
          "batchnorm", "batch normalisation"; "repeat", "repeat N (layers)"; "residual", "residual (layers) [project]"; "concat", "concat (branch | branch)" ]

/// How many numbers a layer takes before its options (`conv 32 3x3` two, `dense 10` one).
let positionalArguments (keyword: string) =
    match keyword with
    | "conv" | "sepconv" -> 2
    | "input" | "dwconv" | "dense" | "dropout" | "reshape" | "maxout" | "repeat" -> 1
    | _ -> 0

/// Completion items at a position, from the text before the cursor (the file may not parse).
let completion (a: Analysis) (p: LinePos) =
    let doc = a.Document
    let line = doc.Line p.Line
    let before = line.Substring(0, min p.Character line.Length)
    let item label kind detail = J.obj [ "label", J.str label; "kind", J.num kind; "detail", J.str detail ]
    let trainLine =
        [ 0 .. p.Line ] |> List.tryFindBack (fun i -> Regex.IsMatch(doc.Line i, @"^\s*train\b"))
    let words (s: string) = s.Split([| ' '; '\t' |], StringSplitOptions.RemoveEmptyEntries) |> List.ofArray
    let completedWords (segment: string) =
        let ws = words segment
        if segment.Length = 0 || Char.IsWhiteSpace segment[segment.Length - 1] then ws
        elif ws.IsEmpty then [] else List.take (ws.Length - 1) ws
    if before.Contains "//" || before.Contains "(*" then J.arr []
    else
    match trainLine with
    | Some t when t < p.Line || Regex.IsMatch(before, @"^\s*train\s") ->
        let segment = if t = p.Line then Regex.Replace(before, @"^\s*train", "") else before
        match completedWords segment with
        | [] -> trainingKeys |> List.map (fun k -> item k 10 "training setting") |> J.arr
        | key :: _ ->
            match trainingValues.TryGetValue key with
            | true, values -> values |> List.map (fun v -> item v 12 (if key = "data" then "data set" else key)) |> J.arr
            | _ -> J.arr []
    | _ ->
        let cut = before.LastIndexOfAny [| ';'; '('; '|'; '=' |]
        let segment = if cut >= 0 then before.Substring(cut + 1) else before
        let blocks = Layers.lets a.Program
        match completedWords segment with
        | [] ->
            [ for k in Parser.layerKeywords do
                let detail =
                    match layerDescriptions.TryGetValue k with
                    | true, d -> d
                    | _ when List.contains k Parser.activationNames -> "activation layer"
                    | _ -> "fixed kernel"
                yield item k 14 detail
              for KeyValue (name, b) in blocks do
                  let ps = b.Parameters |> List.map (fun p -> p.Value)
                  // A snippet with a placeholder per parameter (insertTextFormat 2).
                  let snippet = String.Join(" ", name :: (ps |> List.mapi (fun i p -> sprintf "${%d:%s}" (i + 1) p)))
                  yield J.obj
                      [ "label", J.str name; "kind", J.num 3; "detail", J.str (String.Join(" ", "let" :: name :: ps) + " = (...)")
                        "insertText", J.str snippet; "insertTextFormat", J.num 2 ]
              if cut < 0 then
                  yield item "let" 14 "let NAME PARAMS = (layers): a block"
                  yield item "train" 14 "the training section" ]
            |> J.arr
        | "let" :: _ -> J.arr []
        | keyword :: typed when typed.Length < positionalArguments keyword -> J.arr [] // its numbers come first
        | keyword :: _ ->
            let options, takesActivation = layerOptions keyword
            let options = if blocks.ContainsKey keyword then [ "frozen", "keep the block's weights as loaded" ] else options
            [ for (o, d) in options -> item o 5 d
              if takesActivation then
                  for act in Parser.activationNames -> item act 12 "activation" ]
            |> J.arr
