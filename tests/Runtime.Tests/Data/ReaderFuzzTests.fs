/// A fuzz harness over the data readers: small valid files are written, then mutated (bytes
/// changed, cut, extended, header fields set to odd numbers), and read. Whatever the bytes, a
/// reader returns a consistent data set or throws a DataError naming the file; nothing else
/// escapes, and nothing beyond the memory budget is allocated on the way.
module CnnDsl.Runtime.Tests.ReaderFuzzTests

open System
open System.IO
open Xunit
open FsCheck
open FsCheck.FSharp
open FsCheck.Xunit
open CnnDsl.Runtime.Data
open CnnDsl.Runtime.Tests.DataFiles
open CnnDsl.Runtime.Tests.TestSupport

/// Small against a header that claims millions of images, large against the valid files (a few KB).
let private budget = 256L * 1024L

type Mutation =
    | Flip of at: int * value: byte
    | Cut of keep: int
    | Extend of bytes: byte[]
    /// A 32-bit field at one of the format's header offsets (big- or little-endian as the format).
    | Field of which: int * value: int

let private oddNumber =
    Gen.oneof [ Gen.choose (-3, 70); Gen.elements [ 0; -1; 255; 256; 4096; 16385; 20000; 65536; 1 <<< 20; 100_000_000; Int32.MaxValue; Int32.MinValue ] ]

let private mutation =
    Gen.oneof
        [ Gen.map2 (fun a v -> Flip(a, v)) (Gen.choose (0, Int32.MaxValue)) (Gen.choose (0, 255) |> Gen.map byte)
          Gen.choose (0, Int32.MaxValue) |> Gen.map Cut
          Gen.choose (1, 64) |> Gen.bind (fun n -> Gen.arrayOfLength n (Gen.choose (0, 255) |> Gen.map byte)) |> Gen.map Extend
          Gen.map2 (fun w v -> Field(w, v)) (Gen.choose (0, 99)) oddNumber ]

let private mutations = Gen.choose (1, 3) |> Gen.bind (fun n -> Gen.listOfLength n mutation)

/// Applies mutations; `fields` are the format's header offsets and whether it is big-endian.
let private mutate (fields: int[]) (bigEndianFields: bool) (bytes: byte[]) (ms: Mutation list) =
    let mutable b = Array.copy bytes
    for m in ms do
        match m with
        | Flip(at, v) -> if b.Length > 0 then b[at % b.Length] <- v
        | Cut keep -> b <- b[.. keep % (b.Length + 1) - 1]
        | Extend more -> b <- Array.append b more
        | Field(which, v) when fields.Length > 0 ->
            let at = fields[which % fields.Length]
            let value = if bigEndianFields then bigEndian v else BitConverter.GetBytes v
            if at + 4 <= b.Length then Array.blit value 0 b at 4
        | Field _ -> ()
    b

/// Reads under the budget: true when the result is consistent, or the error names `path` (a file
/// or a folder above it); false, or another exception, fails the property.
let private check (path: string) (read: unit -> bool) =
    withBudget budget (fun () ->
        let mutable outcome = Ok false
        let bytes = allocated (fun () -> outcome <- try Ok(read ()) with :? DataError as e -> Error e)
        let named =
            match outcome with
            | Ok consistent -> consistent
            | Error e -> e.File.StartsWith(path, StringComparison.Ordinal)
        (named |> Prop.label (sprintf "outcome %A" outcome)) .&. (bytes <= 4L * budget |> Prop.label (sprintf "%d bytes allocated" bytes)))

let private inFolder (f: string -> Property) =
    let d = tempFolder "cnndsl-fuzz-"
    try f d finally Directory.Delete(d, true)

let private write (path: string) (bytes: byte[]) = File.WriteAllBytes(path, bytes); path

/// Mutated before or after compression: the header's fields, or the gzip stream itself.
let private compressMaybe = Gen.elements [ 0; 1; 2 ]

let private written (path: string) (valid: byte[]) (fields: int[]) (how: int) (ms: Mutation list) =
    match how with
    | 0 -> write path (mutate fields true valid ms)
    | 1 -> write path (gzip (mutate fields true valid ms))
    | _ -> write path (mutate [||] true (gzip valid) ms)

[<Cases 150>]
let ``IDX image files, plain or gzipped, read or give a DataError within the budget`` () =
    let cases = Gen.zip3 (Gen.zip3 (Gen.choose (0, 6)) (Gen.choose (1, 9)) (Gen.choose (1, 9))) compressMaybe mutations
    Prop.forAll (Arb.fromGen cases) (fun ((count, rows, columns), how, ms) ->
        inFolder (fun d ->
            let path = written (Path.Combine(d, "images")) (idxImages count rows columns) [| 0; 4; 8; 12 |] how ms
            check path (fun () ->
                let struct (n, r, c, pixels) = Idx.ReadImages path
                int64 pixels.Length = int64 n * int64 r * int64 c && int64 r * int64 c <= DataLimits.MaxImagePixels)))

[<Cases 150>]
let ``IDX label files, plain or gzipped, read or give a DataError within the budget`` () =
    let cases = Gen.zip3 (Gen.choose (0, 40)) compressMaybe mutations
    Prop.forAll (Arb.fromGen cases) (fun (count, how, ms) ->
        inFolder (fun d ->
            let path = written (Path.Combine(d, "labels")) (idxLabels (Array.init count (fun i -> byte (i % 10)))) [| 0; 4 |] how ms
            check path (fun () -> Idx.ReadLabels(path, 10) |> Array.forall (fun l -> l >= 0 && l < 10))))

[<Cases 100>]
let ``CIFAR-10 batches, plain or gzipped, read or give a DataError within the budget`` () =
    let cases = Gen.zip3 (Gen.choose (1, 3)) compressMaybe mutations
    Prop.forAll (Arb.fromGen cases) (fun (records, how, ms) ->
        inFolder (fun d ->
            let path = written (Path.Combine(d, "data_batch_1.bin")) (cifar (Array.init records (fun i -> byte (i * 4)))) [| 0; 3073 |] how ms
            check path (fun () ->
                let struct (pixels, labels) = Cifar10.ReadBatch path
                pixels.Length = labels.Length * 3072 && labels |> Array.forall (fun l -> l >= 0 && l < 10))))

/// Text-level changes to a CSV file besides byte mutations: a cell replaced by an odd token.
let private csvToken =
    Gen.elements [ "2147483647"; "100000000"; "65536"; "-1"; ""; "99999999999"; "1e5"; "0x10"; " 7 "; "256"; ",,"; "\r"; "label"; "\"3\"" ]

[<Cases 100>]
let ``CSV files read or give a DataError within the budget`` () =
    let cases = Gen.zip3 (Gen.zip (Gen.choose (1, 12)) (Gen.elements [ 1; 4; 9; 10 ])) (Gen.zip (Gen.choose (0, Int32.MaxValue)) csvToken) mutations
    Prop.forAll (Arb.fromGen cases) (fun ((rows, pixels), (at, token), ms) ->
        inFolder (fun d ->
            let cells = (csv rows pixels).Split(',')
            cells[at % cells.Length] <- token
            let path = write (Path.Combine(d, "digits.csv")) (mutate [||] true (Text.Encoding.ASCII.GetBytes(String.Join(",", cells))) ms)
            check path (fun () ->
                let set = CsvImages.Read(path, "digits")
                set.Pixels.Length = set.Count * set.ExampleSize && set.ClassNames.Length <= DataLimits.MaxClasses
                && set.Labels |> Array.forall (fun l -> l >= 0 && l < set.ClassNames.Length))))

/// A valid image file of the given kind: PNG grey, PNG RGB or BMP, with its header's size fields.
let private image (kind: int) (w: int) (h: int) =
    match kind with
    | 0 -> png w h 1 (Array.init (w * h) byte), [| 16; 20 |], true
    | 1 -> png w h 3 (Array.init (w * h * 3) byte), [| 16; 20 |], true
    | _ -> bmp w h (10uy, 20uy, 30uy), [| 2; 10; 18; 22; 28; 34 |], false

[<Cases 150>]
let ``image files read as inputs or give a DataError within the budget`` () =
    let cases = Gen.zip3 (Gen.zip3 (Gen.choose (0, 2)) (Gen.choose (1, 12)) (Gen.choose (1, 12))) (Gen.elements [ None; Some 1; Some 3 ]) mutations
    Prop.forAll (Arb.fromGen cases) (fun ((kind, w, h), channels, ms) ->
        inFolder (fun d ->
            let valid, fields, big = image kind w h
            let path = write (Path.Combine(d, if kind = 2 then "input.bmp" else "input.png")) (mutate fields big valid ms)
            check path (fun () ->
                let input = InputFiles.Read(path, Option.toNullable channels)
                input.Values.Length = input.Height * input.Width * input.Channels
                && input.Values |> Array.forall (fun v -> v >= 0.0 && v <= 1.0))))

[<Cases 40>]
let ``image folders with train and test read or give a DataError within the budget`` () =
    let cases = Gen.zip3 (Gen.zip (Gen.choose (0, 2)) (Gen.choose (0, 7))) (Gen.choose (2, 8)) mutations
    Prop.forAll (Arb.fromGen cases) (fun ((kind, which), side, ms) ->
        inFolder (fun d ->
            let files =
                [ for part in [ "train"; "test" ] do
                    for c in [ "a"; "b" ] do
                        Directory.CreateDirectory(Path.Combine(d, part, c)) |> ignore
                        for i in 0 .. 1 do
                            let bytes, _, _ = image kind side side
                            yield write (Path.Combine(d, part, c, sprintf "%d%s" i (if kind = 2 then ".bmp" else ".png"))) bytes ]
            let valid, fields, big = image kind side side
            write files[which] (mutate fields big valid ms) |> ignore
            check d (fun () ->
                let split = DataSets.Load d
                split.Train.ShapeText = split.Test.ShapeText && split.Train.Count = 4 && split.Test.Count = 4
                && split.Train.Pixels.Length = split.Train.Count * split.Train.ExampleSize)))

/// Text matrices for `dsl apply`: rows of numbers, channels separated by a blank line.
let private matrixToken = Gen.elements [ "1e309"; "NaN"; "-0"; "[1,"; "]"; "#"; "\n\n"; "\n"; "x"; "1.5.2"; "  "; ";" ]

[<Cases 100>]
let ``text matrices read or give a DataError within the budget`` () =
    let cases = Gen.zip3 (Gen.zip (Gen.choose (1, 6)) (Gen.choose (1, 6))) (Gen.zip (Gen.choose (0, Int32.MaxValue)) matrixToken) mutations
    Prop.forAll (Arb.fromGen cases) (fun ((h, w), (at, token), ms) ->
        inFolder (fun d ->
            let text = String.Join("\n", Array.init h (fun y -> String.Join(" ", Array.init w (fun x -> string (y * w + x)))))
            let at = at % (text.Length + 1)
            let path = write (Path.Combine(d, "input.txt")) (mutate [||] true (Text.Encoding.ASCII.GetBytes(text[.. at - 1] + token + text[at ..])) ms)
            check path (fun () ->
                let input = InputFiles.Read path
                input.Values.Length = input.Height * input.Width * input.Channels)))
