// A program outside the repository that uses CnnDsl only through its NuGet packages
// (PackagingTests builds it in a temporary folder against the freshly packed ones): it
// compiles a model file with the front end, counts its parameters, runs one forward pass on
// the runtime and says which native parts the runtime found.
using CnnDsl.Dsl;
using CnnDsl.Graph;
using CnnDsl.Runtime;
using CnnDsl.Runtime.Blas;

var text = File.ReadAllText(args[0]);
var compiled = Frontend.compile(text);
if (compiled.IsError)
{
    foreach (var d in compiled.ErrorValue)
        Console.WriteLine($"{d.Pos.Line}:{d.Pos.Col}: {d.Code}: {d.Message}");
    return 1;
}
var graph = compiled.ResultValue.Item1;
long parameters = graph.Nodes.Sum(node => Cost.parameters(node).Item1 + Cost.parameters(node).Item2);
Console.WriteLine($"layers: {graph.Nodes.Length}");
Console.WriteLine($"parameters: {parameters}");

const int batch = 2;
var network = new Network<float>(graph, batch, seed: 1);
network.Input.Fill(0.5f);
network.Forward(training: false);
var output = network.Output;
for (var row = 0; row < batch; row++)
{
    var probabilities = output.Slice(row * network.OutputSize, network.OutputSize);
    float sum = 0;
    foreach (var p in probabilities) sum += p;
    Console.WriteLine($"row {row}: {network.OutputSize} outputs summing to {sum:F4}");
}
Console.WriteLine($"gemm: {Gemm.Current.Description}");
Console.WriteLine($"denormals flushed: {Denormals.Enabled}");
return 0;
