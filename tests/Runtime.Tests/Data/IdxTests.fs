module CnnDsl.Runtime.Tests.IdxTests

open System
open System.IO
open System.IO.Compression
open Xunit
open CnnDsl.Runtime.Data

let private bigEndian (n: int) = [| byte (n >>> 24); byte (n >>> 16); byte (n >>> 8); byte n |]

let private folder () =
    let d = Path.Combine(Path.GetTempPath(), "cnndsl-idx-" + Path.GetRandomFileName())
    Directory.CreateDirectory d |> ignore
    d

let private write (path: string) (bytes: byte[]) (gzip: bool) =
    if gzip then
        use f = File.Create path
        use z = new GZipStream(f, CompressionLevel.Fastest)
        z.Write(bytes, 0, bytes.Length)
    else File.WriteAllBytes(path, bytes)
    path

let images (count: int) = Array.concat [ bigEndian 2051; bigEndian count; bigEndian 4; bigEndian 3; Array.init (count * 12) byte ]
let labels (values: byte[]) = Array.concat [ bigEndian 2049; bigEndian values.Length; values ]

[<Theory>]
[<InlineData(false)>]
[<InlineData(true)>]
let ``images and labels read back, gzipped or not`` (gzip: bool) =
    let d = folder ()
    let set = Idx.Read("t", write (Path.Combine(d, "i")) (images 2) gzip, write (Path.Combine(d, "l")) (labels [| 3uy; 7uy |]) gzip, Array.init 10 string)
    Assert.Equal((2, 4, 3, 1), (set.Count, set.Height, set.Width, set.Channels))
    Assert.Equal<int[]>([| 3; 7 |], set.Labels)
    Assert.Equal(23uy, set.Pixels[23])

let private error (f: unit -> obj) =
    let e = Assert.Throws<DataError>(fun () -> f () |> ignore)
    e.Problem

[<Fact>]
let ``wrong magic numbers name the file and say what was found`` () =
    let d = folder ()
    let l = write (Path.Combine(d, "l")) (labels [| 1uy |]) false
    Assert.Contains("this is an IDX label file", error (fun () -> box (Idx.ReadImages l)))
    let junk = write (Path.Combine(d, "j")) (Array.create 20 7uy) false
    Assert.Contains("wrong magic number", error (fun () -> box (Idx.ReadImages junk)))

[<Fact>]
let ``a truncated image file says which image is incomplete`` () =
    let d = folder ()
    let bytes = images 3
    let path = write (Path.Combine(d, "i")) bytes[.. bytes.Length - 5] false
    let e = Assert.Throws<DataError>(fun () -> Idx.ReadImages path |> ignore)
    Assert.Equal(path, e.File)
    Assert.Contains("truncated", e.Problem)
    Assert.Contains("image 2 is incomplete", e.Problem)

[<Fact>]
let ``label counts and ranges are checked`` () =
    let d = folder ()
    let i = write (Path.Combine(d, "i")) (images 2) false
    let three = write (Path.Combine(d, "l3")) (labels [| 1uy; 2uy; 3uy |]) false
    Assert.Contains("3 labels for the 2 images", error (fun () -> box (Idx.Read("t", i, three, Array.init 10 string))))
    let bad = write (Path.Combine(d, "lb")) (labels [| 1uy; 12uy |]) false
    Assert.Contains("label 12 of record 1 is outside 0..9", error (fun () -> box (Idx.ReadLabels(bad, 10))))

[<Fact>]
let ``a corrupt gzip stream is a data error`` () =
    let d = folder ()
    let path = Path.Combine(d, "g")
    File.WriteAllBytes(path, [| 0x1fuy; 0x8buy; 8uy; 0uy; 1uy; 2uy; 3uy; 4uy; 5uy; 6uy; 7uy; 8uy; 9uy |])
    Assert.Contains("gzip", error (fun () -> box (Idx.ReadImages path)))

[<Fact>]
let ``an unknown data-set name lists where it looked`` () =
    Assert.Contains("not a known data set", error (fun () -> box (DataSets.Load "no-such-set")))
    let saved = Environment.GetEnvironmentVariable "CNNDSL_DATA"
    try
        Environment.SetEnvironmentVariable("CNNDSL_DATA", "/nonexistent-a")
        Assert.Contains("/nonexistent-a/cifar-10", error (fun () -> box (DataSets.Load "cifar10")))
    finally Environment.SetEnvironmentVariable("CNNDSL_DATA", saved)
