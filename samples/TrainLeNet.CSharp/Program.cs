// Trains LeNet (models/lenet.cnn) through the CnnDsl library, then predicts one image.
//
//   dotnet run --project samples/TrainLeNet.CSharp -c Release -- [--epochs N] [--limit N]
//       [--data NAME|FOLDER] [--out DIR] [--image FILE] [--model FILE]
//
// Defaults: one epoch on the model's data set (Fashion-MNIST), all of it, into runs/lenet-csharp;
// then the first test image (or --image FILE) is classified. Ctrl+C stops at the end of a batch
// and saves the checkpoint; run again to start over (Force), as the sample does not resume.
using CnnDsl;

var settings = Arguments.Parse(args);
try
{
    var model = Model.Load(settings.Model ?? Arguments.FindModel("lenet.cnn"));
    Console.WriteLine($"Model {model}, {model.Summary().TotalParameters:N0} parameters");

    // The data once, in memory: for training, and for a test image to classify.
    var data = model.LoadData(settings.Data);
    if (settings.Limit is int limit) data = data.Limit(limit);
    Console.WriteLine($"Data {data.Train.Name}: {data.Train.Count} training, {data.Test.Count} test examples of {data.Train.ShapeText}");

    using var stop = new CancellationTokenSource();
    Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.Cancel(); };
    var options = new TrainingOptions
    {
        TrainingData = data,
        Epochs = settings.Epochs,
        OutputFolder = settings.Out ?? Path.Combine("runs", "lenet-csharp"),
        Force = true,
        ProgressInterval = TimeSpan.FromSeconds(1),
    };
    var result = model.Train(options,
        new ConsoleProgress<TrainingProgress>(p => Console.Error.Write($"\r  batch {p.Batch}/{p.Batches} - loss {p.Loss:F4}   ")),
        new ConsoleProgress<EpochResult>(epoch => { Console.Error.Write("\r"); Console.WriteLine(epoch); }),
        stop.Token);
    if (!result.Succeeded)
    {
        Console.Error.WriteLine(result.Message);
        return 1;
    }
    if (result.Test is { } test)
        Console.WriteLine($"Test: loss {test.Loss:F4} - accuracy {test.Accuracy:F4} ({test.Count} examples)");
    var checkpoint = result.BestCheckpoint ?? result.LastCheckpoint;
    Console.WriteLine($"Checkpoint: {checkpoint}");

    // A predictor is thread-safe: one can serve a whole web application.
    var predictor = new Predictor(model, checkpoint);
    Prediction prediction;
    if (settings.Image is string image)
    {
        prediction = predictor.PredictFile(image);
        Console.Write($"Image {image}: ");
    }
    else
    {
        prediction = predictor.Predict(data.Test.GetExample(0));
        Console.Write($"Test image 0 ({data.Test.ClassNames[data.Test.Labels[0]]}): ");
    }
    Console.WriteLine($"predicted {prediction.BestClass} ({prediction.BestProbability:F4})");
    for (int i = 0; i < prediction.Probabilities.Count; i++)
        Console.WriteLine($"  {predictor.ClassNames[i]}: {prediction.Probabilities[i]:F4}");
    return 0;
}
catch (CnnDslException e)
{
    // Bad input (a model with mistakes, a missing data set or checkpoint): the message says what to do.
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}

/// <summary>Reports at once on the training thread (Progress&lt;T&gt; would post to the thread pool, out of order).</summary>
sealed class ConsoleProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}

sealed record Arguments(int? Epochs, int? Limit, string? Data, string? Out, string? Image, string? Model)
{
    public static Arguments Parse(string[] args)
    {
        string? Value(string name)
        {
            int i = Array.IndexOf(args, name);
            return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
        }
        int? Number(string name) => Value(name) is string s ? int.Parse(s) : null;
        return new Arguments(Number("--epochs") ?? 1, Number("--limit"), Value("--data"), Value("--out"), Value("--image"), Value("--model"));
    }

    /// <summary>models/NAME in this folder or the nearest one above that has it.</summary>
    public static string FindModel(string name)
    {
        for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir != null; dir = dir.Parent)
        {
            var path = Path.Combine(dir.FullName, "models", name);
            if (File.Exists(path)) return path;
        }
        return Path.Combine("models", name);
    }
}
