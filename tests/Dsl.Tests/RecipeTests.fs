/// The training section's recipe settings (issue 19): label smoothing, crop and cutout,
/// per-step schedules, AdamW, normalisation, EMA and test-time flips; each read into the
/// graph's Training record, and each bad value a positioned CNN502.
module CnnDsl.Dsl.Tests.RecipeTests

open Xunit
open CnnDsl.Graph
open CnnDsl.Dsl
open CnnDsl.Dsl.Tests.TestSupport

let private model = "input 8x8x1\nconv 4 3x3 relu\nflatten\ndense 3 softmax\ntrain\n  "

let private training (settings: string) = (graph (model + settings)).Training

/// The one error of a training section, with its line and column (the train section's
/// settings start on line 6).
let private error (settings: string) =
    let text = model + settings
    match diagnostics text |> List.filter Diagnostic.isError with
    | [ d ] -> d
    | ds -> failwithf "expected one error for %s, got:\n%s" settings (Diagnostic.renderAll "t.cnn" text ds)

let private assertError (settings: string) (column: int) (containing: string) =
    let d = error settings
    Assert.Equal("CNN502", d.Code)
    Assert.Equal((6, column), (d.Pos.Line, d.Pos.Col))
    Assert.Contains(containing, d.Message)
    Assert.True(d.Hint.IsSome, "a hint")

[<Fact>]
let ``labelsmoothing is read as Keras's a in [0, 1]`` () =
    Assert.Equal(Some 0.1, (training "labelsmoothing 0.1").LabelSmoothing)
    Assert.Equal(None, (training "epochs 1").LabelSmoothing)
    Assert.Equal(Some 0.1, (training "loss bce; labelsmoothing 0.1").LabelSmoothing)

[<Fact>]
let ``a labelsmoothing outside [0, 1], or with a loss other than cross-entropy, is a positioned error`` () =
    assertError "labelsmoothing 1.5" 18 "'labelsmoothing' must be a number in [0.0, 1.0]"
    assertError "labelsmoothing -0.1" 18 "'labelsmoothing'"
    assertError "labelsmoothing smooth" 18 "'labelsmoothing'"
    assertError "loss mse; labelsmoothing 0.1" 28 "cross-entropy losses only"
