using System.Runtime.InteropServices;

namespace CnnDsl.Runtime;

/// <summary>
/// Flush-to-zero / denormals-are-zero for the threads that run kernels. Denormal floats
/// (below 1.2e-38) creep into trained weights and activations and make some CPUs 20-50x
/// slower (pytorch#19651); rounding them to zero changes no result a network can tell.
/// MXCSR is per thread, so every thread that computes calls FlushToZero (cheap to repeat).
/// </summary>
public static class Denormals
{
    [DllImport("cnndsl_native", EntryPoint = "cnndsl_flush_denormals")]
    private static extern void FlushDenormals();

    private static readonly bool Available = Probe();
    [ThreadStatic] private static bool _done;

    /// <summary>False when the native helper was not built (no C compiler at build time).</summary>
    public static bool Enabled => Available;

    private static bool Probe()
    {
        if (Environment.GetEnvironmentVariable("CNNDSL_DENORMALS") == "keep") return false;
        try { FlushDenormals(); return true; }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return false; }
    }

    public static void FlushToZero()
    {
        if (_done || !Available) return;
        FlushDenormals();
        _done = true;
    }
}
