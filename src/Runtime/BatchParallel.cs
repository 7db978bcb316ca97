namespace CnnDsl.Runtime;

/// <summary>A piece of per-image work that can be split over the batch: Run(first, count)
/// handles images first .. first + count - 1 and touches nothing the other images touch.</summary>
public interface IBatchWork
{
    void Run(int first, int count);
}

/// <summary>
/// Splits per-image work (im2col, col2im, pooling) over the cores. GEMMs already run on MKL's
/// threads; the work between them ran on one core. Parallel.For allocates per call, and the
/// runtime allocates nothing per batch, so this keeps its own worker threads, started once,
/// each waiting on its own semaphore; the calling thread takes the first share.
/// CNNDSL_LAYER_THREADS sets how many threads share the work; the default is 1 (off): on a
/// machine that is also running other work, every hand-over to a worker waits for the
/// scheduler, and a step measured 5x slower that way (bench/threading.sh compares).
/// </summary>
public static class BatchParallel
{
    private sealed class Worker
    {
        public readonly SemaphoreSlim Start = new(0);
        public IBatchWork? Work;
        public int First, Count;
        public Exception? Error;
    }

    private static readonly List<Worker> Workers = [];
    private static readonly CountdownEvent Done = new(1);
    private static readonly object Gate = new();
    private static int _threads = 1;

    static BatchParallel() =>
        Threads = int.TryParse(Environment.GetEnvironmentVariable("CNNDSL_LAYER_THREADS"), out var wanted) && wanted >= 1 ? wanted : 1;

    /// <summary>Threads that share a piece of work, the caller's included (workers are started
    /// when first needed and kept).</summary>
    public static int Threads
    {
        get => _threads;
        set
        {
            lock (Gate)
            {
                _threads = Math.Max(1, value);
                while (Workers.Count < _threads - 1)
                {
                    var worker = new Worker();
                    Workers.Add(worker);
                    new Thread(() => Loop(worker)) { IsBackground = true, Name = $"cnndsl-layer-{Workers.Count}" }.Start();
                }
            }
        }
    }

    /// <summary>Below this many values touched, work stays on the calling thread (waking a
    /// worker costs microseconds).</summary>
    public static long MinimumWork { get; set; } = 1 << 15;

    private static void Loop(Worker worker)
    {
        Denormals.FlushToZero();
        while (true)
        {
            worker.Start.Wait();
            try { worker.Work!.Run(worker.First, worker.Count); }
            catch (Exception e) { worker.Error = e; }
            finally { worker.Work = null; Done.Signal(); }
        }
    }

    /// <summary>Runs work over images 0 .. batch - 1, split into contiguous shares; `size` is
    /// the values the whole batch touches, to leave small work on one thread.</summary>
    public static void For(int batch, long size, IBatchWork work)
    {
        int shares = Math.Min(_threads, batch);
        if (shares <= 1 || size < MinimumWork || !Monitor.TryEnter(Gate))
        {
            // one thread (also when another network is already using the workers)
            work.Run(0, batch);
            return;
        }
        try
        {
            Done.Reset(shares - 1);
            int per = batch / shares, extra = batch % shares, first = 0;
            int mine = per + (extra > 0 ? 1 : 0);
            first = mine;
            for (int s = 1; s < shares; s++)
            {
                int count = per + (s < extra ? 1 : 0);
                var worker = Workers[s - 1];
                worker.Work = work; worker.First = first; worker.Count = count;
                first += count;
                worker.Start.Release();
            }
            work.Run(0, mine);
            Done.Wait();
            for (int s = 1; s < shares; s++)
                if (Workers[s - 1].Error is { } error)
                {
                    Workers[s - 1].Error = null;
                    throw new AggregateException(error);
                }
        }
        finally { Monitor.Exit(Gate); }
    }
}
