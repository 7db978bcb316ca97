using System.Diagnostics;
using CnnDsl.Graph;
using CnnDsl.Runtime.Data;

namespace CnnDsl.Runtime.Training;

public sealed record TrainingSettings(
    int Epochs, int BatchSize, int Seed, double ValidationSplit, Optimizer Optimizer, Loss Loss,
    double WeightDecay, string OutputFolder)
{
    /// <summary>Augmentations for training images: any of shift, flip, rotate.</summary>
    public IReadOnlyList<string> Augment { get; init; } = [];

    /// <summary>How the learning rate changes; null keeps it constant.</summary>
    public Schedule? Schedule { get; init; }

    /// <summary>Stop after this many epochs without a better monitored loss; null never stops early.</summary>
    public int? EarlyStopping { get; init; }

    /// <summary>Keras's label_smoothing a of cross-entropy: targets y (1 - a) + a / K (K classes; 2 for
    /// binary cross-entropy, whose targets become y (1 - a) + a / 2). Used in training and in the
    /// reported losses, as Keras's compiled loss is.</summary>
    public double LabelSmoothing { get; init; }

    /// <summary>Epochs of linear warm-up of the rate, per step, before the schedule (0: none).</summary>
    public int Warmup { get; init; }

    /// <summary>The decay of the weights' moving average (timm's ModelEmaV2; 0: none): evaluation
    /// runs on the averages, and checkpoints hold them as "ema/NAME".</summary>
    public double Ema { get; init; }

    /// <summary>Evaluation averages the outputs for each image and its horizontal mirror (the
    /// loss reported is the mean of the two views' losses).</summary>
    public bool TestTimeFlip { get; init; }

    /// <summary>Evaluation also takes each view moved this many pixels down-right and up-left
    /// (0: not). airbench's views and weights (Keller Jordan, 2024, infer_mirror_translate): the
    /// unmoved views count half, the moved ones the other half. Unlike airbench (reflection,
    /// logits) the gap is filled as the training crop fills it (zeros, or a reflection with
    /// `crop P reflect`) and the outputs themselves are averaged.</summary>
    public int TestTimeShift { get; init; }
}

public sealed record EpochRecord(int Epoch, int Epochs, double Seconds, double Loss, double Accuracy,
    double? ValidationLoss, double? ValidationAccuracy, double ImagesPerSecond);

public sealed record Evaluation(double Loss, double Accuracy, int[,] Confusion, string[] ClassNames)
{
    public double ClassAccuracy(int c)
    {
        int total = 0;
        for (int p = 0; p < Confusion.GetLength(1); p++) total += Confusion[c, p];
        return total == 0 ? double.NaN : (double)Confusion[c, c] / total;
    }
}

/// <summary>What a training run tells whoever shows it (the console, JSON, a test).</summary>
public interface ITrainingReport
{
    void Started(string description);
    void Progress(int epoch, int batch, int batches, double loss, double accuracy, double imagesPerSecond);
    void EpochDone(EpochRecord record);
    void Stopped(string message);
}

/// <summary>
/// model.fit for a graph: seeded shuffling per epoch, a validation split taken from the end of
/// the training set (as Keras's validation_split), checkpoints after every epoch and on a
/// stop request, and a resume that continues as if never stopped (same seed and threads).
/// </summary>
public sealed class Trainer
{
    private readonly CnnDsl.Graph.Graph _graph;
    private readonly TrainingSettings _settings;
    private readonly ITrainingReport _report;
    private readonly Dataset _train;
    private readonly Dataset? _validation;
    private readonly int[] _labels;
    private readonly float[] _targets;
    private readonly int _classes;
    private readonly Augmentation? _augmentation;
    private readonly WeightAverage? _average;
    // test-time views (the first is the image itself), the weighted sum of their outputs, and
    // the batch as filled, which each view starts from
    private readonly (bool Mirror, int Shift, float Weight)[] _views;
    private readonly float[] _mixed, _source;
    private readonly Augmentation? _shifter;

    public Trainer(CnnDsl.Graph.Graph graph, Dataset train, TrainingSettings settings, ITrainingReport report)
    {
        _graph = graph;
        _settings = settings;
        _report = report;
        CheckCompatible(graph, train);
        int held = (int)Math.Round(train.Count * settings.ValidationSplit);
        _train = held > 0 ? train.Slice(0, train.Count - held) : train;
        _validation = held > 0 ? train.Slice(train.Count - held, held) : null;
        Network = new Network<float>(graph, settings.BatchSize, settings.Seed);
        Optimizer = new Optimizers(settings.Optimizer, Network.Parameters, settings.WeightDecay);
        _labels = new int[settings.BatchSize];
        _targets = new float[settings.BatchSize * Network.OutputSize];
        _classes = train.ClassNames.Length;
        _augmentation = Augmentation.From(settings.Augment, train);
        // `normalize`: the training part's statistics (a resume or evaluation then loads the checkpoint's)
        if (Network.InputStatistics is var (mean, deviation))
        {
            var (m, d) = Normalization.Of(_train);
            m.CopyTo(mean.Value, 0);
            d.CopyTo(deviation.Value, 0);
        }
        _average = settings.Ema > 0 ? new WeightAverage(Network.Weights, settings.Ema) : null;
        _views = ViewsOf(settings);
        _mixed = _views.Length > 1 ? new float[settings.BatchSize * Network.OutputSize] : [];
        _source = _views.Length > 1 ? new float[settings.BatchSize * Network.InputSize] : [];
        _shifter = settings.TestTimeShift > 0
            ? new Augmentation(false, false, false, train.Height, train.Width, train.Channels, settings.TestTimeShift,
                reflect: _augmentation?.Reflects ?? false)
            : null;
    }

    public Network<float> Network { get; }

    // Evaluation and prediction run in an inference network (InferencePlan: no gradients,
    // batchnorm folded into convolutions, small models in cache-sized pieces of the batch), built
    // on first use and given the training network's current weights before each use.
    private Network<float>? _inference;
    // (training, inference) weight arrays, paired once: the copy before each use allocates nothing
    private (float[] From, float[] To)[] _inferenceWeights = [];
    /// <summary>The network evaluation and prediction run in (built on first use), with the training
    /// network's current weights.</summary>
    public Network<float> InferenceNetwork => Inference();

    /// <summary>Bytes an inference network may take, asked each time one is not yet built: three
    /// quarters of what the process can still allocate (tests set less).</summary>
    public Func<long> InferenceBudget { get; set; } = () => Math.Max(0, Memory.HeadroomBytes()) / 4 * 3;

    private Network<float> Inference()
    {
        if (_inference == null)
        {
            // A second network beside the training one, within the budget: a model trained at the
            // largest batch that fits (VGG16 at 144 on 24 GB) evaluates in smaller batches, or, when
            // not even one example's fits (or the allocation fails all the same), in the training
            // network, this time only: the next evaluation asks again, as memory may have come free.
            int fits = Memory.LargestBatch(_graph, InferenceBudget(), InferencePlan.Batch(_graph, _settings.BatchSize), inference: true);
            if (fits == 0) return Network;
            try { _inference = new Network<float>(_graph, fits, _settings.Seed, inference: true); }
            catch (OutOfMemoryException) { return Network; }
            _inferenceWeights = Network.Weights.Zip(_inference.Weights, (a, b) => (a.Value, b.Value)).ToArray();
        }
        foreach (var (from, to) in _inferenceWeights) from.AsSpan().CopyTo(to);
        return _inference;
    }

    /// <summary>How often Progress is reported (zero: after every batch).</summary>
    public TimeSpan ProgressInterval { get; set; } = TimeSpan.FromSeconds(0.5);
    public Optimizers Optimizer { get; }
    public string LastCheckpoint => Path.Combine(_settings.OutputFolder, "last.ckpt");
    public string BestCheckpoint => Path.Combine(_settings.OutputFolder, "best.ckpt");
    public int TrainCount => _train.Count;

    /// <summary>Set when early stopping ended the last Run.</summary>
    public bool StoppedEarly { get; private set; }
    public int ValidationCount => _validation?.Count ?? 0;

    /// <summary>The model must read the data's images and predict its classes.</summary>
    public static void CheckCompatible(CnnDsl.Graph.Graph graph, Dataset data)
    {
        var input = graph.Input.OutputShape;
        int elements = Shapes.Elements(input);
        bool same = input is Shape.Image ? Shapes.Hwc(input) == (data.Height, data.Width, data.Channels) : elements == data.ExampleSize;
        if (!same)
            throw new DataError(data.Name, $"the model's input is {input} but {data.Name}'s examples are {data.ShapeText}; make the model's first line 'input {data.ShapeText}'");
        // More outputs than classes is allowed, as in Keras (a 1000-class VGG16 on a small set):
        // the extra outputs are never the answer; fewer could not name every label.
        int outputs = Shapes.Elements(graph.Output.OutputShape);
        if (outputs < data.ClassNames.Length && outputs != 1)
            throw new DataError(data.Name, $"the model ends in {outputs} values but {data.Name} has {data.ClassNames.Length} classes; make the last layer 'dense {data.ClassNames.Length} softmax'");
    }

    private IEnumerable<(string, float[])> Tensors =>
        Network.Weights.Select(p => (p.Name, p.Value)).Concat(Optimizer.State).Concat(_average?.Tensors ?? []);

    private void Save(string path, TrainingPosition position) => Checkpoint.Save(path, _graph, position, Tensors);

    /// <summary>The optimizer's name as checkpoints record it.</summary>
    public static string OptimizerName(Optimizer optimizer) => optimizer switch
    {
        CnnDsl.Graph.Optimizer.Adam => "adam",
        CnnDsl.Graph.Optimizer.AdamW => "adamw",
        CnnDsl.Graph.Optimizer.Sgd => "sgd",
        _ => "rmsprop",
    };

    /// <summary>Loads weights (and, for resuming, the optimizer and position) from a checkpoint.
    /// A resume must have the settings the checkpoint was made with: another batch size, seed or
    /// training set would skip or repeat examples, another optimizer would misread its state.</summary>
    public TrainingPosition Load(string path, bool withOptimizer)
    {
        var (position, tensors) = Checkpoint.Load(path, _graph);
        if (withOptimizer) CheckResumable(path, position);
        if (withOptimizer && _average != null && !tensors.ContainsKey(WeightAverage.Prefix + Network.Weights.First().Name))
            throw new CheckpointError(path, "was made without 'ema', which this run has: its weights' average cannot continue; start a new run with --weights " + path + " and --out DIR (or --force)");
        // Weights alone (evaluation, predictions): the averaged weights when the run kept them.
        Checkpoint.Restore(path, tensors, withOptimizer ? Tensors
            : Network.Weights.Select(p => (Checkpoint.EvaluationName(tensors, p.Name), p.Value)));
        if (!withOptimizer) _average?.Reset();
        if (withOptimizer)
        {
            Network.Step = position.NetworkStep;
            Optimizer.Step = position.OptimizerStep;
        }
        return position;
    }

    private void CheckResumable(string path, TrainingPosition saved)
    {
        if (!saved.HasSettings)
            throw new CheckpointError(path, "was written by an earlier dsl (format version 2), which did not record the batch size, optimizer and seed a run needs to continue exactly; "
                + "start a new run from its weights with --weights " + path + " and --out DIR (or --force)");
        var differences = new List<string>();
        var fixes = new List<string>();
        if (saved.BatchSize != _settings.BatchSize) { differences.Add($"batch {saved.BatchSize} (this run: {_settings.BatchSize})"); fixes.Add($"--batch {saved.BatchSize}"); }
        var optimizer = OptimizerName(_settings.Optimizer);
        if (saved.OptimizerName != optimizer) { differences.Add($"optimizer {saved.OptimizerName} (this run: {optimizer})"); fixes.Add($"--optimizer {saved.OptimizerName}"); }
        if (saved.Seed != _settings.Seed) { differences.Add($"seed {saved.Seed} (this run: {_settings.Seed})"); fixes.Add($"--seed {saved.Seed}"); }
        if (saved.TrainingExamples != _train.Count)
        {
            differences.Add($"{saved.TrainingExamples} training examples (this run: {_train.Count})");
            fixes.Add("the same --data, --limit and --validation");
        }
        if (differences.Count > 0)
            throw new CheckpointError(path, $"was made with {string.Join(", ", differences)}; resume with {string.Join(" ", fixes)}, or start a new run with --force or --out DIR");
    }

    /// <summary>Transfer learning: copies the tensors of another model's checkpoint whose names
    /// and sizes match this model's (so layers named alike in both start from the learned
    /// values, `frozen` ones stay there), taking a run's weight average ("ema/NAME") where it kept
    /// one; returns the names copied and the names kept as initialised.</summary>
    public (List<string> Copied, List<string> Kept) Transfer(string path)
    {
        var tensors = Checkpoint.LoadTensors(path);
        var copied = new List<string>();
        var kept = new List<string>();
        foreach (var p in Network.Weights)
        {
            // the run's weight average where it kept one, as evaluation (and --format weights) uses it
            if (tensors.TryGetValue(Checkpoint.EvaluationName(tensors, p.Name), out var saved) && saved.Length == p.Value.Length)
            {
                saved.CopyTo(p.Value, 0);
                copied.Add(p.Name);
            }
            else kept.Add(p.Name);
        }
        return (copied, kept);
    }

    /// <summary>The order of an epoch's examples: a permutation drawn from (seed, epoch) alone,
    /// so that a resumed run sees the same batches.</summary>
    private int[] Order(int epoch)
    {
        var order = Enumerable.Range(0, _train.Count).ToArray();
        // Not HashCode.Combine: it is salted per process, and a resumed run is another process.
        new Random(unchecked(_settings.Seed * 1_000_003 + epoch)).Shuffle(order);
        return order;
    }

    private void Fill(Dataset set, ReadOnlySpan<int> indices, bool augment = false) => Fill(Network, set, indices, augment);

    private void Fill(Network<float> network, Dataset set, ReadOnlySpan<int> indices, bool augment = false)
    {
        int size = set.ExampleSize;
        var input = network.Input;
        for (int i = 0; i < indices.Length; i++)
        {
            var example = input.Slice(i * size, size);
            set.CopyExample(indices[i], example);
            if (augment && _augmentation != null)
                _augmentation.Apply(example, (ulong)_settings.Seed * 0x9E3779B97F4A7C15UL ^ (ulong)network.Step << 20 ^ (ulong)i);
            _labels[i] = set.Labels[indices[i]];
        }
        input.Slice(indices.Length * size).Clear();
    }

    /// <summary>The loss of the current batch (its first `count` examples count) and the number right.</summary>
    private (double Loss, int Correct) Score(int count) => Score(Network, count);

    private (double Loss, int Correct) Score(Network<float> network, int count)
    {
        var output = network.Output;
        int per = network.OutputSize, rows = network.BatchSize;
        double loss;
        if (_settings.Loss.IsCrossEntropy && per > 1)
        {
            for (int i = count; i < rows; i++) _labels[i] = 0;
            loss = Losses.CrossEntropy(network, _labels.AsSpan(0, rows), count, _settings.LabelSmoothing);
        }
        else
        {
            var targets = _targets.AsSpan(0, rows * per);
            targets.Clear();
            for (int i = 0; i < rows; i++)
                if (per == 1) targets[i] = _labels[i];
                else targets[i * per + _labels[i]] = 1;
            var kind = _settings.Loss.IsCrossEntropy ? Loss.BinaryCrossEntropy : _settings.Loss;
            // Keras's BinaryCrossentropy(label_smoothing=a): t (1 - a) + a / 2
            if (_settings.LabelSmoothing > 0 && kind.IsBinaryCrossEntropy)
            {
                float a = (float)_settings.LabelSmoothing;
                for (int i = 0; i < targets.Length; i++) targets[i] = targets[i] * (1 - a) + a / 2;
            }
            loss = Losses.Compute(kind, network, targets, count);
        }
        int correct = 0;
        for (int i = 0; i < count; i++) if (Predict(output.Slice(i * per, per)) == _labels[i]) correct++;
        return (loss, correct);
    }

    private static int Predict(ReadOnlySpan<float> y)
    {
        if (y.Length == 1) return y[0] >= 0.5f ? 1 : 0;
        int best = 0;
        for (int j = 1; j < y.Length; j++) if (y[j] > y[best]) best = j;
        return best;
    }

    /// <summary>One training step on the training examples at `indices` (a full batch):
    /// forward, loss, backward and the optimizer's update, unless the loss is not finite.
    /// Returns the batch's mean loss and how many it got right.</summary>
    public (double Loss, int Correct) TrainBatch(ReadOnlySpan<int> indices)
    {
        Fill(_train, indices, augment: true);
        Network.Rows = indices.Length;
        Network.Forward(training: true);
        var (loss, right) = Score(indices.Length);
        if (!double.IsFinite(loss)) return (loss, right);
        Network.Backward();
        Optimizer.Update();
        _average?.Update();
        Network.NextStep();
        return (loss, right);
    }

    /// <summary>The forward pass alone (inference) on examples of a set; returns how many it got right.</summary>
    public int PredictBatch(Dataset set, ReadOnlySpan<int> indices)
    {
        var network = Inference();
        int per = network.OutputSize, correct = 0;
        for (int start = 0; start < indices.Length; start += network.BatchSize)
        {
            var piece = indices.Slice(start, Math.Min(network.BatchSize, indices.Length - start));
            Fill(network, set, piece);
            network.Rows = piece.Length;
            network.Forward(training: false);
            var output = network.Output;
            for (int i = 0; i < piece.Length; i++) if (Predict(output.Slice(i * per, per)) == _labels[i]) correct++;
        }
        return correct;
    }

    /// <summary>Test hook: before this (epoch, batch), Paused is called and the run waits for
    /// `stop`, then stops there as on Ctrl+C (deterministic interruptions, in and out of process).</summary>
    public (int Epoch, int Batch)? PauseAt { get; set; }
    public Action? Paused { get; set; }

    /// <summary>Trains from the position (epoch 0, batch 0 for a new run) until the last epoch
    /// or until `stop` is set; returns the epochs' records.</summary>
    public List<EpochRecord> Run(TrainingPosition start, CancellationToken stop)
    {
        // Keras's batches: the last one is partial when the batch size does not divide the set.
        int batch = _settings.BatchSize, batches = (_train.Count + batch - 1) / batch;
        if (start.Batch > 0 && start.Batch >= batches)
            throw new ArgumentOutOfRangeException(nameof(start), $"batch {start.Batch} of an epoch of {batches}");
        var records = new List<EpochRecord>();
        // A new run's average starts at its first weights (after a transfer, at those).
        if (start.Epoch == 0 && start.Batch == 0) _average?.Reset();
        double best = start.BestValidation;
        double scale = start.LearningRateScale, bestLoss = start.BestLoss;
        int stale = start.EpochsWithoutImprovement;
        // The epoch's running figures: carried over from the checkpoint when resuming within it.
        double lossSum = 0, secondsBefore = 0; long correct = 0, seen = 0;
        var settings = start with
        {
            BatchSize = batch, OptimizerName = OptimizerName(_settings.Optimizer), Seed = _settings.Seed, TrainingExamples = _train.Count,
        };
        TrainingPosition Position(int epoch, int batchIndex, double seconds) =>
            settings with
            {
                Epoch = epoch, Batch = batchIndex, NetworkStep = Network.Step, OptimizerStep = Optimizer.Step, BestValidation = best,
                LearningRateScale = scale, BestLoss = bestLoss, EpochsWithoutImprovement = stale,
                LossSum = batchIndex == 0 ? 0 : lossSum, Correct = batchIndex == 0 ? 0 : correct, Seen = batchIndex == 0 ? 0 : seen,
                Seconds = batchIndex == 0 ? 0 : seconds,
            };
        for (int epoch = start.Epoch; epoch < _settings.Epochs; epoch++)
        {
            // Per-epoch schedules (Keras's step decay; plateau's scale is carried); cosine,
            // one-cycle and warm-up are per step (Schedules.StepFactor, before each batch).
            scale = _settings.Schedule switch
            {
                Schedule.Step s => Math.Pow(s.factor, epoch / s.every),
                Schedule.Plateau => scale,
                _ => 1,
            };
            Optimizer.LearningRateScale = scale;
            var order = Order(epoch);
            var clock = Stopwatch.StartNew();
            int first = epoch == start.Epoch ? start.Batch : 0;
            if (first > 0) (lossSum, correct, seen, secondsBefore) = (start.LossSum, start.Correct, start.Seen, start.Seconds);
            else (lossSum, correct, seen, secondsBefore) = (0, 0, 0, 0);
            long seenBefore = seen;
            var lastReport = Stopwatch.StartNew();
            for (int b = first; b < batches; b++)
            {
                if (PauseAt == (epoch, b))
                {
                    clock.Stop(); // the wait is not training time
                    Paused?.Invoke();
                    stop.WaitHandle.WaitOne();
                    clock.Start();
                }
                if (stop.IsCancellationRequested)
                {
                    Save(LastCheckpoint, Position(epoch, b, secondsBefore + clock.Elapsed.TotalSeconds));
                    _report.Stopped($"stopped at epoch {epoch + 1}, batch {b}; saved {LastCheckpoint}; continue with --resume");
                    return records;
                }
                int size = Math.Min(batch, _train.Count - b * batch);
                Optimizer.LearningRateScale = scale * Schedules.StepFactor(_settings.Schedule, (long)_settings.Warmup * batches,
                    (long)epoch * batches + b, (long)_settings.Epochs * batches);
                var (loss, right) = TrainBatch(order.AsSpan(b * batch, size));
                if (!double.IsFinite(loss))
                {
                    _report.Stopped($"the loss became {loss} at epoch {epoch + 1}, batch {b}: the learning rate ({Optimizer.LearningRate}) may be too high, or the inputs unnormalised; the last good checkpoint is {LastCheckpoint}");
                    return records;
                }
                lossSum += loss * size; correct += right; seen += size;
                if (lastReport.Elapsed >= ProgressInterval || b == batches - 1)
                {
                    // the rate counts this process's batches only
                    _report.Progress(epoch, b + 1, batches, lossSum / seen, (double)correct / seen, (seen - seenBefore) / clock.Elapsed.TotalSeconds);
                    lastReport.Restart();
                }
            }
            var seconds = secondsBefore + clock.Elapsed.TotalSeconds;
            Evaluation? validation = _validation == null ? null : Evaluate(_validation);
            var record = new EpochRecord(epoch + 1, _settings.Epochs, seconds, seen == 0 ? double.NaN : lossSum / seen,
                seen == 0 ? double.NaN : (double)correct / seen, validation?.Loss, validation?.Accuracy, seen / seconds);
            records.Add(record);
            var score = validation?.Accuracy ?? record.Accuracy;
            // Reduce-on-plateau and early stopping watch the validation loss (the training loss
            // without a validation split), as Keras's callbacks do by default.
            var monitored = validation?.Loss ?? record.Loss;
            if (monitored < bestLoss) { bestLoss = monitored; stale = 0; } else stale++;
            if (_settings.Schedule is Schedule.Plateau plateau && stale > 0 && stale % plateau.patience == 0)
                scale *= plateau.factor;
            bool better = score > best;
            if (better) best = score;
            // last.ckpt first: a failure between the two (a full disk) must not leave a best.ckpt
            // newer than last.ckpt, or no last.ckpt at all to resume from.
            Save(LastCheckpoint, Position(epoch + 1, 0, 0));
            if (better) Save(BestCheckpoint, Position(epoch + 1, 0, 0));
            _report.EpochDone(record);
            if (_settings.EarlyStopping is int patience && stale >= patience)
            {
                _report.Stopped($"early stopping after epoch {epoch + 1}: no better {(validation != null ? "validation " : "")}loss for {patience} epochs (best {bestLoss:F4})");
                StoppedEarly = true;
                return records;
            }
        }
        return records;
    }

    /// <summary>The most classes a confusion matrix (and per-class accuracy) is kept for.</summary>
    public const int MaxConfusionClasses = 1000;

    /// <summary>model.evaluate: loss, accuracy and the confusion matrix (rows: true class).</summary>
    public Evaluation Evaluate(Dataset set)
    {
        // The test set is read apart from the training set: it must fit the model as well.
        CheckCompatible(_graph, set);
        if (_settings.TestTimeFlip && _graph.Input.OutputShape is not Shape.Image)
            throw new DataError(set.Name, "'tta flip' mirrors images, and the model's input is a vector; remove 'tta flip'");
        if (_settings.TestTimeShift > 0 && _graph.Input.OutputShape is not Shape.Image)
            throw new DataError(set.Name, "'tta shift' moves images, and the model's input is a vector; remove 'tta shift'");
        // With a moving average, evaluation runs on the averaged weights (swapped back after).
        _average?.Swap();
        try { return EvaluateWeights(set); }
        finally { _average?.Swap(); }
    }

    /// <summary>The test-time views and their weights: the image (and its mirror with `tta
    /// flip`) share 1, or 1/2 with `tta shift N`, whose moved views (N and -N pixels on both
    /// axes, each mirrored too with flip) share the other 1/2.</summary>
    private static (bool Mirror, int Shift, float Weight)[] ViewsOf(TrainingSettings settings)
    {
        bool[] mirrors = settings.TestTimeFlip ? [false, true] : [false];
        int n = settings.TestTimeShift;
        var views = new List<(bool, int, float)>();
        float unmoved = n > 0 ? 0.5f : 1f;
        foreach (var m in mirrors) views.Add((m, 0, unmoved / mirrors.Length));
        if (n > 0)
            foreach (var d in (int[])[n, -n])
                foreach (var m in mirrors) views.Add((m, d, 0.5f / (2 * mirrors.Length)));
        return [.. views];
    }

    /// <summary>Mirrors each of the first `count` examples of the input left to right.</summary>
    private static void Mirror(Network<float> network, Dataset set, int count)
    {
        int h = set.Height, w = set.Width, c = set.Channels;
        var input = network.Input;
        for (int i = 0; i < count; i++)
            for (int y = 0; y < h; y++)
            {
                var row = input.Slice(((i * h) + y) * w * c, w * c);
                for (int a = 0, b = w - 1; a < b; a++, b--)
                    for (int k = 0; k < c; k++) (row[a * c + k], row[b * c + k]) = (row[b * c + k], row[a * c + k]);
            }
    }

    private Evaluation EvaluateWeights(Dataset set)
    {
        var network = Inference();
        int batch = network.BatchSize;
        // rows: true class; columns: predicted class, and one more for a prediction outside the
        // data's classes when the model has more outputs than the data has classes
        int per0 = network.OutputSize;
        // Past MaxConfusionClasses the matrix is neither readable nor small (65,536 classes
        // would take 17 GB): it is left empty, and only the loss and accuracy are reported.
        var confusion = _classes <= MaxConfusionClasses ? new int[_classes, per0 > _classes ? _classes + 1 : _classes] : new int[0, 0];
        double lossSum = 0; long correct = 0;
        var indices = new int[batch];
        int per = network.OutputSize;
        for (int start = 0; start < set.Count; start += batch)
        {
            int count = Math.Min(batch, set.Count - start);
            for (int i = 0; i < count; i++) indices[i] = start + i;
            Fill(network, set, indices.AsSpan(0, count));
            network.Rows = count;
            network.Forward(training: false);
            var (loss, right) = Score(network, count);
            var output = network.Output;
            if (_views.Length > 1)
            {
                // the weighted mean of the views' outputs decides; the loss is the weighted mean
                // of the views' losses
                int size = set.ExampleSize;
                var input = network.Input;
                input.Slice(0, count * size).CopyTo(_source);
                float first = _views[0].Weight;
                for (int i = 0; i < count * per; i++) _mixed[i] = first * output[i];
                loss *= first;
                for (int v = 1; v < _views.Length; v++)
                {
                    var (mirror, shift, weight) = _views[v];
                    _source.AsSpan(0, count * size).CopyTo(input);
                    // moved, then mirrored (airbench: infer_mirror of the translated batch)
                    if (shift != 0)
                        for (int i = 0; i < count; i++) _shifter!.Translate(input.Slice(i * size, size), shift, shift);
                    if (mirror) Mirror(network, set, count);
                    network.Forward(training: false);
                    var (viewLoss, _) = Score(network, count);
                    loss += weight * viewLoss;
                    output = network.Output;
                    for (int i = 0; i < count * per; i++) _mixed[i] += weight * output[i];
                }
                output = _mixed;
                right = 0;
                for (int i = 0; i < count; i++) if (Predict(output.Slice(i * per, per)) == _labels[i]) right++;
            }
            lossSum += loss * count;
            correct += right;
            if (confusion.Length > 0)
                for (int i = 0; i < count; i++) confusion[_labels[i], Math.Min(Predict(output.Slice(i * per, per)), _classes)]++;
        }
        return new Evaluation(lossSum / set.Count, (double)correct / set.Count, confusion, set.ClassNames);
    }
}
