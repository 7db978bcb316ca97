/// The front end in one call: text -> validated graph, or every diagnostic.
module CnnDsl.Dsl.Frontend

/// Parse and check. After a syntax error the checker still runs on what was read, so that
/// independent mistakes are reported together; it does not repeat "no input" or "no layers"
/// when a syntax error may be their cause.
let compile (text: string) : Result<CnnDsl.Graph.Graph * Diagnostic list, Diagnostic list> =
    let program, syntaxErrors = Parser.parse text
    match syntaxErrors, Check.check program with
    | [], result -> result
    | errors, Ok (_, warnings) -> Error (Diagnostic.sort (errors @ warnings))
    | errors, Error diagnostics ->
        let cascades = [ Messages.MissingInput.Code; Messages.EmptyModel.Code ]
        Error (Diagnostic.sort (errors @ (diagnostics |> List.filter (fun d -> not (List.contains d.Code cascades)))))

/// The same model with another input height and width (channels kept): gradient checks and
/// demonstrations run big models at a small size. None when the model has no input line.
let compileWithInput (text: string) (height: int) (width: int) =
    let program, syntaxErrors = Parser.parse text
    let mutable replaced = false
    let items =
        program.Items
        |> List.map (function
            | Syntax.LayerItem ({ Syntax = Syntax.Input d } as l) when not replaced ->
                replaced <- true
                let channels = match d.Value with [ _; _; c ] -> [ c ] | other -> []
                let dims = if channels.IsEmpty then d.Value else [ Syntax.Size (Syntax.Int (int64 height)); Syntax.Size (Syntax.Int (int64 width)) ] @ channels
                Syntax.LayerItem { l with Syntax = Syntax.Input { d with Value = dims } }
            | item -> item)
    if not syntaxErrors.IsEmpty || not replaced then None
    else Some (Check.check { program with Items = items })
