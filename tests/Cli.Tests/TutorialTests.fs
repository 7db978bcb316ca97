[<Xunit.TestCaseOrderer("CnnDsl.Cli.Tests.TutorialTests+PageOrder", "Cli.Tests")>]
module CnnDsl.Cli.Tests.TutorialTests

open System
open System.Collections.Generic
open System.Diagnostics
open System.IO
open System.Text.RegularExpressions
open Xunit
open Xunit.Abstractions
open Xunit.Sdk
open CnnDsl.Cli.Tests.TestSupport

/// Every `$ dsl ...` command of docs/tutorial.md with the output the page shows.
let steps () : obj[] seq =
    let text = File.ReadAllText(Path.Combine(root, "docs", "tutorial.md")).Replace("\r\n", "\n")
    Regex.Matches(text, "```sh\n\\$ dsl ([^\n]*)\n```\n```text\n(.*?)```", RegexOptions.Singleline)
    |> Seq.map (fun m -> [| box m.Groups[1].Value; box m.Groups[2].Value |])

/// Steps depend on earlier ones (a `predict` reads the checkpoint a `run` step wrote), but
/// xunit orders a theory's rows by their ids: this runs them in the page's order.
type PageOrder() =
    interface ITestCaseOrderer with
        member _.OrderTestCases<'T when 'T :> ITestCase>(cases: IEnumerable<'T>) : IEnumerable<'T> =
            let position = Dictionary<string, int>()
            steps () |> Seq.iteri (fun i row -> position.TryAdd(string row[0], i) |> ignore)
            let place (case: 'T) =
                match case.TestMethodArguments with
                | null -> Int32.MaxValue
                | arguments when arguments.Length > 0 ->
                    match position.TryGetValue(string arguments[0]) with
                    | true, i -> i
                    | _ -> Int32.MaxValue
                | _ -> Int32.MaxValue
            cases |> Seq.sortBy place

/// Gradient errors differ in their last digits between GEMM backends; the verdicts may not.
let private normalise (s: string) =
    Regex.Replace(s.Replace("\r\n", "\n"), "worst error \\d\\.\\d\\de-(1\\d|0[7-9])", "worst error (tiny)")

[<Theory>]
[<MemberData(nameof steps)>]
let ``the tutorial's commands print what the tutorial shows`` (arguments: string) (expected: string) =
    let info = ProcessStartInfo("dotnet", sprintf "\"%s\" %s" (Path.Combine(AppContext.BaseDirectory, "dsl.dll")) arguments)
    info.WorkingDirectory <- root
    info.RedirectStandardOutput <- true
    info.RedirectStandardError <- true
    use p = Process.Start info
    let out = p.StandardOutput.ReadToEnd()
    p.StandardError.ReadToEnd() |> ignore
    p.WaitForExit()
    Assert.Equal(normalise expected, normalise out)

[<Fact>]
let ``the tutorial has its steps`` () =
    Assert.True(Seq.length (steps ()) >= 14)
