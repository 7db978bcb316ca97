// A program outside the repository that uses CnnDsl only through its NuGet package CnnDsl
// (PackageTests builds it in a temporary folder against the freshly packed ones): it loads a
// model file through the public API and prints its summary, checks a broken model (the
// diagnostics as values), and says which native parts the runtime found: the helpers come
// with the CnnDsl.Runtime package, a dependency of CnnDsl, in runtimes/RID/native.
using CnnDsl;

var model = Model.Load(args[0]);
var summary = model.Summary();
Console.WriteLine($"model: {model}");
Console.WriteLine($"layers: {summary.Layers.Count}");
Console.WriteLine($"parameters: {summary.TotalParameters}");
Console.WriteLine(summary);

var broken = Model.CheckText("input 28x28x1\nconv 8 5x5\nmaxpool 40\ndense 10 softmax\n", "broken.cnn");
Console.WriteLine($"broken model succeeded: {broken.Succeeded}");
foreach (var d in broken.Diagnostics)
    Console.WriteLine($"diagnostic: {d.File}:{d.Line}:{d.Column} {d.Code} {d.Severity}: {d.Message}");

// The runtime's native helpers: the public API does not name them, the runtime's own types do.
Console.WriteLine($"gemm: {CnnDsl.Runtime.Blas.Gemm.Current.Description}");
Console.WriteLine($"denormals flushed: {CnnDsl.Runtime.Denormals.Enabled}");
return 0;
