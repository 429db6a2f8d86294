using System.Text;
using LlavaNative.Model.Tokenizers;
using LlavaNative.Model.Tokenizers.HuggingFace;
using LlavaNative.TestSupport.HuggingFace;
using Xunit;

namespace LlavaNative.Reference.Tests.Tokenizers.HuggingFace;

/// <summary>
/// Our tokenizer.json reader against Hugging Face tokenizers (the Rust library, via npm `tokenizers`) on
/// tokenizer.json files built from llama.cpp's real vocabularies in the layouts of Qwen2, Llama 3 and Llama 2
/// (legacy and Metaspace), plus added-token rules: ids with and without special tokens, special tokens read as
/// text, and the decoded text of the reference's ids with and without skipping special tokens.
/// </summary>
public class HuggingFaceTokenizerAgreementTests(Xunit.Abstractions.ITestOutputHelper output)
{
    public static TheoryData<TokenizerJsonKind> Kinds =>
    [
        TokenizerJsonKind.Qwen2, TokenizerJsonKind.Llama3, TokenizerJsonKind.LlamaSentencePiece,
        TokenizerJsonKind.LlamaMetaspace, TokenizerJsonKind.Qwen2AddedTokenRules,
    ];

    /// <summary>The shared corpus plus texts aimed at tokenizer.json features (NFC, surrogate pairs, added-token rules).</summary>
    public static readonly string[] Corpus =
    [
        .. TokenizerCorpus.Tricky,
        "e\u0301 E\u0301 a\u0308 n\u0303 \u1100\u1161\u11A8 \u212B \u2126 \uFB01 \u0041\u030A\u0301",
        "𝐀𝐁𝐂 𝑥𝑦 𝟏𝟐𝟑 🏳️‍🌈 🧑🏾‍🚀 👩‍❤️‍💋‍👨 🫠🫡 😀😀😀 a😀b 1😀2 '😀 😀'",
        "\U00020000\U0002A700\U00010400\U0001D7CE \U0001F600x \U00010140\U00010141",
        "it'ſ it'K it'S IT'LL it's",
        "<image>\nWhat is in the image? <image> <image>text<image>",
        "a <video> b  <video>  c<video>d",
        "x [SEP]   y [SEP]z",
        "  <mask> a   <mask>b<mask>",
        "word words sword word_ word. (word) wordword 1word word1",
        "café cafe\u0301 CAFÉ café's",
        "<|im_start|>user\nhi<|im_end|> <|im_start|>username",
        " ▁ ▁▁ ▁x x▁ ▁▁▁a",
        "<0x41><0x0A> <unk> <pad> <s><s></s>",
        "\u00A0\u2002\u3000 \u0085 \u200B\u200D\uFEFF",
    ];

    /// <summary>
    /// One fixture with both sides loaded and every reference run done in one node process: the corpus and 300
    /// random texts through the Rust library (and its decode of its own ids, of every special and byte token, of
    /// ids 0..599), the corpus through the special-as-text file, and through the JavaScript implementation.
    /// </summary>
    public sealed class Run
    {
        private static readonly Dictionary<TokenizerJsonKind, Lazy<Run>> s_runs = new();

        public static Run Get(TokenizerJsonKind kind)
        {
            Lazy<Run> lazy;
            lock (s_runs)
            {
                if (!s_runs.TryGetValue(kind, out lazy!))
                    s_runs[kind] = lazy = new Lazy<Run>(() => new Run(kind));
            }
            return lazy.Value;
        }

        private Run(TokenizerJsonKind kind)
        {
            Folder = TokenizerJsonFixtures.Folder(kind);
            Vocabulary = HuggingFaceTokenizerFiles.Load(Folder);
            Ours = Tokenizer.FromVocabulary(Vocabulary);
            Texts = [.. Corpus, .. TokenizerCorpus.Random(seed: 4321, count: 300)];
            var engine = Vocabulary.HuggingFace!;
            DecodeLists =
            [
                Enumerable.Range(0, engine.VocabSize).Where(id => engine.IsSpecial(id) || engine.IsByteToken(id)).ToArray(),
                Enumerable.Range(0, Math.Min(engine.VocabSize, 600)).ToArray(),
            ];
            var results = HuggingFaceTokenizersReference.Run(
                new(HuggingFaceEngine.Rust, Folder, Texts, DecodeLists, DecodeOwn: true),
                new(HuggingFaceEngine.Rust, TokenizerJsonFixtures.Folder(kind, specialTokensAsText: true), Corpus, Tokens: true),
                new(HuggingFaceEngine.JavaScript, Folder, Texts, DecodeOwn: true));
            (Rust, RustSpecialAsText, JavaScript) = (results[0], results[1], results[2]);
        }

        public string Folder { get; }
        public VocabularyData Vocabulary { get; }
        public Tokenizer Ours { get; }
        public string[] Texts { get; }
        public int[][] DecodeLists { get; }
        public HuggingFaceTokenizersReference.Result Rust { get; }
        public HuggingFaceTokenizersReference.Result RustSpecialAsText { get; }
        public HuggingFaceTokenizersReference.Result JavaScript { get; }
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Encode_MatchesHuggingFaceTokenizers(TokenizerJsonKind kind)
    {
        var run = Run.Get(kind);
        var failures = new List<string>();
        for (int i = 0; i < run.Texts.Length; i++)
        {
            Compare(failures, run.Texts[i], "add_special_tokens", run.Rust.Encodings[i].WithSpecial, run.Ours.Encode(run.Texts[i], addSpecial: true, parseSpecial: true));
            Compare(failures, run.Texts[i], "plain", run.Rust.Encodings[i].Plain, run.Ours.Encode(run.Texts[i], addSpecial: false, parseSpecial: true));
        }
        AssertNoFailures(kind, failures, run.Texts.Length * 2);
    }

    /// <summary>Decode of the reference's ids (with and without skip_special_tokens), and of special, byte and the first 600 ids.</summary>
    [Theory]
    [MemberData(nameof(Kinds))]
    public void Decode_MatchesHuggingFaceTokenizers(TokenizerJsonKind kind)
    {
        var run = Run.Get(kind);
        var engine = run.Vocabulary.HuggingFace!;
        var failures = new List<string>();
        for (int i = 0; i < run.Texts.Length; i++)
        {
            int[] ids = run.Rust.Encodings[i].WithSpecial;
            CompareText(failures, run.Texts[i], "decode", run.Rust.DecodedOwn[i].Keep, run.Ours.Decode(ids));
            CompareText(failures, run.Texts[i], "decode skip_special_tokens", run.Rust.DecodedOwn[i].Skip, engine.Decode(ids, skipSpecialTokens: true));
        }
        for (int i = 0; i < run.DecodeLists.Length; i++)
        {
            CompareText(failures, $"id list {i}", "decode", run.Rust.Decoded[i].Keep, engine.Decode(run.DecodeLists[i], skipSpecialTokens: false));
            CompareText(failures, $"id list {i}", "decode skip_special_tokens", run.Rust.Decoded[i].Skip, engine.Decode(run.DecodeLists[i], skipSpecialTokens: true));
        }
        AssertNoFailures(kind, failures, (run.Texts.Length + run.DecodeLists.Length) * 2);
    }

    /// <summary>
    /// parseSpecial false reads special added tokens as text; the reference does that (encode_special_tokens) on the
    /// same tokenizer.json without its special added tokens, where non-special added tokens can get other ids, so
    /// the comparison is by token string.
    /// </summary>
    [Theory]
    [MemberData(nameof(Kinds))]
    public void Encode_WithSpecialTokensAsText_MatchesHuggingFaceTokenizers(TokenizerJsonKind kind)
    {
        var run = Run.Get(kind);
        var failures = new List<string>();
        for (int i = 0; i < Corpus.Length; i++)
        {
            var expected = run.RustSpecialAsText.Encodings[i];
            CompareTokens(failures, Corpus[i], "add_special_tokens, special as text", expected, withSpecial: true, run.Ours.Encode(Corpus[i], addSpecial: true, parseSpecial: false), run.Ours);
            CompareTokens(failures, Corpus[i], "special as text", expected, withSpecial: false, run.Ours.Encode(Corpus[i], addSpecial: false, parseSpecial: false), run.Ours);
        }
        AssertNoFailures(kind, failures, Corpus.Length * 2);
    }

    /// <summary>
    /// The pure JavaScript implementation as a second, independent reference: wherever it agrees with the Rust
    /// library we agree with both; the texts where it does not are listed (they are the JavaScript port's deviations,
    /// on which we follow the Rust library, the one transformers and Python use).
    /// </summary>
    [Theory]
    [MemberData(nameof(Kinds))]
    public void Encode_AgreesWithJavaScriptImplementation_WhereItAgreesWithRust(TokenizerJsonKind kind)
    {
        var run = Run.Get(kind);
        var failures = new List<string>();
        int jsDiffers = 0;
        for (int i = 0; i < run.Texts.Length; i++)
        {
            var js = run.JavaScript.Encodings[i];
            var rust = run.Rust.Encodings[i];
            if (!js.WithSpecial.AsSpan().SequenceEqual(rust.WithSpecial) || !js.Plain.AsSpan().SequenceEqual(rust.Plain))
            {
                jsDiffers++;
                continue;
            }
            Compare(failures, run.Texts[i], "add_special_tokens (JavaScript)", js.WithSpecial, run.Ours.Encode(run.Texts[i], addSpecial: true, parseSpecial: true));
            Compare(failures, run.Texts[i], "plain (JavaScript)", js.Plain, run.Ours.Encode(run.Texts[i], addSpecial: false, parseSpecial: true));
        }
        AssertNoFailures(kind, failures, (run.Texts.Length - jsDiffers) * 2);
        output.WriteLine($"{kind}: @huggingface/tokenizers differs from the Rust library on {jsDiffers} of {run.Texts.Length} texts; we agree with it on the other {run.Texts.Length - jsDiffers}");
        // the JavaScript port must be a usable second reference, not one that disagrees everywhere
        Assert.True(jsDiffers <= run.Texts.Length / 10, $"{kind}: the JavaScript implementation differs from the Rust library on {jsDiffers} of {run.Texts.Length} texts");
    }

    /// <summary>
    /// The tokenizer.json files are faithful: on the vocabulary llama.cpp also reads (the GGUF they were built from),
    /// Hugging Face tokenizers' ids equal llama.cpp's, given the known legitimate differences: Qwen2's tokenizer.json
    /// normalizes to NFC and llama.cpp does not, so HF(text) = llama.cpp(NFC(text)); llama.cpp makes every "&lt;/s&gt;"
    /// an end-of-generation control token (Qwen2's vocabulary has "&lt;/s&gt;" as an ordinary token); and llama.cpp's
    /// character tables are Unicode 15.1, so texts with characters new in Unicode 16 are left out. Our ids equal the
    /// Hugging Face ones (checked above), so this also ties our tokenizer.json path to our GGUF path.
    /// </summary>
    [Theory]
    [InlineData(TokenizerJsonKind.Qwen2, "qwen2")]
    [InlineData(TokenizerJsonKind.Llama3, "llama-bpe")]
    public void HuggingFaceIds_EqualLlamaCppIds_OnNfcText(TokenizerJsonKind kind, string vocabulary)
    {
        var run = Run.Get(kind);
        var llamaCpp = ReferenceVocabulary.Get(vocabulary).LlamaCpp;
        var failures = new List<string>();
        int compared = 0;
        for (int i = 0; i < run.Texts.Length; i++)
        {
            string text = TextSplitting.ReplaceLoneSurrogates(run.Texts[i]);
            if (HasUnicode16Characters(text) || (kind == TokenizerJsonKind.Qwen2 && text.Contains("</s>", StringComparison.Ordinal)))
                continue;
            if (kind == TokenizerJsonKind.Qwen2)
                text = UnicodeNormalization.Normalize(text, UnicodeForm.Nfc);
            compared++;
            var expected = llamaCpp.Tokenize(text, addSpecial: true, parseSpecial: true);
            if (!expected.AsSpan().SequenceEqual(run.Rust.Encodings[i].WithSpecial))
                failures.Add($"{Show(run.Texts[i])}\n    llama.cpp: [{string.Join(", ", expected)}]\n    HF:        [{string.Join(", ", run.Rust.Encodings[i].WithSpecial)}]");
        }
        Assert.True(compared > run.Texts.Length / 2, $"only {compared} of {run.Texts.Length} texts compared");
        Assert.True(failures.Count == 0, $"{kind}: {failures.Count} of {compared} texts tokenize differently in llama.cpp:\n" + string.Join("\n", failures.Take(12)));
    }

    /// <summary>Characters whose category .NET (Unicode 16) knows but llama.cpp's tables (Unicode 15.1) do not.</summary>
    internal static bool HasUnicode16Characters(string text) =>
        text.EnumerateRunes().Any(r => (LlavaNative.Model.Tokenizers.UnicodeProperties.Of(r.Value) & LlavaNative.Model.Tokenizers.CodepointFlags.Unassigned) != 0
            && System.Globalization.CharUnicodeInfo.GetUnicodeCategory(r.Value) != System.Globalization.UnicodeCategory.OtherNotAssigned);

    /// <summary>Token strings; where the reference has none for an id (a special token it no longer lists) the ids are compared.</summary>
    private static void CompareTokens(List<string> failures, string text, string mode, HuggingFaceTokenizersReference.Encoded expected, bool withSpecial, int[] actual, Tokenizer ours)
    {
        int[] expectedIds = withSpecial ? expected.WithSpecial : expected.Plain;
        string?[] expectedTokens = (withSpecial ? expected.WithSpecialTokens : expected.PlainTokens)!;
        string[] want = expectedTokens.Select((t, k) => t ?? $"#{expectedIds[k]}").ToArray();
        string[] got = actual.Select((id, k) => k < want.Length && want[k].StartsWith('#') && expectedTokens[k] is null ? $"#{id}" : ours.TokenText(id)).ToArray();
        if (!want.SequenceEqual(got))
            failures.Add($"{Show(text)} [{mode}]\n    reference: [{string.Join(", ", want.Select(Show))}]\n    ours:      [{string.Join(", ", got.Select(Show))}]");
    }

    private static void Compare(List<string> failures, string text, string mode, int[] expected, int[] actual)
    {
        if (!expected.AsSpan().SequenceEqual(actual))
            failures.Add($"{Show(text)} [{mode}]\n    reference: [{string.Join(", ", expected)}]\n    ours:      [{string.Join(", ", actual)}]");
    }

    private static void CompareText(List<string> failures, string text, string mode, string expected, string actual)
    {
        if (expected != actual)
            failures.Add($"{Show(text)} [{mode}]\n    reference: {Show(expected)}\n    ours:      {Show(actual)}");
    }

    internal static string Show(string text)
    {
        var sb = new StringBuilder("\"");
        foreach (char c in text.Length > 120 ? text[..120] : text)
            sb.Append(c < 0x20 || c is '\u007F' or '\u0085' ? $"\\u{(int)c:X4}" : c.ToString());
        return sb.Append(text.Length > 120 ? "…\"" : "\"").ToString();
    }

    internal static void AssertNoFailures(object what, List<string> failures, int total)
    {
        Assert.True(failures.Count == 0,
            $"{what}: {failures.Count} of {total} comparisons differ from Hugging Face tokenizers:\n" + string.Join("\n", failures.Take(12)));
    }
}
