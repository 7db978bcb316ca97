namespace CnnDsl.Runtime;

/// <summary>The memory the machine can give a run, read before anything is allocated.</summary>
public static class Memory
{
    /// <summary>MemAvailable from /proc/meminfo where there is one (what can be allocated
    /// without swapping), else the runtime's view of the machine's memory.</summary>
    public static long AvailableBytes()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
                if (line.StartsWith("MemAvailable:", StringComparison.Ordinal))
                    return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
    }

    /// <summary>What this process can still allocate: the smaller of the machine's available memory
    /// and the runtime's own limit (in a container, 75% of its memory cap, which /proc/meminfo does
    /// not show) less what the managed heap already holds.</summary>
    public static long HeadroomBytes() =>
        Math.Min(AvailableBytes(), GC.GetGCMemoryInfo().TotalAvailableMemoryBytes - GC.GetTotalMemory(false));

    /// <summary>The largest batch size whose plan (a training network's, or an inference network's)
    /// fits in `budget` bytes (0 when none does).</summary>
    public static int LargestBatch(CnnDsl.Graph.Graph graph, long budget, int upTo, bool inference = false)
    {
        int lo = 0, hi = upTo;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) / 2;
            if (MemoryPlan.Estimate(graph, mid, inference: inference).Total <= budget) lo = mid; else hi = mid - 1;
        }
        return lo;
    }
}
