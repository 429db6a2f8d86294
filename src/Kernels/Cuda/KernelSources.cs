using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;

namespace LlavaNative.Kernels.Cuda;

/// <summary>One parameter of a kernel: its declared C type and the launch ABI kind it maps to.</summary>
public readonly record struct KernelParameter(string Type, string Name, KernelArgumentKind Kind);

/// <summary>
/// The parameter list of an <c>extern "C" __global__</c> kernel, read from its source. Launches are checked
/// against it (count and kind of each argument) before they reach the driver or the emulator.
/// </summary>
public sealed class KernelSignature(string name, string file, IReadOnlyList<KernelParameter> parameters)
{
    public string Name { get; } = name;
    /// <summary>The .cu file that defines the kernel.</summary>
    public string File { get; } = file;
    public IReadOnlyList<KernelParameter> Parameters { get; } = parameters;

    /// <summary>Throws when <paramref name="arguments"/> does not match the parameter list.</summary>
    public void Check(KernelArguments arguments)
    {
        if (arguments.Count != Parameters.Count)
            throw new ArgumentException($"kernel {Name} ({File}) takes {Parameters.Count} arguments, the launch passed {arguments.Count}");
        for (int i = 0; i < Parameters.Count; i++)
        {
            KernelArgumentKind passed = arguments.Kind(i), declared = Parameters[i].Kind;
            if (passed != declared)
                throw new ArgumentException(
                    $"kernel {Name} ({File}) argument {i} '{Parameters[i].Type} {Parameters[i].Name}' is {declared}, the launch passed {passed}");
        }
    }

    public override string ToString() => $"{Name}({string.Join(", ", Parameters.Select(p => p.Type + " " + p.Name))})";
}

/// <summary>
/// The CUDA C++ kernel sources shipped inside this assembly (src/Kernels/Cuda/Kernels/*.cu and *.cuh, embedded
/// resources), written in the dialect NVRTC accepts with no CUDA headers: the same text is compiled by NVRTC on
/// a GPU machine, by clang for a syntax check, and by g++ with an emulation header in the tests.
/// </summary>
public static partial class KernelSources
{
    private const string ResourcePrefix = "LlavaNative.Kernels.Cuda.Kernels.";

    private static readonly Lazy<IReadOnlyDictionary<string, string>> s_files = new(LoadFiles);
    private static readonly Lazy<IReadOnlyDictionary<string, KernelSignature>> s_kernels = new(() => ParseAll(Files));

    /// <summary>File name (e.g. "matvec.cu", "common.cuh") → source text.</summary>
    public static IReadOnlyDictionary<string, string> Files => s_files.Value;

    /// <summary>The translation units (the .cu files), in name order.</summary>
    public static IEnumerable<string> Units => Files.Keys.Where(f => f.EndsWith(".cu", StringComparison.Ordinal)).Order(StringComparer.Ordinal);

    /// <summary>The headers the units include (the .cuh files).</summary>
    public static IEnumerable<string> Headers => Files.Keys.Where(f => f.EndsWith(".cuh", StringComparison.Ordinal)).Order(StringComparer.Ordinal);

    /// <summary>Every kernel of every unit, by name.</summary>
    public static IReadOnlyDictionary<string, KernelSignature> Kernels => s_kernels.Value;

    public static KernelSignature Kernel(string name)
        => Kernels.TryGetValue(name, out var signature)
            ? signature
            : throw new ArgumentException($"no CUDA kernel named '{name}' in {string.Join(", ", Units)}");

    private static IReadOnlyDictionary<string, string> LoadFiles()
    {
        var assembly = typeof(KernelSources).Assembly;
        var files = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (string resource in assembly.GetManifestResourceNames())
        {
            if (!resource.StartsWith(ResourcePrefix, StringComparison.Ordinal)) continue;
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream, Encoding.UTF8);
            files[resource[ResourcePrefix.Length..]] = reader.ReadToEnd();
        }
        if (files.Count == 0) throw new InvalidOperationException("no CUDA kernel sources are embedded in LlavaNative.Kernels");
        return files;
    }

    /// <summary>Reads every <c>extern "C" __global__ void name(params)</c> declaration of the units.</summary>
    internal static IReadOnlyDictionary<string, KernelSignature> ParseAll(IReadOnlyDictionary<string, string> files)
    {
        var kernels = new SortedDictionary<string, KernelSignature>(StringComparer.Ordinal);
        foreach (var (file, text) in files)
        {
            if (!file.EndsWith(".cu", StringComparison.Ordinal)) continue;
            foreach (var signature in Parse(file, text))
            {
                if (kernels.TryGetValue(signature.Name, out var other))
                    throw new InvalidOperationException($"CUDA kernel {signature.Name} is defined twice: {other.File} and {file}");
                kernels[signature.Name] = signature;
            }
        }
        return kernels;
    }

    /// <summary>The kernels declared in one unit's text (<paramref name="file"/> names it in messages).</summary>
    public static IEnumerable<KernelSignature> Parse(string file, string text)
    {
        foreach (Match m in KernelDeclaration().Matches(StripComments(text)))
        {
            string name = m.Groups["name"].Value;
            var parameters = new List<KernelParameter>();
            string list = m.Groups["params"].Value.Trim();
            if (list.Length > 0 && list != "void")
            {
                foreach (string raw in list.Split(','))
                {
                    string p = Regex.Replace(raw, @"\s+", " ").Trim();
                    var nameMatch = TrailingIdentifier().Match(p);
                    if (!nameMatch.Success)
                        throw new InvalidOperationException($"{file}: kernel {name}: cannot read parameter '{p}'");
                    string type = p[..nameMatch.Index].Trim();
                    parameters.Add(new KernelParameter(type, nameMatch.Groups[1].Value, KindOf(file, name, type)));
                }
            }
            yield return new KernelSignature(name, file, parameters);
        }
    }

    private static KernelArgumentKind KindOf(string file, string kernel, string type)
    {
        if (type.Contains('*')) return KernelArgumentKind.Pointer;
        string bare = Regex.Replace(type, @"\b(const|__restrict__|volatile)\b", "").Trim();
        bare = Regex.Replace(bare, @"\s+", " ");
        return bare switch
        {
            "int" or "int32_t" => KernelArgumentKind.Int32,
            "unsigned" or "unsigned int" or "uint32_t" => KernelArgumentKind.UInt32,
            "float" => KernelArgumentKind.Float32,
            "long long" or "int64_t" => KernelArgumentKind.Int64,
            _ => throw new InvalidOperationException(
                $"{file}: kernel {kernel}: parameter type '{type}' is not one the launcher can pass (int, unsigned, float, long long, pointers)"),
        };
    }

    private static string StripComments(string text)
        => Regex.Replace(text, @"//[^\n]*|/\*.*?\*/", "", RegexOptions.Singleline);

    [GeneratedRegex(@"extern\s+""C""\s+__global__\s+(?:__launch_bounds__\s*\([^)]*\)\s+)?void\s+(?:__launch_bounds__\s*\([^)]*\)\s+)?(?<name>[A-Za-z_]\w*)\s*\((?<params>[^)]*)\)")]
    private static partial Regex KernelDeclaration();

    [GeneratedRegex(@"([A-Za-z_]\w*)$")]
    private static partial Regex TrailingIdentifier();
}
