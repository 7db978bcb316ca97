module CnnDsl.Runtime.Tests.IdxTests

open System
open System.IO
open System.IO.Compression
open Xunit
open CnnDsl.Runtime.Data
open CnnDsl.Runtime.Tests.DataFiles

let private folder () = tempFolder "cnndsl-idx-"

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

[<Fact>]
let ``a gzip bomb stops after the images its header announces`` () =
    let d = folder ()
    let path = Path.Combine(d, "bomb.gz")
    do
        use f = File.Create path
        use z = new GZipStream(f, CompressionLevel.Fastest)
        z.Write(images 2)
        let zeros = Array.zeroCreate<byte> (1 <<< 20)
        for _ in 1 .. 64 do z.Write(zeros)   // 64 MB of zeros: about 64 KB compressed
    let mutable e = null
    let bytes = allocated (fun () -> e <- Assert.Throws<DataError>(fun () -> Idx.ReadImages path |> ignore))
    Assert.Equal(path, e.File)
    Assert.Contains("holds more than the header's 2 images of 4x3", e.Problem)
    Assert.True(bytes < 1_000_000L, sprintf "%d bytes allocated" bytes)

[<Theory>]
[<InlineData(false)>]
[<InlineData(true)>]
let ``a header announcing more than the file can hold is refused before the pixels are allocated`` (gzip: bool) =
    let d = folder ()
    let huge = Array.concat [ bigEndian 2051; bigEndian 60000; bigEndian 1000; bigEndian 1000; Array.zeroCreate 100 ]
    let path = write (Path.Combine(d, "i")) huge gzip
    let mutable e = null
    let bytes = allocated (fun () -> e <- Assert.Throws<DataError>(fun () -> Idx.ReadImages path |> ignore))
    Assert.Equal(path, e.File)
    Assert.Contains("truncated: the header announces 60000 images of 1000x1000", e.Problem)
    Assert.True(bytes < 1_000_000L, sprintf "%d bytes allocated" bytes)
    let labels = write (Path.Combine(d, "l")) (Array.concat [ bigEndian 2049; bigEndian Int32.MaxValue; Array.zeroCreate 10 ]) gzip
    let bytes = allocated (fun () -> Assert.Contains("announces 2147483647 labels", error (fun () -> box (Idx.ReadLabels(labels, 10)))))
    Assert.True(bytes < 1_000_000L, sprintf "%d bytes allocated" bytes)

[<Fact>]
let ``images beyond the memory budget are refused with the size they would take`` () =
    let d = folder ()
    let path = write (Path.Combine(d, "i")) (images 100) true
    withBudget 1000L (fun () ->
        let e = Assert.Throws<DataError>(fun () -> Idx.ReadImages path |> ignore)
        Assert.Contains("the header's 100 images of 4x3 would take 1.17 KB in memory, more than the 1000 B", e.Problem)
        // ReadAll (CIFAR's batches) stops decompressing at the budget too.
        Assert.Contains("decompresses to more than 1000 B", error (fun () -> box (Idx.ReadAll path))))

[<Fact>]
let ``test images of another size than the training images are refused, naming the test file`` () =
    let d = folder ()
    let sized count rows columns = Array.concat [ bigEndian 2051; bigEndian count; bigEndian rows; bigEndian columns; Array.zeroCreate (count * rows * columns) ]
    write (Path.Combine(d, "train-images-idx3-ubyte")) (sized 4 28 28) false |> ignore
    write (Path.Combine(d, "train-labels-idx1-ubyte")) (labels [| 0uy; 1uy; 2uy; 3uy |]) false |> ignore
    let test = write (Path.Combine(d, "t10k-images-idx3-ubyte")) (sized 2 14 14) false
    write (Path.Combine(d, "t10k-labels-idx1-ubyte")) (labels [| 0uy; 1uy |]) false |> ignore
    let e = Assert.Throws<DataError>(fun () -> DataSets.Load d |> ignore)
    Assert.Equal(test, e.File)
    Assert.Contains("the test images are 14x14x1 but the training images (train-images-idx3-ubyte) are 28x28x1", e.Problem)
    write (Path.Combine(d, "t10k-images-idx3-ubyte")) (sized 2 28 28) false |> ignore
    Assert.Equal(2, (DataSets.Load d).Test.Count)

[<Fact>]
let ``images of impossible sides are refused even when the header announces none`` () =
    let d = folder ()
    let path = write (Path.Combine(d, "i")) (Array.concat [ bigEndian 2051; bigEndian 0; bigEndian 65536; bigEndian 65536 ]) false
    Assert.Contains("the header announces images of 65536x65536, larger than accepted", error (fun () -> box (Idx.ReadImages path)))
