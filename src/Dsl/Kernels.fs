/// The named constant kernels of the language: the classic feature extractors the seeds
/// compare with learned CNN filters (seed 002's table, seed 003's edge detectors, Sobel, Scharr).
/// Applied as cross-correlation, as every CNN framework does.
module CnnDsl.Dsl.Kernels

let private m (rows: float list list) = rows |> List.map Array.ofList |> Array.ofList

let private sobelX = m [ [ -1.; 0.; 1. ]; [ -2.; 0.; 2. ]; [ -1.; 0.; 1. ] ]
let private sobelY = m [ [ -1.; -2.; -1. ]; [ 0.; 0.; 0. ]; [ 1.; 2.; 1. ] ]
let private scharrX = m [ [ -3.; 0.; 3. ]; [ -10.; 0.; 10. ]; [ -3.; 0.; 3. ] ]
let private scharrY = m [ [ -3.; -10.; -3. ]; [ 0.; 0.; 0. ]; [ 3.; 10.; 3. ] ]

/// name -> the kernels it applies to each input channel (sobel and scharr give two: x then y).
let named : (string * float[][][]) list =
    [ "identity", [| m [ [ 0.; 0.; 0. ]; [ 0.; 1.; 0. ]; [ 0.; 0.; 0. ] ] |]
      // seed 002, "Edge detection", first of three
      "edge", [| m [ [ 1.; 0.; -1. ]; [ 0.; 0.; 0. ]; [ -1.; 0.; 1. ] ] |]
      "laplacian", [| m [ [ 0.; 1.; 0. ]; [ 1.; -4.; 1. ]; [ 0.; 1.; 0. ] ] |]
      "laplacian8", [| m [ [ -1.; -1.; -1. ]; [ -1.; 8.; -1. ]; [ -1.; -1.; -1. ] ] |]
      "sharpen", [| m [ [ 0.; -1.; 0. ]; [ -1.; 5.; -1. ]; [ 0.; -1.; 0. ] ] |]
      "boxblur", [| m [ for _ in 1 .. 3 -> [ for _ in 1 .. 3 -> 1. / 9. ] ] |]
      "gaussianblur", [| m [ [ 1.; 2.; 1. ]; [ 2.; 4.; 2. ]; [ 1.; 2.; 1. ] ] |> Array.map (Array.map (fun v -> v / 16.)) |]
      // seed 003: vertical and horizontal edge detection on 6x6 images
      // seed 003: vertical and horizontal edge detection on 6x6 images, as the seed writes them:
      // positive where bright turns dark (to the right, downward), the opposite sign of sobelx
      "vedge", [| m [ [ 1.; 0.; -1. ]; [ 1.; 0.; -1. ]; [ 1.; 0.; -1. ] ] |]
      "hedge", [| m [ [ 1.; 1.; 1. ]; [ 0.; 0.; 0. ]; [ -1.; -1.; -1. ] ] |]
      // Derivatives, as OpenCV's Sobel and Scharr: x positive where intensity increases to
      // the right, y positive where it increases downward.
      "sobelx", [| sobelX |]
      "sobely", [| sobelY |]
      "sobel", [| sobelX; sobelY |]
      "scharrx", [| scharrX |]
      "scharry", [| scharrY |]
      "scharr", [| scharrX; scharrY |] ]

let names = named |> List.map fst

let tryFind name = named |> List.tryFind (fun (n, _) -> n = name) |> Option.map snd
