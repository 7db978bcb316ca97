module CnnDsl.Runtime.Tests.CsvImagesTests

open System.IO
open Xunit
open CnnDsl.Runtime.Data
open CnnDsl.Runtime.Tests.DataFiles

let private csvFile (text: string) =
    let path = Path.Combine(Path.GetTempPath(), Path.GetRandomFileName() + ".csv")
    File.WriteAllText(path, text)
    path

[<Fact>]
let ``Kaggle's layout reads as square grey images, and a set without a test part holds out every tenth`` () =
    let rows = [ for i in 0 .. 19 -> sprintf "%d,%s" (i % 3) (String.concat "," [ for p in 0 .. 3 -> string (i + p) ]) ]
    let path = csvFile ("label,pixel0,pixel1,pixel2,pixel3\n" + String.concat "\n" rows + "\n")
    let set = CsvImages.Read(path, "digits")
    Assert.Equal((20, 2, 2, 1), (set.Count, set.Height, set.Width, set.Channels))
    Assert.Equal(3, set.ClassNames.Length)
    let split = DataSets.Load path
    Assert.Equal((18, 2), (split.Train.Count, split.Test.Count))

[<Fact>]
let ``bad CSV files name the line and the column`` () =
    let error text = (Assert.Throws<DataError>(fun () -> CsvImages.Read(csvFile text, "x") |> ignore)).Problem
    Assert.Contains("header must start with 'label'", error "pixel0,pixel1\n1,2\n")
    Assert.Contains("line 3, column 3: '300' is not a pixel value", error "label,p0,p1\n1,0,0\n1,0,300\n")
    Assert.Contains("line 2: 2 values, the header has 3", error "label,p0,p1\n1,0\n")

[<Theory>]
[<InlineData("2147483647")>]
[<InlineData("100000000")>]
[<InlineData("65536")>]
let ``a huge label is refused at its line before any class is made for it`` (label: string) =
    let path = csvFile (sprintf "label,p0,p1,p2,p3\n1,0,0,0,0\n%s,0,0,0,0\n" label)
    let mutable e = null
    let bytes = allocated (fun () -> e <- Assert.Throws<DataError>(fun () -> CsvImages.Read(path, "x") |> ignore))
    Assert.Equal(path, e.File)
    Assert.Contains(sprintf "line 3: the label %s is larger than 65535" label, e.Problem)
    Assert.True(bytes < 1_000_000L, sprintf "%d bytes allocated" bytes)

[<Fact>]
let ``the largest class number is accepted`` () =
    let set = CsvImages.Read(csvFile "label,p0\n65535,7\n0,1\n", "x")
    Assert.Equal(65536, set.ClassNames.Length)

[<Fact>]
let ``a CSV file beyond the memory budget is refused before it is read`` () =
    let path = csvFile ("label,p0,p1,p2,p3\n" + String.replicate 100 "1,0,0,0,0\n")
    withBudget 500L (fun () ->
        let e = Assert.Throws<DataError>(fun () -> CsvImages.Read(path, "x") |> ignore)
        Assert.Contains("more than the 500 B a data set may take", e.Problem))
