/// The protocol, end to end over in-memory pipes: what a client sends and what it gets back.
module CnnDsl.Lsp.Tests.ServerTests

open System
open System.IO
open System.Text.Json.Nodes
open Xunit
open CnnDsl.Lsp
open CnnDsl.Lsp.Analysis
open CnnDsl.Lsp.Tests.TestSupport

let private lenet () = File.ReadAllText(repoPath [ "models"; "lenet.cnn" ])

let private errorCode (response: JsonNode) =
    match response["error"] with
    | null -> failwithf "expected an error, got %s" (response.ToJsonString())
    | e -> e["code"].I

let private change (c: Client) u version (changes: JsonNode list) =
    c.Notify("textDocument/didChange", J.obj [ "textDocument", J.obj [ "uri", J.str u; "version", J.num version ]; "contentChanges", J.arr changes ])
    c.Diagnostics u

[<Fact>]
let ``initialize announces incremental sync and every feature`` () =
    let c, input, server = inMemory ()
    let caps = c.Initialize().["capabilities"]
    Assert.Equal(2, caps["textDocumentSync"].["change"].I)
    Assert.True(caps.["renameProvider"].["prepareProvider"].B)
    for feature in [ "hoverProvider"; "definitionProvider"; "referencesProvider"; "documentSymbolProvider"
                     "foldingRangeProvider"; "documentFormattingProvider"; "inlayHintProvider" ] do
        Assert.True(caps[feature].B, feature)
    Assert.NotNull(caps["completionProvider"])
    Assert.NotNull(caps["codeActionProvider"])
    Assert.Equal<string list>(Analysis.tokenTypes, caps.["semanticTokensProvider"].["legend"].["tokenTypes"].A |> Seq.map (fun t -> t.S) |> List.ofSeq)
    Assert.Null(c.Result("shutdown", null))
    c.Notify("exit", null)
    Assert.True(server.Wait 5000)
    Assert.Equal(0, server.Result)
    input.Dispose()

[<Fact>]
let ``didOpen and didChange (full and incremental) publish dsl check's diagnostics for each version`` () =
    let c, input, server = inMemory ()
    c.Initialize() |> ignore
    let u = uri "lenet.cnn"
    let first = c.Open(u, lenet ())
    Assert.Empty(first["diagnostics"].A)
    Assert.Equal(1, first["version"].I)
    // incremental: `maxpool 2` (line 6) becomes `maxpool 13`
    let second = change c u 2 [ J.obj [ "range", span 6 8 6 9; "text", J.str "13" ] ]
    Assert.Equal<(string * int) list>([ "CNN302", 6 ], codes second)
    Assert.Equal(2, second["version"].I)
    let d = second["diagnostics"].A.[0]
    Assert.Equal(1, d["severity"].I)
    Assert.StartsWith("maxpool window 13x13 is larger than its 10x10 input", d["message"].S)
    Assert.Contains("\nhint: use a pool of at most 10x10", d["message"].S)
    // two changes in one notification, applied in order
    let third = change c u 3 [ J.obj [ "range", span 6 8 6 10; "text", J.str "2" ]; J.obj [ "range", span 10 16 10 16; "text", J.str "x" ] ]
    Assert.Equal<(string * int) list>([ "CNN003", 10 ], codes third)
    // full text
    let fourth = change c u 4 [ J.obj [ "text", J.str (lenet ()) ] ]
    Assert.Empty(fourth["diagnostics"].A)
    c.Notify("textDocument/didClose", J.obj [ "textDocument", textDocument u ])
    Assert.Empty((c.Diagnostics u).["diagnostics"].A)
    input.Dispose()
    Assert.True(server.Wait 5000)

[<Fact>]
let ``hover, completion, inlay hints, symbols, folding and formatting answer over the protocol`` () =
    let c, input, server = inMemory ()
    c.Initialize() |> ignore
    let u = uri "lenet.cnn"
    c.Open(u, lenet ()) |> ignore
    let hover = c.Result("textDocument/hover", positionParams u 3 1)
    Assert.Equal("markdown", hover["contents"].["kind"].S)
    Assert.Contains("out = ceil(28/1) = 28", hover["contents"].["value"].S)
    Assert.Null(c.Result("textDocument/hover", positionParams u 0 3)) // a comment
    let items = c.Result("textDocument/completion", positionParams u 3 20).["items"].A |> Seq.map (fun i -> i["label"].S)
    Assert.Contains("same", items)
    let hints = c.Result("textDocument/inlayHint", J.obj [ "textDocument", textDocument u; "range", span 0 0 20 0 ])
    Assert.Equal("-> 28x28x6  156 params", hints.A.[0].["label"].S)
    Assert.Equal(10, c.Result("textDocument/documentSymbol", J.obj [ "textDocument", textDocument u ]).A.Count)
    Assert.NotEmpty(c.Result("textDocument/foldingRange", J.obj [ "textDocument", textDocument u ]).A)
    let formatting = J.obj [ "textDocument", textDocument u; "options", J.obj [ "tabSize", J.num 2; "insertSpaces", J.bool true ] ]
    Assert.Empty(c.Result("textDocument/formatting", formatting).A) // lenet.cnn is already canonical
    let tokens = c.Result("textDocument/semanticTokens/full", J.obj [ "textDocument", textDocument u ]).["data"].A
    Assert.Equal(0, tokens.Count % 5)
    Assert.Equal<int list>([ 0; 0; (lenet ()).Split("\n").[0].Length; 4; 0 ], tokens |> Seq.take 5 |> Seq.map (fun v -> v.I) |> List.ofSeq) // the first comment line
    input.Dispose()
    Assert.True(server.Wait 5000)

[<Fact>]
let ``definition, references, rename and quick fixes over the protocol`` () =
    let c, input, server = inMemory ()
    c.Initialize() |> ignore
    let u = uri "blocks.cnn"
    let opened = c.Open(u, "input 8x8x1\nlet unit f = (conv f 3x3 same)\nunit 4\nunit 8\nflatten\ndense 2 softmaxx\n")
    Assert.Equal<(string * int) list>([ "CNN003", 5 ], codes opened)
    let def = c.Result("textDocument/definition", positionParams u 2 1)
    Assert.Equal(u, def["uri"].S)
    Assert.Equal(1, def["range"].["start"].["line"].I)
    let refs = c.Result("textDocument/references", J.obj [ "textDocument", textDocument u; "position", at 1 5; "context", J.obj [ "includeDeclaration", J.bool false ] ])
    Assert.Equal<int list>([ 2; 3 ], refs.A |> Seq.map (fun l -> l["range"].["start"].["line"].I) |> List.ofSeq)
    let prepared = c.Result("textDocument/prepareRename", positionParams u 3 2)
    Assert.Equal((3, 0, 4), (prepared.["start"].["line"].I, prepared.["start"].["character"].I, prepared.["end"].["character"].I))
    Assert.Null(c.Result("textDocument/prepareRename", positionParams u 0 1)) // 'input' is no block
    let rename = c.Result("textDocument/rename", J.obj [ "textDocument", textDocument u; "position", at 2 1; "newName", J.str "cell" ])
    Assert.Equal(3, rename["changes"].[u].A.Count)
    let refused = c.Request("textDocument/rename", J.obj [ "textDocument", textDocument u; "position", at 2 1; "newName", J.str "dense" ])
    Assert.Equal(Rpc.ErrorCodes.RequestFailed, errorCode refused)
    let actions = c.Result("textDocument/codeAction", J.obj [ "textDocument", textDocument u; "range", span 5 0 5 16; "context", J.obj [ "diagnostics", J.arr [] ] ])
    let action = actions.A.[0]
    Assert.Equal("quickfix", action["kind"].S)
    Assert.Equal("softmax", action["edit"].["changes"].[u].A.[0].["newText"].S)
    input.Dispose()
    Assert.True(server.Wait 5000)

[<Fact>]
let ``malformed JSON, unknown methods and unknown documents get LSP errors and the server keeps serving`` () =
    let c, input, server = inMemory ()
    // before initialize
    Assert.Equal(Rpc.ErrorCodes.ServerNotInitialized, errorCode (c.Request("textDocument/hover", positionParams "x" 0 0)))
    c.Initialize() |> ignore
    c.SendRawText "{\"jsonrpc\":\"2.0\",\"id\":99,\"method\":"
    let parseError = c.WaitFor(fun m -> not (isNull m["error"]) && isNull m["id"])
    Assert.Equal(Rpc.ErrorCodes.ParseError, parseError["error"].["code"].I)
    c.SendRaw(Text.Encoding.ASCII.GetBytes "Garbage-Header\r\n\r\n")
    Assert.Equal(Rpc.ErrorCodes.ParseError, c.WaitFor(fun m -> not (isNull m["error"]) && isNull m["id"]).["error"].["code"].I)
    c.SendRawText "[1,2]"
    Assert.Equal(Rpc.ErrorCodes.InvalidRequest, c.WaitFor(fun m -> not (isNull m["error"])).["error"].["code"].I)
    Assert.Equal(Rpc.ErrorCodes.MethodNotFound, errorCode (c.Request("textDocument/teleport", J.obj [])))
    // a string id is answered with the same id
    c.SendRawText "{\"jsonrpc\":\"2.0\",\"id\":\"abc\",\"method\":\"nothing/here\"}"
    let answer = c.WaitFor(fun m -> not (isNull m["id"]) && m["id"].GetValueKind() = Text.Json.JsonValueKind.String)
    Assert.Equal("abc", answer.["id"].S)
    Assert.Equal(Rpc.ErrorCodes.MethodNotFound, answer.["error"].["code"].I)
    let unknown = c.Request("textDocument/hover", positionParams "file:///nowhere.cnn" 0 0)
    Assert.Equal(Rpc.ErrorCodes.InvalidParams, errorCode unknown)
    Assert.Contains("unknown document 'file:///nowhere.cnn'", unknown["error"].["message"].S)
    Assert.Equal(Rpc.ErrorCodes.InvalidParams, errorCode (c.Request("textDocument/hover", J.obj [ "position", at 0 0 ])))
    // a change to an unknown document is a notification: logged, not answered
    c.Notify("textDocument/didChange", J.obj [ "textDocument", J.obj [ "uri", J.str "file:///nowhere.cnn"; "version", J.num 2 ]; "contentChanges", J.arr [] ])
    let logged = c.WaitFor(fun m -> (match m["method"] with null -> false | v -> v.S = "window/logMessage"))
    Assert.Contains("unknown document", logged["params"].["message"].S)
    // still serving
    let u = uri "after.cnn"
    Assert.Equal<(string * int) list>([ "CNN302", 1 ], codes (c.Open(u, "input 12x12x1\nmaxpool 13\n")))
    Assert.Null(c.Result("shutdown", null))
    Assert.Equal(Rpc.ErrorCodes.InvalidRequest, errorCode (c.Request("textDocument/hover", positionParams u 0 0)))
    c.Notify("exit", null)
    Assert.True(server.Wait 5000)
    Assert.Equal(0, server.Result)
    input.Dispose()

[<Fact>]
let ``the server ends when its input closes, with exit code 1 without shutdown`` () =
    let c, input, server = inMemory ()
    c.Initialize() |> ignore
    input.Dispose()
    Assert.True(server.Wait 5000)
    Assert.Equal(1, server.Result)
    Assert.True(c.Closed 5000)

[<Fact>]
let ``exit without shutdown ends with code 1`` () =
    let c, input, server = inMemory ()
    c.Initialize() |> ignore
    c.Notify("exit", null)
    Assert.True(server.Wait 5000)
    Assert.Equal(1, server.Result)
    input.Dispose()

[<Fact>]
let ``changes are checked and published when no message waits: a burst gives one publish, of its last version`` () =
    let sent = ResizeArray<JsonNode>()
    let server = Server.Server(sent.Add)
    server.Handle(Rpc.request 1 "initialize" (J.obj [ "capabilities", J.obj [] ]))
    let u = uri "burst.cnn"
    server.Handle(Rpc.notification "textDocument/didOpen" (J.obj [ "textDocument", J.obj [ "uri", J.str u; "languageId", J.str "cnn"; "version", J.num 1; "text", J.str "input 12x12x1\nmaxpool 2\n" ] ]))
    for version, size in [ 2, "13"; 3, "1"; 4, "14" ] do
        server.Handle(Rpc.notification "textDocument/didChange" (J.obj [ "textDocument", J.obj [ "uri", J.str u; "version", J.num version ]; "contentChanges", J.arr [ J.obj [ "range", span 1 8 1 10; "text", J.str (size.PadRight 2) ] ] ]))
    let publishes () = sent |> Seq.filter (fun m -> not (isNull m["method"]) && m["method"].S = "textDocument/publishDiagnostics") |> List.ofSeq
    Assert.Empty(publishes ())
    server.Flush()
    match publishes () with
    | [ p ] ->
        Assert.Equal(4, p["params"].["version"].I)
        Assert.Equal<(string * int) list>([ "CNN302", 1 ], codes p["params"])
    | other -> failwithf "expected one publish, got %d" other.Length
    server.Flush()
    Assert.Equal(1, (publishes ()).Length)
