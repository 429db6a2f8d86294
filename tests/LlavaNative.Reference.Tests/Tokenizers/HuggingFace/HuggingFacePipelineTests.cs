using System.Text;
using LlavaNative.Model.Tokenizers;
using LlavaNative.Model.Tokenizers.HuggingFace;
using LlavaNative.TestSupport.HuggingFace;
using Xunit;
using static LlavaNative.TestSupport.HuggingFace.TokenizerJsonFixtures;

namespace LlavaNative.Reference.Tests.Tokenizers.HuggingFace;

/// <summary>
/// Each tokenizer.json pipeline part on its own, against Hugging Face tokenizers (Rust): small tokenizer.json files
/// (a 3000-merge byte-level BPE from GPT-2's vocabulary, or hand-made BPE vocabularies for the model options) that
/// differ in one normalizer, pre-tokenizer, post-processor, decoder, added-token or model setting. The pre-token
/// boundaries show in the ids because BPE never merges across them.
/// </summary>
public sealed class HuggingFacePipelineTests
{
    public sealed record Pipeline(string Name, string Normalizer = "null", string PreTokenizer = ByteLevelWords, string PostProcessor = "null",
        string Decoder = ByteLevelDecoder, Added[]? AddedTokens = null, BpeVocabulary? Model = null);

    /// <summary>A hand-made BPE model: vocabulary, merges and the model's option members.</summary>
    public sealed record BpeVocabulary(string[] Tokens, (string, string)[] Merges, string Options);

    private const string ByteLevelWords = "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": true}";
    private const string ByteLevelOnly = "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": false, \"use_regex\": false}";
    private const string ByteLevelDecoder = "{\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": true, \"use_regex\": true}";

    private static string Q(string s) => System.Text.Json.JsonSerializer.Serialize(s);

    /// <summary>A pre-tokenizer followed by the byte-level alphabet mapping (no regex), so only its splits count.</summary>
    private static string Then(string preTokenizer) => $"{{\"type\": \"Sequence\", \"pretokenizers\": [{preTokenizer}, {ByteLevelOnly}]}}";

    private static string SplitRegex(string pattern, string behavior, bool invert) =>
        $"{{\"type\": \"Split\", \"pattern\": {{\"Regex\": {Q(pattern)}}}, \"behavior\": \"{behavior}\", \"invert\": {(invert ? "true" : "false")}}}";

    private static string Metaspace(string scheme, bool split) =>
        $"{{\"type\": \"Metaspace\", \"replacement\": \"▁\", \"prepend_scheme\": \"{scheme}\", \"split\": {(split ? "true" : "false")}}}";

    public static readonly Pipeline[] Pipelines = BuildPipelines();

    private static Pipeline[] BuildPipelines()
    {
        var list = new List<Pipeline>();
        foreach (string behavior in new[] { "Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous" })
            foreach (bool invert in new[] { false, true })
                list.Add(new($"Split {behavior}{(invert ? " inverted" : "")}", PreTokenizer: Then(SplitRegex(@"\s+|[\p{P}\p{S}]", behavior, invert))));
        list.AddRange(
        [
            new("Split string", PreTokenizer: Then("{\"type\": \"Split\", \"pattern\": {\"String\": \" \"}, \"behavior\": \"MergedWithNext\", \"invert\": false}")),
            new("Split \\p{^L}", PreTokenizer: Then(SplitRegex(@"\p{^L}+", "Isolated", false))),
            new("Split \\pN \\pL", PreTokenizer: Then(SplitRegex(@"\pN+|\pL+", "Isolated", false))),
            new("Split CJK range or any code point", PreTokenizer: Then(SplitRegex(@"[\x{4E00}-\x{9FFF}]+|.", "Isolated", false))),
            new("Split code point pairs", PreTokenizer: Then(SplitRegex(@".{2}", "Isolated", false))),
            new("Split empty matches", PreTokenizer: Then(SplitRegex(@"x*", "Contiguous", false))),
            new("Split empty matches isolated", PreTokenizer: Then(SplitRegex(@"\d*", "Isolated", false))),
            new("Split case-insensitive", PreTokenizer: Then(SplitRegex(@"(?i:the|ll|'s)", "MergedWithPrevious", false))),
            new("Split word class", PreTokenizer: Then(SplitRegex(@"\w+|\W", "Isolated", false))),
            new("Split letters with marks", PreTokenizer: Then(SplitRegex(@"[\p{L}\p{M}]+|\p{So}+|\p{Lu}", "Isolated", false))),
            new("ByteLevel with prefix space and regex", PreTokenizer: "{\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": true, \"use_regex\": true}"),
            new("Metaspace always split", PreTokenizer: Then(Metaspace("always", true)), Decoder: $"{{\"type\": \"Sequence\", \"decoders\": [{ByteLevelDecoder}, {Metaspace("always", true)}]}}"),
            new("Metaspace first split", PreTokenizer: Then(Metaspace("first", true)), Decoder: $"{{\"type\": \"Sequence\", \"decoders\": [{ByteLevelDecoder}, {Metaspace("first", true)}]}}"),
            new("Metaspace never unsplit", PreTokenizer: Then(Metaspace("never", false)), Decoder: $"{{\"type\": \"Sequence\", \"decoders\": [{ByteLevelDecoder}, {Metaspace("never", false)}]}}"),
            new("Metaspace always unsplit", PreTokenizer: Then(Metaspace("always", false))),
            new("Metaspace legacy add_prefix_space", PreTokenizer: Then("{\"type\": \"Metaspace\", \"replacement\": \"▁\", \"add_prefix_space\": true}")),
            new("Metaspace first after Split", PreTokenizer: $"{{\"type\": \"Sequence\", \"pretokenizers\": [{SplitRegex(@"\p{N}+", "Isolated", false)}, {Metaspace("first", true)}, {ByteLevelOnly}]}}"),
            new("Digits individual", PreTokenizer: Then("{\"type\": \"Digits\", \"individual_digits\": true}")),
            new("Digits contiguous", PreTokenizer: Then("{\"type\": \"Digits\", \"individual_digits\": false}")),
            new("Punctuation", PreTokenizer: Then("{\"type\": \"Punctuation\"}")),
            new("Punctuation merged with next", PreTokenizer: Then("{\"type\": \"Punctuation\", \"behavior\": \"MergedWithNext\"}")),
            new("Whitespace", PreTokenizer: Then("{\"type\": \"Whitespace\"}")),
            new("WhitespaceSplit", PreTokenizer: Then("{\"type\": \"WhitespaceSplit\"}")),
            new("CharDelimiterSplit", PreTokenizer: Then("{\"type\": \"CharDelimiterSplit\", \"delimiter\": \"e\"}")),
            new("BertPreTokenizer", PreTokenizer: Then("{\"type\": \"BertPreTokenizer\"}")),
            new("No pre-tokenizer on byte-level normalizer", Normalizer: "{\"type\": \"ByteLevel\"}", PreTokenizer: "null"),
            new("NFD", Normalizer: "{\"type\": \"NFD\"}"),
            new("NFKC", Normalizer: "{\"type\": \"NFKC\"}"),
            new("NFKD", Normalizer: "{\"type\": \"NFKD\"}"),
            new("Lowercase", Normalizer: "{\"type\": \"Lowercase\"}"),
            new("Strip both", Normalizer: "{\"type\": \"Strip\", \"strip_left\": true, \"strip_right\": true}"),
            new("Strip right", Normalizer: "{\"type\": \"Strip\", \"strip_left\": false, \"strip_right\": true}"),
            new("StripAccents after NFD", Normalizer: "{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"NFD\"}, {\"type\": \"StripAccents\"}]}"),
            new("Replace regex", Normalizer: "{\"type\": \"Replace\", \"pattern\": {\"Regex\": \"\\\\s+\"}, \"content\": \" \"}"),
            new("Replace with nothing", Normalizer: "{\"type\": \"Replace\", \"pattern\": {\"String\": \"a\"}, \"content\": \"\"}"),
            new("Prepend", Normalizer: "{\"type\": \"Prepend\", \"prepend\": \"▁\"}"),
            new("Nmt", Normalizer: "{\"type\": \"Nmt\"}"),
            new("Strip then Metaspace first", Normalizer: "{\"type\": \"Strip\", \"strip_left\": true, \"strip_right\": false}", PreTokenizer: Then(Metaspace("first", true))),
            new("Added tokens through a lowercasing normalizer", Normalizer: "{\"type\": \"Lowercase\"}",
                AddedTokens: [new(0, "HELLO", Special: false, Normalized: true), new(0, "<X>", Special: true), new(0, "Mid", Special: true, Normalized: true, LeftStrip: true),
                    new(0, "<s>", Special: true, RightStrip: true), new(0, "ab", Special: false, Normalized: false, SingleWord: true)]),
            new("RobertaProcessing", PostProcessor: "{\"type\": \"RobertaProcessing\", \"sep\": [\"</s>\", 2], \"cls\": [\"<s>\", 0], \"trim_offsets\": true, \"add_prefix_space\": false}"),
            new("BertProcessing", PostProcessor: "{\"type\": \"BertProcessing\", \"sep\": [\"[SEP]\", 5], \"cls\": [\"[CLS]\", 7]}"),
            new("Template with prefix and suffix", PostProcessor: "{\"type\": \"Sequence\", \"processors\": [" + ByteLevelOnly + ", {\"type\": \"TemplateProcessing\", " +
                "\"single\": [{\"SpecialToken\": {\"id\": \"<bos>\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}, {\"SpecialToken\": {\"id\": \"<eos>\", \"type_id\": 0}}], " +
                "\"pair\": [{\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"B\", \"type_id\": 1}}], " +
                "\"special_tokens\": {\"<bos>\": {\"id\": \"<bos>\", \"ids\": [11, 12], \"tokens\": [\"a\", \"b\"]}, \"<eos>\": {\"id\": \"<eos>\", \"ids\": [13], \"tokens\": [\"c\"]}}}]}"),
            new("Decoder Replace and Strip", Decoder: "{\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Replace\", \"pattern\": {\"String\": \"Ġ\"}, \"content\": \" \"}, {\"type\": \"Strip\", \"content\": \"Ġ\", \"start\": 1, \"stop\": 0}, {\"type\": \"Strip\", \"content\": \"x\", \"start\": 0, \"stop\": 1}]}"),
            new("Decoder BPE suffix", Decoder: "{\"type\": \"BPEDecoder\", \"suffix\": \"Ġ\"}"),
            new("Decoder Fuse then Strip", Decoder: "{\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Fuse\"}, {\"type\": \"Strip\", \"content\": \"Ġ\", \"start\": 3, \"stop\": 0}]}"),
            new("Decoder Replace regex", Decoder: "{\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Replace\", \"pattern\": {\"Regex\": \"[aeiouĠ]+\"}, \"content\": \"*\"}, {\"type\": \"Fuse\"}]}"),
            new("No decoder", Decoder: "null"),
            new("BPE continuing_subword_prefix, unk not fused", PreTokenizer: "{\"type\": \"WhitespaceSplit\"}", Decoder: "null",
                Model: new(["[UNK]", "a", "b", "c", "é", "😀", "##a", "##b", "##c", "##é", "##😀", "ab", "abc", "ca", "##bc", "é😀", "##é😀"],
                    [("a", "##b"), ("ab", "##c"), ("c", "##a"), ("##b", "##c"), ("é", "##😀"), ("##é", "##😀")],
                    "\"unk_token\": \"[UNK]\", \"continuing_subword_prefix\": \"##\", \"end_of_word_suffix\": null, \"fuse_unk\": false, \"byte_fallback\": false")),
            new("BPE end_of_word_suffix, unk fused", PreTokenizer: "{\"type\": \"WhitespaceSplit\"}", Decoder: "{\"type\": \"BPEDecoder\", \"suffix\": \"</w>\"}",
                Model: new(["<unk>", "a", "b", "c", "é", "a</w>", "b</w>", "c</w>", "é</w>", "ab", "ab</w>", "bc</w>", "abc</w>", "éa"],
                    [("a", "b"), ("b", "c</w>"), ("a", "b</w>"), ("ab", "c</w>"), ("a", "bc</w>"), ("é", "a")],
                    "\"unk_token\": \"<unk>\", \"continuing_subword_prefix\": null, \"end_of_word_suffix\": \"</w>\", \"fuse_unk\": true, \"byte_fallback\": false")),
            new("BPE byte_fallback with missing bytes", PreTokenizer: "{\"type\": \"WhitespaceSplit\"}",
                Decoder: "{\"type\": \"Sequence\", \"decoders\": [{\"type\": \"ByteFallback\"}, {\"type\": \"Fuse\"}]}",
                Model: new(["<unk>", "a", "b", "ab", "<0x61>", "<0xC3>", "<0xA9>", "<0xE4>", "<0xB8>", "<0xAD>", "<0xF0>", "<0x9F>", "<0x98>", "<0x80>", "<0x2C>"],
                    [("a", "b")], "\"unk_token\": \"<unk>\", \"continuing_subword_prefix\": null, \"end_of_word_suffix\": null, \"fuse_unk\": true, \"byte_fallback\": true")),
            new("BPE without unk drops unknown characters", PreTokenizer: "{\"type\": \"WhitespaceSplit\"}", Decoder: "null",
                Model: new(["a", "b", "c", "ab", "bc", "abc"], [("a", "b"), ("b", "c"), ("ab", "c")],
                    "\"unk_token\": null, \"continuing_subword_prefix\": null, \"end_of_word_suffix\": null, \"fuse_unk\": false, \"byte_fallback\": false")),
            new("BPE ignore_merges", PreTokenizer: "{\"type\": \"WhitespaceSplit\"}", Decoder: "null",
                Model: new(["a", "b", "c", "ab", "bc", "abc", "abca"], [("a", "b"), ("b", "c"), ("ab", "c")],
                    "\"unk_token\": null, \"continuing_subword_prefix\": null, \"end_of_word_suffix\": null, \"fuse_unk\": false, \"byte_fallback\": false, \"ignore_merges\": true")),
            new("BPE duplicate merge: the later rank wins", PreTokenizer: "{\"type\": \"WhitespaceSplit\"}", Decoder: "null",
                Model: new(["a", "b", "c", "ab", "bc", "abc"], [("a", "b"), ("b", "c"), ("ab", "c"), ("a", "b")],
                    "\"unk_token\": null, \"continuing_subword_prefix\": null, \"end_of_word_suffix\": null, \"fuse_unk\": false, \"byte_fallback\": false")),
        ]);
        return list.ToArray();
    }

    // (tokenizers' Strip decoder panics when its start and stop cuts cross, e.g. " " with start 1 and stop 1;
    // the pipelines keep away from that)

    public static TheoryData<string> PipelineNames => [.. Pipelines.Select(p => p.Name)];

    public static readonly string[] Texts =
    [
        .. HuggingFaceTokenizerAgreementTests.Corpus,
        .. TokenizerCorpus.Random(seed: 99, count: 120),
        "abc ab ca é😀 abca éa a😀 ##a [UNK] 中a",
        "HELLO hello HeLLo <X> Mid  Mid mid ab abc <s>   x ab_ ab",
        "xx x xxx yxy",
    ];

    private sealed class PipelineRun
    {
        public static readonly Lazy<PipelineRun> Instance = new(() => new PipelineRun());

        private PipelineRun()
        {
            string root = Directory.CreateTempSubdirectory("llavanative-hftok-pipelines-").FullName;
            try
            {
                var (vocab, merges) = SmallByteLevel();
                var jobs = new List<HuggingFaceTokenizersReference.Job>();
                foreach (var (pipeline, i) in Pipelines.Select((p, i) => (p, i)))
                {
                    string folder = Path.Combine(root, i.ToString());
                    WriteFolder(folder, ToJson(pipeline, vocab, merges));
                    Tokenizers[pipeline.Name] = HuggingFaceTokenizerFiles.Load(folder);
                    jobs.Add(new(HuggingFaceEngine.Rust, folder, Texts, DecodeOwn: true));
                }
                var results = HuggingFaceTokenizersReference.Run([.. jobs]);
                for (int i = 0; i < Pipelines.Length; i++)
                    Results[Pipelines[i].Name] = results[i];
            }
            finally
            {
                Directory.Delete(root, recursive: true);
            }
        }

        public Dictionary<string, VocabularyData> Tokenizers { get; } = new();
        public Dictionary<string, HuggingFaceTokenizersReference.Result> Results { get; } = new();
    }

    private static TokenizerJson ToJson(Pipeline p, List<(string Token, int Id)> byteLevelVocab, List<(string Left, string Right)> byteLevelMerges)
    {
        var json = p.Model is { } m
            ? new TokenizerJson
            {
                ModelOptions = "\"type\": \"BPE\", \"dropout\": null, " + m.Options,
                Vocab = m.Tokens.Select((t, i) => (t, i)).ToList(),
                Merges = [.. m.Merges],
            }
            : new TokenizerJson
            {
                ModelOptions = "\"type\": \"BPE\", \"dropout\": null, \"unk_token\": null, \"continuing_subword_prefix\": null, \"end_of_word_suffix\": null, \"fuse_unk\": false, \"byte_fallback\": false",
                Vocab = byteLevelVocab,
                Merges = byteLevelMerges,
                MergesAsPairs = true,
            };
        json.Normalizer = p.Normalizer;
        json.PreTokenizer = p.PreTokenizer;
        json.PostProcessor = p.PostProcessor;
        json.Decoder = p.Decoder;
        int next = json.Vocab.Count;
        foreach (var added in p.AddedTokens ?? [])
            json.AddedTokens.Add(added with { Id = next++ });
        return json;
    }

    [Theory]
    [MemberData(nameof(PipelineNames))]
    public void Pipeline_EncodesAndDecodes_AsHuggingFaceTokenizers(string name)
    {
        var run = PipelineRun.Instance.Value;
        var vocabulary = run.Tokenizers[name];
        var ours = Tokenizer.FromVocabulary(vocabulary);
        var engine = vocabulary.HuggingFace!;
        var reference = run.Results[name];
        var failures = new List<string>();
        for (int i = 0; i < Texts.Length; i++)
        {
            var expected = reference.Encodings[i];
            Check(failures, Texts[i], "add_special_tokens", expected.WithSpecial, ours.Encode(Texts[i], addSpecial: true));
            Check(failures, Texts[i], "plain", expected.Plain, ours.Encode(Texts[i], addSpecial: false));
            if (reference.DecodedOwn[i].Keep != ours.Decode(expected.WithSpecial))
                failures.Add($"{HuggingFaceTokenizerAgreementTests.Show(Texts[i])} [decode]\n    reference: {HuggingFaceTokenizerAgreementTests.Show(reference.DecodedOwn[i].Keep)}\n    ours:      {HuggingFaceTokenizerAgreementTests.Show(ours.Decode(expected.WithSpecial))}");
            if (reference.DecodedOwn[i].Skip != engine.Decode(expected.WithSpecial, skipSpecialTokens: true))
                failures.Add($"{HuggingFaceTokenizerAgreementTests.Show(Texts[i])} [decode skip_special_tokens]");
        }
        HuggingFaceTokenizerAgreementTests.AssertNoFailures(name, failures, Texts.Length * 4);
    }

    private static void Check(List<string> failures, string text, string mode, int[] expected, int[] actual)
    {
        if (!expected.AsSpan().SequenceEqual(actual))
            failures.Add($"{HuggingFaceTokenizerAgreementTests.Show(text)} [{mode}]\n    reference: [{string.Join(", ", expected)}]\n    ours:      [{string.Join(", ", actual)}]");
    }
}
