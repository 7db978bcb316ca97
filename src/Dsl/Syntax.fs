/// The syntax tree of a .cnn file, as written: nothing is expanded or checked here.
namespace CnnDsl.Dsl.Syntax

open CnnDsl.Dsl

type Located<'T> = { Value: 'T; Pos: Pos }

/// A number as written: a literal, or the name of a `let` block's parameter.
type Number =
    | Int of int64
    | Float of float
    | Ref of string

/// One part of a size such as `28x28x1`, `?x?x1`, `3x3` or a lone `3`.
type DimPart =
    | Size of Number
    | Unknown

type Dims = Located<DimPart list>

type ActivationSyntax =
    | Relu
    | Sigmoid
    | Tanh
    | Softmax
    | Linear
    | Elu of alpha: Located<Number> option
    | LeakyRelu of alpha: Located<Number> option

/// A tensor written out: a number, or a bracketed list of tensors (`[[1 0] [0 1]]`).
type TensorLiteral =
    | Scalar of float
    | Items of Located<TensorLiteral> list

/// The words that may follow a layer's positional arguments.
type LayerOption =
    | Stride of Dims
    | PadSame
    | PadValid
    | Pad of Dims
    | Dilation of Dims
    | NoBias
    | Frozen
    | Project
    | Activation of ActivationSyntax
    /// hand-set weights (`weights [[1 0] [0 1]]`): a conv's kernel, one matrix per filter
    /// (and input channel), or a dense layer's matrix, one row per unit
    | Weights of TensorLiteral
    /// hand-set biases (`bias 0.5`, `bias [-10 30]`)
    | BiasValues of TensorLiteral
    /// grouped convolution (`groups 4`): filters see only their group's input channels
    | Groups of Located<Number>
    /// a word that is no option at all; kept so that the checker can say which was meant
    | UnknownOption of string

type PoolKindSyntax =
    | MaxPool
    | AvgPool
    | MinPool

type LayerSyntax =
    | Input of Dims
    | Conv of filters: Located<Number> * kernel: Dims
    /// depthwise convolution: one kernel per input channel (Keras's DepthwiseConv2D)
    | DepthwiseConv of kernel: Dims
    /// depthwise then 1x1 convolution (Keras's SeparableConv2D)
    | SeparableConv of filters: Located<Number> * kernel: Dims
    /// max over groups of consecutive channels
    | Maxout of pieces: Located<Number>
    /// a constant kernel: a named one (`sobel`, `laplacian` ...) or a literal matrix (`kernel [[...]]`)
    | NamedKernel of name: string
    | LiteralKernel of rows: Located<float list> list
    | Pool of PoolKindSyntax * size: Dims
    | GlobalPool of PoolKindSyntax
    | Dense of units: Located<Number>
    | Flatten
    | Reshape of Dims
    | Dropout of rate: Located<Number>
    | BatchNorm
    | ActivationLayer of ActivationSyntax
    | Repeat of count: Located<Number> * body: Layer list
    /// output = body(x) + x, or body(x) + shortcut(x) when a shortcut block is written
    | Residual of body: Layer list * shortcut: Layer list option
    | Concat of branches: Layer list list
    /// the use of a `let` block, or an unknown word the checker reports
    | Call of name: string * args: Located<Number> list

and Layer =
    { Syntax: LayerSyntax
      Options: Located<LayerOption> list
      /// the position of the layer's keyword
      Pos: Pos }

type LetBinding =
    { Name: Located<string>
      Parameters: Located<string> list
      Body: Layer list }

/// A value in the training section.
type SettingValue =
    | Word of string
    | Text of string
    | Num of Number

type Setting =
    { Key: Located<string>
      Values: Located<SettingValue> list }

type Item =
    | LayerItem of Layer
    | LetItem of LetBinding

type Program =
    { Items: Item list
      /// None when the file has no `train` section
      Training: Located<Setting list> option }
