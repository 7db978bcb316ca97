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
