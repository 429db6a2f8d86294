using Xunit;
using System.Text;
using LlavaNative.TestSupport;
using LlavaNative.TestSupport.LlamaCpp;

namespace LlavaNative.Reference.Tests.LlamaCpp;

/// <summary>The binding itself: vocabulary-only loads, tokenize and detokenize through llama.cpp.</summary>
public class LlamaCppTokenizerBindingTests
{
    [Fact]
    public void Initialisation_LoadsACpuBackendVariantFromTheReferenceFolder()
    {
        string backend = LlamaCppModel.CpuBackend;
        Assert.StartsWith(Path.Combine(ReferencePaths.LibraryDirectory, "libggml-cpu-"), backend);
    }

    [Fact]
    public void SpmVocabulary_TokenizesHelloWorld_AndPiecesRoundTrip()
    {
        using LlamaCppModel vocab = LlamaCppModel.LoadVocabOnly(ReferencePaths.Vocabulary("llama-spm"));
        Assert.Equal(32000, vocab.VocabSize);
        Assert.Equal(1, vocab.VocabType); // SPM
        Assert.Equal(1, vocab.BosId);
        Assert.Equal(2, vocab.EosId);

        int[] ids = vocab.Tokenize("Hello world", addSpecial: true, parseSpecial: false);
        // LLaMA's SentencePiece vocabulary: BOS, "▁Hello", "▁world" (ids published with the LLaMA tokenizer).
        Assert.Equal([1, 15043, 3186], ids);

        // Pieces render the leading space; the concatenation is the text with SPM's space prefix.
        string text = string.Concat(ids.Skip(1).Select(id => Encoding.UTF8.GetString(vocab.TokenPiece(id, special: false))));
        Assert.Equal(" Hello world", text);
        Assert.Empty(vocab.TokenPiece(1, special: false));          // BOS is a control token: nothing unless special
        Assert.Equal("<s>", Encoding.UTF8.GetString(vocab.TokenPiece(1, special: true)));
        Assert.Equal(ids.Skip(1), vocab.Tokenize(text.TrimStart(), addSpecial: false, parseSpecial: false));
    }

    [Fact]
    public void Qwen2Vocabulary_ParsesSpecialTokensOnlyWhenAsked()
    {
        using LlamaCppModel vocab = LlamaCppModel.LoadVocabOnly(ReferencePaths.Vocabulary("qwen2"));
        Assert.Equal(2, vocab.VocabType); // BPE
        Assert.True(vocab.VocabSize > 151000);
        int[] special = vocab.Tokenize("<|im_end|>", addSpecial: false, parseSpecial: true);
        Assert.Single(special);
        Assert.Equal("<|im_end|>", Encoding.UTF8.GetString(vocab.TokenPiece(special[0], special: true)));
        int[] plain = vocab.Tokenize("<|im_end|>", addSpecial: false, parseSpecial: false);
        Assert.True(plain.Length > 1);
        Assert.Equal("<|im_end|>", string.Concat(plain.Select(id => Encoding.UTF8.GetString(vocab.TokenPiece(id, special: false)))));
    }
}
