module CnnDsl.Runtime.Tests.BatchNormTests

open System
open FsCheck.Xunit
open Xunit
open CnnDsl.Graph
open CnnDsl.Runtime
open CnnDsl.Runtime.Tests.TestSupport
open CnnDsl.Runtime.Tests.GradientCheck

/// With no activation, a ReLU (fused into batchnorm's own passes) or another activation (applied
/// after them).
[<Cases 100>]
let ``batchnorm gradients match finite differences in training`` (h0: byte) (c0: byte) (b0: byte) (act: byte) =
    let activation = [| ""; "relu"; "tanh"; "elu 0.5" |][int act % 4]
    assertGradients (sprintf "input %dx2x%d\nbatchnorm %s" (1 + int h0 % 3) (1 + int c0 % 3) activation) (2 + int b0 % 2)

[<Fact>]
let ``batchnorm normalises each channel over the batch, and inference uses the moving statistics`` () =
    let net = network "input 1x1x1\nbatchnorm" 4
    copyFrom [| 1.; 2.; 3.; 4. |] net.Input
    net.Forward(true)
    let std = sqrt (1.25 + 0.001)
    assertClose 1e-12 [| -1.5 / std; -0.5 / std; 0.5 / std; 1.5 / std |] (net.Output.ToArray())
    // moving = 0.99 * initial + 0.01 * batch (Keras's momentum): mean 0.025, variance 0.99 + 0.0125
    net.Forward(false)
    let mean, variance = 0.025, 0.99 + 0.0125
    assertClose 1e-12 [| for x in 1. .. 4. -> (x - mean) / sqrt (variance + 0.001) |] (net.Output.ToArray())
    // a second step: 0.99 * 0.025 + 0.01 * 2.5 and 0.99 * 1.0025 + 0.01 * 1.25
    net.Forward(true)
    net.Forward(false)
    let mean, variance = 0.04975, 1.004975
    assertClose 1e-12 [| for x in 1. .. 4. -> (x - mean) / sqrt (variance + 0.001) |] (net.Output.ToArray())

/// As Keras counts them: gamma and beta are trained, the moving mean and variance are not (no
/// optimizer or weight decay touches them).
[<Fact>]
let ``gamma and beta are trainable, the moving statistics are not`` () =
    let layer = (network "input 2x2x3\nbatchnorm" 2).Layers[1]
    Assert.Equal<string list>([ "batch_normalization/gamma"; "batch_normalization/beta" ], [ for p in layer.Parameters -> p.Name ])
    Assert.All(layer.Parameters, fun p -> Assert.True p.Trainable)
    Assert.Equal<string list>([ "batch_normalization/moving_mean"; "batch_normalization/moving_variance" ], [ for p in layer.State -> p.Name ])
    Assert.All(layer.State, fun p -> Assert.False p.Trainable)

[<Cases 100>]
let ``batchnorm gradients with enough channels for the vector path and a tail`` (c0: byte) =
    assertGradients (sprintf "input 2x2x%d\nbatchnorm" (5 + int c0 % 8)) 2

/// Batch normalisation in training by its definition, written out on its own in double:
/// per channel over batch x height x width, mean and (biased) variance, y = gamma xhat + beta
/// (then ReLU), and backward through the batch statistics:
/// dx = gamma / sqrt(var + eps) / N (N dy - sum dy - xhat sum(dy xhat)), dgamma = sum(dy xhat),
/// dbeta = sum dy; the moving averages move to momentum * old + (1 - momentum) * batch statistic.
let private definition (x: float[]) (dy: float[]) (c: int) (gamma: float[]) (beta: float[]) (eps: float) (momentum: float) (relu: bool) =
    let n = x.Length / c
    let y, dx = Array.zeroCreate x.Length, Array.zeroCreate x.Length
    let dgamma, dbeta, movingMean, movingVariance = Array.zeroCreate c, Array.zeroCreate c, Array.zeroCreate c, Array.zeroCreate c
    for ch in 0 .. c - 1 do
        let at = [| for i in 0 .. n - 1 -> i * c + ch |]
        let mean = (at |> Array.sumBy (fun i -> x[i])) / float n
        let variance = (at |> Array.sumBy (fun i -> (x[i] - mean) ** 2.0)) / float n
        let std = sqrt (variance + eps)
        let xhat i = (x[i] - mean) / std
        for i in at do y[i] <- (let v = gamma[ch] * xhat i + beta[ch] in if relu then max v 0.0 else v)
        let g i = if relu && y[i] <= 0.0 then 0.0 else dy[i]
        dbeta[ch] <- at |> Array.sumBy g
        dgamma[ch] <- at |> Array.sumBy (fun i -> g i * xhat i)
        for i in at do dx[i] <- gamma[ch] / std / float n * (float n * g i - dbeta[ch] - xhat i * dgamma[ch])
        movingMean[ch] <- (1.0 - momentum) * mean
        movingVariance[ch] <- momentum + (1.0 - momentum) * variance
    y, dx, dgamma, dbeta, movingMean, movingVariance

/// The float path runs whole vectors of 8 (or 16) over a channel pattern of lcm(C, W) values, with
/// a scalar tail; the double path 4 at a time. Both must give the definition's outputs, gradients
/// and moving statistics, for channel counts below, at and between vector widths (with and
/// without a fused ReLU).
[<Cases 100>]
let ``float and double batchnorm equal the definition for any channel count`` (c0: byte) (h0: byte) (w0: byte) (b0: byte) (relu: bool) (seed: int) twoThreads =
    // (on two threads, and where an image is a whole number of the pattern's periods, the work is
    // split by image, each image's sums in their own accumulators)
    let c, h, w, batch = 1 + int c0 % 20, 1 + int h0 % 3, 1 + int w0 % 3, 2 + int b0 % 3
    let g = graph (sprintf "input %dx%dx%d\nbatchnorm %s" h w c (if relu then "relu" else ""))
    let settings = match g.Output.Kind with LayerKind.BatchNormalization b -> b | k -> failwithf "%A" k
    let rng = Random seed
    // float32 values, so that both networks and the definition see the same numbers
    let values n scale shift = Array.init n (fun _ -> float (float32 (shift + scale * (rng.NextDouble() - 0.5))))
    let x, dy = values (batch * h * w * c) 4.0 0.3, values (batch * h * w * c) 1.0 0.0
    let gamma, beta = values c 1.0 1.0, values c 1.0 0.0
    let y, dx, dgamma, dbeta, movingMean, movingVariance = definition x dy c gamma beta settings.Epsilon settings.Momentum relu
    let check (tolerance: float) (net: Network<'T>) (toT: float -> 'T) (ofT: 'T -> float) =
        let named (suffix: string) = Seq.append net.Layers[1].Parameters net.Layers[1].State |> Seq.find (fun p -> p.Name.EndsWith suffix)
        for i in 0 .. x.Length - 1 do net.Input[i] <- toT x[i]
        gamma |> Array.iteri (fun i v -> (named "/gamma").Value[i] <- toT v)
        beta |> Array.iteri (fun i v -> (named "/beta").Value[i] <- toT v)
        net.Forward(true)
        for i in 0 .. dy.Length - 1 do net.OutputGradient[i] <- toT dy[i]
        net.Backward()
        assertClose tolerance y (net.Output.ToArray() |> Array.map ofT)
        assertClose tolerance dx (net.InputGradient.ToArray() |> Array.map ofT)
        assertClose tolerance dgamma ((named "/gamma").Gradient |> Array.map ofT)
        assertClose tolerance dbeta ((named "/beta").Gradient |> Array.map ofT)
        assertClose tolerance movingMean ((named "/moving_mean").Value |> Array.map ofT)
        assertClose tolerance movingVariance ((named "/moving_variance").Value |> Array.map ofT)
    (if twoThreads then onTwoThreads else fun f -> f ()) <| fun () ->
    check 1e-4 (Network<float32>(g, batch, 1, true)) float32 float
    check 1e-10 (Network<double>(g, batch, 1, true)) id id
