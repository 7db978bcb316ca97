module CnnDsl.Cli.Tests.BackpropTests

open System
open System.IO
open System.Text.RegularExpressions
open Xunit
open CnnDsl.Cli.Tests.TestSupport
open CnnDsl.Cli

let private backprop (model: string) (input: string) (target: string) =
    run (fun c -> Backprop.backprop c (Path.Combine(root, model)) (Path.Combine(root, input)) target None None 0)

/// The numbers printed under a heading, up to the next heading.
let private numbersAfter (heading: string) (text: string) =
    let start = text.IndexOf(heading, StringComparison.Ordinal)
    Assert.True(start >= 0, sprintf "no '%s' in:\n%s" heading text)
    let rest = text.Substring(start + heading.Length).Split('\n') |> Array.skip 1
    rest
    |> Array.takeWhile (fun l -> l.StartsWith "    ")
    |> Array.collect (fun l -> l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
    |> Array.map (fun s -> Double.Parse(s, Globalization.CultureInfo.InvariantCulture))

let private close (expected: float[]) (actual: float[]) =
    Assert.Equal(expected.Length, actual.Length)
    // The slides print Keras's float32 results; we compute in float64 and print 6 digits.
    Array.iter2 (fun (e: float) a -> Assert.True(abs (e - a) <= 2e-6 * max 1.0 (abs e), sprintf "expected %g, got %g" e a)) expected actual

let private lossOf (text: string) =
    let m = Regex.Match(text, "Loss \\(mse against the target\\): (\\S+)")
    Assert.True(m.Success, text)
    Double.Parse(m.Groups[1].Value, Globalization.CultureInfo.InvariantCulture)

[<Fact>]
let ``seed 000's convolution backward example comes out as the slide prints it`` () =
    let code, out, err = backprop "examples/backprop-conv.cnn" "examples/backprop-conv.txt" "1 1 1 1"
    Assert.True((code = 0), err)
    close [| 0.9292677; 1.2405912; 1.2405912; 1.6272811 |] (numbersAfter "conv2d (Conv2D, relu): 2x2x1" out)
    Assert.Equal(0.12856321, lossOf out, 6)
    close [| -0.03536615; 0.12029558; 0.12029558; 0.31364053 |] (numbersAfter "dL/d(output):" out)
    close [| 0.83250606; 0.75945675; 0.75945675; 0.4834994 |] (numbersAfter "dL/d(kernel):" out)
    close [| 0.5188656 |] (numbersAfter "dL/d(bias):" out)

[<Fact>]
let ``seed 000's max pooling backward example: the gradient goes to each window's maximum`` () =
    let code, out, _ = backprop "examples/backprop-maxpool.cnn" "examples/backprop-pool.txt" "1 1 1 1"
    Assert.Equal(0, code)
    Assert.Equal(49.5, lossOf out)
    close [| 3.0; 4.0; 3.5; 3.5 |] (numbersAfter "dL/d(output):" out)
    close [| 0.0; 0.0; 0.0; 0.0; 3.0; 0.0; 4.0; 0.0; 0.0; 0.0; 3.5; 0.0; 3.5; 0.0; 0.0; 0.0 |] (numbersAfter "dL/d(input):" out)

[<Fact>]
let ``seed 000's average pooling backward example: each window shares its gradient`` () =
    let code, out, _ = backprop "examples/backprop-avgpool.cnn" "examples/backprop-pool.txt" "1 1 1 1"
    Assert.Equal(0, code)
    close [| 4.0; 5.25; 5.75; 5.0 |] (numbersAfter "average_pooling2d (AveragePooling2D): 2x2x1" out)
    Assert.Equal(16.40625, lossOf out)
    close [| 1.5; 2.125; 2.375; 2.0 |] (numbersAfter "dL/d(output):" out)
    close [| 0.375; 0.375; 0.53125; 0.53125; 0.375; 0.375; 0.53125; 0.53125
             0.59375; 0.59375; 0.5; 0.5; 0.59375; 0.59375; 0.5; 0.5 |] (numbersAfter "dL/d(input):" out)

[<Fact>]
let ``the textbook XOR network with hand-set weights: exact outputs and hand-derived gradients`` () =
    // f(1,1) = 0; against a target of 1: loss 1, dL/dy = 2(y - t) = -2, dL/dw2 = -2 h = [-4 -2],
    // dL/dh = -2 w2 = [-2 4] (both units active), dL/dW1 = one row per unit: [-2 -2] and [4 4].
    let code, out, _ = backprop "examples/xor-handset.cnn" "examples/xor-11.txt" "1"
    Assert.Equal(0, code)
    close [| 2.0; 1.0 |] (numbersAfter "dense (Dense, relu): 2" out)
    Assert.Equal(1.0, lossOf out)
    let backward = out.Substring(out.IndexOf("Backward pass:", StringComparison.Ordinal))
    let after (layer: string) = backward.Substring(backward.IndexOf("\n" + layer + " (Dense", StringComparison.Ordinal) + 1)
    close [| -4.0; -2.0 |] (numbersAfter "dL/d(kernel):" (after "dense_1"))
    close [| -2.0; -2.0; 4.0; 4.0 |] (numbersAfter "dL/d(kernel):" (after "dense"))
    close [| -2.0; 4.0 |] (numbersAfter "dL/d(bias):" (after "dense"))
    close [| 2.0; 2.0 |] (numbersAfter "dL/d(input):" out)

[<Fact>]
let ``a wrong target and a batchnorm model get messages, not stack traces`` () =
    let code, out, err = backprop "examples/backprop-conv.cnn" "examples/backprop-conv.txt" "1 1"
    Assert.Equal(2, code)
    Assert.Equal("", out) // refused before the forward pass is printed
    Assert.Contains("--target: 2 values, but the model's output 2x2x1 has 4", err)
    let code, _, err = backprop "examples/backprop-conv.cnn" "examples/backprop-conv.txt" "one"
    Assert.Equal(2, code)
    Assert.Contains("'one' is neither a file nor a number", err)
    let path = Path.Combine(Path.GetTempPath(), Path.GetRandomFileName() + ".cnn")
    File.WriteAllText(path, "input 2\ndense 2\nbatchnorm\n")
    let code, _, err = run (fun c -> Backprop.backprop c path (Path.Combine(root, "examples/xor-11.txt")) "1 0" None None 0)
    Assert.Equal(2, code)
    Assert.Contains("batch_normalization (line 3)", err)

[<Fact>]
let ``a NaN in the input is refused with its position, as apply refuses it, not run through every gradient`` () =
    let dir = Path.Combine(Path.GetTempPath(), "cnndsl-backprop-nan-" + Path.GetRandomFileName())
    Directory.CreateDirectory dir |> ignore
    let rows = File.ReadAllLines(Path.Combine(root, "examples/backprop-conv.txt")) |> Array.filter (fun l -> l.Trim() <> "")
    let cells = rows[1].Split(' ', StringSplitOptions.RemoveEmptyEntries)
    cells[0] <- "nan"
    rows[1] <- String.Join(" ", cells)
    let input = Path.Combine(dir, "nan.txt")
    File.WriteAllLines(input, rows)
    let code, out, err = run (fun c -> Backprop.backprop c (Path.Combine(root, "examples/backprop-conv.cnn")) input "1 1 1 1" None None 0)
    Assert.Equal(2, code)
    Assert.Equal("", out)
    Assert.Equal(sprintf "dsl: data: %s: holds NaN at row 2, column 1: inputs must be finite numbers between -3.4e38 and 3.4e38; correct that value" input, err.Trim())
    Directory.Delete(dir, true)
