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
let maxModelBytes = CnnDsl.Runs.maxModelBytes

/// The text of a model file, or None after saying why it cannot be read (the API's reader:
/// a folder, a missing file, binary data or a file too large for a model).
let internal readModel (console: Console) (path: string) : string option =
    try Some (CnnDsl.Runs.readModel path)
    with :? CnnDsl.ModelFileException as e ->
        console.Err.WriteLine("dsl: " + e.Message)
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
    | :? CnnDsl.DataException as e -> console.Err.WriteLine("dsl: data: " + e.Message); CannotRun
    | :? CnnDsl.CheckpointException as e -> console.Err.WriteLine("dsl: checkpoint " + e.Message); CannotRun
    | :? CnnDsl.ModelSizeException as e -> console.Err.WriteLine("dsl: the model is too large: " + e.Message); CannotRun
    | :? CnnDsl.CnnDslException as e -> console.Err.WriteLine("dsl: " + e.Message); CannotRun
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

/// `--limit N`: the first N training examples and N/5 test examples.
let internal limitSplit (limit: int option) (split: DataSplit) = CnnDsl.Runs.limitSplit (Option.toNullable limit) split

/// A data set by name or path, at the model's input size for the generated `shapes` set.
let internal loadData (name: string) (graph: Graph) = CnnDsl.Runs.loadData name graph

/// A picture's default file name: the model's and the layer's names, made safe for a path.
let internal pictureName (file: string) (what: string) =
    let safe (s: string) = String(s |> Seq.map (fun c -> if Char.IsAsciiLetterOrDigit c || c = '-' || c = '_' then c else '_') |> Array.ofSeq)
    sprintf "%s-%s.png" (safe (Path.GetFileNameWithoutExtension file)) (safe what)

/// The graph at the size of an input: a dynamic input takes the size of what is applied;
/// a fixed one must match it.
let internal sizedFor (text: string) (graph: Graph) (input: string) (image: InputImage) =
    CnnDsl.Runs.sizedFor text graph input image.Height image.Width image.Channels

/// How `dsl` writes the API's training options in messages.
let cliSpelling (option: string) =
    match option with
    | "Resume" -> "--resume" | "Force" -> "--force" | "OutputFolder" -> "--out DIR" | "InitialWeights" -> "--weights"
    | "Data" -> "--data NAME|FOLDER" | "BatchSize" -> "--batch" | "Optimizer" -> "--optimizer"
    | other -> "--" + other.ToLowerInvariant()
