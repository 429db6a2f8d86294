using System.Runtime.InteropServices;

namespace LlavaNative.Kernels.Cuda;

/// <summary>
/// Finds the CUDA driver (<c>libcuda.so.1</c>) and NVRTC (<c>libnvrtc.so.13</c>, <c>.12</c>, …) without a
/// CUDA toolkit install: the loader's own search first, then the usual toolkit folders and the
/// <c>nvidia/*/lib</c> folders of pip-installed CUDA wheels (PyTorch's), in that order.
/// <c>LLAVANATIVE_CUDA_DRIVER</c> and <c>LLAVANATIVE_NVRTC</c> (a file or a folder) override the search.
/// </summary>
public static class CudaLibraries
{
    public const string DriverVariable = "LLAVANATIVE_CUDA_DRIVER";
    public const string NvrtcVariable = "LLAVANATIVE_NVRTC";

    /// <summary>Names the dynamic loader is asked for, newest first.</summary>
    public static IReadOnlyList<string> DriverNames { get; } = ["libcuda.so.1", "libcuda.so"];

    public static IReadOnlyList<string> NvrtcNames { get; } = ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so"];

    /// <summary>Loads the driver library or explains, naming every candidate tried, why it could not.</summary>
    public static nint LoadDriver() => Load("CUDA driver", DriverVariable, DriverNames, DriverFolders(), "libcuda.so*");

    /// <summary>Loads NVRTC or explains, naming every candidate tried, why it could not.</summary>
    public static nint LoadNvrtc() => Load("NVRTC (CUDA runtime compiler)", NvrtcVariable, NvrtcNames, NvrtcFolders(), "libnvrtc.so.*");

    /// <summary>
    /// The search itself, separated from the process environment so tests can run it against empty folders.
    /// <paramref name="overridePath"/> (the environment variable's value) is a library file or a folder holding one.
    /// </summary>
    internal static nint Load(string what, string variable, string? overridePath, IReadOnlyList<string> names,
        IEnumerable<string> folders, string pattern, bool useLoaderSearch)
    {
        var tried = new List<string>();
        if (!string.IsNullOrEmpty(overridePath))
        {
            // An explicit override is the only candidate: silently falling back would hide a typo.
            foreach (string file in CandidatesIn(overridePath, names, pattern))
            {
                if (NativeLibrary.TryLoad(file, out nint handle)) return handle;
                tried.Add(file);
            }
            if (tried.Count == 0)
                tried.Add(Directory.Exists(overridePath) ? $"{overridePath} (a folder with no {pattern} in it)" : $"{overridePath} (does not exist)");
            throw new CudaUnavailableException(
                $"{what} not found: {variable}={overridePath} names no loadable library (tried {string.Join(", ", tried)})");
        }
        if (useLoaderSearch)
        {
            foreach (string name in names)
            {
                if (NativeLibrary.TryLoad(name, out nint handle)) return handle;
                tried.Add(name);
            }
        }
        foreach (string folder in folders.Distinct())
        {
            if (!Directory.Exists(folder)) continue;
            foreach (string file in CandidatesIn(folder, names, pattern))
            {
                if (NativeLibrary.TryLoad(file, out nint handle)) return handle;
                tried.Add(file);
            }
        }
        throw new CudaUnavailableException(
            $"{what} not found (tried {string.Join(", ", tried.Count == 0 ? ["nothing"] : tried)}); " +
            $"set {variable} to the library file or its folder");
    }

    private static nint Load(string what, string variable, IReadOnlyList<string> names, IEnumerable<string> folders, string pattern)
        => Load(what, variable, Environment.GetEnvironmentVariable(variable), names, folders, pattern, useLoaderSearch: true);

    /// <summary>The library files to try for a file-or-folder path: the file itself, or the known names then any match of the pattern.</summary>
    private static IEnumerable<string> CandidatesIn(string path, IReadOnlyList<string> names, string pattern)
    {
        if (File.Exists(path)) { yield return path; yield break; }
        if (!Directory.Exists(path)) yield break;
        var seen = new HashSet<string>();
        foreach (string name in names)
        {
            string file = Path.Combine(path, name);
            if (File.Exists(file) && seen.Add(file)) yield return file;
        }
        // Versioned files (libnvrtc.so.13.0.88) when the unversioned links are absent, as in pip wheels. Newest first.
        foreach (string file in Directory.EnumerateFiles(path, pattern).OrderByDescending(f => f, StringComparer.Ordinal))
            if (!file.Contains("builtins", StringComparison.Ordinal) && seen.Add(file)) yield return file;
    }

    private static IEnumerable<string> DriverFolders()
    {
        yield return "/usr/local/nvidia/lib64";
        yield return "/usr/lib/x86_64-linux-gnu";
        yield return "/usr/lib64";
        yield return "/usr/lib/wsl/lib";
        // The forward-compatibility driver a toolkit may ship (never lib64/stubs: that one only links, it cannot run).
        foreach (string root in ToolkitRoots()) yield return Path.Combine(root, "compat");
    }

    private static IEnumerable<string> NvrtcFolders()
    {
        foreach (string root in ToolkitRoots())
        {
            yield return Path.Combine(root, "lib64");
            yield return Path.Combine(root, "targets", "x86_64-linux", "lib");
        }
        foreach (string sitePackages in PythonSitePackages())
        {
            // CUDA 13 wheels put every library in nvidia/cu13/lib; CUDA 12 wheels one folder per component.
            yield return Path.Combine(sitePackages, "nvidia", "cu13", "lib");
            yield return Path.Combine(sitePackages, "nvidia", "cuda_nvrtc", "lib");
        }
    }

    /// <summary>CUDA_HOME / CUDA_PATH, /usr/local/cuda and every /usr/local/cuda-X.Y, newest first.</summary>
    private static IEnumerable<string> ToolkitRoots()
    {
        foreach (string variable in new[] { "CUDA_HOME", "CUDA_PATH" })
            if (Environment.GetEnvironmentVariable(variable) is { Length: > 0 } root) yield return root;
        yield return "/usr/local/cuda";
        if (Directory.Exists("/usr/local"))
            foreach (string dir in Directory.EnumerateDirectories("/usr/local", "cuda-*").OrderByDescending(d => d, StringComparer.Ordinal))
                yield return dir;
    }

    /// <summary>site-packages / dist-packages folders of the Python installs a machine with PyTorch usually has.</summary>
    private static IEnumerable<string> PythonSitePackages()
    {
        var roots = new List<string> { "/usr/lib", "/usr/local/lib", "/opt/conda/lib" };
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (home.Length > 0) roots.Add(Path.Combine(home, ".local", "lib"));
        if (Environment.GetEnvironmentVariable("VIRTUAL_ENV") is { Length: > 0 } venv) roots.Add(Path.Combine(venv, "lib"));
        if (Directory.Exists("/opt"))
            foreach (string opt in Directory.EnumerateDirectories("/opt"))
            {
                roots.Add(Path.Combine(opt, "lib"));
                roots.Add(Path.Combine(opt, ".venv", "lib"));
            }
        foreach (string root in roots)
        {
            if (!Directory.Exists(root)) continue;
            IEnumerable<string> pythons;
            try { pythons = Directory.EnumerateDirectories(root, "python3*").ToList(); }
            catch (UnauthorizedAccessException) { continue; }
            foreach (string python in pythons)
            {
                yield return Path.Combine(python, "site-packages");
                yield return Path.Combine(python, "dist-packages");
            }
        }
        if (Environment.GetEnvironmentVariable("PYTHONPATH") is { Length: > 0 } pythonPath)
            foreach (string p in pythonPath.Split(':', StringSplitOptions.RemoveEmptyEntries)) yield return p;
    }
}
