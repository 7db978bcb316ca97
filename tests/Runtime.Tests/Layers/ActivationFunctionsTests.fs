module CnnDsl.Runtime.Tests.ActivationFunctionsTests

open Xunit
open FsCheck.Xunit
open CnnDsl.Runtime.Layers
open CnnDsl.Runtime.Tests.TestSupport
open CnnDsl.Runtime.Tests.GradientCheck

[<Fact>]
let ``seed 000: softmax of large logits is stable`` () =
    let row = [| 1000.0; 1001.0; 1002.0 |]
    ActivationFunctions.Softmax(System.Span row)
    assertClose 5e-5 [| 0.0900; 0.2447; 0.6652 |] row
    let single = [| 1000.0f; 1001.0f; 1002.0f |]
    ActivationFunctions.Softmax(System.Span single)
    Assert.All(single, fun v -> Assert.False(System.Single.IsNaN v))

/// The shift by the row's largest logit must find the largest wherever it is: with the first
/// logit or the smallest as the shift, exp(2000) or exp(200) overflows to infinity (NaN).
[<Fact>]
let ``softmax shifts by the largest logit wherever it lies in the row`` () =
    let row = [| -1000.0; 0.0; 1000.0; 0.0 |]
    ActivationFunctions.Softmax(System.Span row)
    assertClose 1e-12 [| 0.0; 0.0; 1.0; 0.0 |] row
    let single = [| 0.0f; 100.0f; 200.0f; 199.0f |]
    ActivationFunctions.Softmax(System.Span single)
    // e / (e + 1) and 1 / (e + 1) for the last two
    assertClose 1e-6 [| 0.0; 0.0; 0.7310585786; 0.2689414214 |] (single |> Array.map float)

/// At exactly zero, where the one-sided derivatives differ, the gradient follows PyTorch's
/// elu_backward and leaky_relu_backward (and TensorFlow's LeakyReluGrad): the negative side's,
/// alpha for elu (y + alpha at y = 0) and the slope for leaky ReLU; ReLU's is 0.
[<Fact>]
let ``activation gradients at exactly zero take the negative side's`` () =
    let backward activation (y: float[]) =
        let dy = Array.create y.Length 1.0
        ActivationFunctions.Backward(activation, System.ReadOnlySpan y, System.Span dy, y.Length)
        dy
    assertClose 1e-15 [| 0.5; 0.3; 1.0 |] (backward (CnnDsl.Graph.Activation.Elu 0.5) [| 0.0; -0.2; 0.3 |])
    assertClose 1e-15 [| 0.1; 0.1; 1.0 |] (backward (CnnDsl.Graph.Activation.LeakyRelu 0.1) [| 0.0; -0.5; 2.0 |])
    assertClose 1e-15 [| 0.0; 1.0 |] (backward CnnDsl.Graph.Activation.Relu [| 0.0; 1.0 |])

[<Cases 100>]
let ``activation layers' gradients match finite differences`` (which: byte) =
    let names = [| "relu"; "sigmoid"; "tanh"; "softmax"; "elu"; "leakyrelu 0.1"; "linear" |]
    assertGradients (sprintf "input 2x2x3\n%s" names[int which % names.Length]) 2
