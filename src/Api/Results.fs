namespace CnnDsl

open System
open System.Collections.Generic
open System.Collections.ObjectModel

/// <summary>
/// Settings of a training run that override the model file's <c>train</c> section; every one left
/// null (or false) keeps the file's value, else Keras's default (rmsprop, batch 32, one epoch, no
/// validation split, seed 0), as <c>dsl run</c>'s options do.
/// </summary>
[<Sealed>]
type TrainingOptions() =
    /// <summary>The data set by name or path (<c>--data</c>); null: the file's <c>data</c> line.
    /// Ignored when <see cref="P:CnnDsl.TrainingOptions.TrainingData"/> is set.</summary>
    member val Data : string | null = null with get, set
    /// <summary>Data in memory to train and test on, instead of a data set by name.</summary>
    member val TrainingData : DataSplit | null = null with get, set
    /// <summary>The number of epochs (<c>--epochs</c>).</summary>
    member val Epochs : Nullable<int> = Nullable() with get, set
    /// <summary>The batch size (<c>--batch</c>).</summary>
    member val BatchSize : Nullable<int> = Nullable() with get, set
    /// <summary>The learning rate (<c>--lr</c>), for the file's optimizer or the one named here.</summary>
    member val LearningRate : Nullable<float> = Nullable() with get, set
    /// <summary>The optimizer: <c>adam</c>, <c>adamw</c>, <c>sgd</c> or <c>rmsprop</c> (<c>--optimizer</c>).</summary>
    member val Optimizer : string | null = null with get, set
    /// <summary>The seed of the initial weights, the shuffling and dropout (<c>--seed</c>).</summary>
    member val Seed : Nullable<int> = Nullable() with get, set
    /// <summary>The fraction of the training set held out for validation, from its end, in [0, 1) (<c>--validation</c>).</summary>
    member val Validation : Nullable<float> = Nullable() with get, set
    /// <summary>The folder of the checkpoints <c>last.ckpt</c> and <c>best.ckpt</c> (<c>--out</c>);
    /// null: <c>runs/MODEL</c> under the current folder.</summary>
    member val OutputFolder : string | null = null with get, set
    /// <summary>Continue the run in <see cref="P:CnnDsl.TrainingOptions.OutputFolder"/> from its <c>last.ckpt</c>,
    /// exactly as if it had not stopped (<c>--resume</c>).</summary>
    member val Resume = false with get, set
    /// <summary>Start a new run in a folder that holds one, replacing its checkpoints (<c>--force</c>).
    /// Without it (or <see cref="P:CnnDsl.TrainingOptions.Resume"/>) such a folder is refused.</summary>
    member val Force = false with get, set
    /// <summary>A checkpoint to start from (transfer learning, <c>--weights</c>): its tensors whose
    /// names and sizes match this model's are copied.</summary>
    member val InitialWeights : string | null = null with get, set
    /// <summary>Only the first N training examples and the first N/5 test examples (<c>--limit</c>).</summary>
    member val Limit : Nullable<int> = Nullable() with get, set
    /// <summary>Evaluate on the test set after training (true by default), as <c>dsl run</c> does.</summary>
    member val EvaluateTestSet = true with get, set
    /// <summary>The least time between two progress reports; zero (the default): after every batch.</summary>
    member val ProgressInterval = TimeSpan.Zero with get, set

/// <summary>Where a training run is within an epoch, and its running figures.</summary>
[<Sealed>]
type TrainingProgress internal (epoch: int, epochs: int, batch: int, batches: int, loss: float, accuracy: float, imagesPerSecond: float) =
    /// <summary>The epoch, from 1.</summary>
    member _.Epoch = epoch
    /// <summary>The epochs of the run.</summary>
    member _.Epochs = epochs
    /// <summary>The batches done in this epoch (1 to <see cref="P:CnnDsl.TrainingProgress.Batches"/>).</summary>
    member _.Batch = batch
    /// <summary>The batches in an epoch.</summary>
    member _.Batches = batches
    /// <summary>The mean loss of the epoch's batches so far.</summary>
    member _.Loss = loss
    /// <summary>The fraction of the epoch's examples so far the model got right.</summary>
    member _.Accuracy = accuracy
    /// <summary>Training speed in this epoch.</summary>
    member _.ImagesPerSecond = imagesPerSecond

/// <summary>One finished epoch: what <c>dsl run</c> prints as <c>Epoch 3/10 - ...</c>.</summary>
[<Sealed>]
type EpochResult internal (epoch: int, epochs: int, seconds: float, loss: float, accuracy: float,
                           validationLoss: Nullable<float>, validationAccuracy: Nullable<float>, imagesPerSecond: float) =
    /// <summary>The epoch, from 1.</summary>
    member _.Epoch = epoch
    /// <summary>The epochs of the run.</summary>
    member _.Epochs = epochs
    /// <summary>The epoch's training time in seconds.</summary>
    member _.Seconds = seconds
    /// <summary>The mean training loss.</summary>
    member _.Loss = loss
    /// <summary>The training accuracy.</summary>
    member _.Accuracy = accuracy
    /// <summary>The validation loss; null without a validation split.</summary>
    member _.ValidationLoss = validationLoss
    /// <summary>The validation accuracy; null without a validation split.</summary>
    member _.ValidationAccuracy = validationAccuracy
    /// <summary>Training speed.</summary>
    member _.ImagesPerSecond = imagesPerSecond
    /// <summary>The line <c>dsl run</c> prints for the epoch.</summary>
    override _.ToString() =
        let validation =
            if validationLoss.HasValue then sprintf " - val_loss: %.4f - val_accuracy: %.4f" validationLoss.Value validationAccuracy.Value else ""
        sprintf "Epoch %d/%d - %.1fs - %s img/s - loss: %.4f - accuracy: %.4f%s"
            epoch epochs seconds (CnnDsl.Dsl.Messages.thousands (int64 imagesPerSecond)) loss accuracy validation

/// <summary>A model's loss and accuracy on a data set, with the confusion matrix.</summary>
[<Sealed>]
type Evaluation internal (loss: float, accuracy: float, count: int, confusion: int[,], classNames: string[]) =
    let rows = confusion.GetLength 0
    let columns = confusion.GetLength 1
    /// <summary>The mean loss (the model's loss function).</summary>
    member _.Loss = loss
    /// <summary>The fraction of examples whose most likely class is their label.</summary>
    member _.Accuracy = accuracy
    /// <summary>The number of examples evaluated.</summary>
    member _.Count = count
    /// <summary>The data's class names.</summary>
    member _.ClassNames : IReadOnlyList<string> = ReadOnlyCollection(Array.copy classNames)
    /// <summary>False past 1,000 classes: the matrix is then not kept (and is empty).</summary>
    member _.HasConfusionMatrix = rows > 0
    /// <summary>True when the model has more outputs than the data has classes: the matrix then has one
    /// more column, counting predictions of no class (<c>other</c>).</summary>
    member _.HasOtherColumn = columns > rows
    /// <summary>How many examples of class <paramref name="trueClass"/> were predicted as
    /// <paramref name="predictedClass"/> (the class count itself: <c>other</c>).</summary>
    member _.Confusion(trueClass: int, predictedClass: int) = confusion[trueClass, predictedClass]
    /// <summary>The confusion matrix, a row per true class, a column per predicted class (a copy).</summary>
    member _.ConfusionMatrix() : int[][] = Array.init rows (fun r -> Array.init columns (fun c -> confusion[r, c]))
    /// <summary>The fraction of the examples of a class predicted right; NaN when it has none.</summary>
    member _.ClassAccuracy(classIndex: int) =
        let total = Seq.sum (seq { for p in 0 .. columns - 1 -> confusion[classIndex, p] })
        if total = 0 then Double.NaN else float confusion[classIndex, classIndex] / float total
    static member internal Of(e: CnnDsl.Runtime.Training.Evaluation, count: int) = Evaluation(e.Loss, e.Accuracy, count, e.Confusion, e.ClassNames)

/// <summary>How a training run ended.</summary>
type TrainingStatus =
    /// <summary>Every epoch ran.</summary>
    | Completed = 0
    /// <summary>The cancellation token stopped it at the end of a batch; <c>last.ckpt</c> holds where, for a resume.</summary>
    | Cancelled = 1
    /// <summary>Early stopping (the file's <c>early_stopping</c>) ended it.</summary>
    | StoppedEarly = 2
    /// <summary>The loss became infinite or NaN; the last good checkpoint is <c>last.ckpt</c>.</summary>
    | Diverged = 3

/// <summary>The settings a training run used, once the options, the file and the defaults are combined.</summary>
[<Sealed>]
type TrainingSettingsUsed internal (epochs: int, batchSize: int, optimizer: string, learningRate: float, loss: string, seed: int, validation: float, data: string) =
    /// <summary>The epochs of the run.</summary>
    member _.Epochs = epochs
    /// <summary>The batch size.</summary>
    member _.BatchSize = batchSize
    /// <summary><c>adam</c>, <c>adamw</c>, <c>sgd</c> or <c>rmsprop</c>.</summary>
    member _.Optimizer = optimizer
    /// <summary>The learning rate.</summary>
    member _.LearningRate = learningRate
    /// <summary>The loss: <c>crossentropy</c>, <c>binary crossentropy</c>, <c>mse</c> or <c>mae</c>.</summary>
    member _.Loss = loss
    /// <summary>The seed.</summary>
    member _.Seed = seed
    /// <summary>The fraction of the training set held out for validation.</summary>
    member _.Validation = validation
    /// <summary>The data set's name.</summary>
    member _.Data = data

/// <summary>What a training run did: its epochs, how it ended, its checkpoints, the test result.</summary>
[<Sealed>]
type TrainingResult internal (status: TrainingStatus, message: string | null, epochs: IReadOnlyList<EpochResult>, folder: string,
                              test: Evaluation | null, notes: IReadOnlyList<string>, settings: TrainingSettingsUsed,
                              trainCount: int, validationCount: int, testCount: int, startEpoch: int, startBatch: int) =
    /// <summary>How the run ended.</summary>
    member _.Status = status
    /// <summary>True when every epoch ran (or early stopping ended the run as asked).</summary>
    member _.Succeeded = status = TrainingStatus.Completed || status = TrainingStatus.StoppedEarly
    /// <summary>Why the run stopped before its last epoch, as <c>dsl run</c> says it; null when it did not.</summary>
    member _.Message : string | null = message
    /// <summary>The epochs this call ran, in order.</summary>
    member _.Epochs = epochs
    /// <summary>The folder of the checkpoints.</summary>
    member _.OutputFolder = folder
    /// <summary>The checkpoint after the last epoch or batch run: what <see cref="P:CnnDsl.TrainingOptions.Resume"/> continues.</summary>
    member _.LastCheckpoint = IO.Path.Combine(folder, "last.ckpt")
    /// <summary>The checkpoint of the epoch with the best validation (else training) accuracy; null when none was written.</summary>
    member _.BestCheckpoint : string | null = let p = IO.Path.Combine(folder, "best.ckpt") in if IO.File.Exists p then p else null
    /// <summary>The result on the test set; null when the run did not complete, the test set is empty,
    /// or <see cref="P:CnnDsl.TrainingOptions.EvaluateTestSet"/> was false.</summary>
    member _.Test : Evaluation | null = test
    /// <summary>Remarks <c>dsl run</c> prints before training (tensors transferred, outputs beyond the classes).</summary>
    member _.Notes = notes
    /// <summary>The settings the run used: the options over the file's <c>train</c> section over the defaults.</summary>
    member _.Settings = settings
    /// <summary>Training examples (after the validation split).</summary>
    member _.TrainingExamples = trainCount
    /// <summary>Validation examples.</summary>
    member _.ValidationExamples = validationCount
    /// <summary>Test examples.</summary>
    member _.TestExamples = testCount
    /// <summary>The epoch the run started at, from 0 (more than 0 when resumed).</summary>
    member _.StartEpoch = startEpoch
    /// <summary>The batch within that epoch the run started at (more than 0 when resumed within an epoch).</summary>
    member _.StartBatch = startBatch

/// <summary>One class and its probability.</summary>
[<Sealed>]
type ClassProbability internal (index: int, name: string, probability: float32) =
    /// <summary>The class number (the output's index).</summary>
    member _.Index = index
    /// <summary>The class name (the data set's, else the number).</summary>
    member _.Name = name
    /// <summary>The model's output for the class: a probability after softmax.</summary>
    member _.Probability = probability
    /// <summary><c>name 0.9731</c>, as <c>dsl predict</c> prints it.</summary>
    override _.ToString() = sprintf "%s %.4f" name probability

/// <summary>A model's output for one input: the probability of every class.</summary>
[<Sealed>]
type Prediction internal (probabilities: float32[], classNames: string[]) =
    let name i = if i < classNames.Length then classNames[i] else string i
    let best =
        if probabilities.Length = 1 then (if probabilities[0] >= 0.5f then 1 else 0)
        else
            let mutable b = 0
            for i in 1 .. probabilities.Length - 1 do if probabilities[i] > probabilities[b] then b <- i
            b
    /// <summary>The model's outputs, one per class (one value, the probability of class 1, for a model ending in one sigmoid unit).</summary>
    member _.Probabilities : IReadOnlyList<float32> = ReadOnlyCollection probabilities
    /// <summary>A copy of the outputs as an array.</summary>
    member _.ToArray() = Array.copy probabilities
    /// <summary>The most likely class's number (for one output: 1 when it is at least 0.5, else 0).</summary>
    member _.BestIndex = best
    /// <summary>The most likely class's name.</summary>
    member _.BestClass = name best
    /// <summary>The most likely class's probability (for one output: the output, or 1 minus it for class 0).</summary>
    member _.BestProbability = if probabilities.Length = 1 then (if best = 1 then probabilities[0] else 1.0f - probabilities[0]) else probabilities[best]
    /// <summary>The <paramref name="count"/> most likely classes, most likely first (for one output: classes 1 and 0,
    /// with the output and 1 minus it).</summary>
    member _.Top(count: int) : IReadOnlyList<ClassProbability> =
        if count < 1 then raise (ArgumentOutOfRangeException(nameof count, "ask for at least 1 class"))
        // one output (a sigmoid unit) is the probability of class 1: two classes, as BestClass reads it
        let classes =
            if probabilities.Length = 1 then [| ClassProbability(0, name 0, 1.0f - probabilities[0]); ClassProbability(1, name 1, probabilities[0]) |]
            else probabilities |> Array.mapi (fun i p -> ClassProbability(i, name i, p))
        let ranked =
            classes
            |> Array.sortWith (fun a b -> compare b.Probability a.Probability)
            |> Array.truncate count
        ReadOnlyCollection ranked
    /// <summary>The three most likely classes, as <c>dsl predict</c> prints them.</summary>
    override this.ToString() = String.Join(", ", this.Top(3) |> Seq.map string)

/// <summary>One row of the summary table (<c>dsl summary</c>, Keras's <c>model.summary()</c>).</summary>
[<Sealed>]
type LayerSummary internal (name: string, kind: string, activation: string, line: int, outputShape: TensorShape, inputs: IReadOnlyList<string>,
                            trainable: int64, nonTrainable: int64, multiplyAdds: Nullable<int64>, activationBytes: Nullable<int64>) =
    /// <summary>The layer's name (<c>conv2d</c>, <c>dense_1</c>): the names checkpoints and exports use.</summary>
    member _.Name = name
    /// <summary>Keras's class name of the layer: <c>Conv2D</c>, <c>MaxPooling2D</c>, <c>Dense</c> ...</summary>
    member _.Kind = kind
    /// <summary>The activation applied to the output: <c>linear</c>, <c>relu</c>, <c>softmax</c> ...</summary>
    member _.Activation = activation
    /// <summary>The line of the model file the layer comes from (0 for none).</summary>
    member _.Line = line
    /// <summary>The output shape of one example.</summary>
    member _.OutputShape = outputShape
    /// <summary>The names of the layers feeding this one.</summary>
    member _.Inputs = inputs
    /// <summary>Parameters, trainable and not.</summary>
    member _.Parameters = trainable + nonTrainable
    /// <summary>Parameters that training changes.</summary>
    member _.TrainableParameters = trainable
    /// <summary>Parameters that training leaves (batchnorm's moving statistics, frozen layers).</summary>
    member _.NonTrainableParameters = nonTrainable
    /// <summary>Multiply-adds for one example (FLOPs are about twice as many); null when the size is dynamic.</summary>
    member _.MultiplyAdds = multiplyAdds
    /// <summary>Bytes of one example's output, in float32; null when the size is dynamic.</summary>
    member _.ActivationBytes = activationBytes

/// <summary>The summary table as data: a row per layer and the totals.</summary>
[<Sealed>]
type ModelSummary internal (name: string, layers: IReadOnlyList<LayerSummary>, text: string) =
    let sumOpt (f: LayerSummary -> Nullable<int64>) =
        if layers |> Seq.forall (fun l -> (f l).HasValue) then Nullable(layers |> Seq.sumBy (fun l -> (f l).Value)) else Nullable()
    /// <summary>The model's name.</summary>
    member _.ModelName = name
    /// <summary>A row per layer, input first.</summary>
    member _.Layers = layers
    /// <summary>All parameters.</summary>
    member _.TotalParameters = layers |> Seq.sumBy (fun l -> l.Parameters)
    /// <summary>Parameters that training changes.</summary>
    member _.TrainableParameters = layers |> Seq.sumBy (fun l -> l.TrainableParameters)
    /// <summary>Parameters that training leaves.</summary>
    member _.NonTrainableParameters = layers |> Seq.sumBy (fun l -> l.NonTrainableParameters)
    /// <summary>Multiply-adds per image; null when the size is dynamic.</summary>
    member _.MultiplyAdds = sumOpt (fun l -> l.MultiplyAdds)
    /// <summary>Activation memory per image in bytes (forward pass, float32); null when the size is dynamic.</summary>
    member _.ActivationBytes = sumOpt (fun l -> l.ActivationBytes)
    /// <summary>The table as <c>dsl summary</c> prints it.</summary>
    override _.ToString() = text

/// <summary>One layer of <c>dsl explain</c>: its output size and parameter count worked out with its own numbers.</summary>
[<Sealed>]
type LayerExplanation internal (name: string, kind: string, line: int, inputShape: TensorShape, outputShape: TensorShape,
                                heading: string, sizeLines: IReadOnlyList<string>, parameterLine: string, notes: IReadOnlyList<string>) =
    /// <summary>The layer's name.</summary>
    member _.Name = name
    /// <summary>Keras's class name of the layer.</summary>
    member _.Kind = kind
    /// <summary>The model file's line.</summary>
    member _.Line = line
    /// <summary>The shape going in.</summary>
    member _.InputShape = inputShape
    /// <summary>The shape coming out.</summary>
    member _.OutputShape = outputShape
    /// <summary>The heading <c>dsl explain</c> prints: <c>conv2d (Conv2D, relu), line 3: 28x28x1 -> 28x28x6</c>.</summary>
    member _.Heading = heading
    /// <summary>How the output size follows, with the numbers: <c>height and width: out = floor((28 + 2*0 - 5)/1) + 1 = 24</c>.</summary>
    member _.SizeLines = sizeLines
    /// <summary>How the parameter count follows: <c>params = (5*5*1 + 1) * 6 = 156</c>.</summary>
    member _.ParameterLine = parameterLine
    /// <summary>Remarks, such as rows a stride never covers.</summary>
    member _.Notes = notes

/// <summary>The memory a training run needs at a batch size (<c>dsl summary --batch</c>), from the runtime's memory plan.</summary>
[<Sealed>]
type TrainingMemory internal (batchSize: int, optimizer: string, activations: int64, workspace: int64, parameters: int64, optimizerState: int64) =
    /// <summary>The batch size.</summary>
    member _.BatchSize = batchSize
    /// <summary>The optimizer assumed (the file's, else rmsprop).</summary>
    member _.Optimizer = optimizer
    /// <summary>Bytes of activations and their gradients.</summary>
    member _.Activations = activations
    /// <summary>Bytes of the layers' buffers (im2col columns).</summary>
    member _.Workspace = workspace
    /// <summary>Bytes of the parameters and their gradients.</summary>
    member _.Parameters = parameters
    /// <summary>Bytes of the optimizer's state.</summary>
    member _.OptimizerState = optimizerState
    /// <summary>All of it.</summary>
    member _.Total = activations + workspace + parameters + optimizerState
