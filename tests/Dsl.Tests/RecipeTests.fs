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

[<Fact>]
let ``augment reads crop with its padding and mode and cutout with its size, beside the plain words`` () =
    Assert.Equal<string list>([ "flip"; "crop 4"; "cutout 8" ], (training "augment flip crop 4 cutout 8").Augment)
    Assert.Equal<string list>([ "crop 4 reflect"; "shift" ], (training "augment crop 4 reflect shift").Augment)
    Assert.Equal<string list>([ "crop 2" ], (training "augment crop 2 zero").Augment)

[<Fact>]
let ``a crop or cutout without a size, with a bad one, or given twice is a positioned error`` () =
    assertError "augment crop" 11 "'crop' needs the padding"
    assertError "augment crop 0" 16 "'crop' pads by a whole number"
    assertError "augment flip cutout" 16 "'cutout' needs the side"
    assertError "augment cutout 2.5" 18 "'cutout' erases a square"
    assertError "augment crop 4 crop 2" 18 "'crop' is given twice"
    assertError "augment crop 4 mirror" 18 "'augment' cannot be mirror"

[<Fact>]
let ``schedule onecycle takes PyTorch's pct_start and anneal strategy, and warmup a number of epochs`` () =
    Assert.Equal(Some (Schedule.OneCycle (0.3, false)), (training "schedule onecycle").Schedule)
    Assert.Equal(Some (Schedule.OneCycle (0.25, true)), (training "schedule onecycle 0.25 linear").Schedule)
    let t = training "epochs 10; schedule cosine; warmup 2"
    Assert.Equal((Some Schedule.Cosine, Some 2), (t.Schedule, t.Warmup))
    Assert.Equal(Some 1, (training "warmup 1").Warmup)

[<Fact>]
let ``a bad onecycle argument, a warmup with onecycle or as long as the run is a positioned error`` () =
    assertError "schedule onecycle 1.5" 21 "'schedule onecycle' takes the warm-up fraction"
    assertError "schedule onecycle fast" 21 "found fast"
    assertError "schedule onecycle; warmup 2" 29 "does not combine"
    assertError "epochs 3; warmup 3" 20 "'warmup' takes 3 epochs of the 3"
    assertError "warmup 0" 10 "'warmup' must be a whole number of at least 1"

[<Fact>]
let ``optimizer adamw has PyTorch's defaults, its own weightdecay and the nodecay exclusions`` () =
    let t = training "optimizer adamw"
    Assert.Equal(Some (Optimizer.AdamW (0.001, 0.9, 0.999, 1e-8, 0.01, [])), t.Optimizer)
    Assert.Equal(None, t.WeightDecay)
    let u = training "optimizer adamw; lr 0.003; weightdecay 0.05; nodecay biases batchnorm"
    Assert.Equal(Some (Optimizer.AdamW (0.003, 0.9, 0.999, 1e-8, 0.05, [ "biases"; "batchnorm" ])), u.Optimizer)
    // the Keras optimizers keep weightdecay as before
    Assert.Equal(Some 0.1, (training "optimizer adam; weightdecay 0.1").WeightDecay)

[<Fact>]
let ``nodecay without adamw, or naming something else, and adamw's misplaced settings are positioned errors`` () =
    assertError "optimizer adam; nodecay biases" 19 "'nodecay' is a setting of adamw"
    assertError "optimizer adamw; nodecay kernels" 28 "'nodecay' cannot be kernels"
    assertError "optimizer adamw; momentum 0.9" 20 "'momentum' is a setting of sgd and rmsprop"
    assertError "optimizer adamw; weightdecay -1" 32 "'weightdecay' must be a number"

[<Fact>]
let ``ema takes timm's decay in (0, 1) and tta the flip`` () =
    let t = training "ema 0.999; tta flip"
    Assert.Equal((Some 0.999, [ "flip" ]), (t.Ema, t.Tta))
    Assert.Equal((None, []), ((training "epochs 2").Ema, (training "epochs 2").Tta))
    Assert.Equal<string list>([ "flip"; "shift 1" ], (training "tta flip shift 1").Tta)
    Assert.Equal<string list>([ "shift 2"; "flip" ], (training "tta shift 2 flip").Tta)

[<Fact>]
let ``an ema outside (0, 1) and a tta other than flip are positioned errors`` () =
    assertError "ema 1" 7 "'ema' must be a number in (0.0, 1.0)"
    assertError "ema 0" 7 "'ema'"
    assertError "tta rotate" 7 "'tta' cannot be rotate"
    assertError "tta" 3 "'tta' names"
    assertError "tta flip shift" 12 "'shift' in 'tta' needs the distance in pixels"
    assertError "tta shift 0" 13 "'shift' in 'tta' needs the distance in pixels"
    assertError "tta flip flip" 12 "'flip' is given twice in 'tta'"
    assertError "tta shift 1 shift 2" 15 "'shift' is given twice in 'tta'"
    // the model's input is 8x8: a shift of 8 would leave the moved views blank
    assertError "tta flip shift 8" 18 "a shift of 8 pixels moves the 8x8 image out of view"
    Assert.Equal<string list>([ "shift 7" ], (training "tta shift 7").Tta)

[<Fact>]
let ``normalize takes no value, or true or false`` () =
    Assert.True((training "normalize").Normalize)
    Assert.False((training "normalize false").Normalize)
    Assert.False((training "epochs 1").Normalize)
    assertError "normalize 0.5" 13 "'normalize' takes no value"

[<Fact>]
let ``augment and tta on a vector input are positioned errors: they would shuffle its features`` () =
    let text = "input 4\ndense 3 softmax\ntrain\n  data xor\n  augment flip\n  tta shift 1\n"
    let errors = diagnostics text |> List.filter Diagnostic.isError
    Assert.Equal<(string * int * int) list>([ "CNN304", 5, 3; "CNN304", 6, 3 ], errors |> List.map (fun d -> d.Code, d.Pos.Line, d.Pos.Col))
    Assert.Contains("'augment' works on images (it moves, mirrors or erases pixels), and the model's input is a vector of 4", errors[0].Message)
    Assert.Contains("remove 'tta'", errors[1].Hint.Value)
    // on an image input both are fine
    Assert.Empty(diagnostics "input 4x4x1\nflatten\ndense 3 softmax\ntrain\n  augment flip\n  tta shift 1\n" |> List.filter Diagnostic.isError)
