namespace CnnDsl

open System

/// <summary>
/// The base of every exception the CnnDsl API throws for bad input: a model file that cannot be
/// read or does not check, a data set, a checkpoint, an export, a training run's settings.
/// Its <see cref="P:System.Exception.Message"/> is the one-line explanation that <c>dsl</c>
/// prints (without the <c>dsl: </c> prefix), never a stack trace; mistakes in the calling code
/// itself (a null argument) are the usual <see cref="T:System.ArgumentException"/>s.
/// </summary>
type CnnDslException(message: string, inner: exn | null) =
    inherit Exception(message, inner)
    /// <summary>An exception with this message.</summary>
    new(message: string) = CnnDslException(message, null)

/// <summary>A model file that cannot be read: missing, a folder, not text, or too large.</summary>
[<Sealed>]
type ModelFileException(path: string, message: string) =
    inherit CnnDslException(message)
    /// <summary>The path that was given.</summary>
    member _.Path = path

/// <summary>A data set or an input (image, text matrix, array) that cannot be used: not found,
/// damaged, of another size than the model's input, with labels outside its classes.</summary>
[<Sealed>]
type DataException(file: string, problem: string, inner: exn | null) =
    inherit CnnDslException(file + ": " + problem, inner)
    /// <summary>The file, folder or data set name the problem is in.</summary>
    member _.File = file
    /// <summary>What is wrong, without the file name.</summary>
    member _.Problem = problem

/// <summary>A checkpoint that cannot be used: missing, damaged, of another model, or made with
/// settings a resumed run does not have.</summary>
[<Sealed>]
type CheckpointException(message: string, inner: exn | null) =
    inherit CnnDslException(message, inner)

/// <summary>A model too large for the memory of this machine at the batch size asked for (the
/// message names the largest batch that fits), or too large for the runtime's limits.</summary>
[<Sealed>]
type ModelSizeException(message: string, inner: exn | null) =
    inherit CnnDslException(message, inner)

/// <summary>A model that cannot be written in the format asked for.</summary>
[<Sealed>]
type ExportException(message: string, inner: exn | null) =
    inherit CnnDslException(message, inner)

/// <summary>Turns the runtime's exceptions into the API's, keeping their messages.</summary>
module internal Guard =
    open System.IO
    open CnnDsl.Runtime
    open CnnDsl.Runtime.Data
    open CnnDsl.Runtime.Training

    /// Runs `f`, rethrowing the runtime's errors about user input as CnnDsl exceptions.
    let run (f: unit -> 'T) : 'T =
        try f () with
        | :? DataError as e -> raise (DataException(e.File, e.Problem, e))
        | :? CheckpointError as e -> raise (CheckpointException(e.Message, e))
        | :? ModelSizeError as e -> raise (ModelSizeException(e.Message, e))
        | :? Export.ExportError as e -> raise (ExportException(e.Message, e))
        | :? IOException as e -> raise (CnnDslException(e.Message, e))
        | :? UnauthorizedAccessException as e -> raise (CnnDslException(e.Message, e))
