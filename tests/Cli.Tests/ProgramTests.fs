/// The command line's own checks (System.CommandLine validators), through the built program.
module CnnDsl.Cli.Tests.ProgramTests

open Xunit
open CnnDsl.Cli.Tests.TestSupport

[<Theory>]
[<InlineData("run models/xor.cnn --seed -1", "--seed must be 0 or more")>]
[<InlineData("apply examples/vertical-edge.cnn examples/vertical-edge.txt --seed -1", "--seed must be 0 or more")>]
[<InlineData("predict models/xor.cnn --weights x.ckpt m.txt --top 0", "--top must be at least 1")>]
[<InlineData("predict models/xor.cnn --weights x.ckpt m.txt --top -1", "--top must be at least 1")>]
let ``flags out of range are refused with a message and a non-zero exit`` (args: string) (message: string) =
    let code, _, err = dslRun (args.Replace("models/", root + "/models/").Replace("examples/", root + "/examples/"))
    Assert.NotEqual(0, code)
    Assert.Contains(message, err)

[<Theory>]
[<InlineData("eval models/xor.cnn --weights x.ckpt --batch abc", "dsl: --batch abc: give a whole number")>]
[<InlineData("run models/xor.cnn --epochs 2.5", "dsl: --epochs 2.5: give a whole number")>]
[<InlineData("run models/xor.cnn --lr fast", "dsl: --lr fast: give a number")>]
[<InlineData("run models/xor.cnn --validation nan", "dsl: --validation must be in [0, 1)")>]
[<InlineData("predict models/xor.cnn --weights x.ckpt m.txt --top many", "dsl: --top many: give a whole number")>]
[<InlineData("apply examples/vertical-edge.cnn examples/vertical-edge.txt --seed x", "dsl: --seed x: give a whole number")>]
[<InlineData("summary models/xor.cnn --batch x", "dsl: --batch x: give a whole number")>]
[<InlineData("show activations models/xor.cnn --test x", "dsl: --test x: give a whole number")>]
[<InlineData("export models/xor.cnn --format keras -o x", "dsl: Argument 'keras' not recognized. Must be one of: 'onnx' 'pytorch' 'weights'")>]
let ``usage mistakes are one dsl line each and exit 2, never a stack trace or a .NET type`` (args: string) (message: string) =
    let code, out, err = dslRun (args.Replace("models/", root + "/models/").Replace("examples/", root + "/examples/"))
    Assert.Equal(2, code)
    Assert.Equal("", out)
    let lines = err.Trim().Split('\n') |> Array.map (fun l -> l.TrimEnd())
    Assert.Equal(message, lines[0])
    Assert.StartsWith("dsl: see 'dsl ", lines[lines.Length - 1])
    Assert.True(lines |> Array.forall (fun l -> l.StartsWith "dsl: "), err)
    Assert.DoesNotContain("System.", err)
    Assert.DoesNotContain("Exception", err)

[<Fact>]
let ``--resume with --force is refused naming both flags`` () =
    let out = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "cnndsl-both-" + System.IO.Path.GetRandomFileName())
    let code, _, err = dslRun (sprintf "run \"%s/models/xor.cnn\" --resume --force --out \"%s\"" root out)
    Assert.Equal(2, code)
    Assert.Equal("dsl: --resume continues the run in the folder and --force replaces it; give one of them", err.Trim())
