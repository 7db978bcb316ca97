module CnnDsl.Runtime.Tests.CheckpointTests

open System
open System.IO
open System.Security.Cryptography
open Xunit
open CnnDsl.Runtime
open CnnDsl.Runtime.Training
open CnnDsl.Runtime.Tests.TestSupport

let private model = graph "input 4\ndense 3 relu\ndense 2"
let private path () = Path.Combine(Path.GetTempPath(), Path.GetRandomFileName() + ".ckpt")
let private position =
    TrainingPosition(2, 5, 17L, 16L, 0.5, BatchSize = 4, OptimizerName = "adam", Seed = 3, TrainingExamples = 40,
                     LossSum = 12.5, Correct = 11L, Seen = 20L, Seconds = 1.25)

[<Fact>]
let ``a checkpoint reads back what was written`` () =
    let p = path ()
    Checkpoint.Save(p, model, position, [ "a", [| 1.0f; 2.0f |]; "b", [| 3.0f |] ])
    let struct (loaded, tensors) = Checkpoint.Load(p, model)
    Assert.Equal(position, loaded)
    Assert.Equal<float32[]>([| 1.0f; 2.0f |], tensors["a"])
    Assert.Empty(Directory.GetFiles(Path.GetDirectoryName p, Path.GetFileName p + ".*tmp"))

[<Fact>]
let ``truncated, bit-flipped and foreign files are refused with a reason`` () =
    let p = path ()
    Checkpoint.Save(p, model, position, [ "a", Array.init 100 float32 ])
    let bytes = File.ReadAllBytes p
    File.WriteAllBytes(p, bytes[.. bytes.Length - 10])
    Assert.Contains("truncated or damaged", (Assert.Throws<CheckpointError>(fun () -> Checkpoint.Load(p, model) |> ignore)).Message)
    let flipped = Array.copy bytes
    flipped[200] <- flipped[200] ^^^ 1uy
    File.WriteAllBytes(p, flipped)
    Assert.Contains("checksum", (Assert.Throws<CheckpointError>(fun () -> Checkpoint.Load(p, model) |> ignore)).Message)
    File.WriteAllBytes(p, bytes)
    let other = graph "input 4\ndense 3 relu\ndense 3"
    Assert.Contains("different model", (Assert.Throws<CheckpointError>(fun () -> Checkpoint.Load(p, other) |> ignore)).Message)
    File.WriteAllText(p, "hello")
    Assert.Contains("not a CnnDsl checkpoint", (Assert.Throws<CheckpointError>(fun () -> Checkpoint.Load(p, model) |> ignore)).Message)

// ---- crafted files: a valid checksum over values out of range ----

/// The offsets of the version 3 layout (docs/checkpoints.md): magic 8, version 4, hash 32.
let private epochAt, batchAt, batchSizeAt = 44, 48, 96

/// Rewrites part of a saved checkpoint and seals it with a fresh checksum, as a forger would.
let private craft (p: string) (patch: byte[] -> unit) =
    let bytes = File.ReadAllBytes p
    let body = bytes[.. bytes.Length - 33]
    patch body
    File.WriteAllBytes(p, Array.append body (SHA256.HashData body))

let private int32At (bytes: byte[]) (at: int) (v: int) = BitConverter.GetBytes(v).CopyTo(bytes, at)

let private refused (p: string) =
    let e = Assert.Throws<CheckpointError>(fun () -> Checkpoint.Load(p, model) |> ignore)
    Assert.StartsWith(p + ": ", e.Message)
    e.Message

[<Fact>]
let ``crafted fields out of range are refused with the field's name, before anything is allocated`` () =
    let p = path ()
    Checkpoint.Save(p, model, position, [ "a", Array.init 100 float32 ])
    let good = File.ReadAllBytes p
    let reset () = File.WriteAllBytes(p, good)
    craft p (fun b -> int32At b epochAt -5)
    Assert.Contains("field 'epoch' is -5", refused p)
    reset ()
    craft p (fun b -> int32At b batchAt -1)
    Assert.Contains("field 'batch' is -1, outside 0 and above", refused p)
    reset ()
    // batch 10 of batches of 4 in 40 examples: past the epoch's end
    craft p (fun b -> int32At b batchAt 10)
    Assert.Contains("field 'batch' is 10, outside 0 to 9", refused p)
    reset ()
    craft p (fun b -> int32At b batchSizeAt 0)
    Assert.Contains("field 'batch size' is 0", refused p)
    reset ()
    // the tensor's length is the int32 after its name ("a", one length byte and one character)
    let lengthAt = good.Length - 32 - 400 - 4
    Assert.Equal(100, BitConverter.ToInt32(good, lengthAt))
    craft p (fun b -> int32At b lengthAt 0x7fffffff)
    Assert.Contains("field 'length of tensor a' is 2147483647, outside 0 to the 100 values left", refused p)
    reset ()
    craft p (fun b -> int32At b lengthAt -3)
    Assert.Contains("field 'length of tensor a'", refused p)
    reset ()
    craft p (fun b -> BitConverter.GetBytes(Single.NaN).CopyTo(b, lengthAt + 4 + 8))
    Assert.Contains("tensor 'a' holds NaN at index 2", refused p)
    reset ()
    // the name's one character ('a') turned into an escape character: never echoed
    craft p (fun b -> b[lengthAt - 1] <- 27uy)
    Assert.Contains("tensor 1's name holds control characters", refused p)

[<Fact>]
let ``a run with a partial last batch reads back: fewer examples than one batch, and a stop just before the partial batch`` () =
    // The trainer makes Keras's partial last batch (Trainer.Run: ceil(examples / batch) batches),
    // so its checkpoints must load: XOR's 4 examples at the default batch 32, and 42 examples
    // in batches of 4 stopped before batch 10 (the partial one, 40 seen).
    let p = path ()
    let xor = TrainingPosition(5, 0, 5L, 5L, 0.75, BatchSize = 32, OptimizerName = "sgd", Seed = 0, TrainingExamples = 4)
    Checkpoint.Save(p, model, xor, [ "a", [| 1.0f |] ])
    let struct (loaded, _) = Checkpoint.Load(p, model)
    Assert.Equal(xor, loaded)
    let partial =
        TrainingPosition(2, 10, 17L, 16L, 0.5, BatchSize = 4, OptimizerName = "adam", Seed = 3, TrainingExamples = 42,
                         LossSum = 12.5, Correct = 11L, Seen = 40L, Seconds = 1.25)
    Checkpoint.Save(p, model, partial, [ "a", [| 1.0f |] ])
    let struct (loaded, _) = Checkpoint.Load(p, model)
    Assert.Equal(partial, loaded)
    // one past the partial batch is still past the epoch's end
    craft p (fun b -> int32At b batchAt 11)
    Assert.Contains("field 'batch' is 11, outside 0 to 10", refused p)

/// A checkpoint in version 2's layout: the position without the settings and the epoch's figures.
let writeVersion2 (p: string) (g: CnnDsl.Graph.Graph) (tensors: (string * float32[]) list) =
    use m = new MemoryStream()
    (
        use w = new BinaryWriter(m, Text.Encoding.UTF8, true)
        w.Write("CNNDSLCK"B); w.Write 2; w.Write(Checkpoint.ArchitectureHash g)
        w.Write 1; w.Write 0; w.Write 8L; w.Write 8L; w.Write 0.75; w.Write 1.0; w.Write 0.3; w.Write 0
        w.Write tensors.Length
        for name, values in tensors do
            w.Write name; w.Write values.Length
            for v in values do w.Write v
    )
    let body = m.ToArray()
    File.WriteAllBytes(p, Array.append body (SHA256.HashData body))
    body

[<Fact>]
let ``a version 2 checkpoint still gives its weights; an unknown version is refused`` () =
    let p = path ()
    let body = writeVersion2 p model [ "a", [| 1.5f; 2.5f |] ]
    let struct (loaded, tensors) = Checkpoint.Load(p, model)
    Assert.Equal<float32[]>([| 1.5f; 2.5f |], tensors["a"])
    Assert.Equal(1, loaded.Epoch)
    Assert.False(loaded.HasSettings)
    File.WriteAllBytes(p, Array.append (Array.append body[.. 7] (BitConverter.GetBytes 9)) body[12 ..] |> fun b -> Array.append b (SHA256.HashData b))
    Assert.Contains("format version 9; this program reads versions 2 to 3", refused p)

/// A position with every field given (the checkpoint writer checks nothing: the reader must).
let private positionOf epoch batch networkStep optimizerStep bestValidation scale bestLoss stale
                       batchSize optimizer seed examples lossSum correct seen seconds =
    TrainingPosition(epoch, batch, networkStep, optimizerStep, bestValidation, LearningRateScale = scale, BestLoss = bestLoss,
                     EpochsWithoutImprovement = stale, BatchSize = batchSize, OptimizerName = optimizer, Seed = seed,
                     TrainingExamples = examples, LossSum = lossSum, Correct = correct, Seen = seen, Seconds = seconds)

/// Every header field at each end of its range is read back, and one step past it is refused
/// with the field's name: the reader's bounds, not only some of them.
[<Fact>]
let ``every header field is read back at the ends of its range and refused one step past them`` () =
    let p = path ()
    let ok (position: TrainingPosition) =
        Checkpoint.Save(p, model, position, [ "a", [| 1.0f |] ])
        let struct (loaded, _) = Checkpoint.Load(p, model)
        Assert.Equal(position, loaded)
    let bad (field: string) (position: TrainingPosition) =
        Checkpoint.Save(p, model, position, [ "a", [| 1.0f |] ])
        let message = refused p
        Assert.Contains(sprintf "field '%s' is" field, message)
        // and the range it should be in, as the message states it
        let range =
            match field with
            | "best validation" -> "0 to 1 (or -infinity before the first epoch)"
            | "best loss" -> "0 and above (or +infinity before the first epoch)"
            | "epochs without improvement" -> "0 to the epoch (2)"
            | "batch size" | "training examples" -> "1 and above"
            | "optimizer" -> "adam, sgd, rmsprop, adamw"
            | "seen" -> "batch x batch size (20)"
            | "correct" -> "0 to seen (20)"
            | _ -> "0 and above"
        Assert.Contains(sprintf ", outside %s: the file was altered; use another checkpoint" range, message)
    let mk = positionOf
    // epoch 2, batch 5 of 10 batches of 4, 20 seen
    ok (mk 2 5 17L 16L 0.5 1.0 0.3 1 4 "adam" 3 40 12.5 11L 20L 1.25)
    // the low ends: nothing done yet
    ok (mk 0 0 0L 0L Double.NegativeInfinity 0.0 Double.PositiveInfinity 0 1 "sgd" 0 1 0.0 0L 0L 0.0)
    // the high ends
    ok (mk 2 9 17L 16L 1.0 1.0 0.0 2 4 "rmsprop" 3 40 12.5 36L 36L 1.25)
    ok (mk 2 5 17L 16L 0.0 1.0 0.3 1 4 "adamw" 3 40 12.5 20L 20L 1.25)
    bad "epoch" (mk -1 5 17L 16L 0.5 1.0 0.3 0 4 "adam" 3 40 12.5 11L 20L 1.25)
    bad "network step" (mk 2 5 -1L 16L 0.5 1.0 0.3 1 4 "adam" 3 40 12.5 11L 20L 1.25)
    bad "optimizer step" (mk 2 5 17L -1L 0.5 1.0 0.3 1 4 "adam" 3 40 12.5 11L 20L 1.25)
    for v in [ 1.01; -0.01; nan; infinity ] do
        bad "best validation" (mk 2 5 17L 16L v 1.0 0.3 1 4 "adam" 3 40 12.5 11L 20L 1.25)
    for v in [ -0.5; infinity; nan ] do
        bad "learning-rate scale" (mk 2 5 17L 16L 0.5 v 0.3 1 4 "adam" 3 40 12.5 11L 20L 1.25)
    for v in [ -0.5; nan; -infinity ] do
        bad "best loss" (mk 2 5 17L 16L 0.5 1.0 v 1 4 "adam" 3 40 12.5 11L 20L 1.25)
    for v in [ -1; 3 ] do
        bad "epochs without improvement" (mk 2 5 17L 16L 0.5 1.0 0.3 v 4 "adam" 3 40 12.5 11L 20L 1.25)
    bad "batch size" (mk 2 5 17L 16L 0.5 1.0 0.3 1 0 "adam" 3 40 12.5 11L 20L 1.25)
    bad "optimizer" (mk 2 5 17L 16L 0.5 1.0 0.3 1 4 "nadam" 3 40 12.5 11L 20L 1.25)
    bad "seed" (mk 2 5 17L 16L 0.5 1.0 0.3 1 4 "adam" -1 40 12.5 11L 20L 1.25)
    bad "training examples" (mk 2 0 17L 16L 0.5 1.0 0.3 1 4 "adam" 3 0 12.5 0L 0L 1.25)
    for v in [ -0.5; nan; infinity ] do
        bad "loss sum" (mk 2 5 17L 16L 0.5 1.0 0.3 1 4 "adam" 3 40 v 11L 20L 1.25)
    bad "seen" (mk 2 5 17L 16L 0.5 1.0 0.3 1 4 "adam" 3 40 12.5 11L 21L 1.25)
    for v in [ -1L; 21L ] do
        bad "correct" (mk 2 5 17L 16L 0.5 1.0 0.3 1 4 "adam" 3 40 12.5 v 20L 1.25)
    for v in [ -0.5; infinity; nan ] do
        bad "seconds" (mk 2 5 17L 16L 0.5 1.0 0.3 1 4 "adam" 3 40 12.5 11L 20L v)

// ---- the reader's other refusals, and what LoadWeights, Restore and LoadTensors give ----

let private structs (l: (string * float32[]) list) = [ for n, v in l -> struct (n, v) ]

let private sealBody (p: string) (body: byte[]) = File.WriteAllBytes(p, Array.append body (SHA256.HashData body))

[<Fact>]
let ``a folder, a missing file and files too short to be a checkpoint are refused by name`` () =
    let d = Path.Combine(Path.GetTempPath(), "cnndsl-ckpt-" + Path.GetRandomFileName())
    Directory.CreateDirectory d |> ignore
    let e = Assert.Throws<CheckpointError>(fun () -> Checkpoint.Load(d, model) |> ignore)
    Assert.Equal(sprintf "%s: is a folder; give a checkpoint file such as %s" d (Path.Combine(d, "best.ckpt")), e.Message)
    let missing = Path.Combine(d, "none.ckpt")
    Assert.Equal(missing + ": no such checkpoint", (Assert.Throws<CheckpointError>(fun () -> Checkpoint.Load(missing, model) |> ignore)).Message)
    // 75 bytes: one short of magic, version, hash and checksum (76 bytes)
    let p = path ()
    let magic = "CNNDSLCK"B
    File.WriteAllBytes(p, Array.append magic (Array.zeroCreate 67))
    Assert.Contains("not a CnnDsl checkpoint (it does not start with CNNDSLCK)", refused p)
    // exactly 76 bytes is long enough to be read: its checksum is then wrong
    File.WriteAllBytes(p, Array.append magic (Array.zeroCreate 68))
    Assert.Contains("the checksum does not match", refused p)

[<Fact>]
let ``a body that ends early under a valid checksum is a damaged file, and so is one with bytes after its last tensor`` () =
    let p = path ()
    Checkpoint.Save(p, model, position, [ "a", [| 1.0f; 2.0f |] ])
    let good = File.ReadAllBytes p
    sealBody p good[.. 59]
    let message = refused p
    Assert.StartsWith(p + ": the file is damaged (", message)
    Assert.EndsWith("); use an earlier checkpoint", message)
    sealBody p (Array.append good[.. good.Length - 33] [| 1uy; 2uy; 3uy; 4uy |])
    Assert.Equal(p + ": 4 bytes follow the last tensor: the file was altered; use another checkpoint", refused p)

[<Fact>]
let ``an older version is refused without the advice to upgrade, a newer one with it`` () =
    let p = path ()
    let body = writeVersion2 p model [ "a", [| 1.0f |] ]
    let withVersion (v: int) = Array.concat [ body[.. 7]; BitConverter.GetBytes v; body[12 ..] ]
    sealBody p (withVersion 1)
    Assert.Equal(p + ": format version 1; this program reads versions 2 to 3", refused p)
    sealBody p (withVersion 4)
    Assert.Equal(p + ": format version 4; this program reads versions 2 to 3; use the dsl that wrote it, or a newer one", refused p)
    // a version 2 checkpoint has no settings: no optimizer name
    sealBody p (withVersion 2)
    let struct (loaded, _) = Checkpoint.Load(p, model)
    Assert.Equal("", loaded.OptimizerName)

/// Where the tensor count sits in version 3 (docs/checkpoints.md): after the 52 bytes of the
/// position at 44, batch size 4, the optimizer's name (a length byte and "adam"), seed 4,
/// examples 4, loss sum 8, correct 8, seen 8, seconds 8.
let private countAt = 44 + 52 + 4 + 5 + 4 + 4 + 8 + 8 + 8 + 8

[<Fact>]
let ``no tensors and empty tensors read back; a crafted count, length or name is refused`` () =
    let p = path ()
    Checkpoint.Save(p, model, position, [])
    let struct (_, none) = Checkpoint.Load(p, model)
    Assert.Empty none
    Checkpoint.Save(p, model, position, [ "empty", [||]; "ab", [| 1.0f |] ])
    let struct (_, tensors) = Checkpoint.Load(p, model)
    Assert.Empty tensors["empty"]
    Assert.Equal<float32[]>([| 1.0f |], tensors["ab"])
    Checkpoint.Save(p, model, position, [ "ab", Array.init 100 float32 ])
    let good = File.ReadAllBytes p
    Assert.Equal(1, BitConverter.ToInt32(good, countAt))
    let reset () = File.WriteAllBytes(p, good)
    craft p (fun b -> int32At b countAt -1)
    Assert.Contains("field 'tensor count' is -1, outside 0 and above", refused p)
    reset ()
    // one value more than the file holds (not only absurd lengths)
    craft p (fun b -> int32At b (countAt + 7) 101)
    Assert.Contains("field 'length of tensor ab' is 101, outside 0 to the 100 values left in the file", refused p)
    reset ()
    // a control character anywhere in a name, not only a name made of them
    craft p (fun b -> b[countAt + 6] <- 7uy)
    Assert.Contains("tensor 1's name holds control characters", refused p)
    Checkpoint.Save(p, model, position, [ "", [| 1.0f |] ])
    Assert.Equal(p + ": tensor 1 has an empty name: the file was altered; use another checkpoint", refused p)
    Checkpoint.Save(p, model, position, [ "a", [| 1.0f |]; "a", [| 2.0f |] ])
    Assert.Equal(p + ": tensor 2 has the name 'a' of an earlier one: the file was altered; use another checkpoint", refused p)

[<Fact>]
let ``the architecture's hash leaves out the input's size and 'same' padding, but not explicit padding`` () =
    let p = path ()
    // 'same' with stride 2 pads 8x8 and 9x9 differently; the weights are the same
    Checkpoint.Save(p, graph "input 8x8x1\nconv 2 3x3 s2 same\nglobalavgpool", position, [ "a", [| 1.0f |] ])
    Checkpoint.Load(p, graph "input 9x9x1\nconv 2 3x3 s2 same\nglobalavgpool") |> ignore
    // other channels are another architecture (and other weights)
    let other = Assert.Throws<CheckpointError>(fun () -> Checkpoint.Load(p, graph "input 8x8x3\nconv 2 3x3 s2 same\nglobalavgpool") |> ignore)
    Assert.Contains("different model", other.Message)
    // explicit padding is the model's choice: p1 and p2 are different models with the same weights
    Checkpoint.Save(p, graph "input 8x8x1\nconv 2 3x3 p1\nglobalavgpool", position, [ "a", [| 1.0f |] ])
    let e = Assert.Throws<CheckpointError>(fun () -> Checkpoint.Load(p, graph "input 8x8x1\nconv 2 3x3 p2\nglobalavgpool") |> ignore)
    Assert.Contains("different model", e.Message)

[<Fact>]
let ``LoadWeights prefers the average, fills absent input statistics, and names a missing or mis-sized tensor; Restore and LoadTensors likewise`` () =
    let normalized = graph "input 2x2x3\nflatten\ndense 3 relu\ndense 2\ntrain\n  normalize"
    let net = Network<float32>(normalized, 1, 0)
    let names = [ for p in net.Weights -> p.Name ]
    Assert.Contains(Normalization.Mean, names)
    let p = path ()
    let saved = [ for q in net.Weights do if not (Normalization.IsStatistic q.Name) then yield q.Name, Array.init q.Value.Length (fun i -> float32 i) ]
    // the average of the first tensor is there: it wins over the tensor itself
    let first = fst saved.Head
    let average = Array.create (snd saved.Head).Length 0.5f
    Checkpoint.Save(p, normalized, position, structs (saved @ [ "ema/" + first, average ]))
    for q in net.Weights do Array.Fill(q.Value, 9.0f)
    Checkpoint.LoadWeights(p, normalized, net.Weights)
    for q in net.Weights do
        if q.Name = first then Assert.Equal<float32[]>(average, q.Value)
        elif q.Name = Normalization.Mean then Assert.Equal<float32[]>(Array.zeroCreate q.Value.Length, q.Value)
        elif q.Name = Normalization.Deviation then Assert.Equal<float32[]>(Array.create q.Value.Length 1.0f, q.Value)
        else Assert.Equal<float32[]>(saved |> List.find (fst >> (=) q.Name) |> snd, q.Value)
    // a tensor missing, or of another size
    let second = fst saved[1]
    Checkpoint.Save(p, normalized, position, structs (saved |> List.filter (fst >> (<>) second)))
    Assert.Equal(sprintf "%s: has no tensor '%s'" p second, (Assert.Throws<CheckpointError>(fun () -> Checkpoint.LoadWeights(p, normalized, net.Weights))).Message)
    let tensors = dict [ for n, v in saved -> n, (if n = second then Array.append v [| 1.0f |] else v) ]
    Checkpoint.Save(p, normalized, position, [ for KeyValue(n, v) in tensors -> struct (n, v) ])
    let size = (snd saved[1]).Length
    Assert.Equal(sprintf "%s: tensor '%s' has %d values, the model needs %d" p second (size + 1) size,
                 (Assert.Throws<CheckpointError>(fun () -> Checkpoint.LoadWeights(p, normalized, net.Weights))).Message)
    // Restore: the same rules by name; an absent statistic (or its average) is the identity
    let loaded = Checkpoint.LoadTensors p
    Assert.Equal(size + 1, loaded[second].Length)
    let into = [ "ema/" + Normalization.Deviation, Array.create 3 7.0f; Normalization.Mean, Array.create 3 7.0f; first, Array.zeroCreate (snd saved.Head).Length ]
    Checkpoint.Restore(p, loaded, [ for n, v in into -> struct (n, v) ])
    Assert.Equal<float32[]>([| 1.0f; 1.0f; 1.0f |], snd into[0])
    Assert.Equal<float32[]>([| 0.0f; 0.0f; 0.0f |], snd into[1])
    Assert.Equal<float32[]>(snd saved.Head, snd into[2])
    Assert.Equal(sprintf "%s: has no tensor 'nowhere'" p, (Assert.Throws<CheckpointError>(fun () -> Checkpoint.Restore(p, loaded, [ struct ("nowhere", [| 0.0f |]) ]))).Message)
    Assert.Equal(sprintf "%s: tensor '%s' has %d values, the model needs 1" p second (size + 1),
                 (Assert.Throws<CheckpointError>(fun () -> Checkpoint.Restore(p, loaded, [ struct (second, [| 0.0f |]) ]))).Message)
    // LoadTensors reads any model's checkpoint: no architecture to compare
    Checkpoint.Save(p, graph "input 9\ndense 1", position, [ "w", [| 3.0f |] ])
    Assert.Equal<float32[]>([| 3.0f |], (Checkpoint.LoadTensors p)["w"])
