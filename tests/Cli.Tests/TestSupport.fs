/// What the CLI tests share: the repository's folder and running a command in-process.
module CnnDsl.Cli.Tests.TestSupport

open System
open System.IO
open CnnDsl.Cli

let rec private findRoot (dir: DirectoryInfo) =
    if File.Exists(Path.Combine(dir.FullName, "CnnDsl.sln")) then dir.FullName else findRoot dir.Parent

let root = findRoot (DirectoryInfo AppContext.BaseDirectory)

/// Runs a command with captured output: (exit code, stdout, stderr).
let run (command: Commands.Console -> int) =
    let out, err = new StringWriter(), new StringWriter()
    let code = command { Out = out; Err = err }
    code, out.ToString(), err.ToString()
