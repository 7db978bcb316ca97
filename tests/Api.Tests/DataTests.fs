module CnnDsl.Api.Tests.DataTests

open System
open System.IO
open Xunit
open CnnDsl
open CnnDsl.Api.Tests.TestSupport

/// A byte as the data sets scale it to [0, 1].
let private scaled (b: int) = float32 b * (1.0f / 255.0f)

[<Fact>]
let ``FromArrays keeps images as bytes and reads them back as floats in [0, 1]`` () =
    let images = [| 0.0f; 0.5f; 1.0f; 0.25f;  1.0f; 0.0f; 0.0f; 1.0f |]
    let set = Dataset.FromArrays(images, [| 0; 1 |], 2, 2, 1, [| "dark"; "light" |], "tiny")
    Assert.Equal(2, set.Count)
    Assert.Equal("tiny", set.Name)
    Assert.Equal("2x2x1", set.ShapeText)
    Assert.Equal<string>([ "dark"; "light" ], set.ClassNames)
    Assert.Equal<int>([ 0; 1 ], set.Labels)
    let first = set.GetExample 0
    // each value is rounded to the nearest 1/255
    Assert.Equal<float32>([| 0.0f; scaled 128; 1.0f; scaled 64 |], first)
    Assert.Equal<float32>([| 1.0f; 0.0f; 0.0f; 1.0f |], set.GetExample 1)
    // without names, the classes are the numbers up to the largest label
    Assert.Equal<string>([ "0"; "1"; "2" ], Dataset.FromBytes([| 1uy; 2uy |], [| 0; 2 |], 1, 1, 1).ClassNames)

[<Fact>]
let ``FromArrays refuses what does not fit, saying what`` () =
    let e = Assert.Throws<DataException>(fun () -> Dataset.FromArrays(Array.zeroCreate 7, [| 0; 1 |], 2, 2, 1) |> ignore)
    Assert.Equal("data: 7 values for 2 labels, but 2 examples of 2x2x1 need 8; give one label per image", e.Message)
    let e = Assert.Throws<DataException>(fun () -> Dataset.FromArrays([| 0.0f; 2.0f |], [| 0; 1 |], 1, 1, 1, null, "mine") |> ignore)
    Assert.Equal("mine", e.File)
    Assert.Equal("value 2 at index 1 is outside [0, 1]; scale the images to [0, 1] (divide bytes by 255)", e.Problem)
    let e = Assert.Throws<DataException>(fun () -> Dataset.FromArrays([| 0.0f |], [| 3 |], 1, 1, 1, [| "a"; "b" |]) |> ignore)
    Assert.Contains("label 3 (example 0) has no class: there are 2 class names (0 to 1)", e.Message)
    Assert.Throws<DataException>(fun () -> Dataset.FromArrays([| Single.NaN |], [| 0 |], 1, 1, 1) |> ignore) |> ignore

[<Fact>]
let ``FromArrays refuses a stray huge label, empty class names and a null name with a message, not an overflow`` () =
    // without class names the classes go up to the largest label: int.MaxValue + 1 overflowed
    let e = Assert.Throws<DataException>(fun () -> Dataset.FromArrays([| 0.0f; 0.0f |], [| 0; Int32.MaxValue |], 1, 1, 1) |> ignore)
    Assert.Equal("data: label 2147483647 (example 1) is larger than 65535, the largest class number accepted; labels are class numbers 0, 1, 2, ...", e.Message)
    Assert.Throws<DataException>(fun () -> Dataset.FromBytes([| 0uy |], [| 70000 |], 1, 1, 1) |> ignore) |> ignore
    let e = Assert.Throws<DataException>(fun () -> Dataset.FromArrays([| 0.0f |], [| 0 |], 1, 1, 1, [||]) |> ignore)
    Assert.Equal("data: label 0 (example 0) has no class: there are no class names", e.Message)
    let e = Assert.Throws<ArgumentException>(fun () -> Dataset.FromArrays([| 0.0f |], [| 0 |], 1, 1, 1, [| "a"; null |]) |> ignore)
    Assert.Equal("classNames", e.ParamName)

[<Fact>]
let ``DataSplit.Load reads the data sets dsl run reads: a built-in name, an IDX folder`` () =
    let shapesSplit = DataSplit.Load("shapes", 20, 24, 1)
    Assert.Equal("20x24x1", shapesSplit.Train.ShapeText)
    Assert.Equal(2000, shapesSplit.Train.Count)
    Assert.Equal(500, shapesSplit.Test.Count)
    let limited = shapesSplit.Limit 100
    Assert.Equal(100, limited.Train.Count)
    Assert.Equal(20, limited.Test.Count)
    let folder = writeIdx 30 10
    let idx = DataSplit.Load folder
    Assert.Equal(30, idx.Train.Count)
    Assert.Equal(10, idx.Test.Count)
    Assert.Equal("28x28x1", idx.Train.ShapeText)
    Assert.Equal("Ankle boot", idx.Train.ClassNames[9])
    Assert.Equal(9, idx.Train.Labels[9])
    Assert.Equal<string>([ "fashion-mnist"; "mnist"; "cifar10"; "xor"; "shapes" ], DataSplit.KnownNames)
    Assert.Equal("9", (nonNull (DataSplit.ClassNamesOf "mnist"))[9])
    Assert.Null(DataSplit.ClassNamesOf folder)

[<Fact>]
let ``an unknown data set is a DataException with dsl run's message`` () =
    let e = Assert.Throws<DataException>(fun () -> DataSplit.Load "no-such-set" |> ignore)
    Assert.Equal("no-such-set", e.File)
    Assert.StartsWith("no such folder or .csv file, and not a known data set; use fashion-mnist, mnist, cifar10", e.Problem)
    let empty = temp "empty"
    Directory.CreateDirectory empty |> ignore
    let e = Assert.Throws<DataException>(fun () -> DataSplit.Load empty |> ignore)
    Assert.Contains("holds neither the four IDX files", e.Message)

[<Fact>]
let ``HoldOut takes every tenth example for testing, and Slice and Take copy`` () =
    let all = Dataset.FromBytes(Array.init 20 byte, Array.init 20 (fun i -> i % 2), 1, 1, 1)
    let split = DataSplit.HoldOut all
    Assert.Equal(18, split.Train.Count)
    Assert.Equal(2, split.Test.Count)
    Assert.Equal<float32>([| scaled 9 |], split.Test.GetExample 0)
    Assert.Equal(5, all.Take(5).Count)
    Assert.Equal<float32>([| scaled 3 |], all.Slice(3, 2).GetExample 0)
    Assert.Throws<ArgumentOutOfRangeException>(fun () -> all.Slice(15, 10) |> ignore) |> ignore
