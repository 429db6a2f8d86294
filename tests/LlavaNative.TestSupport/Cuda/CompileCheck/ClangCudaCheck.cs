using System.Diagnostics;
using System.Text;
using LlavaNative.Kernels.Cuda;

namespace LlavaNative.TestSupport.Cuda.CompileCheck;

/// <summary>
/// A device-side compile of every kernel unit with clang's CUDA front end (no CUDA toolkit needed): the sources
/// plus nvrtc_shim.h (what NVRTC declares implicitly) to PTX for sm_80. Catches syntax and type errors, device
/// code the host emulator would accept but a GPU compiler would not (inline PTX, address spaces), and lets tests
/// read the PTX (e.g. that no kernel spills register arrays to local memory).
/// </summary>
public static class ClangCudaCheck
{
    public const string Arch = "sm_80";

    /// <summary>A clang that has the CUDA headers (clang-14 … clang-20, or clang), or null.</summary>
    public static string? FindClang()
    {
        string[] names = ["clang-20", "clang-19", "clang-18", "clang-17", "clang-16", "clang-15", "clang-14", "clang"];
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
            foreach (string name in names)
            {
                string candidate = Path.Combine(dir, name);
                if (File.Exists(candidate)) return candidate;
            }
        return null;
    }

    public sealed record UnitResult(string Unit, bool Compiled, string Ptx, string Errors);

    /// <summary>Compiles each unit of <see cref="KernelSources"/>; a failure is reported, not thrown.</summary>
    public static IReadOnlyList<UnitResult> CompileAll(string clang)
    {
        string work = Directory.CreateTempSubdirectory("llava-clang-cuda-").FullName;
        try
        {
            foreach (var (name, text) in KernelSources.Files) File.WriteAllText(Path.Combine(work, name), text);
            File.WriteAllText(Path.Combine(work, "nvrtc_shim.h"), Emulator.CudaEmulator.SupportFile("nvrtc_shim.h"));
            var results = new List<UnitResult>();
            foreach (string unit in KernelSources.Units)
            {
                string ptx = Path.ChangeExtension(unit, ".ptx");
                var start = new ProcessStartInfo(clang) { WorkingDirectory = work, RedirectStandardError = true, RedirectStandardOutput = true };
                foreach (string a in new[]
                {
                    "-x", "cuda", "--cuda-device-only", $"--cuda-gpu-arch={Arch}", "-nocudainc", "-nocudalib", "-std=c++17", "-O2",
                    // Without a CUDA install clang assumes an old PTX ISA; the sync shuffles need PTX 6.0+.
                    "-Xclang", "-target-feature", "-Xclang", "+ptx70",
                    "-DLLAVA_NVRTC=1", "-include", "nvrtc_shim.h", "-I", ".", "-S", "-o", ptx, unit,
                }) start.ArgumentList.Add(a);
                using var process = Process.Start(start)!;
                string errors = process.StandardError.ReadToEnd();
                process.StandardOutput.ReadToEnd();
                process.WaitForExit();
                string ptxText = process.ExitCode == 0 && File.Exists(Path.Combine(work, ptx)) ? File.ReadAllText(Path.Combine(work, ptx)) : "";
                results.Add(new UnitResult(unit, process.ExitCode == 0, ptxText, errors));
            }
            return results;
        }
        finally { Directory.Delete(work, recursive: true); }
    }

    /// <summary>Names of the .entry (kernel) functions in a PTX text.</summary>
    public static IEnumerable<string> Entries(string ptx)
    {
        foreach (string line in ptx.Split('\n'))
        {
            int at = line.IndexOf(".entry ", StringComparison.Ordinal);
            if (at < 0) continue;
            string rest = line[(at + 7)..].Trim();
            int end = rest.IndexOfAny(['(', ' ']);
            yield return end < 0 ? rest : rest[..end];
        }
    }
}
