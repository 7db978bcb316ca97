module CnnDsl.Runtime.Tests.Cifar10Tests

open System.IO
open Xunit
open CnnDsl.Runtime.Data

[<Fact>]
let ``records become NHWC images with their labels`` () =
    let path = Path.Combine(Path.GetTempPath(), Path.GetRandomFileName())
    let record label (r: byte) (g: byte) (b: byte) = Array.concat [ [| label |]; Array.create 1024 r; Array.create 1024 g; Array.create 1024 b ]
    File.WriteAllBytes(path, Array.append (record 3uy 10uy 20uy 30uy) (record 9uy 1uy 2uy 3uy))
    let set = Cifar10.Read("c", [ path ])
    Assert.Equal<int[]>([| 3; 9 |], set.Labels)
    Assert.Equal<byte[]>([| 10uy; 20uy; 30uy; 10uy |], set.Pixels[0..3])
    Assert.Equal<byte[]>([| 1uy; 2uy; 3uy |], set.Pixels[3072..3074])

[<Fact>]
let ``a partial record and a bad label are reported with the record`` () =
    let path = Path.Combine(Path.GetTempPath(), Path.GetRandomFileName())
    File.WriteAllBytes(path, Array.create 4000 0uy)
    Assert.Contains("record 1 is incomplete", (Assert.Throws<DataError>(fun () -> Cifar10.ReadBatch path |> ignore)).Problem)
    File.WriteAllBytes(path, Array.append [| 11uy |] (Array.create 3072 0uy))
    Assert.Contains("label 11 of record 0", (Assert.Throws<DataError>(fun () -> Cifar10.ReadBatch path |> ignore)).Problem)

[<Theory>]
[<InlineData(false)>]
[<InlineData(true)>]
let ``a batch is read up to a sixth of the memory budget, gzipped or not`` (gzipped: bool) =
    let path = Path.Combine(Path.GetTempPath(), Path.GetRandomFileName())
    let two = Array.concat [ for l in [ 1uy; 2uy ] -> Array.append [| l |] (Array.zeroCreate 3072) ]
    File.WriteAllBytes(path, if gzipped then CnnDsl.Runtime.Tests.DataFiles.gzip two else two)
    let struct (_, labels) = CnnDsl.Runtime.Tests.DataFiles.withBudget (6L * 6146L) (fun () -> Cifar10.ReadBatch path)
    Assert.Equal<int[]>([| 1; 2 |], labels)
    let e = CnnDsl.Runtime.Tests.DataFiles.withBudget (6L * 4000L) (fun () -> Assert.Throws<DataError>(fun () -> Cifar10.ReadBatch path |> ignore))
    Assert.Equal(path, e.File)
    Assert.Contains((if gzipped then "decompresses to more than 3.91 KB" else "is 6.00 KB, more than the 3.91 KB"), e.Problem)
