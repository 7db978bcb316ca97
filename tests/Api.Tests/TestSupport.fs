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

/// A tiny IDX data set (tests/Shared/TinyIdx.fs) in a new folder whose name says "fashion"
/// (so that its classes are Fashion-MNIST's).
let writeIdx (train: int) (test: int) = CnnDsl.Tests.TinyIdx.write (temp "fashion-tiny") train test

/// An IProgress that runs its action at once, on the reporting thread (Progress<T> posts).
type Immediate<'T>(f: 'T -> unit) =
    interface IProgress<'T> with
        member _.Report(value) = f value
