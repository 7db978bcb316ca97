module CnnDsl.Lsp.Tests.RpcTests

open System.IO
open System.Text
open Xunit
open CnnDsl.Lsp

let private frame (body: string) =
    let b = Encoding.UTF8.GetBytes body
    sprintf "Content-Length: %d\r\n\r\n" b.Length + body

let private readAll (text: string) =
    let r = Rpc.Reader(new MemoryStream(Encoding.UTF8.GetBytes text))
    let rec go acc =
        match r.Read() with
        | Rpc.Closed -> List.rev acc
        | m -> go (m :: acc)
    go []

let private describe =
    function
    | Rpc.Message m -> "message " + m.ToJsonString()
    | Rpc.Malformed reason -> "malformed " + reason
    | Rpc.Closed -> "closed"

[<Fact>]
let ``reads framed messages one after another, with a Content-Type header and non-ASCII text`` () =
    let text = frame """{"a":1}""" + "Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n" + frame """{"b":"é→"}"""
    let got = readAll text |> List.map describe
    Assert.Equal<string list>([ """message {"a":1}"""; """message {"b":"\u00E9\u2192"}""" ], got)

[<Fact>]
let ``a body that is not JSON is reported and the next message is still read`` () =
    let got = readAll (frame "{not json" + frame """{"ok":true}""")
    match got with
    | [ Rpc.Malformed reason; Rpc.Message m ] ->
        Assert.Contains("not valid JSON", reason)
        Assert.True(m["ok"].GetValue<bool>())
    | other -> failwithf "unexpected: %A" (other |> List.map describe)

[<Fact>]
let ``headers without Content-Length or with a bad one are malformed, not fatal`` () =
    let got = readAll ("X-Other: 1\r\n\r\n" + "Content-Length: abc\r\n\r\n" + frame "[1]") |> List.map describe
    Assert.Equal(3, got.Length)
    Assert.StartsWith("malformed the message has no Content-Length", got[0])
    Assert.StartsWith("malformed bad Content-Length 'abc'", got[1])
    Assert.Equal("message [1]", got[2])

[<Fact>]
let ``a body cut short by the end of the input is the end, not a message`` () =
    Assert.Empty(readAll "Content-Length: 50\r\n\r\n{\"a\":")

[<Fact>]
let ``the writer counts Content-Length in UTF-8 bytes`` () =
    let out = new MemoryStream()
    Rpc.Writer(out).Write(Rpc.notification "m" (Analysis.J.str "ü"))
    let text = Encoding.UTF8.GetString(out.ToArray())
    let body = """{"jsonrpc":"2.0","method":"m","params":"\u00FC"}"""
    Assert.Equal(sprintf "Content-Length: %d\r\n\r\n%s" (Encoding.UTF8.GetByteCount body) body, text)
    // and reads back
    Assert.Equal<string list>([ "message " + body ], readAll text |> List.map describe)

[<Fact>]
let ``error answers carry the request's id and the code`` () =
    let e = Rpc.error (Analysis.J.num 7) Rpc.ErrorCodes.MethodNotFound "unknown method 'x'"
    Assert.Equal("""{"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"unknown method \u0027x\u0027"}}""", e.ToJsonString())
    Assert.Equal("""{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"m"}}""", (Rpc.error null Rpc.ErrorCodes.ParseError "m").ToJsonString())
