module CnnDsl.Runtime.Tests.ImageFolderTests

open System.IO
open Xunit
open CnnDsl.Runtime.Data

/// A 24-bit BMP (bottom-up rows, each padded to 4 bytes) of one colour.
let private bmp (path: string) (w: int) (h: int) (r: byte, g: byte, b: byte) =
    let row = (w * 3 + 3) / 4 * 4
    let size = 54 + row * h
    use f = new BinaryWriter(File.Create path)
    f.Write("BM"B); f.Write(size); f.Write(0); f.Write(54)
    f.Write(40); f.Write(w); f.Write(h); f.Write(1s); f.Write(24s); f.Write(0); f.Write(row * h); f.Write(2835); f.Write(2835); f.Write(0); f.Write(0)
    for _ in 1 .. h do
        for _ in 1 .. w do f.Write(b); f.Write(g); f.Write(r)
        for _ in 1 .. row - w * 3 do f.Write(0uy)

let private folder () =
    let d = Path.Combine(Path.GetTempPath(), "cnndsl-images-" + Path.GetRandomFileName())
    for c in [ "cats"; "dogs" ] do Directory.CreateDirectory(Path.Combine(d, c)) |> ignore
    d

[<Fact>]
let ``a folder per class gives labelled images in class-name order`` () =
    let d = folder ()
    for i in 0 .. 9 do
        bmp (Path.Combine(d, "cats", sprintf "%d.bmp" i)) 4 3 (255uy, 0uy, 0uy)
        bmp (Path.Combine(d, "dogs", sprintf "%d.bmp" i)) 4 3 (0uy, 0uy, 255uy)
    let set = ImageFolder.Read(d, "pets")
    Assert.Equal<string[]>([| "cats"; "dogs" |], set.ClassNames)
    Assert.Equal((20, 3, 4, 3), (set.Count, set.Height, set.Width, set.Channels))
    Assert.Equal<byte[]>([| 255uy; 0uy; 0uy |], set.Pixels[0..2])
    Assert.Equal(1, set.Labels[10])
    let split = DataSets.Load d
    Assert.Equal(2, split.Test.Count)

[<Fact>]
let ``images of another size, broken images and empty classes are errors naming the file`` () =
    let d = folder ()
    bmp (Path.Combine(d, "cats", "a.bmp")) 4 3 (1uy, 2uy, 3uy)
    bmp (Path.Combine(d, "dogs", "b.bmp")) 5 3 (1uy, 2uy, 3uy)
    let e = Assert.Throws<DataError>(fun () -> ImageFolder.Read(d, "x") |> ignore)
    Assert.EndsWith("b.bmp", e.File)
    Assert.Contains("resize the images to one size", e.Problem)
    File.WriteAllText(Path.Combine(d, "dogs", "b.bmp"), "not an image")
    Assert.Contains("not a readable image", (Assert.Throws<DataError>(fun () -> ImageFolder.Read(d, "x") |> ignore)).Problem)
    File.Delete(Path.Combine(d, "dogs", "b.bmp"))
    Assert.Contains("has no images", (Assert.Throws<DataError>(fun () -> ImageFolder.Read(d, "x") |> ignore)).Problem)

[<Fact>]
let ``an image whose header announces 20000x20000 pixels is refused before it is decoded`` () =
    let d = folder ()
    bmp (Path.Combine(d, "cats", "a.bmp")) 4 3 (1uy, 2uy, 3uy)
    let huge = Path.Combine(d, "dogs", "b.png")
    File.WriteAllBytes(huge, InputFilesTests.hugePng 20000 20000)
    let mutable e = null
    let bytes = DataFiles.allocated (fun () -> e <- Assert.Throws<DataError>(fun () -> ImageFolder.Read(d, "x") |> ignore))
    Assert.Equal(huge, e.File)
    Assert.Contains("is 20000x20000 pixels, larger than accepted", e.Problem)
    Assert.True(bytes < 1_000_000L, sprintf "%d bytes allocated" bytes)

[<Fact>]
let ``a folder of images beyond the memory budget is refused after its first image`` () =
    let d = folder ()
    for i in 0 .. 9 do
        bmp (Path.Combine(d, "cats", sprintf "%d.bmp" i)) 4 3 (1uy, 2uy, 3uy)
        bmp (Path.Combine(d, "dogs", sprintf "%d.bmp" i)) 4 3 (1uy, 2uy, 3uy)
    let e = DataFiles.withBudget 500L (fun () -> Assert.Throws<DataError>(fun () -> ImageFolder.Read(d, "x") |> ignore))
    Assert.Equal(d, e.File)
    Assert.Contains("20 images of 3x4x3 would take 720 B in memory, more than the 500 B", e.Problem)
