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
let NoSoftmax = w "CNN403" "cross-entropy on an output without softmax"
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
      UncoveredPixels; LargeModel; NoSoftmax
      UnknownSetting; BadSetting; DuplicateSetting ]

let make (entry: Entry) (pos: Pos) (message: string) (hint: string option) : Diagnostic =
    { Code = entry.Code; Severity = entry.Severity; Message = message; Hint = hint; Pos = pos }

/// Edit distance with adjacent transpositions counted as one edit (optimal string
/// alignment), so that `covn` and `rleu` read as the one slip of the fingers they are.
let private distance (a: string) (b: string) =
    let d = Array2D.zeroCreate (a.Length + 1) (b.Length + 1)
    for i in 0 .. a.Length do d[i, 0] <- i
    for j in 0 .. b.Length do d[0, j] <- j
    for i in 1 .. a.Length do
        for j in 1 .. b.Length do
            let cost = if a[i - 1] = b[j - 1] then 0 else 1
            d[i, j] <- min (min (d[i - 1, j] + 1) (d[i, j - 1] + 1)) (d[i - 1, j - 1] + cost)
            if i > 1 && j > 1 && a[i - 1] = b[j - 2] && a[i - 2] = b[j - 1] then
                d[i, j] <- min d[i, j] (d[i - 2, j - 2] + 1)
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

/// Keras's names (layers, their arguments, losses, optimizers) and how the language writes
/// them, for users who bring a Keras model. Looked up without case and without a module
/// prefix (`layers.Conv2D`, `tf.keras.layers.Conv2D`).
let private kerasNames : (string list * string) list =
    [ [ "conv2d"; "convolution2d" ], "Keras's Conv2D is written 'conv FILTERS KxK', e.g. conv 32 3x3 same relu"
      [ "maxpooling2d"; "maxpool2d" ], "Keras's MaxPooling2D is written 'maxpool SIZE', e.g. maxpool 2"
      [ "averagepooling2d"; "avgpool2d" ], "Keras's AveragePooling2D is written 'avgpool SIZE', e.g. avgpool 2"
      [ "globalaveragepooling2d"; "globalavgpool2d" ], "Keras's GlobalAveragePooling2D is written 'globalavgpool'"
      [ "globalmaxpooling2d"; "globalmaxpool2d" ], "Keras's GlobalMaxPooling2D is written 'globalmaxpool'"
      [ "dense" ], "Keras's Dense is written 'dense UNITS', e.g. dense 10 softmax"
      [ "flatten" ], "Keras's Flatten is written 'flatten'"
      [ "dropout" ], "Keras's Dropout is written 'dropout RATE', e.g. dropout 0.5"
      [ "batchnormalization" ], "Keras's BatchNormalization is written 'batchnorm'"
      [ "depthwiseconv2d" ], "Keras's DepthwiseConv2D is written 'dwconv KxK', e.g. dwconv 3x3 same"
      [ "separableconv2d" ], "Keras's SeparableConv2D is written 'sepconv FILTERS KxK', e.g. sepconv 64 3x3 same"
      [ "reshape" ], "Keras's Reshape is written 'reshape HxWxC', e.g. reshape 7x7x1"
      [ "input"; "inputlayer" ], "Keras's Input(shape=(28, 28, 1)) is written 'input 28x28x1'"
      [ "relu" ], "Keras's ReLU is written 'relu' (a layer, or an option after a layer)"
      [ "leakyrelu"; "leaky_relu" ], "Keras's LeakyReLU is written 'leakyrelu ALPHA', e.g. leakyrelu 0.1"
      [ "softmax" ], "Keras's Softmax is written 'softmax' (a layer, or an option after a layer)"
      [ "activation" ], "Keras's activation='relu' is written as the word after the layer: conv 32 3x3 relu"
      [ "add" ], "Keras's Add is written 'residual (LAYERS)'"
      [ "concatenate" ], "Keras's Concatenate is written 'concat (A | B)'"
      [ "zeropadding2d" ], "Keras's ZeroPadding2D is written as the option 'pN' of the next layer, e.g. conv 32 3x3 p1"
      [ "sequential"; "model"; "compile"; "fit" ], "a model is written one layer per line, from 'input HxWxC' on; training settings go in a 'train' section"
      [ "padding" ], "Keras's padding='same' is written 'same' (and padding='valid', the default, 'valid')"
      [ "strides"; "stride" ], "Keras's strides=2 is written 's2' (strides=(2, 1): 's2x1')"
      [ "dilation_rate" ], "Keras's dilation_rate=2 is written 'd2'"
      [ "kernel_size"; "filters"; "units"; "pool_size" ], "arguments are written without names: conv FILTERS KxK, dense UNITS, maxpool SIZE"
      [ "use_bias" ], "Keras's use_bias=False is written 'nobias'"
      [ "trainable" ], "Keras's trainable=False is written 'frozen'"
      [ "sparse_categorical_crossentropy"; "categorical_crossentropy" ], "Keras's sparse_categorical_crossentropy and categorical_crossentropy are 'loss crossentropy' (labels are class numbers)"
      [ "binary_crossentropy" ], "Keras's binary_crossentropy is 'loss binarycrossentropy' (or bce)"
      [ "mean_squared_error" ], "Keras's mean_squared_error is 'loss mse'"
      [ "mean_absolute_error" ], "Keras's mean_absolute_error is 'loss mae'"
      [ "adam" ], "Keras's Adam is 'optimizer adam'"
      [ "sgd" ], "Keras's SGD is 'optimizer sgd'"
      [ "rmsprop" ], "Keras's RMSprop is 'optimizer rmsprop'"
      [ "learning_rate" ], "Keras's learning_rate is 'lr', e.g. lr 0.001"
      [ "batch_size" ], "Keras's batch_size is 'batch', e.g. batch 32"
      [ "validation_split" ], "Keras's validation_split is 'validation', e.g. validation 0.1" ]

/// How the language writes a Keras name, if `word` is one (callers ask only about words
/// that are not already the language's own).
let keras (word: string) =
    let bare = match word.LastIndexOf '.' with -1 -> word | i -> word.Substring(i + 1)
    let key = bare.ToLowerInvariant()
    if key = "" then None
    else kerasNames |> List.tryPick (fun (names, hint) -> if List.contains key names then Some hint else None)

/// The hint for an unknown word: Keras's spelling when it is one, else the closest candidate.
let kerasOrDidYouMean word candidates =
    keras word |> Option.orElse (didYouMean word candidates)

/// The data sets known by name; anything else in `data` must be a path.
let dataSetNames = [ "fashion-mnist"; "mnist"; "cifar10"; "xor"; "shapes" ]

/// 1234567 -> "1,234,567", as Keras prints counts.
let thousands (n: int64) = n.ToString("#,0", Globalization.CultureInfo.InvariantCulture)
