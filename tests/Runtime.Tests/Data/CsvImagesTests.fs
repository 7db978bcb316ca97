module CnnDsl.Runtime.Tests.CsvImagesTests

open System.IO
open Xunit
open CnnDsl.Runtime.Data

let private csv (text: string) =
    let path = Path.Combine(Path.GetTempPath(), Path.GetRandomFileName() + ".csv")
    File.WriteAllText(path, text)
    path

[<Fact>]
let ``Kaggle's layout reads as square grey images, and a set without a test part holds out every tenth`` () =
    let rows = [ for i in 0 .. 19 -> sprintf "%d,%s" (i % 3) (String.concat "," [ for p in 0 .. 3 -> string (i + p) ]) ]
    let path = csv ("label,pixel0,pixel1,pixel2,pixel3\n" + String.concat "\n" rows + "\n")
    let set = CsvImages.Read(path, "digits")
    Assert.Equal((20, 2, 2, 1), (set.Count, set.Height, set.Width, set.Channels))
    Assert.Equal(3, set.ClassNames.Length)
    let split = DataSets.Load path
    Assert.Equal((18, 2), (split.Train.Count, split.Test.Count))

[<Fact>]
let ``bad CSV files name the line and the column`` () =
    let error text = (Assert.Throws<DataError>(fun () -> CsvImages.Read(csv text, "x") |> ignore)).Problem
    Assert.Contains("header must start with 'label'", error "pixel0,pixel1\n1,2\n")
    Assert.Contains("line 3, column 3: '300' is not a pixel value", error "label,p0,p1\n1,0,0\n1,0,300\n")
    Assert.Contains("line 2: 2 values, the header has 3", error "label,p0,p1\n1,0\n")
