module CnnDsl.Runtime.Tests.DenseTests

open FsCheck.Xunit
open CnnDsl.Runtime.Tests.TestSupport
open CnnDsl.Runtime.Tests.GradientCheck

[<Cases 100>]
let ``dense gradients match finite differences`` (i0: byte) (u0: byte) (act: byte) (bias: bool) (b0: byte) =
    let activations = [| "linear"; "relu"; "sigmoid"; "tanh"; "softmax"; "elu 0.5"; "leakyrelu" |]
    assertGradients
        (sprintf "input %d\ndense %d %s %s" (1 + int i0 % 12) (1 + int u0 % 6) activations[int act % activations.Length] (if bias then "" else "nobias"))
        (1 + int b0 % 3)

[<Cases 100>]
let ``dense after an image flattens in NHWC order`` (c0: byte) =
    assertGradients (sprintf "input 3x2x%d\ndense 3" (1 + int c0 % 3)) 2

/// Checkpoints find tensors by these names (Keras's), and `nobias` leaves the bias out.
[<Xunit.Fact>]
let ``dense tensors are named as Keras names them, and nobias has no bias`` () =
    let names text = [ for p in (network text 1).Layers[1].Parameters -> p.Name ]
    Xunit.Assert.Equal<string list>([ "dense/kernel"; "dense/bias" ], names "input 3\ndense 2")
    Xunit.Assert.Equal<string list>([ "dense/kernel" ], names "input 3\ndense 2 nobias")
