using System.Text;
using LlavaNative.Model.Tokenizers;
using Xunit;

namespace LlavaNative.Tests.Tokenizers;

/// <summary>
/// Tokenizers on handmade vocabularies, with expected ids derived by hand from the algorithms' definitions
/// (the reference tests compare real vocabularies with llama.cpp).
/// </summary>
public class TinyVocabularyTests
{
    // SentencePiece: ids 259.. in this order
    private const int Space = 259, H = 260, E = 261, L = 262, O = 263, LL = 264, HE = 265, HELL = 266, SpaceHE = 267, A = 268, AA = 269, I = 270;

    private static Tokenizer Spm(bool? addSpacePrefix = null) => TinyVocabularies.SentencePiece(
    [
        ("▁", -10), ("h", -10), ("e", -10), ("l", -10), ("o", -10),
        ("ll", -1), ("he", -2), ("hell", -3), ("▁he", -4), ("a", -10), ("aa", -1), ("i", -10),
    ], addSpacePrefix);

    [Fact]
    public void SentencePiece_MergesTheHighestScoringPairFirst()
    {
        // "▁hello": "ll" (-1) merges, then "he" (-2), then "he"+"ll" = "hell" (-3); the queued "▁he" (-4) is
        // stale by then because "he" grew into "hell"; "▁hell" and "hello" are not tokens.
        Assert.Equal([1, Space, HELL, O], Spm().Encode("hello"));
    }

    [Fact]
    public void SentencePiece_EqualScores_MergeLeftmostFirst()
    {
        // "▁aaa": both "aa" pairs score -1; the left one wins, leaving "aa" "a"
        Assert.Equal([Space, AA, A], Spm().Encode("aaa", addSpecial: false));
    }

    [Fact]
    public void SentencePiece_UnknownCharacters_FallBackToByteTokens()
    {
        // 'é' is C3 A9 in UTF-8
        Assert.Equal([Space, TinyVocabularies.ByteToken(0xC3), TinyVocabularies.ByteToken(0xA9)], Spm().Encode("é", addSpecial: false));
    }

    [Fact]
    public void SentencePiece_SpacesBecomeTheSpaceToken_AndTheTextGetsASpacePrefix()
    {
        Assert.Equal([Space, A, Space, A], Spm().Encode("a a", addSpecial: false));
        Assert.Equal([A, Space, A], Spm(addSpacePrefix: false).Encode("a a", addSpecial: false));
        Assert.Equal([HELL, O], Spm(addSpacePrefix: false).Encode("hello", addSpecial: false));
    }

    [Fact]
    public void SentencePiece_SpecialTokensInText_AreRecognisedOnlyWhenParsed_AndTextAfterThemGetsAPrefix()
    {
        Assert.Equal([1, Space, H, I, 2], Spm().Encode("<s>hi</s>", addSpecial: false, parseSpecial: true));
        // not parsed: "▁<s>" with '<', 's', '>' unknown, so byte tokens
        Assert.Equal([Space, TinyVocabularies.ByteToken('<'), TinyVocabularies.ByteToken('s'), TinyVocabularies.ByteToken('>')],
            Spm().Encode("<s>", addSpecial: false, parseSpecial: false));
    }

    [Fact]
    public void SentencePiece_EmptyText_IsJustBos()
    {
        Assert.Equal([1], Spm().Encode(""));
        Assert.Empty(Spm().Encode("", addSpecial: false));
        Assert.Equal(1, Spm().BosId);
        Assert.Equal(2, Spm().EosId);
        Assert.True(Spm().AddBos);
    }

    [Fact]
    public void SentencePiece_TokenBytes()
    {
        Tokenizer spm = Spm();
        Assert.Equal(" "u8.ToArray(), spm.TokenBytes(Space).ToArray());
        Assert.Equal(" he"u8.ToArray(), spm.TokenBytes(SpaceHE).ToArray());
        Assert.Equal(new byte[] { 0x0A }, spm.TokenBytes(TinyVocabularies.ByteToken(0x0A)).ToArray());
        Assert.Equal("<s>"u8.ToArray(), spm.TokenBytes(1).ToArray());
        Assert.Equal("<unk>"u8.ToArray(), spm.TokenBytes(0).ToArray());
        Assert.Equal(" hello", spm.Decode(spm.Encode("hello", addSpecial: false)));
    }

    // byte-level BPE: "Ġ" is the space byte in GPT-2's alphabet
    private static readonly string[] s_bpeTokens = ["a", "b", "c", "Ġ", "ab", "abc", "Ġab", "<|endoftext|>", "bc"];
    private static readonly int[] s_bpeTypes = [1, 1, 1, 1, 1, 1, 1, 3, 1];

    [Fact]
    public void BytePair_MergesByRank_WithinPreTokenizedWords()
    {
        var bpe = TinyVocabularies.BytePair("gpt-2", s_bpeTokens, ["a b", "ab c", "Ġ ab", "b c"], s_bpeTypes);
        // words "abc" and " ab": a+b (rank 0) then ab+c (rank 1); Ġ a b → Ġ ab (rank 0) → Ġab (rank 2)
        Assert.Equal([5, 6], bpe.Encode("abc ab"));
    }

    [Fact]
    public void BytePair_LowerRankWins()
    {
        var bpe = TinyVocabularies.BytePair("gpt-2", s_bpeTokens, ["b c", "a b", "ab c"], s_bpeTypes);
        // b+c (rank 0) first; then "a"+"bc" has no merge
        Assert.Equal([0, 8], bpe.Encode("abc"));
    }

    [Fact]
    public void BytePair_SpecialTokensInText()
    {
        var bpe = TinyVocabularies.BytePair("gpt-2", s_bpeTokens, ["a b"], s_bpeTypes);
        Assert.Equal([0, 7, 1], bpe.Encode("a<|endoftext|>b", parseSpecial: true));
        Assert.True(bpe.IsControl(7));
        Assert.True(bpe.IsEndOfGeneration(7)); // found by its text, as llama.cpp does
        Assert.False(bpe.IsEndOfGeneration(0));
        Assert.Equal(-1, bpe.EosId);           // BPE default 11 is outside this vocabulary
        Assert.False(bpe.AddBos);
    }

    [Fact]
    public void BytePair_CharactersWithoutAToken_AreDropped_AsLlamaCppDoes()
    {
        var bpe = TinyVocabularies.BytePair("gpt-2", s_bpeTokens, ["a b"], s_bpeTypes);
        Assert.Equal([0, 1], bpe.Encode("a!b"));
    }

    [Fact]
    public void BytePair_Llama3_TakesWholeWordTokensWithoutMerging_AndAddsBosByDefault()
    {
        string[] tokens = ["a", "b", "c", "abc", "<|begin_of_text|>"];
        int[] types = [1, 1, 1, 1, 3];
        var llama3 = TinyVocabularies.BytePair("llama-bpe", tokens, [], types, bosId: 4);
        Assert.Equal([4, 3], llama3.Encode("abc"));
        var gpt2 = TinyVocabularies.BytePair("gpt-2", tokens, [], types, bosId: 4);
        Assert.Equal([0, 1, 2], gpt2.Encode("abc"));
        var noBos = TinyVocabularies.BytePair("llama-bpe", tokens, [], types, bosId: 4, addBos: false);
        Assert.Equal([3], noBos.Encode("abc"));
    }

    [Fact]
    public void BytePair_TokenBytes_MapTheByteAlphabetBack()
    {
        var bpe = TinyVocabularies.BytePair("gpt-2", ["Ġab", "Ċ", "âĤ¬", "<|endoftext|>"], [], [1, 1, 1, 3]);
        Assert.Equal(" ab"u8.ToArray(), bpe.TokenBytes(0).ToArray());
        Assert.Equal("\n"u8.ToArray(), bpe.TokenBytes(1).ToArray());
        Assert.Equal("€"u8.ToArray(), bpe.TokenBytes(2).ToArray());
        Assert.Equal("<|endoftext|>"u8.ToArray(), bpe.TokenBytes(3).ToArray());
    }

    [Fact]
    public void OutOfRangeIds_AreRejectedWithTheIdAndVocabularySize()
    {
        Tokenizer spm = Spm();
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => spm.TokenBytes(spm.VocabSize));
        Assert.Contains(spm.VocabSize.ToString(), e.Message);
        Assert.Contains("outside the vocabulary", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => spm.TokenBytes(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => spm.IsEndOfGeneration(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => spm.IsControl(spm.VocabSize));
    }

    [Fact]
    public void UnknownPreTokenizer_NamesItAndListsTheSupportedOnes()
    {
        var e = Assert.Throws<NotSupportedException>(() => TinyVocabularies.BytePair("tekken", s_bpeTokens, [], s_bpeTypes));
        Assert.Contains("'tekken'", e.Message);
        Assert.Contains("qwen2", e.Message);
        Assert.Contains("llama-bpe", e.Message);
        Assert.Contains("gpt-2", e.Message);
    }

    [Fact]
    public void UnknownModel_IsRejected()
    {
        var e = Assert.Throws<NotSupportedException>(() => Tokenizer.FromVocabulary(new VocabularyData { Model = "bert", Tokens = ["a"] }));
        Assert.Contains("'bert'", e.Message);
    }

    [Fact]
    public void Encode_IntoAList_AllocatesNothingAfterWarmUp()
    {
        var bpe = TinyVocabularies.BytePair("qwen2", s_bpeTokens, ["a b", "ab c", "Ġ ab", "b c"], s_bpeTypes);
        Tokenizer spm = Spm();
        string text = "abc ab<|endoftext|> aab 123 bc!\n\n  c " + new string('a', 300);
        string spmText = "hello aaa <s> é " + text;
        var output = new List<int>(4096);
        for (int i = 0; i < 3; i++)
        {
            bpe.Encode(text, output);
            spm.Encode(spmText, output);
            output.Clear();
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 20; i++)
        {
            bpe.Encode(text, output);
            spm.Encode(spmText, output);
            output.Clear();
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
    }
}

/// <summary>Pre-tokenizer word splits, derived by hand from the regexes llama.cpp implements.</summary>
public class PreTokenizerTests
{
    private static string[] Split(string preTokenizer, string text)
    {
        var cps = new List<int>();
        foreach (Rune r in text.EnumerateRunes())
            cps.Add(r.Value);
        var flags = cps.Select(UnicodeProperties.Of).ToArray();
        var segments = new List<int>();
        PreTokenizer.ForName(preTokenizer).Split(cps.ToArray(), flags, segments, new List<int>());
        var words = new List<string>();
        int start = 0;
        foreach (int length in segments)
        {
            words.Add(string.Concat(cps.Skip(start).Take(length).Select(char.ConvertFromUtf32)));
            start += length;
        }
        Assert.Equal(text, string.Concat(words));
        return words.ToArray();
    }

    [Fact]
    public void Gpt2()
    {
        Assert.Equal(["Hello", " world", "'s", " 12345", " ", " x", "\n"], Split("gpt-2", "Hello world's 12345  x\n"));
        Assert.Equal(["I", "'", "M", " FINE"], Split("gpt-2", "I'M FINE"));  // contractions are case-sensitive
        Assert.Equal(["a", "  ", " b", "   "], Split("gpt-2", "a   b   "));  // \s+(?!\S): the last space joins the word
    }

    [Fact]
    public void Llama3()
    {
        Assert.Equal(["Hello", " world", "'s", " ", "123", "45", " ", " x", "\n"], Split("llama-bpe", "Hello world's 12345  x\n"));
        Assert.Equal(["I", "'M", " FINE", "\r\n\r\n", " ", " ok"], Split("llama-bpe", "I'M FINE\r\n\r\n  ok"));
        // one non-letter may lead a letter run; a punctuation run takes the newlines after it
        Assert.Equal(["(hi", "!!\n"], Split("llama-bpe", "(hi!!\n"));
    }

    [Fact]
    public void Qwen2_SplitsDigitsOneByOne()
    {
        Assert.Equal(["Hello", " world", "'s", " ", "1", "2", "3", "4", "5", " ", " x", "\n"], Split("qwen2", "Hello world's 12345  x\n"));
    }

    [Fact]
    public void Default_SplitsPunctuationRuns_ThenNumbers_ThenDigitTriples()
    {
        Assert.Equal(["a", "+", "b", "=", "3", ".", "14", "!!"], Split("default", "a+b=3.14!!"));
        Assert.Equal([" ", "123", "45"], Split("default", " 12345"));
        Assert.Equal(["x", " ", "123"], Split(null!, "x 123"));
    }
}
