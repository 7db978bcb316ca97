module CnnDsl.Runtime.Tests.AugmentationTests

open Xunit
open CnnDsl.Runtime.Data

[<Fact>]
let ``augmentation is a deterministic rearrangement of the image's own pixels`` () =
    let image () = Array.init (6 * 5 * 2) float32
    let a = Augmentation(true, true, true, 6, 5, 2)
    let x, y = image (), image ()
    a.Apply(System.Span x, 42UL)
    a.Apply(System.Span y, 42UL)
    Assert.Equal<float32[]>(x, y)
    Assert.All(x, fun v -> Assert.Contains(v, image ()))
    let z = image ()
    a.Apply(System.Span z, 43UL)
    Assert.NotEqual<float32[]>(x, z)

[<Fact>]
let ``a flip alone mirrors each row or leaves the image`` () =
    let a = Augmentation(false, true, false, 1, 4, 1)
    let results =
        [ for seed in 0UL .. 20UL ->
            let x = [| 1.0f; 2.0f; 3.0f; 4.0f |]
            a.Apply(System.Span x, seed)
            x ]
    Assert.All(results, fun r -> Assert.True(r = [| 1.0f; 2.0f; 3.0f; 4.0f |] || r = [| 4.0f; 3.0f; 2.0f; 1.0f |]))
    Assert.Contains([| 4.0f; 3.0f; 2.0f; 1.0f |], results)
