/// The validated layer graph: the contract between the front end (which produces it)
/// and every engine (which consumes it). Plain immutable types only; nothing here
/// knows about syntax, positions or any engine. Layout convention: shapes are
/// height x width x channels (as written in .cnn files and in Keras); an engine may
/// store tensors in another layout internally.
namespace CnnDsl.Graph

/// One spatial size: known at check time, or dynamic (`?` in the source).
[<RequireQualifiedAccess>]
type Dim =
    | Known of size: int
    | Dynamic

    override d.ToString() =
        match d with
        | Known n -> string n
        | Dynamic -> "?"

/// The shape of one example (the batch axis is implied).
type Shape =
    /// height x width x channels
    | Image of height: Dim * width: Dim * channels: int
    /// a plain vector of features
    | Vector of length: int

    override s.ToString() =
        match s with
        | Image (h, w, c) -> sprintf "%Ox%Ox%d" h w c
        | Vector n -> string n

[<RequireQualifiedAccess>]
type Activation =
    | Linear
    | Relu
    | Sigmoid
    | Tanh
    | Softmax
    | Elu of alpha: float
    | LeakyRelu of alpha: float

/// Explicit zero padding per side. `same` is resolved here into TensorFlow's split:
/// the extra row/column (when the total is odd) goes to the bottom/right.
type Padding =
    { Top: int; Bottom: int; Left: int; Right: int }
    static member Zero = { Top = 0; Bottom = 0; Left = 0; Right = 0 }

/// How padding was written; kept so that `same` on a dynamic input can be resolved
/// per input size by an engine, and so that exporters can say `SAME_UPPER`.
type PaddingMode =
    | Valid
    | Same
    | Explicit

type Window =
    { KernelH: int; KernelW: int
      StrideH: int; StrideW: int
      DilationH: int; DilationW: int
      Padding: Padding
      PaddingMode: PaddingMode }

[<RequireQualifiedAccess>]
type PoolKind =
    | Max
    | Average
    | Min

/// A learned convolution. With Groups > 1 the input channels and the filters are split into
/// that many groups, each filter seeing only its group's channels (Keras's Conv2D(groups=));
/// Groups = input channels is a depthwise convolution (Keras's DepthwiseConv2D, output
/// channel c * multiplier + m). The kernel is HWIO with I = input channels / Groups.
type Conv2d =
    { Filters: int
      Window: Window
      Bias: bool
      Groups: int }

/// A convolution with constant kernels (sobel, laplacian, a literal matrix ...),
/// applied depthwise: every input channel is filtered by each kernel, giving
/// channels * Kernels.Length output channels (channel-major: c0k0, c0k1, c1k0 ...).
/// Nothing here is learned; the gradient still flows to the input.
type FixedConv2d =
    { Name: string
      /// each kernel is KernelH rows of KernelW values
      Kernels: float[][][]
      Window: Window }

type Pool2d =
    { Kind: PoolKind
      Window: Window }

type BatchNorm =
    { Epsilon: float
      Momentum: float }

[<RequireQualifiedAccess>]
type LayerKind =
    | Input
    | Conv of Conv2d
    | FixedConv of FixedConv2d
    | Pool of Pool2d
    | GlobalPool of PoolKind
    | Dense of units: int * bias: bool
    | Flatten
    | Reshape
    | Dropout of rate: float
    /// max over groups of `pieces` consecutive channels (Goodfellow et al., 2013; as
    /// tfa.layers.Maxout with num_units = channels / pieces)
    | Maxout of pieces: int
    | BatchNormalization of BatchNorm
    /// an activation on its own (Keras's Activation layer); the node's Activation says which
    | ActivationLayer
    /// element-wise sum of all inputs (residual connections)
    | Add
    /// concatenation on the channel axis (parallel branches)
    | Concat

/// Learned tensors whose starting values the model file gives (hand-set weights, for
/// teaching), in the engines' layouts: conv kernels HWIO (Keras's), dense kernels [in, out].
type GivenWeights =
    { Kernel: float[]
      /// None: the bias starts at zero, as Keras's does
      Bias: float[] option }

type Node =
    { /// index of this node in Graph.Nodes
      Id: int
      /// unique, stable, Keras-like (conv2d, conv2d_1, ...); used for checkpoints and exports
      Name: string
      Kind: LayerKind
      /// applied to the layer's output (fused, as Keras's `activation=` argument)
      Activation: Activation
      /// ids of the nodes feeding this one, in order
      Inputs: int list
      InputShapes: Shape list
      OutputShape: Shape
      /// false for `frozen` layers: their parameters are kept as loaded
      Trainable: bool
      /// the source line the node came from, for an engine's own messages (0 if none)
      SourceLine: int
      /// starting values written in the model file; None: Keras's random initialisation
      Given: GivenWeights option }

[<RequireQualifiedAccess>]
type Loss =
    | CrossEntropy
    | BinaryCrossEntropy
    | MeanSquaredError
    | MeanAbsoluteError

[<RequireQualifiedAccess>]
type Optimizer =
    | Sgd of learningRate: float * momentum: float * nesterov: bool
    | Adam of learningRate: float * beta1: float * beta2: float * epsilon: float
    | RmsProp of learningRate: float * rho: float * momentum: float * epsilon: float
    /// PyTorch's AdamW (Loshchilov and Hutter): w *= 1 - lr wd, then Adam with eps outside the
    /// bias-corrected square root; weight decay on every trainable tensor except the kinds named
    /// in noDecay ("biases", "batchnorm": its gamma and beta)
    | AdamW of learningRate: float * beta1: float * beta2: float * epsilon: float * weightDecay: float * noDecay: string list

/// How the learning rate changes over a run (Keras's LearningRateScheduler, CosineDecay and
/// ReduceLROnPlateau).
[<RequireQualifiedAccess>]
type Schedule =
    /// multiply the rate by `factor` every `every` epochs
    | Step of every: int * factor: float
    /// cosine decay from the rate to 0 over the run's steps (Keras's CosineDecay with
    /// decay_steps = every step of the run; after a warm-up, over the steps that follow it)
    | Cosine
    /// PyTorch's OneCycleLR with max_lr = the rate and its defaults (div_factor 25,
    /// final_div_factor 1e4, three_phase False): from lr / 25 up to lr over the first pctStart
    /// of the steps, then down to lr / 25e4; cosine or (`linear`) straight segments; the
    /// momentum is not cycled (cycle_momentum False)
    | OneCycle of pctStart: float * linear: bool
    /// multiply the rate by `factor` after `patience` epochs without a better validation loss
    | Plateau of patience: int * factor: float

/// Training settings from the file's `train` section. Each is optional:
/// the runtime applies Keras's defaults and the command line overrides.
type Training =
    { Data: string option
      Optimizer: Optimizer option
      Loss: Loss option
      Epochs: int option
      BatchSize: int option
      ValidationSplit: float option
      Seed: int option
      WeightDecay: float option
      Augment: string list
      Schedule: Schedule option
      /// stop after this many epochs without a better validation loss (Keras's EarlyStopping)
      EarlyStopping: int option
      /// Keras's label_smoothing of (categorical or binary) cross-entropy: targets y (1 - a) + a / K
      LabelSmoothing: float option
      /// epochs of linear warm-up of the learning rate, per step, before the schedule
      Warmup: int option
      /// the decay of an exponential moving average of the weights (timm's ModelEmaV2), used
      /// for evaluation and saved in checkpoints
      Ema: float option
      /// test-time augmentation of evaluation: "flip" averages the outputs for the image and its mirror
      Tta: string list
      /// per-channel mean and standard deviation of the training images, computed before a run,
      /// kept in checkpoints, and applied to every input by the engines and exports
      Normalize: bool }
    static member Empty =
        { Data = None; Optimizer = None; Loss = None; Epochs = None; BatchSize = None
          ValidationSplit = None; Seed = None; WeightDecay = None; Augment = []; Schedule = None; EarlyStopping = None
          LabelSmoothing = None; Warmup = None; Ema = None; Tta = []; Normalize = false }

/// Nodes in topological order: every node's inputs come before it.
/// The first node is the Input node and the last node is the output.
type Graph =
    { Nodes: Node list
      Training: Training }
    member g.Input = List.head g.Nodes
    member g.Output = List.last g.Nodes
