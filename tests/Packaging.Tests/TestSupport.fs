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

/// A tiny IDX data set in `folder` (tests/Shared/TinyIdx.fs); the folder's name should say
/// "fashion" so that its classes are Fashion-MNIST's.
let writeIdx (folder: string) (train: int) (test: int) = CnnDsl.Tests.TinyIdx.write folder train test
