module CnnDsl.Runtime.Tests.AtomicFileTests

open System
open System.IO
open Xunit
open CnnDsl.Runtime.Training

let private folder () =
    let d = Path.Combine(Path.GetTempPath(), "cnndsl-atomic-" + Path.GetRandomFileName())
    Directory.CreateDirectory d |> ignore
    d

let private temporaries (d: string) = Directory.GetFiles(d, "*.tmp")

[<Fact>]
let ``a write replaces the file and leaves no temporary file`` () =
    let d = folder ()
    let p = Path.Combine(d, "a.bin")
    AtomicFile.WriteAllBytes(p, [| 1uy |])
    AtomicFile.WriteAllBytes(p, [| 2uy; 3uy |])
    Assert.Equal<byte[]>([| 2uy; 3uy |], File.ReadAllBytes p)
    Assert.Empty(temporaries d)

[<Fact>]
let ``a failed write (a full disk) removes its temporary file and keeps the old content`` () =
    let d = folder ()
    let p = Path.Combine(d, "last.ckpt")
    File.WriteAllText(p, "old")
    let e = Assert.Throws<IOException>(fun () ->
        AtomicFile.Write(p, fun s -> s.Write(Array.zeroCreate 1000, 0, 1000); raise (IOException "No space left on device")))
    Assert.Equal(sprintf "cannot write '%s': the disk is full; nothing was changed there: free some space, or write elsewhere (--out DIR or -o FILE)" p, e.Message)
    Assert.Equal("old", File.ReadAllText p)
    Assert.Empty(temporaries d)

[<Fact>]
let ``a symbolic link where the old temporary name was is neither followed nor overwritten`` () =
    let d = folder ()
    let victim = Path.Combine(d, "victim.txt")
    File.WriteAllText(victim, "precious")
    let p = Path.Combine(d, "last.ckpt")
    File.CreateSymbolicLink(p + ".tmp", victim) |> ignore
    // and a link at the target itself is replaced, not written through
    File.CreateSymbolicLink(p, victim) |> ignore
    AtomicFile.WriteAllBytes(p, [| 7uy |])
    Assert.Equal("precious", File.ReadAllText victim)
    Assert.Null(FileInfo(p).LinkTarget)
    Assert.Equal<byte[]>([| 7uy |], File.ReadAllBytes p)

[<Fact>]
let ``an empty name or a folder is refused by name before anything is written`` () =
    let d = folder ()
    Assert.Contains("the output file name is empty", (Assert.Throws<IOException>(fun () -> AtomicFile.WriteAllBytes("", [| 1uy |]))).Message)
    let e = Assert.Throws<IOException>(fun () -> AtomicFile.WriteAllBytes(d, [| 1uy |]))
    Assert.Contains(sprintf "'%s' is a folder" d, e.Message)
    Assert.Empty(Directory.GetFiles(Path.GetDirectoryName d, Path.GetFileName d + "*.tmp"))

[<Fact>]
let ``a device or a pipe is never replaced by the file written in its place`` () =
    // A named pipe of the test's own (a device such as /dev/full is refused the same way, but
    // a test must not risk replacing one).
    let fifo = Path.Combine(Path.GetTempPath(), Path.GetRandomFileName())
    use p = Diagnostics.Process.Start("mkfifo", fifo)
    p.WaitForExit()
    let e = Assert.Throws<IOException>(fun () -> AtomicFile.WriteAllBytes(fifo, [| 1uy |]))
    Assert.Contains("not a regular file", e.Message)
    File.Delete fifo

[<Fact>]
let ``a folder path that is a file is refused by name`` () =
    let d = folder ()
    let file = Path.Combine(d, "plain.txt")
    File.WriteAllText(file, "x")
    let p = Path.Combine(file, "a.bin")
    let e = Assert.Throws<IOException>(fun () -> AtomicFile.WriteAllBytes(p, [| 1uy |]))
    Assert.Equal(sprintf "cannot write '%s': '%s' is a file, not a folder" p file, e.Message)
    Assert.Equal("x", File.ReadAllText file)

[<Fact>]
let ``the bytes go to one temporary file beside the target, named after it`` () =
    let d = folder ()
    let p = Path.Combine(d, "last.ckpt")
    let mutable seen = [||]
    AtomicFile.Write(p, fun s -> seen <- Directory.GetFiles d |> Array.map Path.GetFileName; s.WriteByte 1uy)
    let name = Assert.Single seen
    // NAME.RANDOM.tmp: a stale one is recognisable as this file's
    Assert.Matches(@"^last\.ckpt\.[a-z0-9]{11}\.tmp$", name)

[<Fact>]
let ``a failed write names the target and the cause: another IO error, a full disk by its code, a refused access; other errors pass unchanged`` () =
    let d = folder ()
    let p = Path.Combine(d, "last.ckpt")
    File.WriteAllText(p, "old")
    let failing (e: exn) = fun (s: Stream) -> s.WriteByte 1uy; raise e
    let e = Assert.Throws<IOException>(fun () -> AtomicFile.Write(p, failing (IOException "boom")))
    Assert.Equal(sprintf "cannot write '%s': boom; nothing was changed there: check that the folder exists and can be written, or write elsewhere" p, e.Message)
    // ENOSPC (28) with another message is still a full disk
    let e = Assert.Throws<IOException>(fun () -> AtomicFile.Write(p, failing (IOException("quota exceeded", 28))))
    Assert.Contains("the disk is full", e.Message)
    let e = Assert.Throws<IOException>(fun () -> AtomicFile.Write(p, failing (UnauthorizedAccessException "denied")))
    Assert.Equal(sprintf "cannot write '%s': denied; nothing was changed there: check that the folder exists and can be written, or write elsewhere" p, e.Message)
    Assert.Throws<InvalidOperationException>(fun () -> AtomicFile.Write(p, failing (InvalidOperationException "a bug"))) |> ignore
    Assert.Equal("old", File.ReadAllText p)
    Assert.Empty(temporaries d)

[<Fact>]
let ``WriteAllLines writes each line and a newline, in UTF-8 without a byte-order mark`` () =
    let d = folder ()
    let p = Path.Combine(d, "log.csv")
    AtomicFile.WriteAllLines(p, [ "epoch,loss"; "1,0.5 é" ])
    Assert.Equal<byte[]>(Text.Encoding.UTF8.GetBytes("epoch,loss\n1,0.5 é\n"), File.ReadAllBytes p)
