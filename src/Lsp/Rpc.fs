/// JSON-RPC 2.0 over a byte stream with LSP's base protocol framing: `Content-Length: N`
/// headers, an empty line, then N bytes of UTF-8 JSON. A small reader and writer of our own
/// over System.Text.Json: the server needs only this, and owning it lets a malformed message
/// be answered with ParseError and skipped instead of ending the connection.
module CnnDsl.Lsp.Rpc

open System
open System.IO
open System.Text
open System.Text.Json
open System.Text.Json.Nodes

/// JSON-RPC and LSP error codes.
module ErrorCodes =
    let ParseError = -32700
    let InvalidRequest = -32600
    let MethodNotFound = -32601
    let InvalidParams = -32602
    let InternalError = -32603
    let ServerNotInitialized = -32002
    let RequestFailed = -32803

/// Past this a message is taken for garbage: its bytes are skipped, not buffered.
let maxMessageBytes = 64 * 1024 * 1024

type Incoming =
    /// a well-formed JSON value (not yet validated as a request)
    | Message of JsonNode
    /// a frame that could not be read as JSON; the reason, for the ParseError answer
    | Malformed of string
    /// the input ended
    | Closed

/// Reads framed messages from a stream (buffered: headers are read a byte at a time).
type Reader(input: Stream) =
    let stream = new BufferedStream(input, 65536)

    /// One header line without its line end; None at the end of the input.
    member private _.ReadLine() : string option =
        let bytes = ResizeArray<byte>()
        let mutable reading = true
        let mutable ended = false
        while reading do
            let b = stream.ReadByte()
            if b < 0 then
                reading <- false
                ended <- true
            elif b = int '\n' then reading <- false
            elif bytes.Count < 8192 then bytes.Add(byte b)
        if ended && bytes.Count = 0 then None
        else Some (Encoding.ASCII.GetString(bytes.ToArray()).TrimEnd('\r'))

    /// Reads exactly n bytes; false when the input ends first.
    member private _.ReadExactly(buffer: byte[], n: int) =
        let mutable count = 0
        let mutable ok = true
        while ok && count < n do
            let r = stream.Read(buffer, count, n - count)
            if r = 0 then ok <- false else count <- count + r
        ok

    member r.Read() : Incoming =
        // Headers up to the first empty line; blank lines before any header are skipped.
        let mutable length: int64 option = None
        let mutable bad: string option = None
        let mutable sawHeader = false
        let mutable result: Incoming option = None
        while result.IsNone do
            match r.ReadLine() with
            | None -> result <- Some Closed
            | Some "" when not sawHeader -> ()
            | Some "" ->
                match length, bad with
                | _, Some reason -> result <- Some (Malformed reason)
                | None, None -> result <- Some (Malformed "the message has no Content-Length header")
                | Some n, None when n > int64 maxMessageBytes ->
                    // Skip the body so that the next message is found.
                    let chunk = Array.zeroCreate<byte> 65536
                    let mutable left = n
                    let mutable ok = true
                    while ok && left > 0L do
                        let got = stream.Read(chunk, 0, int (min left 65536L))
                        if got = 0 then ok <- false else left <- left - int64 got
                    result <- Some (if ok then Malformed (sprintf "the message has %d bytes, more than the limit of %d" n maxMessageBytes) else Closed)
                | Some n, None ->
                    let body = Array.zeroCreate<byte> (int n)
                    if not (r.ReadExactly(body, int n)) then result <- Some Closed
                    else
                        try
                            match JsonNode.Parse(ReadOnlySpan<byte>(body)) with
                            | null -> result <- Some (Malformed "the message is JSON null")
                            | node -> result <- Some (Message node)
                        with :? JsonException as e -> result <- Some (Malformed (sprintf "the message is not valid JSON: %s" e.Message))
            | Some line ->
                sawHeader <- true
                let colon = line.IndexOf ':'
                if colon < 0 then bad <- Some (sprintf "bad header line '%s' (expected 'Name: value')" (if line.Length > 60 then line.Substring(0, 60) + "..." else line))
                else
                    let name = line.Substring(0, colon).Trim()
                    let value = line.Substring(colon + 1).Trim()
                    if name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase) then
                        match Int64.TryParse value with
                        | true, n when n >= 0L -> length <- Some n
                        | _ -> bad <- Some (sprintf "bad Content-Length '%s'" value)
        result.Value

/// Writes framed messages; safe to call from several threads.
type Writer(output: Stream) =
    let gate = obj ()
    member _.Write(message: JsonNode) =
        let body = Encoding.UTF8.GetBytes(message.ToJsonString())
        let header = Encoding.ASCII.GetBytes(sprintf "Content-Length: %d\r\n\r\n" body.Length)
        lock gate (fun () ->
            output.Write(header, 0, header.Length)
            output.Write(body, 0, body.Length)
            output.Flush())

let private idNode (id: JsonNode) = if isNull id then null else id.DeepClone()

let response (id: JsonNode) (result: JsonNode) : JsonNode =
    JsonObject(dict [ "jsonrpc", JsonValue.Create "2.0" :> JsonNode; "id", idNode id; "result", result ]) :> JsonNode

let error (id: JsonNode) (code: int) (message: string) : JsonNode =
    let err = JsonObject(dict [ "code", JsonValue.Create code :> JsonNode; "message", JsonValue.Create message :> JsonNode ])
    JsonObject(dict [ "jsonrpc", JsonValue.Create "2.0" :> JsonNode; "id", idNode id; "error", err :> JsonNode ]) :> JsonNode

let notification (method': string) (parameters: JsonNode) : JsonNode =
    JsonObject(dict [ "jsonrpc", JsonValue.Create "2.0" :> JsonNode; "method", JsonValue.Create method' :> JsonNode; "params", parameters ]) :> JsonNode

let request (id: int) (method': string) (parameters: JsonNode) : JsonNode =
    JsonObject(dict [ "jsonrpc", JsonValue.Create "2.0" :> JsonNode; "id", JsonValue.Create id :> JsonNode; "method", JsonValue.Create method' :> JsonNode; "params", parameters ]) :> JsonNode
