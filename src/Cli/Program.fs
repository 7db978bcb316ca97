module CnnDsl.Cli.Program

open System
open System.CommandLine

let private console () : Shell.Console = { Out = Console.Out; Err = Console.Error }

/// An option's value in a validator, or None when its text does not convert (`--batch abc`):
/// that is the parser's own error (ParseResult.Errors), and GetValueOrDefault would throw.
let private valueOf<'T> (r: System.CommandLine.Parsing.OptionResult) : 'T option =
    try Some (r.GetValueOrDefault<'T>()) with :? InvalidOperationException -> None

let private checkCommand () =
    let files = Argument<string[]>("files", Description = "model files (.cnn)", Arity = ArgumentArity.OneOrMore)
    let format = Option<string>("--format", Description = "text (default) or json", DefaultValueFactory = (fun _ -> "text"))
    format.AcceptOnlyFromAmong("text", "json") |> ignore
    let command = Command("check", "Report every mistake in the model files, with positions; prints nothing when they are clean.")
    command.Arguments.Add files
    command.Options.Add format
    command.SetAction(fun (r: ParseResult) ->
        CheckCommands.check (console ()) (List.ofArray (r.GetValue files)) (r.GetValue format = "json"))
    command

let private summaryCommand () =
    let file = Argument<string>("file", Description = "a model file (.cnn)")
    let batch = Option<int>("--batch", Description = "also print the training working set at this batch size")
    batch.Validators.Add(fun result ->
        if valueOf<int> result |> Option.exists (fun v -> v < 1) then result.AddError "--batch must be a whole number of at least 1")
    let graph = Option<string>("--graph", Description = "print the layer graph instead, as Graphviz DOT (dot) or Mermaid (mermaid), shapes on the edges")
    graph.AcceptOnlyFromAmong("dot", "mermaid") |> ignore
    let command = Command("summary", "Print the layer table: output shapes, parameters, multiply-adds and memory.")
    command.Arguments.Add file
    command.Options.Add batch
    command.Options.Add graph
    command.SetAction(fun (r: ParseResult) ->
        let b = r.GetResult batch |> Option.ofObj |> Option.map (fun _ -> r.GetValue batch)
        CheckCommands.summary (console ()) (r.GetValue file) b (r.GetValue graph |> Option.ofObj))
    command

let private explainCommand () =
    let file = Argument<string>("file", Description = "a model file (.cnn)")
    let markdown = Option<bool>("--markdown", Description = "a Markdown table instead of text")
    let command = Command("explain", "Work out every layer's output size and parameter count with the layer's own numbers.")
    command.Arguments.Add file
    command.Options.Add markdown
    command.SetAction(fun (r: ParseResult) -> CheckCommands.explain (console ()) (r.GetValue file) (r.GetValue markdown))
    command

let private gradcheckCommand () =
    let file = Argument<string>("file", Description = "a model file (.cnn)")
    let weights = Option<string>("--weights", Description = "check at these trained weights instead of random ones")
    let breakLayer = Option<string>("--break", Description = "break this layer's backward pass on purpose, to see what a failure looks like")
    let batch = Option<int>("--batch", Description = "examples per batch (default 2; deep batchnorm models need 8)", DefaultValueFactory = (fun _ -> 2))
    let command = Command("gradcheck", "Check every gradient of the model against finite differences, in double precision.")
    command.Arguments.Add file
    command.Options.Add weights
    command.Options.Add breakLayer
    command.Options.Add batch
    command.SetAction(fun (r: ParseResult) ->
        CheckCommands.gradcheck (console ()) (r.GetValue file) (r.GetValue weights |> Option.ofObj) (r.GetValue breakLayer |> Option.ofObj) (r.GetValue batch))
    command

let private applyCommand () =
    let file = Argument<string>("file", Description = "a model file (.cnn)")
    let input = Argument<string>("input", Description = "a text matrix (rows of numbers; channels separated by a blank line) or an image")
    let weights = Option<string>("--weights", Description = "a checkpoint (learned layers otherwise keep their random initial weights)")
    let seed = Option<int>("--seed", Description = "seed of the initial weights")
    seed.Validators.Add(fun r -> if valueOf<int> r |> Option.exists (fun v -> v < 0) then r.AddError "--seed must be 0 or more")
    let png = Option<string>("--png", Description = "write each layer's output as a PNG into this folder instead of printing it")
    let command = Command("apply", "Run the model on one input and print every layer's output.")
    command.Arguments.Add file
    command.Arguments.Add input
    command.Options.Add weights
    command.Options.Add seed
    command.Options.Add png
    command.SetAction(fun (r: ParseResult) ->
        ApplyCommands.apply (console ()) (r.GetValue file) (r.GetValue input) (r.GetValue weights |> Option.ofObj) (r.GetValue seed) (r.GetValue png |> Option.ofObj))
    command

let private backpropCommand () =
    let file = Argument<string>("file", Description = "a model file (.cnn)")
    let input = Argument<string>("input", Description = "a text matrix (rows of numbers; channels separated by a blank line) or an image")
    let target = Option<string>("--target", Description = "the wanted output: values (\"1 1 1 1\"), a class number (cross-entropy), or a file of values", Required = true)
    let loss = Option<string>("--loss", Description = "mse, mae, crossentropy or binary_crossentropy (default: the file's train section, else crossentropy)")
    let weights = Option<string>("--weights", Description = "a checkpoint (otherwise the file's hand-set weights, or random ones)")
    let seed = Option<int>("--seed", Description = "seed of the random initial weights")
    let command = Command("backprop", "One forward and backward pass: every layer's output, the loss, and every gradient (dL/d(output), weights, bias, input).")
    command.Arguments.Add file
    command.Arguments.Add input
    command.Options.Add target
    command.Options.Add loss
    command.Options.Add weights
    command.Options.Add seed
    command.SetAction(fun (r: ParseResult) ->
        Backprop.backprop (console ()) (r.GetValue file) (r.GetValue input) (r.GetValue target) (r.GetValue loss |> Option.ofObj)
            (r.GetValue weights |> Option.ofObj) (r.GetValue seed))
    command

let private predictCommand () =
    let file = Argument<string>("file", Description = "a model file (.cnn)")
    let images = Argument<string[]>("images", Description = "images (png, jpg, bmp) or text matrices", Arity = ArgumentArity.OneOrMore)
    let weights = Option<string>("--weights", Description = "a checkpoint of the model")
    let top = Option<int>("--top", Description = "how many classes to show", DefaultValueFactory = (fun _ -> 3))
    top.Validators.Add(fun r -> if valueOf<int> r |> Option.exists (fun v -> v < 1) then r.AddError "--top must be at least 1")
    let command = Command("predict", "Print the most likely classes of each image, with their probabilities.")
    command.Arguments.Add file
    command.Arguments.Add images
    command.Options.Add weights
    command.Options.Add top
    command.SetAction(fun (r: ParseResult) ->
        ApplyCommands.predict (console ()) (r.GetValue file) (r.GetValue weights |> Option.ofObj) (List.ofArray (r.GetValue images)) (r.GetValue top))
    command

let private exportCommand () =
    let file = Argument<string>("file", Description = "a model file (.cnn)")
    let weights = Option<string>("--weights", Description = "a checkpoint (the initial weights otherwise)")
    let output = Option<string>("--output", "-o", Description = "the .onnx file to write (a folder with --format pytorch, a .ckpt with --format weights)", Required = true)
    let format =
        Option<string>("--format", DefaultValueFactory = (fun _ -> "onnx"),
                       Description = "onnx (default), pytorch (a Python project) or weights (a checkpoint without optimizer state)")
    format.AcceptOnlyFromAmong("onnx", "pytorch", "weights") |> ignore
    let command = Command("export", "Write the model and its weights as an ONNX file (opset 13), or as a PyTorch project.")
    command.Arguments.Add file
    command.Options.Add weights
    command.Options.Add output
    command.Options.Add format
    command.SetAction(fun (r: ParseResult) -> ExportCommand.exportAs (console ()) (r.GetValue file) (r.GetValue weights |> Option.ofObj) (r.GetValue output) (r.GetValue format))
    command

let private runOptions () =
    let data = Option<string>("--data", Description = "data set name (fashion-mnist, mnist, cifar10, xor, shapes) or folder")
    let epochs = Option<Nullable<int>>("--epochs", Description = "number of epochs")
    let batch = Option<Nullable<int>>("--batch", Description = "batch size")
    let lr = Option<Nullable<float>>("--lr", Description = "learning rate")
    let optimizer = Option<string>("--optimizer", Description = "adam, adamw, sgd or rmsprop")
    let seed = Option<Nullable<int>>("--seed", Description = "seed for initialisation, shuffling and dropout")
    let validation = Option<Nullable<float>>("--validation", Description = "fraction of the training set held out for validation")
    let out = Option<string>("--out", Description = "folder for checkpoints (default runs/MODEL)")
    let resume = Option<bool>("--resume", Description = "continue from the folder's last checkpoint")
    let force = Option<bool>("--force", Description = "start a new run in a folder that holds one, replacing its checkpoints")
    let quiet = Option<bool>("--quiet", Description = "print only the test accuracy")
    let json = Option<bool>("--json", Description = "print one JSON record per epoch")
    let limit = Option<Nullable<int>>("--limit", Description = "use only the first N training examples and the first N/5 test examples (at least 1)")
    let weights = Option<string>("--weights", Description = "a checkpoint to start from (run) or to evaluate (eval)")
    let plot = Option<string>("--plot", Description = "draw the training curves (curves.png) and the confusion matrix (confusion.png) into this folder")
    // Each refuses a value out of range; a value that does not convert is the parser's error.
    let check (o: Option<Nullable<'a>>) (bad: 'a -> bool) (message: string) =
        o.Validators.Add(fun r ->
            match valueOf<Nullable<'a>> r with
            | Some v when v.HasValue && bad v.Value -> r.AddError message
            | _ -> ())
    check epochs (fun v -> v < 1) "--epochs must be at least 1"
    check batch (fun v -> v < 1) "--batch must be at least 1"
    check limit (fun v -> v < 1) "--limit must be at least 1"
    // as the file's `seed` line: the seed is a non-negative number
    check seed (fun v -> v < 0) "--seed must be 0 or more"
    check lr (fun v -> not (v > 0.0)) "--lr must be above 0"
    check validation (fun v -> v < 0.0 || v >= 1.0 || Double.IsNaN v) "--validation must be in [0, 1)"
    let all: System.CommandLine.Option list = [ data; epochs; batch; lr; optimizer; seed; validation; out; resume; force; quiet; json; limit; weights; plot ]
    // The test hook CNNDSL_PAUSE_AT=EPOCH,BATCH (RunCommand.RunOptions.PauseAt).
    let pauseAt =
        match Environment.GetEnvironmentVariable "CNNDSL_PAUSE_AT" with
        | null -> None
        | text ->
            match text.Split ',' |> Array.map Int32.TryParse with
            | [| true, e; true, b |] when e >= 1 && b >= 0 -> Some (e, b)
            | _ -> None
    let read (r: ParseResult) : RunCommand.RunOptions =
        let n (o: Option<Nullable<'a>>) = let v = r.GetValue o in if v.HasValue then Some v.Value else None
        { Data = r.GetValue data |> Option.ofObj; Epochs = n epochs; Batch = n batch; LearningRate = n lr
          Optimizer = r.GetValue optimizer |> Option.ofObj; Seed = n seed; Validation = n validation
          Out = r.GetValue out |> Option.ofObj; Resume = r.GetValue resume; Quiet = r.GetValue quiet; Json = r.GetValue json
          Limit = n limit; Weights = r.GetValue weights |> Option.ofObj; Plot = r.GetValue plot |> Option.ofObj
          Force = r.GetValue force; PauseAt = pauseAt }
    all, read

let private runCommand () =
    let file = Argument<string>("file", Description = "a model file (.cnn)")
    let options, read = runOptions ()
    let command = Command("run", "Train the model on its data set, checkpoint every epoch, and evaluate it on the test set.")
    command.Arguments.Add file
    for o in options do command.Options.Add o
    command.SetAction(fun (r: ParseResult) ->
        use stop = new System.Threading.CancellationTokenSource()
        // The first Ctrl+C stops at the end of the batch and saves a checkpoint; a second one kills.
        let handler = ConsoleCancelEventHandler(fun _ e -> if not stop.IsCancellationRequested then (e.Cancel <- true; stop.Cancel()))
        Console.CancelKeyPress.AddHandler handler
        // SIGTERM (what `timeout`, schedulers and `kill` send) takes the same path: stop and save.
        // Unlike a second Ctrl+C, a second SIGTERM does not kill: `timeout` sends it to the run
        // and again to its process group, and the repeat must not cut the save short (a
        // scheduler that means it follows with SIGKILL).
        let terminated = ref false
        use _ = Runtime.InteropServices.PosixSignalRegistration.Create(Runtime.InteropServices.PosixSignal.SIGTERM, fun context ->
            context.Cancel <- true
            if not stop.IsCancellationRequested then
                terminated.Value <- true
                stop.Cancel())
        try
            match RunCommand.run (console ()) (r.GetValue file) (read r) stop.Token with
            | code when code = Shell.Interrupted && terminated.Value -> 128 + 15 // as a shell reports SIGTERM
            | code -> code
        finally Console.CancelKeyPress.RemoveHandler handler)
    command

let private evalCommand () =
    let file = Argument<string>("file", Description = "a model file (.cnn)")
    let options, read = runOptions ()
    let command = Command("eval", "Evaluate a checkpoint on the model's test set: loss, accuracy, per-class accuracy, confusion matrix.")
    command.Arguments.Add file
    for o in options do command.Options.Add o
    command.SetAction(fun (r: ParseResult) -> EvalCommands.eval (console ()) (r.GetValue file) (read r))
    command

let private showCommand () =
    let output () = Option<string>("--output", "-o", Description = "the PNG file to write (default: MODEL-WHAT.png here)")
    let weights () = Option<string>("--weights", Description = "a checkpoint of the model")
    let filters =
        let file = Argument<string>("file", Description = "a model file (.cnn)")
        let weights, output = weights (), output ()
        let layer = Option<string>("--layer", Description = "the convolution to show (default: the first)")
        let command = Command("filters", "Draw a convolution's learned kernels as a grid of small images.")
        command.Arguments.Add file
        for o in [ weights :> System.CommandLine.Option; layer; output ] do command.Options.Add o
        command.SetAction(fun (r: ParseResult) ->
            ShowCommands.showFilters (console ()) (r.GetValue file) (r.GetValue weights |> Option.ofObj) (r.GetValue layer |> Option.ofObj) (r.GetValue output |> Option.ofObj))
        command
    let activations =
        let file = Argument<string>("file", Description = "a model file (.cnn)")
        let image = Argument<string>("image", Description = "an image (png, jpg, bmp) or a text matrix", Arity = ArgumentArity.ZeroOrOne)
        let weights, output = weights (), output ()
        let test = Option<Nullable<int>>("--test", Description = "use the N-th example of the model's test set instead of an image")
        let data = Option<string>("--data", Description = "the data set for --test (default: the model's)")
        let command = Command("activations", "Draw the feature maps after every convolution and pooling layer for one input.")
        command.Arguments.Add file
        command.Arguments.Add image
        for o in [ weights :> System.CommandLine.Option; test; data; output ] do command.Options.Add o
        command.SetAction(fun (r: ParseResult) ->
            let t = r.GetValue test
            ShowCommands.showActivations (console ()) (r.GetValue file) (r.GetValue weights |> Option.ofObj) (r.GetValue image |> Option.ofObj)
                (if t.HasValue then Some t.Value else None) (r.GetValue data |> Option.ofObj) (r.GetValue output |> Option.ofObj))
        command
    let confusion =
        let file = Argument<string>("file", Description = "a model file (.cnn)")
        let options, read = runOptions ()
        let output = output ()
        let command = Command("confusion", "Draw the test set's confusion matrix as a heat map with class names.")
        command.Arguments.Add file
        for o in options do command.Options.Add o
        command.Options.Add output
        command.SetAction(fun (r: ParseResult) -> EvalCommands.showConfusion (console ()) (r.GetValue file) (read r) (r.GetValue output |> Option.ofObj))
        command
    let command = Command("show", "Draw what a model learned as PNG pictures: filters, activations, confusion.")
    command.Subcommands.Add filters
    command.Subcommands.Add activations
    command.Subcommands.Add confusion
    command

let private lspCommand () =
    let command = Command("lsp", "Serve the Language Server Protocol on stdin and stdout, for editors (never writes files).")
    // Some clients pass --stdio; stdio is the only transport, so it is accepted and changes nothing.
    command.Options.Add(Option<bool>("--stdio", Description = "serve on stdin and stdout (the default and only transport)"))
    command.SetAction(fun (_: ParseResult) -> CnnDsl.Lsp.Server.run (Console.OpenStandardInput()) (Console.OpenStandardOutput()))
    command

/// The parser's message in dsl's words: a value that does not convert names the option and
/// what it takes, not a .NET type (`Cannot parse argument 'abc' for option '--batch' as
/// expected type 'System.Nullable`1[System.Int32]'`).
let internal usageMessage (message: string) =
    let m = Text.RegularExpressions.Regex.Match(message, @"^Cannot parse argument '(.*)' for option '(.*)' as expected type '(.*)'\.?$")
    // one line: the parser lists the allowed values on lines of their own
    if not m.Success then String.Join(" ", message.Split([| '\n'; '\r'; '\t' |], StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries))
    else
        let value, option, typeName = m.Groups[1].Value, m.Groups[2].Value, m.Groups[3].Value
        let wanted =
            if typeName.Contains "Int32" then "a whole number"
            elif typeName.Contains "Double" || typeName.Contains "Single" then "a number"
            else "another value"
        sprintf "%s %s: give %s" option value wanted

/// Usage mistakes (an unknown option, a value that does not convert or is out of range, a
/// missing argument): one `dsl: ` line each and where the help is, exit code 2 (Shell.CannotRun).
let internal usageErrors (err: IO.TextWriter) (result: ParseResult) =
    for e in result.Errors do err.WriteLine("dsl: " + usageMessage e.Message)
    let rec path (c: Parsing.CommandResult | null) =
        match c with
        | null -> []
        | c -> path (match c.Parent with :? Parsing.CommandResult as p -> p | _ -> null) @ [ c.Command.Name ]
    let command = path result.CommandResult |> List.tail |> String.concat " "
    err.WriteLine(sprintf "dsl: see 'dsl %s--help'" (if command = "" then "" else command + " "))
    Shell.CannotRun

[<EntryPoint>]
let main argv =
    let root = RootCommand("dsl: write, check, train and understand convolutional networks from a text file.")
    root.Subcommands.Add(checkCommand ())
    root.Subcommands.Add(summaryCommand ())
    root.Subcommands.Add(explainCommand ())
    root.Subcommands.Add(gradcheckCommand ())
    root.Subcommands.Add(applyCommand ())
    root.Subcommands.Add(backpropCommand ())
    root.Subcommands.Add(runCommand ())
    root.Subcommands.Add(evalCommand ())
    root.Subcommands.Add(predictCommand ())
    root.Subcommands.Add(exportCommand ())
    root.Subcommands.Add(showCommand ())
    root.Subcommands.Add(lspCommand ())
    let result = root.Parse(argv)
    if result.Errors.Count = 0 then result.Invoke()
    else usageErrors Console.Error result
