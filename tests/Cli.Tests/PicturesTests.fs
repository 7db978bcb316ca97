module CnnDsl.Cli.Tests.PicturesTests

open System
open System.IO
open System.Threading
open Xunit
open StbImageSharp
open CnnDsl.Cli
open CnnDsl.Cli.Tests.TestSupport
open CnnDsl.Runtime.Training

let private temp () = Path.Combine(Path.GetTempPath(), "cnndsl-pictures-" + Path.GetRandomFileName())

/// Decodes a PNG (RGBA), failing the test if it is not one.
let private decode (bytes: byte[]) =
    Assert.True(bytes.Length > 8 && bytes[0] = 0x89uy && bytes[1] = byte 'P' && bytes[2] = byte 'N' && bytes[3] = byte 'G', "not a PNG")
    ImageResult.FromMemory(bytes, ColorComponents.RedGreenBlueAlpha)

let private pixel (image: ImageResult) x y =
    let i = (y * image.Width + x) * 4
    int image.Data[i], int image.Data[i + 1], int image.Data[i + 2]

/// Not blank: a region holds many different colours, not one background.
let private colours (image: ImageResult) (x0: int) (x1: int) =
    seq { for y in 0 .. image.Height - 1 do for x in x0 .. x1 - 1 -> pixel image x y } |> Seq.distinct |> Seq.length

let private record epoch loss accuracy =
    EpochRecord(epoch, 3, 1.0, loss, accuracy, Nullable(loss + 0.1), Nullable(accuracy - 0.05), 100.0)

[<Fact>]
let ``training curves are a 1200x450 PNG with both panels drawn`` () =
    let running = [ for i in 1 .. 30 -> { Pictures.Progress.Epoch = float i / 10.0; Pictures.Progress.Loss = 1.5 / float i; Pictures.Progress.Accuracy = 0.5 + 0.01 * float i } ]
    let image = decode (Pictures.curves "model" [ record 1 1.2 0.6; record 2 0.8 0.7; record 3 0.6 0.8 ] running)
    Assert.Equal(1200, image.Width)
    Assert.Equal(450, image.Height)
    // each half (loss, accuracy) has its own axes, lines and text
    Assert.True(colours image 0 600 > 20, "the loss panel is blank")
    Assert.True(colours image 600 1200 > 20, "the accuracy panel is blank")

[<Fact>]
let ``the confusion heat map grows with the classes and is not blank`` () =
    let matrix = array2D [ [ 50; 2; 0 ]; [ 3; 40; 7 ]; [ 0; 1; 60 ] ]
    let image = decode (Pictures.confusion "model" matrix [| "cat"; "dog"; "bird" |])
    Assert.Equal(200 + 60 * 3, image.Width)
    Assert.Equal(160 + 55 * 3, image.Height)
    Assert.True(colours image 0 image.Width > 20)

[<Fact>]
let ``a sheet draws each cell's values as grey levels at its scale, without smoothing`` () =
    let black = { Pictures.Height = 1; Pictures.Width = 1; Pictures.Colour = false; Pictures.Values = [| 0.0 |] }
    let white = { black with Values = [| 1.0 |] }
    let red = { Pictures.Height = 1; Pictures.Width = 1; Pictures.Colour = true; Pictures.Values = [| 1.0; 0.0; 0.0 |] }
    let image = decode (Pictures.sheet "t" [ "c", [ black; white; red ], 10, 8 ])
    // margin 12, title 30, caption 22; cells 10 pixels wide with 3 between them
    let y = 30 + 12 + 22 + 5
    Assert.Equal((0, 0, 0), pixel image (12 + 5) y)
    Assert.Equal((255, 255, 255), pixel image (12 + 13 + 5) y)
    Assert.Equal((255, 0, 0), pixel image (12 + 26 + 5) y)
    Assert.Equal((0, 0, 0), pixel image (12 + 9) (y + 4))   // the cell's far corner: no blending

[<Fact>]
let ``normalise maps a range onto 0 to 1 and a constant to mid-grey`` () =
    Assert.Equal<float[]>([| 0.0; 0.5; 1.0 |], Pictures.normalise [| -2.0; 0.0; 2.0 |])
    Assert.Equal<float[]>([| 0.5; 0.5 |], Pictures.normalise [| 3.0; 3.0 |])

let private shapesModel = "input 16x16x1\nconv 8 3x3 relu\nmaxpool 2\nconv 8 3x3 relu\ndense 3 softmax\ntrain\n  data shapes\n  optimizer adam\n  epochs 2\n  batch 16\n  seed 4\n"

[<Fact>]
let ``run --plot and dsl show write readable pictures of a trained model`` () =
    let folder = temp ()
    let file = Path.Combine(folder, "shapes.cnn")
    Directory.CreateDirectory folder |> ignore
    File.WriteAllText(file, shapesModel)
    let pictures = Path.Combine(folder, "pictures")
    let code, text, err =
        run (fun c -> RunCommand.run c file { RunCommand.RunOptions.Empty with Out = Some (Path.Combine(folder, "run")); Validation = Some 0.2; Plot = Some pictures } CancellationToken.None)
    Assert.True((code = 0), err)
    Assert.Contains("Pictures: ", text)
    let history = File.ReadAllLines(Path.Combine(pictures, "history.csv"))
    Assert.Equal(3, history.Length)   // header and two epochs
    Assert.StartsWith("2,", history[2])
    // the last running point of each epoch closes it
    let progress = File.ReadAllLines(Path.Combine(pictures, "progress.csv"))
    Assert.Contains("2,", progress[progress.Length - 1])
    let curves = decode (File.ReadAllBytes(Path.Combine(pictures, "curves.png")))
    Assert.True(colours curves 0 600 > 20 && colours curves 600 1200 > 20)
    let confusion = decode (File.ReadAllBytes(Path.Combine(pictures, "confusion.png")))
    Assert.Equal(200 + 60 * 3, confusion.Width)
    let weights = Some (Path.Combine(folder, "run", "best.ckpt"))
    // filters: 8 kernels of 3x3, 16 screen pixels per cell
    let filters = Path.Combine(folder, "filters.png")
    let code, _, err = run (fun c -> ShowCommands.showFilters c file weights None (Some filters))
    Assert.True((code = 0), err)
    let image = decode (File.ReadAllBytes filters)
    Assert.True(image.Width >= 8 * 48 && colours image 0 image.Width > 10)
    // activations of a test example: input, conv, pool, conv
    let activations = Path.Combine(folder, "activations.png")
    let code, text, err = run (fun c -> ShowCommands.showActivations c file weights None (Some 0) None (Some activations))
    Assert.True((code = 0), err)
    Assert.Contains("(3 layers)", text)
    Assert.True(colours (decode (File.ReadAllBytes activations)) 0 100 > 10)
    let confusion = Path.Combine(folder, "confusion.png")
    let code, _, err = run (fun c -> EvalCommands.showConfusion c file { RunCommand.RunOptions.Empty with Weights = weights } (Some confusion))
    Assert.True((code = 0), err)
    Assert.True(File.Exists confusion)

[<Fact>]
let ``show names what is missing: a layer, an input, the weights`` () =
    let file = Path.Combine(root, "models", "lenet.cnn")
    let code, _, err = run (fun c -> ShowCommands.showFilters c file None (Some "conv9") (Some (temp () + ".png")))
    Assert.Equal(2, code)
    Assert.Contains("no convolution named 'conv9'; the convolutions are conv2d, conv2d_1", err)
    let code, _, err = run (fun c -> ShowCommands.showActivations c file None None None None (Some (temp () + ".png")))
    Assert.Equal(2, code)
    Assert.Contains("an image file, or --test N", err)
    let code, _, err = run (fun c -> EvalCommands.showConfusion c file RunCommand.RunOptions.Empty None)
    Assert.Equal(2, code)
    Assert.Contains("needs --weights", err)
