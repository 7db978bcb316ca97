/// `dsl lsp`: the Language Server Protocol 3.17 over stdio. A thread reads messages into a
/// queue; the main thread answers them in order. A document is checked when its diagnostics are
/// published, once no message is waiting: a burst of changes (typing) is checked once, at its
/// last version. Documents live in memory only: the server never writes a file.
module CnnDsl.Lsp.Server

open System
open System.Collections.Concurrent
open System.Collections.Generic
open System.IO
open System.Threading
open System.Text.Json.Nodes
open CnnDsl.Lsp.Analysis

/// A request's parameters lack something or have the wrong type: answered with InvalidParams.
exception BadParams of string

let private tryProp (o: JsonObject) (name: string) : JsonNode option =
    let mutable v: JsonNode = null
    if o.TryGetPropertyValue(name, &v) then Some v else None

let private field (node: JsonNode) (name: string) : JsonNode =
    match node with
    | :? JsonObject as o ->
        match tryProp o name with
        | Some v when not (isNull v) -> v
        | _ -> raise (BadParams (sprintf "'%s' is missing" name))
    | _ -> raise (BadParams (sprintf "expected an object holding '%s'" name))

let private optionalField (node: JsonNode) (name: string) : JsonNode option =
    match node with
    | :? JsonObject as o ->
        match tryProp o name with
        | Some v when not (isNull v) -> Some v
        | _ -> None
    | _ -> None

let private value<'T> (node: JsonNode) (name: string) : 'T =
    let v = field node name
    try v.GetValue<'T>()
    with :? InvalidOperationException | :? FormatException -> raise (BadParams (sprintf "'%s' has the wrong type" name))

let private position (node: JsonNode) : LinePos = { Line = value<int> node "line"; Character = value<int> node "character" }

let private range (node: JsonNode) : TextRange = { Start = position (field node "start"); End = position (field node "end") }

let capabilities () =
    J.obj
        [ "positionEncoding", J.str "utf-16"
          // 2: incremental changes (full text is also accepted when a change has no range)
          "textDocumentSync", J.obj [ "openClose", J.bool true; "change", J.num 2; "save", J.bool false ]
          "hoverProvider", J.bool true
          "completionProvider", J.obj [ "triggerCharacters", J.arr [ J.str " " ]; "resolveProvider", J.bool false ]
          "definitionProvider", J.bool true
          "referencesProvider", J.bool true
          "renameProvider", J.obj [ "prepareProvider", J.bool true ]
          "documentSymbolProvider", J.bool true
          "foldingRangeProvider", J.bool true
          "documentFormattingProvider", J.bool true
          "codeActionProvider", J.obj [ "codeActionKinds", J.arr [ J.str "quickfix" ] ]
          "inlayHintProvider", J.bool true
          "semanticTokensProvider",
          J.obj
              [ "legend", J.obj [ "tokenTypes", J.arr (tokenTypes |> List.map J.str); "tokenModifiers", J.arr (tokenModifiers |> List.map J.str) ]
                "full", J.bool true ] ]

type private Open = { Version: int; Analysis: Analysis }

type Server(write: JsonNode -> unit) =
    let documents = Dictionary<string, Open>()
    /// Documents changed since their diagnostics were last published.
    let pending = HashSet<string>()
    let mutable initialized = false
    let mutable shuttingDown = false
    let mutable exitCode: int option = None

    let notify method' parameters = write (Rpc.notification method' parameters)

    let log (kind: int) (message: string) =
        notify "window/logMessage" (J.obj [ "type", J.num kind; "message", J.str message ])

    let publish (uri: string) (state: Open) =
        notify "textDocument/publishDiagnostics" (publishParams uri (Some state.Version) state.Analysis)

    let document (parameters: JsonNode) =
        let uri = value<string> (field parameters "textDocument") "uri"
        match documents.TryGetValue uri with
        | true, d -> uri, d
        | _ -> raise (BadParams (sprintf "unknown document '%s': it was not opened (textDocument/didOpen) or was closed" uri))

    let notification (method': string) (parameters: JsonNode) =
        match method' with
        | "initialized" | "$/cancelRequest" | "$/setTrace" | "textDocument/didSave" | "workspace/didChangeConfiguration"
        | "workspace/didChangeWatchedFiles" | "workspace/didChangeWorkspaceFolders" -> ()
        | "exit" -> exitCode <- Some (if shuttingDown then 0 else 1)
        | "textDocument/didOpen" ->
            let d = field parameters "textDocument"
            let uri = value<string> d "uri"
            let state = { Version = value<int> d "version"; Analysis = Analysis(Document(value<string> d "text")) }
            documents[uri] <- state
            pending.Add uri |> ignore
        | "textDocument/didChange" ->
            let uri, current = document parameters
            let changes =
                match field parameters "contentChanges" with
                | :? JsonArray as a -> List.ofSeq a
                | _ -> raise (BadParams "'contentChanges' must be an array")
            let doc =
                changes |> List.fold (fun (doc: Document) change ->
                    let r = optionalField change "range" |> Option.map range
                    doc.Apply(r, value<string> change "text")) current.Analysis.Document
            let version = optionalField (field parameters "textDocument") "version" |> Option.map (fun v -> v.GetValue<int>()) |> Option.defaultValue (current.Version + 1)
            let state = { Version = version; Analysis = Analysis(doc) }
            documents[uri] <- state
            pending.Add uri |> ignore
        | "textDocument/didClose" ->
            let uri, _ = document parameters
            documents.Remove uri |> ignore
            pending.Remove uri |> ignore
            notify "textDocument/publishDiagnostics" (J.obj [ "uri", J.str uri; "diagnostics", J.arr [] ])
        | m when m.StartsWith "$/" -> ()
        | m -> log 3 (sprintf "dsl lsp: notification '%s' ignored" m)

    /// The result of a request, or an error (code, message).
    let request (method': string) (parameters: JsonNode) : Result<JsonNode, int * string> =
        match method' with
        | "initialize" ->
            initialized <- true
            Ok (J.obj [ "capabilities", capabilities (); "serverInfo", J.obj [ "name", J.str "dsl lsp"; "version", J.str "1.0" ] ])
        | "shutdown" ->
            shuttingDown <- true
            Ok null
        | "textDocument/hover" ->
            let _, d = document parameters
            let p = position (field parameters "position")
            let text = hover d.Analysis p
            match text with
            | Some t -> Ok (J.obj [ "contents", J.obj [ "kind", J.str "markdown"; "value", J.str t ] ])
            | None -> Ok null
        | "textDocument/completion" ->
            let _, d = document parameters
            Ok (J.obj [ "isIncomplete", J.bool false; "items", completion d.Analysis (position (field parameters "position")) ])
        | "textDocument/inlayHint" ->
            let _, d = document parameters
            Ok (inlayHints d.Analysis (range (field parameters "range")))
        | "textDocument/definition" ->
            let uri, d = document parameters
            Ok (definition uri d.Analysis (position (field parameters "position")))
        | "textDocument/references" ->
            let uri, d = document parameters
            let includeDeclaration =
                optionalField parameters "context" |> Option.bind (fun c -> optionalField c "includeDeclaration")
                |> Option.map (fun v -> v.GetValue<bool>()) |> Option.defaultValue true
            Ok (references uri d.Analysis (position (field parameters "position")) includeDeclaration)
        | "textDocument/rename" ->
            let uri, d = document parameters
            match rename uri d.Analysis (position (field parameters "position")) (value<string> parameters "newName") with
            | Ok edit -> Ok edit
            | Error message -> Error (Rpc.ErrorCodes.RequestFailed, message)
        | "textDocument/prepareRename" ->
            let _, d = document parameters
            match prepareRename d.Analysis (position (field parameters "position")) with
            | Some r -> Ok (J.range r)
            | None -> Ok null
        | "textDocument/documentSymbol" ->
            let _, d = document parameters
            Ok (documentSymbols d.Analysis)
        | "textDocument/foldingRange" ->
            let _, d = document parameters
            Ok (foldingRanges d.Analysis)
        | "textDocument/formatting" ->
            let _, d = document parameters
            match formatEdits d.Analysis with
            | Some edits -> Ok (edits |> List.map (fun (r, t) -> J.edit r t) |> J.arr)
            | None -> Error (Rpc.ErrorCodes.RequestFailed, "the file has syntax errors; fix them before formatting")
        | "textDocument/semanticTokens/full" ->
            let _, d = document parameters
            Ok (semanticTokensJson d.Analysis)
        | "textDocument/codeAction" ->
            let uri, d = document parameters
            Ok (codeActions uri d.Analysis (range (field parameters "range")))
        | m -> Error (Rpc.ErrorCodes.MethodNotFound, sprintf "unknown method '%s'" m)

    /// Set once `exit` has been received: the process's exit code.
    member _.ExitCode = exitCode

    /// Checks the documents changed since the last call and publishes their diagnostics.
    member _.Flush() =
        for uri in List.ofSeq pending do
            match documents.TryGetValue uri with
            | true, state ->
                try publish uri state
                with e -> log 1 (sprintf "dsl lsp: checking %s failed: %s" uri e.Message)
            | _ -> ()
        pending.Clear()

    member _.Handle(message: JsonNode) =
        match message with
        | :? JsonObject as o ->
            let id = tryProp o "id"
            let method' =
                match tryProp o "method" with
                | Some (:? JsonValue as v) -> (match v.TryGetValue<string>() with | true, s -> Some s | _ -> None)
                | _ -> None
            let parameters = tryProp o "params" |> Option.toObj
            match method', id with
            | None, Some _ when o.ContainsKey "result" || o.ContainsKey "error" -> () // a client's answer; the server asks nothing
            | None, id -> write (Rpc.error (Option.toObj id) Rpc.ErrorCodes.InvalidRequest "a request needs a 'method' string")
            | Some m, None ->
                if initialized || m = "exit" then
                    try notification m parameters
                    with
                    | BadParams reason -> log 1 (sprintf "dsl lsp: %s: %s" m reason)
                    | e -> log 1 (sprintf "dsl lsp: %s failed: %s" m e.Message)
            | Some m, Some id ->
                let answer =
                    if not initialized && m <> "initialize" then Error (Rpc.ErrorCodes.ServerNotInitialized, "the server is not initialized: send 'initialize' first")
                    elif shuttingDown && m <> "shutdown" then Error (Rpc.ErrorCodes.InvalidRequest, "the server is shutting down: only 'exit' is accepted")
                    else
                        try request m parameters
                        with
                        | BadParams reason -> Error (Rpc.ErrorCodes.InvalidParams, sprintf "%s: %s" m reason)
                        | e -> Error (Rpc.ErrorCodes.InternalError, sprintf "%s failed: %s" m e.Message)
                match answer with
                | Ok result -> write (Rpc.response id result)
                | Error (code, text) -> write (Rpc.error id code text)
        | _ -> write (Rpc.error null Rpc.ErrorCodes.InvalidRequest "a message must be a JSON object")

/// Serves until `exit` or the end of the input; the exit code is 0 after shutdown and exit, 1 otherwise.
let run (input: Stream) (output: Stream) : int =
    let reader = Rpc.Reader(input)
    let writer = Rpc.Writer(output)
    let server = Server(writer.Write)
    // Not disposed: the reader thread may still be blocked in a read after `exit`.
    let queue = new BlockingCollection<Rpc.Incoming>()
    let pump =
        Thread(
            (fun () ->
                let mutable reading = true
                while reading do
                    let m = try reader.Read() with :? IOException | :? ObjectDisposedException -> Rpc.Closed
                    queue.Add m
                    match m with Rpc.Closed -> reading <- false | _ -> ()),
            IsBackground = true, Name = "dsl lsp reader")
    pump.Start()
    let mutable code: int option = None
    while code.IsNone do
        match queue.Take() with
        | Rpc.Closed -> code <- Some 1
        | Rpc.Malformed reason -> writer.Write(Rpc.error null Rpc.ErrorCodes.ParseError reason)
        | Rpc.Message m ->
            server.Handle m
            code <- server.ExitCode
        if code.IsNone && queue.Count = 0 then server.Flush()
    code.Value
