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
