module CnnDsl.Dsl.Tests.DocsTests

open System.IO
open System.Text.RegularExpressions
open Xunit
open CnnDsl.Dsl
open CnnDsl.Dsl.Tests.TestSupport

let private read parts = File.ReadAllText(repoPath parts)

/// Fenced blocks of a Markdown file with the given info string.
let private blocks (info: string) (markdown: string) =
    Regex.Matches(markdown.Replace("\r\n", "\n"), "```" + info + "\n(.*?)```", RegexOptions.Singleline)
    |> Seq.map (fun m -> m.Groups[1].Value)
    |> List.ofSeq

[<Fact>]
let ``every cnn example in docs/language.md checks clean`` () =
    let examples = blocks "cnn" (read [ "docs"; "language.md" ])
    Assert.True(examples.Length >= 8, "the language guide should show its examples")
    for text in examples do
        match compile text with
        | Ok _ -> ()
        | Error ds -> failwithf "docs/language.md example fails:\n%s\n%s" text (Diagnostic.renderAll "example" text ds)

[<Fact>]
let ``every error example in docs/errors.md produces its code`` () =
    let doc = read [ "docs"; "errors.md" ]
    for entry in Messages.all do
        let section = Regex.Match(doc, "## " + entry.Code + "\\b(.*?)(?=\n## |\\z)", RegexOptions.Singleline)
        Assert.True(section.Success, sprintf "docs/errors.md does not document %s" entry.Code)
        match blocks "cnn" section.Groups[1].Value with
        | example :: _ ->
            let codes = diagnostics example |> List.map (fun d -> d.Code)
            Assert.True(List.contains entry.Code codes, sprintf "the example under %s gives %A" entry.Code codes)
        | [] -> failwithf "%s has no example in docs/errors.md" entry.Code

[<Fact>]
let ``docs/language.md writes every named kernel's matrix as Kernels.fs holds it`` () =
    let doc = read [ "docs"; "language.md" ]
    let section = Regex.Match(doc, "## Fixed kernels(.*?)(?=\n## )", RegexOptions.Singleline).Groups[1].Value
    // A row: | `name` | `[[a b] [c d]] / N` then `[[...]]` ... |
    let written =
        Regex.Matches(section, "^\\| `(\\w+)` \\| (.*) \\|$", RegexOptions.Multiline)
        |> Seq.map (fun row ->
            let matrices =
                Regex.Matches(row.Groups[2].Value, "`(\\[\\[.*?\\]\\])(?: / (\\d+))?`")
                |> Seq.map (fun m ->
                    let divisor = if m.Groups[2].Success then float m.Groups[2].Value else 1.0
                    Regex.Matches(m.Groups[1].Value, "\\[([^\\[\\]]*)\\]")
                    |> Seq.map (fun r ->
                        r.Groups[1].Value.Split(' ', System.StringSplitOptions.RemoveEmptyEntries)
                        |> Array.map (fun v -> float v / divisor))
                    |> Array.ofSeq)
                |> Array.ofSeq
            row.Groups[1].Value, matrices)
        |> Map.ofSeq
    for name, kernels in Kernels.named do
        Assert.True(written.ContainsKey name, sprintf "docs/language.md does not write %s's matrix" name)
        Assert.Equal<float[][][]>(kernels, written[name])
    Assert.Equal(Kernels.named.Length, written.Count)
