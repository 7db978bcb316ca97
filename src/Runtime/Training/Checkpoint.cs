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

    public static TrainingPosition Start => new(0, 0, 0, 0, double.NegativeInfinity);
}

public sealed class CheckpointError(string file, string message) : Exception($"{file}: {message}");

/// <summary>
/// Checkpoints: weights (and batchnorm statistics), optimizer state and the training position,
/// in a small binary format (docs/checkpoints.md): the magic "CNNDSLCK", a version, the SHA-256
/// of the model's architecture (a mismatched model is refused), the position, named float32
/// tensors, and a SHA-256 of everything before it, so that a truncated or damaged file is
/// detected. Writes go to a temporary file that is flushed and renamed over the old one:
/// an interrupted write leaves the previous checkpoint intact.
/// </summary>
public static class Checkpoint
{
    private static readonly byte[] Magic = "CNNDSLCK"u8.ToArray();
    /// <summary>2: the position also holds the learning-rate scale and the early-stopping state.</summary>
    private const int Version = 2;

    /// <summary>SHA-256 of the graph's nodes (kinds, hyper-parameters, shapes, names).</summary>
    public static byte[] ArchitectureHash(CnnDsl.Graph.Graph graph)
    {
        var text = string.Join("\n", graph.Nodes.Select(n => $"{n.Name}|{n.Kind}|{n.Activation}|{string.Join(",", n.Inputs)}|{n.OutputShape}|{n.Trainable}"));
        return SHA256.HashData(Encoding.UTF8.GetBytes(text));
    }

    public static void Save(string path, CnnDsl.Graph.Graph graph, TrainingPosition position, IEnumerable<(string Name, float[] Values)> tensors)
    {
        // Streamed to the file through the hash: a checkpoint of VGG16 is 1.1 GB, and a copy in
        // memory (twice, with the best and the last checkpoint) is what the memory plan leaves out.
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(directory);
        var temporary = path + ".tmp";
        using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
        {
            using var sha = SHA256.Create();
            using (var hashing = new CryptoStream(file, sha, CryptoStreamMode.Write, leaveOpen: true))
            using (var w = new BinaryWriter(hashing, Encoding.UTF8, leaveOpen: true))
            {
                w.Write(Magic);
                w.Write(Version);
                w.Write(ArchitectureHash(graph));
                w.Write(position.Epoch); w.Write(position.Batch); w.Write(position.NetworkStep); w.Write(position.OptimizerStep); w.Write(position.BestValidation);
                w.Write(position.LearningRateScale); w.Write(position.BestLoss); w.Write(position.EpochsWithoutImprovement);
                var list = tensors.ToList();
                w.Write(list.Count);
                foreach (var (name, values) in list)
                {
                    w.Write(name);
                    w.Write(values.Length);
                    // little-endian floats, as BinaryWriter writes them one by one
                    if (BitConverter.IsLittleEndian) w.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
                    else foreach (var v in values) w.Write(v);
                }
            }
            file.Write(sha.Hash!);
            file.Flush(flushToDisk: true);
        }
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>Reads a checkpoint written for this graph; a CheckpointError says what is wrong.</summary>
    public static (TrainingPosition Position, Dictionary<string, float[]> Tensors) Load(string path, CnnDsl.Graph.Graph graph) =>
        Load(path, graph, sameArchitecture: true);

    /// <summary>Reads a checkpoint of any model (transfer learning): only the checksum and format are checked.</summary>
    public static Dictionary<string, float[]> LoadTensors(string path) => Load(path, null, sameArchitecture: false).Tensors;

    private static (TrainingPosition Position, Dictionary<string, float[]> Tensors) Load(string path, CnnDsl.Graph.Graph? graph, bool sameArchitecture)
    {
        if (!File.Exists(path)) throw new CheckpointError(path, "no such checkpoint");
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < Magic.Length + 4 + 32 + 32 || !bytes.AsSpan(0, Magic.Length).SequenceEqual(Magic))
            throw new CheckpointError(path, "not a CnnDsl checkpoint (it does not start with CNNDSLCK)");
        var body = bytes.AsSpan(0, bytes.Length - 32);
        if (!SHA256.HashData(body).AsSpan().SequenceEqual(bytes.AsSpan(bytes.Length - 32)))
            throw new CheckpointError(path, "the checksum does not match: the file is truncated or damaged; use an earlier checkpoint (best.ckpt or last.ckpt)");
        try { return Read(path, graph, bytes, sameArchitecture); }
        catch (Exception e) when (e is EndOfStreamException or OverflowException or IOException or ArgumentException)
        {
            throw new CheckpointError(path, $"the file is damaged ({e.Message}); use an earlier checkpoint");
        }
    }

    private static (TrainingPosition, Dictionary<string, float[]>) Read(string path, CnnDsl.Graph.Graph? graph, byte[] bytes, bool sameArchitecture)
    {
        using var r = new BinaryReader(new MemoryStream(bytes, 0, bytes.Length - 32));
        r.ReadBytes(Magic.Length);
        int version = r.ReadInt32();
        if (version != Version) throw new CheckpointError(path, $"format version {version}; this program reads version {Version}");
        var hash = r.ReadBytes(32);
        if (sameArchitecture && !hash.AsSpan().SequenceEqual(ArchitectureHash(graph!)))
            throw new CheckpointError(path, "it was saved from a different model (the architecture differs); train this model anew, or load the model the checkpoint came from");
        var position = new TrainingPosition(r.ReadInt32(), r.ReadInt32(), r.ReadInt64(), r.ReadInt64(), r.ReadDouble())
        {
            LearningRateScale = r.ReadDouble(), BestLoss = r.ReadDouble(), EpochsWithoutImprovement = r.ReadInt32(),
        };
        int count = r.ReadInt32();
        var tensors = new Dictionary<string, float[]>();
        for (int t = 0; t < count; t++)
        {
            var name = r.ReadString();
            var values = new float[r.ReadInt32()];
            for (int i = 0; i < values.Length; i++) values[i] = r.ReadSingle();
            tensors[name] = values;
        }
        return (position, tensors);
    }

    /// <summary>Loads a checkpoint's weights into a network of any precision (float32 as saved,
    /// or float64 for gradient checks and exact demonstrations).</summary>
    public static void LoadWeights<T>(string path, CnnDsl.Graph.Graph graph, IEnumerable<Parameter<T>> weights)
        where T : unmanaged, System.Numerics.IFloatingPointIeee754<T>
    {
        var (_, tensors) = Load(path, graph);
        foreach (var p in weights)
        {
            if (!tensors.TryGetValue(p.Name, out var saved)) throw new CheckpointError(path, $"has no tensor '{p.Name}'");
            if (saved.Length != p.Value.Length)
                throw new CheckpointError(path, $"tensor '{p.Name}' has {saved.Length} values, the model needs {p.Value.Length}");
            for (int i = 0; i < saved.Length; i++) p.Value[i] = T.CreateChecked(saved[i]);
        }
    }

    /// <summary>Copies loaded tensors into the network's weights (and the optimizer's state).</summary>
    public static void Restore(string path, Dictionary<string, float[]> tensors, IEnumerable<(string Name, float[] Values)> into)
    {
        foreach (var (name, values) in into)
        {
            if (!tensors.TryGetValue(name, out var saved))
                throw new CheckpointError(path, $"has no tensor '{name}'");
            if (saved.Length != values.Length)
                throw new CheckpointError(path, $"tensor '{name}' has {saved.Length} values, the model needs {values.Length}");
            saved.CopyTo(values, 0);
        }
    }
}
