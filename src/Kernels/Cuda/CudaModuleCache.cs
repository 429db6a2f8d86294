using System.Security.Cryptography;
using System.Text;

namespace LlavaNative.Kernels.Cuda;

/// <summary>
/// Compiled kernel modules on disk, so NVRTC runs once per source version, option set and GPU architecture:
/// <c>&lt;dir&gt;/&lt;sha256&gt;.cubin</c> with the key hashed over the compiler version, the options (which carry the
/// architecture), the unit's name and text and every header's name and text. The folder is
/// <c>LLAVANATIVE_CUDA_CACHE</c>, else <c>$XDG_CACHE_HOME/llavanative/cuda</c>, else <c>~/.cache/llavanative/cuda</c>.
/// A cache that cannot be written only costs a recompilation next time.
/// </summary>
public sealed class CudaModuleCache(string directory)
{
    public const string DirectoryVariable = "LLAVANATIVE_CUDA_CACHE";

    public string Directory { get; } = directory;

    public static CudaModuleCache Default() => new(DefaultDirectory());

    public static string DefaultDirectory()
    {
        if (Environment.GetEnvironmentVariable(DirectoryVariable) is { Length: > 0 } dir) return dir;
        if (Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg) return Path.Combine(xdg, "llavanative", "cuda");
        return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "llavanative", "cuda");
    }

    /// <summary>The cache key (lower-case hex SHA-256) of one compilation.</summary>
    public static string Key(string compiler, IReadOnlyList<string> options, string unitName, string unitText,
        IEnumerable<KeyValuePair<string, string>> headers)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        void Add(string s)
        {
            hash.AppendData(Encoding.UTF8.GetBytes(s));
            hash.AppendData([0]); // separator: ("ab","c") and ("a","bc") hash differently
        }
        Add("llavanative-cuda-module-v1");
        Add(compiler);
        Add(options.Count.ToString(System.Globalization.CultureInfo.InvariantCulture));
        foreach (string option in options) Add(option);
        Add(unitName);
        Add(unitText);
        foreach (var (name, text) in headers.OrderBy(h => h.Key, StringComparer.Ordinal)) { Add(name); Add(text); }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    public string PathOf(string key) => Path.Combine(Directory, key + ".cubin");

    public byte[]? TryRead(string key)
    {
        try { return File.Exists(PathOf(key)) ? File.ReadAllBytes(PathOf(key)) : null; }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    public void Write(string key, byte[] image)
    {
        try
        {
            System.IO.Directory.CreateDirectory(Directory);
            // Write then rename, so a concurrent reader never sees half a file.
            string temp = PathOf(key) + "." + Environment.ProcessId + ".tmp";
            File.WriteAllBytes(temp, image);
            File.Move(temp, PathOf(key), overwrite: true);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
