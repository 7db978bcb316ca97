module CnnDsl.Dsl.Tests.ExplainTests

open System.IO
open Xunit
open CnnDsl.Dsl
open CnnDsl.Dsl.Tests.TestSupport

let private explainModel name = Explain.text (graph (File.ReadAllText(repoPath [ "models"; name ])))

[<Fact>]
let ``the hand-worked MNIST model shows the seed's sizes and counts, with the typo corrected`` () =
    let text = explainModel "mnist-handworked.cnn"
    for expected in
        [ "out = floor((28 + 2*0 - 3)/1) + 1 = 26"; "out = floor((26 + 2*0 - 3)/1) + 1 = 24"; "out = floor((24 + 2*0 - 2)/2) + 1 = 12"
          "12*12*64 = 9,216 values"; "128 units"; "10 units"
          "params = (3*3*1 + 1) * 32 = 320"; "params = (3*3*32 + 1) * 64 = 18,496"
          "params = (9,216 + 1) * 128 = 1,179,776"; "params = (128 + 1) * 10 = 1,290"
          "Total params: 1,199,882" ] do
        Assert.Contains(expected, text)

[<Fact>]
let ``same padding shows its total and split, and inexact strides get a note`` () =
    let text = Explain.text (graph "input 28x28x1\nconv 4 2x2 same\nconv 4 3x3 s2")
    Assert.Contains("out = ceil(28/1) = 28; padding total = max((28-1)*1 + 2 - 28, 0) = 1, split 0 before and 1 after", text)
    Assert.Contains("note: height and width: (28 + 2*0 - 3)/2 = 25/2 is not a whole number: the last 1 row/column is never covered", text)

[<Fact>]
let ``markdown is a table with a total row`` () =
    let md = Explain.markdown (graph (File.ReadAllText(repoPath [ "models"; "lenet.cnn" ])))
    Assert.StartsWith("| layer | output size | parameters |", md)
    Assert.Contains("| **total** | | **61,706** |", md)
