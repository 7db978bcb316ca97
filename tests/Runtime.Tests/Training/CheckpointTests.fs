module CnnDsl.Runtime.Tests.CheckpointTests

open System.IO
open Xunit
open CnnDsl.Runtime.Training
open CnnDsl.Runtime.Tests.TestSupport

let private model = graph "input 4\ndense 3 relu\ndense 2"
let private path () = Path.Combine(Path.GetTempPath(), Path.GetRandomFileName() + ".ckpt")
let private position = TrainingPosition(2, 5, 17L, 16L, 0.5)

[<Fact>]
let ``a checkpoint reads back what was written`` () =
    let p = path ()
    Checkpoint.Save(p, model, position, [ "a", [| 1.0f; 2.0f |]; "b", [| 3.0f |] ])
    let struct (loaded, tensors) = Checkpoint.Load(p, model)
    Assert.Equal(position, loaded)
    Assert.Equal<float32[]>([| 1.0f; 2.0f |], tensors["a"])
    Assert.False(File.Exists(p + ".tmp"))

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
