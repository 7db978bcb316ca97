/// `dsl export --format pytorch` against the real PyTorch (/usr/bin/python3 with Debian's
/// python3-torch; a missing one fails the tests): the generated project's own model.py, train.py
/// and dsl_torch.py run through oracles/pytorch_export.py and train.py itself.
module CnnDsl.Runtime.Tests.PyTorchTests

open System
open System.Diagnostics
open System.IO
open System.Net
open System.Net.Sockets
open System.Runtime.InteropServices
open Xunit
open CnnDsl.Graph
open CnnDsl.Dsl
open CnnDsl.Runtime
open CnnDsl.Runtime.Export
open CnnDsl.Runtime.Training
open CnnDsl.Runtime.Tests.TestSupport

let private tempFolder () =
    let d = Path.Combine(Path.GetTempPath(), "cnndsl-pytorch-" + Path.GetRandomFileName())
    Directory.CreateDirectory d |> ignore
    d

let private writeFloats (path: string) (values: float32[]) = File.WriteAllBytes(path, MemoryMarshal.AsBytes(ReadOnlySpan values).ToArray())
let private readFloats (path: string) = MemoryMarshal.Cast<byte, float32>(ReadOnlySpan(File.ReadAllBytes path)).ToArray()

/// Random weights everywhere (batchnorm statistics too, variances positive), as OnnxTests.
let private randomise (net: Network<float32>) (seed: int) =
    let rng = Random seed
    for p in net.Weights do
        if not (p.Name.EndsWith "/kernel") then
            for i in 0 .. p.Value.Length - 1 do
                p.Value[i] <- if p.Name.EndsWith "variance" || p.Name.EndsWith "deviation" then float32 (0.5 + rng.NextDouble()) else float32 (rng.NextDouble() - 0.5)

let private request (mode: string) (cases: obj list) = oracle "pytorch_export.py" {| mode = mode; cases = cases |} |> ignore

/// Every model of models/, at a 32x32 input when it has over ten million parameters or any size.
let private modelGraphs () =
    [ for file in Directory.GetFiles(Path.Combine(root, "models"), "*.cnn") |> Array.sort ->
        Path.GetFileNameWithoutExtension file, graphAtTestSize (File.ReadAllText file) ]

[<Fact>]
let ``every model in models/ gives our runtime's outputs in PyTorch with the same weights`` () =
    let folder = tempFolder ()
    let batch = 2
    // An any-size (?x?) model is also exported as such (`same` resolved per input in PyTorch) and
    // run at a size of its own, against our runtime compiled at that size.
    let dynamicText = File.ReadAllText(Path.Combine(root, "models", "fully-convolutional-dynamic.cnn"))
    let sized = match Frontend.compileWithInput dynamicText 41 36 with Some (Ok (g, _)) -> g | _ -> failwith "41x36 does not check"
    let normalized = graph "input 6x5x3\nconv 4 3x3 relu\nflatten\ndense 3 softmax\ntrain\n  normalize"
    let models =
        [ for name, g in modelGraphs () -> name, g, g, [||] ]
        @ [ "dynamic-41x36", graph dynamicText, sized, [| 41; 36; 1 |]; "normalize", normalized, normalized, [||] ]
    let cases =
        [ for name, exported, g, shape in models ->
            let net = Network<float32>(g, batch, 3)
            randomise net 5
            let rng = Random 7
            for i in 0 .. net.Input.Length - 1 do net.Input[i] <- float32 (rng.NextDouble())
            net.Forward(false)
            let dir = Path.Combine(folder, name)
            PyTorchExport.Write(exported, name, net, true, dir) |> ignore
            writeFloats (Path.Combine(dir, "input.bin")) (net.Input.ToArray())
            name, dir, shape, net.Output.ToArray() ]
    request "forward" [ for _, dir, shape, _ in cases -> box {| dir = dir; batch = batch; shape = shape |} ]
    let failures =
        [ for name, dir, _, expected in cases do
            let actual = readFloats (Path.Combine(dir, "output.bin"))
            let scale = expected |> Array.map abs |> Array.max |> max 1e-3f
            let worst = if actual.Length <> expected.Length then infinity else Array.map2 (fun (a: float32) b -> float (abs (a - b))) expected actual |> Array.max
            if not (worst <= 1e-4 * float scale) then yield sprintf "%s: max difference %g at output scale %g" name worst scale ]
    Assert.True(failures.IsEmpty, String.Join("\n", failures))
    Directory.Delete(folder, true)

/// A small model with what training touches: an uneven `same` split (stride 2), batchnorm's
/// moving statistics, a grouped convolution, pooling, the NHWC flatten, a frozen layer and fused softmax.
let private trainingModel (optimizer: string) =
    sprintf "input 8x8x2\nconv 4 3x3 s2 same relu\nbatchnorm\nconv 6 3x3 same groups 2 relu\nmaxpool 2\nflatten\ndense 5 tanh frozen\ndense 3 softmax\n\ntrain\n  %s\n" optimizer

let private optimizers =
    [ "sgd", "optimizer sgd; lr 0.1; momentum 0.9"
      "adam", "optimizer adam; lr 0.01\n  weightdecay 0.05"
      "rmsprop", "optimizer rmsprop; lr 0.01"
      // a loss that is not fused with the output's activation: through softmax's own gradient
      "sgd-mse", "optimizer sgd; lr 0.5\n  loss mse" ]

[<Fact>]
let ``one and ten steps of SGD with momentum, Adam and RMSprop give our weights in PyTorch`` () =
    let folder = tempFolder ()
    let batch = 4
    let cases =
        [ for name, settings in optimizers do
            for steps in [ 1; 10 ] do
                let g = graph (trainingModel settings)
                let net = Network<float32>(g, batch, 11)
                let dir = Path.Combine(folder, sprintf "%s-%d" name steps)
                PyTorchExport.Write(g, "parity", net, true, dir) |> ignore
                let rng = Random 13
                let inputs = Array.init (steps * batch * 128) (fun _ -> float32 (rng.NextDouble()))
                let labels = Array.init (steps * batch) (fun _ -> rng.Next 3)
                writeFloats (Path.Combine(dir, "inputs.bin")) inputs
                File.WriteAllBytes(Path.Combine(dir, "labels.bin"), MemoryMarshal.AsBytes(ReadOnlySpan labels).ToArray())
                let optimizer = Optimizers(g.Training.Optimizer.Value, net.Parameters, defaultArg g.Training.WeightDecay 0.0)
                for t in 0 .. steps - 1 do
                    inputs.AsSpan(t * batch * 128, batch * 128).CopyTo(net.Input)
                    net.Forward(true)
                    match g.Training.Loss with
                    | Some Loss.MeanSquaredError ->
                        let targets = Array.zeroCreate<float32> (batch * 3)
                        for b in 0 .. batch - 1 do targets[b * 3 + labels[t * batch + b]] <- 1.0f
                        Losses.Compute(Loss.MeanSquaredError, net, ReadOnlySpan targets) |> ignore
                    | _ -> Losses.CrossEntropy(net, ReadOnlySpan(labels, t * batch, batch)) |> ignore
                    net.Backward()
                    optimizer.Update()
                    net.NextStep()
                sprintf "%s, %d steps" name steps, g, dir, net ]
    request "train" [ for _, _, dir, _ in cases -> box {| dir = dir; steps = (if dir.EndsWith "-1" then 1 else 10); batch = batch |} ]
    for what, g, dir, net in cases do
        // dsl reads what train.py's writer wrote: the architecture hash and format are ours
        let struct (_, tensors) = Checkpoint.Load(Path.Combine(dir, "after.ckpt"), g)
        let struct (_, start) = Checkpoint.Load(Path.Combine(dir, "weights.ckpt"), g)
        Assert.Equal<float32[]>(start["dense/kernel"], tensors["dense/kernel"]) // frozen
        Assert.NotEqual<float32[]>(start["dense_1/kernel"], tensors["dense_1/kernel"])
        for p in net.Weights do
            assertRelative 1e-4 0.1 (sprintf "%s: %s" what p.Name) (Array.map float p.Value) (Array.map float tensors[p.Name])
    Directory.Delete(folder, true)

[<Fact>]
let ``dsl weights go through PyTorch and come back bit-identical`` () =
    let folder = tempFolder ()
    let models =
        [ "training", graph (trainingModel "optimizer adam")
          yield! modelGraphs () |> List.filter (fun (n, _) -> n = "resnext-block" || n = "mobilenet" || n = "inception-block") ]
    let cases =
        [ for name, g in models ->
            let net = Network<float32>(g, 1, 17)
            randomise net 19
            let dir = Path.Combine(folder, name)
            PyTorchExport.Write(g, name, net, true, dir) |> ignore
            g, dir, net ]
    request "roundtrip" [ for _, dir, _ in cases -> box {| dir = dir |} ]
    for g, dir, net in cases do
        let struct (_, tensors) = Checkpoint.Load(Path.Combine(dir, "roundtrip.ckpt"), g)
        Assert.Equal(Seq.length net.Weights, tensors.Count)
        for p in net.Weights do Assert.Equal<float32[]>(p.Value, tensors[p.Name])
    Directory.Delete(folder, true)

[<Fact>]
let ``another model's checkpoint is refused naming the first differing tensor`` () =
    let folder = tempFolder ()
    let small = graph "input 8x8x1\nconv 4 3x3 relu\nflatten\ndense 3 softmax"
    let other = graph "input 8x8x1\nconv 5 3x3 relu\nflatten\ndense 3 softmax"
    let net = Network<float32>(small, 1, 1)
    let otherNet = Network<float32>(other, 1, 1)
    let path = Path.Combine(folder, "other.ckpt")
    Checkpoint.Save(path, other, TrainingPosition(0, 0, 0L, 0L, Double.NegativeInfinity, BatchSize = 1, OptimizerName = "rmsprop", TrainingExamples = 1), otherNet.Weights |> Seq.map (fun p -> struct (p.Name, p.Value)))
    // dsl export --weights: the C# side
    let difference = PyTorchExport.FirstDifference(Checkpoint.LoadTensors path, net)
    Assert.Equal("tensor 'conv2d/kernel' has 45 values in the checkpoint, the model needs 36", difference)
    Assert.Null(PyTorchExport.FirstDifference(Checkpoint.LoadTensors path, otherNet))
    // train.py --weights: the Python side
    let dir = Path.Combine(folder, "small")
    PyTorchExport.Write(small, "small", net, false, dir) |> ignore
    File.Copy(path, Path.Combine(dir, "weights.ckpt"))
    let error = Assert.ThrowsAny<exn>(fun () -> request "roundtrip" [ box {| dir = dir |} ])
    Assert.Contains("tensor 'conv2d/kernel' has 45 values, the model needs 36 (3x3x1x4)", error.Message)
    // a state dict of the other model (a PyTorch loop of one's own) into this one
    let otherDir = Path.Combine(folder, "other")
    PyTorchExport.Write(other, "other", otherNet, true, otherDir) |> ignore
    request "roundtrip" [ box {| dir = otherDir |} ]
    File.Copy(Path.Combine(otherDir, "state.pt"), Path.Combine(dir, "state.pt"))
    let error = Assert.ThrowsAny<exn>(fun () -> request "import" [ box {| dir = dir |} ])
    Assert.Contains("tensor 'conv2d.weight' (our conv2d/kernel) is 5x1x3x3, the model needs 4x1x3x3", error.Message)
    Assert.False(File.Exists(Path.Combine(dir, "roundtrip.ckpt")))
    Directory.Delete(folder, true)

let private freePort () =
    let listener = new TcpListener(IPAddress.Loopback, 0)
    listener.Start()
    let port = (listener.LocalEndpoint :?> IPEndPoint).Port
    listener.Stop()
    port

/// Starts train.py with arguments and launcher variables (a torchrun's, or none).
let private startTrainPy (dir: string) (args: string list) (variables: (string * string) list) =
    let info = ProcessStartInfo("/usr/bin/python3", [ yield Path.Combine(dir, "train.py"); yield! args ],
                                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = dir)
    for v in [ "WORLD_SIZE"; "RANK"; "LOCAL_RANK"; "LOCAL_WORLD_SIZE"; "MASTER_ADDR"; "MASTER_PORT" ] do info.Environment.Remove v |> ignore
    for name, value in variables do info.Environment[name] <- value
    let p = Process.Start info
    let output, errors = p.StandardOutput.ReadToEndAsync(), p.StandardError.ReadToEndAsync()
    fun () ->
        use p = p
        if not (p.WaitForExit 120_000) then p.Kill true; failwithf "train.py %A did not finish in 2 minutes" args
        if p.ExitCode <> 0 then failwithf "train.py %A failed (exit %d):\n%s%s" args p.ExitCode output.Result errors.Result
        output.Result

let private trainPy (dir: string) (args: string list) = startTrainPy dir args [] ()

/// Two processes over gloo on 127.0.0.1, each half of every global batch, against one process:
/// the gradients are averaged (weighted on a short last batch) and every example is seen once,
/// so the weights are the same.
[<Fact>]
let ``two gloo processes train LeNet to the weights of one process with the same global batch`` () =
    let folder = tempFolder ()
    let text = File.ReadAllText(Path.Combine(root, "models", "lenet.cnn"))
    let g = graph text
    let net = Network<float32>(g, 1, 23)
    PyTorchExport.Write(g, "lenet", net, true, folder) |> ignore
    // 321 examples: ten batches of 32 (16 per process), then one of 1 that process 1 has no part of
    let common = [ "--limit"; "321"; "--batch"; "32"; "--epochs"; "1"; "--seed"; "5"; "--optimizer"; "sgd"; "--lr"; "0.05" ]
    let one = trainPy folder (common @ [ "--out"; Path.Combine(folder, "one") ])
    let two = trainPy folder (common @ [ "--out"; Path.Combine(folder, "two"); "--nproc"; "2"; "--port"; string (freePort ()) ])
    // as a launcher starts them: one process per rank, told by MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE
    let port = string (freePort ())
    let ranks =
        [ for rank in 0 .. 1 ->
            startTrainPy folder (common @ [ "--out"; Path.Combine(folder, "launched") ])
                [ "MASTER_ADDR", "127.0.0.1"; "MASTER_PORT", port; "WORLD_SIZE", "2"; "RANK", string rank; "LOCAL_RANK", string rank ] ]
    let launched = [ for finish in ranks -> finish () ]
    Assert.Contains("1 process on cpu", one)
    Assert.Contains("2 processes on cpu", two)
    Assert.Contains("Epoch 1/1", two)
    Assert.Contains("Epoch 1/1", launched[0])
    Assert.Equal("", launched[1]) // rank 0 alone prints
    let struct (_, a) = Checkpoint.Load(Path.Combine(folder, "one", "last.ckpt"), g)
    let struct (_, b) = Checkpoint.Load(Path.Combine(folder, "two", "last.ckpt"), g)
    let struct (_, c) = Checkpoint.Load(Path.Combine(folder, "launched", "last.ckpt"), g)
    let struct (_, start) = Checkpoint.Load(Path.Combine(folder, "weights.ckpt"), g)
    for p in net.Weights do
        assertRelative 1e-5 1.0 ("2 processes against 1: " + p.Name) (Array.map float a[p.Name]) (Array.map float b[p.Name])
        assertRelative 1e-5 1.0 ("2 launched processes against 1: " + p.Name) (Array.map float a[p.Name]) (Array.map float c[p.Name])
        // and training did move them
        Assert.NotEqual<float32[]>(start[p.Name], a[p.Name])
    Directory.Delete(folder, true)

/// train.py augments as dsl run does: the same draws from (seed, step, place in the batch) and
/// the same nearest-pixel map, so both engines train on the same images.
[<Fact>]
let ``train.py's augmentation gives dsl run's images`` () =
    let folder = tempFolder ()
    let g = graph "input 9x12x3\nconv 2 3x3\nflatten\ndense 2 softmax"
    PyTorchExport.Write(g, "augment", Network<float32>(g, 1, 1), false, folder) |> ignore
    let h, w, c, batch = 9, 12, 3, 6
    let rng = Random 29
    let images = Array.init (batch * h * w * c) (fun _ -> float32 (rng.NextDouble()))
    writeFloats (Path.Combine(folder, "images.bin")) images
    let cases =
        [ for names in [ [ "shift" ]; [ "flip" ]; [ "rotate" ]; [ "shift"; "flip"; "rotate" ]; [ "crop 2" ]; [ "flip"; "crop 3 reflect"; "cutout 4" ] ] ->
            let dir = Path.Combine(folder, String.Join("-", names))
            Directory.CreateDirectory dir |> ignore
            File.Copy(Path.Combine(folder, "images.bin"), Path.Combine(dir, "images.bin"))
            for f in [ "dsl_torch.py"; "model.py"; "train.py" ] do File.Copy(Path.Combine(folder, f), Path.Combine(dir, f))
            names, dir ]
    let seed, step = 7, 123
    request "augment" [ for names, dir in cases -> box {| dir = dir; names = names; seed = seed; step = step; shape = [| batch; h; w; c |]; positions = [| 0 .. batch - 1 |] |} ]
    for names, dir in cases do
        let shape = CnnDsl.Runtime.Data.Dataset("shape", h, w, c, Array.zeroCreate (h * w * c), [| 0 |], [| "a" |])
        let augmentation = CnnDsl.Runtime.Data.Augmentation.From(names, shape)
        let expected = Array.copy images
        for i in 0 .. batch - 1 do
            // Trainer.Fill's seed for example i of the batch at this step
            augmentation.Apply(expected.AsSpan(i * h * w * c, h * w * c), (uint64 seed * 0x9E3779B97F4A7C15UL) ^^^ (uint64 step <<< 20) ^^^ uint64 i)
        let actual = readFloats (Path.Combine(dir, "augmented.bin"))
        Assert.NotEqual<float32[]>(images, expected)
        Assert.True((expected = actual), sprintf "%A: PyTorch's augmented images differ from dsl run's" names)
    Directory.Delete(folder, true)

/// train.py --resume continues OUT/last.pt: two epochs in two runs give the weights of one run of two.
[<Fact>]
let ``train.py --resume continues to the weights of an uninterrupted run`` () =
    let folder = tempFolder ()
    let g = graph (File.ReadAllText(Path.Combine(root, "models", "lenet.cnn")))
    PyTorchExport.Write(g, "lenet", Network<float32>(g, 1, 31), true, folder) |> ignore
    let common = [ "--limit"; "96"; "--batch"; "32"; "--seed"; "2"; "--validation"; "0.25" ]
    trainPy folder (common @ [ "--epochs"; "2"; "--out"; Path.Combine(folder, "whole") ]) |> ignore
    trainPy folder (common @ [ "--epochs"; "1"; "--out"; Path.Combine(folder, "parts") ]) |> ignore
    let resumed = trainPy folder (common @ [ "--epochs"; "2"; "--out"; Path.Combine(folder, "parts"); "--resume" ])
    Assert.StartsWith("lenet: 72 training examples, 24 validation", resumed)
    Assert.DoesNotContain("Epoch 1/2", resumed)
    Assert.Contains("Epoch 2/2", resumed)
    let struct (_, whole) = Checkpoint.Load(Path.Combine(folder, "whole", "last.ckpt"), g)
    let struct (position, parts) = Checkpoint.Load(Path.Combine(folder, "parts", "last.ckpt"), g)
    Assert.Equal(2, position.Epoch)
    for KeyValue (name, values) in whole do Assert.Equal<float32[]>(values, parts[name])
    Directory.Delete(folder, true)

/// train.py reads dsl run's data formats to the same pixels and labels as DataSets.Load, and makes
/// the same generated `shapes`.
[<Fact>]
let ``train.py reads IDX (gzipped or not), CIFAR-10, Kaggle CSV and image folders, and makes shapes, as dsl run does`` () =
    let folder = tempFolder ()
    let project = Path.Combine(folder, "project")
    let g = graph "input 4x4x1\nflatten\ndense 2 softmax"
    PyTorchExport.Write(g, "data", Network<float32>(g, 1, 1), false, project) |> ignore
    let write (path: string) (bytes: byte[]) =
        Directory.CreateDirectory(Path.GetDirectoryName path) |> ignore
        File.WriteAllBytes(path, bytes)
    let idx (dir: string) (packed: byte[] -> byte[]) (suffix: string) =
        write (Path.Combine(dir, "train-images-idx3-ubyte" + suffix)) (packed (DataFiles.idxImages 12 5 4))
        write (Path.Combine(dir, "train-labels-idx1-ubyte" + suffix)) (packed (DataFiles.idxLabels (Array.init 12 (fun i -> byte (i % 10)))))
        write (Path.Combine(dir, "t10k-images-idx3-ubyte" + suffix)) (packed (DataFiles.idxImages 3 5 4))
        write (Path.Combine(dir, "t10k-labels-idx1-ubyte" + suffix)) (packed (DataFiles.idxLabels [| 1uy; 2uy; 3uy |]))
        dir
    let cifar =
        let dir = Path.Combine(folder, "cifar")
        for i in 1 .. 5 do write (Path.Combine(dir, sprintf "data_batch_%d.bin" i)) (DataFiles.cifar [| byte i; byte (i + 1) |])
        write (Path.Combine(dir, "test_batch.bin")) (DataFiles.cifar [| 9uy |])
        dir
    let csv =
        let path = Path.Combine(folder, "digits.csv")
        File.WriteAllText(path, DataFiles.csv 23 16)
        path
    let images (dir: string) (split: bool) =
        let pixels k = Array.init (3 * 4 * 3) (fun i -> byte (i * 7 + k * 31))
        for part in (if split then [ "train"; "test" ] else [ "" ]) do
            for cls, count in [ "cat", 6; "dog", 5 ] do
                for k in 1 .. count do
                    write (Path.Combine(dir, part, cls, sprintf "%02d.png" k)) (DataFiles.png 4 3 3 (pixels (k + cls.Length)))
        dir
    let sets =
        [ idx (Path.Combine(folder, "idx-gz")) DataFiles.gzip ".gz"
          idx (Path.Combine(folder, "idx")) id ""
          cifar; csv
          images (Path.Combine(folder, "images-split")) true
          images (Path.Combine(folder, "images")) false
          "shapes" ]
    let cases = sets |> List.mapi (fun i set -> set, Path.Combine(folder, sprintf "out%d" i))
    for _, dir in cases do
        Directory.CreateDirectory dir |> ignore
        for f in [ "dsl_torch.py"; "model.py"; "train.py" ] do File.Copy(Path.Combine(project, f), Path.Combine(dir, f))
    request "data" [ for set, dir in cases -> box {| dir = dir; data = set |} ]
    for set, dir in cases do
        let split = CnnDsl.Runtime.Data.DataSets.Load set
        let ints (name: string) = MemoryMarshal.Cast<byte, int>(ReadOnlySpan(File.ReadAllBytes(Path.Combine(dir, name)))).ToArray()
        Assert.True((split.Train.Pixels = File.ReadAllBytes(Path.Combine(dir, "train_x.bin"))), set + ": training pixels differ")
        Assert.Equal<int[]>(split.Train.Labels, ints "train_y.bin")
        Assert.True((split.Test.Pixels = File.ReadAllBytes(Path.Combine(dir, "test_x.bin"))), set + ": test pixels differ")
        Assert.Equal<int[]>(split.Test.Labels, ints "test_y.bin")
    Directory.Delete(folder, true)

/// train.py takes dsl run's batches (its seeded order of each epoch, the validation split, a short
/// last batch, the augmentation's draws) and the schedule's rate: two epochs from the same weights
/// end at dsl run's weights.
[<Theory>]
[<InlineData("augment shift flip\n  schedule step 1 0.5")>]
[<InlineData("augment flip crop 2 reflect cutout 3\n  schedule onecycle\n  labelsmoothing 0.1")>]
[<InlineData("augment crop 1\n  schedule cosine; warmup 1\n  labelsmoothing 0.2")>]
[<InlineData("augment flip\n  optimizer adamw; lr 0.01; weightdecay 0.2; nodecay biases\n  schedule onecycle 0.4 linear")>]
[<InlineData("normalize\n  augment crop 1 cutout 2")>]
let ``two epochs of train.py end at the weights of dsl run's two epochs`` (recipe: string) =
    let folder = tempFolder ()
    let data = Path.Combine(folder, "data")
    Directory.CreateDirectory data |> ignore
    let labels = Array.init 47 (fun i -> byte ((i * 7) % 10))
    File.WriteAllBytes(Path.Combine(data, "train-images-idx3-ubyte"), DataFiles.idxImages 47 5 4)
    File.WriteAllBytes(Path.Combine(data, "train-labels-idx1-ubyte"), DataFiles.idxLabels labels)
    File.WriteAllBytes(Path.Combine(data, "t10k-images-idx3-ubyte"), DataFiles.idxImages 5 5 4)
    File.WriteAllBytes(Path.Combine(data, "t10k-labels-idx1-ubyte"), DataFiles.idxLabels [| 1uy; 2uy; 3uy; 4uy; 5uy |])
    let g = graph ("input 5x4x1\nconv 3 3x3 same relu\nmaxpool 2\nflatten\ndense 10 softmax\n\ntrain\n" + (if recipe.Contains "optimizer" then "" else "  optimizer adam; lr 0.01\n") + "  batch 8; epochs 2\n  validation 0.2\n  seed 4\n  " + recipe + "\n")
    let t = g.Training
    // 47 examples, 9 held out: batches of 8, 8, 8, 8 and 6
    let settings =
        TrainingSettings(t.Epochs.Value, t.BatchSize.Value, t.Seed.Value, t.ValidationSplit.Value, t.Optimizer.Value, Loss.CrossEntropy, 0.0,
                         Path.Combine(folder, "dsl"), Augment = List.toArray t.Augment, Schedule = Option.toObj t.Schedule,
                         LabelSmoothing = defaultArg t.LabelSmoothing 0.0, Warmup = defaultArg t.Warmup 0)
    let report =
        { new ITrainingReport with
            member _.Started _ = ()
            member _.Progress(_, _, _, _, _, _) = ()
            member _.EpochDone _ = ()
            member _.Stopped m = failwith m }
    let trainer = Trainer(g, (CnnDsl.Runtime.Data.DataSets.Load data).Train, settings, report)
    let project = Path.Combine(folder, "project")
    PyTorchExport.Write(g, "parity", trainer.Network, true, project) |> ignore
    trainer.Run(TrainingPosition.Start, Threading.CancellationToken.None) |> ignore
    let printed = trainPy project [ "--data"; data; "--out"; Path.Combine(folder, "torch") ]
    Assert.StartsWith("parity: 38 training examples, 9 validation", printed)
    let struct (_, ours) = Checkpoint.Load(Path.Combine(folder, "dsl", "last.ckpt"), g)
    let struct (theirs, torch) = Checkpoint.Load(Path.Combine(folder, "torch", "last.ckpt"), g)
    Assert.Equal(2, theirs.Epoch)
    for p in trainer.Network.Weights do
        assertRelative 1e-4 0.1 ("dsl run against train.py: " + p.Name) (Array.map float ours[p.Name]) (Array.map float torch[p.Name])
    Directory.Delete(folder, true)

/// `normalize` without starting weights: train.py computes the training part's statistics as
/// dsl run does (the validation part left out) and keeps them in its checkpoint.
[<Fact>]
let ``train.py computes normalize's statistics from the training part, as dsl run`` () =
    let folder = tempFolder ()
    let data = Path.Combine(folder, "data")
    Directory.CreateDirectory data |> ignore
    File.WriteAllBytes(Path.Combine(data, "train-images-idx3-ubyte"), DataFiles.idxImages 30 5 4)
    File.WriteAllBytes(Path.Combine(data, "train-labels-idx1-ubyte"), DataFiles.idxLabels (Array.init 30 (fun i -> byte (i % 10))))
    File.WriteAllBytes(Path.Combine(data, "t10k-images-idx3-ubyte"), DataFiles.idxImages 5 5 4)
    File.WriteAllBytes(Path.Combine(data, "t10k-labels-idx1-ubyte"), DataFiles.idxLabels [| 1uy; 2uy; 3uy; 4uy; 5uy |])
    let g = graph "input 5x4x1\nconv 3 3x3 same relu\nflatten\ndense 10 softmax\n\ntrain\n  optimizer sgd\n  batch 8; epochs 1\n  validation 0.2\n  normalize\n"
    let project = Path.Combine(folder, "project")
    PyTorchExport.Write(g, "norm", Network<float32>(g, 1, 1), false, project) |> ignore
    trainPy project [ "--data"; data; "--out"; Path.Combine(folder, "torch") ] |> ignore
    let struct (_, torch) = Checkpoint.Load(Path.Combine(folder, "torch", "last.ckpt"), g)
    let struct (mean, deviation) = Normalization.Of((CnnDsl.Runtime.Data.DataSets.Load data).Train.Slice(0, 24))
    assertRelative 1e-6 1e-9 "mean" (Array.map float mean) (Array.map float torch[Normalization.Mean])
    assertRelative 1e-6 1e-9 "deviation" (Array.map float deviation) (Array.map float torch[Normalization.Deviation])
    Assert.NotEqual(0.0f, mean[0])
    Directory.Delete(folder, true)
