/// What every command shares: the console, exit codes, reading and checking a model file,
/// turning bad files into one-line messages, and fitting a model to its data or input.
module CnnDsl.Cli.Shell

open System
open System.IO
open CnnDsl.Graph
open CnnDsl.Dsl
open CnnDsl.Runtime
open CnnDsl.Runtime.Data
open CnnDsl.Runtime.Training

/// Exit codes: 0 clean, 1 the model has errors, 2 the command could not run (usage, files).
let Clean, ModelErrors, CannotRun = 0, 1, 2

type Console = { Out: TextWriter; Err: TextWriter }

/// A model file is a few hundred lines of text; past this it is taken for a wrong file.
let maxModelBytes = 4 * 1024 * 1024

let internal readModel (console: Console) (path: string) : string option =
    try
        if Directory.Exists path then
            console.Err.WriteLine(sprintf "dsl: '%s' is a folder; give a model file such as models/lenet.cnn" path)
            None
        elif not (File.Exists path) then
            console.Err.WriteLine(sprintf "dsl: cannot read '%s': no such file" path)
            None
        else
            // Read at most one byte past the limit: a device (/dev/zero) or a huge file
            // reports no useful length, so the length is never trusted.
            use stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite)
            let buffer = Array.zeroCreate<byte> (maxModelBytes + 1)
            let mutable count = 0
            let mutable reading = true
            while reading && count < buffer.Length do
                let n = stream.Read(buffer, count, buffer.Length - count)
                if n = 0 then reading <- false else count <- count + n
            let nul = Array.IndexOf(buffer, 0uy, 0, count)
            if nul >= 0 then
                console.Err.WriteLine(sprintf "dsl: '%s' is not a text file (byte %d is NUL); give a model file such as models/lenet.cnn" path nul)
                None
            elif count > maxModelBytes then
                console.Err.WriteLine(sprintf "dsl: '%s' is larger than %d MB; a model file is a short text file (give the .cnn file, not a data set or checkpoint)" path (maxModelBytes / 1024 / 1024))
                None
            else Some (Text.UTF8Encoding(false).GetString(buffer, 0, count).TrimStart('\uFEFF'))
    with
    | :? IOException | :? UnauthorizedAccessException as e ->
        console.Err.WriteLine(sprintf "dsl: cannot read '%s': %s" path e.Message)
        None

/// Reads and checks a model, printing its diagnostics; runs `f` on a clean model (with the
/// file's text, for commands that re-check it at another input size).
let internal withModel (console: Console) (file: string) (f: string -> CnnDsl.Graph.Graph -> int) : int =
    match readModel console file with
    | None -> CannotRun
    | Some text ->
        match Frontend.compile text with
        | Ok (graph, warnings) ->
            console.Err.Write(Diagnostic.renderAll file text warnings)
            f text graph
        | Error diagnostics ->
            console.Err.Write(Diagnostic.renderAll file text diagnostics)
            ModelErrors

/// Runs a command's body, turning bad data, checkpoints and files into one-line messages.
let internal guarded (console: Console) (body: unit -> int) : int =
    try body () with
    | :? DataError as e -> console.Err.WriteLine("dsl: data: " + e.Message); CannotRun
    | :? CheckpointError as e -> console.Err.WriteLine("dsl: checkpoint " + e.Message); CannotRun
    | :? ModelSizeError as e -> console.Err.WriteLine("dsl: the model is too large: " + e.Message); CannotRun
    | :? IOException | :? UnauthorizedAccessException as e -> console.Err.WriteLine("dsl: " + e.Message); CannotRun

/// Exit codes beyond the checker's: an interrupted run (as a shell reports SIGINT), a diverged one.
let Interrupted, Diverged = 130, 3

/// What is wrong with an output file given to `flag`, found before any work is done: an empty
/// name, or a folder (`example` is a file name to suggest).
let fileProblem (flag: string) (path: string) (example: string) : string option =
    if String.IsNullOrWhiteSpace path then Some (sprintf "%s: the file name is empty; give one, such as %s" flag example)
    elif Directory.Exists path then Some (sprintf "%s %s: that is a folder; give a file name, such as %s" flag path (Path.Combine(path, example)))
    else None

/// The same for an output folder: an empty name, or an existing file.
let folderProblem (flag: string) (path: string) (example: string) : string option =
    if String.IsNullOrWhiteSpace path then Some (sprintf "%s: the folder name is empty; give one, such as %s" flag example)
    elif File.Exists path then Some (sprintf "%s %s: that is a file, not a folder; give a folder, such as %s" flag path example)
    else None

/// Refuses input values that are not finite float32 numbers (NaN, infinities, beyond 3.4e38),
/// naming the file and the value's row, column and channel.
let internal checkFinite (file: string) (image: InputImage) =
    let limit = float Single.MaxValue
    match image.Values |> Array.tryFindIndex (fun v -> not (Double.IsFinite v) || abs v > limit) with
    | None -> ()
    | Some i ->
        let c = image.Channels
        let pixel = i / c
        let where = sprintf "row %d, column %d%s" (pixel / image.Width + 1) (pixel % image.Width + 1) (if c > 1 then sprintf ", channel %d" (i % c + 1) else "")
        raise (DataError(file, sprintf "holds %s at %s: inputs must be finite numbers between -3.4e38 and 3.4e38; correct that value" (image.Values[i].ToString(Globalization.CultureInfo.InvariantCulture)) where))

let internal limitSplit (limit: int option) (split: DataSplit) =
    match limit with
    | Some n -> DataSplit(split.Train.Slice(0, min n split.Train.Count), split.Test.Slice(0, min (max 1 (n / 5)) split.Test.Count))
    | None -> split

let internal isDynamic (graph: Graph) =
    match graph.Input.OutputShape with Image (h, w, _) -> h = Dim.Dynamic || w = Dim.Dynamic | Vector _ -> false

/// A data set by name or path; the generated `shapes` set is made at the model's input size.
let internal loadData (name: string) (graph: Graph) =
    match graph.Input.OutputShape with
    | Image (Dim.Known h, Dim.Known w, c) -> DataSets.Load(name, h, w, c)
    | _ -> DataSets.Load name

/// A model with a dynamic input (`input ?x?x1`) trains and evaluates at its data set's size.
let internal sizedToData (text: string) (graph: Graph) (data: Dataset) =
    if not (isDynamic graph) then graph
    else
        match Frontend.compileWithInput text data.Height data.Width with
        | Some (Ok (g, _)) -> g
        | Some (Error ds) ->
            raise (DataError(data.Name, sprintf "is %s, and at %dx%d the model does not check: %s" data.ShapeText data.Height data.Width
                                            (ds |> List.map (fun d -> d.Message) |> String.concat "; ")))
        | None -> graph

/// A picture's default file name: the model's and the layer's names, made safe for a path.
let internal pictureName (file: string) (what: string) =
    let safe (s: string) = String(s |> Seq.map (fun c -> if Char.IsAsciiLetterOrDigit c || c = '-' || c = '_' then c else '_') |> Array.ofSeq)
    sprintf "%s-%s.png" (safe (Path.GetFileNameWithoutExtension file)) (safe what)

/// An input must have the model's input shape (a vector model takes any shape of its length).
let internal checkInput (graph: Graph) (file: string) (image: InputImage) =
    let fits =
        match graph.Input.OutputShape with
        | Image (Dim.Known h, Dim.Known w, c) -> h = image.Height && w = image.Width && c = image.Channels
        | shape -> Cost.elements shape = Some (int64 image.Values.Length)
    if not fits then
        raise (DataError(file, sprintf "is %dx%dx%d but the model's input is %O; give a matching input (resize images first) or change the model's input line"
                                    image.Height image.Width image.Channels graph.Input.OutputShape))

/// The graph at the size of an input: a dynamic input takes the size of what is applied;
/// a fixed one must match it.
let internal sizedFor (text: string) (graph: Graph) (input: string) (image: InputImage) =
    let graph =
        match graph.Input.OutputShape with
        | Image (h, w, _) when h = Dim.Dynamic || w = Dim.Dynamic ->
            match Frontend.compileWithInput text image.Height image.Width with
            | Some (Ok (g, _)) -> g
            | Some (Error ds) ->
                raise (DataError(input, sprintf "at %dx%d the model does not check: %s" image.Height image.Width (ds |> List.map (fun d -> d.Message) |> String.concat "; ")))
            | None -> graph
        | _ -> graph
    checkInput graph input image
    graph

/// The model itself when its sizes are fixed; an any-size (?x?) model at the first size it
/// accepts (28, 32, then 16 to 256): its weights are the same at every size.
let internal concreteGraph (text: string) (graph: Graph) =
    if not (isDynamic graph) then Some graph
    else [ 28; 32; yield! [ 16 .. 256 ] ] |> List.tryPick (fun n -> match Frontend.compileWithInput text n n with Some (Ok (g, _)) -> Some g | _ -> None)
