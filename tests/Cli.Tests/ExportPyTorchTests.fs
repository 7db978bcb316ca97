/// `dsl export FILE --format pytorch -o DIR` through the program (src/Cli/Program.fs and
/// ExportCommand.exportAs); the exported project's numbers are PyTorchTests' (tests/Runtime.Tests).
module CnnDsl.Cli.Tests.ExportPyTorchTests

open System
open System.Diagnostics
open System.IO
open Xunit
open CnnDsl.Dsl
open CnnDsl.Runtime
open CnnDsl.Runtime.Training
open CnnDsl.Cli
open CnnDsl.Cli.Tests.TestSupport

let private tempFolder () =
    let d = Path.Combine(Path.GetTempPath(), "cnndsl-cli-pytorch-" + Path.GetRandomFileName())
    Directory.CreateDirectory d |> ignore
    d

[<Fact>]
let ``export --format pytorch writes the project with the model's layers and the commands`` () =
    let dir = Path.Combine(tempFolder (), "lenet-pt")
    let code, out, err = dslRun (sprintf "export \"%s\" --format pytorch -o \"%s\"" (Path.Combine(root, "models", "lenet.cnn")) dir)
    Assert.True((code = 0), err)
    Assert.Equal(sprintf "wrote %s (model.py, train.py, dsl_torch.py, README.md); see %s" dir (Path.Combine(dir, "README.md")), out.Trim())
    Assert.Contains("no --weights given", err)
    Assert.Equal<string[]>([| "README.md"; "dsl_torch.py"; "model.py"; "train.py" |], Directory.GetFiles dir |> Array.map Path.GetFileName |> Array.sort)
    let model = File.ReadAllText(Path.Combine(dir, "model.py"))
    Assert.Contains("self.conv2d = Conv2d(1, 6, (5, 5), stride=(1, 1), dilation=(1, 1), groups=1, bias=True, pads=(2, 2, 2, 2))", model)
    Assert.Contains("x5 = x4.permute(0, 2, 3, 1).reshape(x4.shape[0], -1)  # flatten: Keras's NHWC order", model)
    Assert.Contains("\"optimizer\": {\"name\": \"adam\", \"lr\": 0.001", model)
    let readme = File.ReadAllText(Path.Combine(dir, "README.md"))
    for command in [ "python3 train.py --nproc 2"; "torchrun --nnodes M"; "--rdzv_endpoint HOST0:29500"; "WORLD_SIZE=2 RANK=1 python3 train.py"; "--device cuda" ] do
        Assert.Contains(command, readme)
    Directory.Delete(Path.GetDirectoryName dir, true)

[<Fact>]
let ``export --format pytorch refuses a file as -o, an unknown format, and another model's weights naming the tensor`` () =
    let parent = tempFolder ()
    let lenet = Path.Combine(root, "models", "lenet.cnn")
    let file = Path.Combine(parent, "taken")
    File.WriteAllText(file, "")
    let code, _, err = run (fun c -> ExportCommand.exportAs c lenet None file "pytorch")
    Assert.Equal(2, code)
    Assert.Equal(sprintf "dsl: -o %s: that is a file, not a folder; give a folder, such as lenet-pt" file, err.Trim())
    let code, _, err = dslRun (sprintf "export \"%s\" --format keras -o \"%s\"" lenet (Path.Combine(parent, "x")))
    Assert.NotEqual(0, code)
    Assert.Contains("keras", err)
    // a checkpoint of another model: its first layer has 5 filters, lenet's 6
    let other = match Frontend.compile "input 28x28x1\nconv 5 5x5 same relu\nflatten\ndense 10 softmax" with Ok (g, _) -> g | Error _ -> failwith "does not check"
    let net = Network<float32>(other, 1, 1)
    let checkpoint = Path.Combine(parent, "other.ckpt")
    Checkpoint.Save(checkpoint, other, TrainingPosition(0, 0, 0L, 0L, Double.NegativeInfinity, BatchSize = 1, OptimizerName = "sgd", TrainingExamples = 1),
                    net.Weights |> Seq.map (fun p -> struct (p.Name, p.Value)))
    let out = Path.Combine(parent, "out")
    let code, text, err = run (fun c -> ExportCommand.exportAs c lenet (Some checkpoint) out "pytorch")
    Assert.Equal(2, code)
    Assert.Equal("", text)
    Assert.Equal(sprintf "dsl: checkpoint %s: tensor 'conv2d/kernel' has 125 values in the checkpoint, the model needs 150; it was saved from another model" checkpoint, err.Trim())
    Assert.False(Directory.Exists out)
    Directory.Delete(parent, true)

/// The loop at a small scale: export with weights, train.py on PyTorch, `dsl eval` of what it
/// wrote gives the test figures train.py printed.
[<Fact>]
let ``dsl eval reads the checkpoint train.py writes and gives its test figures`` () =
    let parent = tempFolder ()
    let model = Path.Combine(root, "models", "xor.cnn")
    let run0 = Path.Combine(parent, "dsl")
    let code, _, err = dslRun (sprintf "run \"%s\" --epochs 3 --quiet --out \"%s\"" model run0)
    Assert.True((code = 0), err)
    let dir = Path.Combine(parent, "xor-pt")
    let code, out, err = dslRun (sprintf "export \"%s\" --format pytorch --weights \"%s\" -o \"%s\"" model (Path.Combine(run0, "last.ckpt")) dir)
    Assert.True((code = 0), err)
    Assert.Contains("weights.ckpt", out)
    let info = ProcessStartInfo("/usr/bin/python3", [| Path.Combine(dir, "train.py"); "--epochs"; "20"; "--out"; Path.Combine(dir, "run") |],
                                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = dir)
    use p = Process.Start info
    let printed, problems = p.StandardOutput.ReadToEndAsync(), p.StandardError.ReadToEndAsync()
    p.WaitForExit()
    Assert.True((p.ExitCode = 0), sprintf "train.py failed (PyTorch is /usr/bin/python3's python3-torch; scripts/setup.sh installs it):\n%s%s" printed.Result problems.Result)
    // "test loss: 0.1234 - test accuracy: 0.7500 (4 examples)"
    let m = Text.RegularExpressions.Regex.Match(printed.Result, @"test loss: ([0-9.]+) - test accuracy: ([0-9.]+)")
    Assert.True(m.Success, printed.Result)
    let code, evaluated, err = dslRun (sprintf "eval \"%s\" --weights \"%s\"" model (Path.Combine(dir, "run", "last.ckpt")))
    Assert.True((code = 0), err)
    Assert.Contains(sprintf "Test: loss %s - accuracy %s" m.Groups[1].Value m.Groups[2].Value, evaluated)
    Directory.Delete(parent, true)
