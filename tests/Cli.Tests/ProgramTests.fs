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
