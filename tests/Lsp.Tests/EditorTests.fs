/// The real thing: `dsl lsp` as a process, headless Neovim's own LSP client, and the VS Code
/// extension's TypeScript and grammar (scripts/setup-editor.sh installs Neovim and the npm packages).
module CnnDsl.Lsp.Tests.EditorTests

open System
open System.Diagnostics
open System.IO
open System.Text.Json.Nodes
open Xunit
open CnnDsl.Lsp.Analysis
open CnnDsl.Lsp.Tests.TestSupport

[<Fact>]
let ``dsl lsp as a process: initialize, diagnostics, hover, shutdown and exit`` () =
    let info = ProcessStartInfo(dslPath, [ "lsp" ], RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true)
    use p = Process.Start info
    let c = Client(p.StandardInput.BaseStream, p.StandardOutput.BaseStream)
    c.Initialize() |> ignore
    let u = uri "two-mistakes.cnn"
    let published = c.Open(u, "input 28x28x1\nconv 8 3x3 relu\nmaxpool 27\nflatten\ndense 10 softmaxx\n")
    Assert.Equal<(string * int) list>([ "CNN302", 2; "CNN003", 4 ], codes published)
    let hover = c.Result("textDocument/hover", positionParams u 1 0)
    Assert.Contains("out = floor((28 + 2*0 - 3)/1) + 1 = 26", hover["contents"].["value"].S)
    c.SendRawText "not json at all"
    Assert.Equal(-32700, c.WaitFor(fun m -> not (isNull m["error"])).["error"].["code"].I)
    Assert.Null(c.Result("shutdown", null))
    c.Notify("exit", null)
    Assert.True(p.WaitForExit 10000)
    Assert.Equal(0, p.ExitCode)
    Assert.Equal("", p.StandardError.ReadToEnd())

[<Fact>]
let ``dsl lsp as a process ends when its client closes stdin`` () =
    let info = ProcessStartInfo(dslPath, [ "lsp" ], RedirectStandardInput = true, RedirectStandardOutput = true)
    use p = Process.Start info
    p.StandardInput.Close()
    Assert.True(p.WaitForExit 10000)
    Assert.Equal(1, p.ExitCode)

let private nvim () =
    let found = [ "/usr/bin/nvim"; "/usr/local/bin/nvim" ] |> List.tryFind File.Exists
    match found with
    | Some path -> path
    | None -> failwith "nvim is not installed: run scripts/setup-editor.sh (Debian's neovim package)"

/// Runs tests/Lsp.Tests/nvim/client.lua in headless Neovim on a file; its JSON report.
let private inNeovim (file: string) (settings: (string * string) list) =
    let dir = Directory.CreateTempSubdirectory("cnndsl-nvim-")
    try
        let report = Path.Combine(dir.FullName, "report.json")
        let script = repoPath [ "tests"; "Lsp.Tests"; "nvim"; "client.lua" ]
        let env = [ "CNN_DSL", dslPath; "CNN_FILE", file; "CNN_REPORT", report; "XDG_STATE_HOME", dir.FullName; "XDG_DATA_HOME", dir.FullName; "XDG_CONFIG_HOME", dir.FullName ] @ settings
        let code, out, err = runProcess (nvim ()) [ "--headless"; "--clean"; "-n"; "-c"; "luafile " + script ] env dir.FullName 60000
        if not (File.Exists report) then failwithf "Neovim wrote no report (exit %d): %s %s" code out err
        let json = JsonNode.Parse(File.ReadAllText report)
        match json["error"] with
        | null -> json
        | e -> failwithf "the Neovim script failed: %s" (e.S)
    finally
        dir.Delete true

let private nvimDiagnostics (report: JsonNode) (key: string) =
    report[key].A |> Seq.map (fun d -> d["code"].S, d["lnum"].I) |> List.ofSeq

[<Fact>]
let ``headless Neovim's LSP client gets the diagnostics of a file with two mistakes, and a hover`` () =
    let dir = Directory.CreateTempSubdirectory("cnndsl-two-")
    try
        let file = Path.Combine(dir.FullName, "two-mistakes.cnn")
        File.WriteAllText(file, "input 28x28x1\nconv 8 3x3 relu\nmaxpool 27\nflatten\ndense 10 softmaxx\n")
        let report = inNeovim file [ "CNN_HOVER", "1,2" ]
        Assert.Equal<(string * int) list>([ "CNN302", 2; "CNN003", 4 ], nvimDiagnostics report "diagnostics")
        Assert.Contains("conv2d (Conv2D, relu), line 2: 28x28x1 -> 26x26x8", report["hover"].S)
        Assert.Contains("params = (3*3*1 + 1) * 8 = 80", report["hover"].S)
    finally
        dir.Delete true

[<Fact>]
let ``headless Neovim on models/lenet.cnn: no diagnostic, LeNet's shapes as inlay hints, CNN302 within a second of an edit, the conv's formula on hover`` () =
    let dir = Directory.CreateTempSubdirectory("cnndsl-lenet-")
    try
        let file = Path.Combine(dir.FullName, "lenet.cnn")
        File.Copy(repoPath [ "models"; "lenet.cnn" ], file)
        let report = inNeovim file [ "CNN_HOVER", "3,1"; "CNN_EDIT", "6|maxpool 13"; "CNN_EXPECT", "CNN302" ]
        Assert.Empty(nvimDiagnostics report "diagnostics")
        let hints = report["hints"].A |> Seq.map (fun h -> h.S) |> List.ofSeq
        Assert.Equal<string list>(
            [ "-> 28x28x6  156 params"; "-> 14x14x6"; "-> 10x10x16  2,416 params"; "-> 5x5x16"; "-> 400"
              "-> 120  48,120 params"; "-> 84  10,164 params"; "-> 10  850 params" ], hints)
        Assert.Contains("out = ceil(28/1) = 28", report["hover"].S)
        // the second `maxpool 2` (0-based line 6, on 10x10x16) became `maxpool 13`
        Assert.Equal<(string * int) list>([ "CNN302", 6 ], nvimDiagnostics report "edited")
        let ms = report["edit_ms"].F
        Assert.True(ms < 1000.0, sprintf "CNN302 arrived %.0f ms after the edit" ms)
    finally
        dir.Delete true

[<Fact>]
let ``the VS Code extension's TypeScript compiles and its grammar colours a sample as expected`` () =
    let folder = repoPath [ "editors"; "vscode" ]
    if not (Directory.Exists(Path.Combine(folder, "node_modules", "vscode-textmate"))) then
        failwith "editors/vscode/node_modules is missing: run scripts/setup-editor.sh (npm ci)"
    let code, out, err = runProcess "npm" [ "test"; "--silent" ] [] folder 120000
    Assert.True((code = 0), sprintf "npm test failed (%d):\n%s\n%s" code out err)
    Assert.Contains("# fail 0", out)
