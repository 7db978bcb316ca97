// The inference network's float error (batchnorm folded into convolutions) against a double
// training network in inference mode, and the float training network's, on the models of
// tests/Runtime.Tests/InferencePlanTests.fs (20 random weight sets each; error relative to the
// output's largest magnitude). Build the tests first (dotnet build tests/Runtime.Tests -c Release);
// run: dotnet fsi bench/inference-error.fsx
#r "../tests/Runtime.Tests/bin/Release/net10.0/CnnDsl.Graph.dll"
#r "../tests/Runtime.Tests/bin/Release/net10.0/CnnDsl.Dsl.dll"
#r "../tests/Runtime.Tests/bin/Release/net10.0/CnnDsl.Runtime.dll"
#r "../tests/Runtime.Tests/bin/Release/net10.0/MathNet.Numerics.dll"
#r "../tests/Runtime.Tests/bin/Release/net10.0/FParsec.dll"
#r "../tests/Runtime.Tests/bin/Release/net10.0/FParsecCS.dll"
#r "../tests/Runtime.Tests/bin/Release/net10.0/Runtime.Tests.dll"
open System
open CnnDsl.Runtime
let graph text = match CnnDsl.Dsl.Frontend.compile text with Ok (g, _) -> g | Error _ -> failwith text
let models = CnnDsl.Runtime.Tests.InferencePlanTests.models
for text in models do
    let g = graph text
    let mutable worst = 0.0
    let mutable plain = 0.0
    for seed in 1 .. 20 do
        let d = Network<double>(g, 8, 1)
        let f = Network<float32>(g, 8, 0, inference = true)
        let t = Network<float32>(g, 8, 0)
        let rng = Random seed
        for p in d.Weights do
            for i in 0 .. p.Value.Length - 1 do
                p.Value[i] <- if p.Name.EndsWith "moving_variance" then 0.2 + rng.NextDouble() elif p.Name.EndsWith "gamma" then 0.5 + rng.NextDouble() else (rng.NextDouble() - 0.5) * 0.6
        Seq.iter2 (fun (a: Parameter<double>) (b: Parameter<float32>) -> for i in 0 .. a.Value.Length - 1 do b.Value[i] <- float32 a.Value[i]) d.Weights f.Weights
        Seq.iter2 (fun (a: Parameter<double>) (b: Parameter<float32>) -> for i in 0 .. a.Value.Length - 1 do b.Value[i] <- float32 a.Value[i]) d.Weights t.Weights
        for i in 0 .. d.Input.Length - 1 do
            let v = float32 (rng.NextDouble() * 2.0 - 1.0)
            d.Input[i] <- float v; f.Input[i] <- v; t.Input[i] <- v
        d.Forward(false); f.Forward(false); t.Forward(false)
        let y = d.Output.ToArray()
        let scale = y |> Array.map abs |> Array.max
        for i in 0 .. y.Length - 1 do
            worst <- max worst (abs (y[i] - float f.Output[i]) / scale)
            plain <- max plain (abs (y[i] - float t.Output[i]) / scale)
    printfn "%-60s worst |float inference - double| / max|y| = %.2g (float training network, unfolded: %.2g)" (text.Split('\n').[1] + " ...") worst plain
