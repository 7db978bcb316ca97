/// models/weights/: every pretrained checkpoint belongs to a model in models/, loads into it
/// (format, SHA-256 and architecture checks), gives probabilities, is listed with its SHA-256 in
/// models/weights/README.md, and keeps within the repository's limits (10 MB a file, 30 MB in all).
module CnnDsl.Cli.Tests.PretrainedTests

open System
open System.IO
open System.Security.Cryptography
open Xunit
open CnnDsl.Cli.Tests.TestSupport

let private folder = Path.Combine(root, "models", "weights")
let private files () = Directory.GetFiles(folder, "*.ckpt") |> Array.sort

[<Fact>]
let ``every pretrained checkpoint loads into its model, is listed with its SHA-256, and keeps to the size limits`` () =
    let files = files ()
    Assert.NotEmpty(files)
    let readme = File.ReadAllText(Path.Combine(folder, "README.md"))
    let mutable total = 0L
    for file in files do
        let name = Path.GetFileNameWithoutExtension file
        let size = FileInfo(file).Length
        total <- total + size
        Assert.True(size <= 10L * 1024L * 1024L, sprintf "%s: %d bytes, over 10 MB" file size)
        let sha = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes file))
        Assert.True(readme.Contains sha, sprintf "models/weights/README.md does not list %s's SHA-256 %s" name sha)
        let model = CnnDsl.Model.Load(Path.Combine(root, "models", name + ".cnn"))
        let predictor = model.CreatePredictor file
        let shape = model.InputShape
        let image = Array.zeroCreate<float32> (shape.Height.Value * shape.Width.Value * shape.Channels)
        let probabilities = predictor.Predict(image).ToArray()
        Assert.Equal(1.0f, Array.sum probabilities, 3)
    Assert.True(total <= 30L * 1024L * 1024L, sprintf "models/weights holds %d bytes, over 30 MB" total)
