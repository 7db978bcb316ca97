namespace CnnDsl.Runtime.Training;

/// <summary>
/// Writes a file so that a reader, an interrupted run or a full disk never leaves half of it:
/// the bytes go to a temporary file beside the target, with a name of its own
/// (`NAME.RANDOM.tmp`) created exclusively (an existing file or symbolic link of that name is
/// never opened, so a planted link cannot redirect the write), flushed to disk, then renamed
/// over the target, which replaces a link rather than following it. On any failure the
/// temporary file is removed and the target keeps its previous content.
/// </summary>
public static class AtomicFile
{
    /// <summary>Writes `path` through `write`; an unusable path (empty, a folder) is an
    /// IOException that names it, before anything is written.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        if (string.IsNullOrWhiteSpace(path))
            throw new IOException("the output file name is empty; give a file name such as model.onnx");
        if (Directory.Exists(path))
            throw new IOException($"'{path}' is a folder; give the name of a file to write (in that folder or elsewhere)");
        var full = Path.GetFullPath(path);
        var directory = Path.GetDirectoryName(full)!;
        if (File.Exists(directory))
            throw new IOException($"cannot write '{path}': '{directory}' is a file, not a folder");
        if (IsSpecial(full))
            throw new IOException($"'{path}' is not a regular file (a device, a pipe or a socket), and writing would replace it; give the name of a file");
        Directory.CreateDirectory(directory);
        var temporary = Path.Combine(directory, $"{Path.GetFileName(full)}.{Path.GetRandomFileName().Replace(".", "")}.tmp");
        try
        {
            using (var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(file);
                file.Flush(flushToDisk: true);
            }
            File.Move(temporary, full, overwrite: true);
        }
        catch (Exception e)
        {
            // Never leave the partial file behind (a full disk, a failed rename onto a folder).
            try { File.Delete(temporary); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            // Name the file the user asked for (not the temporary one) and what to do.
            if (e is IOException && (e.HResult & 0xFFFF) == 28 || e.Message.Contains("No space left", StringComparison.Ordinal))
                throw new IOException($"cannot write '{path}': the disk is full; nothing was changed there: free some space, or write elsewhere (--out DIR or -o FILE)", e);
            if (e is IOException or UnauthorizedAccessException)
                throw new IOException($"cannot write '{path}': {e.Message.Replace(temporary, full)}; nothing was changed there: check that the folder exists and can be written, or write elsewhere", e);
            throw;
        }
    }

    public static void WriteAllBytes(string path, byte[] bytes) => Write(path, s => s.Write(bytes));

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "stat", SetLastError = true)]
    private static extern int Stat(string path, byte[] buffer);

    /// <summary>Whether the path names an existing device, pipe or socket (the rename that
    /// finishes a write would replace it by a file). .NET does not report a file's type on
    /// Unix, so this asks stat(2) (glibc 2.33+); st_mode sits at byte 24 of struct stat on
    /// x86-64 and at 16 on arm64. Elsewhere, or when stat is not found, nothing is refused.</summary>
    private static bool IsSpecial(string path)
    {
        if (!OperatingSystem.IsLinux() || !File.Exists(path)) return false;
        int offset = System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture switch
        {
            System.Runtime.InteropServices.Architecture.X64 => 24,
            System.Runtime.InteropServices.Architecture.Arm64 => 16,
            _ => -1,
        };
        if (offset < 0) return false;
        try
        {
            var buffer = new byte[256];
            if (Stat(path, buffer) != 0) return false;
            const int TypeMask = 0xF000, Regular = 0x8000;
            return (BitConverter.ToInt32(buffer, offset) & TypeMask) != Regular;
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException) { return false; }
    }

    public static void WriteAllLines(string path, IEnumerable<string> lines) =>
        Write(path, s =>
        {
            using var w = new StreamWriter(s, new System.Text.UTF8Encoding(false), 1 << 16, leaveOpen: true);
            foreach (var line in lines) w.WriteLine(line);
        });
}
