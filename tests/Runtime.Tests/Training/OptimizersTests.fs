module CnnDsl.Runtime.Tests.OptimizersTests

open System
open Xunit
open CnnDsl.Graph
open CnnDsl.Runtime
open CnnDsl.Runtime.Training
open CnnDsl.Runtime.Tests.TestSupport

let private parameter (name: string) (w: float32[]) (g: float32[]) =
    let p = Parameter<float32>(name, [| w.Length |], true)
    w.CopyTo(p.Value, 0)
    g.CopyTo(p.Gradient, 0)
    p

[<Fact>]
let ``adam's first steps follow Keras's formula`` () =
    let p = parameter "d/kernel" (Array.create 11 1.0f) (Array.create 11 0.5f)
    let adam = Optimizers(Optimizer.Adam (0.1, 0.9, 0.999, 1e-7), [ p ])
    adam.Update()
    // t = 1: m = 0.05, v = 0.00025, lr_t = 0.1 * sqrt(0.001) / 0.1; w = 1 - lr_t * m / (sqrt v + eps)
    let lrT = 0.1 * sqrt 0.001 / 0.1
    let expected = 1.0 - lrT * 0.05 / (sqrt 0.00025 + 1e-7)
    Assert.All(p.Value, fun v -> Assert.Equal(expected, float v, 5))

[<Fact>]
let ``sgd with momentum and nesterov`` () =
    let p = parameter "d/kernel" [| 1.0f |] [| 2.0f |]
    let sgd = Optimizers(Optimizer.Sgd (0.1, 0.5, false), [ p ])
    sgd.Update() // m = -0.2, w = 0.8
    sgd.Update() // m = 0.5 * -0.2 - 0.2 = -0.3, w = 0.5
    Assert.Equal(0.5f, p.Value[0], 5)
    let q = parameter "d/kernel" [| 1.0f |] [| 2.0f |]
    Optimizers(Optimizer.Sgd (0.1, 0.5, true), [ q ]).Update() // m = -0.2, w = 1 + 0.5 * -0.2 - 0.2
    Assert.Equal(0.7f, q.Value[0], 5)

[<Fact>]
let ``frozen parameters are not updated`` () =
    let p = Parameter<float32>("c/kernel", [| 2 |], false)
    p.Gradient[0] <- 1.0f
    Optimizers(Optimizer.Sgd (1.0, 0.0, false), [ p ]).Update()
    Assert.Equal(0.0f, p.Value[0])

// ---- trajectories against PyTorch (tests/Runtime.Tests/oracles/optimizers.py) ----

/// An optimizer as the reference script reads it (fields an optimizer does not have are 0).
type OracleCase =
    { name: string; optimizer: string; lr: float; momentum: float; nesterov: bool; beta1: float; beta2: float
      epsilon: float; rho: float; weight_decay: float; no_decay: string[]
      ``params``: {| name: string; value: float[] |}[]
      gradients: float[][][] }

let private steps = 30

/// A kernel of 37 values (whole vectors of the Adam path and a scalar tail) and a bias of 5 (no
/// weight decay), starting at magnitudes 0.5-1.5, and per step gradients that change sign and
/// size: scales from 1 down to 1e-4 (where epsilon's placement shows), and some exact zeros.
let private start, gradients =
    let rng = Random 15
    let sizes = [| "dense/kernel", 37; "dense/bias", 5 |]
    let start = sizes |> Array.map (fun (name, n) -> name, Array.init n (fun _ -> float32 ((0.5 + rng.NextDouble()) * (if rng.Next 2 = 0 then -1.0 else 1.0))))
    let scales = [| 1.0; 0.1; 1e-3; 1e-4; 0.5 |]
    let gradients =
        Array.init steps (fun t ->
            sizes |> Array.map (fun (_, n) ->
                Array.init n (fun j ->
                    if (t + j) % 7 = 3 then 0.0f
                    else float32 (scales[j % scales.Length] * (sin (0.9 * float t + float j) + 0.3 * (rng.NextDouble() - 0.5))))))
    start, gradients

let private describe (name: string) (o: Optimizer) (decay: float) =
    let case =
        { name = name; optimizer = ""; lr = 0.0; momentum = 0.0; nesterov = false; beta1 = 0.0; beta2 = 0.0; epsilon = 0.0; rho = 0.0
          weight_decay = decay; no_decay = [||]
          ``params`` = start |> Array.map (fun (n, v) -> {| name = n; value = Array.map float v |})
          gradients = gradients |> Array.map (Array.map (Array.map float)) }
    match o with
    | Optimizer.Sgd (lr, m, n) -> { case with optimizer = "sgd"; lr = lr; momentum = m; nesterov = n }
    | Optimizer.Adam (lr, b1, b2, e) -> { case with optimizer = "adam"; lr = lr; beta1 = b1; beta2 = b2; epsilon = e }
    | Optimizer.RmsProp (lr, rho, m, e) -> { case with optimizer = "rmsprop"; lr = lr; rho = rho; momentum = m; epsilon = e }
    | Optimizer.AdamW (lr, b1, b2, e, wd, ex) ->
        { case with optimizer = "adamw"; lr = lr; beta1 = b1; beta2 = b2; epsilon = e; weight_decay = wd; no_decay = Array.ofList ex }

/// Our optimizer's weights after every step, parameter by parameter.
let private trajectory (o: Optimizer) (decay: float) =
    let ps = start |> Array.map (fun (name, v) -> parameter name v (Array.zeroCreate v.Length))
    let optimizer = Optimizers(o, ps, decay)
    let path =
        [| for t in 0 .. steps - 1 do
            for i in 0 .. ps.Length - 1 do (gradients[t][i]).CopyTo(ps[i].Gradient, 0)
            optimizer.Update()
            yield ps |> Array.map (fun p -> Array.map float p.Value) |]
    Assert.Equal(int64 steps, optimizer.Step)
    path

let private cases =
    [ "sgd", Optimizer.Sgd (0.05, 0.0, false), 0.0
      "sgd with momentum", Optimizer.Sgd (0.05, 0.9, false), 0.0
      "sgd with Nesterov momentum", Optimizer.Sgd (0.05, 0.9, true), 0.0
      "sgd with momentum and weight decay", Optimizer.Sgd (0.05, 0.5, false), 0.1
      "adam, Keras's defaults at lr 0.01", Optimizer.Adam (0.01, 0.9, 0.999, 1e-7), 0.0
      "adam with a large epsilon", Optimizer.Adam (0.02, 0.8, 0.99, 1e-3), 0.0
      "adam with weight decay", Optimizer.Adam (0.01, 0.9, 0.999, 1e-7), 0.05
      "rmsprop, Keras's defaults at lr 0.01", Optimizer.RmsProp (0.01, 0.9, 0.0, 1e-7), 0.0
      "rmsprop with momentum and a large epsilon", Optimizer.RmsProp (0.01, 0.8, 0.9, 1e-3), 0.0
      "rmsprop with weight decay", Optimizer.RmsProp (0.005, 0.9, 0.0, 1e-7), 0.1
      "adamw, PyTorch's defaults at lr 0.01", Optimizer.AdamW (0.01, 0.9, 0.999, 1e-8, 0.01, []), 0.0
      "adamw with a large decay and epsilon", Optimizer.AdamW (0.02, 0.8, 0.99, 1e-3, 0.3, []), 0.0
      "adamw with biases excluded from decay", Optimizer.AdamW (0.01, 0.9, 0.999, 1e-8, 0.3, [ "biases" ]), 0.0 ]

[<Fact>]
let ``every optimizer follows PyTorch's trajectory over 30 steps of changing gradients`` () =
    let answer = oracle "optimizers.py" {| cases = [| for name, o, decay in cases -> describe name o decay |] |}
    let expected = [| for c in answer.GetProperty("trajectories").EnumerateArray() -> c |]
    let failures =
        [ for (name, o, decay), reference in Seq.zip cases expected do
            let ours = trajectory o decay
            let firstWrong =
                Seq.zip ours (reference.EnumerateArray())
                |> Seq.mapi (fun t (step, r) -> t, step, [| for p in r.EnumerateArray() -> numbers p |])
                |> Seq.tryPick (fun (t, step, r) ->
                    // float32 weights of magnitude ~1 against float64: 1e-5 of max(|w|, 1)
                    [ for i in 0 .. step.Length - 1 do
                        match (try assertRelative 1e-5 1.0 (sprintf "%s, step %d, %s" name (t + 1) (fst start[i])) r[i] step[i]; None
                               with e -> Some e.Message) with
                        | Some m -> yield m
                        | None -> () ] |> List.tryHead)
            match firstWrong with Some m -> yield m | None -> () ]
    if not failures.IsEmpty then failwith (String.concat "\n\n" failures)

[<Fact>]
let ``the state holds the slots each optimizer keeps, one per trainable parameter, and nothing else`` () =
    let state (o: Optimizer) =
        let ps = [ parameter "d/kernel" [| 1.0f; 2.0f |] [| 0.5f; 0.5f |]; parameter "d/bias" [| 0.0f |] [| 0.5f |]; Parameter<float32>("f/kernel", [| 3 |], false) ]
        let optimizer = Optimizers(o, ps)
        optimizer.Update()
        [ for name, values in optimizer.State -> name, values.Length ]
    Assert.Empty(state (Optimizer.Sgd (0.1, 0.0, false)))
    Assert.Equal<(string * int) list>([ "d/kernel/m", 2; "d/bias/m", 1 ], state (Optimizer.Sgd (0.1, 0.9, true)))
    Assert.Equal<(string * int) list>([ "d/kernel/m", 2; "d/bias/m", 1; "d/kernel/v", 2; "d/bias/v", 1 ], state (Optimizer.Adam (0.1, 0.9, 0.999, 1e-7)))
    Assert.Equal<(string * int) list>([ "d/kernel/v", 2; "d/bias/v", 1 ], state (Optimizer.RmsProp (0.1, 0.9, 0.0, 1e-7)))
    Assert.Equal<(string * int) list>([ "d/kernel/m", 2; "d/bias/m", 1; "d/kernel/v", 2; "d/bias/v", 1 ], state (Optimizer.AdamW (0.1, 0.9, 0.999, 1e-8, 0.01, [])))
    Assert.Equal<(string * int) list>([ "d/kernel/m", 2; "d/bias/m", 1; "d/kernel/v", 2; "d/bias/v", 1 ], state (Optimizer.RmsProp (0.1, 0.9, 0.5, 1e-7)))

[<Fact>]
let ``adamw's exclusions leave biases and batchnorm's gamma and beta undecayed, and decay the rest`` () =
    let names = [ "c/kernel"; "c/bias"; "bn/gamma"; "bn/beta" ]
    let decayed excluded = names |> List.map (fun n -> Optimizers.Decayed(n, excluded))
    Assert.Equal<bool list>([ true; true; true; true ], decayed [])
    Assert.Equal<bool list>([ true; false; true; true ], decayed [ "biases" ])
    Assert.Equal<bool list>([ true; false; false; false ], decayed [ "biases"; "batchnorm" ])
    // a zero gradient: only the decay moves the weights, by 1 - lr wd per step on decayed tensors
    let ps = names |> List.map (fun n -> parameter n [| 1.0f |] [| 0.0f |])
    let adamw = Optimizers(Optimizer.AdamW (0.1, 0.9, 0.999, 1e-8, 0.5, [ "batchnorm" ]), ps, 0.3)
    adamw.Update()
    Assert.Equal<float32 list>([ 0.95f; 0.95f; 1.0f; 1.0f ], ps |> List.map (fun p -> p.Value[0]))
