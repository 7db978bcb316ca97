/// What the CLI tests share: the repository's folder and running a command in-process.
module CnnDsl.Cli.Tests.TestSupport

open System
open System.IO
open CnnDsl.Cli

let rec private findRoot (dir: DirectoryInfo) =
    if File.Exists(Path.Combine(dir.FullName, "CnnDsl.sln")) then dir.FullName else findRoot dir.Parent

let root = findRoot (DirectoryInfo AppContext.BaseDirectory)

/// Runs a command with captured output: (exit code, stdout, stderr).
let run (command: Shell.Console -> int) =
    let out, err = new StringWriter(), new StringWriter()
    let code = command { Out = out; Err = err }
    code, out.ToString(), err.ToString()

/// Starts the built `dsl` program with arguments, its output redirected, and environment
/// variables (CNNDSL_PAUSE_AT for an interruption at a known batch).
let dslWith (environment: (string * string) list) (args: string) =
    let info = Diagnostics.ProcessStartInfo("dotnet", sprintf "\"%s\" %s" (Path.Combine(AppContext.BaseDirectory, "dsl.dll")) args)
    info.RedirectStandardOutput <- true
    info.RedirectStandardError <- true
    info.UseShellExecute <- false
    for name, value in environment do info.Environment[name] <- value
    Diagnostics.Process.Start info

let dsl (args: string) = dslWith [] args

/// Runs `dsl` to its end: (exit code, stdout, stderr).
let dslRun (args: string) =
    use p = dsl args
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEnd()
    p.WaitForExit()
    p.ExitCode, out.Result, err

/// A console whose stderr cancels `source` when a run says it paused (RunOptions.PauseAt):
/// an in-process Ctrl+C at a known batch.
type CancelOnPause(source: Threading.CancellationTokenSource) =
    inherit StringWriter()
    override this.WriteLine(s: string) =
        base.WriteLine s
        if s.StartsWith "dsl: paused" then source.Cancel()
