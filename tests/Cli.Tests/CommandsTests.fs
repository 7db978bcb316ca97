module CnnDsl.Cli.Tests.CommandsTests

open System.IO
open Xunit
open CnnDsl.Cli.Tests.TestSupport
open CnnDsl.Cli

let private tempModel (text: string) =
    let path = Path.Combine(Path.GetTempPath(), Path.GetRandomFileName() + ".cnn")
    File.WriteAllText(path, text)
    path

[<Fact>]
let ``check prints nothing and exits 0 on clean models`` () =
    let files = Directory.GetFiles(Path.Combine(root, "models"), "*.cnn") |> Array.filter (fun f -> not (f.EndsWith "strided.cnn"))
    let code, out, _ = run (fun c -> CheckCommands.check c (List.ofArray files) false)
    Assert.Equal(0, code)
    Assert.Equal("", out)

[<Fact>]
let ``check on three mistakes prints three positioned diagnostics and exits 1`` () =
    let path = tempModel "input 28x28x1\nconv 0 3x3 relu\ndropout 1.5\nmaxpool 2 sam\ndense 10 softmax\n"
    let code, out, _ = run (fun c -> CheckCommands.check c [ path ] false)
    Assert.Equal(1, code)
    let heads = out.Split('\n') |> Array.filter (fun l -> l.StartsWith path)
    Assert.Equal(3, heads.Length)
    Assert.StartsWith(path + ":2:6: error CNN201:", heads[0])
    Assert.StartsWith(path + ":3:9: error CNN202:", heads[1])
    Assert.StartsWith(path + ":4:11: error CNN003:", heads[2])

[<Fact>]
let ``check --format json gives the same diagnostics as JSON`` () =
    let path = tempModel "input 4x4x1\nconv 8 7x7\n"
    let code, out, _ = run (fun c -> CheckCommands.check c [ path ] true)
    Assert.Equal(1, code)
    use doc = System.Text.Json.JsonDocument.Parse out
    let d = doc.RootElement[0]
    Assert.Equal("CNN301", d.GetProperty("code").GetString())
    Assert.Equal(2, d.GetProperty("line").GetInt32())
    Assert.Equal("error", d.GetProperty("severity").GetString())

[<Fact>]
let ``check refuses a device, a binary file and a huge file by name, without reading them whole`` () =
    let binary = Path.Combine(Path.GetTempPath(), Path.GetRandomFileName() + ".cnn")
    File.WriteAllBytes(binary, [| 0x69uy; 0x6euy; 0uy; 0x70uy |])
    let huge = Path.Combine(Path.GetTempPath(), Path.GetRandomFileName() + ".cnn")
    File.WriteAllText(huge, String.replicate (Shell.maxModelBytes / 10) "input 8x8x1 // pad\n")
    for path, expected in [ "/dev/zero", "is not a text file"; binary, "byte 2 is NUL"; huge, "is larger than 4 MB" ] do
        let code, _, err = run (fun c -> CheckCommands.check c [ path ] true)
        Assert.Equal(2, code)
        Assert.Contains(path, err)
        Assert.Contains(expected, err)

[<Fact>]
let ``check --format json still reports every other file when one is hostile`` () =
    let recursive = tempModel "let a = b\nlet b = a\ninput 2\na\n"
    let fine = tempModel "input 4x4x1\nconv 8 7x7\n"
    let code, out, _ = run (fun c -> CheckCommands.check c [ recursive; fine ] true)
    Assert.Equal(1, code)
    use doc = System.Text.Json.JsonDocument.Parse out
    let codes = [ for d in doc.RootElement.EnumerateArray() -> d.GetProperty("code").GetString() ]
    Assert.Equal<string list>([ "CNN103"; "CNN301" ], codes)

[<Fact>]
let ``a model too large for its batch is refused before anything is allocated`` () =
    let path = tempModel "input 2147483647x1x1\nconv 1 1x1\nglobalavgpool\n"
    let code, _, err = run (fun c -> ExportCommand.export c path None (Path.Combine(Path.GetTempPath(), Path.GetRandomFileName() + ".onnx")))
    Assert.Equal(2, code)
    Assert.Contains("the model is too large: input_layer's output (2147483647x1x1) at batch 1", err)

[<Fact>]
let ``a missing file is a clear message and exit 2, not a stack trace`` () =
    let code, _, err = run (fun c -> CheckCommands.check c [ "no/such/model.cnn" ] false)
    Assert.Equal(2, code)
    Assert.Equal("dsl: cannot read 'no/such/model.cnn': no such file", err.Trim())

[<Fact>]
let ``summary prints the table with Keras's totals`` () =
    let code, out, _ = run (fun c -> CheckCommands.summary c (Path.Combine(root, "models", "fashion-mnist.cnn")) (Some 32) None)
    Assert.Equal(0, code)
    Assert.Contains("Model: \"fashion-mnist\"", out)
    Assert.Contains("Total params: 2,150,410 (8.20 MB)", out)
    Assert.Contains(" conv2d_3 (Conv2D, relu)", out)
    Assert.Contains("Training memory at batch 32 (float32, adam, from the train section: 2 values per parameter): ", out)

[<Fact>]
let ``summary --batch counts the optimizer state dsl run would keep`` () =
    // 8 inputs to 4 units: 36 trainable parameters, 144 bytes per optimizer value.
    let memory (train: string) =
        let path = tempModel ("input 8\ndense 4 softmax\n" + train)
        let code, out, err = run (fun c -> CheckCommands.summary c path (Some 2) None)
        Assert.True((code = 0), err)
        let line = out.Split('\n') |> Array.find (fun l -> l.StartsWith "Training memory")
        line.Substring(0, line.IndexOf(':')), line.Substring(line.LastIndexOf "optimizer state ")
    Assert.Equal(("Training memory at batch 2 (float32, rmsprop, dsl run's default", "optimizer state 144 B"), memory "")
    Assert.Equal(("Training memory at batch 2 (float32, adam, from the train section", "optimizer state 288 B"), memory "train\n  optimizer adam")
    Assert.Equal(("Training memory at batch 2 (float32, sgd, from the train section", "optimizer state 0 B"), memory "train\n  optimizer sgd")
    Assert.Equal(("Training memory at batch 2 (float32, sgd, from the train section", "optimizer state 144 B"), memory "train\n  optimizer sgd; momentum 0.9")
    Assert.Equal(("Training memory at batch 2 (float32, rmsprop, from the train section", "optimizer state 288 B"), memory "train\n  optimizer rmsprop; momentum 0.9")

[<Fact>]
let ``summary of a broken model prints its diagnostics and exits 1`` () =
    let path = tempModel "input ?x?x1\nflatten\n"
    let code, out, err = run (fun c -> CheckCommands.summary c path None None)
    Assert.Equal(1, code)
    Assert.Equal("", out)
    Assert.Contains("error CNN303", err)

[<Fact>]
let ``explain prints the seed's worked numbers`` () =
    let code, out, _ = run (fun c -> CheckCommands.explain c (Path.Combine(root, "models", "mnist-handworked.cnn")) false)
    Assert.Equal(0, code)
    Assert.Contains("params = (3*3*32 + 1) * 64 = 18,496", out)
    Assert.Contains("Total params: 1,199,882", out)

[<Fact>]
let ``gradcheck passes on a model and names the layer broken on purpose`` () =
    let path = Path.Combine(root, "models", "lenet.cnn")
    let code, out, _ = run (fun c -> CheckCommands.gradcheck c path None None 2)
    Assert.True((code = 0), out)
    Assert.Contains("at input 16x16x1", out)
    Assert.Contains("gradcheck passed", out)
    let code, out, _ = run (fun c -> CheckCommands.gradcheck c path None (Some "max_pooling2d_1") 2)
    Assert.Equal(1, code)
    Assert.Contains("gradcheck FAILED: the backward pass of max_pooling2d_1", out)

[<Fact>]
let ``gradcheck takes the batch size, and refuses one out of range`` () =
    let path = Path.Combine(root, "models", "fashion-mnist-bn.cnn")
    let code, out, _ = run (fun c -> CheckCommands.gradcheck c path None None 3)
    Assert.True((code = 0), out)
    Assert.Contains("batch 3, float64", out)
    let code, _, err = run (fun c -> CheckCommands.gradcheck c path None None 0)
    Assert.Equal(2, code)
    Assert.Contains("--batch 0: the gradient check takes 1 to 64", err)

[<Fact>]
let ``export writes an ONNX file, with symbolic sizes for a dynamic model`` () =
    let out = Path.Combine(Path.GetTempPath(), Path.GetRandomFileName() + ".onnx")
    let code, text, _ = run (fun c -> ExportCommand.export c (Path.Combine(root, "models", "lenet.cnn")) None out)
    Assert.Equal(0, code)
    Assert.Contains("ONNX opset 13", text)
    Assert.True(FileInfo(out).Length > 200_000L)
    let code, text, _ = run (fun c -> ExportCommand.export c (Path.Combine(root, "models", "fully-convolutional-dynamic.cnn")) None out)
    Assert.Equal(0, code)
    Assert.Contains("input NHWC ?x?x1", text)

[<Fact>]
let ``apply --png writes each layer's maps as a PNG that decodes and is not blank`` () =
    let folder = Path.Combine(Path.GetTempPath(), Path.GetRandomFileName())
    let code, out, _ = run (fun c -> ApplyCommands.apply c (Path.Combine(root, "examples", "vertical-edge.cnn")) (Path.Combine(root, "examples", "vertical-edge.txt")) None 0 (Some folder))
    Assert.Equal(0, code)
    let file = Path.Combine(folder, "01-vedge.png")
    Assert.Contains(file, out)
    use stream = File.OpenRead file
    let image = StbImageSharp.ImageResult.FromStream(stream, StbImageSharp.ColorComponents.Grey)
    Assert.Equal((64, 64), (image.Width, image.Height)) // 4x4 cells enlarged 16 times
    Assert.True(image.Data |> Array.distinct |> Array.length > 1)

// ---- issue 14: output names and input values ----

let private tempFolder () =
    let d = Path.Combine(Path.GetTempPath(), "cnndsl-cmd-" + Path.GetRandomFileName())
    Directory.CreateDirectory d |> ignore
    d

[<Fact>]
let ``an empty output name or a folder as -o is refused before work, leaving no temporary file`` () =
    let lenet = Path.Combine(root, "models", "lenet.cnn")
    let code, text, err = run (fun c -> ExportCommand.export c lenet None "")
    Assert.Equal(2, code)
    Assert.Equal("", text)
    Assert.Equal("dsl: -o: the file name is empty; give one, such as lenet.onnx", err.Trim())
    let parent = tempFolder ()
    let folder = Path.Combine(parent, "runs")
    Directory.CreateDirectory folder |> ignore
    let code, _, err = run (fun c -> ExportCommand.export c lenet None folder)
    Assert.Equal(2, code)
    Assert.Equal(sprintf "dsl: -o %s: that is a folder; give a file name, such as %s" folder (Path.Combine(folder, "lenet.onnx")), err.Trim())
    Assert.Equal<string[]>([| folder |], Directory.GetFileSystemEntries parent)
    let code, _, err = run (fun c -> ShowCommands.showFilters c lenet None None (Some ""))
    Assert.Equal(2, code)
    Assert.Contains("-o: the file name is empty; give one, such as filters.png", err)
    let code, _, err = run (fun c -> ApplyCommands.apply c (Path.Combine(root, "examples", "vertical-edge.cnn")) (Path.Combine(root, "examples", "vertical-edge.txt")) None 0 (Some ""))
    Assert.Equal(2, code)
    Assert.Contains("--png: the folder name is empty; give one, such as maps", err)

[<Fact>]
let ``predict refuses non-finite input values by position, and --top below 1`` () =
    let xor = Path.Combine(root, "models", "xor.cnn")
    let out = tempFolder ()
    let code, _, err = run (fun c -> RunCommand.run c xor { RunCommand.RunOptions.Empty with Out = Some out; Epochs = Some 1; Quiet = true } System.Threading.CancellationToken.None)
    Assert.True((code = 0), err)
    let weights = Some (Path.Combine(out, "best.ckpt"))
    let matrix (text: string) =
        let p = Path.Combine(out, Path.GetRandomFileName() + ".txt")
        File.WriteAllText(p, text)
        p
    let good = matrix "1 0\n"
    let code, text, err = run (fun c -> ApplyCommands.predict c xor weights [ good ] 3)
    Assert.True((code = 0), err)
    // One linear output is a value, not a ranking of classes.
    Assert.Matches("^" + System.Text.RegularExpressions.Regex.Escape(good) + ": -?\\d+\\.\\d{4}\r?\n$", text)
    for bad, shown in [ "1 nan\n", "NaN at row 1, column 2"; "1e39 0\n", "1E+39 at row 1, column 1"; "0 -1e39\n", "-1E+39 at row 1, column 2" ] do
        let p = matrix bad
        let code, text, err = run (fun c -> ApplyCommands.predict c xor weights [ p ] 1)
        Assert.Equal(2, code)
        Assert.Equal("", text)
        Assert.Contains(sprintf "%s: holds %s: inputs must be finite numbers" p shown, err)
    for top in [ 0; -1 ] do
        let code, text, err = run (fun c -> ApplyCommands.predict c xor weights [ good ] top)
        Assert.Equal(2, code)
        Assert.Equal("", text)
        Assert.Contains(sprintf "--top %d: show at least 1 class" top, err)

/// Seed 000's lesson: a fully-convolutional model trained small applies to any size. Trained
/// at 16x16, its checkpoint serves predict, apply, show and export at 36x36 and 60x44, and
/// predict's probabilities equal a network compiled at that size with the same weights.
[<Fact>]
let ``an any-size model trained small predicts, applies and shows at sizes it was not trained at`` () =
    let text = "input ?x?x1\nconv 4 3x3 same relu\nconv 8 3x3 s2 same relu\nconv 3 1x1\nglobalavgpool\nsoftmax\ntrain\n  data shapes; epochs 1; batch 32\n"
    let model = tempModel text
    let out = Path.Combine(Path.GetTempPath(), Path.GetRandomFileName())
    let code, _, err = run (fun c -> RunCommand.run c model { RunCommand.RunOptions.Empty with Out = Some out; Quiet = true } System.Threading.CancellationToken.None)
    Assert.True((code = 0), err)
    let weights = Path.Combine(out, "last.ckpt")
    let rng = System.Random 2
    for h, w in [ 36, 36; 60, 44 ] do
        let image = Path.Combine(Path.GetTempPath(), Path.GetRandomFileName() + ".txt")
        let values = Array.init (h * w) (fun _ -> rng.NextDouble() : float)
        File.WriteAllLines(image, [| for y in 0 .. h - 1 -> System.String.Join(" ", [| for x in 0 .. w - 1 -> values[y * w + x].ToString("R", System.Globalization.CultureInfo.InvariantCulture) |]) |])
        let code, printed, err = run (fun c -> ApplyCommands.predict c model (Some weights) [ image ] 3)
        Assert.True((code = 0), err)
        // The reference: the model compiled at this size, the checkpoint's weights.
        let g = match CnnDsl.Dsl.Frontend.compileWithInput text h w with Some (Ok (g, _)) -> g | _ -> failwith "does not check"
        let net = CnnDsl.Runtime.Network<float32>(g, 1, 0)
        CnnDsl.Runtime.Training.Checkpoint.LoadWeights(weights, g, net.Weights)
        values |> Array.iteri (fun i v -> net.Input[i] <- float32 v)
        net.Forward(false)
        let expected = net.Output.ToArray() |> Array.mapi (fun i p -> i, p) |> Array.sortByDescending snd
        let shapes = CnnDsl.Runtime.Data.DataSets.ClassNamesOf "shapes"
        let line = System.String.Join(", ", expected |> Array.map (fun (i, p) -> sprintf "%s %.4f" shapes[i] p))
        Assert.Equal(sprintf "%s: %s" image line, printed.Trim())
        for command in [ (fun c -> ApplyCommands.apply c model image (Some weights) 0 None)
                         (fun c -> ShowCommands.showActivations c model (Some weights) (Some image) None None (Some (image + ".png"))) ] do
            let code, _, err = run command
            Assert.True((code = 0), err)
    let code, _, err = run (fun c -> ShowCommands.showFilters c model (Some weights) None (Some (Path.Combine(out, "filters.png"))))
    Assert.True((code = 0), err)
    // An input the model cannot take is told the size rule, not a stack trace.
    let tiny = Path.Combine(Path.GetTempPath(), Path.GetRandomFileName() + ".txt")
    File.WriteAllText(tiny, "1\n")
    let code, _, err = run (fun c -> ApplyCommands.apply c (tempModel "input ?x?x1\nconv 2 3x3\nglobalavgpool\nsoftmax\n") tiny None 0 None)
    Assert.Equal(2, code)
    Assert.Contains("at 1x1 the model does not check: kernel 3x3 on a 1x1 input gives no output", err)

[<Fact>]
let ``predict on one sigmoid output prints its probability and the threshold`` () =
    let model = tempModel "input 2\ndense 2 relu\ndense 1 sigmoid\ntrain\n  data xor; loss bce; batch 4\n"
    let out = tempFolder ()
    let code, _, err = run (fun c -> RunCommand.run c model { RunCommand.RunOptions.Empty with Out = Some out; Epochs = Some 1; Quiet = true } System.Threading.CancellationToken.None)
    Assert.True((code = 0), err)
    let input = Path.Combine(out, "in.txt")
    File.WriteAllText(input, "1 0\n")
    let code, text, err = run (fun c -> ApplyCommands.predict c model (Some (Path.Combine(out, "best.ckpt"))) [ input ] 5)
    Assert.True((code = 0), err)
    Assert.Matches("^" + System.Text.RegularExpressions.Regex.Escape(input) + ": p = 0\\.\\d{4} \\(class 1 if > 0\\.5\\)\r?\n$", text)

[<Fact>]
let ``a kernel with one matrix per colour channel sums the channels into one map`` () =
    let model = tempModel "input 2x2x3\nkernel [[[1 0] [0 0]] [[0 1] [0 0]] [[0 0] [0 2]]]\n"
    let input = Path.Combine(tempFolder (), "rgb.txt")
    File.WriteAllText(input, "1 2\n3 4\n\n10 20\n30 40\n\n100 200\n300 400\n")
    let code, text, err = run (fun c -> ApplyCommands.apply c model input None 0 None)
    Assert.True((code = 0), err)
    // 1*1 (red, top left) + 1*20 (green, top right) + 2*400 (blue, bottom right)
    Assert.EndsWith("kernel (Conv2D): 1x1x1\n     821\n", text.Replace("\r\n", "\n"))
    Assert.Equal("", err)

[<Fact>]
let ``export --format weights writes a checkpoint without optimizer state that predicts the same`` () =
    let xor = Path.Combine(root, "models", "xor.cnn")
    let out = tempFolder ()
    let code, _, err = run (fun c -> RunCommand.run c xor { RunCommand.RunOptions.Empty with Out = Some out; Epochs = Some 2; Quiet = true; Optimizer = Some "adam" } System.Threading.CancellationToken.None)
    Assert.True((code = 0), err)
    let last = Path.Combine(out, "last.ckpt")
    let released = Path.Combine(out, "xor.ckpt")
    let code, text, err = run (fun c -> ExportCommand.exportAs c xor (Some last) released "weights")
    Assert.True((code = 0), err)
    Assert.Contains("without optimizer state", text)
    Assert.True(FileInfo(released).Length < FileInfo(last).Length)
    let input = Path.Combine(out, "input.txt")
    File.WriteAllText(input, "1 0\n")
    let _, fromRun, _ = run (fun c -> ApplyCommands.predict c xor (Some last) [ input ] 1)
    let _, fromReleased, _ = run (fun c -> ApplyCommands.predict c xor (Some released) [ input ] 1)
    Assert.Equal(fromRun, fromReleased)
    let code, _, err = run (fun c -> ExportCommand.exportAs c xor None released "weights")
    Assert.Equal(2, code)
    Assert.Contains("give the checkpoint with --weights FILE", err)

/// /dev/zero under a checkpoint's, an image's and a text matrix's name: it reports no length and
/// never ends, so reading it whole ran out of memory (an OutOfMemoryException's stack trace).
[<Fact>]
let ``a device given as a checkpoint, an image or a text matrix is refused with one line, not read until memory runs out`` () =
    let dir = Path.Combine(Path.GetTempPath(), "cnndsl-device-" + Path.GetRandomFileName())
    Directory.CreateDirectory dir |> ignore
    let link name = let p = Path.Combine(dir, name) in File.CreateSymbolicLink(p, "/dev/zero") |> ignore; p
    let checkpoint, image, matrix = link "zero.ckpt", link "zero.png", link "zero.txt"
    let model = Path.Combine(root, "examples", "vertical-edge.cnn")
    let code, _, err = run (fun c -> ApplyCommands.predict c model (Some checkpoint) [ Path.Combine(root, "examples", "vertical-edge.txt") ] 3)
    Assert.Equal(2, code)
    Assert.Equal(sprintf "dsl: checkpoint %s: not a CnnDsl checkpoint (it does not start with CNNDSLCK)" checkpoint, err.Trim())
    let code, _, err = run (fun c -> ApplyCommands.apply c model image None 0 None)
    Assert.Equal(2, code)
    Assert.StartsWith(sprintf "dsl: data: %s: is larger than the " image, err.Trim())
    Assert.EndsWith(" an image file may take (a device or a pipe?); give an image file", err.Trim())
    let code, _, err = run (fun c -> ApplyCommands.apply c model matrix None 0 None)
    Assert.Equal(2, code)
    Assert.StartsWith(sprintf "dsl: data: %s: is larger than the " matrix, err.Trim())
    Directory.Delete(dir, true)

[<Fact>]
let ``a text matrix reads with Windows line ends, channels apart at a blank line, and refuses NUL bytes`` () =
    let dir = Path.Combine(Path.GetTempPath(), "cnndsl-matrix-" + Path.GetRandomFileName())
    Directory.CreateDirectory dir |> ignore
    let file = Path.Combine(dir, "two.txt")
    File.WriteAllText(file, "\uFEFF1 2\r\n3 4\r\n\r\n5 6\r\n7 8\r\n")
    let image = CnnDsl.Runtime.Data.InputFiles.ReadMatrix file
    Assert.Equal((2, 2, 2), (image.Height, image.Width, image.Channels))
    Assert.Equal<float>([| 1.0; 5.0; 2.0; 6.0; 3.0; 7.0; 4.0; 8.0 |], image.Values)
    File.WriteAllBytes(file, [| byte '1'; 0uy; byte '2' |])
    let e = Assert.Throws<CnnDsl.Runtime.Data.DataError>(fun () -> CnnDsl.Runtime.Data.InputFiles.ReadMatrix file |> ignore)
    Assert.Equal(sprintf "%s: is not a text matrix (byte 1 is NUL); give an image (png, jpg, bmp) or a text matrix file" file, e.Message)
    Directory.Delete(dir, true)
