module CnnDsl.Runtime.Tests.SchedulesTests

open Xunit
open CnnDsl.Graph
open CnnDsl.Runtime.Training
open CnnDsl.Runtime.Tests.TestSupport

/// Per-step rates (issue 19) against PyTorch's OneCycleLR, CosineAnnealingLR, LinearLR and
/// SequentialLR (oracles/schedules.py), step by step for a whole run.
[<Fact>]
let ``one-cycle, cosine and warm-up rates per step equal PyTorch's schedulers`` () =
    let case kind total warmup pct linear = {| kind = kind; total = total; warmup = warmup; pct_start = pct; linear = linear |}
    let cases =
        [| case "onecycle" 100 0 0.3 false; case "onecycle" 37 0 0.3 true; case "onecycle" 50 0 0.25 false; case "onecycle" 7 0 0.5 true
           case "cosine" 40 0 0.0 false; case "warmup" 30 6 0.0 false; case "warmup_cosine" 60 12 0.0 false; case "warmup_cosine" 9 2 0.0 false |]
    let answer = oracle "schedules.py" {| cases = cases |}
    for c, expected in Seq.zip cases (answer.GetProperty("results").EnumerateArray()) do
        let schedule =
            match c.kind with
            | "onecycle" -> Schedule.OneCycle (c.pct_start, c.linear)
            | "cosine" | "warmup_cosine" -> Schedule.Cosine
            | _ -> Unchecked.defaultof<Schedule>
        let ours = [| for t in 0 .. c.total - 1 -> Schedules.StepFactor(schedule, int64 c.warmup, int64 t, int64 c.total) |]
        assertRelative 1e-9 1e-12 (sprintf "%A" c) (numbers expected) ours

[<Fact>]
let ``degenerate runs keep the peak rate: one-cycle peaking at its first step, cosine with no steps after warm-up`` () =
    // pct_start 0.1 of 10 steps: the peak is step 0 (PyTorch divides by zero there)
    Assert.Equal(1.0, Schedules.OneCycle(0.1, false, 0L, 10L))
    Assert.Equal(1.0, Schedules.OneCycle(0.1, true, 0L, 10L))
    Assert.Equal(1.0, Schedules.StepFactor(Schedule.Cosine, 0L, 0L, 0L))
    Assert.Equal(1.0, Schedules.StepFactor(Schedule.Cosine, 4L, 4L, 4L))
