module CnnDsl.Runtime.Tests.InputFilesTests

open System.IO
open Xunit
open CnnDsl.Runtime.Data
open CnnDsl.Runtime.Tests.DataFiles

/// A PNG whose header announces width x height over the data of a 1x1 image: all that a
/// 389 KB file of zeros needs to claim 20000x20000 pixels.
let hugePng (width: int) (height: int) =
    let bytes = png 1 1 1 [| 0uy |]
    Array.blit (bigEndian width) 0 bytes 16 4
    Array.blit (bigEndian height) 0 bytes 20 4
    bytes

let private file (name: string) (bytes: byte[]) =
    let path = Path.Combine(tempFolder "cnndsl-input-", name)
    File.WriteAllBytes(path, bytes)
    path

[<Fact>]
let ``images read as values in 0..1 with their channels`` () =
    let image = InputFiles.Read(file "a.png" (png 3 2 1 [| 0uy; 255uy; 51uy; 0uy; 0uy; 0uy |]))
    Assert.Equal((2, 3, 1), (image.Height, image.Width, image.Channels))
    Assert.Equal<float[]>([| 0.0; 1.0; 0.2; 0.0; 0.0; 0.0 |], image.Values)
    Assert.Equal(3, (InputFiles.Read(file "b.png" (png 3 2 1 (Array.zeroCreate 6)), 3)).Channels)

[<Theory>]
[<InlineData(20000, 20000)>]
[<InlineData(16385, 2)>]
[<InlineData(5000, 5000)>]
let ``an image larger than accepted is refused from its header, before it is decoded`` (width: int, height: int) =
    let path = file "huge.png" (hugePng width height)
    let mutable e = null
    let bytes = allocated (fun () -> e <- Assert.Throws<DataError>(fun () -> InputFiles.Read(path, 1) |> ignore))
    Assert.Equal(path, e.File)
    Assert.Contains(sprintf "is %dx%d pixels, larger than accepted" height width, e.Problem)
    Assert.Contains("resize the image first", e.Problem)
    Assert.True(bytes < 1_000_000L, sprintf "%d bytes allocated" bytes)

[<Fact>]
let ``an input image beyond the memory budget is refused with the size it would take`` () =
    let path = file "a.png" (png 16 16 3 (Array.zeroCreate 768))
    withBudget 4096L (fun () ->
        // 16x16x3 values as doubles are 6 KB
        let e = Assert.Throws<DataError>(fun () -> InputFiles.Read(path, 3) |> ignore)
        Assert.Contains("the 16x16x3 image would take 6.00 KB in memory", e.Problem))

[<Fact>]
let ``a text matrix beyond the memory budget is refused before it is read`` () =
    let path = file "m.txt" ("1 2 3\n4 5 6\n"B)
    Assert.Equal(6, (InputFiles.Read path).Values.Length)
    withBudget 64L (fun () ->
        Assert.Contains("the text matrix would take", (Assert.Throws<DataError>(fun () -> InputFiles.Read path |> ignore)).Problem))

[<Fact>]
let ``a PNG chunk announcing more than the file holds is refused before the decoder allocates it`` () =
    let bytes = png 2 1 1 [| 1uy; 2uy |]
    bytes[34] <- 198uy   // the IDAT chunk's length (bytes 33..36) becomes 13 MB
    let path = file "chunk.png" bytes
    let mutable e = null
    let allocatedBytes = allocated (fun () -> e <- Assert.Throws<DataError>(fun () -> InputFiles.Read(path, 1) |> ignore))
    Assert.Contains("the PNG chunk at byte 33 announces", e.Problem)
    Assert.True(allocatedBytes < 1_000_000L, sprintf "%d bytes allocated" allocatedBytes)

[<Fact>]
let ``a folder given as an input is named as a folder`` () =
    let e = Assert.Throws<DataError>(fun () -> InputFiles.Read(System.IO.Path.GetTempPath()) |> ignore)
    Assert.Contains("is a folder", e.Message)
