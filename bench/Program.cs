// CnnDsl benchmarks: a plain timed harness (medians over repeated runs after a warm-up),
// not timed tests. Usage: cnndsl-bench [gemm|layers|denormals|all] [--seconds S]
//   cnndsl-bench train|infer --model FILE --batch B [--warmup N] [--seconds S]: the CnnDsl side of
//   the comparison with libtorch (bench/compare.sh; bench/Torch is the other side);
//   with --layers, where one training step's time goes, layer by layer (infer: the inference network's forward passes).
//   cnndsl-bench conv --model "input 22x22x32\nconv 64 7x7" --batch B [--rounds N] [--seconds S] [--first]: one
//   convolution's forward and backward (medians), with the lowering its plan chose; CNNDSL_FFT,
//   CNNDSL_FFT_GRID, CNNDSL_WINOGRAD ... choose another (docs/results.md's per-layer tables).
using System.Diagnostics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using CnnDsl.Dsl;
using CnnDsl.Runtime;
using CnnDsl.Runtime.Blas;

var what = args.FirstOrDefault(a => !a.StartsWith("--")) ?? "all";
double seconds = args.SkipWhile(a => a != "--seconds").Skip(1).Select(double.Parse).FirstOrDefault(0.5);
string root = FindRoot(Directory.GetCurrentDirectory());

Console.WriteLine($"# cores {Environment.ProcessorCount}; GEMM: {Gemm.Current.Description}; denormals flushed: {Denormals.Enabled}");
if (Gemm.Notice != null) Console.WriteLine($"# {Gemm.Notice}");

// CNNDSL_GEMM=mkl|managed measures one backend only: the managed GEMM's threads then do not
// compete with MKL's OpenMP threads, which spin for a while after each MKL call.
var only = Environment.GetEnvironmentVariable("CNNDSL_GEMM");
var backends = new List<IGemm>();
if (only != "managed" && MklGemm.TryLoad(out _) is { } mkl) backends.Add(mkl);
if (only != "mkl") backends.Add(new ManagedGemm());

if (what is "train" or "infer") return EngineBench(what);
if (what is "conv") return ConvBench();
if (what is "gemm" or "all") GemmBench();
if (what is "layers" or "all") LayersBench();
if (what is "denormals" or "all") DenormalsBench();
return 0;

// ---------------------------------------------------------------------------
void GemmBench()
{
    var peak1 = FmaPeak(1);
    var peak2 = FmaPeak(Environment.ProcessorCount);
    Console.WriteLine($"RESULT fma-peak threads=1 gflops={peak1:F1}");
    Console.WriteLine($"RESULT fma-peak threads={Environment.ProcessorCount} gflops={peak2:F1}");
    var shapes = new (string Name, int M, int N, int K, bool TA, bool TB)[]
    {
        ("sq1024", 1024, 1024, 1024, false, false),
        // NHWC conv of the seed's Fashion-MNIST model, batch 32: Y[P,F] = col[P,K] W[K,F]
        ("fmnist.c2.fwd", 32 * 256, 64, 1568, false, false),
        ("fmnist.c2.dW", 1568, 64, 32 * 256, true, false),
        ("fmnist.c2.dcol", 32 * 256, 1568, 64, false, true),
        ("fmnist.c3.fwd", 32 * 100, 128, 3136, false, false),
        ("fmnist.c4.fwd", 32 * 16, 256, 6272, false, false),
    };
    foreach (var backend in backends)
        foreach (var s in shapes)
        {
            var a = Random(s.M * s.K); var b = Random(s.K * s.N); var c = new float[s.M * s.N];
            int lda = s.TA ? s.M : s.K, ldb = s.TB ? s.K : s.N;
            var t = Median(() => backend.Sgemm(s.TA, s.TB, s.M, s.N, s.K, 1f, a, lda, b, ldb, 0f, c, s.N));
            var gflops = 2.0 * s.M * s.N * s.K / t / 1e9;
            Console.WriteLine($"RESULT gemm backend={Name(backend)} shape={s.Name} M={s.M} N={s.N} K={s.K} ms={t * 1e3:F2} gflops={gflops:F1} pct_of_measured_peak={100 * gflops / peak2:F0}%");
        }
}

void LayersBench()
{
    var models = new[] { "fashion-mnist", "lenet", "cifar10-strided" };
    foreach (var backend in backends)
    {
        Gemm.Current = backend;
        // The reference: sgemm 1024^3 on the same backend, in the same run.
        var a = Random(1024 * 1024); var b = Random(1024 * 1024); var c = new float[1024 * 1024];
        var tRef = Median(() => backend.Sgemm(false, false, 1024, 1024, 1024, 1f, a, 1024, b, 1024, 0f, c, 1024));
        var refGflops = 2.0 * 1024 * 1024 * 1024 / tRef / 1e9;
        Console.WriteLine($"RESULT sgemm1024 backend={Name(backend)} gflops={refGflops:F1}");
        foreach (var model in models)
        {
            var graph = Compile(Path.Combine(root, "models", model + ".cnn"));
            const int batch = 32;
            var net = new Network<float>(graph, batch, 1);
            var rng = new Random(1);
            for (int i = 0; i < net.Input.Length; i++) net.Input[i] = (float)rng.NextDouble();
            var labels = Enumerable.Range(0, batch).Select(i => i % net.OutputSize).ToArray();
            double convFlops = 0, convTime = 0;
            net.Forward(true); Losses.CrossEntropy(net, labels); net.Backward();
            foreach (var layer in net.Layers.Skip(1))
            {
                var tf = Median(() => layer.Forward(true));
                var tb = Median(() => layer.Backward());
                var macs = CnnDsl.Graph.Cost.multiplyAdds(layer.Node)?.Value ?? 0;
                // forward 2*MACs per image; backward 2*MACs for dW and 2*MACs for dX (none for the first layer's input)
                double flops = 2.0 * macs * batch * (layer.InputNeedsGradient.Any(x => x) ? 3 : 2);
                var isConv = layer.Node.Kind.IsConv;
                if (isConv) { convFlops += flops; convTime += tf + tb; }
                Console.WriteLine($"RESULT layer backend={Name(backend)} model={model} batch={batch} layer={layer.Node.Name} fwd_ms={tf * 1e3:F3} bwd_ms={tb * 1e3:F3}" +
                    (macs > 0 ? $" gflops={flops / (tf + tb) / 1e9:F1}" : ""));
            }
            if (convTime > 0)
                Console.WriteLine($"RESULT convs backend={Name(backend)} model={model} batch={batch} gflops={convFlops / convTime / 1e9:F1} of_sgemm1024={100 * convFlops / convTime / 1e9 / refGflops:F0}%");
            // One whole training step (forward, loss, backward) and what it allocates.
            var step = Median(() => { net.Forward(true); Losses.CrossEntropy(net, labels); net.Backward(); });
            long before = GC.GetAllocatedBytesForCurrentThread();
            net.Forward(true); Losses.CrossEntropy(net, labels); net.Backward();
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Console.WriteLine($"RESULT step backend={Name(backend)} model={model} batch={batch} ms={step * 1e3:F1} images_per_s={batch / step:F0} allocated_bytes={allocated} (forward+backward, no optimizer)");
        }
    }
}

// The product's own training step (Trainer.TrainBatch: fill, forward, loss, backward, Adam) or
// its forward pass, on real batches, timed after a warm-up; prints one RESULT line.
int EngineBench(string mode)
{
    string Arg(string name, string fallback) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault() ?? fallback;
    var file = Arg("--model", "models/lenet.cnn");
    int batch = int.Parse(Arg("--batch", "32")), warmup = int.Parse(Arg("--warmup", "5"));
    var graph = Compile(Path.IsPathRooted(file) ? file : Path.Combine(root, file));
    var (h, w, c) = CnnDsl.Runtime.Shapes.Hwc(graph.Input.OutputShape);
    var dataName = graph.Training.Data is { } d ? d.Value : "fashion-mnist";
    var (data, source) = BenchData.Load(dataName, h, w, c);
    var baseline = BenchData.ResidentMegabytes();
    var settings = new CnnDsl.Runtime.Training.TrainingSettings(1, batch, 0, 0.0,
        CnnDsl.Graph.Optimizer.NewAdam(0.001, 0.9, 0.999, 1e-7), CnnDsl.Graph.Loss.CrossEntropy, 0.0, Path.GetTempPath());
    var trainer = new CnnDsl.Runtime.Training.Trainer(graph, data, settings, new SilentReport());
    var order = BenchData.Order(data.Count);
    int batches = data.Count / batch, next = 0;
    ReadOnlySpan<int> Next() { var s = order.AsSpan(next % batches * batch, batch); next++; return s; }
    void Step() { if (mode == "train") trainer.TrainBatch(Next()); else trainer.PredictBatch(data, Next()); }
    for (int i = 0; i < warmup; i++) Step();
    if (args.Contains("--layers")) { if (mode == "train") Profile(trainer, Step, batch); else ProfileInference(trainer, Step, batch); return 0; }
    var times = new List<double>(100_000);
    // What the step allocates on this thread (where the whole step runs with the default layer
    // threads), and in the process (which also counts the JIT's background recompilation of
    // methods that are still warming up).
    var all = new Stopwatch();   // made before the counters are read: it is the loop's only object
    long allocated = GC.GetAllocatedBytesForCurrentThread(), process = GC.GetTotalAllocatedBytes(true);
    all.Start();
    while (all.Elapsed.TotalSeconds < seconds || times.Count < 3)
    {
        long t0 = Stopwatch.GetTimestamp();   // not a Stopwatch object: the loop must not allocate
        Step();
        times.Add(Stopwatch.GetElapsedTime(t0).TotalSeconds);
    }
    all.Stop();
    allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;
    process = GC.GetTotalAllocatedBytes(true) - process;
    var memory = BenchData.ResidentMegabytes();
    Console.WriteLine($"# {Gemm.Current.Description}; data {source}");
    Console.WriteLine($"RESULT kind={mode} engine=cnndsl model={Path.GetFileNameWithoutExtension(file)} threads={Environment.GetEnvironmentVariable("MKL_NUM_THREADS") ?? "default"} batch={batch} batches={times.Count} " +
        $"img_per_s={times.Count * batch / all.Elapsed.TotalSeconds:F0} median_batch_ms={BenchData.Median(times) * 1e3:F2} alloc_bytes_per_batch={allocated / times.Count} alloc_bytes_total={allocated} process_alloc_bytes_per_batch={process / times.Count} " +
        $"peak_rss_mb={memory.Peak:F0} data_rss_mb={baseline.Now:F0}");
    return 0;
}

// Where one training step's time goes: each layer's forward and backward pass and the
// optimizer update, timed in place (medians), against the whole step.
void Profile(CnnDsl.Runtime.Training.Trainer trainer, Action step, int batch)
{
    var net = trainer.Network;
    double sum = 0;
    foreach (var layer in net.Layers.Skip(1))
    {
        var tf = Median(() => layer.Forward(true));
        var tb = Median(() => layer.Backward());
        sum += tf + tb;
        Console.WriteLine($"PROFILE layer={layer.Node.Name,-14} out={string.Join("x", CnnDsl.Runtime.Shapes.Hwc(layer.Node.OutputShape)),-12} fwd_ms={tf * 1e3,8:F3} bwd_ms={tb * 1e3,8:F3}");
    }
    var tu = Median(() => trainer.Optimizer.Update());
    // (what Network.Backward clears: the gradients that their first writer adds to rather than assigns)
    var assigned = net.Layers.SelectMany(l => l.Inputs.Where((_, k) => l.AssignInputGradient.Length > k && l.AssignInputGradient[k])).ToHashSet();
    var tc = Median(() => { foreach (var layer in net.Layers.SkipLast(1)) if (!assigned.Contains(layer.Output)) layer.Output.Gradient.AsSpan().Clear(); });
    var tfw = Median(() => net.Forward(true));
    var tbw = Median(() => net.Backward());
    var ts = Median(step);
    Console.WriteLine($"PROFILE update_ms={tu * 1e3:F3} clear_gradients_ms={tc * 1e3:F3} layers_ms={sum * 1e3:F3} forward_ms={tfw * 1e3:F3} backward_ms={tbw * 1e3:F3} step_ms={ts * 1e3:F3} img_per_s={batch / ts:F0}");
}

// Where one inference batch's time goes: each layer's forward pass in the inference network (a
// piece of the batch for small models: InferencePlan), against the whole batch.
void ProfileInference(CnnDsl.Runtime.Training.Trainer trainer, Action step, int batch)
{
    var net = trainer.InferenceNetwork;
    double sum = 0;
    foreach (var layer in net.Layers.Skip(1))
    {
        var tf = Median(() => layer.Forward(false));
        sum += tf;
        Console.WriteLine($"PROFILE layer={layer.Node.Name,-14} out={string.Join("x", CnnDsl.Runtime.Shapes.Hwc(layer.Node.OutputShape)),-12} fwd_ms={tf * 1e3,8:F3}{(layer.SharesInput ? " (shares its input)" : "")}");
    }
    var tfw = Median(() => net.Forward(false));
    var ts = Median(step);
    Console.WriteLine($"PROFILE piece={net.BatchSize} layers_ms={sum * 1e3:F3} forward_ms={tfw * 1e3:F3} batch_ms={ts * 1e3:F3} img_per_s={batch / ts:F0}");
}

void DenormalsBench()
{
    // A conv layer fed normal and denormal inputs (1e-39 is below float's 1.2e-38 normal range).
    var graph = CompileText("input 28x28x32\nconv 64 3x3 relu");
    foreach (var backend in backends)
    {
        Gemm.Current = backend;
        var net = new Network<float>(graph, 32, 1);
        foreach (var (label, value) in new[] { ("normal", 0.5f), ("denormal", 1e-39f) })
        {
            var rng = new Random(2);
            for (int i = 0; i < net.Input.Length; i++) net.Input[i] = value * (float)rng.NextDouble();
            var conv = net.Layers[1];
            var t = Median(() => conv.Forward(true));
            Console.WriteLine($"RESULT denormals backend={Name(backend)} input={label} flush={Denormals.Enabled} conv_fwd_ms={t * 1e3:F2}");
        }
    }
}

// One convolution (the model's first layer after its input) at a batch size: the medians of its
// forward (training) and backward passes, `--rounds` times (default 3), on the default GEMM.
int ConvBench()
{
    string Arg(string name, string fallback) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault() ?? fallback;
    var text = Arg("--model", "input 22x22x32\\nconv 64 7x7").Replace("\\n", "\n");
    int batch = int.Parse(Arg("--batch", "32")), rounds = int.Parse(Arg("--rounds", "3"));
    var graph = CompileText(text);
    var node = graph.Nodes[1];
    // with the input's gradient, as for any layer but a network's first (--first: without, as a first layer)
    var net = new Network<float>(graph, batch, 1, inputGradient: !args.Contains("--first"));
    var rng = new Random(1);
    for (int i = 0; i < net.Input.Length; i++) net.Input[i] = (float)rng.NextDouble() - 0.5f;
    for (int i = 0; i < net.OutputGradient.Length; i++) net.OutputGradient[i] = (float)rng.NextDouble() - 0.5f;
    var layer = net.Layers[1];
    var lowering = CnnDsl.Runtime.Layers.ColumnPlan.For(node, batch).Lowering;
    for (int r = 0; r < rounds; r++)
    {
        var tf = Median(() => layer.Forward(true));
        var tb = Median(() => layer.Backward());
        Console.WriteLine($"RESULT conv model=\"{text.Replace("\n", "; ")}\" batch={batch} lowering=\"{lowering}\" round={r + 1} fwd_ms={tf * 1e3:F2} bwd_ms={tb * 1e3:F2} total_ms={(tf + tb) * 1e3:F2}");
    }
    return 0;
}

// ---------------------------------------------------------------------------
double Median(Action run)
{
    run(); // warm-up
    var times = new List<double>();
    var total = Stopwatch.StartNew();
    while (total.Elapsed.TotalSeconds < seconds || times.Count < 3)
    {
        var sw = Stopwatch.StartNew();
        run();
        times.Add(sw.Elapsed.TotalSeconds);
        if (times.Count >= 200) break;
    }
    times.Sort();
    return times[times.Count / 2];
}

static float[] Random(int n)
{
    var rng = new Random(n);
    var x = new float[n];
    for (int i = 0; i < n; i++) x[i] = (float)rng.NextDouble() - 0.5f;
    return x;
}

static string Name(IGemm g) => g is MklGemm ? "mkl" : "managed";

static CnnDsl.Graph.Graph Compile(string path)
{
    if (!File.Exists(path))
    {
        Console.Error.WriteLine($"{path}: error: no such model file; give --model a .cnn file (for example models/lenet.cnn)");
        Environment.Exit(2);
    }
    return CompileText(File.ReadAllText(path), path);
}

// A model that does not check stops the benchmark with the checker's own messages (a bench
// binary older than the language it reads says so here too).
static CnnDsl.Graph.Graph CompileText(string text, string file = "<model>")
{
    var result = Frontend.compile(text);
    if (result.IsOk) return result.ResultValue.Item1;
    Console.Error.WriteLine(DiagnosticModule.renderAll(file, text, result.ErrorValue));
    Environment.Exit(2);
    return null!;
}

static string FindRoot(string dir) => dir == "/" ? throw new InvalidOperationException("run the benchmark from inside the repository") :
    File.Exists(Path.Combine(dir, "CnnDsl.sln")) ? dir : FindRoot(Path.GetDirectoryName(dir.TrimEnd('/'))!);

/// Measured FMA throughput: 12 independent 8-wide FMA chains per thread (after two short untimed
/// runs: the first run executed the JIT's unoptimised code and read 40 GFLOP/s on one thread).
static double FmaPeak(int threads)
{
    FmaRun(threads, 2_000_000);
    FmaRun(threads, 2_000_000);
    return FmaRun(threads, 50_000_000);
}

static double FmaRun(int threads, long iterations)
{
    if (!Fma.IsSupported) return double.NaN;
    var sw = Stopwatch.StartNew();
    Parallel.For(0, threads, _ =>
    {
        var acc = new Vector256<float>[12];
        var x = Vector256.Create(1.0000001f); var y = Vector256.Create(0.9999999f);
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default,
                         a6 = default, a7 = default, a8 = default, a9 = default, a10 = default, a11 = default;
        for (long i = 0; i < iterations / 12; i++)
        {
            a0 = Fma.MultiplyAdd(a0, x, y); a1 = Fma.MultiplyAdd(a1, x, y); a2 = Fma.MultiplyAdd(a2, x, y);
            a3 = Fma.MultiplyAdd(a3, x, y); a4 = Fma.MultiplyAdd(a4, x, y); a5 = Fma.MultiplyAdd(a5, x, y);
            a6 = Fma.MultiplyAdd(a6, x, y); a7 = Fma.MultiplyAdd(a7, x, y); a8 = Fma.MultiplyAdd(a8, x, y);
            a9 = Fma.MultiplyAdd(a9, x, y); a10 = Fma.MultiplyAdd(a10, x, y); a11 = Fma.MultiplyAdd(a11, x, y);
        }
        acc[0] = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11;
        GC.KeepAlive(acc);
    });
    return threads * (double)(iterations / 12 * 12) * 16 / sw.Elapsed.TotalSeconds / 1e9;
}

sealed class SilentReport : CnnDsl.Runtime.Training.ITrainingReport
{
    public void Started(string description) { }
    public void Progress(int epoch, int batch, int batches, double loss, double accuracy, double imagesPerSecond) { }
    public void EpochDone(CnnDsl.Runtime.Training.EpochRecord record) { }
    public void Stopped(string message) { }
}
