/// The packages under test: made once per test run by scripts/pack.sh from what this
/// configuration's build left, into a temporary folder, with a version no earlier run used.
module CnnDsl.Packaging.Tests.Packages

open System
open System.IO
open System.Reflection
open CnnDsl.Packaging.Tests.TestSupport

/// The library packages every pack must make: the API (src/Api, the package a .NET program
/// references) and the three it depends on.
let libraries = [ "CnnDsl"; "CnnDsl.Graph"; "CnnDsl.Dsl"; "CnnDsl.Runtime" ]

/// The `dsl` tool's package.
let tool = "CnnDsl.Tool"

let private configuration =
    match Assembly.GetExecutingAssembly().GetCustomAttribute<AssemblyConfigurationAttribute>() with
    | null -> "Release"
    | a -> a.Configuration

/// NuGet's global packages folder, where a restore extracts the packages it used.
let globalPackages =
    match Environment.GetEnvironmentVariable "NUGET_PACKAGES" with
    | null | "" -> Path.Combine(Environment.GetFolderPath Environment.SpecialFolder.UserProfile, ".nuget", "packages")
    | folder -> folder

/// NuGet caches a package by id and version: a version unique to the run means that no
/// package of an earlier run (in the global packages folder, or a tool store) is used for
/// this one's. Dispose removes the folder and what the restores extracted of this version.
type Packed() =
    let version = sprintf "0.0.0-test.g%s" (Guid.NewGuid().ToString("N").Substring(0, 12))
    let work = Directory.CreateTempSubdirectory("cnndsl-packaging-").FullName
    let folder = Path.Combine(work, "packages")
    let pack =
        runIn root [] (TimeSpan.FromMinutes 10.) "bash"
            [ Path.Combine(root, "scripts", "pack.sh"); "--no-build"; "-c"; configuration; "--version"; version; "--output"; folder ]
        |> succeeded "scripts/pack.sh"

    member _.Version = version
    /// The folder holding the packages.
    member _.Folder = folder
    /// A temporary folder of the run's own, for tools and projects.
    member _.Work = work
    /// What scripts/pack.sh printed (one line per package file) and how long it took.
    member _.Pack = pack
    member _.File(id: string, ?extension: string) =
        Path.Combine(folder, sprintf "%s.%s.%s" id version (defaultArg extension "nupkg"))

    interface IDisposable with
        member _.Dispose() =
            try Directory.Delete(work, true) with _ -> ()
            for id in tool :: libraries do
                let extracted = Path.Combine(globalPackages, id.ToLowerInvariant(), version)
                try
                    if Directory.Exists extracted then Directory.Delete(extracted, true)
                    let package = Path.GetDirectoryName extracted
                    if Directory.Exists package && Seq.isEmpty (Directory.EnumerateFileSystemEntries package) then Directory.Delete package
                with _ -> ()

/// Copies a project folder (without bin/ and obj/) out of the repository, where no
/// Directory.Build.props of ours reaches it, and runs it against the packages just made:
/// `dotnet run -c Release -p:UseCnnDslPackage=true -p:CnnDslVersion=V` with the packages'
/// folder beside the machine's configured NuGet feed. Returns what it printed; fails on a
/// non-zero exit.
let runAgainstPackages (packed: Packed) (project: string) (args: string list) =
    let copy = Path.Combine(packed.Work, "projects", Path.GetFileName(Path.TrimEndingDirectorySeparator project))
    let rec copyFolder (source: string) (target: string) =
        Directory.CreateDirectory target |> ignore
        for file in Directory.GetFiles source do File.Copy(file, Path.Combine(target, Path.GetFileName file), true)
        for folder in Directory.GetDirectories source do
            match Path.GetFileName folder with
            | "bin" | "obj" -> ()
            | name -> copyFolder folder (Path.Combine(target, name))
    copyFolder project copy
    runIn copy [] (TimeSpan.FromMinutes 5.) "dotnet"
        [ "run"; "-c"; "Release"
          "-p:UseCnnDslPackage=true"
          sprintf "-p:CnnDslVersion=%s" packed.Version
          sprintf "-p:RestoreAdditionalProjectSources=%s" packed.Folder
          "--"; yield! args ]
    |> succeeded (sprintf "dotnet run (%s, against the packages)" (Path.GetFileName copy))
