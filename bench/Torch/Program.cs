// The libtorch side of the comparison (bench/compare.sh): the same .cnn model, translated from
// the validated graph into a TorchSharp Sequential (NCHW, as libtorch wants), trained with Adam
// (Keras's defaults) on the same batches as bench/Program.cs's `train` mode.
//   torch-bench train|infer --model FILE --batch B --threads T [--warmup N] [--seconds S]
using System.Diagnostics;
using CnnDsl.Dsl;
using CnnDsl.Graph;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

string Arg(string name, string fallback) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault() ?? fallback;
var mode = args.FirstOrDefault() ?? "train";
var file = Arg("--model", "models/lenet.cnn");
int batch = int.Parse(Arg("--batch", "32")), threads = int.Parse(Arg("--threads", "2")), warmup = int.Parse(Arg("--warmup", "5"));
double seconds = double.Parse(Arg("--seconds", "5"), System.Globalization.CultureInfo.InvariantCulture);

torch.set_num_threads(threads);
torch.manual_seed(1234);
var compiled = Frontend.compile(File.ReadAllText(file));
if (!compiled.IsOk) { Console.Error.WriteLine($"torch-bench: {file} does not check (dsl check {file})"); return 2; }
var graph = compiled.ResultValue.Item1;
var (h, w, c) = CnnDsl.Runtime.Shapes.Hwc(graph.Input.OutputShape);
var dataName = graph.Training.Data is { } d ? d.Value : "fashion-mnist";
var (data, source) = BenchData.Load(dataName, h, w, c);

// All pixels as one NCHW float tensor in [0, 1], as the CnnDsl side scales them.
var pixels = new float[data.Pixels.Length];
for (int i = 0; i < pixels.Length; i++) pixels[i] = data.Pixels[i] / 255f;
var x = tensor(pixels, [data.Count, h, w, c]).permute(0, 3, 1, 2).contiguous();
var y = tensor(data.Labels.Select(l => (long)l).ToArray(), [data.Count]);
var order = tensor(BenchData.Order(data.Count).Select(i => (long)i).ToArray());
var baseline = BenchData.ResidentMegabytes();

var model = Translate.Model(graph);
var optimizer = optim.Adam(model.parameters(), lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-7);
int batches = data.Count / batch, next = 0;
Tensor Indices() { var s = order.narrow(0, (long)(next % batches) * batch, batch); next++; return s; }

void Step()
{
    using var scope = NewDisposeScope();
    var idx = Indices();
    var xb = x.index_select(0, idx);
    if (mode == "train")
    {
        var yb = y.index_select(0, idx);
        optimizer.zero_grad();
        var loss = functional.cross_entropy(model.forward(xb), yb);
        loss.backward();
        optimizer.step();
        loss.item<float>();   // wait for the step, as the CnnDsl side reads its loss
    }
    else
    {
        using var _ = no_grad();
        functional.softmax(model.forward(xb), 1).argmax(1).data<long>().ToArray();
    }
}

if (mode == "train") model.train(); else model.eval();
for (int i = 0; i < warmup; i++) Step();
var times = new List<double>(100_000);
var all = Stopwatch.StartNew();
while (all.Elapsed.TotalSeconds < seconds || times.Count < 3)
{
    long t0 = Stopwatch.GetTimestamp();
    Step();
    times.Add(Stopwatch.GetElapsedTime(t0).TotalSeconds);
}
all.Stop();
var memory = BenchData.ResidentMegabytes();
Console.WriteLine($"# TorchSharp {typeof(torch).Assembly.GetName().Version}, libtorch {torch.__version__}, {torch.get_num_threads()} threads; data {source}; {model.parameters().Sum(p => p.numel())} parameters");
Console.WriteLine($"RESULT kind={mode} engine=libtorch model={Path.GetFileNameWithoutExtension(file)} threads={threads} batch={batch} batches={times.Count} " +
    $"img_per_s={times.Count * batch / all.Elapsed.TotalSeconds:F0} median_batch_ms={BenchData.Median(times) * 1e3:F2} " +
    $"peak_rss_mb={memory.Peak:F0} data_rss_mb={baseline.Now:F0}");
return 0;

/// The graph as a TorchSharp Sequential: Keras's initialisation (Glorot-uniform kernels, zero
/// biases), the final softmax folded into cross_entropy (as the CnnDsl runtime fuses it).
static class Translate
{
    public static Sequential Model(CnnDsl.Graph.Graph graph)
    {
        var modules = new List<(string, Module<Tensor, Tensor>)>();
        foreach (var node in graph.Nodes.Skip(1))
        {
            if (node.Inputs.Length != 1) throw new NotSupportedException($"{node.Name}: the harness builds sequential models only");
            var input = node.InputShapes.Head;
            switch (node.Kind)
            {
                case LayerKind.Conv conv:
                {
                    var win = conv.Item.Window;
                    var p = win.Padding;
                    bool symmetric = p.Top == p.Bottom && p.Left == p.Right;
                    if (!symmetric) modules.Add((node.Name + "_pad", ZeroPad2d((p.Left, p.Right, p.Top, p.Bottom))));
                    var layer = Conv2d(CnnDsl.Runtime.Shapes.Channels(input), conv.Item.Filters, (win.KernelH, win.KernelW),
                        stride: (win.StrideH, win.StrideW), padding: symmetric ? (p.Top, p.Left) : (0, 0),
                        dilation: (win.DilationH, win.DilationW), bias: conv.Item.Bias);
                    modules.Add((node.Name, layer));
                    break;
                }
                case LayerKind.Pool pool:
                {
                    var win = pool.Item.Window;
                    if (win.Padding.Top != win.Padding.Bottom || win.Padding.Left != win.Padding.Right)
                        throw new NotSupportedException($"{node.Name}: asymmetric pool padding");
                    modules.Add((node.Name, pool.Item.Kind.IsMax
                        ? MaxPool2d((win.KernelH, win.KernelW), (win.StrideH, win.StrideW), (win.Padding.Top, win.Padding.Left))
                        : pool.Item.Kind.IsAverage
                            ? AvgPool2d((win.KernelH, win.KernelW), (win.StrideH, win.StrideW), (win.Padding.Top, win.Padding.Left), count_include_pad: false)
                            : throw new NotSupportedException($"{node.Name}: min pooling")));
                    break;
                }
                case LayerKind.GlobalPool global:
                    modules.Add((node.Name, global.Item.IsMax ? AdaptiveMaxPool2d(new long[] { 1, 1 }) : AdaptiveAvgPool2d(new long[] { 1, 1 })));
                    modules.Add((node.Name + "_flatten", Flatten()));
                    break;
                case LayerKind.Dense dense:
                {
                    if (input is Shape.Image) modules.Add((node.Name + "_flatten", Flatten()));
                    var inputs = (long)CnnDsl.Runtime.Shapes.Elements(input);
                    modules.Add((node.Name, Linear(inputs, dense.units, hasBias: dense.bias)));
                    break;
                }
                case var k when k.IsFlatten:
                    modules.Add((node.Name, Flatten()));
                    break;
                case LayerKind.Dropout dropout:
                    modules.Add((node.Name, Dropout(dropout.rate)));
                    break;
                case LayerKind.BatchNormalization bn:
                {
                    // Keras's momentum m keeps m of the old mean; PyTorch's keeps 1 - momentum.
                    long channels = CnnDsl.Runtime.Shapes.Channels(node.OutputShape);
                    modules.Add((node.Name, node.OutputShape is Shape.Image
                        ? BatchNorm2d(channels, bn.Item.Epsilon, 1 - bn.Item.Momentum)
                        : BatchNorm1d(channels, bn.Item.Epsilon, 1 - bn.Item.Momentum)));
                    break;
                }
                case var k when k.IsActivationLayer:
                    break;
                default:
                    throw new NotSupportedException($"{node.Name}: {node.Kind} is not in the harness");
            }
            bool last = node.Id == graph.Output.Id;
            var activation = node.Activation switch
            {
                var a when a.IsRelu => ReLU(),
                var a when a.IsSigmoid => Sigmoid(),
                var a when a.IsTanh => Tanh(),
                var a when a.IsSoftmax => last ? null : Softmax(1),
                Activation.Elu elu => ELU(elu.alpha),
                Activation.LeakyRelu leaky => LeakyReLU(leaky.alpha),
                _ => (Module<Tensor, Tensor>?)null,
            };
            if (activation != null) modules.Add((node.Name + "_act", activation));
        }
        var model = Sequential(modules);
        using (no_grad())
            foreach (var (name, p) in model.named_parameters())
                if (name.EndsWith("weight") && p.dim() > 1) init.xavier_uniform_(p);
                else if (name.EndsWith("bias")) init.zeros_(p);
        return model;
    }
}
