using System.Text;
using System.Text.Json;

namespace LlavaNative.Model.Tokenizers.HuggingFace;

/// <summary>
/// A tokenizer.json pipeline with Hugging Face tokenizers' semantics (the Rust library behind
/// <c>PreTrainedTokenizerFast</c>): added tokens are split out, the rest is normalized, pre-tokenized and
/// tokenized by the BPE model, then the post-processor adds special tokens; decoding runs the decoder chain.
/// Immutable after construction and safe to use from several threads.
/// </summary>
/// <remarks>
/// Not modelled: truncation and padding settings (an inference engine never wants them applied implicitly),
/// offsets, pair sequences, BPE dropout. Models other than BPE (WordPiece, Unigram, WordLevel) are refused.
/// </remarks>
internal sealed class HuggingFaceTokenizer
{
    private readonly TextNormalizer? _normalizer;
    private readonly PreTokenizerStep? _preTokenizer;
    private readonly TokenDecoder? _decoder;
    private readonly BpeModel _model;
    private readonly AddedVocabulary _added = new();

    /// <param name="extraAddedTokens">Added after tokenizer.json's own (tokenizer_config.json's, as transformers adds them).</param>
    public HuggingFaceTokenizer(string json, string file, IEnumerable<AddedToken>? extraAddedTokens = null)
    {
        using var document = ParseDocument(json, file);
        var root = new TokenizerJsonReader(document.RootElement, file, "");
        if (root.Has("version") && root["version"].String() != "1.0")
            throw root["version"].Error($"is \"{root["version"].String()}\"; only tokenizer.json version 1.0 is known");

        _normalizer = TextNormalizer.Parse(root["normalizer"]);
        _preTokenizer = PreTokenizerStep.Parse(root["pre_tokenizer"]);
        PostProcessor? postProcessor = PostProcessor.Parse(root["post_processor"]);
        _decoder = TokenDecoder.Parse(root["decoder"]);
        var model = root["model"];
        (_model, int modelVocabularyCount) = ParseModel(model);

        var added = new List<AddedToken>();
        if (!root["added_tokens"].IsNull)
            foreach (var token in root["added_tokens"].Items())
                added.Add(ParseAddedToken(token));
        if (extraAddedTokens is not null)
            added.AddRange(extraAddedTokens);
        _added.Add(added, _model, modelVocabularyCount, _normalizer);

        // the post-processor only matters as the ids it puts around a single sequence
        List<int> layout = postProcessor?.Wrap([PostProcessor.SequenceMarker]) ?? [PostProcessor.SequenceMarker];
        int marker = layout.IndexOf(PostProcessor.SequenceMarker);
        Prefix = marker < 0 ? layout.ToArray() : layout.Take(marker).ToArray();
        Suffix = marker < 0 ? [] : layout.Skip(marker + 1).ToArray();

        VocabSize = Math.Max(_model.IdToToken.Length, _added.ById.Count == 0 ? 0 : _added.ById.Keys.Max() + 1);
    }

    public int VocabSize { get; }

    /// <summary>Ids added before the text when special tokens are asked for (e.g. Llama's BOS).</summary>
    public int[] Prefix { get; private set; }

    /// <summary>Ids added after the text when special tokens are asked for.</summary>
    public int[] Suffix { get; private set; }

    public string? UnknownToken => _model.UnknownToken;

    public IReadOnlyDictionary<int, AddedToken> AddedTokens => _added.ById;

    /// <summary>tokenizers' id_to_token as decode uses it: the added token (normalized form if any), else the model's.</summary>
    public string? IdToToken(int id) =>
        _added.DecodingText(id) ?? ((uint)id < (uint)_model.IdToToken.Length ? _model.IdToToken[id] : null);

    /// <summary>The token's id: added tokens first, then the model vocabulary (tokenizers' token_to_id).</summary>
    public bool TryGetId(string token, out int id) => _added.TryGetId(token, out id) || _model.TryGetId(token, out id);

    public bool IsSpecial(int id) => _added.IsSpecial(id);

    public bool IsByteToken(int id) =>
        _model.ByteFallback && IdToToken(id) is { } t && ByteFallbackDecoder.TryParseByteToken(t, out _) && !_added.ById.ContainsKey(id);

    /// <summary>tokenizers' <c>encode(text, add_special_tokens)</c>; with <paramref name="specialAsText"/> special added tokens are not recognised.</summary>
    public void Encode(string text, List<int> output, bool addSpecialTokens, bool specialAsText = false)
    {
        text = TextSplitting.ReplaceLoneSurrogates(text);
        List<TextSplit> splits = _added.ExtractAndNormalize(text, _normalizer, specialAsText);
        _preTokenizer?.Apply(splits);

        if (addSpecialTokens)
            output.AddRange(Prefix);
        foreach (var split in splits)
        {
            if (split.IsToken)
                output.Add(split.TokenId);
            else
                _model.Tokenize(split.Text, output);
        }
        if (addSpecialTokens)
            output.AddRange(Suffix);
    }

    /// <summary>tokenizers' <c>decode(ids, skip_special_tokens)</c>: ids without a token are left out.</summary>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens)
    {
        var tokens = new List<string>(ids.Length);
        foreach (int id in ids)
        {
            if (IdToToken(id) is not { } token)
                continue;
            if (skipSpecialTokens && _added.IsSpecialContent(token))
                continue;
            tokens.Add(token);
        }
        return _decoder is null ? string.Join(" ", tokens) : string.Concat(_decoder.DecodeChain(tokens));
    }

    /// <summary>
    /// The bytes <paramref name="id"/> prints as in the middle of a stream (see <see cref="TokenDecoder.TokenBytes"/>);
    /// without a decoder, its text.
    /// </summary>
    public byte[] TokenBytes(int id)
    {
        if (IdToToken(id) is not { } token)
            return [];
        byte[]? bytes = null;
        _decoder?.TokenBytes(ref token, ref bytes);
        return bytes ?? Encoding.UTF8.GetBytes(token);
    }

    /// <summary>
    /// transformers' LlamaTokenizerFast.update_post_processor, applied while loading: the post-processor becomes
    /// BOS (when <paramref name="addBos"/>) + text + EOS (when <paramref name="addEos"/>).
    /// </summary>
    public void ReplacePostProcessorWithBosEos(bool addBos, bool addEos, int bosId, int eosId)
    {
        Prefix = addBos ? [bosId] : [];
        Suffix = addEos ? [eosId] : [];
    }

    private static JsonDocument ParseDocument(string json, string file)
    {
        try
        {
            return JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new HuggingFaceTokenizerException(file, $"is not valid JSON: {e.Message}");
        }
    }

    private static (BpeModel Model, int VocabularyCount) ParseModel(TokenizerJsonReader model)
    {
        if (model.IsNull)
            throw model.Error("is missing");
        string type = model.Has("type") ? model["type"].String() : model.Has("merges") ? "BPE" : "";
        if (type != "BPE")
            throw new NotSupportedException($"{model.File}: model type '{type}' is not supported; supported: BPE");

        // vocab and merges hold ~150k entries each: read the elements directly, naming a path only for an error
        var vocabJson = model["vocab"];
        if (vocabJson.Element.ValueKind != JsonValueKind.Object)
            throw vocabJson.Error($"is {TokenizerJsonReader.Describe(vocabJson.Element)}, expected an object");
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var entry in vocabJson.Element.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt32(out int value) || value < 0)
                throw vocabJson[entry.Name].Error($"is {TokenizerJsonReader.Describe(entry.Value)}, expected a token id");
            vocab[entry.Name] = value;
        }

        var merges = new List<(string, string)>();
        var mergesJson = model["merges"];
        if (!mergesJson.IsNull)
        {
            if (mergesJson.Element.ValueKind != JsonValueKind.Array)
                throw mergesJson.Error($"is {TokenizerJsonReader.Describe(mergesJson.Element)}, expected an array");
            int index = 0;
            foreach (var merge in mergesJson.Element.EnumerateArray())
            {
                HuggingFaceTokenizerException Bad(string problem) =>
                    new TokenizerJsonReader(merge, model.File, $"{mergesJson.Path}[{index}]").Error(problem);
                if (merge.ValueKind == JsonValueKind.String)
                {
                    // the legacy "left right" form: exactly one space; "#version" lines are comments
                    string line = merge.GetString()!;
                    if (!line.StartsWith("#version", StringComparison.Ordinal))
                    {
                        int space = line.IndexOf(' ');
                        if (space < 0 || line.IndexOf(' ', space + 1) >= 0)
                            throw Bad($"is \"{line}\", expected two tokens separated by one space");
                        merges.Add((line[..space], line[(space + 1)..]));
                    }
                }
                else if (merge.ValueKind == JsonValueKind.Array && merge.GetArrayLength() == 2
                         && merge[0].ValueKind == JsonValueKind.String && merge[1].ValueKind == JsonValueKind.String)
                {
                    merges.Add((merge[0].GetString()!, merge[1].GetString()!));
                }
                else
                {
                    throw Bad($"is {TokenizerJsonReader.Describe(merge)}, expected \"left right\" or [left, right]");
                }
                index++;
            }
        }

        var bpe = new BpeModel(vocab, merges, model["unk_token"].StringOrNull(), model["continuing_subword_prefix"].StringOrNull(),
            model["end_of_word_suffix"].StringOrNull(), model["fuse_unk"].Bool(false), model["byte_fallback"].Bool(false),
            model["ignore_merges"].Bool(false), model.File);
        return (bpe, vocab.Count);
    }

    public static AddedToken ParseAddedToken(TokenizerJsonReader token) => new(
        token["content"].String(),
        token["special"].Bool(false),
        token["single_word"].Bool(false),
        token["lstrip"].Bool(false),
        token["rstrip"].Bool(false),
        token["normalized"].BoolOrNull());
}
