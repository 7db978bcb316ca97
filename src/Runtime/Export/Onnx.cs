using System.Runtime.InteropServices;
using CnnDsl.Graph;

namespace CnnDsl.Runtime.Export;

/// <summary>An exported model that cannot be written, naming the layer.</summary>
public sealed class ExportError(string message) : Exception(message);

/// <summary>
/// The graph and a network's weights as an ONNX model (IR 8, opset 13). The ONNX input and
/// output are NHWC, as the runtime's; inside, convolutions and pools run NCHW (ONNX's layout),
/// with Transpose nodes where the layout changes (before flatten, so that dense weights keep
/// Keras's NHWC flatten order). Kernels go from HWIO to OIHW; `same` padding becomes explicit
/// pads (SAME_UPPER when the size is dynamic); min pooling is -MaxPool(-x); dropout is left out.
/// </summary>
public sealed class OnnxExport
{
    private enum Layout { Nhwc, Nchw, Vector }

    private readonly List<Action<ProtoWriter>> _nodes = [];
    private readonly List<Action<ProtoWriter>> _initializers = [];
    private readonly Dictionary<int, (string Name, Layout Layout)> _values = [];
    private readonly Dictionary<string, string> _converted = [];
    private readonly Dictionary<string, Parameter<float>> _weights;
    private int _counter;

    private OnnxExport(Network<float> net) => _weights = net.Weights.ToDictionary(p => p.Name);

    public static byte[] Export(CnnDsl.Graph.Graph graph, Network<float> net) => new OnnxExport(net).Write(graph);

    private string Fresh(string hint) => $"{hint}_{_counter++}";

    private void Node(string op, string[] inputs, string output, params Action<ProtoWriter>[] attributes)
    {
        var name = Fresh(op);
        _nodes.Add(w =>
        {
            foreach (var i in inputs) w.String(1, i);
            w.String(2, output).String(3, name).String(4, op);
            foreach (var a in attributes) w.Message(5, a);
        });
    }

    // AttributeProto: name 1, f 2, i 3, s 4, floats 7, ints 8, type 20 (FLOAT 1, INT 2, STRING 3, INTS 7).
    private static Action<ProtoWriter> Ints(string name, params long[] values) => w =>
    {
        w.String(1, name);
        foreach (var v in values) w.Int(8, v);
        w.Int(20, 7);
    };
    private static Action<ProtoWriter> Int(string name, long value) => w => w.String(1, name).Int(3, value).Int(20, 2);
    private static Action<ProtoWriter> Float(string name, float value) => w => w.String(1, name).Float(2, value).Int(20, 1);
    private static Action<ProtoWriter> Text(string name, string value) => w => w.String(1, name).Bytes(4, System.Text.Encoding.UTF8.GetBytes(value)).Int(20, 3);

    // TensorProto: dims 1, data_type 2 (FLOAT 1, INT64 7), name 8, raw_data 9.
    private string Initializer(string name, long[] dims, float[] values)
    {
        _initializers.Add(w =>
        {
            foreach (var d in dims) w.Int(1, d);
            w.Int(2, 1).String(8, name).Bytes(9, MemoryMarshal.AsBytes(values.AsSpan()));
        });
        return name;
    }

    private string Initializer(string name, long[] values)
    {
        _initializers.Add(w => w.Int(1, values.Length).Int(2, 7).String(8, name).Bytes(9, MemoryMarshal.AsBytes(values.AsSpan())));
        return name;
    }

    private float[] Weight(string name) =>
        _weights.TryGetValue(name, out var p) ? p.Value : throw new ExportError($"the network has no tensor {name}");

    private string Transposed(string input, long[] perm)
    {
        var key = input + string.Join(",", perm);
        if (_converted.TryGetValue(key, out var done)) return done;
        var output = Fresh(input + "_t");
        Node("Transpose", [input], output, Ints("perm", perm));
        return _converted[key] = output;
    }

    private string Nchw(int id) => _values[id] switch
    {
        (var n, Layout.Nchw) => n,
        (var n, Layout.Nhwc) => Transposed(n, [0, 3, 1, 2]),
        _ => throw new ExportError("a spatial layer follows a vector"),
    };

    private string Nhwc(int id) => _values[id] switch
    {
        (var n, Layout.Nhwc) => n,
        (var n, Layout.Nchw) => Transposed(n, [0, 2, 3, 1]),
        (var n, _) => n,
    };

    private string Activate(Node node, string input, Layout layout)
    {
        string op;
        Action<ProtoWriter>[] attributes = [];
        switch (node.Activation)
        {
            case var a when a.IsLinear: return input;
            case var a when a.IsRelu: op = "Relu"; break;
            case var a when a.IsSigmoid: op = "Sigmoid"; break;
            case var a when a.IsTanh: op = "Tanh"; break;
            case var a when a.IsSoftmax: op = "Softmax"; attributes = [Int("axis", layout == Layout.Nchw ? 1 : -1)]; break;
            case Activation.Elu elu: op = "Elu"; attributes = [Float("alpha", (float)elu.alpha)]; break;
            case Activation.LeakyRelu leaky: op = "LeakyRelu"; attributes = [Float("alpha", (float)leaky.alpha)]; break;
            default: throw new ExportError($"{node.Name}: activation {node.Activation} has no ONNX operator");
        }
        var output = Fresh(node.Name + "_" + op.ToLowerInvariant());
        Node(op, [input], output, attributes);
        return output;
    }

    private Action<ProtoWriter>[] WindowAttributes(Node node, Window w, bool dilations)
    {
        bool dynamic = node.InputShapes.Head is Shape.Image image && (image.height.IsDynamic || image.width.IsDynamic);
        var list = new List<Action<ProtoWriter>> { Ints("kernel_shape", w.KernelH, w.KernelW), Ints("strides", w.StrideH, w.StrideW) };
        if (dilations) list.Add(Ints("dilations", w.DilationH, w.DilationW));
        if (dynamic && w.PaddingMode.IsSame) list.Add(Text("auto_pad", "SAME_UPPER"));
        else list.Add(Ints("pads", w.Padding.Top, w.Padding.Left, w.Padding.Bottom, w.Padding.Right));
        return list.ToArray();
    }

    /// <summary>HWIO [kh, kw, c, f] -> OIHW [f, c, kh, kw].</summary>
    private static float[] Oihw(float[] hwio, int kh, int kw, int c, int f)
    {
        var o = new float[hwio.Length];
        for (int y = 0; y < kh; y++)
            for (int x = 0; x < kw; x++)
                for (int i = 0; i < c; i++)
                    for (int j = 0; j < f; j++)
                        o[((j * c + i) * kh + y) * kw + x] = hwio[((y * kw + x) * c + i) * f + j];
        return o;
    }

    private static Action<ProtoWriter> ValueInfo(string name, Shape shape) => w =>
    {
        w.String(1, name);
        w.Message(2, type => type.Message(1, tensor =>
        {
            tensor.Int(1, 1);
            tensor.Message(2, dims =>
            {
                void Dim(CnnDsl.Graph.Dim d, string symbol) =>
                    dims.Message(1, dim => { if (d is CnnDsl.Graph.Dim.Known k) dim.Int(1, k.size); else dim.String(2, symbol); });
                dims.Message(1, dim => dim.String(2, "N"));
                switch (shape)
                {
                    case Shape.Image image:
                        Dim(image.height, "H"); Dim(image.width, "W"); Dim(CnnDsl.Graph.Dim.NewKnown(image.channels), "C");
                        break;
                    case Shape.Vector v:
                        Dim(CnnDsl.Graph.Dim.NewKnown(v.length), "L");
                        break;
                }
            });
        }));
    };

    private byte[] Write(CnnDsl.Graph.Graph graph)
    {
        foreach (var node in graph.Nodes) Add(node);
        var last = graph.Output;
        var final = last.OutputShape is Shape.Image ? Nhwc(last.Id) : _values[last.Id].Name;
        Node("Identity", [final], "output");
        var model = new ProtoWriter();
        model.Int(1, 8); // IR version 8
        model.String(2, "CnnDsl").String(3, "1");
        model.Message(7, g =>
        {
            foreach (var n in _nodes) g.Message(1, n);
            g.String(2, "cnndsl");
            foreach (var i in _initializers) g.Message(5, i);
            g.Message(11, ValueInfo("input", graph.Input.OutputShape));
            g.Message(12, ValueInfo("output", last.OutputShape));
        });
        model.Message(8, o => o.String(1, "").Int(2, 13));
        return model.ToArray();
    }

    private void Add(Node node)
    {
        var kind = node.Kind;
        string Out(string hint) => Fresh(node.Name);
        switch (kind)
        {
            case var k when k.IsInput:
                _values[node.Id] = ("input", node.OutputShape is Shape.Image ? Layout.Nhwc : Layout.Vector);
                if (_weights.TryGetValue(Normalization.Mean, out var mean) && _weights.TryGetValue(Normalization.Deviation, out var deviation))
                {
                    // `normalize`: (x - mean) / deviation on the NHWC input, broadcast along its channels
                    var centred = Fresh("normalize_centred");
                    Node("Sub", ["input", Initializer("normalize_mean", [mean.Value.Length], mean.Value)], centred);
                    var scaled = Fresh("normalize_scaled");
                    Node("Div", [centred, Initializer("normalize_deviation", [deviation.Value.Length], deviation.Value)], scaled);
                    _values[node.Id] = (scaled, Layout.Nhwc);
                }
                return;
            case LayerKind.Conv or LayerKind.FixedConv:
            {
                var c = Shapes.Channels(node.InputShapes.Head);
                var f = Shapes.Channels(node.OutputShape);
                Window w;
                float[] hwio;
                string? bias = null;
                int groups = 1;
                if (kind is LayerKind.Conv conv)
                {
                    w = conv.Item.Window;
                    groups = conv.Item.Groups;
                    hwio = Weight(node.Name + "/kernel");
                    if (conv.Item.Bias) bias = Initializer(node.Name + "/bias", [f], Weight(node.Name + "/bias"));
                }
                else
                {
                    var fixedConv = ((LayerKind.FixedConv)kind).Item;
                    w = fixedConv.Window;
                    hwio = Layers.Conv2d<float>.FixedWeights(fixedConv.Kernels, c);
                }
                // Grouped: ONNX's weight is [F, C/group, kH, kW], the same transposition of our HWIO.
                int cg = c / groups;
                var weights = Initializer(node.Name + "/kernel_oihw", [f, cg, w.KernelH, w.KernelW], Oihw(hwio, w.KernelH, w.KernelW, cg, f));
                var output = Out("conv");
                var attributes = WindowAttributes(node, w, true);
                if (groups > 1) attributes = [.. attributes, Int("group", groups)];
                Node("Conv", bias == null ? [Nchw(node.Inputs.Head), weights] : [Nchw(node.Inputs.Head), weights, bias], output, attributes);
                _values[node.Id] = (Activate(node, output, Layout.Nchw), Layout.Nchw);
                return;
            }
            case LayerKind.Pool pool:
            {
                var input = Nchw(node.Inputs.Head);
                var attributes = WindowAttributes(node, pool.Item.Window, false);
                var output = Out("pool");
                if (pool.Item.Kind.IsAverage) Node("AveragePool", [input], output, [.. attributes, Int("count_include_pad", 0)]);
                else if (pool.Item.Kind.IsMax) Node("MaxPool", [input], output, attributes);
                else
                {
                    // min(x) = -max(-x); padding cells never win either way.
                    string negated = Fresh("neg"), pooled = Fresh("max");
                    Node("Neg", [input], negated);
                    Node("MaxPool", [negated], pooled, attributes);
                    Node("Neg", [pooled], output);
                }
                _values[node.Id] = (Activate(node, output, Layout.Nchw), Layout.Nchw);
                return;
            }
            case LayerKind.GlobalPool global:
            {
                var input = Nchw(node.Inputs.Head);
                var pooled = Fresh("global");
                if (global.Item.IsAverage) Node("GlobalAveragePool", [input], pooled);
                else if (global.Item.IsMax) Node("GlobalMaxPool", [input], pooled);
                else
                {
                    string negated = Fresh("neg"), max = Fresh("max");
                    Node("Neg", [input], negated);
                    Node("GlobalMaxPool", [negated], max);
                    Node("Neg", [max], pooled);
                }
                var output = Out("flat");
                Node("Flatten", [pooled], output, Int("axis", 1));
                _values[node.Id] = (Activate(node, output, Layout.Vector), Layout.Vector);
                return;
            }
            case LayerKind.Dense dense:
            {
                var input = _values[node.Inputs.Head].Name;
                var units = dense.units;
                var inputs = Shapes.Elements(node.InputShapes.Head);
                var w = Initializer(node.Name + "/kernel", [inputs, units], Weight(node.Name + "/kernel"));
                var output = Out("dense");
                if (dense.bias) Node("Gemm", [input, w, Initializer(node.Name + "/bias", [units], Weight(node.Name + "/bias"))], output);
                else Node("MatMul", [input, w], output);
                _values[node.Id] = (Activate(node, output, Layout.Vector), Layout.Vector);
                return;
            }
            case var k when k.IsFlatten:
            {
                var output = Out("flatten");
                Node("Flatten", [Nhwc(node.Inputs.Head)], output, Int("axis", 1));
                _values[node.Id] = (Activate(node, output, Layout.Vector), Layout.Vector);
                return;
            }
            case var k when k.IsReshape:
            {
                var target = node.OutputShape switch
                {
                    Shape.Image { height: Dim.Known h, width: Dim.Known w } image => new long[] { -1, h.size, w.size, image.channels },
                    Shape.Vector v => [-1, v.length],
                    _ => throw new ExportError($"{node.Name}: reshape to a dynamic size"),
                };
                var output = Out("reshape");
                Node("Reshape", [Nhwc(node.Inputs.Head), Initializer(Fresh(node.Name + "_shape"), target)], output);
                var layout = node.OutputShape is Shape.Image ? Layout.Nhwc : Layout.Vector;
                _values[node.Id] = (Activate(node, output, layout), layout);
                return;
            }
            case LayerKind.Dropout:
                _values[node.Id] = _values[node.Inputs.Head];
                return;
            case LayerKind.Maxout maxout:
            {
                // Channels last (NHWC or a vector): split the last axis into (units, pieces) and
                // take the largest piece; 0 in Reshape's shape copies that dimension.
                int k = maxout.pieces, units = Shapes.Channels(node.OutputShape);
                bool image = node.OutputShape is Shape.Image;
                var input = image ? Nhwc(node.Inputs.Head) : _values[node.Inputs.Head].Name;
                long[] split = image ? [0, 0, 0, units, k] : [0, units, k];
                var pieces = Fresh(node.Name + "_pieces");
                Node("Reshape", [input, Initializer(Fresh(node.Name + "_shape"), split)], pieces);
                var output = Out("maxout");
                Node("ReduceMax", [pieces], output, Ints("axes", split.Length - 1), Int("keepdims", 0));
                var layout = image ? Layout.Nhwc : Layout.Vector;
                _values[node.Id] = (Activate(node, output, layout), layout);
                return;
            }
            case LayerKind.BatchNormalization bn:
            {
                var (name, layout) = node.OutputShape is Shape.Image ? (Nchw(node.Inputs.Head), Layout.Nchw) : (_values[node.Inputs.Head].Name, Layout.Vector);
                var c = Shapes.Channels(node.OutputShape);
                string[] inputs =
                [
                    name,
                    Initializer(node.Name + "/gamma", [c], Weight(node.Name + "/gamma")),
                    Initializer(node.Name + "/beta", [c], Weight(node.Name + "/beta")),
                    Initializer(node.Name + "/moving_mean", [c], Weight(node.Name + "/moving_mean")),
                    Initializer(node.Name + "/moving_variance", [c], Weight(node.Name + "/moving_variance")),
                ];
                var output = Out("bn");
                Node("BatchNormalization", inputs, output, Float("epsilon", (float)bn.Item.Epsilon));
                _values[node.Id] = (Activate(node, output, layout), layout);
                return;
            }
            case var k when k.IsActivationLayer:
            {
                var (name, layout) = _values[node.Inputs.Head];
                _values[node.Id] = (Activate(node, name, layout), layout);
                return;
            }
            case var k when k.IsAdd || k.IsConcat:
            {
                bool image = node.OutputShape is Shape.Image;
                var inputs = node.Inputs.Select(id => image ? Nchw(id) : _values[id].Name).ToArray();
                var layout = image ? Layout.Nchw : Layout.Vector;
                string output;
                if (k.IsConcat)
                {
                    output = Out("concat");
                    Node("Concat", inputs, output, Int("axis", 1));
                }
                else
                {
                    output = inputs[0];
                    for (int i = 1; i < inputs.Length; i++)
                    {
                        var sum = Out("add");
                        Node("Add", [output, inputs[i]], sum);
                        output = sum;
                    }
                }
                _values[node.Id] = (Activate(node, output, layout), layout);
                return;
            }
            default:
                throw new ExportError($"{node.Name}: no ONNX form for this layer");
        }
    }
}
