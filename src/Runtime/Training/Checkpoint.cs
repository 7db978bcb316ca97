using CnnDsl.Graph;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace CnnDsl.Runtime.Training;

/// <summary>Where a run stands: what a resumed run needs besides the tensors.</summary>
public sealed record TrainingPosition(int Epoch, int Batch, long NetworkStep, long OptimizerStep, double BestValidation)
{
    /// <summary>The learning-rate schedule's scale, and the monitored loss's best value and
    /// the epochs since (for reduce-on-plateau and early stopping).</summary>
    public double LearningRateScale { get; init; } = 1;
    public double BestLoss { get; init; } = double.PositiveInfinity;
    public int EpochsWithoutImprovement { get; init; }

    /// <summary>What the run was made with; a resume with other values would skip or repeat
    /// examples (batch, seed, training examples) or mix optimizers. Zero and "" when unknown
    /// (a version 2 checkpoint).</summary>
    public int BatchSize { get; init; }
    public string OptimizerName { get; init; } = "";
    public int Seed { get; init; }
    public int TrainingExamples { get; init; }

    /// <summary>The current epoch's running figures up to Batch (zero at an epoch's start), so
    /// that a resumed epoch reports, and chooses best.ckpt by, the whole epoch's figures.</summary>
    public double LossSum { get; init; }
    public long Correct { get; init; }
    public long Seen { get; init; }
    public double Seconds { get; init; }

    /// <summary>The checkpoint records the settings above (version 3 and later).</summary>
    public bool HasSettings => BatchSize > 0;

    public static TrainingPosition Start => new(0, 0, 0, 0, double.NegativeInfinity);
}

public sealed class CheckpointError(string file, string message) : Exception($"{file}: {message}");

/// <summary>
/// Checkpoints: weights (and batchnorm statistics), optimizer state and the training position,
/// in a small binary format (docs/checkpoints.md): the magic "CNNDSLCK", a version, the SHA-256
/// of the model's architecture (a mismatched model is refused), the position, the settings the
/// run was made with, the epoch's running figures, named float32 tensors, and a SHA-256 of
/// everything before it, so that a truncated or damaged file is detected. The checksum does not
/// detect a crafted file, so every field is also range-checked on load. Writes go through
/// AtomicFile: an interrupted write leaves the previous checkpoint intact.
/// </summary>
public static class Checkpoint
{
    private static readonly byte[] Magic = "CNNDSLCK"u8.ToArray();
    /// <summary>2: the position also holds the learning-rate scale and the early-stopping state.
    /// 3: also the batch size, optimizer, seed and training-set size the run was made with, and
    /// the current epoch's running loss, correct count, seen count and seconds.</summary>
    public const int Version = 3;
    private const int OldestReadable = 2;

    /// <summary>SHA-256 of the graph's nodes (kinds, hyper-parameters, channels, names), leaving
    /// out what depends on the input's height and width (spatial sizes, `same` padding resolved
    /// for a size): a fully-convolutional model's checkpoint is valid at every size it accepts.
    /// A model whose weights do depend on the size (a dense layer after a flatten) is still
    /// refused at another size, by its tensors' lengths.</summary>
    public static byte[] ArchitectureHash(CnnDsl.Graph.Graph graph)
    {
        static string Size(Shape s) => s is Shape.Image image ? $"?x?x{image.channels}" : s.ToString();
        static Window Free(Window w) => w.PaddingMode.IsExplicit ? w
            : new Window(w.KernelH, w.KernelW, w.StrideH, w.StrideW, w.DilationH, w.DilationW, Padding.Zero, w.PaddingMode);
        static LayerKind Kind(LayerKind k) => k switch
        {
            LayerKind.Conv c => LayerKind.NewConv(new Conv2d(c.Item.Filters, Free(c.Item.Window), c.Item.Bias, c.Item.Groups)),
            LayerKind.FixedConv f => LayerKind.NewFixedConv(new FixedConv2d(f.Item.Name, f.Item.Kernels, Free(f.Item.Window))),
            LayerKind.Pool p => LayerKind.NewPool(new Pool2d(p.Item.Kind, Free(p.Item.Window))),
            _ => k,
        };
        return NodesHash(graph, Kind, Size);
    }

    /// <summary>The hash that earlier checkpoints recorded (with every size): still accepted.</summary>
    private static byte[] SizedArchitectureHash(CnnDsl.Graph.Graph graph) => NodesHash(graph, k => k, s => s.ToString());

    private static byte[] NodesHash(CnnDsl.Graph.Graph graph, Func<LayerKind, LayerKind> kind, Func<Shape, string> size)
    {
        var text = string.Join("\n", graph.Nodes.Select(n => $"{n.Name}|{kind(n.Kind)}|{n.Activation}|{string.Join(",", n.Inputs)}|{size(n.OutputShape)}|{n.Trainable}"));
        return SHA256.HashData(Encoding.UTF8.GetBytes(text));
    }

    public static void Save(string path, CnnDsl.Graph.Graph graph, TrainingPosition position, IEnumerable<(string Name, float[] Values)> tensors)
    {
        // Streamed to the file through the hash: a checkpoint of VGG16 is 1.1 GB, and a copy in
        // memory (twice, with the best and the last checkpoint) is what the memory plan leaves out.
        AtomicFile.Write(path, file =>
        {
            using var sha = SHA256.Create();
            using (var hashing = new CryptoStream(file, sha, CryptoStreamMode.Write, leaveOpen: true))
            using (var w = new BinaryWriter(hashing, Encoding.UTF8, leaveOpen: true))
            {
                w.Write(Magic);
                w.Write(Version);
                w.Write(ArchitectureHash(graph));
                var p = position;
                w.Write(p.Epoch); w.Write(p.Batch); w.Write(p.NetworkStep); w.Write(p.OptimizerStep); w.Write(p.BestValidation);
                w.Write(p.LearningRateScale); w.Write(p.BestLoss); w.Write(p.EpochsWithoutImprovement);
                w.Write(p.BatchSize); w.Write(p.OptimizerName); w.Write(p.Seed); w.Write(p.TrainingExamples);
                w.Write(p.LossSum); w.Write(p.Correct); w.Write(p.Seen); w.Write(p.Seconds);
                var list = tensors.ToList();
                w.Write(list.Count);
                foreach (var (name, values) in list)
                {
                    w.Write(name);
                    w.Write(values.Length);
                    // little-endian floats, as BinaryWriter writes them one by one
                    if (BitConverter.IsLittleEndian) w.Write(MemoryMarshal.AsBytes(values.AsSpan()));
                    else foreach (var v in values) w.Write(v);
                }
            }
            file.Write(sha.Hash!);
        });
    }

    /// <summary>Reads a checkpoint written for this graph; a CheckpointError says what is wrong.</summary>
    public static (TrainingPosition Position, Dictionary<string, float[]> Tensors) Load(string path, CnnDsl.Graph.Graph graph) =>
        Load(path, graph, sameArchitecture: true);

    /// <summary>Reads a checkpoint of any model (transfer learning): only the checksum and format are checked.</summary>
    public static Dictionary<string, float[]> LoadTensors(string path) => Load(path, null, sameArchitecture: false).Tensors;

    private static (TrainingPosition Position, Dictionary<string, float[]> Tensors) Load(string path, CnnDsl.Graph.Graph? graph, bool sameArchitecture)
    {
        if (Directory.Exists(path)) throw new CheckpointError(path, "is a folder; give a checkpoint file such as " + Path.Combine(path, "best.ckpt"));
        if (!File.Exists(path)) throw new CheckpointError(path, "no such checkpoint");
        // The magic is read first: a device (/dev/zero) or a large file of another kind is refused
        // without reading it all (File.ReadAllBytes of /dev/zero runs out of memory).
        var head = new byte[Magic.Length];
        int got;
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
            got = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        if (got < Magic.Length || !head.AsSpan().SequenceEqual(Magic))
            throw new CheckpointError(path, "not a CnnDsl checkpoint (it does not start with CNNDSLCK)");
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < Magic.Length + 4 + 32 + 32 || !bytes.AsSpan(0, Magic.Length).SequenceEqual(Magic))
            throw new CheckpointError(path, "not a CnnDsl checkpoint (it does not start with CNNDSLCK)");
        var body = bytes.AsSpan(0, bytes.Length - 32);
        if (!SHA256.HashData(body).AsSpan().SequenceEqual(bytes.AsSpan(bytes.Length - 32)))
            throw new CheckpointError(path, "the checksum does not match: the file is truncated or damaged; use an earlier checkpoint (best.ckpt or last.ckpt)");
        try { return Read(path, graph, bytes, sameArchitecture); }
        catch (Exception e) when (e is EndOfStreamException or OverflowException or IOException or ArgumentException or DecoderFallbackException)
        {
            throw new CheckpointError(path, $"the file is damaged ({e.Message}); use an earlier checkpoint");
        }
    }

    private static (TrainingPosition, Dictionary<string, float[]>) Read(string path, CnnDsl.Graph.Graph? graph, byte[] bytes, bool sameArchitecture)
    {
        int end = bytes.Length - 32;
        using var r = new BinaryReader(new MemoryStream(bytes, 0, end));
        r.ReadBytes(Magic.Length);
        int version = r.ReadInt32();
        if (version < OldestReadable || version > Version)
            throw new CheckpointError(path, $"format version {version}; this program reads versions {OldestReadable} to {Version}"
                + (version > Version ? "; use the dsl that wrote it, or a newer one" : ""));
        var hash = r.ReadBytes(32);
        if (sameArchitecture && !hash.AsSpan().SequenceEqual(ArchitectureHash(graph!)) && !hash.AsSpan().SequenceEqual(SizedArchitectureHash(graph!)))
            throw new CheckpointError(path, "it was saved from a different model (the architecture differs); train this model anew, or load the model the checkpoint came from");

        // The checksum only detects damage: a file crafted with a valid one must still not
        // reach the trainer with values it cannot take (a negative batch, a 2 GB tensor).
        T Field<T>(string name, T value, bool ok, string range) =>
            ok ? value : throw new CheckpointError(path, $"field '{name}' is {value}, outside {range}: the file was altered; use another checkpoint");
        int epoch = r.ReadInt32(); Field("epoch", epoch, epoch >= 0, "0 and above");
        int batch = r.ReadInt32(); Field("batch", batch, batch >= 0, "0 and above");
        long networkStep = r.ReadInt64(); Field("network step", networkStep, networkStep >= 0, "0 and above");
        long optimizerStep = r.ReadInt64(); Field("optimizer step", optimizerStep, optimizerStep >= 0, "0 and above");
        double bestValidation = r.ReadDouble();
        Field("best validation", bestValidation, double.IsNegativeInfinity(bestValidation) || bestValidation is >= 0 and <= 1, "0 to 1 (or -infinity before the first epoch)");
        double scale = r.ReadDouble(); Field("learning-rate scale", scale, double.IsFinite(scale) && scale >= 0, "0 and above");
        double bestLoss = r.ReadDouble();
        Field("best loss", bestLoss, double.IsPositiveInfinity(bestLoss) || (double.IsFinite(bestLoss) && bestLoss >= 0), "0 and above (or +infinity before the first epoch)");
        int stale = r.ReadInt32(); Field("epochs without improvement", stale, stale >= 0 && stale <= epoch, $"0 to the epoch ({epoch})");
        var position = new TrainingPosition(epoch, batch, networkStep, optimizerStep, bestValidation)
        {
            LearningRateScale = scale, BestLoss = bestLoss, EpochsWithoutImprovement = stale,
        };
        if (version >= 3)
        {
            int batchSize = r.ReadInt32(); Field("batch size", batchSize, batchSize >= 1, "1 and above");
            var optimizer = r.ReadString(); Field("optimizer", optimizer, optimizer is "adam" or "sgd" or "rmsprop" or "adamw", "adam, sgd, rmsprop, adamw");
            int seed = r.ReadInt32(); Field("seed", seed, seed >= 0, "0 and above");
            // Keras's batches: the last one is partial, so a set smaller than one batch (XOR's 4
            // examples at batch 32) is one batch, and a stop before the partial batch is valid.
            int examples = r.ReadInt32(); Field("training examples", examples, examples >= 1, "1 and above");
            long batches = ((long)examples + batchSize - 1) / batchSize;
            Field("batch", batch, batch < batches, $"0 to {batches - 1} (batches of {batchSize} in {examples} examples)");
            double lossSum = r.ReadDouble(); Field("loss sum", lossSum, double.IsFinite(lossSum) && lossSum >= 0, "0 and above");
            long correct = r.ReadInt64();
            long seen = r.ReadInt64(); Field("seen", seen, seen == (long)batch * batchSize, $"batch x batch size ({(long)batch * batchSize})");
            Field("correct", correct, correct >= 0 && correct <= seen, $"0 to seen ({seen})");
            double seconds = r.ReadDouble(); Field("seconds", seconds, double.IsFinite(seconds) && seconds >= 0, "0 and above");
            position = position with
            {
                BatchSize = batchSize, OptimizerName = optimizer, Seed = seed, TrainingExamples = examples,
                LossSum = lossSum, Correct = correct, Seen = seen, Seconds = seconds,
            };
        }
        int count = r.ReadInt32(); Field("tensor count", count, count >= 0, "0 and above");
        var tensors = new Dictionary<string, float[]>();
        for (int t = 0; t < count; t++)
        {
            var name = r.ReadString();
            // Names are the model's layer names: control characters mean an altered file, and
            // are never echoed to a terminal.
            if (name.Any(char.IsControl))
                throw new CheckpointError(path, $"tensor {t + 1}'s name holds control characters: the file was altered; use another checkpoint");
            if (name.Length == 0 || tensors.ContainsKey(name))
                throw new CheckpointError(path, $"tensor {t + 1} has {(name.Length == 0 ? "an empty name" : $"the name '{name}' of an earlier one")}: the file was altered; use another checkpoint");
            int length = r.ReadInt32();
            long left = end - r.BaseStream.Position;
            // Checked against what the file holds before allocating: a crafted length would
            // otherwise ask for 8 GB.
            Field($"length of tensor {name}", length, length >= 0 && (long)length * 4 <= left, $"0 to the {left / 4} values left in the file");
            var values = new float[length];
            var raw = bytes.AsSpan((int)r.BaseStream.Position, length * 4);
            if (BitConverter.IsLittleEndian) raw.CopyTo(MemoryMarshal.AsBytes(values.AsSpan()));
            else for (int i = 0; i < length; i++) values[i] = System.Buffers.Binary.BinaryPrimitives.ReadSingleLittleEndian(raw.Slice(i * 4, 4));
            r.BaseStream.Position += (long)length * 4;
            for (int i = 0; i < values.Length; i++)
                if (!float.IsFinite(values[i]))
                    throw new CheckpointError(path, $"tensor '{name}' holds {values[i]} at index {i}: the weights are not finite; use an earlier checkpoint");
            tensors[name] = values;
        }
        if (r.BaseStream.Position != end)
            throw new CheckpointError(path, $"{end - r.BaseStream.Position} bytes follow the last tensor: the file was altered; use another checkpoint");
        return (position, tensors);
    }

    /// <summary>Loads a checkpoint's weights into a network of any precision (float32 as saved,
    /// or float64 for gradient checks and exact demonstrations); the moving average of the
    /// weights ("ema/NAME") where the run kept one, as evaluation used it.</summary>
    public static void LoadWeights<T>(string path, CnnDsl.Graph.Graph graph, IEnumerable<Parameter<T>> weights)
        where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        var (_, tensors) = Load(path, graph);
        foreach (var p in weights)
        {
            if (!tensors.TryGetValue(WeightAverage.Prefix + p.Name, out var saved) && !tensors.TryGetValue(p.Name, out saved))
            {
                // made without `normalize`: its inputs were not normalised
                if (Normalization.IsStatistic(p.Name)) { Normalization.Identity<T>(p.Name, p.Value); continue; }
                throw new CheckpointError(path, $"has no tensor '{p.Name}'");
            }
            if (saved.Length != p.Value.Length)
                throw new CheckpointError(path, $"tensor '{p.Name}' has {saved.Length} values, the model needs {p.Value.Length}");
            for (int i = 0; i < saved.Length; i++) p.Value[i] = T.CreateChecked(saved[i]);
        }
    }

    /// <summary>The name of a weight's value for evaluation in these tensors: its moving average
    /// ("ema/NAME") where the run kept one, else the weight itself.</summary>
    public static string EvaluationName(Dictionary<string, float[]> tensors, string name) =>
        tensors.ContainsKey(WeightAverage.Prefix + name) ? WeightAverage.Prefix + name : name;

    /// <summary>Copies loaded tensors into the network's weights (and the optimizer's state).</summary>
    public static void Restore(string path, Dictionary<string, float[]> tensors, IEnumerable<(string Name, float[] Values)> into)
    {
        foreach (var (name, values) in into)
        {
            if (!tensors.TryGetValue(name, out var saved))
            {
                // made without `normalize` (or its average): its inputs were not normalised
                var statistic = name.StartsWith(WeightAverage.Prefix) ? name[WeightAverage.Prefix.Length..] : name;
                if (Normalization.IsStatistic(statistic)) { Normalization.Identity<float>(statistic, values); continue; }
                throw new CheckpointError(path, $"has no tensor '{name}'");
            }
            if (saved.Length != values.Length)
                throw new CheckpointError(path, $"tensor '{name}' has {saved.Length} values, the model needs {values.Length}");
            saved.CopyTo(values, 0);
        }
    }
}
