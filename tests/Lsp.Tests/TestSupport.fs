/// What the server tests share: the repository's folders, the built `dsl`, and a small LSP
/// client that speaks to a server over any pair of streams (in-memory pipes or a process).
module CnnDsl.Lsp.Tests.TestSupport

open System
open System.Collections.Concurrent
open System.Diagnostics
open System.IO
open System.IO.Pipes
open System.Text
open System.Text.Json.Nodes
open System.Threading
open System.Threading.Tasks
open CnnDsl.Lsp
open CnnDsl.Lsp.Analysis

let rec private findRoot (dir: DirectoryInfo) =
    if isNull dir then failwith "CnnDsl.sln not found above the test folder"
    elif File.Exists(Path.Combine(dir.FullName, "CnnDsl.sln")) then dir.FullName
    else findRoot dir.Parent

/// Short reads of JSON values (generic method calls need parentheses in F# arguments).
type JsonNode with
    member n.S = n.GetValue<string>()
    member n.I = n.GetValue<int>()
    member n.B = n.GetValue<bool>()
    member n.F = n.GetValue<float>()
    member n.A = n.AsArray()

let root = findRoot (DirectoryInfo AppContext.BaseDirectory)
let repoPath (parts: string list) = Path.Combine(root :: parts |> Array.ofList)

/// The `dsl` program built beside these tests (same configuration).
let dslPath =
    let config = DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent.Name
    repoPath [ "src"; "Cli"; "bin"; config; "net10.0"; "dsl" ]

let uri (name: string) = "file:///models/" + name

let textDocument (u: string) = J.obj [ "uri", J.str u ]
let at line character = J.obj [ "line", J.num line; "character", J.num character ]
let span l1 c1 l2 c2 = J.obj [ "start", at l1 c1; "end", at l2 c2 ]
let positionParams u line character = J.obj [ "textDocument", textDocument u; "position", at line character ]

/// An LSP client over two streams: a reader thread collects every message the server sends.
type Client(toServer: Stream, fromServer: Stream) =
    let messages = new BlockingCollection<JsonNode>()
    let seen = ConcurrentQueue<JsonNode>()
    let writer = Rpc.Writer(toServer)
    let mutable nextId = 0
    let reader =
        Task.Run(fun () ->
            let r = Rpc.Reader(fromServer)
            let mutable go = true
            while go do
                match r.Read() with
                | Rpc.Message m -> messages.Add m
                | Rpc.Malformed reason -> failwithf "the server sent a malformed message: %s" reason
                | Rpc.Closed -> go <- false
            messages.CompleteAdding())

    /// Notifications received so far and not yet taken by a wait.
    member _.Notifications = List.ofSeq seen

    member _.SendRaw(bytes: byte[]) =
        toServer.Write(bytes, 0, bytes.Length)
        toServer.Flush()

    member c.SendRawText(body: string) =
        let b = Encoding.UTF8.GetBytes body
        c.SendRaw(Array.append (Encoding.ASCII.GetBytes(sprintf "Content-Length: %d\r\n\r\n" b.Length)) b)

    member _.Notify(method': string, parameters: JsonNode) = writer.Write(Rpc.notification method' parameters)

    /// Waits for a message matching `pick`, keeping the others as notifications seen.
    member _.WaitFor(pick: JsonNode -> bool, ?timeoutMs: int) : JsonNode =
        let deadline = DateTime.UtcNow.AddMilliseconds(float (defaultArg timeoutMs 20000))
        let mutable found: JsonNode = null
        // Earlier notifications first.
        let earlier = seen |> Seq.tryFind pick
        match earlier with
        | Some m ->
            let rest = seen |> Seq.filter (fun x -> not (obj.ReferenceEquals(x, m))) |> Array.ofSeq
            seen.Clear()
            for x in rest do seen.Enqueue x
            m
        | None ->
            while isNull found do
                let left = deadline - DateTime.UtcNow
                let mutable m: JsonNode = null
                if left <= TimeSpan.Zero || not (messages.TryTake(&m, left)) then
                    failwith "the server did not answer in time (or closed its output)"
                if pick m then found <- m else seen.Enqueue m
            found

    /// Sends a request and returns the whole response (with "result" or "error").
    member c.Request(method': string, parameters: JsonNode) : JsonNode =
        nextId <- nextId + 1
        let id = nextId
        writer.Write(Rpc.request id method' parameters)
        c.WaitFor(fun m -> match m["id"] with null -> false | v -> v.GetValueKind() = Text.Json.JsonValueKind.Number && v.I = id)

    member c.Result(method': string, parameters: JsonNode) : JsonNode =
        let r = c.Request(method', parameters)
        match r["error"] with
        | null -> r["result"]
        | e -> failwithf "%s failed: %s" method' (e.ToJsonString())

    member c.Diagnostics(u: string) : JsonNode =
        let m = c.WaitFor(fun m -> (match m["method"] with null -> false | v -> v.S = "textDocument/publishDiagnostics") && m["params"].["uri"].S = u)
        m["params"]

    member c.Initialize() = c.Result("initialize", J.obj [ "processId", null; "rootUri", null; "capabilities", J.obj [] ])

    member c.Open(u: string, text: string) =
        c.Notify("textDocument/didOpen", J.obj [ "textDocument", J.obj [ "uri", J.str u; "languageId", J.str "cnn"; "version", J.num 1; "text", J.str text ] ])
        c.Diagnostics u

    /// Once the server has closed its output.
    member _.Closed(timeoutMs: int) = reader.Wait(timeoutMs)

/// A server in this process over pipes: the client, and the task giving the server's exit code.
let inMemory () =
    let toServer = new AnonymousPipeServerStream(PipeDirection.Out)
    let serverIn = new AnonymousPipeClientStream(PipeDirection.In, toServer.ClientSafePipeHandle)
    let fromServer = new AnonymousPipeServerStream(PipeDirection.In)
    let serverOut = new AnonymousPipeClientStream(PipeDirection.Out, fromServer.ClientSafePipeHandle)
    let server =
        Task.Run(fun () ->
            let code = Server.run serverIn serverOut
            serverOut.Dispose()
            code)
    Client(toServer, fromServer), toServer :> Stream, server

/// Codes and 0-based lines of published diagnostics.
let codes (publish: JsonNode) =
    publish["diagnostics"].A
    |> Seq.map (fun d -> d["code"].S, d["range"].["start"].["line"].I)
    |> List.ofSeq

/// Runs a program to its end: (exit code, stdout, stderr).
let runProcess (file: string) (args: string list) (env: (string * string) list) (workDir: string) (timeoutMs: int) =
    let info = ProcessStartInfo(file, args, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workDir)
    for k, v in env do info.Environment[k] <- v
    use p = Process.Start info
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEndAsync()
    if not (p.WaitForExit timeoutMs) then
        p.Kill true
        failwithf "%s %s did not finish within %d ms; output so far: %s" file (String.Join(" ", args)) timeoutMs err.Result
    p.ExitCode, out.Result, err.Result
