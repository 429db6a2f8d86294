using LlavaNative.Model.Formats.Gguf;
using LlavaNative.Model.Tokenizers;
using LlavaNative.TestSupport;
using LlavaNative.TestSupport.LlamaCpp;

namespace LlavaNative.Reference.Tests.Tokenizers;

/// <summary>
/// One llama.cpp vocabulary file loaded twice: by our GGUF reader into a <see cref="Tokenizer"/>, and by
/// llama.cpp itself (vocabulary only). Loaded once per test run and shared: a vocabulary of 150k tokens takes
/// about a second to load on each side.
/// </summary>
public sealed class ReferenceVocabulary
{
    private ReferenceVocabulary(string name)
    {
        Name = name;
        Path = ReferencePaths.Vocabulary(name);
        using (GgufFile file = GgufFile.Open(Path))
            Ours = Tokenizer.FromVocabulary(GgufVocabulary.Load(file));
        LlamaCpp = LlamaCppModel.LoadVocabOnly(Path);
    }

    public string Name { get; }
    public string Path { get; }
    public Tokenizer Ours { get; }
    public LlamaCppModel LlamaCpp { get; }

    private static readonly Dictionary<string, Lazy<ReferenceVocabulary>> s_cache = new();

    public static ReferenceVocabulary Get(string name)
    {
        Lazy<ReferenceVocabulary> lazy;
        lock (s_cache)
        {
            if (!s_cache.TryGetValue(name, out lazy!))
                s_cache[name] = lazy = new Lazy<ReferenceVocabulary>(() => new ReferenceVocabulary(name));
        }
        return lazy.Value;
    }
}
