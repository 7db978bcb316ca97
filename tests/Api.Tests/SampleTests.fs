/// The samples build and run against the library (a project reference) with tiny settings:
/// LeNet for one epoch on 64 generated Fashion-MNIST-like images, then one prediction.
module CnnDsl.Api.Tests.SampleTests

open System
open System.Diagnostics
open System.IO
open Xunit
open CnnDsl.Api.Tests.TestSupport

/// The configuration the tests were built in (the samples are built with them: Api.Tests.fsproj).
let private configuration =
    match typeof<CnnDsl.Model>.Assembly.GetCustomAttributes(typeof<Reflection.AssemblyConfigurationAttribute>, false) with
    | [| :? Reflection.AssemblyConfigurationAttribute as a |] -> a.Configuration
    | _ -> "Release"

/// `dotnet run --project samples/NAME -c Release --no-build -- ARGS`: (exit code, stdout, stderr).
/// The test project's build builds the samples (so that a test takes seconds, not a build).
let private runSample (name: string) (args: string) =
    let project = Path.Combine(root, "samples", name)
    let info = ProcessStartInfo("dotnet", sprintf "run --project \"%s\" -c %s --no-build -- %s" project configuration args)
    info.RedirectStandardOutput <- true
    info.RedirectStandardError <- true
    info.UseShellExecute <- false
    info.WorkingDirectory <- root
    // the test host's MSBuild settings are not the sample's
    for key in [ "MSBuildExtensionsPath"; "MSBuildSDKsPath"; "MSBUILD_EXE_PATH" ] do info.Environment.Remove key |> ignore
    use p = Process.Start info
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEnd()
    if not (p.WaitForExit(TimeSpan.FromMinutes 3.0)) then p.Kill true
    p.ExitCode, out.Result, err

/// A 28x28 grey PNG: a bright bar on black.
let private png () =
    let path = temp "sample-image" + ".png"
    let pixels = Array.init (28 * 28) (fun i -> if i / 28 >= 10 && i / 28 < 14 then 230uy else 0uy)
    use stream = File.Create path
    StbImageWriteSharp.ImageWriter().WritePng(pixels, 28, 28, StbImageWriteSharp.ColorComponents.Grey, stream)
    path

/// Runs a sample on 64 generated images for one epoch; with `image`, it classifies that file,
/// else the first test image.
let private check (name: string) (image: string option) =
    let data = writeIdx 64 20
    let out = temp "sample-run"
    let imageArgument = match image with Some f -> sprintf " --image \"%s\"" f | None -> ""
    let code, text, err = runSample name (sprintf "--model \"%s\" --data \"%s\" --epochs 1 --limit 64 --out \"%s\"%s" lenetPath data out imageArgument)
    Assert.True((code = 0), sprintf "exit %d\n%s\n%s" code text err)
    Assert.Contains("Model lenet: 28x28x1 -> 10, 61,706 parameters", text)
    Assert.Contains(sprintf "Data %s: 64 training, 12 test examples of 28x28x1" (Path.GetFileName data), text)
    Assert.Contains("Epoch 1/1 - ", text)
    Assert.Contains("Test: loss ", text)
    Assert.Contains("(12 examples)", text)
    Assert.True(File.Exists(Path.Combine(out, "last.ckpt")))
    match image with
    // the prediction of the first test image (a "T-shirt/top", label 0)
    | None -> Assert.Contains("Test image 0 (T-shirt/top): predicted ", text)
    | Some f -> Assert.Contains(sprintf "Image %s: predicted " f, text)
    // the ten classes' probabilities, which sum to 1
    let probabilities = text.Replace("\r", "").Split('\n') |> Array.filter (fun l -> Text.RegularExpressions.Regex.IsMatch(l, @"^  .+: [01]\.\d{4}$"))
    Assert.Equal(10, probabilities.Length)
    Assert.StartsWith("  T-shirt/top: ", probabilities[0])
    Assert.StartsWith("  Ankle boot: ", probabilities[9])
    let sum = probabilities |> Array.sumBy (fun l -> Double.Parse(l.Substring(l.LastIndexOf ' ' + 1), Globalization.CultureInfo.InvariantCulture))
    Assert.InRange(sum, 0.99, 1.01)

[<Fact>]
let ``the C# sample trains LeNet through the API and predicts an image file`` () = check "TrainLeNet.CSharp" (Some (png ()))

[<Fact>]
let ``the F# sample trains LeNet through the API and predicts a test image`` () = check "TrainLeNet.FSharp" None
