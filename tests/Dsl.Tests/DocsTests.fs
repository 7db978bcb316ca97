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
