namespace CnnDsl

open System
open System.Collections.Generic
open System.Collections.ObjectModel
open CnnDsl.Runtime.Data

/// <summary>
/// Labelled images in memory, height x width x channels each (HWC), stored as bytes (0 to 255,
/// a quarter of the memory of floats) and read back as floats in [0, 1], as training reads them.
/// Read one from files with <see cref="M:CnnDsl.DataSplit.Load(System.String)"/>, or make one
/// from arrays with <see cref="M:CnnDsl.Dataset.FromArrays(System.Single[],System.Int32[],System.Int32,System.Int32,System.Int32,System.String[],System.String)"/>.
/// Immutable: safe to share between threads.
/// </summary>
[<Sealed>]
type Dataset internal (inner: CnnDsl.Runtime.Data.Dataset) =
    let classes = ReadOnlyCollection(Array.copy inner.ClassNames)
    let labels = ReadOnlyCollection(inner.Labels)
    member internal _.Inner = inner
    /// <summary>The data set's name (its folder's name, or the name given).</summary>
    member _.Name = inner.Name
    /// <summary>The number of examples.</summary>
    member _.Count = inner.Count
    /// <summary>The height of each image.</summary>
    member _.Height = inner.Height
    /// <summary>The width of each image.</summary>
    member _.Width = inner.Width
    /// <summary>The channels of each image (1 grey, 3 colour).</summary>
    member _.Channels = inner.Channels
    /// <summary>Values per example: height x width x channels.</summary>
    member _.ExampleSize = inner.ExampleSize
    /// <summary>The names of the classes; a label is an index into them.</summary>
    member _.ClassNames : IReadOnlyList<string> = classes
    /// <summary>Every example's class, in order.</summary>
    member _.Labels : IReadOnlyList<int> = labels
    /// <summary>The shape of an example as the model file writes it: <c>28x28x1</c>.</summary>
    member _.ShapeText = inner.ShapeText

    /// <summary>Copies example <paramref name="index"/> (HWC, values in [0, 1]) into <paramref name="destination"/>,
    /// which holds at least <see cref="P:CnnDsl.Dataset.ExampleSize"/> values.</summary>
    member _.CopyExample(index: int, destination: Span<float32>) =
        if index < 0 || index >= inner.Count then raise (ArgumentOutOfRangeException(nameof index, sprintf "example %d of %d" index inner.Count))
        if destination.Length < inner.ExampleSize then raise (ArgumentException(sprintf "the destination holds %d values; an example has %d" destination.Length inner.ExampleSize, nameof destination))
        inner.CopyExample(index, destination.Slice(0, inner.ExampleSize))

    /// <summary>Example <paramref name="index"/> as a new array (HWC, values in [0, 1]).</summary>
    member this.GetExample(index: int) : float32[] =
        let values = Array.zeroCreate<float32> inner.ExampleSize
        this.CopyExample(index, Span values)
        values

    /// <summary>The examples from <paramref name="start"/> on, <paramref name="count"/> of them (a copy).</summary>
    member _.Slice(start: int, count: int) =
        if start < 0 || count < 0 || start + count > inner.Count then
            raise (ArgumentOutOfRangeException(nameof count, sprintf "examples %d to %d of %d" start (start + count) inner.Count))
        Dataset(inner.Slice(start, count))

    /// <summary>The first <paramref name="count"/> examples (all of them when there are fewer).</summary>
    member this.Take(count: int) = this.Slice(0, min (max 0 count) inner.Count)

    static member private Make(name: string | null, height: int, width: int, channels: int, count: int, pixels: byte[], labels: int[], classNames: string[] | null) =
        let name = match name with null -> "data" | n -> n
        if height < 1 || width < 1 || channels < 1 then
            raise (DataException(name, sprintf "%dx%dx%d: the height, width and channels must each be at least 1" height width channels, null))
        let size = int64 height * int64 width * int64 channels
        if int64 pixels.Length <> int64 count * size then
            raise (DataException(name, sprintf "%d values for %d labels, but %d examples of %dx%dx%d need %d; give one label per image" pixels.Length count count height width channels (int64 count * size), null))
        match labels |> Array.tryFindIndex (fun l -> l < 0) with
        | Some i -> raise (DataException(name, sprintf "label %d (example %d) is negative; labels are class numbers from 0" labels[i] i, null))
        | None -> ()
        // as the readers of files: one stray large label would otherwise ask for a class list of that length
        match labels |> Array.tryFindIndex (fun l -> l >= DataLimits.MaxClasses) with
        | Some i ->
            raise (DataException(name, sprintf "label %d (example %d) is larger than %d, the largest class number accepted; labels are class numbers 0, 1, 2, ..."
                                         labels[i] i (DataLimits.MaxClasses - 1), null))
        | None -> ()
        let classes =
            match classNames with
            | null -> Array.init (if labels.Length = 0 then 1 else Array.max labels + 1) string
            | names ->
                match labels |> Array.tryFindIndex (fun l -> l >= names.Length) with
                | Some i ->
                    let range = if names.Length = 0 then "no class names" else sprintf "%d class names (0 to %d)" names.Length (names.Length - 1)
                    raise (DataException(name, sprintf "label %d (example %d) has no class: there are %s" labels[i] i range, null))
                | None ->
                    match names |> Array.tryFindIndex (fun n -> isNull (box n)) with
                    | Some i -> raise (ArgumentException(sprintf "class name %d is null; give every class a name" i, "classNames"))
                    | None -> Array.copy names
        Dataset(CnnDsl.Runtime.Data.Dataset(name, height, width, channels, pixels, Array.copy labels, classes))

    /// <summary>
    /// A data set from images as floats in [0, 1] (HWC, one after another) and their classes.
    /// The values are kept as bytes, as every data set is: each is rounded to the nearest 1/255.
    /// Without <paramref name="classNames"/>, the classes are named 0, 1, ... up to the largest label.
    /// A <see cref="T:CnnDsl.DataException"/> says what does not fit (lengths, labels, values outside [0, 1]).
    /// </summary>
    static member FromArrays(images: float32[], labels: int[], height: int, width: int, channels: int,
                             [<Runtime.InteropServices.Optional; Runtime.InteropServices.DefaultParameterValue(null: string[] | null)>] classNames: string[] | null,
                             [<Runtime.InteropServices.Optional; Runtime.InteropServices.DefaultParameterValue(null: string | null)>] name: string | null) : Dataset =
        ArgumentNullException.ThrowIfNull images
        ArgumentNullException.ThrowIfNull labels
        match images |> Array.tryFindIndex (fun v -> not (v >= 0.0f && v <= 1.0f)) with
        | Some i ->
            raise (DataException((match name with null -> "data" | n -> n),
                                 sprintf "value %s at index %d is outside [0, 1]; scale the images to [0, 1] (divide bytes by 255)" (images[i].ToString(Globalization.CultureInfo.InvariantCulture)) i, null))
        | None -> ()
        let pixels = images |> Array.map (fun v -> byte (MathF.Round(v * 255.0f)))
        Dataset.Make(name, height, width, channels, labels.Length, pixels, labels, classNames)

    /// <summary>A data set from images as bytes, 0 to 255 (HWC, one after another), and their classes;
    /// as <see cref="M:CnnDsl.Dataset.FromArrays(System.Single[],System.Int32[],System.Int32,System.Int32,System.Int32,System.String[],System.String)"/> otherwise.</summary>
    static member FromBytes(pixels: byte[], labels: int[], height: int, width: int, channels: int,
                            [<Runtime.InteropServices.Optional; Runtime.InteropServices.DefaultParameterValue(null: string[] | null)>] classNames: string[] | null,
                            [<Runtime.InteropServices.Optional; Runtime.InteropServices.DefaultParameterValue(null: string | null)>] name: string | null) : Dataset =
        ArgumentNullException.ThrowIfNull pixels
        ArgumentNullException.ThrowIfNull labels
        Dataset.Make(name, height, width, channels, labels.Length, Array.copy pixels, labels, classNames)

/// <summary>
/// A training set and a test set. <see cref="M:CnnDsl.DataSplit.Load(System.String)"/> reads the
/// data sets <c>dsl run</c> reads: by name (<c>fashion-mnist</c>, <c>mnist</c>, <c>cifar10</c>, looked
/// for in the folders of <c>CNNDSL_DATA</c>, then <c>~/.cache/cnndsl</c>, then <c>/usr/share/datasets</c>;
/// <c>xor</c> and <c>shapes</c> are built in), a <c>.csv</c> file in Kaggle's digit-recognizer layout,
/// or a folder of IDX files, CIFAR-10 binary batches or one folder of images per class.
/// </summary>
[<Sealed>]
type DataSplit(train: Dataset, test: Dataset) =
    do
        ArgumentNullException.ThrowIfNull train
        ArgumentNullException.ThrowIfNull test
    /// <summary>The training examples (a validation split, when asked for, is taken from their end).</summary>
    member _.Train = train
    /// <summary>The test examples.</summary>
    member _.Test = test

    /// <summary>The first <paramref name="count"/> training examples and the first count/5 test
    /// examples (at least 1), as <c>dsl run --limit</c> takes them, for quick tries.</summary>
    member _.Limit(count: int) =
        if count < 1 then raise (CnnDslException(sprintf "limit %d: use at least 1 example" count))
        DataSplit(train.Take count, test.Take(max 1 (count / 5)))

    static member internal Of(split: CnnDsl.Runtime.Data.DataSplit) = DataSplit(Dataset split.Train, Dataset split.Test)

    /// <summary>Reads a data set by name or path; a <see cref="T:CnnDsl.DataException"/> says what was
    /// looked for where when it is missing. The built-in <c>shapes</c> set is made at 16x16x1.</summary>
    static member Load(nameOrPath: string) : DataSplit =
        ArgumentNullException.ThrowIfNull nameOrPath
        Guard.run (fun () -> DataSplit.Of(DataSets.Load nameOrPath))

    /// <summary>As <see cref="M:CnnDsl.DataSplit.Load(System.String)"/>, with the built-in <c>shapes</c> set
    /// made at this size (other sets have the size of their files).</summary>
    static member Load(nameOrPath: string, height: int, width: int, channels: int) : DataSplit =
        ArgumentNullException.ThrowIfNull nameOrPath
        Guard.run (fun () -> DataSplit.Of(DataSets.Load(nameOrPath, height, width, channels)))

    /// <summary>A set with no test part of its own split as <c>dsl run</c> splits one: every tenth
    /// example (a class-balanced, order-independent choice) becomes the test set.</summary>
    static member HoldOut(all: Dataset) : DataSplit =
        ArgumentNullException.ThrowIfNull all
        DataSplit.Of(DataSets.HoldOut all.Inner)

    /// <summary>The data set names known without a path.</summary>
    static member KnownNames : IReadOnlyList<string> = ReadOnlyCollection [| "fashion-mnist"; "mnist"; "cifar10"; "xor"; "shapes" |]

    /// <summary>The folders a named data set is looked for in, in order.</summary>
    static member SearchFolders() : IReadOnlyList<string> = ReadOnlyCollection(Array.ofSeq (DataSets.SearchFolders()))

    /// <summary>The class names of a named data set without loading it; null for a path or an unknown name.</summary>
    static member ClassNamesOf(name: string) : IReadOnlyList<string> | null =
        match DataSets.ClassNamesOf name with
        | null -> null
        | names -> ReadOnlyCollection(Array.copy names)
