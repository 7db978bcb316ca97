module CnnDsl.Dsl.Tests.KernelsTests

open Xunit
open CnnDsl.Dsl

/// The kernel's response at the centre of a 3x3 patch (cross-correlation, as the layers apply it).
let private response (k: float[][]) (patch: float[][]) =
    Seq.sum (seq { for y in 0 .. 2 do for x in 0 .. 2 -> k[y][x] * patch[y][x] })

let private rightward = Array.init 3 (fun _ -> [| 0.; 1.; 2. |])
let private downward = Array.init 3 (fun y -> Array.create 3 (float y))

let private kernel name = (Kernels.tryFind name).Value

[<Fact>]
let ``derivative kernels share OpenCV's signs: x grows to the right, y downward`` () =
    for name in [ "sobelx"; "scharrx" ] do
        Assert.True(response (kernel name).[0] rightward > 0.0, name)
        Assert.Equal(0.0, response (kernel name).[0] downward)
    for name in [ "sobely"; "scharry" ] do
        Assert.True(response (kernel name).[0] downward > 0.0, name)
        Assert.Equal(0.0, response (kernel name).[0] rightward)
    // The pairs are their x and y kernels, in that order.
    Assert.Equal<float[][][]>(Array.append (kernel "sobelx") (kernel "sobely"), kernel "sobel")
    Assert.Equal<float[][][]>(Array.append (kernel "scharrx") (kernel "scharry"), kernel "scharr")
