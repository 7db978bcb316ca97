namespace CnnDsl.Runtime;

/// <summary>The worst disagreement found in one gradient: of a layer's output (what the layers
/// after it pass back), of a parameter tensor, or of the network's input.</summary>
public sealed record GradientError(string Layer, string Tensor, double Worst, int Index, double Analytic, double Numerical);

/// <summary>
/// PyTorch's gradcheck for a whole network: every analytic gradient against central finite
/// differences, in double precision, with the loss L = sum(output * R) for a fixed random R.
/// It checks each layer's output gradient (by perturbing that output and running the layers
/// after it), each parameter tensor and the input. The error is
/// |analytic - numerical| / max(1, |analytic|, |numerical|).
/// </summary>
public static class GradientCheck
{
    public const double Epsilon = 1e-6;
    public const double Tolerance = 1e-6;

    public static List<GradientError> Run(Network<double> net, int seed, int samplesPerTensor) =>
        RunWithFault(net, seed, samplesPerTensor, null);

    /// <summary>Keeps the network's parameters (trained weights) instead of drawing random ones.</summary>
    public static bool KeepParameters { get; set; }

    /// <summary>As Run, with `fault` called around each layer's backward pass as the network's
    /// observer is: how tests (and `dsl gradcheck --break LAYER`) break a backward pass on purpose.</summary>
    public static List<GradientError> RunWithFault(Network<double> net, int seed, int samplesPerTensor, Action<int, bool>? fault)
    {
        var rng = new Random(seed);
        double Uniform() => rng.NextDouble() * 2 - 1;
        // Kernels keep their Glorot initialisation (uniform weights of 1 would saturate a deep
        // model's softmax, leaving gradients of 1e-50 that any check passes); biases and
        // batchnorm's scale and shift are drawn at random, not zero: a zero bias on a padded
        // cell puts relu exactly on its kink, where finite differences and the derivative disagree.
        if (!KeepParameters)
            foreach (var p in net.Parameters.Where(p => !p.Name.EndsWith("/kernel")))
                for (int i = 0; i < p.Value.Length; i++) p.Value[i] = Uniform() * 0.5;
        for (int i = 0; i < net.Input.Length; i++) net.Input[i] = Uniform();
        var weights = new double[net.Output.Length];
        for (int i = 0; i < weights.Length; i++) weights[i] = Uniform();

        double Loss(int from)
        {
            net.ForwardFrom(from, training: true);
            var output = net.Output;
            double sum = 0;
            for (int i = 0; i < output.Length; i++) sum += output[i] * weights[i];
            return sum;
        }

        Loss(0);
        var layers = net.Layers;
        // The analytic gradient of each layer's output, complete just before its own backward.
        var outputGradients = new double[layers.Count][];
        net.BackwardObserver = (i, after) =>
        {
            if (!after) outputGradients[i] = layers[i].Output.Gradient.ToArray();
            fault?.Invoke(i, after);
        };
        weights.CopyTo(net.OutputGradient);
        net.OutputLayer.ActivationFusedIntoLoss = false;
        net.Backward();
        net.BackwardObserver = null;
        outputGradients[0] = net.InputGradient.ToArray();
        var parameterGradients = net.Parameters.Where(p => p.Trainable).ToDictionary(p => p, p => p.Gradient.ToArray());

        var results = new List<GradientError>();
        double baseLoss = Loss(0);
        GradientError? Check(string layer, string tensor, double[] values, double[] analytic, int from, bool skipZeros)
        {
            // A layer output that relu clipped to exactly 0 feeds later layers the same value as
            // every other clipped cell (a 1x1 conv maps them all to its bias), and the exact ties
            // this makes in a max pool are kinks in several directions at once: skipped.
            var candidates = Enumerable.Range(0, analytic.Length).Where(i => !skipZeros || values[i] != 0).ToArray();
            if (candidates.Length == 0) return null;
            var indices = candidates.Length <= samplesPerTensor
                ? candidates
                : Enumerable.Range(0, samplesPerTensor).Select(_ => candidates[rng.Next(candidates.Length)]).Distinct().ToArray();
            GradientError? worst = null;
            foreach (var i in indices)
            {
                var original = values[i];
                values[i] = original + Epsilon;
                var plus = Loss(from);
                values[i] = original - Epsilon;
                var minus = Loss(from);
                values[i] = original;
                var numerical = (plus - minus) / (2 * Epsilon);
                // Within epsilon of a kink (relu at 0, a tie in a max pool) the slopes on the two
                // sides differ and there is no derivative to compare with: such a point is skipped
                // when the slopes jump (by far more than curvature over epsilon could make them) or
                // by as much as the disagreement. A wrong gradient at a smooth point has equal
                // one-sided slopes, and is reported.
                double left = (baseLoss - minus) / Epsilon, right = (plus - baseLoss) / Epsilon;
                var error = Math.Abs(analytic[i] - numerical) / Math.Max(1, Math.Max(Math.Abs(analytic[i]), Math.Abs(numerical)));
                // a NaN or infinite gradient (or loss) is the worst error, never a pass: NaN compares false
                if (!double.IsFinite(error)) error = double.PositiveInfinity;
                double jump = Math.Abs(left - right);
                bool kink = jump >= Math.Abs(analytic[i] - numerical) || jump > 1e-3 * Math.Max(1, Math.Max(Math.Abs(left), Math.Abs(right)));
                if (error > Tolerance && error < double.PositiveInfinity && kink) continue;
                if (worst == null || error > worst.Worst) worst = new GradientError(layer, tensor, error, i, analytic[i], numerical);
            }
            Loss(0); // restore every output
            return worst;
        }

        // Layer outputs (the input layer's output is the network's input), last layer excluded:
        // its gradient is R itself.
        for (int i = 0; i < layers.Count - 1; i++)
        {
            var layer = layers[i];
            var r = Check(layer.Node.Name, i == 0 ? "input" : "output", layer.Output.Value, outputGradients[i], i + 1, skipZeros: i > 0);
            if (r != null) results.Add(r);
        }
        foreach (var layer in layers)
            foreach (var p in layer.Parameters.Where(p => p.Trainable))
            {
                var r = Check(layer.Node.Name, p.Name, p.Value, parameterGradients[p], layer.Node.Id, skipZeros: false);
                if (r != null) results.Add(r);
            }
        return results;
    }

    /// <summary>The layer whose backward pass is wrong, from the errors: a layer whose
    /// parameters' gradients are wrong, or the first layer (from the output) that passes a
    /// wrong gradient to its input while receiving a right one.</summary>
    public static string? Culprit(Network<double> net, IReadOnlyList<GradientError> errors)
    {
        var bad = errors.Where(e => e.Worst > Tolerance).ToList();
        if (bad.Count == 0) return null;
        var layers = net.Layers;
        bool OutputWrong(int id) => bad.Any(e => e.Layer == layers[id].Node.Name && (e.Tensor == "output" || e.Tensor == "input"));
        for (int i = layers.Count - 1; i > 0; i--)
        {
            var node = layers[i].Node;
            bool paramsWrong = bad.Any(e => e.Layer == node.Name && e.Tensor.Contains('/'));
            bool passesWrong = node.Inputs.Any(OutputWrong);
            bool receivesRight = i == layers.Count - 1 || !OutputWrong(i);
            if (receivesRight && (paramsWrong || passesWrong)) return node.Name;
        }
        return bad[0].Layer;
    }
}
