/// The public surface of the CnnDsl assembly, pinned: a sorted listing of every public type and
/// member compared with tests/Api.Tests/PublicApi.txt, a check that no signature exposes F#'s
/// own types or the other CnnDsl assemblies, and a check that every member is documented.
///
/// After an intended change of the API, regenerate the listing with
///   CNNDSL_UPDATE_API=1 dotnet test tests/Api.Tests -c Release --filter PublicApi
/// and review the file's diff with the change.
module CnnDsl.Api.Tests.PublicApiTests

open System
open System.IO
open System.Reflection
open System.Xml.Linq
open Xunit
open CnnDsl.Api.Tests.TestSupport

let private assembly = typeof<CnnDsl.Model>.Assembly

let private flags = BindingFlags.Public ||| BindingFlags.Instance ||| BindingFlags.Static ||| BindingFlags.DeclaredOnly

let private types = assembly.GetExportedTypes() |> Array.sortBy (fun t -> t.FullName)

let private nullability = NullabilityInfoContext()

/// A type as C# would write it with its full name, `?` on nullable references.
let rec private typeText (t: Type) (n: NullabilityInfo | null) : string =
    let nullable = not (isNull n) && n.ReadState = NullabilityState.Nullable && not t.IsValueType
    let q = if nullable then "?" else ""
    if t.IsByRef then "ref " + typeText (t.GetElementType()) n
    elif t.IsArray then typeText (t.GetElementType()) (if isNull n then null else n.ElementType) + "[]" + q
    elif t.IsGenericParameter then t.Name
    elif t.IsGenericType then
        let definition = t.GetGenericTypeDefinition()
        let name = definition.FullName.Substring(0, definition.FullName.IndexOf '`')
        let args =
            t.GetGenericArguments()
            |> Array.mapi (fun i a -> typeText a (if isNull n || i >= n.GenericTypeArguments.Length then null else n.GenericTypeArguments[i]))
        if name = "System.Nullable" then args[0] + "?" else sprintf "%s<%s>%s" name (String.Join(", ", args)) q
    else t.FullName + q

let private parameterText (p: ParameterInfo) =
    sprintf "%s %s%s" (typeText p.ParameterType (nullability.Create p)) p.Name (if p.IsOptional then " = default" else "")

let private parameters (m: MethodBase) = String.Join(", ", m.GetParameters() |> Array.map parameterText)

let private kind (t: Type) =
    if t.IsEnum then "enum"
    elif t.IsInterface then "interface"
    elif t.IsValueType then "struct"
    elif t.IsAbstract && t.IsSealed then "static class"
    elif t.IsAbstract then "abstract class"
    elif t.IsSealed then "sealed class"
    else "class"

let private memberLines (t: Type) =
    [ for m in t.GetMembers flags do
        match m with
        | :? ConstructorInfo as c -> yield sprintf "ctor(%s)" (parameters c)
        | :? MethodInfo as m when not m.IsSpecialName ->
            let generic = if m.IsGenericMethodDefinition then "<" + String.Join(", ", m.GetGenericArguments() |> Array.map (fun a -> a.Name)) + ">" else ""
            yield sprintf "%smethod %s %s%s(%s)" (if m.IsStatic then "static " else "") (typeText m.ReturnType (nullability.Create m.ReturnParameter)) m.Name generic (parameters m)
        | :? PropertyInfo as p ->
            let accessors =
                [ if not (isNull p.GetMethod) && p.GetMethod.IsPublic then "get;"
                  if not (isNull p.SetMethod) && p.SetMethod.IsPublic then "set;" ]
            let isStatic = (if isNull p.GetMethod then p.SetMethod else p.GetMethod).IsStatic
            let index = match p.GetIndexParameters() with [||] -> "" | ps -> "[" + String.Join(", ", ps |> Array.map parameterText) + "]"
            yield sprintf "%sproperty %s %s%s { %s }" (if isStatic then "static " else "") (typeText p.PropertyType (nullability.Create p)) p.Name index (String.Join(" ", accessors))
        | :? FieldInfo as f when t.IsEnum -> if f.IsStatic then yield sprintf "field %s = %O" f.Name (Convert.ChangeType(f.GetRawConstantValue(), typeof<int64>))
        | :? FieldInfo as f -> yield sprintf "%sfield %s %s" (if f.IsStatic then "static " else "") (typeText f.FieldType (nullability.Create f)) f.Name
        | :? EventInfo as e -> yield sprintf "event %s %s" (typeText e.EventHandlerType (nullability.Create e)) e.Name
        | _ -> () ]
    |> List.sort

/// The listing: a line per type (kind, name, base type, interfaces), then its members, indented.
let listing () =
    [ for t in types do
        let bases =
            [ if not (isNull t.BaseType) && t.BaseType <> typeof<obj> && t.BaseType <> typeof<Enum> && t.BaseType <> typeof<ValueType> then
                  typeText t.BaseType null
              // the interfaces the type adds (an enum's and an exception's come with .NET's base types)
              let inherited = if isNull t.BaseType then [||] else t.BaseType.GetInterfaces()
              yield! t.GetInterfaces() |> Array.filter (fun i -> not (Array.contains i inherited)) |> Array.map (fun i -> typeText i null) |> Array.sort ]
        yield sprintf "%s %s%s" (kind t) t.FullName (if bases.IsEmpty then "" else " : " + String.Join(", ", bases))
        for line in memberLines t do yield "  " + line ]

let private listingFile = Path.Combine(root, "tests", "Api.Tests", "PublicApi.txt")

[<Fact>]
let ``PublicApi: the public surface is the one in PublicApi.txt`` () =
    let actual = listing ()
    if Environment.GetEnvironmentVariable "CNNDSL_UPDATE_API" = "1" then
        File.WriteAllText(listingFile, String.Join("\n", actual) + "\n")
    let expected = if File.Exists listingFile then File.ReadAllLines listingFile |> List.ofArray else []
    if actual <> expected then
        let removed = expected |> List.filter (fun l -> not (List.contains l actual))
        let added = actual |> List.filter (fun l -> not (List.contains l expected))
        let diff =
            [ for l in removed -> "- " + l
              for l in added -> "+ " + l ]
        failwithf "The public API differs from %s (- in the file only, + in the assembly only):\n%s\n\nIf the change is intended, regenerate the file with\n  CNNDSL_UPDATE_API=1 dotnet test tests/Api.Tests -c Release --filter PublicApi\nand commit it with the change."
            listingFile (String.Join("\n", (if diff.IsEmpty then [ "(the same lines in another order)" ] else diff)))

/// Every type a signature mentions, with the generic arguments and element types inside it.
let rec private within (t: Type) : Type seq =
    seq {
        yield t
        if t.HasElementType then yield! within (t.GetElementType())
        if t.IsGenericType then for a in t.GetGenericArguments() do yield! within a
    }

let private signatureTypes (t: Type) =
    [ if not (isNull t.BaseType) then yield "base type", t.BaseType
      for i in t.GetInterfaces() do yield "interface", i
      for m in t.GetMembers flags do
        match m with
        | :? MethodBase as mb when not mb.IsSpecialName || (mb :? ConstructorInfo) ->
            for p in mb.GetParameters() do yield sprintf "%s(%s)" mb.Name p.Name, p.ParameterType
            match mb with :? MethodInfo as mi -> yield mb.Name, mi.ReturnType | _ -> ()
        | :? PropertyInfo as p ->
            yield p.Name, p.PropertyType
            for ip in p.GetIndexParameters() do yield p.Name, ip.ParameterType
        | :? FieldInfo as f -> yield f.Name, f.FieldType
        | :? EventInfo as e -> yield e.Name, e.EventHandlerType
        | _ -> () ]

[<Fact>]
let ``PublicApi: no public signature has an F# type or a type of the Graph, Dsl or Runtime assemblies`` () =
    let banned = set [ "FSharp.Core"; "CnnDsl.Graph"; "CnnDsl.Dsl"; "CnnDsl.Runtime" ]
    let problems =
        [ for t in types do
            for place, st in signatureTypes t do
                for inner in within st do
                    if not inner.IsGenericParameter && banned.Contains(inner.Assembly.GetName().Name) then
                        yield sprintf "%s.%s: %s (from %s)" t.FullName place inner.FullName (inner.Assembly.GetName().Name) ]
    Assert.True(problems.IsEmpty, String.Join("\n", problems))
    // the check itself sees such types: a member of the runtime's assembly would be reported
    Assert.Contains("CnnDsl.Runtime", within typeof<Collections.Generic.List<CnnDsl.Runtime.Data.Dataset>> |> Seq.map (fun t -> t.Assembly.GetName().Name))

/// The documentation-comment id of a type in a member's signature (ECMA-334 annex D).
let rec private docType (t: Type) =
    if t.IsByRef then docType (t.GetElementType()) + "@"
    elif t.IsArray then docType (t.GetElementType()) + "[]"
    elif t.IsGenericType then
        let d = t.GetGenericTypeDefinition().FullName
        sprintf "%s{%s}" (d.Substring(0, d.IndexOf '`')) (String.Join(",", t.GetGenericArguments() |> Array.map docType))
    else t.FullName.Replace('+', '.')

let private docId (m: MemberInfo) =
    let owner = m.DeclaringType.FullName.Replace('+', '.')
    let args (mb: MethodBase) = match mb.GetParameters() with [||] -> "" | ps -> "(" + String.Join(",", ps |> Array.map (fun p -> docType p.ParameterType)) + ")"
    match m with
    | :? ConstructorInfo as c -> sprintf "M:%s.#ctor%s" owner (args c)
    | :? MethodInfo as mi -> sprintf "M:%s.%s%s" owner mi.Name (args mi)
    | :? PropertyInfo as p -> sprintf "P:%s.%s" owner p.Name
    | :? FieldInfo as f -> sprintf "F:%s.%s" owner f.Name
    | :? EventInfo as e -> sprintf "E:%s.%s" owner e.Name
    | _ -> m.Name

[<Fact>]
let ``PublicApi: every public type and member has an XML doc comment`` () =
    let xml = Path.ChangeExtension(assembly.Location, ".xml")
    Assert.True(File.Exists xml, xml + " is missing: the project sets GenerateDocumentationFile")
    let documented =
        XDocument.Load(xml).Descendants(XName.Get "member")
        |> Seq.filter (fun m -> m.Elements() |> Seq.exists (fun e -> e.Name.LocalName = "summary" && e.Value.Trim() <> ""))
        |> Seq.map (fun m -> m.Attribute(XName.Get "name").Value) |> set
    let missing =
        [ for t in types do
            if not (documented.Contains("T:" + t.FullName.Replace('+', '.'))) then yield "T:" + t.FullName
            for m in t.GetMembers flags do
                match m with
                | :? MethodBase as mb when mb.IsSpecialName && not (mb :? ConstructorInfo) -> ()
                // an F# primary constructor is documented by its type's comment
                | :? ConstructorInfo -> ()
                | :? FieldInfo when t.IsEnum && m.Name = "value__" -> ()
                // overrides of Object's members inherit its documentation
                | :? MethodInfo as mi when mi.GetBaseDefinition().DeclaringType <> mi.DeclaringType -> ()
                | _ -> if not (documented.Contains(docId m)) then yield docId m ]
    Assert.True(missing.IsEmpty, "undocumented:\n" + String.Join("\n", missing))

[<Fact>]
let ``PublicApi: docs/api.md names every public type`` () =
    let doc = File.ReadAllText(Path.Combine(root, "docs", "api.md"))
    let missing = types |> Array.filter (fun t -> not (doc.Contains("`" + t.Name + "`") || doc.Contains("`" + t.Name + "(") || doc.Contains("`" + t.Name + ".") || doc.Contains("`new " + t.Name + "(")))
    Assert.True(Array.isEmpty missing, "docs/api.md does not mention: " + String.Join(", ", missing |> Array.map (fun t -> t.Name)))
