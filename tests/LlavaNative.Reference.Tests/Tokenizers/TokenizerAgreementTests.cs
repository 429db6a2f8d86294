using System.Diagnostics;
using System.Text;
using LlavaNative.Model.Tokenizers;
using Xunit;

namespace LlavaNative.Reference.Tests.Tokenizers;

/// <summary>
/// Our tokenizer against llama.cpp (llama_tokenize, llama_token_to_piece, llama_vocab_is_eog/is_control) on
/// the vocabulary files llama.cpp ships. The four vocabularies LLaVA models use come first; the others cover
/// the remaining supported pre-tokenizers (default, starcoder, falcon, qwen35) and two more SentencePiece vocabularies.
/// </summary>
public class TokenizerAgreementTests
{
    public static TheoryData<string> Vocabularies =>
    [
        "llama-spm", "qwen2", "llama-bpe", "gpt-2",
        "mpt", "starcoder", "refact", "command-r", "falcon", "qwen35", "gpt-neox", "aquila", "baichuan", "phi-3",
    ];

    public static TheoryData<string> ByteLevelVocabularies =>
    [
        "qwen2", "llama-bpe", "gpt-2", "mpt", "starcoder", "refact", "command-r", "falcon", "qwen35", "gpt-neox", "aquila",
    ];

    private static readonly (bool AddSpecial, bool ParseSpecial)[] s_flagCombinations =
        [(false, false), (false, true), (true, false), (true, true)];

    [Theory]
    [MemberData(nameof(Vocabularies))]
    public void Encode_MatchesLlamaCpp_OnTrickyCorpus(string vocabulary)
    {
        var v = ReferenceVocabulary.Get(vocabulary);
        var failures = new List<string>();
        foreach (string text in TokenizerCorpus.Tricky)
            foreach (var (addSpecial, parseSpecial) in s_flagCombinations)
                Compare(v, text, addSpecial, parseSpecial, failures);
        AssertNoFailures(vocabulary, failures, TokenizerCorpus.Tricky.Length * s_flagCombinations.Length);
    }

    [Theory]
    [MemberData(nameof(Vocabularies))]
    public void Encode_MatchesLlamaCpp_OnRandomTexts(string vocabulary)
    {
        var v = ReferenceVocabulary.Get(vocabulary);
        var failures = new List<string>();
        int i = 0;
        foreach (string text in TokenizerCorpus.Random(seed: 1234, count: 400))
        {
            var (addSpecial, parseSpecial) = s_flagCombinations[i++ % s_flagCombinations.Length];
            Compare(v, text, addSpecial, parseSpecial, failures);
        }
        AssertNoFailures(vocabulary, failures, i);
    }

    /// <summary>
    /// The test cases llama.cpp ships next to each vocabulary (models/ggml-vocab-*.gguf.inp/.out, ids produced by
    /// the original Hugging Face tokenizer; tokenized with add_special and parse_special off, as
    /// tests/test-tokenizer-0.cpp does). We must match both the file and llama.cpp.
    /// </summary>
    [Theory]
    [InlineData("llama-spm")]
    [InlineData("qwen2")]
    [InlineData("llama-bpe")]
    [InlineData("gpt-2")]
    [InlineData("mpt")]
    [InlineData("starcoder")]
    [InlineData("refact")]
    [InlineData("command-r")]
    [InlineData("falcon")]
    [InlineData("qwen35")]
    [InlineData("phi-3")]
    public void Encode_MatchesShippedTestCases(string vocabulary)
    {
        var v = ReferenceVocabulary.Get(vocabulary);
        var cases = ReadShippedCases(v.Path);
        Assert.True(cases.Count > 30, $"{v.Path}.inp: only {cases.Count} cases read");
        var failures = new List<string>();
        foreach (var (text, expected) in cases)
        {
            int[] ours = v.Ours.Encode(text, addSpecial: false, parseSpecial: false);
            int[] theirs = v.LlamaCpp.Tokenize(text, addSpecial: false, parseSpecial: false);
            if (!ours.SequenceEqual(expected) || !theirs.SequenceEqual(expected))
                failures.Add($"{Show(text)}: file {Ids(expected)}, ours {Ids(ours)}, llama.cpp {Ids(theirs)}");
        }
        AssertNoFailures(vocabulary, failures, cases.Count);
    }

    [Theory]
    [MemberData(nameof(Vocabularies))]
    public void TokenBytes_AndTokenClasses_MatchLlamaCpp_ForEveryId(string vocabulary)
    {
        var v = ReferenceVocabulary.Get(vocabulary);
        Assert.Equal(v.LlamaCpp.VocabSize, v.Ours.VocabSize);
        Assert.Equal(v.LlamaCpp.BosId, v.Ours.BosId);
        Assert.Equal(v.LlamaCpp.EosId, v.Ours.EosId);

        var failures = new List<string>();
        int endOfGeneration = 0, control = 0;
        for (int id = 0; id < v.Ours.VocabSize; id++)
        {
            byte[] theirs = v.LlamaCpp.TokenPiece(id, special: true);
            if (!v.Ours.TokenBytes(id).SequenceEqual(theirs))
                failures.Add($"piece of {id} '{v.Ours.TokenText(id)}': ours {Convert.ToHexString(v.Ours.TokenBytes(id))}, llama.cpp {Convert.ToHexString(theirs)}");
            bool eog = v.LlamaCpp.IsEndOfGeneration(id), isControl = v.LlamaCpp.IsControl(id);
            if (v.Ours.IsEndOfGeneration(id) != eog)
                failures.Add($"end of generation {id} '{v.Ours.TokenText(id)}': ours {!eog}, llama.cpp {eog}");
            if (v.Ours.IsControl(id) != isControl)
                failures.Add($"control {id} '{v.Ours.TokenText(id)}': ours {!isControl}, llama.cpp {isControl}");
            endOfGeneration += eog ? 1 : 0;
            control += isControl ? 1 : 0;
        }
        AssertNoFailures(vocabulary, failures, v.Ours.VocabSize);
        Assert.True(endOfGeneration >= 1, "every vocabulary has at least EOS as end of generation");
    }

    /// <summary>
    /// decode(encode(text)) gives what llama.cpp's pieces of its own ids give, for every corpus text; for
    /// byte-level BPE that is the text itself (lossless) wherever llama.cpp round-trips.
    /// </summary>
    [Theory]
    [MemberData(nameof(Vocabularies))]
    public void Decode_RoundTrips_LikeLlamaCpp(string vocabulary)
    {
        var v = ReferenceVocabulary.Get(vocabulary);
        bool byteLevel = v.LlamaCpp.VocabType == 2;
        var failures = new List<string>();
        var texts = TokenizerCorpus.Tricky.Concat(TokenizerCorpus.Random(seed: 99, count: 100)).ToArray();
        foreach (string text in texts)
        {
            foreach (bool parseSpecial in new[] { false, true })
            {
                int[] theirIds = v.LlamaCpp.Tokenize(text, addSpecial: false, parseSpecial);
                string theirs = Encoding.UTF8.GetString(theirIds.SelectMany(id => v.LlamaCpp.TokenPiece(id, special: true)).ToArray());
                string ours = v.Ours.Decode(v.Ours.Encode(text, addSpecial: false, parseSpecial));
                if (ours != theirs)
                    failures.Add($"{Show(text)}: ours {Show(ours)}, llama.cpp {Show(theirs)}");
                string expected = text.Replace("\uD800", "\uFFFD").Replace("\uDC00", "\uFFFD");
                if (byteLevel && theirs != expected)
                    failures.Add($"{Show(text)}: llama.cpp does not round-trip byte-level BPE ({Show(theirs)})");
            }
        }
        AssertNoFailures(vocabulary, failures, texts.Length * 2);
    }

    /// <summary>
    /// Streaming llama.cpp's own ids through <see cref="TextDecoder"/> one token at a time prints the same text as
    /// decoding all of llama.cpp's pieces at once, although characters are split across tokens.
    /// </summary>
    [Theory]
    [InlineData("qwen2")]
    [InlineData("llama-bpe")]
    [InlineData("llama-spm")]
    [InlineData("gpt-2")]
    public void TextDecoder_StreamingLlamaCppIds_PrintsWhatTheirPiecesSay(string vocabulary)
    {
        var v = ReferenceVocabulary.Get(vocabulary);
        var decoder = new TextDecoder(v.Ours);
        var failures = new List<string>();
        int split = 0;
        foreach (string text in TokenizerCorpus.Tricky.Concat(TokenizerCorpus.Random(seed: 7, count: 100)))
        {
            int[] ids = v.LlamaCpp.Tokenize(text, addSpecial: true, parseSpecial: true);
            string expected = Encoding.UTF8.GetString(ids.SelectMany(id => v.LlamaCpp.TokenPiece(id, special: true)).ToArray());
            var streamed = new StringBuilder();
            foreach (int id in ids)
            {
                streamed.Append(decoder.Append(id));
                split += decoder.PendingByteCount > 0 ? 1 : 0;
            }
            streamed.Append(decoder.Flush());
            if (streamed.ToString() != expected)
                failures.Add($"{Show(text)}: streamed {Show(streamed.ToString())}, llama.cpp pieces {Show(expected)}");
        }
        AssertNoFailures(vocabulary, failures, TokenizerCorpus.Tricky.Length + 100);
        Assert.True(split > 0, "no character was split across tokens; the corpus does not exercise streaming");
    }

    [Theory]
    [InlineData("qwen2")]
    [InlineData("llama-bpe")]
    [InlineData("llama-spm")]
    [InlineData("gpt-2")]
    public void Encode_LongInputs_AgreeAndStayFast(string vocabulary)
    {
        var v = ReferenceVocabulary.Get(vocabulary);
        string[] inputs =
        [
            TokenizerCorpus.LongMixedText(10_000),
            new string('a', 20_000),                                   // one 20k-byte word
            string.Concat(Enumerable.Repeat("🦙", 3_000)),               // 12k bytes of one emoji, no spaces
            string.Concat(Enumerable.Repeat("1234567890", 1_000)),     // a 10k-digit number
            new string(' ', 5_000) + "x" + new string('\n', 5_000),
        ];
        var failures = new List<string>();
        foreach (string text in inputs)
        {
            int[] theirs = v.LlamaCpp.Tokenize(text, addSpecial: true, parseSpecial: true);
            int[] ours = v.Ours.Encode(text, addSpecial: true, parseSpecial: true);
            if (!ours.SequenceEqual(theirs))
                failures.Add($"{Show(text[..Math.Min(40, text.Length)])}… ({text.Length} chars): first difference at token {FirstDifference(ours, theirs)}");
        }
        AssertNoFailures(vocabulary, failures, inputs.Length);

        // 10 kB of mixed text, 20 times: quadratic behaviour on long words or many fragments would show here
        var output = new List<int>();
        var watch = Stopwatch.StartNew();
        for (int i = 0; i < 20; i++)
        {
            output.Clear();
            v.Ours.Encode(inputs[0], output);
        }
        watch.Stop();
        Assert.True(watch.Elapsed.TotalSeconds < 5, $"encoding 20 × 10 kB took {watch.Elapsed.TotalSeconds:F2} s");
    }

    private static void Compare(ReferenceVocabulary v, string text, bool addSpecial, bool parseSpecial, List<string> failures)
    {
        int[] theirs = v.LlamaCpp.Tokenize(text, addSpecial, parseSpecial);
        int[] ours = v.Ours.Encode(text, addSpecial, parseSpecial);
        if (!ours.SequenceEqual(theirs))
            failures.Add($"{Show(text)} (addSpecial {addSpecial}, parseSpecial {parseSpecial}): ours {Ids(ours)}, llama.cpp {Ids(theirs)}");
    }

    private static void AssertNoFailures(string vocabulary, List<string> failures, int total)
    {
        if (failures.Count > 0)
            Assert.Fail($"{vocabulary}: {failures.Count} of {total} differ from llama.cpp:\n" + string.Join("\n", failures.Take(15)));
    }

    /// <summary>tests/test-tokenizer-0.cpp's format: inputs separated by "\n__ggml_vocab_test__\n", one line of ids per input.</summary>
    private static List<(string Text, int[] Ids)> ReadShippedCases(string vocabularyPath)
    {
        string input = File.ReadAllText(vocabularyPath + ".inp", new UTF8Encoding(false, throwOnInvalidBytes: true));
        string[] lines = File.ReadAllLines(vocabularyPath + ".out");
        const string separator = "\n__ggml_vocab_test__\n";
        var texts = new List<string>();
        for (int pos = 0; pos < input.Length;)
        {
            int next = input.IndexOf(separator, pos, StringComparison.Ordinal);
            if (next < 0)
            {
                texts.Add(input[pos..]);
                break;
            }
            texts.Add(input[pos..next]);
            pos = next + separator.Length;
        }
        Assert.Equal(texts.Count, lines.Length);
        return texts.Select((text, i) => (text, lines[i].Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray())).ToList();
    }

    private static int FirstDifference(int[] a, int[] b)
    {
        int n = Math.Min(a.Length, b.Length);
        for (int i = 0; i < n; i++)
            if (a[i] != b[i]) return i;
        return n;
    }

    private static string Ids(int[] ids) => ids.Length <= 40 ? "[" + string.Join(' ', ids) + "]" : $"[{string.Join(' ', ids.Take(40))} … ({ids.Length})]";

    private static string Show(string text)
    {
        var sb = new StringBuilder("\"");
        foreach (char c in text.Length > 80 ? text[..80] : text)
            sb.Append(c switch { '\n' => "\\n", '\r' => "\\r", '\t' => "\\t", < ' ' => $"\\u{(int)c:X4}", _ => c.ToString() });
        return sb.Append(text.Length > 80 ? "…\"" : "\"").ToString();
    }
}
