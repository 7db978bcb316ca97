/// What the packaging tests share: the repository's folder and running programs.
module CnnDsl.Packaging.Tests.TestSupport

open System
open System.Diagnostics
open System.IO

let rec private findRoot (dir: DirectoryInfo) =
    if File.Exists(Path.Combine(dir.FullName, "CnnDsl.sln")) then dir.FullName else findRoot dir.Parent

let root = findRoot (DirectoryInfo AppContext.BaseDirectory)

/// What a program printed and how it ended.
type Outcome =
    { Code: int
      Out: string
      Err: string
      Seconds: float }
    member o.Text = o.Out + o.Err

/// Runs a program to its end (at most `timeout`), in `directory`, with `environment` added to
/// this process's. The variables that `dotnet test` sets for MSBuild are removed, so that a
/// child `dotnet` finds its own SDK; node reuse and the compiler server are off, so that no
/// process outlives the command and holds its output open.
let runIn (directory: string) (environment: (string * string) list) (timeout: TimeSpan) (program: string) (args: string list) =
    let info = ProcessStartInfo(program, args)
    info.WorkingDirectory <- directory
    info.RedirectStandardOutput <- true
    info.RedirectStandardError <- true
    info.UseShellExecute <- false
    for name in [ "MSBuildExtensionsPath"; "MSBuildSDKsPath"; "MSBUILD_EXE_PATH"; "MSBuildLoadMicrosoftTargetsReadOnly" ] do
        info.Environment.Remove name |> ignore
    info.Environment["MSBUILDDISABLENODEREUSE"] <- "1"
    info.Environment["UseSharedCompilation"] <- "false"
    info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] <- "1"
    info.Environment["DOTNET_NOLOGO"] <- "1"
    info.Environment["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] <- "1"
    for name, value in environment do info.Environment[name] <- value
    let clock = Stopwatch.StartNew()
    use p = Process.Start info
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEndAsync()
    if not (p.WaitForExit timeout) then
        p.Kill true
        failwithf "%s %s did not finish in %.0f s" program (String.Join(" ", args)) timeout.TotalSeconds
    p.WaitForExit()
    { Code = p.ExitCode; Out = out.Result; Err = err.Result; Seconds = clock.Elapsed.TotalSeconds }

/// Fails with the command and its whole output unless it exited 0.
let succeeded (what: string) (o: Outcome) =
    if o.Code <> 0 then failwithf "%s exited %d:\n%s\n%s" what o.Code o.Out o.Err
    o

/// Writes a tiny IDX data set (28x28 grey, ten classes; `train` training and `test` test images)
/// into `folder`, whose name should say "fashion" so that its classes are Fashion-MNIST's: class
/// k is a bright bar at a place of its own, on noise (as tests/Api.Tests does for the samples).
let writeIdx (folder: string) (train: int) (test: int) =
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
