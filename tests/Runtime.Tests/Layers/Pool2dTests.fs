module CnnDsl.Runtime.Tests.Pool2dTests

open System
open Xunit
open FsCheck.Xunit
open CnnDsl.Graph
open CnnDsl.Runtime
open CnnDsl.Runtime.Tests.TestSupport
open CnnDsl.Runtime.Tests.GradientCheck

/// A pooling layer from arbitrary (shrinkable) integers: each axis its own window (1-5), stride
/// (1-3, windows smaller than strides too) and explicit padding (less than the window, as
/// TensorFlow and ONNX require), or none, or `same`; the input at least as large as the window.
let private poolModel (kind: byte) (k0: byte) (s0: byte) (p0: byte) (mode: byte) (extra: byte) (c: int) =
    let kinds = [| "maxpool"; "avgpool"; "minpool" |]
    let kh, kw = 1 + int k0 % 5, 1 + int k0 / 5 % 5
    let sh, sw = 1 + int s0 % 3, 1 + int s0 / 3 % 3
    let h, w = kh + int extra % 4, kw + int extra / 4 % 4
    let padding = match int mode % 3 with 0 -> "" | 1 -> "same" | _ -> sprintf "p%dx%d" (int p0 % kh) (int p0 / 5 % kw)
    sprintf "input %dx%dx%d\n%s %dx%d s%dx%d %s" h w c kinds[int kind % 3] kh kw sh sw padding

[<Cases 100>]
let ``pooling gradients match finite differences`` (kind: byte) (k0: byte) (s0: byte) (p0: byte) (mode: byte) (extra: byte) (c0: byte) =
    assertGradients (poolModel kind k0 s0 p0 mode extra (1 + int c0 % 3)) 2

let private seed000 = [| 1.;5.;3.;7.; 7.;3.;9.;2.; 3.;5.;8.;4.; 8.;7.;3.;5. |]

[<Fact>]
let ``seed 002: max pooling examples`` () =
    assertClose 0.0 [| 123.; 253.; 187.; 165. |]
        (forward "input 4x4x1\nmaxpool 2" [| 4.;123.;1.;34.; 56.;99.;222.;253.; 45.;122.;165.;12.; 21.;187.;133.;124. |])
    assertClose 0.0 [| 9.; 6.; 9.; 8. |] (forward "input 4x4x1\nmaxpool 2" [| 1.;3.;6.;2.; 9.;5.;6.;5.; 9.;1.;1.;2.; 0.;2.;8.;2. |])

[<Fact>]
let ``seed 000: max pooling forward and backward with MSE against ones`` () =
    let net = network "input 4x4x1\nmaxpool 2 s2" 1
    copyFrom seed000 net.Input
    net.Forward(true)
    assertClose 0.0 [| 7.; 9.; 8.; 8. |] (net.Output.ToArray())
    Assert.Equal(49.5, Losses.Compute(Loss.MeanSquaredError, net, ReadOnlySpan (Array.create 4 1.0)), 12)
    assertClose 1e-12 [| 3.; 4.; 3.5; 3.5 |] (net.OutputGradient.ToArray())
    net.Backward()
    // routed to the arg-max cells only: 7 (row 1, col 0), 9 (row 1, col 2), 8 (row 3, col 0), 8 (row 2, col 2)
    assertClose 1e-12 [| 0.;0.;0.;0.; 3.;0.;4.;0.; 0.;0.;3.5;0.; 3.5;0.;0.;0. |] (net.InputGradient.ToArray())

[<Fact>]
let ``seed 000: average pooling forward and backward with MSE against ones`` () =
    let net = network "input 4x4x1\navgpool 2 s2" 1
    copyFrom seed000 net.Input
    net.Forward(true)
    assertClose 1e-12 [| 4.; 5.25; 5.75; 5. |] (net.Output.ToArray())
    Assert.Equal(16.40625, Losses.Compute(Loss.MeanSquaredError, net, ReadOnlySpan (Array.create 4 1.0)), 12)
    net.Backward()
    let block r c = [| 0.375; 0.53125; 0.59375; 0.5 |][(r / 2) * 2 + c / 2]
    assertClose 1e-12 (Array.init 16 (fun i -> block (i / 4) (i % 4))) (net.InputGradient.ToArray())

/// Pooling by its definition, written out on its own in double: each output is the max, min or
/// mean of its window's cells inside the input (padding cells take no part), and backward sends
/// the output's gradient to the chosen cell (the first in row order on a tie) or spreads it
/// evenly over the window's cells.
let private definition (op: string) (x: float[]) (dy: float[]) (batch, h, w, c) (win: Window) (oh, ow) =
    let y = Array.zeroCreate (batch * oh * ow * c)
    let dx = Array.zeroCreate x.Length
    for b in 0 .. batch - 1 do
        for oy in 0 .. oh - 1 do
            for ox in 0 .. ow - 1 do
                for ch in 0 .. c - 1 do
                    let cells =
                        [ for ky in 0 .. win.KernelH - 1 do
                            for kx in 0 .. win.KernelW - 1 do
                                let iy, ix = oy * win.StrideH - win.Padding.Top + ky, ox * win.StrideW - win.Padding.Left + kx
                                if iy >= 0 && iy < h && ix >= 0 && ix < w then yield ((b * h + iy) * w + ix) * c + ch ]
                    let o = ((b * oh + oy) * ow + ox) * c + ch
                    if op = "avgpool" then
                        y[o] <- (cells |> List.sumBy (fun i -> x[i])) / float cells.Length
                        for i in cells do dx[i] <- dx[i] + dy[o] / float cells.Length
                    else
                        let better a i = if (if op = "maxpool" then x[i] > x[a] else x[i] < x[a]) then i else a
                        let chosen = List.reduce better cells
                        y[o] <- x[chosen]
                        dx[chosen] <- dx[chosen] + dy[o]
    y, dx

/// Runs a pooling model's float and double networks against the definition: outputs and input
/// gradients. The float network runs on one thread, then splits its batch of 3 over two (pieces
/// that start past the first image); with `ties`, inputs take one of five values, so that windows
/// hold equal maxima and minima (the first cell in row order must win, as in the definition).
let private assertPoolMatchesDefinition (text: string) (ties: bool) (seed: int) =
    let g = graph text
    let node = g.Output
    let win = match node.Kind with LayerKind.Pool p -> p.Window | k -> failwithf "%A" k
    let struct (h, w, c) = Shapes.Hwc node.InputShapes.Head
    let struct (oh, ow, _) = Shapes.Hwc node.OutputShape
    let op = (text.Split('\n')[1]).Split(' ')[0]
    let rng = Random seed
    let batch = 3
    // float32 values, so that both networks and the definition see the same inputs
    let value () = if ties then float (rng.Next 5 - 2) / 2.0 else float (float32 (rng.NextDouble() - 0.5))
    let x = Array.init (batch * h * w * c) (fun _ -> value ())
    let dy = Array.init (batch * oh * ow * c) (fun _ -> float (float32 (rng.NextDouble() - 0.5)))
    let y, dx = definition op x dy (batch, h, w, c) win (oh, ow)
    let message = sprintf "%s (ties %b)" (text.Replace('\n', ';')) ties
    let float (threads: string) =
        let single = Network<float32>(g, batch, 1, true)
        for i in 0 .. x.Length - 1 do single.Input[i] <- float32 x[i]
        single.Forward(true)
        for i in 0 .. dy.Length - 1 do single.OutputGradient[i] <- float32 dy[i]
        single.Backward()
        assertRelative 1e-6 1.0 (message + threads + " float output") y (single.Output.ToArray() |> Array.map float)
        assertRelative 1e-6 1.0 (message + threads + " float input gradient") dx (single.InputGradient.ToArray() |> Array.map float)
    // one thread: the narrow path's vectors may run past an image into the next (a piece of
    // one image on two threads stops them at its end, and takes the scalar path instead)
    float ", one thread"
    onTwoThreads (fun () -> float ", two threads")
    let twice = Network<double>(g, batch, 1, true)
    copyFrom x twice.Input
    twice.Forward(true)
    copyFrom dy twice.OutputGradient
    twice.Backward()
    assertRelative 1e-12 1.0 (message + " double output") y (twice.Output.ToArray())
    assertRelative 1e-12 1.0 (message + " double input gradient") dx (twice.InputGradient.ToArray())

/// The float path takes Vector<float>.Count channels at a time (fewer channels: a pixel's in one
/// vector, spilling into the next pixel's), the double path Vector<double>.Count: both must give
/// the definition's outputs and route its gradients, for channel counts below, at and between
/// vector widths and any window, stride and padding.
[<Cases 100>]
let ``float and double pooling equal the definition, outputs and input gradients`` (kind: byte) (k0: byte) (s0: byte) (p0: byte) (mode: byte) (extra: byte) (c0: byte) (seed: int) =
    assertPoolMatchesDefinition (poolModel kind k0 s0 p0 mode extra (1 + int c0 % 20)) (seed % 2 = 0) seed

/// Every window (1-3), stride (1-3), padding (none, `same`, each explicit amount below the
/// window) and input size (the window plus 0-2) on one axis, with the other axis held at a 2-cell
/// window: the windows that overrun the input's end under `same` (top padding 0, bottom 1), and
/// the strides that skip its last cells, which random cases reach only by chance. Narrow (3
/// channels, one vector over pixels) and wide (9 channels, a vector and a scalar remainder).
[<Fact>]
let ``every window, stride and padding of a small axis equals the definition`` () =
    let mutable seed = 0
    for op in [ "maxpool"; "avgpool"; "minpool" ] do
      for k in 1 .. 3 do
        for s in 1 .. 3 do
          for vertical in [ true; false ] do
            let paddings = [ ""; "same" ] @ [ for p in 0 .. k - 1 -> if vertical then sprintf "p%dx0" p else sprintf "p0x%d" p ]
            for padding in paddings do
              for extra in 0 .. 2 do
                for c in [ 3; 9 ] do
                  let n = k + extra
                  let text =
                      if vertical then sprintf "input %dx3x%d\n%s %dx2 s%dx1 %s" n c op k s padding
                      else sprintf "input 3x%dx%d\n%s 2x%d s1x%d %s" n c op k s padding
                  seed <- seed + 1
                  assertPoolMatchesDefinition text (seed % 2 = 0) seed
