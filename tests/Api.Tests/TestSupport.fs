/// What the API tests share: the repository's folder, temporary folders, tiny data sets.
module CnnDsl.Api.Tests.TestSupport

open System
open System.IO
open CnnDsl

let rec private findRoot (dir: DirectoryInfo) =
    if File.Exists(Path.Combine(dir.FullName, "CnnDsl.sln")) then dir.FullName else findRoot dir.Parent

let root = findRoot (DirectoryInfo AppContext.BaseDirectory)

let lenetPath = Path.Combine(root, "models", "lenet.cnn")

let temp (what: string) = Path.Combine(Path.GetTempPath(), sprintf "cnndsl-api-%s-%s" what (Path.GetRandomFileName()))

/// A small convolutional classifier of the generated 16x16 `shapes` set (three classes).
let shapesText = "input 16x16x1\nconv 8 3x3 relu\nmaxpool 2\nconv 8 3x3 relu\nflatten\ndense 3 softmax\ntrain\n  data shapes\n  optimizer adam\n  batch 16\n  seed 4\n"

let shapesModel () = Model.Parse(shapesText, "shapes-net")

/// The first `n` training and n/5 test examples of the shapes set, in memory.
let shapes (n: int) = (DataSplit.Load("shapes", 16, 16, 1)).Limit n

/// Writes a tiny IDX data set (28x28 grey, ten classes) into a new folder whose name says
/// "fashion" (so that its classes are Fashion-MNIST's): class k is a bright square at a
/// place of its own, on noise, so that a few epochs learn something.
let writeIdx (train: int) (test: int) =
    let folder = temp "fashion-tiny"
    Directory.CreateDirectory folder |> ignore
    let random = Random 7
    let images (count: int) =
        let labels = Array.init count (fun i -> byte (i % 10))
        let pixels = Array.zeroCreate<byte> (count * 28 * 28)
        for n in 0 .. count - 1 do
            for i in 0 .. 28 * 28 - 1 do pixels[n * 784 + i] <- byte (random.Next 40)
            let k = int labels[n]
            let y0, x0 = 2 + (k / 5) * 12, 1 + (k % 5) * 5
            for y in y0 .. y0 + 7 do
                for x in x0 .. x0 + 3 do pixels[n * 784 + y * 28 + x] <- 230uy
        pixels, labels
    let bigEndian (v: int) = [| byte (v >>> 24); byte (v >>> 16); byte (v >>> 8); byte v |]
    let write (prefix: string) (count: int) =
        let pixels, labels = images count
        File.WriteAllBytes(Path.Combine(folder, prefix + "-images-idx3-ubyte"),
                           Array.concat [ bigEndian 0x803; bigEndian count; bigEndian 28; bigEndian 28; pixels ])
        File.WriteAllBytes(Path.Combine(folder, prefix + "-labels-idx1-ubyte"), Array.concat [ bigEndian 0x801; bigEndian count; labels ])
    write "train" train
    write "t10k" test
    folder

/// An IProgress that runs its action at once, on the reporting thread (Progress<T> posts).
type Immediate<'T>(f: 'T -> unit) =
    interface IProgress<'T> with
        member _.Report(value) = f value
