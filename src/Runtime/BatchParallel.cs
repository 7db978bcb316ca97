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
/// each waiting on its own semaphore.
/// The batch is cut into small pieces that the calling thread and the workers claim one at a
/// time; the caller never waits for a worker that has not started, only for pieces already
/// claimed. A worker that the scheduler leaves waiting (another process on the cores, or MKL's
/// OpenMP threads spinning after a GEMM: KMP_BLOCKTIME) then costs nothing: the caller does its
/// pieces. (The first version gave each worker a fixed share and waited for it; while another
/// training run shared the two cores, a LeNet step was 5x slower with it than on one thread.)
/// CNNDSL_LAYER_THREADS sets how many threads share the work (bench/threading.sh compares); the
/// default is one per core (Environment.ProcessorCount): since the claim-based sharing, the 2-thread
/// step no longer collapses under load, and FFT convolutions need it (their transforms and
/// per-frequency products are split this way, not by MKL).
/// </summary>
public static class BatchParallel
{
    // one semaphore per worker thread, released once per job
    private static readonly List<SemaphoreSlim> Workers = [];
    private static readonly object Gate = new();
    private static int _threads = 1;

    // The job being shared: its work, its size in pieces, and a claim word holding the job's
    // generation (high 32 bits) and the next unclaimed piece (low 32 bits), so that a worker that
    // wakes late cannot claim a piece of a later job with an earlier job's work.
    private static IBatchWork? _work;
    private static int _batch, _pieces;
    private static long _claim;
    private static int _finished;
    // the first exception of the job's pieces, recorded before the piece counts as finished
    private static Exception? _failure;

    static BatchParallel() =>
        Threads = int.TryParse(Environment.GetEnvironmentVariable("CNNDSL_LAYER_THREADS"), out var wanted) && wanted >= 1 ? wanted : Environment.ProcessorCount;

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
                    var start = new SemaphoreSlim(0);
                    Workers.Add(start);
                    new Thread(() => Loop(start)) { IsBackground = true, Name = $"cnndsl-layer-{Workers.Count}" }.Start();
                }
            }
        }
    }

    /// <summary>Below this many values touched, work stays on the calling thread (waking a
    /// worker costs microseconds).</summary>
    public static long MinimumWork { get; set; } = 1 << 15;

    /// <summary>Pieces per thread: enough that a late worker's pieces are taken by the others.</summary>
    public static int PiecesPerThread { get; set; } = 4;

    private static void Loop(SemaphoreSlim start)
    {
        Denormals.FlushToZero();
        while (true)
        {
            start.Wait();
            Share();
        }
    }

    /// <summary>Claims and runs pieces of the current job until none is left.</summary>
    private static void Share()
    {
        while (true)
        {
            long claim = Volatile.Read(ref _claim);
            int piece = (int)claim;
            // the job's fields, read after the claim word (For writes them while the claim word
            // is closed, and opens it after): the claim below fails if the job changed meanwhile
            var work = Volatile.Read(ref _work);
            int batch = _batch, pieces = _pieces;
            if (work == null || piece >= pieces) return;
            if (Interlocked.CompareExchange(ref _claim, claim + 1, claim) != claim) continue;
            int first = (int)((long)batch * piece / pieces), next = (int)((long)batch * (piece + 1) / pieces);
            try { if (next > first) work.Run(first, next - first); }
            catch (Exception e) { Interlocked.CompareExchange(ref _failure, e, null); }
            finally { Interlocked.Increment(ref _finished); }
        }
    }

    /// <summary>Runs work over images 0 .. batch - 1, split into contiguous pieces; `size` is
    /// the values the whole batch touches, to leave small work on one thread.</summary>
    public static void For(int batch, long size, IBatchWork work)
    {
        int threads = Math.Min(_threads, batch);
        if (threads <= 1 || size < MinimumWork || !Monitor.TryEnter(Gate))
        {
            // one thread (also when another network is already using the workers)
            work.Run(0, batch);
            return;
        }
        try
        {
            int pieces = Math.Min(batch, threads * PiecesPerThread);
            // publish the job: a new generation, closed (no piece to claim) while the fields
            // change, then opened at piece 0. Every piece of the last job has finished.
            long generation = (Volatile.Read(ref _claim) >> 32) + 1;
            Volatile.Write(ref _claim, (generation << 32) | int.MaxValue);
            _batch = batch; _pieces = pieces; _finished = 0; _failure = null;
            Volatile.Write(ref _work, work);
            Volatile.Write(ref _claim, generation << 32);
            for (int s = 1; s < threads; s++) Workers[s - 1].Release();
            // a piece that throws is counted finished; the others still run
            Share();
            // wait only for pieces that workers claimed and are still running
            var spin = new SpinWait();
            while (Volatile.Read(ref _finished) < pieces) spin.SpinOnce(sleep1Threshold: -1);
            Volatile.Write(ref _work, null);
            if (Interlocked.Exchange(ref _failure, null) is { } failure) throw new AggregateException(failure);
        }
        finally { Monitor.Exit(Gate); }
    }
}
