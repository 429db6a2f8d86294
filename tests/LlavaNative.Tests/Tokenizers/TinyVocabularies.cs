using LlavaNative.Model.Tokenizers;

namespace LlavaNative.Tests.Tokenizers;

/// <summary>Handmade vocabularies small enough to derive expected token ids by hand.</summary>
internal static class TinyVocabularies
{
    public static Tokenizer BytePair(string preTokenizer, string[] tokens, string[] merges, int[]? types = null,
        int? bosId = null, int? eosId = null, bool? addBos = null) =>
        Tokenizer.FromVocabulary(new VocabularyData
        {
            Model = "gpt2",
            PreTokenizer = preTokenizer,
            Tokens = tokens,
            TokenTypes = types ?? tokens.Select(_ => 1).ToArray(),
            Merges = merges,
            BosId = bosId,
            EosId = eosId,
            AddBos = addBos,
        });

    /// <summary>
    /// A SentencePiece vocabulary: 0 &lt;unk&gt;, 1 &lt;s&gt;, 2 &lt;/s&gt;, 3..258 the byte tokens &lt;0x00&gt;..&lt;0xFF&gt;, then
    /// <paramref name="pieces"/> from id 259 on.
    /// </summary>
    public static Tokenizer SentencePiece((string Text, float Score)[] pieces, bool? addSpacePrefix = null)
    {
        var tokens = new List<string> { "<unk>", "<s>", "</s>" };
        var scores = new List<float> { 0, 0, 0 };
        var types = new List<int> { 2, 3, 3 };
        for (int b = 0; b < 256; b++)
        {
            tokens.Add($"<0x{b:X2}>");
            scores.Add(0);
            types.Add(6);
        }
        foreach (var (text, score) in pieces)
        {
            tokens.Add(text);
            scores.Add(score);
            types.Add(1);
        }
        return Tokenizer.FromVocabulary(new VocabularyData
        {
            Model = "llama",
            Tokens = tokens.ToArray(),
            Scores = scores.ToArray(),
            TokenTypes = types.ToArray(),
            AddSpacePrefix = addSpacePrefix,
        });
    }

    /// <summary>Id of byte token &lt;0xNN&gt; in <see cref="SentencePiece"/> vocabularies.</summary>
    public static int ByteToken(int b) => 3 + b;
}
