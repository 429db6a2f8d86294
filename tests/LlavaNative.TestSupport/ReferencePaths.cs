namespace LlavaNative.TestSupport;

/// <summary>
/// Where tools/install-reference.sh put the independent references (llama.cpp binaries, its sources and
/// vocabularies). Missing references are an error, not a skip: a comparison that did not run must not pass.
/// </summary>
public static class ReferencePaths
{
    /// <summary>Root folder: $LLAVANATIVE_REFERENCE_DIR or ~/.cache/llavanative/reference.</summary>
    public static string Root
    {
        get
        {
            string? env = Environment.GetEnvironmentVariable("LLAVANATIVE_REFERENCE_DIR");
            return string.IsNullOrEmpty(env)
                ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "llavanative", "reference")
                : env;
        }
    }

    /// <summary>Folder with libllama.v0.5.0.so and libggml*.so.</summary>
    public static string LibraryDirectory => Require(Path.Combine(Root, "lib"));

    /// <summary>llama.cpp source tree of the installed binary.</summary>
    public static string LlamaCppSource => Require(Path.Combine(Root, "llama.cpp"));

    /// <summary>A vocabulary-only GGUF shipped with llama.cpp, e.g. "llama-spm", "qwen2", "llama-bpe", "gpt-2".</summary>
    public static string Vocabulary(string name) => Require(Path.Combine(LlamaCppSource, "models", $"ggml-vocab-{name}.gguf"));

    private static string Require(string path)
    {
        if (!File.Exists(path) && !Directory.Exists(path))
            throw new InvalidOperationException($"reference not installed: {path} is missing; run tools/install-reference.sh");
        return path;
    }
}
