/// The single catalogue of diagnostics, with stable codes (as the F# compiler's FSComp.txt).
/// Every diagnostic the front end emits is built here; docs/errors.md documents each code,
/// and a test checks that the two agree.
module CnnDsl.Dsl.Messages

open System

type Entry = { Code: string; Severity: Severity; Title: string }

let private e code title = { Code = code; Severity = Severity.Error; Title = title }
let private w code title = { Code = code; Severity = Severity.Warning; Title = title }

// Syntax
let SyntaxError = e "CNN001" "syntax error"
let UnknownLayer = e "CNN002" "unknown layer or block"
let UnknownOption = e "CNN003" "unknown option for this layer"
let NumberTooLarge = e "CNN004" "number too large"
let NestingTooDeep = e "CNN005" "nesting too deep"
let DuplicateOption = e "CNN006" "option given twice"
let NotAnOption = e "CNN007" "option not allowed on this layer"
// Structure and names
let MissingInput = e "CNN101" "no input layer"
let MisplacedInput = e "CNN102" "input layer not first"
let RecursiveBlock = e "CNN103" "block uses itself"
let WrongArity = e "CNN104" "wrong number of arguments to a block"
let UnboundParameter = e "CNN105" "unknown parameter name"
let DuplicateLet = e "CNN106" "block defined twice"
let EmptyModel = e "CNN107" "model has no layers"
let ExpectedInteger = e "CNN108" "whole number expected"
// Values
let NotPositive = e "CNN201" "value below its minimum"
let DropoutRange = e "CNN202" "dropout rate outside [0, 1)"
let BadKernelLiteral = e "CNN204" "kernel matrix not rectangular"
let BadDims = e "CNN205" "wrong number of sizes"
let BadWeights = e "CNN206" "hand-set weights of the wrong shape"
// Shapes
let ConvTooSmall = e "CNN301" "kernel larger than the padded input"
let PoolTooLarge = e "CNN302" "pool window larger than its input"
let DynamicFlatten = e "CNN303" "flatten or dense on a dynamic size"
let NeedsImage = e "CNN304" "spatial layer on a vector"
let ResidualMismatch = e "CNN305" "residual shapes differ"
let ConcatMismatch = e "CNN306" "concatenated branches differ in size"
let ReshapeMismatch = e "CNN307" "reshape changes the number of values"
let ShapeTooLarge = e "CNN308" "shape or parameter count too large"
let SoftmaxNotLast = e "CNN309" "softmax before the last layer with cross-entropy"
let NotDivisible = e "CNN310" "channels not divisible into groups"
// Warnings
let UncoveredPixels = w "CNN401" "stride leaves the last rows or columns uncovered"
let LargeModel = w "CNN402" "very large parameter count or activations"
// Training section
let UnknownSetting = e "CNN501" "unknown training setting"
let BadSetting = e "CNN502" "bad training value"
let DuplicateSetting = e "CNN503" "training setting given twice"

let all =
    [ SyntaxError; UnknownLayer; UnknownOption; NumberTooLarge; NestingTooDeep; DuplicateOption; NotAnOption
      MissingInput; MisplacedInput; RecursiveBlock; WrongArity; UnboundParameter; DuplicateLet; EmptyModel; ExpectedInteger
      NotPositive; DropoutRange; BadKernelLiteral; BadDims; BadWeights
      ConvTooSmall; PoolTooLarge; DynamicFlatten; NeedsImage; ResidualMismatch; ConcatMismatch
      ReshapeMismatch; ShapeTooLarge; SoftmaxNotLast; NotDivisible
      UncoveredPixels; LargeModel
      UnknownSetting; BadSetting; DuplicateSetting ]

let make (entry: Entry) (pos: Pos) (message: string) (hint: string option) : Diagnostic =
    { Code = entry.Code; Severity = entry.Severity; Message = message; Hint = hint; Pos = pos }

/// Levenshtein distance, for "did you mean" suggestions.
let private distance (a: string) (b: string) =
    let d = Array2D.zeroCreate (a.Length + 1) (b.Length + 1)
    for i in 0 .. a.Length do d[i, 0] <- i
    for j in 0 .. b.Length do d[0, j] <- j
    for i in 1 .. a.Length do
        for j in 1 .. b.Length do
            let cost = if a[i - 1] = b[j - 1] then 0 else 1
            d[i, j] <- min (min (d[i - 1, j] + 1) (d[i, j - 1] + 1)) (d[i - 1, j - 1] + cost)
    d[a.Length, b.Length]

/// The closest candidate within a distance that still reads as a typo.
let suggest (word: string) (candidates: string seq) =
    let word = word.ToLowerInvariant()
    candidates
    |> Seq.map (fun c -> c, distance word c)
    |> Seq.filter (fun (c, d) -> d <= max 1 (min 3 (c.Length / 3)) || (word.Length >= 3 && c.StartsWith(word, StringComparison.Ordinal)))
    |> Seq.sortBy snd
    |> Seq.tryHead
    |> Option.map fst

let didYouMean word candidates =
    suggest word candidates |> Option.map (fun s -> sprintf "did you mean '%s'?" s)

/// 1234567 -> "1,234,567", as Keras prints counts.
let thousands (n: int64) = n.ToString("#,0", Globalization.CultureInfo.InvariantCulture)
