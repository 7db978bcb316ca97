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

[<Property(MaxTest = 100)>]
let ``activation layers' gradients match finite differences`` (which: byte) =
    let names = [| "relu"; "sigmoid"; "tanh"; "softmax"; "elu"; "leakyrelu 0.1"; "linear" |]
    assertGradients (sprintf "input 2x2x3\n%s" names[int which % names.Length]) 2
