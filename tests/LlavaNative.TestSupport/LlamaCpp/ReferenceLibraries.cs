using System.Runtime.InteropServices;

namespace LlavaNative.TestSupport.LlamaCpp;

/// <summary>
/// Loads the reference llama.cpp / ggml shared libraries from <see cref="ReferencePaths.LibraryDirectory"/>
/// (they are not on the default search path) and resolves their exports. Each library is loaded once per
/// process, by full path; their own dependencies (libggml-base.so, libggml.v0.5.0.so) resolve through the
/// libraries' RUNPATH <c>$ORIGIN</c>, so every user shares one copy of ggml's global state.
/// </summary>
public static class ReferenceLibraries
{
    public const string GgmlBaseFile = "libggml-base.so";
    public const string GgmlFile = "libggml.v0.5.0.so";
    public const string LlamaFile = "libllama.v0.5.0.so";

    private static readonly object Gate = new();
    private static readonly Dictionary<string, nint> Handles = new();

    /// <summary>Handle of libggml-base.so (quantize/dequantize rows, fp16 tables, gguf_* reader/writer).</summary>
    public static nint GgmlBase => Load(GgmlBaseFile);

    /// <summary>Handle of libggml.v0.5.0.so (backend registry: ggml_backend_load_all_from_path …).</summary>
    public static nint Ggml => Load(GgmlFile);

    /// <summary>Handle of libllama.v0.5.0.so.</summary>
    public static nint Llama => Load(LlamaFile);

    /// <summary>Loads one of the reference libraries (once) and returns its handle.</summary>
    public static nint Load(string fileName)
    {
        lock (Gate)
        {
            if (Handles.TryGetValue(fileName, out nint handle))
                return handle;
            string path = Path.Combine(ReferencePaths.LibraryDirectory, fileName);
            if (!File.Exists(path))
                throw new InvalidOperationException($"reference library {path} is missing; run tools/install-reference.sh");
            try
            {
                handle = NativeLibrary.Load(path);
            }
            catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
            {
                throw new InvalidOperationException($"cannot load reference library {path}: {e.Message}", e);
            }
            Handles[fileName] = handle;
            return handle;
        }
    }

    /// <summary>Address of an exported function; a missing export is an error naming library and symbol.</summary>
    public static nint Export(nint library, string symbol)
    {
        if (NativeLibrary.TryGetExport(library, symbol, out nint address))
            return address;
        string name;
        lock (Gate)
            name = Handles.FirstOrDefault(kv => kv.Value == library).Key ?? $"library 0x{library:x}";
        throw new EntryPointNotFoundException($"{name} does not export '{symbol}': the installed reference does not match the declared API");
    }
}
