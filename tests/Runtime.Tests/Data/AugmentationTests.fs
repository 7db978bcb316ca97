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

// ---- crop with padding and cutout (issue 19) against numpy and DeVries and Taylor's code (oracles/augment.py) ----

open CnnDsl.Runtime.Tests.TestSupport

let private picture (rng: System.Random) h w c =
    Array.init h (fun _ -> Array.init w (fun _ -> Array.init c (fun _ -> float32 (rng.Next(1, 100)))))

let private flat (image: float32[][][]) = image |> Array.collect (Array.collect id)

[<Fact>]
let ``a crop with zero or reflect padding and a cutout equal numpy's pad and window and the Cutout paper's mask`` () =
    let rng = System.Random 5
    let h, w, c = 7, 6, 2
    let cases =
        [| for mode in [ "zero"; "reflect" ] do
             for pad in [ 1; 3; 5 ] do
                 for _ in 1 .. 4 ->
                     {| image = picture rng h w c; op = "crop"; pad = pad; mode = mode; oy = rng.Next(2 * pad + 1); ox = rng.Next(2 * pad + 1)
                        size = 0; cy = 0; cx = 0 |}
           for size in [ 1; 3; 4; 8 ] do
               for _ in 1 .. 4 ->
                   {| image = picture rng h w c; op = "cutout"; pad = 0; mode = ""; oy = 0; ox = 0; size = size; cy = rng.Next h; cx = rng.Next w |} |]
    let answer = oracle "augment.py" {| cases = cases |}
    for case, expected in Seq.zip cases (answer.GetProperty("results").EnumerateArray()) do
        let a = Augmentation(false, false, false, h, w, c, crop = case.pad, reflect = (case.mode = "reflect"), cutout = case.size)
        let x = flat case.image
        if case.op = "crop" then a.Crop(System.Span x, case.oy, case.ox) else a.Cutout(System.Span x, case.cy, case.cx)
        let want = [| for v in expected.EnumerateArray() -> v.GetSingle() |]
        Assert.True((want = x), sprintf "%s pad %d %s at (%d, %d), size %d at (%d, %d): ours %A, reference %A" case.op case.pad case.mode case.oy case.ox case.size case.cy case.cx x want)

[<Fact>]
let ``random crops draw every offset in 0..2P, seeded, and cutout erases a square somewhere`` () =
    let h, w, c, pad = 5, 5, 1, 2
    let a = Augmentation(false, false, false, h, w, c, crop = pad)
    let original = Array.init (h * w) (fun i -> float32 (i + 1))
    // the offset is readable from where pixel 1 lands (or is cut off): collect the distinct outcomes
    let outcomes =
        [ for seed in 0UL .. 399UL ->
            let x = Array.copy original
            a.Apply(System.Span x, seed)
            x ]
    let distinct = outcomes |> List.distinct
    Assert.Equal((2 * pad + 1) * (2 * pad + 1), distinct.Length)
    let again = Array.copy original
    a.Apply(System.Span again, 17UL)
    Assert.Equal<float32[]>(outcomes[17], again)
    let cut = Augmentation(false, false, false, h, w, c, cutout = 2)
    let erased =
        [ for seed in 0UL .. 99UL ->
            let x = Array.copy original
            cut.Apply(System.Span x, seed)
            x |> Array.filter ((=) 0.0f) |> Array.length ]
    Assert.All(erased, fun n -> Assert.True(n >= 1 && n <= 4, sprintf "%d pixels erased" n))
    Assert.Contains(4, erased)

[<Fact>]
let ``the train section's augment names are read, and an unknown one is refused`` () =
    let set = CnnDsl.Runtime.Data.Dataset("t", 4, 4, 3, Array.zeroCreate (4 * 4 * 3 * 2), [| 0; 1 |], [| "a"; "b" |])
    Assert.NotNull(Augmentation.From([ "flip"; "crop 4 reflect"; "cutout 8" ], set))
    Assert.Null(Augmentation.From([], set))
    Assert.Throws<System.ArgumentException>(fun () -> Augmentation.From([ "crop x" ], set) |> ignore) |> ignore
