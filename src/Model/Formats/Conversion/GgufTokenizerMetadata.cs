using System.Text.Json;
using LlavaNative.Model.Formats.Gguf;
using LlavaNative.Model.Tokenizers;
using LlavaNative.Model.Tokenizers.HuggingFace;

namespace LlavaNative.Model.Formats.Conversion;

/// <summary>
/// The <c>tokenizer.ggml.*</c> keys for a Hugging Face folder's tokenizer, as llama.cpp's convert_hf_to_gguf.py
/// writes them, so that llama.cpp tokenizes like the folder's tokenizer:
/// <list type="bullet">
/// <item><b>tokenizer.model</b> (SentencePiece; preferred for llama, as llama.cpp's converter does) →
/// <c>llama</c>: the pieces with their scores and types, then added tokens (added_tokens.json,
/// added_tokens_decoder) as CONTROL when special, else USER_DEFINED.</item>
/// <item><b>tokenizer.json</b> with a BPE model with byte_fallback (Llama-2 / llava-1.5-hf layout) → <c>llama</c>.
/// SentencePiece merges by score; tokenizer.json has merge ranks instead, so every token gets the score
/// −(rank of the first merge that makes it): llama.cpp's highest-score-first bigram merging then applies merges
/// in rank order. (llama.cpp's converter writes −1000 for every token here, which loses that order.)</item>
/// <item><b>tokenizer.json</b> with a ByteLevel BPE → <c>gpt2</c> with merges and <c>tokenizer.ggml.pre</c> taken
/// from the pre-tokenizer: the Qwen2 split regex → qwen2, the Llama-3 regex → llama-bpe, ByteLevel's own regex →
/// gpt-2. Any other pre-tokenizer is refused rather than guessed (llama.cpp's converter identifies it by hashing
/// the tokenizer's output on a fixed text and refuses unknown hashes too).</item>
/// </list>
/// Token lists shorter than the embedding (llava-hf: 32002 tokens, 32064 rows) are padded with <c>[PAD{id}]</c>
/// tokens of type UNUSED, which llama.cpp never produces from text.
/// </summary>
public static class GgufTokenizerMetadata
{
    private const int Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6;

    /// <summary>The pre-tokenizer names this converter can recognise in a tokenizer.json.</summary>
    public const string SupportedPreTokenizers = "qwen2 (Qwen2 Split regex + ByteLevel), llama-bpe (Llama-3 Split regex + ByteLevel), gpt-2 (ByteLevel with its own regex)";

    /// <summary>What was written, for the conversion summary.</summary>
    public sealed record Summary(string Model, string? PreTokenizer, string Source, int TokenCount, int PaddedTokens, IReadOnlyList<string> Notes);

    /// <summary>
    /// Adds the tokenizer keys of <paramref name="folder"/> for a model whose embedding has <paramref name="embeddingRows"/>
    /// rows. BOS / EOS ids the tokenizer files do not name come from config.json (<paramref name="configBos"/>,
    /// <paramref name="configEos"/>), as llama.cpp's converter takes them.
    /// </summary>
    public static Summary Add(GgufWriter writer, string folder, string architecture, int embeddingRows, int? configBos = null, int? configEos = null)
    {
        string json = Path.Combine(folder, HuggingFaceTokenizerFiles.TokenizerJson);
        string model = Path.Combine(folder, HuggingFaceTokenizerFiles.TokenizerModel);
        bool hasJson = File.Exists(json), hasModel = File.Exists(model);
        if (!hasJson && !hasModel)
            throw new FileNotFoundException(
                $"{folder}: no {HuggingFaceTokenizerFiles.TokenizerJson} or {HuggingFaceTokenizerFiles.TokenizerModel}; a GGUF needs the model's tokenizer", json);

        var notes = new List<string>();
        Converted c = hasModel && (architecture == "llama" || !hasJson)
            ? FromSentencePieceModel(folder)
            : FromTokenizerJson(folder, json, notes);

        int n = c.Tokens.Count;
        if (n > embeddingRows)
            throw new HuggingFaceTokenizerException(c.SourcePath, $"the tokenizer has {n} tokens but the embedding only {embeddingRows} rows");
        for (int id = n; id < embeddingRows; id++)
        {
            c.Tokens.Add($"[PAD{id}]");
            c.Types.Add(Unused);
            c.Scores?.Add(-1000f);
        }

        writer.SetString("tokenizer.ggml.model", c.Model);
        if (c.PreTokenizer is not null) writer.SetString("tokenizer.ggml.pre", c.PreTokenizer);
        writer.SetArray("tokenizer.ggml.tokens", c.Tokens.ToArray());
        if (c.Scores is not null) writer.SetArray("tokenizer.ggml.scores", c.Scores.ToArray());
        writer.SetArray("tokenizer.ggml.token_type", c.Types.ToArray());
        if (c.Merges is not null) writer.SetArray("tokenizer.ggml.merges", c.Merges);
        var v = c.Vocabulary;
        void Id(string key, int? id)
        {
            if (id is { } x && x >= 0 && x < n) writer.SetUInt32(key, (uint)x);
        }
        Id("tokenizer.ggml.bos_token_id", v.BosId ?? configBos);
        Id("tokenizer.ggml.eos_token_id", v.EosId ?? configEos);
        Id("tokenizer.ggml.unknown_token_id", v.UnknownId);
        Id("tokenizer.ggml.padding_token_id", v.PaddingId);
        writer.SetBool("tokenizer.ggml.add_bos_token", v.AddBos ?? false);
        writer.SetBool("tokenizer.ggml.add_eos_token", v.AddEos ?? false);
        if (c.Model == "llama") writer.SetBool("tokenizer.ggml.add_space_prefix", c.AddSpacePrefix);
        if (v.ChatTemplate is { } template) writer.SetString("tokenizer.chat_template", template);
        return new Summary(c.Model, c.PreTokenizer, Path.GetFileName(c.SourcePath), n, embeddingRows - n, notes);
    }

    private sealed class Converted
    {
        public required string Model { get; init; }
        public string? PreTokenizer { get; init; }
        public required string SourcePath { get; init; }
        public required VocabularyData Vocabulary { get; init; }
        public required List<string> Tokens { get; init; }
        public required List<int> Types { get; init; }
        public List<float>? Scores { get; init; }
        public string[]? Merges { get; init; }
        public bool AddSpacePrefix { get; init; }
    }

    // ---- tokenizer.model -------------------------------------------------------------------------------------

    private static Converted FromSentencePieceModel(string folder)
    {
        var v = HuggingFaceTokenizerFiles.LoadSentencePiece(folder);
        var tokens = new List<string>(v.Tokens);
        var types = new List<int>(v.TokenTypes!);
        var scores = new List<float>(v.Scores!);
        for (int id = 0; id < tokens.Count; id++)
        {
            // ids skipped by added tokens, and added tokens, as llama.cpp's _create_vocab_sentencepiece has them
            if (types[id] == Unused && tokens[id].StartsWith("[EMPTY_", StringComparison.Ordinal)) { tokens[id] = $"[PAD{id}]"; scores[id] = -1000f; }
        }
        return new Converted
        {
            Model = "llama",
            SourcePath = Path.Combine(folder, HuggingFaceTokenizerFiles.TokenizerModel),
            Vocabulary = v,
            Tokens = tokens,
            Types = types,
            Scores = scores,
            AddSpacePrefix = v.AddSpacePrefix ?? true,
        };
    }

    // ---- tokenizer.json --------------------------------------------------------------------------------------

    private static Converted FromTokenizerJson(string folder, string path, List<string> notes)
    {
        var v = HuggingFaceTokenizerFiles.Load(folder);
        var engine = v.HuggingFace!;
        using var document = JsonDocument.Parse(File.ReadAllText(path), new JsonDocumentOptions { AllowTrailingCommas = true });
        var root = new TokenizerJsonReader(document.RootElement, path, "");
        var model = root["model"];

        // the ids the post-processor puts around a text must be what llama.cpp's add_bos/add_eos reproduce
        if (engine.Prefix.Length > 1 || engine.Prefix.Length == 1 && engine.Prefix[0] != v.BosId)
            throw root["post_processor"].Error($"adds [{string.Join(", ", engine.Prefix)}] before the text; a GGUF can only add the BOS token ({v.BosId?.ToString() ?? "none"})");
        if (engine.Suffix.Length > 1 || engine.Suffix.Length == 1 && engine.Suffix[0] != v.EosId)
            throw root["post_processor"].Error($"adds [{string.Join(", ", engine.Suffix)}] after the text; a GGUF can only add the EOS token ({v.EosId?.ToString() ?? "none"})");

        var tokens = new List<string>(v.Tokens.Length);
        var types = new List<int>(v.Tokens.Length);
        for (int id = 0; id < v.Tokens.Length; id++)
        {
            int type = v.TokenTypes![id];
            string token = v.Tokens[id];
            if (type == Unused) token = $"[PAD{id}]";
            // convert_hf_to_gguf does_token_look_special: added tokens such as <|im_start|> are control tokens
            if (type == UserDefined && LooksSpecial(token)) type = Control;
            tokens.Add(token);
            types.Add(type);
        }

        bool byteLevel = HasStep(root["pre_tokenizer"], "ByteLevel") || HasStep(root["decoder"], "ByteLevel");
        if (byteLevel)
        {
            CheckNormalizer(root["normalizer"], notes, allowSentencePiece: false);
            string pre = DetectPreTokenizer(root["pre_tokenizer"]);
            return new Converted
            {
                Model = "gpt2",
                PreTokenizer = pre,
                SourcePath = path,
                Vocabulary = v,
                Tokens = tokens,
                Types = types,
                Merges = ReadMerges(model).Select(m => m.Left + " " + m.Right).ToArray(),
            };
        }

        if (!model["byte_fallback"].Bool(false))
            throw model.Error("is a BPE model with neither a ByteLevel pre-tokenizer nor byte_fallback; neither GGUF tokenizer (gpt2 byte-level BPE, llama SentencePiece) reproduces it");
        bool prefix = SentencePieceSpacePrefix(root, notes);

        // score = −(rank of the first merge producing the token): llama.cpp merges the highest-scoring bigram first
        var scores = new List<float>(tokens.Count);
        var rank = new int[tokens.Count];
        Array.Fill(rank, int.MaxValue);
        var merges = ReadMerges(model);
        for (int r = 0; r < merges.Count; r++)
            if (engine.TryGetId(merges[r].Left + merges[r].Right, out int id) && id < rank.Length && rank[id] == int.MaxValue)
                rank[id] = r;
        for (int id = 0; id < tokens.Count; id++)
            scores.Add(types[id] is Normal or Unknown ? (rank[id] == int.MaxValue ? -(float)merges.Count - 1 : -(float)rank[id]) : types[id] == Byte ? 0f : -1000f);

        return new Converted
        {
            Model = "llama",
            SourcePath = path,
            Vocabulary = v,
            Tokens = tokens,
            Types = types,
            Scores = scores,
            AddSpacePrefix = prefix,
        };
    }

    /// <summary>convert_hf_to_gguf's does_token_look_special.</summary>
    private static bool LooksSpecial(string t) =>
        t is "<pad>" or "<mask>" or "<2mass>" or "[@BOS@]"
        || t.StartsWith("<|", StringComparison.Ordinal) && t.EndsWith("|>", StringComparison.Ordinal)
        || t.StartsWith("<｜", StringComparison.Ordinal) && t.EndsWith("｜>", StringComparison.Ordinal)
        || t.StartsWith("<unused", StringComparison.Ordinal) && t.EndsWith('>');

    private static IEnumerable<TokenizerJsonReader> Steps(TokenizerJsonReader step)
    {
        if (step.IsNull) yield break;
        string type = step["type"].String();
        if (type == "Sequence")
        {
            string list = step.Has("pretokenizers") ? "pretokenizers" : step.Has("normalizers") ? "normalizers" : step.Has("decoders") ? "decoders" : "processors";
            foreach (var inner in step[list].Items())
                foreach (var s in Steps(inner))
                    yield return s;
        }
        else
        {
            yield return step;
        }
    }

    private static bool HasStep(TokenizerJsonReader step, string type) => Steps(step).Any(s => s["type"].String() == type);

    /// <summary>The llama.cpp pre-tokenizer whose regex is exactly this pre_tokenizer's split.</summary>
    private static string DetectPreTokenizer(TokenizerJsonReader pre)
    {
        var steps = Steps(pre).ToList();
        string Describe() => pre.IsNull ? "none" : string.Join(" + ", steps.Select(s => s["type"].String() +
            (s.Has("pattern") && s["pattern"].Has("Regex") ? $"({s["pattern"]["Regex"].String()})" : "")));
        HuggingFaceTokenizerException Refuse() => pre.Error(
            $"is {Describe()}, which is not a pre-tokenizer llama.cpp reproduces (tokenizer.ggml.pre); supported: {SupportedPreTokenizers}");

        if (steps.Count == 1 && steps[0]["type"].String() == "ByteLevel")
        {
            if (steps[0]["use_regex"].Bool(true) && !steps[0]["add_prefix_space"].Bool(false))
                return "gpt-2";
            throw Refuse();
        }
        if (steps.Count == 2 && steps[0]["type"].String() == "Split" && steps[1]["type"].String() == "ByteLevel"
            && !steps[1]["use_regex"].Bool(true) && !steps[1]["add_prefix_space"].Bool(false)
            && steps[0]["behavior"].StringOrNull() == "Isolated" && !steps[0]["invert"].Bool(false)
            && steps[0]["pattern"].Has("Regex"))
        {
            string regex = steps[0]["pattern"]["Regex"].String();
            if (regex == Qwen2Regex) return "qwen2";
            if (regex == Llama3Regex) return "llama-bpe";
        }
        throw Refuse();
    }

    /// <summary>The Split regexes of Qwen2 and Llama 3 tokenizer.json files (llama.cpp runs expanded forms of them).</summary>
    public const string Qwen2Regex = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    public const string Llama3Regex = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>
    /// Byte-level: no normalizer, or NFC (Qwen2), which llama.cpp does not apply — HF(text) = llama.cpp(NFC(text)).
    /// </summary>
    private static void CheckNormalizer(TokenizerJsonReader normalizer, List<string> notes, bool allowSentencePiece)
    {
        foreach (var step in Steps(normalizer))
        {
            string type = step["type"].String();
            if (type == "NFC")
            {
                notes.Add("tokenizer.json normalizes text to NFC; llama.cpp does not, so text must be NFC for identical ids");
                continue;
            }
            if (allowSentencePiece && type is "Prepend" or "Replace")
                continue;
            throw normalizer.Error($"has a {type} step, which llama.cpp's tokenizer does not apply; supported: none, NFC" +
                                   (allowSentencePiece ? ", Prepend(\"▁\") + Replace(\" \" → \"▁\")" : ""));
        }
    }

    /// <summary>
    /// A SentencePiece-style tokenizer.json: the legacy normalizer (Prepend "▁", Replace " " → "▁") or a Metaspace
    /// pre-tokenizer. Returns whether a "▁" is prepended (llama.cpp's add_space_prefix).
    /// </summary>
    private static bool SentencePieceSpacePrefix(TokenizerJsonReader root, List<string> notes)
    {
        var normalizer = root["normalizer"];
        CheckNormalizer(normalizer, notes, allowSentencePiece: true);
        bool prepend = false;
        foreach (var step in Steps(normalizer))
        {
            if (step["type"].String() == "Prepend")
            {
                if (step["prepend"].String() != "▁") throw step.Error("prepends something other than \"▁\"");
                prepend = true;
            }
            else if (step["type"].String() == "Replace")
            {
                if (step["pattern"]["String"].StringOrNull() != " " || step["content"].String() != "▁")
                    throw step.Error("is not the SentencePiece space escape (\" \" → \"▁\")");
            }
        }
        var pre = root["pre_tokenizer"];
        foreach (var step in Steps(pre))
        {
            if (step["type"].String() != "Metaspace" || step["split"].Bool(true))
                throw pre.Error($"has a {step["type"].String()} step; a SentencePiece-style tokenizer.json may only have Metaspace without splitting");
            string scheme = step["prepend_scheme"].StringOrNull() ?? (step["add_prefix_space"].Bool(true) ? "always" : "never");
            prepend = scheme != "never";
            if (scheme == "first")
                notes.Add("Metaspace prepend_scheme \"first\": llama.cpp also prepends \"▁\" after special tokens in the middle of a text (Hugging Face legacy behaviour)");
        }
        return prepend;
    }

    private static List<(string Left, string Right)> ReadMerges(TokenizerJsonReader model)
    {
        var merges = new List<(string, string)>();
        if (model["merges"].IsNull) return merges;
        foreach (var m in model["merges"].Element.EnumerateArray())
        {
            if (m.ValueKind == JsonValueKind.String)
            {
                string line = m.GetString()!;
                if (line.StartsWith("#version", StringComparison.Ordinal)) continue;
                int space = line.IndexOf(' ');
                if (space < 0) throw model["merges"].Error($"has \"{line}\", expected \"left right\"");
                merges.Add((line[..space], line[(space + 1)..]));
            }
            else if (m.ValueKind == JsonValueKind.Array && m.GetArrayLength() == 2)
            {
                merges.Add((m[0].GetString()!, m[1].GetString()!));
            }
            else
            {
                throw model["merges"].Error($"has {TokenizerJsonReader.Describe(m)}, expected \"left right\" or [left, right]");
            }
        }
        return merges;
    }
}
