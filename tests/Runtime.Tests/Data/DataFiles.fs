/// Small data files written for the readers' tests: PNG and BMP images, IDX, CIFAR and CSV.
module CnnDsl.Runtime.Tests.DataFiles

open System
open System.IO
open System.IO.Compression

let tempFolder (prefix: string) =
    let d = Path.Combine(Path.GetTempPath(), prefix + Path.GetRandomFileName())
    Directory.CreateDirectory d |> ignore
    d

let bigEndian (n: int) = [| byte (n >>> 24); byte (n >>> 16); byte (n >>> 8); byte n |]

let gzip (bytes: byte[]) =
    use m = new MemoryStream()
    do
        use z = new GZipStream(m, CompressionLevel.Fastest)
        z.Write(bytes, 0, bytes.Length)
    m.ToArray()

let private crcTable =
    Array.init 256 (fun n ->
        let mutable c = uint32 n
        for _ in 0 .. 7 do c <- if c &&& 1u <> 0u then 0xEDB88320u ^^^ (c >>> 1) else c >>> 1
        c)

let private crc32 (bytes: byte[]) =
    let mutable c = 0xFFFFFFFFu
    for b in bytes do c <- crcTable[int ((c ^^^ uint32 b) &&& 0xFFu)] ^^^ (c >>> 8)
    c ^^^ 0xFFFFFFFFu

/// An 8-bit PNG, grey (channels 1) or RGB (3), of the given pixels (row-major, interleaved).
let png (width: int) (height: int) (channels: int) (pixels: byte[]) =
    let chunk (kind: string) (data: byte[]) =
        let body = Array.append (Text.Encoding.ASCII.GetBytes kind) data
        Array.concat [ bigEndian data.Length; body; bigEndian (int (crc32 body)) ]
    let raw =
        [| for y in 0 .. height - 1 do
             yield 0uy
             yield! pixels[y * width * channels .. (y + 1) * width * channels - 1] |]
    let compressed =
        use m = new MemoryStream()
        do
            use z = new ZLibStream(m, CompressionLevel.Fastest)
            z.Write(raw, 0, raw.Length)
        m.ToArray()
    let header = Array.concat [ bigEndian width; bigEndian height; [| 8uy; (if channels = 1 then 0uy else 2uy); 0uy; 0uy; 0uy |] ]
    Array.concat [ [| 0x89uy; 0x50uy; 0x4Euy; 0x47uy; 0x0Duy; 0x0Auy; 0x1Auy; 0x0Auy |]; chunk "IHDR" header; chunk "IDAT" compressed; chunk "IEND" [||] ]

/// A 24-bit BMP (bottom-up rows, each padded to 4 bytes) of one colour.
let bmp (width: int) (height: int) (r: byte, g: byte, b: byte) =
    let row = (width * 3 + 3) / 4 * 4
    use m = new MemoryStream()
    do
        use f = new BinaryWriter(m)
        f.Write("BM"B); f.Write(54 + row * height); f.Write(0); f.Write(54)
        f.Write(40); f.Write(width); f.Write(height); f.Write(1s); f.Write(24s); f.Write(0); f.Write(row * height); f.Write(2835); f.Write(2835); f.Write(0); f.Write(0)
        for _ in 1 .. height do
            for _ in 1 .. width do f.Write(b); f.Write(g); f.Write(r)
            for _ in 1 .. row - width * 3 do f.Write(0uy)
    m.ToArray()

let idxImages (count: int) (rows: int) (columns: int) =
    Array.concat [ bigEndian 2051; bigEndian count; bigEndian rows; bigEndian columns; Array.init (count * rows * columns) byte ]

let idxLabels (values: byte[]) = Array.concat [ bigEndian 2049; bigEndian values.Length; values ]

/// CIFAR-10 binary records: a label byte, then the red, green and blue 32x32 planes.
let cifar (labels: byte[]) =
    Array.concat [ for l in labels -> Array.append [| l |] (Array.init 3072 (fun i -> byte (i + int l))) ]

/// Kaggle's digit-recognizer layout: a header, then label and pixels on each row.
let csv (rows: int) (pixels: int) =
    let header = "label," + String.Join(",", Array.init pixels (sprintf "pixel%d"))
    let row r = string (r % 10) + "," + String.Join(",", Array.init pixels (fun p -> string ((r * 7 + p) % 256)))
    header + "\n" + String.Join("\n", Array.init rows row) + "\n"

/// Bytes allocated on this thread while f runs (the readers allocate on the caller's thread).
let allocated (f: unit -> unit) =
    let before = GC.GetAllocatedBytesForCurrentThread()
    f ()
    GC.GetAllocatedBytesForCurrentThread() - before

/// Runs f with the data readers' memory budget set to `bytes`.
let withBudget (bytes: int64) (f: unit -> 'a) : 'a =
    let saved = CnnDsl.Runtime.Data.DataLimits.MemoryBudget
    CnnDsl.Runtime.Data.DataLimits.MemoryBudget <- bytes
    try f () finally CnnDsl.Runtime.Data.DataLimits.MemoryBudget <- saved
