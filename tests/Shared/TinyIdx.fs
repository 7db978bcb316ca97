/// A tiny IDX data set for tests that run whole programs (the API's samples, the installed
/// tool): 28x28 grey images of ten classes in a folder whose name says "fashion" when the
/// caller wants Fashion-MNIST's class names. Class k is a bright bar at a place of its own, on
/// noise, so that a few epochs learn something. Linked into the test projects that need it.
module CnnDsl.Tests.TinyIdx

open System
open System.IO

/// Writes `train` training and `test` test images into `folder`, and returns the folder.
let write (folder: string) (train: int) (test: int) =
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
    let save (prefix: string) (count: int) =
        let pixels, labels = images count
        File.WriteAllBytes(Path.Combine(folder, prefix + "-images-idx3-ubyte"),
                           Array.concat [ bigEndian 0x803; bigEndian count; bigEndian 28; bigEndian 28; pixels ])
        File.WriteAllBytes(Path.Combine(folder, prefix + "-labels-idx1-ubyte"),
                           Array.concat [ bigEndian 0x801; bigEndian count; labels ])
    save "train" train
    save "t10k" test
    folder
