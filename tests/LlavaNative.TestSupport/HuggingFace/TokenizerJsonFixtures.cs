using System.Text;
using System.Text.Json;
using LlavaNative.Model.Formats.Gguf;

namespace LlavaNative.TestSupport.HuggingFace;

/// <summary>The tokenizer.json layouts <see cref="TokenizerJsonFixtures"/> can write.</summary>
public enum TokenizerJsonKind
{
    /// <summary>Qwen2 (and llava-interleave-qwen): NFC, the Qwen2 Split regex, ByteLevel; merges as "a b" strings.</summary>
    Qwen2,

    /// <summary>Qwen2 plus added tokens that exercise the added-vocabulary rules: <c>&lt;image&gt;</c> (special),
    /// lstrip/rstrip/single_word tokens and a non-special normalized one.</summary>
    Qwen2AddedTokenRules,

    /// <summary>Llama 3: the Llama-3 Split regex, ByteLevel, ignore_merges, BOS by TemplateProcessing in a Sequence; merges as [a, b] pairs.</summary>
    Llama3,

    /// <summary>Llama 2 / Vicuna / llava-1.5-hf (legacy): Prepend + Replace normalizers, byte_fallback + fuse_unk BPE with
    /// merges derived from the SentencePiece scores, Replace/ByteFallback/Fuse/Strip decoder, BOS.</summary>
    LlamaSentencePiece,

    /// <summary>llava-1.5-7b-hf: <see cref="LlamaSentencePiece"/> (legacy) plus the added <c>&lt;image&gt;</c> (32000) and
    /// <c>&lt;pad&gt;</c> (32001) special tokens.</summary>
    LlavaSentencePiece,

    /// <summary>LLaVA v1 / Chinese-LLaVA: <see cref="LlamaSentencePiece"/> plus <c>&lt;im_patch&gt;</c> (32000),
    /// <c>&lt;im_start&gt;</c> (32001), <c>&lt;im_end&gt;</c> (32002), added in that order.</summary>
    LlavaV1SentencePiece,

    /// <summary>Llama 2 written with legacy=false: Metaspace (prepend_scheme first, no split) pre-tokenizer and decoder,
    /// plus llava-hf's <c>&lt;image&gt;</c> and <c>&lt;pad&gt;</c> added tokens.</summary>
    LlamaMetaspace,
}

/// <summary>
/// tokenizer.json (+ tokenizer_config.json) files built from the real vocabularies llama.cpp ships as GGUF, in the
/// layouts Hugging Face checkpoints use. There are no Hugging Face tokenizer files on this machine; these carry the
/// same tokens, merges and pipelines, so the reference (Hugging Face tokenizers) and our reader can be compared on
/// real vocabularies. Merges for the SentencePiece vocabulary are derived the way transformers' converter does
/// (convert_slow_tokenizer.generate_merges): every split of a token into two vocabulary pieces, ordered by the
/// merged token's score (then longer left and right pieces first).
/// </summary>
public static class TokenizerJsonFixtures
{
    public const string Qwen2Pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    public const string Llama3Pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>Bump when the files written change, so cached folders from older runs are not reused.</summary>
    private const int FixtureVersion = 1;

    private static readonly Dictionary<(TokenizerJsonKind, bool), Lazy<string>> s_folders = new();

    /// <summary>
    /// A folder holding the tokenizer files of <paramref name="kind"/>. With <paramref name="specialTokensAsText"/>
    /// the special added tokens are left out of added_tokens: tokenizers then reads them as text, which is what its
    /// encode_special_tokens setting does (non-special added tokens may then get other ids). Written once under the
    /// temp directory and reused by later runs while the source vocabulary and <see cref="FixtureVersion"/> stay the same.
    /// </summary>
    public static string Folder(TokenizerJsonKind kind, bool specialTokensAsText = false)
    {
        Lazy<string> lazy;
        lock (s_folders)
        {
            if (!s_folders.TryGetValue((kind, specialTokensAsText), out lazy!))
                s_folders[(kind, specialTokensAsText)] = lazy = new Lazy<string>(() => CachedFolder(kind, specialTokensAsText));
        }
        return lazy.Value;
    }

    private static string SourceVocabulary(TokenizerJsonKind kind) => kind switch
    {
        TokenizerJsonKind.Qwen2 or TokenizerJsonKind.Qwen2AddedTokenRules => "qwen2",
        TokenizerJsonKind.Llama3 => "llama-bpe",
        _ => "llama-spm",
    };

    private static string CachedFolder(TokenizerJsonKind kind, bool specialTokensAsText)
    {
        var source = new FileInfo(ReferencePaths.Vocabulary(SourceVocabulary(kind)));
        string key = $"v{FixtureVersion}-{source.Length:x}-{source.LastWriteTimeUtc.Ticks:x}";
        string root = Path.Combine(Path.GetTempPath(), "llavanative-hftok-fixtures");
        string folder = Path.Combine(root, $"{kind}{(specialTokensAsText ? "-special-as-text" : "")}-{key}");
        if (File.Exists(Path.Combine(folder, "tokenizer.json")) && File.Exists(Path.Combine(folder, "tokenizer_config.json")))
            return folder;

        // written beside it and moved into place, so a concurrent test process never sees half a folder
        string staging = Path.Combine(root, $"staging-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Write(kind, specialTokensAsText, staging);
        try
        {
            Directory.Move(staging, folder);
        }
        catch (IOException) when (Directory.Exists(folder))
        {
            Directory.Delete(staging, recursive: true);
        }
        return folder;
    }

    private static void Write(TokenizerJsonKind kind, bool specialTokensAsText, string folder)
    {
        Directory.CreateDirectory(folder);
        var (tokenizer, config) = kind switch
        {
            TokenizerJsonKind.Qwen2 => Qwen2(addedTokenRules: false),
            TokenizerJsonKind.Qwen2AddedTokenRules => Qwen2(addedTokenRules: true),
            TokenizerJsonKind.Llama3 => Llama3(),
            TokenizerJsonKind.LlamaSentencePiece => LlamaSentencePiece(metaspace: false),
            TokenizerJsonKind.LlavaSentencePiece => LlamaSentencePiece(metaspace: false, llavaTokens: true),
            TokenizerJsonKind.LlavaV1SentencePiece => LlamaSentencePiece(metaspace: false, patchTokens: true),
            TokenizerJsonKind.LlamaMetaspace => LlamaSentencePiece(metaspace: true, llavaTokens: true),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
        if (specialTokensAsText)
            tokenizer.AddedTokens.RemoveAll(t => t.Special);
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), tokenizer.ToJson());
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>An added token as tokenizer.json lists it.</summary>
    public sealed record Added(int Id, string Content, bool Special, bool Normalized = false, bool LeftStrip = false, bool RightStrip = false, bool SingleWord = false);

    /// <summary>Everything a tokenizer.json holds; the pipeline parts are raw JSON.</summary>
    public sealed class TokenizerJson
    {
        public List<Added> AddedTokens { get; } = [];
        public string Normalizer { get; set; } = "null";
        public string PreTokenizer { get; set; } = "null";
        public string PostProcessor { get; set; } = "null";
        public string Decoder { get; set; } = "null";
        public required string ModelOptions { get; init; }   // the model's members before vocab, without braces
        public required List<(string Token, int Id)> Vocab { get; init; }
        public required List<(string Left, string Right)> Merges { get; init; }
        public bool MergesAsPairs { get; init; }

        public string ToJson()
        {
            using var stream = new MemoryStream();
            using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = false, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            {
                w.WriteStartObject();
                w.WriteString("version", "1.0");
                w.WriteNull("truncation");
                w.WriteNull("padding");
                w.WriteStartArray("added_tokens");
                foreach (var t in AddedTokens)
                {
                    w.WriteStartObject();
                    w.WriteNumber("id", t.Id);
                    w.WriteString("content", t.Content);
                    w.WriteBoolean("single_word", t.SingleWord);
                    w.WriteBoolean("lstrip", t.LeftStrip);
                    w.WriteBoolean("rstrip", t.RightStrip);
                    w.WriteBoolean("normalized", t.Normalized);
                    w.WriteBoolean("special", t.Special);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WritePropertyName("normalizer");
                w.WriteRawValue(Normalizer);
                w.WritePropertyName("pre_tokenizer");
                w.WriteRawValue(PreTokenizer);
                w.WritePropertyName("post_processor");
                w.WriteRawValue(PostProcessor);
                w.WritePropertyName("decoder");
                w.WriteRawValue(Decoder);
                w.WritePropertyName("model");
                w.WriteRawValue("{" + ModelOptions + ", \"vocab\": {}, \"merges\": []}");
                w.WriteEndObject();
            }
            // the vocabulary and merges are large: splice them into the model object as text
            string json = Encoding.UTF8.GetString(stream.ToArray());
            var sb = new StringBuilder(json.Length + Vocab.Count * 24);
            int vocabAt = json.LastIndexOf("\"vocab\":{}", StringComparison.Ordinal);
            if (vocabAt < 0)
                vocabAt = json.LastIndexOf("\"vocab\": {}", StringComparison.Ordinal);
            int mergesAt = json.IndexOf("[]", vocabAt, StringComparison.Ordinal);
            int vocabOpen = json.IndexOf('{', vocabAt);
            sb.Append(json, 0, vocabOpen + 1);
            for (int i = 0; i < Vocab.Count; i++)
            {
                if (i > 0) sb.Append(',');
                sb.Append(JsonSerializer.Serialize(Vocab[i].Token)).Append(':').Append(Vocab[i].Id);
            }
            sb.Append(json, vocabOpen + 1, mergesAt + 1 - (vocabOpen + 1));
            for (int i = 0; i < Merges.Count; i++)
            {
                if (i > 0) sb.Append(',');
                var (l, r) = Merges[i];
                if (MergesAsPairs)
                    sb.Append('[').Append(JsonSerializer.Serialize(l)).Append(',').Append(JsonSerializer.Serialize(r)).Append(']');
                else
                    sb.Append(JsonSerializer.Serialize(l + " " + r));
            }
            sb.Append(json, mergesAt + 1, json.Length - (mergesAt + 1));
            return sb.ToString();
        }
    }

    private sealed record GgufVocab(string[] Tokens, int[] Types, float[]? Scores, string[]? Merges);

    private static GgufVocab ReadGguf(string name)
    {
        using var file = GgufFile.Open(ReferencePaths.Vocabulary(name));
        return new GgufVocab(
            file.GetArray<string>("tokenizer.ggml.tokens"),
            file.GetIntArray("tokenizer.ggml.token_type"),
            file.Contains("tokenizer.ggml.scores") ? file.GetArray<float>("tokenizer.ggml.scores") : null,
            file.Contains("tokenizer.ggml.merges") ? file.GetArray<string>("tokenizer.ggml.merges") : null);
    }

    private static string Q(string s) => JsonSerializer.Serialize(s);

    /// <summary>Byte-level vocabularies: normal tokens form the model vocabulary, control and user-defined ones are added tokens.</summary>
    private static (List<(string, int)> Vocab, List<Added> Added, List<(string, string)> Merges) SplitByteLevel(GgufVocab v)
    {
        var vocab = new List<(string, int)>();
        var added = new List<Added>();
        for (int id = 0; id < v.Tokens.Length; id++)
        {
            if (v.Types[id] == 1)
                vocab.Add((v.Tokens[id], id));
            else if (v.Types[id] is 3 or 4)
                added.Add(new Added(id, v.Tokens[id], Special: v.Types[id] == 3));
        }
        var merges = v.Merges!.Select(m =>
        {
            int space = m.IndexOf(' ', 1);
            return (m[..space], m[(space + 1)..]);
        }).ToList();
        return (vocab, added, merges);
    }

    private const string ByteLevelStep = "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": false, \"use_regex\": false}";

    private static (TokenizerJson, System.Text.Json.Nodes.JsonObject) Qwen2(bool addedTokenRules)
    {
        var v = ReadGguf("qwen2");
        var (vocab, added, merges) = SplitByteLevel(v);
        var json = new TokenizerJson
        {
            ModelOptions = "\"type\": \"BPE\", \"dropout\": null, \"unk_token\": null, \"continuing_subword_prefix\": \"\", \"end_of_word_suffix\": \"\", \"fuse_unk\": false, \"byte_fallback\": false",
            Vocab = vocab,
            Merges = merges,
            Normalizer = "{\"type\": \"NFC\"}",
            PreTokenizer = "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": " + Q(Qwen2Pattern) +
                "}, \"behavior\": \"Isolated\", \"invert\": false}, " + ByteLevelStep + "]}",
            PostProcessor = ByteLevelStep,
            Decoder = ByteLevelStep,
        };
        json.AddedTokens.AddRange(added);
        int next = v.Tokens.Length;
        if (addedTokenRules)
        {
            json.AddedTokens.Add(new Added(next++, "<image>", Special: true));
            json.AddedTokens.Add(new Added(next++, "<video>", Special: true, LeftStrip: true, RightStrip: true));
            json.AddedTokens.Add(new Added(next++, "[SEP]", Special: false, RightStrip: true));
            json.AddedTokens.Add(new Added(next++, "<mask>", Special: true, LeftStrip: true));
            json.AddedTokens.Add(new Added(next++, "word", Special: false, SingleWord: true));
            json.AddedTokens.Add(new Added(next++, "café", Special: false, Normalized: true));
            json.AddedTokens.Add(new Added(next++, "<|im_start|>user", Special: false));
        }

        var config = new System.Text.Json.Nodes.JsonObject
        {
            ["add_prefix_space"] = false,
            ["bos_token"] = null,
            ["eos_token"] = "<|endoftext|>",
            ["pad_token"] = "<|endoftext|>",
            ["unk_token"] = null,
            ["additional_special_tokens"] = new System.Text.Json.Nodes.JsonArray("<|im_start|>", "<|im_end|>"),
            ["chat_template"] = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
            ["clean_up_tokenization_spaces"] = false,
            ["model_max_length"] = 32768,
            ["split_special_tokens"] = false,
            ["tokenizer_class"] = "Qwen2Tokenizer",
        };
        return (json, config);
    }

    private static (TokenizerJson, System.Text.Json.Nodes.JsonObject) Llama3()
    {
        var v = ReadGguf("llama-bpe");
        var (vocab, added, merges) = SplitByteLevel(v);
        int bos = Array.IndexOf(v.Tokens, "<|begin_of_text|>");
        var json = new TokenizerJson
        {
            ModelOptions = "\"type\": \"BPE\", \"dropout\": null, \"unk_token\": null, \"continuing_subword_prefix\": null, \"end_of_word_suffix\": null, \"fuse_unk\": false, \"byte_fallback\": false, \"ignore_merges\": true",
            Vocab = vocab,
            Merges = merges,
            MergesAsPairs = true,
            PreTokenizer = "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": " + Q(Llama3Pattern) +
                "}, \"behavior\": \"Isolated\", \"invert\": false}, {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": false}]}",
            PostProcessor = "{\"type\": \"Sequence\", \"processors\": [{\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": false, \"use_regex\": true}, " +
                "{\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<|begin_of_text|>\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], " +
                "\"pair\": [{\"SpecialToken\": {\"id\": \"<|begin_of_text|>\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}, {\"SpecialToken\": {\"id\": \"<|begin_of_text|>\", \"type_id\": 1}}, {\"Sequence\": {\"id\": \"B\", \"type_id\": 1}}], " +
                $"\"special_tokens\": {{\"<|begin_of_text|>\": {{\"id\": \"<|begin_of_text|>\", \"ids\": [{bos}], \"tokens\": [\"<|begin_of_text|>\"]}}}}}}]}}",
            Decoder = "{\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": true, \"use_regex\": true}",
        };
        json.AddedTokens.AddRange(added);
        var config = new System.Text.Json.Nodes.JsonObject
        {
            ["bos_token"] = "<|begin_of_text|>",
            ["eos_token"] = "<|eot_id|>",
            ["clean_up_tokenization_spaces"] = true,
            ["model_input_names"] = new System.Text.Json.Nodes.JsonArray("input_ids", "attention_mask"),
            ["tokenizer_class"] = "PreTrainedTokenizerFast",
        };
        return (json, config);
    }

    private static (TokenizerJson, System.Text.Json.Nodes.JsonObject) LlamaSentencePiece(bool metaspace, bool llavaTokens = false, bool patchTokens = false)
    {
        var v = ReadGguf("llama-spm");
        var vocab = new List<(string, int)>();
        for (int id = 0; id < v.Tokens.Length; id++)
            vocab.Add((v.Tokens[id], id));
        var json = new TokenizerJson
        {
            ModelOptions = "\"type\": \"BPE\", \"dropout\": null, \"unk_token\": \"<unk>\", \"continuing_subword_prefix\": null, \"end_of_word_suffix\": null, \"fuse_unk\": true, \"byte_fallback\": true, \"ignore_merges\": false",
            Vocab = vocab,
            Merges = MergesFromScores(v),
            PostProcessor = "{\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], " +
                "\"pair\": [{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}, {\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 1}}, {\"Sequence\": {\"id\": \"B\", \"type_id\": 1}}], " +
                "\"special_tokens\": {\"<s>\": {\"id\": \"<s>\", \"ids\": [1], \"tokens\": [\"<s>\"]}}}",
        };
        json.AddedTokens.Add(new Added(0, "<unk>", Special: true));
        json.AddedTokens.Add(new Added(1, "<s>", Special: true));
        json.AddedTokens.Add(new Added(2, "</s>", Special: true));
        if (metaspace)
        {
            json.PreTokenizer = "{\"type\": \"Metaspace\", \"replacement\": \"▁\", \"prepend_scheme\": \"first\", \"split\": false}";
            json.Decoder = "{\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Metaspace\", \"replacement\": \"▁\", \"prepend_scheme\": \"first\", \"split\": false}, {\"type\": \"ByteFallback\"}, {\"type\": \"Fuse\"}]}";
        }
        else
        {
            json.Normalizer = "{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", \"prepend\": \"▁\"}, {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"▁\"}]}";
            json.Decoder = "{\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Replace\", \"pattern\": {\"String\": \"▁\"}, \"content\": \" \"}, {\"type\": \"ByteFallback\"}, {\"type\": \"Fuse\"}, {\"type\": \"Strip\", \"content\": \" \", \"start\": 1, \"stop\": 0}]}";
        }
        if (llavaTokens)
        {
            json.AddedTokens.Add(new Added(v.Tokens.Length, "<image>", Special: true));
            json.AddedTokens.Add(new Added(v.Tokens.Length + 1, "<pad>", Special: true));
        }
        if (patchTokens)
        {
            json.AddedTokens.Add(new Added(v.Tokens.Length, "<im_patch>", Special: true));
            json.AddedTokens.Add(new Added(v.Tokens.Length + 1, "<im_start>", Special: true));
            json.AddedTokens.Add(new Added(v.Tokens.Length + 2, "<im_end>", Special: true));
        }
        var config = new System.Text.Json.Nodes.JsonObject
        {
            ["add_bos_token"] = true,
            ["add_eos_token"] = false,
            ["bos_token"] = new System.Text.Json.Nodes.JsonObject { ["__type"] = "AddedToken", ["content"] = "<s>", ["lstrip"] = false, ["normalized"] = false, ["rstrip"] = false, ["single_word"] = false },
            ["eos_token"] = new System.Text.Json.Nodes.JsonObject { ["__type"] = "AddedToken", ["content"] = "</s>", ["lstrip"] = false, ["normalized"] = false, ["rstrip"] = false, ["single_word"] = false },
            ["unk_token"] = new System.Text.Json.Nodes.JsonObject { ["__type"] = "AddedToken", ["content"] = "<unk>", ["lstrip"] = false, ["normalized"] = false, ["rstrip"] = false, ["single_word"] = false },
            ["pad_token"] = llavaTokens ? "<pad>" : null,
            ["legacy"] = !metaspace,
            ["clean_up_tokenization_spaces"] = false,
            ["model_max_length"] = 4096,
            ["tokenizer_class"] = "LlamaTokenizer",
        };
        return (json, config);
    }

    /// <summary>
    /// transformers' generate_merges for a SentencePiece vocabulary with scores: for each normal token every split
    /// into two vocabulary pieces (ordered by the pieces' ids), all sorted by (score, left length, right length),
    /// highest first, stably.
    /// </summary>
    public static List<(string Left, string Right)> MergesFromScores(string[] tokens, int[] types, float[] scores)
    {
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < tokens.Length; i++)
            ids.TryAdd(tokens[i], i);
        var merges = new List<(string Left, string Right, float Score)>();
        for (int id = 0; id < tokens.Length; id++)
        {
            if (types[id] != 1)
                continue;
            string token = tokens[id];
            var local = new List<(string, string, float)>();
            var runes = token.EnumerateRunes().ToArray();
            int offset = 0;
            for (int k = 1; k < runes.Length; k++)
            {
                offset += runes[k - 1].Utf16SequenceLength;
                string left = token[..offset], right = token[offset..];
                if (ids.ContainsKey(left) && ids.ContainsKey(right))
                    local.Add((left, right, scores[id]));
            }
            merges.AddRange(local.OrderBy(m => ids[m.Item1]).ThenBy(m => ids[m.Item2]));
        }
        return merges
            .OrderByDescending(m => m.Score)
            .ThenByDescending(m => m.Left.EnumerateRunes().Count())
            .ThenByDescending(m => m.Right.EnumerateRunes().Count())
            .Select(m => (m.Left, m.Right))
            .ToList();
    }

    private static List<(string, string)> MergesFromScores(GgufVocab v) => MergesFromScores(v.Tokens, v.Types, v.Scores!);

    /// <summary>
    /// A small byte-level BPE: the 256 byte characters and the tokens of GPT-2's first <paramref name="mergeCount"/>
    /// merges (renumbered from 0), with those merges, for tokenizer.json files that test pipeline parts quickly.
    /// </summary>
    public static (List<(string Token, int Id)> Vocab, List<(string Left, string Right)> Merges) SmallByteLevel(int mergeCount = 3000)
    {
        var v = ReadGguf("gpt-2");
        var vocab = new List<(string, int)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        void Add(string token)
        {
            if (seen.Add(token))
                vocab.Add((token, vocab.Count));
        }
        foreach (char c in ByteAlphabet())
            Add(c.ToString());
        var merges = new List<(string, string)>();
        foreach (string merge in v.Merges!.Take(mergeCount))
        {
            int space = merge.IndexOf(' ', 1);
            string left = merge[..space], right = merge[(space + 1)..];
            if (!seen.Contains(left) || !seen.Contains(right))
                continue;
            merges.Add((left, right));
            Add(left + right);
        }
        return (vocab, merges);
    }

    /// <summary>GPT-2's 256 byte characters in byte order.</summary>
    public static IEnumerable<char> ByteAlphabet()
    {
        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            bool self = b is (>= 0x21 and <= 0x7E) or (>= 0xA1 and <= 0xAC) or (>= 0xAE and <= 0xFF);
            yield return self ? (char)b : (char)next++;
        }
    }

    /// <summary>
    /// A small byte-level BPE tokenizer.json (GPT-2's first merges) of up to <paramref name="mergeCount"/> + 257
    /// tokens, with the pre-tokenizer of <paramref name="pre"/>: "qwen2" or "llama-bpe" (their Split regex, then
    /// ByteLevel without regex), or "gpt-2" (ByteLevel with its own regex). Added special tokens: <c>&lt;|endoftext|&gt;</c>
    /// (EOS), then <paramref name="extraSpecialTokens"/> (e.g. llava-interleave's <c>&lt;image&gt;</c>) with the next ids.
    /// </summary>
    public static void WriteSmallByteLevel(string folder, int mergeCount, string pre = "qwen2", params string[] extraSpecialTokens)
    {
        var (vocab, merges) = SmallByteLevel(mergeCount);
        const string byteLevel = "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": false, \"use_regex\": false}";
        var json = new TokenizerJson
        {
            ModelOptions = "\"type\": \"BPE\", \"dropout\": null, \"unk_token\": null, \"continuing_subword_prefix\": \"\", \"end_of_word_suffix\": \"\", \"fuse_unk\": false, \"byte_fallback\": false",
            Vocab = vocab,
            Merges = merges,
            PreTokenizer = pre == "gpt-2"
                ? "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": true}"
                : "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": " +
                  JsonSerializer.Serialize(pre == "qwen2" ? Qwen2Pattern : Llama3Pattern) +
                  "}, \"behavior\": \"Isolated\", \"invert\": false}, " + byteLevel + "]}",
            PostProcessor = byteLevel,
            Decoder = byteLevel,
        };
        json.AddedTokens.Add(new Added(vocab.Count, "<|endoftext|>", Special: true));
        for (int i = 0; i < extraSpecialTokens.Length; i++)
            json.AddedTokens.Add(new Added(vocab.Count + 1 + i, extraSpecialTokens[i], Special: true));
        var config = new System.Text.Json.Nodes.JsonObject { ["eos_token"] = "<|endoftext|>", ["bos_token"] = null, ["tokenizer_class"] = "Qwen2Tokenizer" };
        WriteFolder(folder, json, config);
    }

    /// <summary>Writes <paramref name="tokenizer"/> (and a tokenizer_config.json when given) into <paramref name="folder"/>.</summary>
    public static void WriteFolder(string folder, TokenizerJson tokenizer, System.Text.Json.Nodes.JsonObject? config = null)
    {
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), tokenizer.ToJson());
        if (config is not null)
            File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }
}
