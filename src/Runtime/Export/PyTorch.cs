using System.Globalization;
using System.Reflection;
using System.Text;
using CnnDsl.Graph;
using CnnDsl.Runtime.Training;

namespace CnnDsl.Runtime.Export;

/// <summary>
/// The validated graph as a small PyTorch project (`dsl export FILE --format pytorch -o DIR`):
/// model.py, generated here, an nn.Module whose submodules are named as the graph's nodes;
/// train.py and dsl_torch.py, fixed templates (embedded resources, Export/PyTorch/*.py) holding
/// Keras's semantics where PyTorch differs (asymmetric `same` padding, NHWC flatten order,
/// Keras's batchnorm, min pooling, our optimizers' update rules) and a reader and writer of our
/// checkpoint format; and a README.md with the commands. Weights travel as our checkpoints
/// (weights.ckpt in DIR; train.py writes DIR/RUN/last.ckpt): the Python side converts the
/// layouts (HWIO to OIHW, [in, out] to [out, in]) exactly, so a round trip is bit-identical.
/// </summary>
public static class PyTorchExport
{
    private static readonly string[] Templates = ["train.py", "dsl_torch.py"];

    /// <summary>Writes the project into `folder`; with `weights`, also the network's tensors
    /// as DIR/weights.ckpt, which train.py and model.load_dsl_checkpoint read.</summary>
    public static IReadOnlyList<string> Write(CnnDsl.Graph.Graph graph, string modelName, Network<float> net, bool weights, string folder)
    {
        Directory.CreateDirectory(folder);
        var written = new List<string>();
        void Text(string name, string text)
        {
            var path = Path.Combine(folder, name);
            AtomicFile.WriteAllBytes(path, Encoding.UTF8.GetBytes(text));
            written.Add(path);
        }
        Text("model.py", ModelPy(graph, modelName, net));
        foreach (var t in Templates) Text(t, Template(t));
        Text("README.md", Readme(graph, modelName, weights));
        if (weights)
        {
            var path = Path.Combine(folder, "weights.ckpt");
            // Weights only: no run stands behind them (settings of one example, so that the file loads).
            var position = TrainingPosition.Start with { BatchSize = 1, OptimizerName = "rmsprop", TrainingExamples = 1 };
            Checkpoint.Save(path, graph, position, net.Weights.Select(p => (p.Name, p.Value)));
            written.Add(path);
        }
        return written;
    }

    /// <summary>The first tensor of the network that a checkpoint lacks or holds at another
    /// length (null when every one matches), for a message that names it; `normalize`'s
    /// statistics may be absent (a checkpoint made without it loads as mean 0, deviation 1).</summary>
    public static string? FirstDifference(Dictionary<string, float[]> tensors, Network<float> net)
    {
        foreach (var p in net.Weights)
        {
            if (!tensors.TryGetValue(p.Name, out var saved))
            {
                // made without `normalize`: it loads as mean 0 and deviation 1 (Checkpoint.LoadWeights), as dsl eval loads it
                if (Normalization.IsStatistic(p.Name)) continue;
                return $"the checkpoint has no tensor '{p.Name}'";
            }
            if (saved.Length != p.Value.Length) return $"tensor '{p.Name}' has {saved.Length} values in the checkpoint, the model needs {p.Value.Length}";
        }
        return null;
    }

    private static string Template(string name)
    {
        using var stream = typeof(PyTorchExport).Assembly.GetManifestResourceStream("CnnDsl.Runtime.Export.PyTorch." + name)
            ?? throw new ExportError($"the template {name} is missing from the program");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }

    private static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture) switch
    {
        var s when s.Contains('E') || s.Contains('.') || s.Contains("Infinity") || s.Contains("NaN") => s.Replace("E", "e"),
        var s => s + ".0",
    };

    private static string Py(string s) => "\"" + s.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";
    private static string Bool(bool b) => b ? "True" : "False";

    private static string Activate(CnnDsl.Graph.Activation a, string x) => a switch
    {
        _ when a.IsLinear => x,
        _ when a.IsRelu => $"F.relu({x})",
        _ when a.IsSigmoid => $"torch.sigmoid({x})",
        _ when a.IsTanh => $"torch.tanh({x})",
        _ when a.IsSoftmax => $"F.softmax({x}, dim=1)",
        Activation.Elu e => $"F.elu({x}, alpha={F(e.alpha)})",
        Activation.LeakyRelu l => $"F.leaky_relu({x}, negative_slope={F(l.alpha)})",
        _ => throw new ExportError($"activation {a} has no PyTorch form"),
    };

    private static string ActivationName(CnnDsl.Graph.Activation a) => a switch
    {
        _ when a.IsLinear => "linear", _ when a.IsRelu => "relu", _ when a.IsSigmoid => "sigmoid",
        _ when a.IsTanh => "tanh", _ when a.IsSoftmax => "softmax", Activation.Elu => "elu", Activation.LeakyRelu => "leaky_relu",
        _ => "?",
    };

    /// <summary>A window's padding as (left, right, top, bottom), or "same" when it is resolved per
    /// input size (a dynamic input).</summary>
    private static string Pads(Node node, Window w)
    {
        bool dynamic = node.InputShapes.Head is Shape.Image { height.IsDynamic: true } or Shape.Image { width.IsDynamic: true };
        if (dynamic && w.PaddingMode.IsSame) return Py("same");
        var p = w.Padding;
        return $"({p.Left}, {p.Right}, {p.Top}, {p.Bottom})";
    }

    private static string Tuple(params int[] v) => "(" + string.Join(", ", v) + (v.Length == 1 ? ",)" : ")");

    private static string ModelPy(CnnDsl.Graph.Graph graph, string modelName, Network<float> net)
    {
        var init = new StringBuilder();
        var forward = new StringBuilder();
        var tensors = new StringBuilder();
        var layouts = new Dictionary<int, bool>(); // node id -> image (NCHW) or vector
        var shapes = net.Graph.Nodes.ToDictionary(n => n.Id);
        foreach (var p in net.Weights)
        {
            if (Normalization.IsStatistic(p.Name))
            {
                // `normalize`: buffers applied to the NHWC input first (in the state dict, not learned)
                var buffer = p.Name == Normalization.Mean ? "normalize_mean" : "normalize_deviation";
                init.Append($"        self.register_buffer({Py(buffer)}, torch.{(p.Name == Normalization.Mean ? "zeros" : "ones")}({p.Value.Length}))\n");
                tensors.Append($"    ({Py(p.Name)}, {Py(buffer)}, \"flat\", {Tuple(p.Value.Length)}),\n");
                continue;
            }
            var slash = p.Name.LastIndexOf('/');
            string layer = p.Name[..slash], slot = p.Name[(slash + 1)..];
            var node = shapes.Values.First(n => n.Name == layer);
            string key, layout = "flat";
            int[] dims;
            switch (slot)
            {
                case "kernel" when node.Kind is LayerKind.Conv conv:
                    var w = conv.Item.Window;
                    dims = [w.KernelH, w.KernelW, Shapes.Channels(node.InputShapes.Head) / conv.Item.Groups, conv.Item.Filters];
                    key = "weight"; layout = "hwio";
                    break;
                case "kernel":
                    dims = [Shapes.Channels(node.InputShapes.Head), Shapes.Channels(node.OutputShape)];
                    key = "weight"; layout = "io";
                    break;
                case "bias": key = "bias"; dims = [p.Value.Length]; break;
                case "gamma": key = "weight"; dims = [p.Value.Length]; break;
                case "beta": key = "bias"; dims = [p.Value.Length]; break;
                case "moving_mean": key = "running_mean"; dims = [p.Value.Length]; break;
                case "moving_variance": key = "running_var"; dims = [p.Value.Length]; break;
                default: throw new ExportError($"{p.Name}: no PyTorch tensor for this slot");
            }
            tensors.Append($"    ({Py(p.Name)}, {Py(layer + "." + key)}, {Py(layout)}, {Tuple(dims)}),\n");
        }

        string Var(int id) => "x" + id;
        // NCHW for images inside; NHWC (Keras's order) where a flatten or reshape reads them.
        string Nhwc(int id) => layouts[id] ? $"{Var(id)}.permute(0, 2, 3, 1)" : Var(id);
        var last = graph.Output;
        foreach (var node in graph.Nodes)
        {
            bool image = node.OutputShape is Shape.Image;
            layouts[node.Id] = image;
            string input = node.Inputs.IsEmpty ? "x" : Var(node.Inputs.Head);
            string n = node.Name;
            string expr;
            int cin = node.Inputs.IsEmpty ? 0 : Shapes.Channels(node.InputShapes.Head);
            switch (node.Kind)
            {
                case var k when k.IsInput:
                    if (net.InputStatistics != null)
                        forward.Append("        x = (x - self.normalize_mean) / self.normalize_deviation  # the train section's normalize: (x - mean) / deviation per channel\n");
                    forward.Append(image ? $"        {Var(node.Id)} = x.permute(0, 3, 1, 2)  # NHWC files, NCHW tensors\n" : $"        {Var(node.Id)} = x\n");
                    continue;
                case LayerKind.Conv conv:
                {
                    var c = conv.Item; var w = c.Window;
                    init.Append($"        self.{n} = Conv2d({cin}, {c.Filters}, {Tuple(w.KernelH, w.KernelW)}, stride={Tuple(w.StrideH, w.StrideW)}, dilation={Tuple(w.DilationH, w.DilationW)}, groups={c.Groups}, bias={Bool(c.Bias)}, pads={Pads(node, w)})\n");
                    expr = $"self.{n}({input})";
                    break;
                }
                case LayerKind.FixedConv fc:
                {
                    var w = fc.Item.Window;
                    var hwio = Layers.Conv2d<float>.FixedWeights(fc.Item.Kernels, cin);
                    int f = Shapes.Channels(node.OutputShape);
                    var values = string.Join(", ", hwio.Select(v => F(v)));
                    init.Append($"        # {fc.Item.Name}: fixed kernels, HWIO as our runtime builds them; not learned, not in the state dict\n");
                    init.Append($"        self.{n} = FixedConv2d([{values}], {Tuple(w.KernelH, w.KernelW, cin, f)}, stride={Tuple(w.StrideH, w.StrideW)}, dilation={Tuple(w.DilationH, w.DilationW)}, pads={Pads(node, w)})\n");
                    expr = $"self.{n}({input})";
                    break;
                }
                case LayerKind.Pool pool:
                {
                    var w = pool.Item.Window;
                    if (w.DilationH != 1 || w.DilationW != 1) throw new ExportError($"{n}: a dilated pool has no PyTorch form here");
                    var kind = pool.Item.Kind.IsMax ? "max" : pool.Item.Kind.IsMin ? "min" : "average";
                    init.Append($"        self.{n} = Pool2d({Py(kind)}, {Tuple(w.KernelH, w.KernelW)}, stride={Tuple(w.StrideH, w.StrideW)}, pads={Pads(node, w)})\n");
                    expr = $"self.{n}({input})";
                    break;
                }
                case LayerKind.GlobalPool g:
                {
                    var kind = g.Item.IsMax ? "max" : g.Item.IsMin ? "min" : "average";
                    init.Append($"        self.{n} = GlobalPool2d({Py(kind)})\n");
                    expr = $"self.{n}({input})";
                    break;
                }
                case LayerKind.Dense dense:
                    init.Append($"        self.{n} = Linear({Shapes.Channels(node.InputShapes.Head)}, {dense.units}, bias={Bool(dense.bias)})\n");
                    expr = $"self.{n}({input})";
                    break;
                case var k when k.IsFlatten:
                    expr = $"{Nhwc(node.Inputs.Head)}.reshape({input}.shape[0], -1)";
                    break;
                case var k when k.IsReshape:
                    expr = node.OutputShape switch
                    {
                        Shape.Image { height: Dim.Known h, width: Dim.Known w } s => $"{Nhwc(node.Inputs.Head)}.reshape(-1, {h.size}, {w.size}, {s.channels}).permute(0, 3, 1, 2)",
                        Shape.Vector vec => $"{Nhwc(node.Inputs.Head)}.reshape(-1, {vec.length})",
                        _ => throw new ExportError($"{n}: reshape to a dynamic size"),
                    };
                    break;
                case LayerKind.Dropout dr:
                    init.Append($"        self.{n} = nn.Dropout({F(dr.rate)})\n");
                    expr = $"self.{n}({input})";
                    break;
                case LayerKind.Maxout m:
                    init.Append($"        self.{n} = Maxout({m.pieces})\n");
                    expr = $"self.{n}({input})";
                    break;
                case LayerKind.BatchNormalization bn:
                    init.Append($"        self.{n} = BatchNorm({Shapes.Channels(node.OutputShape)}, eps={F(bn.Item.Epsilon)}, momentum={F(bn.Item.Momentum)})\n");
                    expr = $"self.{n}({input})";
                    break;
                case var k when k.IsActivationLayer:
                    expr = input;
                    break;
                case var k when k.IsAdd:
                    expr = string.Join(" + ", node.Inputs.Select(Var));
                    break;
                case var k when k.IsConcat:
                    expr = $"torch.cat([{string.Join(", ", node.Inputs.Select(Var))}], dim=1)";
                    break;
                default:
                    throw new ExportError($"{n}: no PyTorch form for this layer");
            }
            if (!node.Trainable && init.ToString().Contains($"self.{n} = "))
                init.Append($"        self.{n}.requires_grad_(False)  # frozen: kept as loaded (a batchnorm's statistics still move, as ours)\n");
            if (node.Id == last.Id && !node.Activation.IsLinear)
            {
                // The loss takes the pre-activation, as our runtime fuses softmax and sigmoid into it.
                forward.Append($"        {Var(node.Id)} = {expr}\n");
                forward.Append($"        if logits:\n            return {Var(node.Id)}\n");
                forward.Append($"        {Var(node.Id)} = {Activate(node.Activation, Var(node.Id))}  # {n}\n");
            }
            else forward.Append($"        {Var(node.Id)} = {Activate(node.Activation, expr)}  # {n}{(node.Kind.IsFlatten ? ": Keras's NHWC order" : "")}\n");
        }
        forward.Append(layouts[last.Id] ? $"        return {Var(last.Id)}.permute(0, 2, 3, 1)  # NHWC out, as our runtime's\n" : $"        return {Var(last.Id)}\n");

        string Dims(Shape s) => s switch
        {
            Shape.Image i => $"({(i.height is Dim.Known h ? h.size.ToString() : "None")}, {(i.width is Dim.Known w ? w.size.ToString() : "None")}, {i.channels})",
            Shape.Vector v => $"({v.length},)",
            _ => "None",
        };
        var t = graph.Training;
        var sb = new StringBuilder();
        sb.Append($$"""
            # Generated by `dsl export {{modelName}}.cnn --format pytorch` from the model's validated graph;
            # regenerate it rather than editing it. Submodules are named as the layers in `dsl summary`.
            # Inputs are NHWC (as our data files and runtime); images run NCHW inside (PyTorch's layout).
            import torch
            from torch import nn
            import torch.nn.functional as F

            from dsl_torch import BatchNorm, Conv2d, FixedConv2d, GlobalPool2d, Linear, Maxout, Pool2d

            MODEL_NAME = {{Py(modelName)}}
            # height, width, channels of one example (None: any size); output shape likewise
            INPUT_SHAPE = {{Dims(graph.Input.OutputShape)}}
            OUTPUT_SHAPE = {{Dims(graph.Output.OutputShape)}}
            OUTPUT_ACTIVATION = {{Py(ActivationName(graph.Output.Activation))}}
            # SHA-256 of the architecture, as our checkpoints record it (dsl refuses another model's)
            ARCHITECTURE_HASH = {{Py(Convert.ToHexString(Checkpoint.ArchitectureHash(graph)).ToLowerInvariant())}}

            # Every tensor of our checkpoints, in their order: (our name, state-dict key, our layout, our shape).
            # hwio: a convolution's kernel (PyTorch's is OIHW); io: a dense kernel [in, out] (PyTorch's is [out, in]).
            TENSORS = [

            """);
        sb.Append(tensors);
        sb.Append("]\n");
        sb.Append('\n');
        sb.Append("# The file's train section (None: dsl run's default)\nTRAINING = {\n");
        sb.Append($"    \"data\": {(t.Data is { Value: var d } ? Py(d) : "None")},\n");
        var opt = t.Optimizer is { Value: var o } ? o : null;
        sb.Append("    \"optimizer\": " + (opt switch
        {
            Optimizer.Sgd s => $"{{\"name\": \"sgd\", \"lr\": {F(s.learningRate)}, \"momentum\": {F(s.momentum)}, \"nesterov\": {Bool(s.nesterov)}}}",
            Optimizer.Adam a => $"{{\"name\": \"adam\", \"lr\": {F(a.learningRate)}, \"beta1\": {F(a.beta1)}, \"beta2\": {F(a.beta2)}, \"epsilon\": {F(a.epsilon)}}}",
            Optimizer.RmsProp r => $"{{\"name\": \"rmsprop\", \"lr\": {F(r.learningRate)}, \"rho\": {F(r.rho)}, \"momentum\": {F(r.momentum)}, \"epsilon\": {F(r.epsilon)}}}",
            Optimizer.AdamW a => $"{{\"name\": \"adamw\", \"lr\": {F(a.learningRate)}, \"beta1\": {F(a.beta1)}, \"beta2\": {F(a.beta2)}, \"epsilon\": {F(a.epsilon)}, \"weight_decay\": {F(a.weightDecay)}, \"no_decay\": [{string.Join(", ", a.noDecay.Select(Py))}]}}",
            _ => "None",
        }) + ",\n");
        string? loss = t.Loss is { Value: var l } ? (l.IsCrossEntropy ? "crossentropy" : l.IsBinaryCrossEntropy ? "binary_crossentropy" : l.IsMeanSquaredError ? "mse" : "mae") : null;
        sb.Append($"    \"loss\": {(loss == null ? "None" : Py(loss))},\n");
        sb.Append($"    \"epochs\": {(t.Epochs is { Value: var e } ? e.ToString() : "None")},\n");
        sb.Append($"    \"batch\": {(t.BatchSize is { Value: var b } ? b.ToString() : "None")},\n");
        sb.Append($"    \"validation\": {(t.ValidationSplit is { Value: var v } ? F(v) : "None")},\n");
        sb.Append($"    \"seed\": {(t.Seed is { Value: var s2 } ? s2.ToString() : "None")},\n");
        sb.Append($"    \"weight_decay\": {(t.WeightDecay is { Value: var wd } ? F(wd) : "None")},\n");
        sb.Append($"    \"augment\": [{string.Join(", ", t.Augment.Select(Py))}],\n");
        sb.Append("    \"schedule\": " + (t.Schedule is { Value: var sc } ? sc switch
        {
            Schedule.Step st => $"{{\"name\": \"step\", \"every\": {st.every}, \"factor\": {F(st.factor)}}}",
            Schedule.Plateau pl => $"{{\"name\": \"plateau\", \"patience\": {pl.patience}, \"factor\": {F(pl.factor)}}}",
            Schedule.OneCycle oc => $"{{\"name\": \"onecycle\", \"pct_start\": {F(oc.pctStart)}, \"linear\": {Bool(oc.linear)}}}",
            _ => "{\"name\": \"cosine\"}",
        } : "None") + ",\n");
        sb.Append($"    \"early_stopping\": {(t.EarlyStopping is { Value: var es } ? es.ToString() : "None")},\n");
        sb.Append($"    \"warmup\": {(t.Warmup is { Value: var wu } ? wu.ToString() : "None")},\n");
        sb.Append($"    \"label_smoothing\": {(t.LabelSmoothing is { Value: var ls } ? F(ls) : "None")},\n");
        sb.Append($"    \"ema\": {(t.Ema is { Value: var ema } ? F(ema) : "None")},\n");
        sb.Append($"    \"normalize\": {Bool(t.Normalize)},\n");
        sb.Append($"    \"tta\": [{string.Join(", ", t.Tta.Select(Py))}],\n");
        sb.Append("}\n\n\n");
        sb.Append("class Model(nn.Module):\n    def __init__(self):\n        super().__init__()\n");
        sb.Append(init.Length > 0 ? init.ToString() : "        pass\n");
        sb.Append("\n    def forward(self, x, logits=False):\n        \"\"\"x: a batch of NHWC images (or vectors); logits=True: the last layer's output before its activation.\"\"\"\n");
        sb.Append(forward);
        sb.Append("""


            if __name__ == "__main__":
                # python3 model.py WEIGHTS.ckpt STATE.pt: a dsl checkpoint as a state dict; STATE.pt WEIGHTS.ckpt: back
                import sys
                from dsl_torch import convert
                convert(sys.modules[__name__], sys.argv[1:])

            """);
        return sb.ToString();
    }

    private static string Readme(CnnDsl.Graph.Graph graph, string modelName, bool weights) => $$"""
        # {{modelName}} on PyTorch

        Generated by `dsl export {{modelName}}.cnn --format pytorch` from the validated graph of the model.
        `model.py` is the network (submodules named as in `dsl summary`), `train.py` its `train`
        section, `dsl_torch.py` the layers where Keras and PyTorch differ, our optimizers' update rules and
        a reader and writer of `dsl`'s checkpoint format.{{(weights ? " `weights.ckpt` holds the weights given with `--weights`; train.py starts from it." : "")}}

        Runs with PyTorch 1.13 (Debian's python3-torch) and 2.x. `python3` below is a Python with
        PyTorch (on Debian with python3-torch, /usr/bin/python3: a pyenv or venv `python3` first on the
        PATH may have none). Run the commands in this folder. Every command below writes
        `run/last.ckpt` (and `run/best.ckpt`), `dsl` checkpoints: then

            dsl eval {{modelName}}.cnn --weights run/last.ckpt

        A state dict of these weights, or from a training loop of your own back to a `dsl` checkpoint
        (tensors checked against the model, the first differing one named):

            python3 model.py weights.ckpt weights.pt
            python3 model.py weights.pt back.ckpt

        `train.py --help` lists the options (`--data`, `--epochs`, `--batch` (the global batch, split
        across processes), `--lr`, `--optimizer`, `--seed`, `--validation`, `--limit N`, `--weights CKPT`,
        `--out DIR`, `--resume`, `--device cpu|cuda`, `--nproc N`).

        ## One process

            python3 train.py

        ## N processes on one machine (CPU, gloo over 127.0.0.1)

            python3 train.py --nproc 2

        or, as a launcher would start them (this is what torchrun does, one process per rank):

            MASTER_ADDR=127.0.0.1 MASTER_PORT=29500 WORLD_SIZE=2 RANK=0 python3 train.py &
            MASTER_ADDR=127.0.0.1 MASTER_PORT=29500 WORLD_SIZE=2 RANK=1 python3 train.py

        The global batch is split across the processes (each takes about batch / N examples per step,
        from a DistributedSampler over `dsl run`'s order of the epoch) and DistributedDataParallel
        averages the gradients, so the weights are those of one process with the same batch and seed
        (to rounding; batchnorm's statistics are each process's own).
        Rank 0 alone prints the epoch lines and writes the checkpoints.

        ## Several machines

        On each of M machines with G processes (GPUs) each, the same command (torchrun's underscore
        spellings, which PyTorch 1.13 and 2.x both accept; HOST0 is one of the machines):

            torchrun --nnodes M --nproc_per_node G --rdzv_backend c10d --rdzv_endpoint HOST0:29500 --rdzv_id {{modelName}} train.py --device cuda

        Debian's python3-torch 1.13 on Python 3.11 has a broken `torchrun` (its elastic agent fails with
        `AttributeError: 'NoneType' object has no attribute 'get'`); there, start every process
        yourself with the variables above, process LOCAL (0 to G-1) of machine NODE (0 to M-1, HOST0
        being 0): `MASTER_ADDR=HOST0 MASTER_PORT=29500 WORLD_SIZE=M*G RANK=NODE*G+LOCAL
        LOCAL_RANK=LOCAL LOCAL_WORLD_SIZE=G python3 train.py --device cuda` (the products written out).
        On CPUs, leave out `--device cuda`: gloo.

        ## GPUs

            python3 train.py --device cuda               # one GPU
            python3 train.py --device cuda --nproc 4     # four GPUs of one machine (NCCL)

        On GPUs the backend is NCCL and process k uses GPU LOCAL_RANK; on CPUs it is gloo.
        """;
}
