/// Helpers for the runtime's tests: graphs from .cnn text, the two GEMM backends, random data.
module CnnDsl.Runtime.Tests.TestSupport

open System
open System.Diagnostics
open System.IO
open System.Text.Json
open Xunit
open CnnDsl.Dsl
open CnnDsl.Runtime
open CnnDsl.Runtime.Blas

// The GEMM backend is process-wide; tests that switch it must not run side by side.
[<assembly: CollectionBehavior(DisableTestParallelization = true)>]
do ()

/// Every property of this assembly starts from one fixed seed, so that each run of the suite
/// (and CI) tries the same cases. On a failure FsCheck prints the failing case's seed, e.g.
/// "(12345,67891,7)"; CNNDSL_FSCHECK_REPLAY=that replays it (with a filter on the test's name),
/// and CNNDSL_FSCHECK_REPLAY=random draws a fresh seed per property, printed on failure too.
type SeededPropertiesAttribute() as this =
    inherit FsCheck.Xunit.PropertiesAttribute()
    do
        match Environment.GetEnvironmentVariable "CNNDSL_FSCHECK_REPLAY" with
        | null | "" -> this.Replay <- "(15,1515151515151515151)"
        | "random" -> ()
        | seed -> this.Replay <- seed

[<assembly: SeededProperties>]
do ()

/// A property of `cases` cases: [<Cases 100>] is FsCheck's [<Property(MaxTest = 100)>], except
/// that CNNDSL_FSCHECK_MAXTEST=N caps every property at N cases. The mutation script sets it:
/// under Stryker's instrumentation the kernels run some 50 times slower, and a mutant that a
/// property kills is almost always killed within its first cases (a mutant that needs more
/// counts as a survivor there, so the capped score is the cautious one).
type CasesAttribute(cases: int) as this =
    inherit FsCheck.Xunit.PropertyAttribute()
    do
        this.MaxTest <-
            match Int32.TryParse(Environment.GetEnvironmentVariable "CNNDSL_FSCHECK_MAXTEST") with
            | true, cap when cap >= 1 -> min cases cap
            | _ -> cases

/// The repository's root (models/ and the seeds' files are read from there).
let root =
    let rec up (d: DirectoryInfo) = if File.Exists(Path.Combine(d.FullName, "CnnDsl.sln")) then d.FullName else up d.Parent
    up (DirectoryInfo AppContext.BaseDirectory)

let graph (text: string) =
    match Frontend.compile text with
    | Ok (g, _) -> g
    | Error ds -> failwithf "test model does not check:\n%s\n%s" text (Diagnostic.renderAll "test.cnn" text ds)

/// A model of models/ at the size the export tests run it: as written, or at 32x32 when it has
/// over ten million parameters or an any-size input (to keep the tests fast).
let graphAtTestSize (text: string) =
    let g = graph text
    let parameters = g.Nodes |> List.sumBy (fun n -> let t, f = CnnDsl.Graph.Cost.parameters n in t + f)
    let dynamic = g.Nodes |> List.exists (fun n -> (CnnDsl.Graph.Cost.elements n.OutputShape).IsNone)
    if parameters > 10_000_000L || dynamic then
        match Frontend.compileWithInput text 32 32 with
        | Some (Ok (small, _)) -> small
        | _ -> g
    else g


/// The backends every numerical test runs on: MKL where it loads, and the managed one.
let backends () : (string * IGemm) list =
    [ match MklGemm.TryLoad() with
      | null, _ -> ()
      | m, _ -> yield "mkl", (m :> IGemm)
      yield "managed", (ManagedGemm() :> IGemm) ]

/// Runs f under each backend, naming the backend in any failure.
let onEveryBackend (f: unit -> unit) =
    let saved = Gemm.Current
    try
        for name, backend in backends () do
            Gemm.Current <- backend
            try f () with e -> raise (Exception(sprintf "on the %s backend: %s" name e.Message, e))
    finally
        Gemm.Current <- saved

let randomArray (rng: Random) (n: int) = Array.init n (fun _ -> rng.NextDouble() * 2.0 - 1.0)

/// Copies an array into a span (a network's input, output gradient ...).
let copyFrom (values: 'T[]) (target: Span<'T>) = values.AsSpan().CopyTo(target)

/// Runs f with the direct path's window limit set (0: every convolution goes to im2col or shifted
/// GEMMs; above 0 any number of filters is allowed, so that the tests reach every kernel).
let withDirectLimit (limit: int) (f: unit -> 'a) : 'a =
    let saved, filters, product = CnnDsl.Runtime.Layers.ColumnPlan.DirectMaxWindowValues, CnnDsl.Runtime.Layers.ColumnPlan.DirectMaxFilters, CnnDsl.Runtime.Layers.ColumnPlan.DirectMaxProduct
    CnnDsl.Runtime.Layers.ColumnPlan.DirectMaxWindowValues <- limit
    CnnDsl.Runtime.Layers.ColumnPlan.DirectMaxFilters <- Int32.MaxValue
    CnnDsl.Runtime.Layers.ColumnPlan.DirectMaxProduct <- Int32.MaxValue
    try f () finally
        CnnDsl.Runtime.Layers.ColumnPlan.DirectMaxWindowValues <- saved
        CnnDsl.Runtime.Layers.ColumnPlan.DirectMaxFilters <- filters
        CnnDsl.Runtime.Layers.ColumnPlan.DirectMaxProduct <- product

/// Runs f with FFT convolutions off: the tests of the other lowerings' rules and kernels, on
/// windows that the FFT would take.
let withoutFft (f: unit -> 'a) : 'a =
    let saved = CnnDsl.Runtime.Layers.ColumnPlan.UseFft
    CnnDsl.Runtime.Layers.ColumnPlan.UseFft <- false
    try f () finally CnnDsl.Runtime.Layers.ColumnPlan.UseFft <- saved

/// Runs f with the layers' work split over two threads, however small (the default is one
/// thread): each thread's piece then starts at an image other than the first, which a layer's
/// per-image offsets must get right.
let onTwoThreads (f: unit -> 'a) : 'a =
    let threads, minimum = BatchParallel.Threads, BatchParallel.MinimumWork
    BatchParallel.Threads <- 2
    BatchParallel.MinimumWork <- 0L
    try f () finally
        BatchParallel.Threads <- threads
        BatchParallel.MinimumWork <- minimum

let network (text: string) (batch: int) = Network<double>(graph text, batch, 1, true)

/// Runs a model forward on the given NHWC input (batch 1) and returns its output.
let forward (text: string) (input: float[]) =
    let net = network text 1
    copyFrom input net.Input
    net.Forward(true)
    net.Output.ToArray()

let assertClose (tolerance: float) (expected: float[]) (actual: float[]) =
    Assert.Equal(expected.Length, actual.Length)
    for i in 0 .. expected.Length - 1 do
        // written so that a NaN fails too
        if not (abs (expected[i] - actual[i]) <= tolerance) then
            failwithf "at %d: expected %.8g, got %.8g\nexpected %A\nactual   %A" i expected[i] actual[i] expected actual

/// Gives a float and a double network of the same graph the same random input, parameters and
/// output gradient, runs forward and backward (the float one's backward `passes` times: a second
/// pass must not read buffers the first overwrote) and asserts outputs, parameter gradients and
/// input gradients agree within `tolerance`.
let assertFloatMatchesDouble (single: Network<float32>) (twice: Network<double>) (seed: int) (passes: int) (tolerance: float) =
    let rng = Random seed
    for i in 0 .. single.Input.Length - 1 do
        let v = float32 (rng.NextDouble() - 0.5)
        single.Input[i] <- v; twice.Input[i] <- float v
    for (a: Parameter<float32>), (b: Parameter<double>) in Seq.zip single.Parameters twice.Parameters do
        for i in 0 .. a.Value.Length - 1 do a.Value[i] <- float32 (rng.NextDouble() - 0.5); b.Value[i] <- float a.Value[i]
    single.Forward(true); twice.Forward(true)
    assertClose tolerance (twice.Output.ToArray()) (single.Output.ToArray() |> Array.map float)
    for i in 0 .. twice.OutputGradient.Length - 1 do
        let d = rng.NextDouble() - 0.5
        single.OutputGradient[i] <- float32 d; twice.OutputGradient[i] <- d
    twice.Backward()
    for _ in 1 .. passes do
        single.Backward()
        for (a: Parameter<float32>), (b: Parameter<double>) in Seq.zip single.Parameters twice.Parameters do
            assertClose tolerance b.Gradient (a.Gradient |> Array.map float)
        assertClose tolerance (twice.InputGradient.ToArray()) (single.InputGradient.ToArray() |> Array.map float)

/// The float error of a lowering against double on a layer of realistic size: the same inputs
/// (uniform in [-1, 1)), He-scaled weights (uniform, fan-in `fanIn`) and output gradient in both
/// networks, one forward and backward pass, then the largest error of an output, of the first
/// parameter's gradient and of an input gradient, each relative to that tensor's largest magnitude.
let relativeFloatErrors (single: Network<float32>) (twice: Network<double>) (fanIn: int) =
    let rng = Random 7
    for i in 0 .. single.Input.Length - 1 do
        let v = float32 (2.0 * rng.NextDouble() - 1.0) in single.Input[i] <- v; twice.Input[i] <- float v
    let scale = sqrt (6.0 / float fanIn)
    for (a: Parameter<float32>), (b: Parameter<double>) in Seq.zip single.Parameters twice.Parameters do
        for i in 0 .. a.Value.Length - 1 do a.Value[i] <- float32 (scale * (2.0 * rng.NextDouble() - 1.0)); b.Value[i] <- float a.Value[i]
    single.Forward(true); twice.Forward(true)
    for i in 0 .. twice.OutputGradient.Length - 1 do
        let d = float32 (2.0 * rng.NextDouble() - 1.0) in single.OutputGradient[i] <- d; twice.OutputGradient[i] <- float d
    single.Backward(); twice.Backward()
    let relative (expected: double[]) (actual: float32[]) =
        let largest = expected |> Array.map abs |> Array.max
        Seq.zip expected actual |> Seq.map (fun (e, a) -> abs (e - float a)) |> Seq.max |> fun worst -> worst / largest
    [ relative (twice.Output.ToArray()) (single.Output.ToArray())
      relative (Seq.head twice.Parameters).Gradient (Seq.head single.Parameters).Gradient
      relative (twice.InputGradient.ToArray()) (single.InputGradient.ToArray()) ]

/// Runs one of the reference scripts in tests/Runtime.Tests/oracles with /usr/bin/python3 and
/// PyTorch (Debian's python3-torch, which scripts/setup.sh installs), the request as JSON on its
/// standard input, and returns its JSON answer. A missing python3 or torch fails the test with
/// the fix: a reference that is not there must not let a test pass.
let oracle (script: string) (request: obj) : JsonElement =
    let python = "/usr/bin/python3"
    if not (File.Exists python) then
        failwithf "the reference values of this test come from %s with PyTorch, which is missing: run scripts/setup.sh (it installs python3-torch)" python
    let path = Path.Combine(__SOURCE_DIRECTORY__, "oracles", script)
    let info = ProcessStartInfo(python, [| path |], RedirectStandardInput = true, RedirectStandardOutput = true,
                                RedirectStandardError = true, UseShellExecute = false)
    use p = Process.Start info
    let output, errors = p.StandardOutput.ReadToEndAsync(), p.StandardError.ReadToEndAsync()
    p.StandardInput.Write(JsonSerializer.Serialize request)
    p.StandardInput.Close()
    p.WaitForExit()
    if p.ExitCode <> 0 then
        failwithf "the reference script %s failed (exit %d):\n%s\nIts values come from PyTorch: run scripts/setup.sh (apt-get install python3-torch) if it is missing."
            path p.ExitCode errors.Result
    use doc = JsonDocument.Parse output.Result
    doc.RootElement.Clone()

/// A JSON array of numbers as doubles.
let numbers (e: JsonElement) = [| for v in e.EnumerateArray() -> v.GetDouble() |]

/// Asserts |actual - expected| <= relative * max(|expected|, floor) for every element, naming
/// `what` and the index of the first that is not.
let assertRelative (relative: float) (floor: float) (what: string) (expected: float[]) (actual: float[]) =
    if expected.Length <> actual.Length then failwithf "%s: expected %d values, got %d" what expected.Length actual.Length
    for i in 0 .. expected.Length - 1 do
        if not (abs (actual[i] - expected[i]) <= relative * max (abs expected[i]) floor) then
            failwithf "%s, at %d: expected %.10g, got %.10g (relative error %.2g)\nexpected %A\nactual   %A"
                what i expected[i] actual[i] (abs (actual[i] - expected[i]) / max (abs expected[i]) floor) expected actual
