/// Text -> syntax tree, with FParsec. A syntax error ends one statement, not the file:
/// the parser reports it, skips to the next line at nesting depth 0 and goes on,
/// so that every mistake in a file is reported in one run.
module CnnDsl.Dsl.Parser

open System
open FParsec
open CnnDsl.Dsl.Syntax

type private P<'a> = Parser<'a, unit>

/// Deeper nesting than this is refused before parsing (it would only come from a
/// generated or corrupted file, and recursion that deep would exhaust the stack).
let maxNesting = 64

let layerKeywords =
    [ "input"; "conv"; "kernel"; "maxpool"; "avgpool"; "minpool"; "globalavgpool"; "globalmaxpool"; "globalminpool"
      "dense"; "flatten"; "reshape"; "dropout"; "batchnorm"; "relu"; "sigmoid"; "tanh"; "softmax"; "linear"
      "elu"; "leakyrelu"; "repeat"; "residual"; "concat"; "dwconv"; "sepconv"; "maxout" ]
    @ Kernels.names

let activationNames = [ "relu"; "sigmoid"; "tanh"; "softmax"; "linear"; "elu"; "leakyrelu" ]

let optionWords = [ "same"; "valid"; "nobias"; "frozen"; "project"; "weights"; "bias"; "groups" ] @ activationNames

// ---- whitespace: spaces, tabs and comments; newlines are separators, not whitespace ----

let private isWordStart c = isAsciiLetter c || c = '_'
let private isWordChar c = isAsciiLetter c || isDigit c || c = '_' || c = '-'

/// `(* ... *)`, nested as in F#; a loop rather than recursion, so depth costs no stack.
let private blockComment: P<unit> =
    fun stream ->
        if stream.Skip "(*" then
            let mutable depth = 1
            while depth > 0 && not stream.IsEndOfStream do
                if stream.Skip "(*" then depth <- depth + 1
                elif stream.Skip "*)" then depth <- depth - 1
                elif not (stream.SkipNewline()) then stream.Skip()
            if depth = 0 then Reply(())
            else Reply(Error, messageError "this comment is never closed: add '*)' where it should end")
        else Reply(Error, expected "comment")

let private lineComment: P<unit> =
    skipString "//" >>. skipManySatisfy (fun c -> c <> '\n' && c <> '\r')

let private ws: P<unit> =
    skipMany (skipMany1SatisfyL (fun c -> c = ' ' || c = '\t') "space" <|> lineComment <|> blockComment)

let private separator: P<unit> = (skipChar ';' <|> skipNewline) <?> "';' or a new line"

/// Any run of separators and blank or comment lines.
let private separators: P<unit> = skipMany (ws >>? separator) >>. ws

// ---- tokens ----

let private located (p: P<'a>) : P<Located<'a>> =
    fun stream ->
        let line, col, start = int stream.Line, int stream.Column, stream.Index
        let reply = p stream
        if reply.Status = Ok then
            Reply({ Value = reply.Result; Pos = { Line = line; Col = col; Length = int (stream.Index - start) } })
        else Reply(reply.Status, reply.Error)

let private endOfToken: P<unit> = notFollowedByL (satisfy isWordChar) "the end of the number"

let private word: P<string> = many1Satisfy2L isWordStart isWordChar "a name"

/// A number with an optional sign, fraction and exponent. Whole numbers that do not
/// fit 64 bits are refused here (CNN004) rather than wrapped.
let private number: P<Number> =
    let format = NumberLiteralOptions.AllowMinusSign ||| NumberLiteralOptions.AllowFraction ||| NumberLiteralOptions.AllowExponent
    numberLiteral format "a number" .>> endOfToken
    >>= fun n ->
        if n.IsInteger then
            match Int64.TryParse n.String with
            | true, v -> preturn (Int v)
            | _ -> fail (sprintf "CNN004|%d|%s is too large for a whole number" n.String.Length n.String)
        else
            match Double.TryParse(n.String, Globalization.NumberStyles.Float, Globalization.CultureInfo.InvariantCulture) with
            | true, v when not (Double.IsInfinity v) -> preturn (Float v)
            | _ -> fail (sprintf "CNN004|%d|%s is out of range" n.String.Length n.String)

/// A number, or the name of a block parameter.
let private numberOrRef: P<Located<Number>> = located (number <|> (word |>> Ref)) <?> "a number"

let private dimPart: P<DimPart> =
    (skipChar '?' >>% Unknown)
    <|> (many1Satisfy isDigit >>= fun digits ->
            match Int64.TryParse digits with
            | true, v -> preturn (Size (Int v))
            | _ -> fail (sprintf "CNN004|%d|%s is too large for a size" digits.Length digits))
    <?> "a size such as 3x3"

/// `28x28x1`, `?x?x1`, `3x3`, `3`, or a parameter name standing for one size.
let private dims: P<Dims> =
    located ((sepBy1 dimPart (skipChar 'x') .>> endOfToken) <|> (word |>> fun name -> [ Size (Ref name) ]))
    <?> "a size such as 3x3"

/// `s2`, `s2x1`, `p1`, `d2`: a letter glued to a size.
let private gluedDims (text: string) : DimPart list option =
    let parts = text.Split 'x'
    // A sign is read so that `s-1` is reported as a bad stride, not as an unknown word.
    let isInteger (p: string) =
        let digits = if p.StartsWith("-", StringComparison.Ordinal) then p.Substring 1 else p
        digits.Length > 0 && digits |> Seq.forall Char.IsDigit
    // Beyond 64 bits the value saturates, so that the checker says "too large" (CNN004)
    // instead of "not an option".
    let value (p: string) =
        match Int64.TryParse p with
        | true, v -> v
        | _ -> if p.StartsWith("-", StringComparison.Ordinal) then Int64.MinValue else Int64.MaxValue
    if parts |> Array.forall isInteger then
        Some [ for p in parts -> Size (Int (value p)) ]
    else None

// ---- layers ----

let private activationOf (name: string) (alpha: Located<Number> option) =
    match name with
    | "relu" -> Some Relu
    | "sigmoid" -> Some Sigmoid
    | "tanh" -> Some Tanh
    | "softmax" -> Some Softmax
    | "linear" -> Some Linear
    | "elu" -> Some (Elu alpha)
    | "leakyrelu" -> Some (LeakyRelu alpha)
    | _ -> None

let private optionalAlpha name : P<Located<Number> option> =
    if name = "elu" || name = "leakyrelu" then opt (ws >>? located number) else preturn None

/// A tensor literal: `0.5`, `[1 -2]`, `[[1, 0], [0, 1]]`; values and rows are separated by
/// commas or white space, and brackets may span lines.
let private tensorLiteral: P<TensorLiteral> =
    let value = number |>> function Int v -> Scalar (float v) | Float v -> Scalar v | Ref _ -> Scalar nan
    let tensor, tensorRef = createParserForwardedToRef<TensorLiteral, unit> ()
    let gap = skipMany ((skipAnyOf " \t\r\n" <|> skipChar ',') <?> "a space or ','")
    tensorRef.Value <-
        value
        <|> (between (skipChar '[' >>. gap) (skipChar ']' <?> "']'") (many (located tensor .>> gap)) |>> Items)
    tensor <?> "a number or a bracketed list such as [[1 0] [0 1]]"

let private layerOption: P<Located<LayerOption>> =
    located (
        word >>= fun w ->
            if w = "weights" then ws >>. tensorLiteral |>> Weights
            elif w = "bias" then ws >>. tensorLiteral |>> BiasValues
            elif w = "groups" then ws >>. numberOrRef |>> Groups
            else
            optionalAlpha w |>> fun alpha ->
                match w, activationOf w alpha with
                | _, Some a -> Activation a
                | "same", _ -> PadSame
                | "valid", _ -> PadValid
                | "nobias", _ -> NoBias
                | "frozen", _ -> Frozen
                | "project", _ -> Project
                | _ ->
                    let glued = if w.Length > 1 then gluedDims w[1..] else None
                    match w[0], glued with
                    | 's', Some d -> Stride { Value = d; Pos = Pos.None }
                    | 'p', Some d -> Pad { Value = d; Pos = Pos.None }
                    | 'd', Some d -> Dilation { Value = d; Pos = Pos.None }
                    | _ -> UnknownOption w)
    |>> fun o ->
        // A glued size is located at its option word.
        let relocate (d: Dims) = { d with Pos = o.Pos }
        match o.Value with
        | Stride d -> { o with Value = Stride (relocate d) }
        | Pad d -> { o with Value = Pad (relocate d) }
        | Dilation d -> { o with Value = Dilation (relocate d) }
        | _ -> o

let private options: P<Located<LayerOption> list> = many (ws >>? layerOption)

let private layer, private layerRef = createParserForwardedToRef<Layer, unit> ()

/// Layers separated by `;` or new lines, inside parentheses.
let private layerBlock: P<Layer list> =
    separators >>. sepEndBy layer (skipMany1 (ws >>? separator) >>. ws) .>> ws

let private parenthesised p = between (skipChar '(' <?> "'('") (skipChar ')' <?> "')'") p

let private poolKind =
    function
    | "maxpool" | "globalmaxpool" -> MaxPool
    | "avgpool" | "globalavgpool" -> AvgPool
    | _ -> MinPool

/// `conv 3x3 8`: the size written before the filter count (Keras's order is the same as
/// ours, but the slides write "a 3x3 conv with 8 filters"). Refused with the fix, at the size;
/// `HINT|message|hint` carries the hint to `describe`.
let private sizeBeforeCount (keyword: string) : P<unit> =
    let size = many1Satisfy isDigit .>>? skipChar 'x' .>>. many1Satisfy (fun c -> isDigit c || c = 'x')
    let count = opt (attempt (skipMany1 (anyOf " \t") >>. many1Satisfy isDigit .>> notFollowedBy (satisfy isWordChar)))
    (attempt (lookAhead (size .>>. count))
     >>= fun ((first, rest), n) ->
        failFatally (
            sprintf "HINT|%s takes the number of filters first, then the kernel size|write %s FILTERS KERNEL, e.g. %s %s %sx%s"
                keyword keyword keyword (defaultArg n "8") first rest))
    <|> preturn ()

let private arguments (keyword: string) : P<LayerSyntax> =
    let arg p = ws >>. p
    match keyword with
    | "input" -> arg dims |>> Input
    | "conv" -> pipe2 (arg (sizeBeforeCount keyword >>. numberOrRef)) (arg dims) (fun f k -> Conv (f, k))
    | "dwconv" -> arg dims |>> DepthwiseConv
    | "sepconv" -> pipe2 (arg (sizeBeforeCount keyword >>. numberOrRef)) (arg dims) (fun f k -> SeparableConv (f, k))
    | "maxout" -> arg numberOrRef |>> Maxout
    | "kernel" -> arg (located tensorLiteral) |>> LiteralKernel
    | "maxpool" | "avgpool" | "minpool" ->
        opt (ws >>? dims) |>> fun size ->
            Pool (poolKind keyword, size |> Option.defaultValue { Value = [ Size (Int 2L) ]; Pos = Pos.None })
    | "globalavgpool" | "globalmaxpool" | "globalminpool" -> preturn (GlobalPool (poolKind keyword))
    | "dense" -> arg numberOrRef |>> Dense
    | "flatten" -> preturn Flatten
    | "reshape" -> arg dims |>> Reshape
    | "dropout" -> arg numberOrRef |>> Dropout
    | "batchnorm" -> preturn BatchNorm
    | "repeat" -> pipe2 (arg numberOrRef) (arg (parenthesised layerBlock)) (fun n body -> Repeat (n, body))
    | "residual" ->
        let shortcut = attempt (ws >>. skipString "shortcut" >>. notFollowedBy (satisfy isWordChar)) >>. arg (parenthesised layerBlock)
        pipe2 (arg (parenthesised layerBlock)) (opt shortcut) (fun body sc -> Residual (body, sc))
    | "concat" ->
        arg (parenthesised (sepBy1 layerBlock (skipChar '|' .>> ws))) |>> Concat
    | k when List.contains k activationNames ->
        optionalAlpha k |>> fun alpha -> ActivationLayer (activationOf k alpha).Value
    | k when List.contains k Kernels.names -> preturn (NamedKernel k)
    | name ->
        // Arguments of a block are numbers; anything else is kept as a name so that the
        // checker can report it against the block's definition instead of failing here.
        // An option word (relu, frozen, s2 ...) ends the arguments.
        let isOption (w: string) =
            List.contains w optionWords || (w.Length > 1 && "spd".Contains w[0] && (gluedDims w[1..]).IsSome)
        let loose =
            located (many1Satisfy (fun c -> isWordChar c || c = '?' || c = '.'))
            >>= fun l -> if isOption l.Value then fail "an option" else preturn { Value = Ref l.Value; Pos = l.Pos }
        many (ws >>? (attempt (located number) <|> attempt loose)) |>> fun args -> Call (name, args)

do
    layerRef.Value <-
        (located word >>= fun kw ->
            arguments kw.Value .>>. options
            |>> fun (syntax, opts) -> { Syntax = syntax; Options = opts; Pos = kw.Pos })
        <?> "a layer"

// ---- statements ----

let private letBinding: P<LetBinding> =
    pipe3
        (ws >>. located word)
        (many (ws >>? located word) .>> ws .>> (skipChar '=' <?> "'='"))
        (ws >>. (parenthesised layerBlock <|> sepBy1 layer (ws >>? skipChar ';' >>. ws)))
        (fun name ps body -> { Name = name; Parameters = ps; Body = body })

let private settingValue: P<Located<SettingValue>> =
    located (
        (number |>> Num)
        <|> (word |>> Word)
        <|> (between (skipChar '"') (skipChar '"') (manySatisfy (fun c -> c <> '"' && c <> '\n')) |>> Text))

let private setting: P<Setting> =
    located word .>>. many (ws >>? settingValue) |>> fun (k, vs) -> { Key = k; Values = vs }

type private Statement =
    | Item of Item
    | Settings of Setting list
    | TrainHeader of Pos

let private statement (inTraining: bool) : P<Statement> =
    if inTraining then setting |>> fun s -> Settings [ s ]
    else
        (located word >>= fun kw ->
            match kw.Value with
            | "let" -> letBinding |>> (LetItem >> Item)
            | "train" -> preturn (TrainHeader kw.Pos)
            | k ->
                arguments k .>>. options
                |>> fun (syntax, opts) -> Item (LayerItem { Syntax = syntax; Options = opts; Pos = kw.Pos }))
        <?> "a layer, 'let' or 'train'"

let private endOfStatement: P<unit> = ws >>. (separator <|> eof) <?> "';' or a new line"

// ---- errors ----

let private foundAt (text: string) (index: int) =
    if index >= text.Length then "the end of the file", 1
    else
        match text[index] with
        | '\n' | '\r' -> "the end of the line", 1
        | ' ' | '\t' -> "a space", 1
        | c when isWordChar c ->
            let n = text.Substring(index) |> Seq.takeWhile isWordChar |> Seq.length
            sprintf "'%s'" (text.Substring(index, min n 40)), n
        | c when Char.IsControl c -> sprintf "the control character U+%04X" (int c), 1
        | c -> sprintf "'%c'" c, 1

/// The language's own words: never taken for Keras's.
let private ownWords = layerKeywords @ optionWords @ [ "let"; "train"; "shortcut"; "adam"; "sgd"; "rmsprop" ]

/// A Keras name on the line of `index` (`Conv2D(32, (3, 3), padding='same')` fails to parse
/// somewhere in its arguments), with how the language writes it.
let private kerasWordOn (text: string) (index: int) =
    let index = min index text.Length
    let start = if index = 0 then 0 else text.LastIndexOf('\n', max 0 (index - 1)) + 1
    let stop = match text.IndexOf('\n', start) with -1 -> text.Length | i -> i
    // Words in a comment are prose, not code.
    let line = text.Substring(start, stop - start).Split("//")[0]
    Text.RegularExpressions.Regex.Matches(line, "[A-Za-z_][A-Za-z0-9_.]*")
    |> Seq.map (fun m -> m.Value.TrimEnd('.'))
    |> Seq.filter (fun w -> not (List.contains w ownWords))
    |> Seq.tryPick Messages.keras

let private describe (text: string) (line: int64) (col: int64) (index: int64) (err: ErrorMessageList) : Diagnostic =
    let messages = ErrorMessageList.ToSortedArray err
    let expected =
        messages
        |> Array.choose (function
            | :? ErrorMessage.Expected as e -> Some e.Label
            | :? ErrorMessage.ExpectedString as e -> Some (sprintf "'%s'" e.String)
            | _ -> None)
        |> Array.distinct
        // Whitespace and comments may stand anywhere; listing them as expected only adds noise.
        |> Array.filter (fun e -> not (List.contains e [ "space"; "comment"; "'//'"; "'(*'"; "end of input" ]))
    let plain = messages |> Array.choose (function :? ErrorMessage.Message as m -> Some m.String | _ -> None)
    let found, length = foundAt text (int index)
    let pos = { Line = int line; Col = int col; Length = length }
    match plain |> Array.tryFind (fun m -> m.StartsWith("CNN004|", StringComparison.Ordinal)) with
    | Some m ->
        // "CNN004|length|message": the error is raised after the number; point at its start.
        let parts = m.Split('|', 3)
        let length = int parts[1]
        let start = { Line = int line; Col = max 1 (int col - length); Length = length }
        Messages.make Messages.NumberTooLarge start parts[2] (Some "sizes and counts must be below 2,147,483,648")
    | None ->
    match plain |> Array.tryFind (fun m -> m.StartsWith("HINT|", StringComparison.Ordinal)) with
    | Some m ->
        let parts = m.Split('|', 3)
        Messages.make Messages.SyntaxError pos parts[1] (Some parts[2])
    | None ->
        let message =
            match plain, expected with
            | [||], [||] -> sprintf "unexpected %s" found
            | [||], exp ->
                let alternatives =
                    if exp.Length = 1 then exp[0]
                    else String.Join(", ", exp[.. exp.Length - 2]) + " or " + exp[exp.Length - 1]
                sprintf "expected %s, found %s" alternatives found
            | ms, _ -> ms[0]
        let hint =
            if found = "'#'" then Some "comments start with '//' (to the end of the line) or are written (* ... *); '#' is not a comment"
            elif (kerasWordOn text (int index)).IsSome then kerasWordOn text (int index)
            elif found = "the end of the file" && text.Split('(').Length > text.Split(')').Length then Some "a '(' is never closed"
            elif expected |> Array.contains "';' or a new line" then Some "put each layer on its own line or separate layers with ';'"
            else None
        Messages.make Messages.SyntaxError pos message hint

/// Where parsing resumes after an error: the next line end at parenthesis depth 0.
let private recoveryPoint (text: string) (start: int) (errorAt: int) =
    let mutable depth = 0
    for i in start .. min (errorAt - 1) (text.Length - 1) do
        match text[i] with
        | '(' when i + 1 < text.Length && text[i + 1] <> '*' -> depth <- depth + 1
        | ')' when i > 0 && text[i - 1] <> '*' -> depth <- max 0 (depth - 1)
        | _ -> ()
    // Past the error only closing parentheses count: an opening one there is likely the mistake.
    let mutable i = max start errorAt
    while i < text.Length && not (text[i] = '\n' && depth = 0) do
        if text[i] = ')' then depth <- max 0 (depth - 1)
        i <- i + 1
    i

/// The position where parentheses, or the square brackets of a tensor literal, first nest
/// deeper than maxNesting, if they do (the parser recurses on both: 10,000 '[' overflowed the
/// stack), and which of the two.
let private tooDeep (text: string) =
    let mutable depth, brackets, line, col, found, i = 0, 0, 1, 1, None, 0
    while found.IsNone && i < text.Length do
        let c = text[i]
        if c = '(' && not (i + 1 < text.Length && text[i + 1] = '*') then
            depth <- depth + 1
            if depth > maxNesting then found <- Some ({ Line = line; Col = col; Length = 1 }, "parentheses")
        elif c = ')' then depth <- max 0 (depth - 1)
        elif c = '[' then
            brackets <- brackets + 1
            if brackets > maxNesting then found <- Some ({ Line = line; Col = col; Length = 1 }, "brackets")
        elif c = ']' then brackets <- max 0 (brackets - 1)
        if c = '\n' then
            line <- line + 1
            col <- 1
        else col <- col + 1
        i <- i + 1
    found

/// Parse a whole file. Always returns: a tree of what could be read, and the diagnostics
/// for what could not.
let parse (text: string) : Program * Diagnostic list =
    match tooDeep text with
    | Some (pos, what) ->
        let d =
            Messages.make Messages.NestingTooDeep pos (sprintf "%s nest more than %d deep" what maxNesting)
                (Some (if what = "brackets" then "weights and kernels need at most 4 levels: filters, channels, rows, columns"
                       else "use a 'let' block to name the inner part"))
        { Items = []; Training = None }, [ d ]
    | None ->
    // A byte-order mark is not part of the program.
    let text = if text.Length > 0 && text[0] = '\uFEFF' then " " + text.Substring 1 else text
    use stream = new CharStream<unit>(text, 0, text.Length)
    let items = ResizeArray()
    let settings = ResizeArray()
    let diagnostics = ResizeArray()
    let mutable training: Pos option = None
    let run (p: P<'a>) = p stream
    let skipSeparators () =
        let start = stream.Index
        let reply = run separators
        // Only an unclosed comment can make the separators fail.
        if reply.Status <> Ok then
            diagnostics.Add(describe text stream.Line stream.Column stream.Index reply.Error)
            while not stream.IsEndOfStream do
                if not (stream.SkipNewline()) then stream.Skip()
        ignore start
    let fail (reply: Reply<_>) (start: int64) =
        diagnostics.Add(describe text stream.Line stream.Column stream.Index reply.Error)
        let resume = recoveryPoint text (int start) (int stream.Index)
        // Advance line by line so that the stream keeps counting lines.
        while int stream.Index < resume && not stream.IsEndOfStream do
            if not (stream.SkipNewline()) then stream.Skip()
    skipSeparators ()
    while not stream.IsEndOfStream do
        let start = stream.Index
        let reply = run (statement training.IsSome)
        if reply.Status = Ok then
            match reply.Result with
            | Item i -> items.Add i
            | Settings s -> settings.AddRange s
            | TrainHeader pos -> training <- Some pos
            match reply.Result with
            | TrainHeader _ -> run ws |> ignore // settings may follow on the same line
            | _ ->
                let after = run endOfStatement
                if after.Status <> Ok then fail after start
        else fail reply start
        skipSeparators ()
    let trainingSection =
        training |> Option.map (fun pos -> { Value = List.ofSeq settings; Pos = pos })
    { Items = List.ofSeq items; Training = trainingSection }, List.ofSeq diagnostics
