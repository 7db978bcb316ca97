using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;

namespace CnnDsl.Runtime.Blas;

/// <summary>
/// cblas_sgemm / cblas_dgemm from Intel MKL's single dynamic library (libmkl_rt), found in
/// MKLROOT, oneAPI's default folder, LD_LIBRARY_PATH or the system folders (Debian's libmkl-rt).
/// </summary>
public sealed unsafe class MklGemm : IGemm
{
    private const string Library = "mkl_rt";
    private const int RowMajor = 101, NoTrans = 111, Trans = 112;
    private const int RtldNow = 2, RtldGlobal = 0x100;

    [DllImport(Library)] private static extern void cblas_sgemm(int layout, int transA, int transB, int m, int n, int k,
        float alpha, float* a, int lda, float* b, int ldb, float beta, float* c, int ldc);
    [DllImport(Library)] private static extern void cblas_dgemm(int layout, int transA, int transB, int m, int n, int k,
        double alpha, double* a, int lda, double* b, int ldb, double beta, double* c, int ldc);
    [DllImport(Library)] private static extern int MKL_Get_Max_Threads();
    [DllImport(Library)] private static extern int MKL_Set_Num_Threads_Local(int threads);
    [DllImport(Library)] private static extern void MKL_Get_Version_String(byte* buffer, int length);
    [DllImport(Library)] private static extern int mkl_cbwr_get_auto_branch();
    [DllImport(Library)] private static extern uint vmlSetMode(uint mode);
    [DllImport("libc.so.6")] private static extern IntPtr dlopen(string file, int mode);
    [DllImport("libc.so.6")] private static extern int setenv(string name, string value, int overwrite);

    private static bool _resolverSet;
    private static IntPtr _handle;
    private static string _shim = "no cpu shim";

    public string Description { get; }

    private MklGemm(string description) => Description = description;

    /// <summary>Where libmkl_rt may be, in the order tried.</summary>
    public static IEnumerable<string> Candidates()
    {
        var names = new[] { "libmkl_rt.so", "libmkl_rt.so.2", "libmkl_rt.so.1" };
        var roots = new List<string>();
        var mklRoot = Environment.GetEnvironmentVariable("MKLROOT");
        if (!string.IsNullOrEmpty(mklRoot)) roots.AddRange(new[] { Path.Combine(mklRoot, "lib", "intel64"), Path.Combine(mklRoot, "lib") });
        roots.AddRange(new[] { "/opt/intel/oneapi/mkl/latest/lib/intel64", "/opt/intel/oneapi/mkl/latest/lib" });
        foreach (var root in roots)
            foreach (var name in names)
                yield return Path.Combine(root, name);
        // Bare names: the dynamic loader searches LD_LIBRARY_PATH and the system folders.
        foreach (var name in names) yield return name;
    }

    /// <summary>MKL 2020 runs a generic path on non-Intel CPUs; the shim (native/mkl_cpu.c) restores
    /// its AVX2 kernels. It must be global before MKL loads. CNNDSL_MKL_CPU_SHIM=0 turns it off.</summary>
    private static void LoadCpuShim()
    {
        if (Environment.GetEnvironmentVariable("CNNDSL_MKL_CPU_SHIM") == "0") { _shim = "cpu shim off"; return; }
        var path = NativeFile("libcnndsl_mklcpu.so");
        if (path is null) { _shim = "no cpu shim built"; return; }
        _shim = dlopen(path, RtldNow | RtldGlobal) != IntPtr.Zero ? "cpu shim" : "cpu shim failed to load";
    }

    /// <summary>A native file of the runtime: beside the program (a build of this repository, the
    /// `dsl` tool) or in one of the host's native search folders (a program that references the
    /// CnnDsl.Runtime package gets it in runtimes/RID/native).</summary>
    private static string? NativeFile(string name)
    {
        var folders = new List<string> { AppContext.BaseDirectory };
        if (AppContext.GetData("NATIVE_DLL_SEARCH_DIRECTORIES") is string searched)
            folders.AddRange(searched.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries));
        return folders.Select(folder => Path.Combine(folder, name)).FirstOrDefault(File.Exists);
    }

    /// <summary>How long Intel OpenMP's threads spin after a GEMM before sleeping (KMP_BLOCKTIME, ms).
    /// Its default, 200 ms, keeps them spinning on the cores while the layer threads run the work
    /// between GEMMs; 0 makes every GEMM wake them. 1 ms measured faster than the default on all four
    /// compared models (bench/compare.sh's, 3 alternating pairs each: LeNet inference 44-60k against
    /// 32-50k images/s, the seed's Fashion-MNIST model at batch 32 445-468 against 355-391,
    /// cifar10-bn at 128 1,018-1,082 against 898-1,007) and 0 was slower on the strided model.
    /// The user's own KMP_BLOCKTIME wins. Set in the native environment before MKL loads, where
    /// OpenMP reads it.</summary>
    public const string OpenMpSpinMilliseconds = "1";
    private static string _spin = "";

    private static void SetOpenMpSpin()
    {
        var given = Environment.GetEnvironmentVariable("KMP_BLOCKTIME");
        if (given is null) setenv("KMP_BLOCKTIME", OpenMpSpinMilliseconds, 0);
        _spin = $"OpenMP spin {given ?? OpenMpSpinMilliseconds} ms";
    }

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? path)
    {
        if (name != Library) return IntPtr.Zero;
        if (_handle != IntPtr.Zero) return _handle;
        SetOpenMpSpin();
        LoadCpuShim();
        foreach (var candidate in Candidates())
            if (NativeLibrary.TryLoad(candidate, out _handle)) return _handle;
        return IntPtr.Zero;
    }

    /// <summary>Loads MKL, or returns null with the reason.</summary>
    public static MklGemm? TryLoad(out string why)
    {
        try
        {
            if (!_resolverSet)
            {
                NativeLibrary.SetDllImportResolver(typeof(MklGemm).Assembly, Resolve);
                _resolverSet = true;
            }
            var buffer = stackalloc byte[256];
            MKL_Get_Version_String(buffer, 256);
            var version = Encoding.ASCII.GetString(buffer, 255).TrimEnd('\0', ' ');
            // Flush denormals to zero in MKL's vector math (VML_FTZDAZ_ON = 0x280000); the
            // runtime's own kernels set the thread's MXCSR (see Denormals).
            vmlSetMode(0x00280000);
            var branch = mkl_cbwr_get_auto_branch() switch
            {
                >= 10 => "AVX2 path",
                var b => $"generic path (branch {b})",
            };
            why = "";
            var shortVersion = version.Split(" Product")[0];
            // MKL_THREADING_LAYER picks the layer libmkl_rt loads (Intel OpenMP unless set).
            var layer = (Environment.GetEnvironmentVariable("MKL_THREADING_LAYER") ?? "").Trim().ToUpperInvariant() switch
            {
                "GNU" => "GNU OpenMP threading",
                "SEQUENTIAL" => "sequential",
                "TBB" => "TBB threading",
                _ => "Intel OpenMP threading",
            };
            return new MklGemm($"{shortVersion}, {branch}, {_shim}, {layer}, {MKL_Get_Max_Threads()} threads" + (layer.StartsWith("Intel") ? $", {_spin}" : ""));
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
        {
            why = e is DllNotFoundException ? "libmkl_rt.so not found" : e.Message;
            return null;
        }
    }

    /// <summary>mkl_set_num_threads_local: the count for this thread's calls only (0: the global one).</summary>
    public void SetCallerThreads(int threads) => MKL_Set_Num_Threads_Local(threads);

    public void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
    {
        if (m == 0 || n == 0) return;
        fixed (float* pa = a) fixed (float* pb = b) fixed (float* pc = c)
            cblas_sgemm(RowMajor, transA ? Trans : NoTrans, transB ? Trans : NoTrans, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc);
    }

    public void Dgemm(bool transA, bool transB, int m, int n, int k, double alpha,
        ReadOnlySpan<double> a, int lda, ReadOnlySpan<double> b, int ldb, double beta, Span<double> c, int ldc)
    {
        if (m == 0 || n == 0) return;
        fixed (double* pa = a) fixed (double* pb = b) fixed (double* pc = c)
            cblas_dgemm(RowMajor, transA ? Trans : NoTrans, transB ? Trans : NoTrans, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc);
    }
}
