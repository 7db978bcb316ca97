module CnnDsl.Dsl.Tests.PrettyTests

open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open CnnDsl.Dsl
open CnnDsl.Dsl.Tests.TestSupport

[<Property(MaxTest = 500)>]
let ``printing then parsing gives back the same tree`` () =
    Prop.forAll (Arb.fromGen TestSupport.program) (fun program ->
        let text = Pretty.program program
        let parsed, errors = Parser.parse text
        if not errors.IsEmpty then failwithf "the printed program does not parse:\n%s\n%A" text errors
        (strip parsed = strip program) |> Prop.label text)

[<Fact>]
let ``every model in models/ is a fixed point of print-after-parse`` () =
    for name, text in TestSupport.models () do
        let parsed, errors = Parser.parse text
        Assert.True(errors.IsEmpty, name)
        let again, _ = Parser.parse (Pretty.program parsed)
        Assert.True((strip again = strip parsed), name)

[<Fact>]
let ``floats print so that they read back as floats`` () =
    Assert.Equal("1.0", Pretty.float 1.0)
    Assert.Equal("0.25", Pretty.float 0.25)
    Assert.Equal("1E-05", Pretty.float 1e-5)

[<Fact>]
let ``hand-set weights print back to text that parses to the same tree`` () =
    let text = "input 3x3x2\nconv 2 1x1 weights [[[1]\n [2]], [[3] [-4.5]]] bias [0.5 -1e-3] relu\ndense 1 weights [1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18] bias 0"
    let program, errors = Parser.parse text
    Assert.Empty errors
    let printed = Pretty.program program
    let again, errors = Parser.parse printed
    Assert.Empty errors
    Assert.Equal(TestSupport.strip program, TestSupport.strip again)
    Assert.Contains("weights [[[1.0] [2.0]] [[3.0] [-4.5]]] bias [0.5 -0.001]", printed)
