/// The packages as a user gets them (issue 20, item 3): the `dsl` tool installed from the
/// locally built package into a temporary tool path, and a fresh project outside the
/// repository built against the library packages.
module CnnDsl.Packaging.Tests.PackageTests

open System
open System.IO
open System.IO.Compression
open System.Runtime.InteropServices
open System.Xml.Linq
open Xunit
open Xunit.Abstractions
open CnnDsl.Packaging.Tests.TestSupport
open CnnDsl.Packaging.Tests.Packages

/// The entries of a package and its .nuspec's metadata, by element name.
let private read (path: string) =
    use zip = ZipFile.OpenRead path
    let entries = zip.Entries |> Seq.map (fun e -> e.FullName) |> List.ofSeq
    let nuspec = zip.Entries |> Seq.find (fun e -> e.FullName.EndsWith ".nuspec")
    use stream = nuspec.Open()
    let metadata = XDocument.Load(stream).Root.Elements() |> Seq.find (fun e -> e.Name.LocalName = "metadata")
    entries, metadata

let private element (metadata: XElement) (name: string) =
    metadata.Elements() |> Seq.tryFind (fun e -> e.Name.LocalName = name)

let private value metadata name =
    element metadata name |> Option.map (fun e -> e.Value) |> Option.defaultValue ""

let private attribute metadata name (attr: string) =
    element metadata name |> Option.bind (fun e -> Option.ofObj (e.Attribute(XName.Get attr))) |> Option.map (fun a -> a.Value) |> Option.defaultValue ""

/// The runtime's two helpers, built with gcc (src/Runtime/Runtime.csproj).
let private nativeHelpers = [ "libcnndsl_native.so"; "libcnndsl_mklcpu.so" ]
let private nativeBuilt = not (RuntimeInformation.IsOSPlatform OSPlatform.Windows)

let private lenet = Path.Combine(root, "models", "lenet.cnn")

type PackageTests(packed: Packed, output: ITestOutputHelper) =

    let checkMetadata (id: string) (metadata: XElement) (entries: string list) =
        Assert.Equal(id, value metadata "id")
        Assert.Equal(packed.Version, value metadata "version")
        Assert.Equal("CnnDsl contributors", value metadata "authors")
        Assert.Equal("MIT", value metadata "license")
        Assert.Equal("expression", attribute metadata "license" "type")
        Assert.Equal("README.md", value metadata "readme")
        Assert.Equal("git", attribute metadata "repository" "type")
        Assert.True((value metadata "description").Length > 40, sprintf "%s: a description" id)
        Assert.Contains("cnn", (value metadata "tags").Split ' ')
        Assert.Contains("README.md", entries)
        Assert.Contains("LICENSE", entries)

    interface IClassFixture<Packed>

    [<Fact>]
    member _.``every library package carries its metadata, readme, licence, symbols and the runtime's native helpers``() =
        output.WriteLine(sprintf "scripts/pack.sh (%.1f s), version %s:\n%s" packed.Pack.Seconds packed.Version packed.Pack.Out)
        for id in libraries do
            let entries, metadata = read (packed.File id)
            checkMetadata id metadata entries
            Assert.Contains(sprintf "lib/net10.0/%s.dll" id, entries)
            Assert.Contains(sprintf "lib/net10.0/%s.xml" id, entries)
            let symbols, _ = read (packed.File(id, "snupkg"))
            Assert.Contains(sprintf "lib/net10.0/%s.pdb" id, symbols)
            // Libraries depend on each other at the same version.
            for dependency in (element metadata "dependencies").Value.Descendants() |> Seq.filter (fun e -> e.Name.LocalName = "dependency") do
                if dependency.Attribute(XName.Get "id").Value.StartsWith "CnnDsl" then
                    Assert.Equal(packed.Version, dependency.Attribute(XName.Get "version").Value)
        if nativeBuilt then
            let entries, _ = read (packed.File "CnnDsl.Runtime")
            // as native assets of the packing machine's platform (runtimes/linux-x64/native here)
            for helper in nativeHelpers do
                Assert.Contains(entries, fun e -> Text.RegularExpressions.Regex.IsMatch(e, sprintf "^runtimes/[^/]+/native/%s$" helper))

    [<Fact>]
    member _.``the tool package is a dotnet tool named dsl with the native helpers beside it``() =
        let entries, metadata = read (packed.File tool)
        checkMetadata tool metadata entries
        let packageTypes =
            metadata.Descendants() |> Seq.filter (fun e -> e.Name.LocalName = "packageType")
            |> Seq.map (fun e -> e.Attribute(XName.Get "name").Value) |> List.ofSeq
        Assert.Equal<string list>([ "DotnetTool" ], packageTypes)
        use zip = ZipFile.OpenRead(packed.File tool)
        let settings = zip.Entries |> Seq.find (fun e -> e.FullName.EndsWith "/DotnetToolSettings.xml")
        use stream = settings.Open()
        let command = XDocument.Load(stream).Descendants() |> Seq.find (fun e -> e.Name.LocalName = "Command")
        Assert.Equal("dsl", command.Attribute(XName.Get "Name").Value)
        Assert.Equal("dsl.dll", command.Attribute(XName.Get "EntryPoint").Value)
        let folder = settings.FullName.Substring(0, settings.FullName.LastIndexOf '/' + 1)
        if nativeBuilt then
            for helper in nativeHelpers do Assert.Contains(folder + helper, entries)
        // SkiaSharp's Windows .pdb files (about 320 MB) are left out.
        Assert.DoesNotContain(entries, fun e -> e.StartsWith(folder + "runtimes/") && e.EndsWith ".pdb")

    [<Fact>]
    member _.``the tool installs from the package into a tool path and checks and summarises a model``() =
        let tools = Path.Combine(packed.Work, "tools")
        let install =
            runIn packed.Work [] (TimeSpan.FromMinutes 5.) "dotnet"
                [ "tool"; "install"; "--tool-path"; tools; "--add-source"; packed.Folder; tool; "--version"; packed.Version ]
            |> succeeded "dotnet tool install"
        output.WriteLine(sprintf "dotnet tool install: %.1f s" install.Seconds)
        let dsl args = runIn packed.Work [] (TimeSpan.FromMinutes 2.) (Path.Combine(tools, "dsl")) args

        let check = dsl [ "check"; lenet ]
        Assert.True((check.Code = 0), check.Text)
        Assert.Equal("", check.Text)

        let summary = dsl [ "summary"; lenet ] |> succeeded "dsl summary"
        Assert.Contains("Total params: 61,706", summary.Out)
        Assert.Contains("dense_2 (Dense, softmax)", summary.Out)

        // A mistake is reported in the compiler's format, through the installed program too.
        let broken = Path.Combine(packed.Work, "broken.cnn")
        File.WriteAllText(broken, "input 28x28x1\nconv 8 5x5\nmaxpool 40\ndense 10 softmax\n")
        let refused = dsl [ "check"; broken ]
        Assert.Equal(1, refused.Code)
        Assert.Matches(@"broken\.cnn:3:\d+: error [A-Z]+\d+: ", refused.Text)
        Assert.DoesNotContain("   at ", refused.Text)

        // dsl run through the installed tool: LeNet, one epoch on a tiny generated IDX folder,
        // then eval on its checkpoint (the native helpers and MKL found from the tool's folder).
        let data = writeIdx (Path.Combine(packed.Work, "tool-data")) 64 20
        let out = Path.Combine(packed.Work, "tool-run")
        let trained = dsl [ "run"; lenet; "--epochs"; "1"; "--data"; data; "--out"; out ] |> succeeded "dsl run"
        Assert.Matches(@"Epoch 1/1 - [\d.]+s - [\d,]+ img/s - loss: \d+\.\d{4} - accuracy: \d\.\d{4}", trained.Out)
        Assert.Contains("Test: loss ", trained.Out)
        if nativeBuilt then Assert.Contains("denormals flushed to zero", trained.Out)
        let evaluated = dsl [ "eval"; lenet; "--weights"; Path.Combine(out, "last.ckpt"); "--data"; data ] |> succeeded "dsl eval"
        Assert.Contains("Test: loss ", evaluated.Out)

    [<Fact>]
    member _.``the API package CnnDsl carries its XML documentation and depends on the other three``() =
        let entries, metadata = read (packed.File "CnnDsl")
        let dependencies =
            metadata.Descendants() |> Seq.filter (fun e -> e.Name.LocalName = "dependency")
            |> Seq.map (fun e -> e.Attribute(XName.Get "id").Value, e.Attribute(XName.Get "version").Value) |> List.ofSeq
        for id in [ "CnnDsl.Graph"; "CnnDsl.Dsl"; "CnnDsl.Runtime" ] do
            Assert.Contains((id, packed.Version), dependencies)
        // The library alone: the native helpers reach a program through CnnDsl.Runtime.
        Assert.Equal<string list>([ "lib/net10.0/CnnDsl.dll"; "lib/net10.0/CnnDsl.xml" ],
                                  entries |> List.filter (fun e -> e.StartsWith "lib/" || e.StartsWith "runtimes/") |> List.sort)
        use zip = ZipFile.OpenRead(packed.File "CnnDsl")
        use stream = (zip.GetEntry "lib/net10.0/CnnDsl.xml").Open()
        let documented =
            XDocument.Load(stream).Descendants() |> Seq.filter (fun e -> e.Name.LocalName = "member")
            |> Seq.map (fun e -> e.Attribute(XName.Get "name").Value) |> Set.ofSeq
        for name in [ "T:CnnDsl.Model"; "T:CnnDsl.Predictor"; "T:CnnDsl.TrainingOptions"; "M:CnnDsl.Model.Load(System.String)" ] do
            Assert.Contains(name, documented)

    [<Fact>]
    member _.``a fresh project outside the repository builds against the CnnDsl package and finds the native helpers``() =
        let run = runAgainstPackages packed (Path.Combine(root, "tests", "Packaging.Tests", "Consumer")) [ lenet ]
        output.WriteLine(sprintf "dotnet run of the fresh project: %.1f s\n%s" run.Seconds run.Out)
        Assert.Contains("model: lenet: 28x28x1 -> 10", run.Out)
        Assert.Contains("parameters: 61706", run.Out)
        Assert.Contains("Total params: 61,706", run.Out)
        Assert.Contains("dense_2 (Dense, softmax)", run.Out)
        Assert.Contains("broken model succeeded: False", run.Out)
        Assert.Matches(@"diagnostic: broken\.cnn:3:\d+ [A-Z]+\d+ Error: ", run.Out)
        if nativeBuilt then
            // The helpers came with the runtime package (a dependency of CnnDsl) and were found
            // where the host put them.
            Assert.Contains("denormals flushed: True", run.Out)
            Assert.DoesNotContain("no cpu shim built", run.Out)

    [<Fact>]
    member _.``the C# sample trains LeNet and predicts an image through the CnnDsl package``() =
        // 64 generated training images and 20 test images (the sample keeps 64 / 5 of them), one epoch.
        let data = writeIdx (Path.Combine(packed.Work, "fashion-tiny")) 64 20
        let out = Path.Combine(packed.Work, "sample-run")
        let sample = Path.Combine(root, "samples", "TrainLeNet.CSharp")
        let run =
            runAgainstPackages packed sample
                [ "--model"; lenet; "--data"; data; "--epochs"; "1"; "--limit"; "64"; "--out"; out ]
        output.WriteLine(sprintf "dotnet run of samples/TrainLeNet.CSharp against the packages: %.1f s\n%s" run.Seconds run.Out)
        // It was built against the package of this run, not the source.
        let assets = File.ReadAllText(Path.Combine(packed.Work, "projects", "TrainLeNet.CSharp", "obj", "project.assets.json"))
        Assert.Contains(sprintf "\"CnnDsl/%s\"" packed.Version, assets)
        Assert.DoesNotContain("\"type\": \"project\"", assets)
        Assert.Contains("Model lenet: 28x28x1 -> 10, 61,706 parameters", run.Out)
        Assert.Contains("Data fashion-tiny: 64 training, 12 test examples of 28x28x1", run.Out)
        Assert.Matches(@"(?m)^Epoch 1/1 - \d+\.\ds - [\d,]+ img/s - loss: \d+\.\d{4} - accuracy: [01]\.\d{4}$", run.Out)
        Assert.Matches(@"(?m)^Test: loss \d+\.\d{4} - accuracy [01]\.\d{4} \(12 examples\)$", run.Out)
        Assert.True(File.Exists(Path.Combine(out, "last.ckpt")), "the sample saved its checkpoint")
        // The first test image is a T-shirt/top (label 0); the ten probabilities sum to 1.
        Assert.Matches(@"(?m)^Test image 0 \(T-shirt/top\): predicted .+ \([01]\.\d{4}\)$", run.Out)
        let probabilities =
            run.Out.Replace("\r", "").Split('\n') |> Array.filter (fun l -> Text.RegularExpressions.Regex.IsMatch(l, @"^  .+: [01]\.\d{4}$"))
        Assert.Equal(10, probabilities.Length)
        Assert.StartsWith("  T-shirt/top: ", probabilities[0])
        Assert.StartsWith("  Ankle boot: ", probabilities[9])
        let sum = probabilities |> Array.sumBy (fun l -> Double.Parse(l.Substring(l.LastIndexOf ' ' + 1), Globalization.CultureInfo.InvariantCulture))
        Assert.InRange(sum, 0.99, 1.01)
