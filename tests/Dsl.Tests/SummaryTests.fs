module CnnDsl.Dsl.Tests.SummaryTests

open System
open System.IO
open Xunit
open CnnDsl.Graph
open CnnDsl.Dsl
open CnnDsl.Dsl.Tests.TestSupport

let private model name = File.ReadAllText(repoPath [ "models"; name ])

/// The totals Keras prints for the seeds' models (issue 2), and AlexNet's published count.
[<Theory>]
[<InlineData("fashion-mnist.cnn", 2150410L)>]
[<InlineData("lenet.cnn", 61706L)>]
[<InlineData("mnist-handworked.cnn", 1199882L)>]
[<InlineData("digit-recognizer.cnn", 228036L)>]
[<InlineData("vgg16.cnn", 138356392L)>]
[<InlineData("alexnet.cnn", 62378344L)>]
let ``summary totals match Keras`` (file: string) (total: int64) =
    let g = graph (model file)
    let t, n = g.Nodes |> List.map Cost.parameters |> List.fold (fun (a, b) (x, y) -> a + x, b + y) (0L, 0L)
    Assert.Equal(total, t + n)
    Assert.Contains(sprintf "Total params: %s " (Messages.thousands total), Summary.render file g)

[<Fact>]
let ``the hand-worked MNIST model has the seed's sizes and parameter counts`` () =
    let g = graph (model "mnist-handworked.cnn")
    let sizes = g.Nodes |> List.map (fun n -> string n.OutputShape)
    Assert.Equal<string list>([ "28x28x1"; "26x26x32"; "24x24x64"; "12x12x64"; "9216"; "128"; "10" ], sizes)
    let ps = g.Nodes |> List.map (Cost.parameters >> fst)
    Assert.Equal<int64 list>([ 0L; 320L; 18496L; 0L; 0L; 1179776L; 1290L ], ps)

[<Fact>]
let ``every model in models/ checks clean`` () =
    for name, text in TestSupport.models () do
        match compile text with
        | Ok _ -> ()
        | Error ds -> failwithf "%s:\n%s" name (Diagnostic.renderAll name text ds)

[<Theory>]
[<InlineData("lenet")>]
[<InlineData("fashion-mnist")>]
[<InlineData("resnet18")>]
[<InlineData("inception-block")>]
[<InlineData("fully-convolutional-dynamic")>]
let ``summary output is pinned`` (name: string) =
    golden (name + ".summary.txt") (Summary.render name (graph (model (name + ".cnn"))))

[<Theory>]
[<InlineData("strided.cnn")>]
[<InlineData("three-mistakes.cnn")>]
[<InlineData("syntax-errors.cnn")>]
let ``check output is pinned`` (file: string) =
    let path = if File.Exists(repoPath [ "models"; file ]) then repoPath [ "models"; file ] else repoPath [ "tests"; "Dsl.Tests"; "golden"; file ]
    let text = File.ReadAllText path
    golden (file + ".check.txt") (Diagnostic.renderAll file text (diagnostics text))
