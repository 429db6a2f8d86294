using System.Diagnostics;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using LlavaNative.Kernels.Cuda;

namespace LlavaNative.TestSupport.Cuda.Emulator;

/// <summary>
/// The kernel sources of <see cref="KernelSources"/> compiled for the CPU with g++ and cuda_emu.h into a shared
/// library, with a generated table that maps each kernel name to a function unpacking cuLaunchKernel's
/// <c>void**</c> argument array per the kernel's parameter list. Built once per source version and cached in
/// <c>LLAVANATIVE_CUDA_EMU_CACHE</c> or <c>~/.cache/llavanative/cuda-emu/&lt;sha256&gt;/</c>.
/// </summary>
public sealed unsafe class CudaEmulator
{
    public const string CacheVariable = "LLAVANATIVE_CUDA_EMU_CACHE";
    private const string LibraryName = "libllava_cuda_emu.so";

    private static readonly string[] CompilerFlags =
        ["-std=c++20", "-O2", "-fPIC", "-shared", "-pthread", "-ffp-contract=off", "-fno-fast-math", "-Wno-unused-parameter"];

    private static readonly Lazy<(CudaEmulator? Emulator, string Reason)> s_shared = new(Create);

    private readonly delegate* unmanaged<byte*, int> _find;
    private readonly delegate* unmanaged<int, uint, uint, uint, uint, uint, uint, void**, byte*, int, int> _launch;

    /// <summary>Where the library was built (for messages).</summary>
    public string LibraryPath { get; }

    private CudaEmulator(string libraryPath)
    {
        LibraryPath = libraryPath;
        nint lib = NativeLibrary.Load(libraryPath);
        _find = (delegate* unmanaged<byte*, int>)NativeLibrary.GetExport(lib, "llava_emu_find");
        _launch = (delegate* unmanaged<int, uint, uint, uint, uint, uint, uint, void**, byte*, int, int>)NativeLibrary.GetExport(lib, "llava_emu_launch");
    }

    /// <summary>
    /// The process-wide emulator, built on first use. Null with the reason when g++ is absent (tests then skip);
    /// a compilation error of the kernels is an exception, since it is a bug in the sources.
    /// </summary>
    public static CudaEmulator? Shared(out string reason)
    {
        var (emulator, why) = s_shared.Value;
        reason = why;
        return emulator;
    }

    /// <summary>Path of g++ on PATH, or null.</summary>
    public static string? FindCompiler()
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = Path.Combine(dir, "g++");
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }

    private static (CudaEmulator?, string) Create()
    {
        string? gxx = FindCompiler();
        if (gxx == null) return (null, "g++ is not on PATH: the CUDA kernels cannot be compiled for the host emulator");
        if (!OperatingSystem.IsLinux()) return (null, "the CUDA host emulator uses ucontext fibers and runs on Linux only");
        return (new CudaEmulator(Build(gxx)), "");
    }

    internal static string SupportFile(string name)
    {
        var assembly = typeof(CudaEmulator).Assembly;
        using var stream = assembly.GetManifestResourceStream("LlavaNative.TestSupport.Cuda.Emulator." + name)
            ?? throw new InvalidOperationException($"resource {name} is not embedded in {assembly.GetName().Name}");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }

    /// <summary>The emulator's own test kernels (emu_selftest.cu), built into the library beside the real units.</summary>
    private const string SelfTestUnit = "emu_selftest.cu";

    private static readonly Lazy<IReadOnlyDictionary<string, KernelSignature>> s_signatures = new(() =>
    {
        var all = new Dictionary<string, KernelSignature>(KernelSources.Kernels);
        foreach (var k in KernelSources.Parse(SelfTestUnit, SupportFile(SelfTestUnit))) all.Add(k.Name, k);
        return all;
    });

    /// <summary>Every kernel in the library: those of <see cref="KernelSources"/> and the emulator self-tests.</summary>
    public static IReadOnlyDictionary<string, KernelSignature> Signatures => s_signatures.Value;

    /// <summary>Source files of the emulator library: the kernel units and headers, cuda_emu.h, its runtime and the dispatch table.</summary>
    internal static SortedDictionary<string, string> Sources()
    {
        var files = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, text) in KernelSources.Files) files[name] = text;
        files[SelfTestUnit] = SupportFile(SelfTestUnit);
        files["cuda_emu.h"] = SupportFile("cuda_emu.h");
        files["cuda_emu_runtime.cpp"] = SupportFile("cuda_emu_runtime.cpp");
        files["dispatch.cpp"] = DispatchTable(Signatures.Values);
        return files;
    }

    private static string Build(string gxx)
    {
        var files = Sources();
        string key;
        using (var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
        {
            foreach (var (name, text) in files) hash.AppendData(Encoding.UTF8.GetBytes(name + "\0" + text + "\0"));
            hash.AppendData(Encoding.UTF8.GetBytes(gxx + "\0" + string.Join(' ', CompilerFlags)));
            key = Convert.ToHexStringLower(hash.GetHashAndReset())[..32];
        }
        string root = Environment.GetEnvironmentVariable(CacheVariable) is { Length: > 0 } dir
            ? dir
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "llavanative", "cuda-emu");
        string final = Path.Combine(root, key);
        if (File.Exists(Path.Combine(final, LibraryName))) return Path.Combine(final, LibraryName);

        // Build in a private folder, then rename it into place: concurrent test processes never see half a library.
        string work = Path.Combine(root, $"{key}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        Directory.CreateDirectory(work);
        foreach (var (name, text) in files) File.WriteAllText(Path.Combine(work, name), text);
        var arguments = new List<string>(CompilerFlags) { "-include", "cuda_emu.h", "-I", "." , "-x", "c++" };
        arguments.AddRange(KernelSources.Units);
        arguments.Add(SelfTestUnit);
        arguments.AddRange(["-x", "none", "cuda_emu_runtime.cpp", "dispatch.cpp", "-o", LibraryName]);
        var start = new ProcessStartInfo(gxx) { WorkingDirectory = work, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string a in arguments) start.ArgumentList.Add(a);
        using (var process = Process.Start(start)!)
        {
            string stderr = process.StandardError.ReadToEnd();
            process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            if (process.ExitCode != 0)
                throw new InvalidOperationException($"g++ could not compile the CUDA kernels for the emulator (in {work}):\n{stderr}");
        }
        try { Directory.Move(work, final); }
        catch (IOException) when (File.Exists(Path.Combine(final, LibraryName))) { Directory.Delete(work, recursive: true); }
        return Path.Combine(final, LibraryName);
    }

    /// <summary>C++ source of the name → launcher table: one function per kernel that reads each argument through its pointer.</summary>
    internal static string DispatchTable(IEnumerable<KernelSignature> kernels)
    {
        var list = kernels.OrderBy(k => k.Name, StringComparer.Ordinal).ToList();
        var s = new StringBuilder();
        s.AppendLine("// Generated by CudaEmulator.DispatchTable: kernel name -> unpacking of cuLaunchKernel's void** arguments.");
        s.AppendLine("#include \"cuda_emu.h\"");
        s.AppendLine("#include \"common.cuh\"");
        s.AppendLine("#include <cstring>");
        foreach (var k in list)
            s.AppendLine($"extern \"C\" void {k.Name}({string.Join(", ", k.Parameters.Select(p => $"{p.Type} {p.Name}"))});");
        s.AppendLine("namespace {");
        foreach (var k in list)
        {
            var unpacked = k.Parameters.Select((p, i) => $"*({Bare(p.Type)}*)args[{i}]");
            s.AppendLine($"void launch_{k.Name}(void** args) {{ {k.Name}({string.Join(", ", unpacked)}); }}");
        }
        s.AppendLine("struct Entry { const char* name; void (*launch)(void**); };");
        s.AppendLine("const Entry table[] = {");
        foreach (var k in list) s.AppendLine($"    {{\"{k.Name}\", launch_{k.Name}}},");
        s.AppendLine("};");
        s.AppendLine("}");
        s.AppendLine("extern \"C\" int llava_emu_run(void (*)(void**), unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, void**, char*, int);");
        s.AppendLine("extern \"C\" int llava_emu_find(const char* name) {");
        s.AppendLine("    for (int i = 0; i < (int)(sizeof(table) / sizeof(table[0])); i++) if (std::strcmp(table[i].name, name) == 0) return i;");
        s.AppendLine("    return -1;");
        s.AppendLine("}");
        s.AppendLine("extern \"C\" int llava_emu_launch(int kernel, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,");
        s.AppendLine("    void** args, char* error, int errorCapacity) {");
        s.AppendLine("    return llava_emu_run(table[kernel].launch, gx, gy, gz, bx, by, bz, args, error, errorCapacity);");
        s.AppendLine("}");
        return s.ToString();
    }

    private static string Bare(string type) => type.Replace("__restrict__", "").Trim();

    public int Find(string kernel)
    {
        byte[] utf8 = Encoding.UTF8.GetBytes(kernel + "\0");
        fixed (byte* p = utf8) return _find(p);
    }

    /// <summary>Runs a kernel to completion on the calling thread; throws with the emulator's message on failure.</summary>
    public void Launch(int kernel, string name, Dim3 grid, Dim3 block, void** arguments)
    {
        byte* error = stackalloc byte[1024];
        error[0] = 0;
        int status = _launch(kernel, grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z, arguments, error, 1024);
        if (status != 0)
            throw new InvalidOperationException($"emulated launch of {name} grid {grid} block {block} failed: {Marshal.PtrToStringUTF8((nint)error)}");
    }
}
