module CnnDsl.Runtime.Tests.BatchParallelTests

open System
open System.Threading
open Xunit
open CnnDsl.Runtime
open CnnDsl.Runtime.Tests.TestSupport
open CnnDsl.Runtime.Tests.GradientCheck

type private Recorder(batch: int, ?slow: bool) =
    let owner = Array.create batch -1
    member _.Owner = owner
    interface IBatchWork with
        member _.Run(first, count) =
            for i in first .. first + count - 1 do
                // a second visit would show as a thread id written twice
                if owner[i] <> -1 then failwithf "image %d ran twice" i
                owner[i] <- Thread.CurrentThread.ManagedThreadId
                if defaultArg slow false then Thread.Sleep 1

[<Fact>]
let ``every image runs exactly once, on at most the threads there are`` () =
  onTwoThreads (fun () ->
    for batch in [ 1; 2; 3; 7; 64; 1000 ] do
      for _ in 1 .. 20 do
        let work = Recorder batch
        BatchParallel.For(batch, Int64.MaxValue, work)
        Assert.True(work.Owner |> Array.forall (fun o -> o <> -1))
        Assert.InRange(work.Owner |> Array.distinct |> Array.length, 1, min batch 2))

/// The caller claims pieces as the worker does, so it need not wait for a worker to wake; when
/// the work is slow enough (1 ms an image, 64 ms a batch), the worker takes part.
[<Fact>]
let ``the worker takes pieces of slow work`` () =
  onTwoThreads (fun () ->
    let work = Recorder(64, true)
    BatchParallel.For(64, Int64.MaxValue, work)
    Assert.True(work.Owner |> Array.forall (fun o -> o <> -1))
    Assert.Equal(2, work.Owner |> Array.distinct |> Array.length))

[<Fact>]
let ``small work, and one thread, stay on the calling thread`` () =
    let threads = BatchParallel.Threads
    BatchParallel.Threads <- 2
    try
        let work = Recorder 8
        BatchParallel.For(8, 10L, work)
        Assert.True(work.Owner |> Array.forall ((=) Thread.CurrentThread.ManagedThreadId))
    finally BatchParallel.Threads <- threads
    let work = Recorder 8
    BatchParallel.For(8, Int64.MaxValue, work)
    Assert.True(BatchParallel.Threads > 1 || work.Owner |> Array.forall ((=) Thread.CurrentThread.ManagedThreadId))

type private Failing() =
    interface IBatchWork with
        member _.Run(first, _) = if first > 0 then invalidOp "worker failed"

[<Fact>]
let ``a worker's exception reaches the caller, and the workers keep working`` () =
    onTwoThreads (fun () ->
        Assert.ThrowsAny<Exception>(fun () -> BatchParallel.For(4, Int64.MaxValue, Failing())) |> ignore
        let work = Recorder 4
        BatchParallel.For(4, Int64.MaxValue, work)
        Assert.True(work.Owner |> Array.forall (fun o -> o <> -1)))

/// With every piece of work split (no size threshold), the layers that split their work over
/// the batch (im2col, col2im, pooling) still have right gradients.
[<Fact>]
let ``split layers have right gradients`` () =
    onTwoThreads (fun () ->
        assertGradients "input 6x7x2\nconv 3 3x3 same relu\nmaxpool 2 same\nconv 2 2x2 s2\navgpool 2 same\nminpool 1\nflatten\ndense 2" 5 |> ignore)
