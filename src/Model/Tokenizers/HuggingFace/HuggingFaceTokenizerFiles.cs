using System.Text.Json;

namespace LlavaNative.Model.Tokenizers.HuggingFace;

/// <summary>
/// The tokenizer of a Hugging Face model folder: <c>tokenizer.json</c> (the pipeline) with what transformers adds
/// from <c>tokenizer_config.json</c> (bos/eos tokens, add_bos_token/add_eos_token for the Llama-family classes,
/// added_tokens_decoder, chat_template), <c>generation_config.json</c> (eos ids that end generation) and the
/// processor's chat template (<c>chat_template.json</c> or <c>chat_template.jinja</c>). A folder with only a
/// SentencePiece <c>tokenizer.model</c> (older Llama/Vicuna/LLaVA checkpoints) gets transformers' slow
/// LlamaTokenizer behaviour (legacy: "▁" after every added token), plus <c>added_tokens.json</c>.
/// </summary>
public static class HuggingFaceTokenizerFiles
{
    public const string TokenizerJson = "tokenizer.json";
    public const string TokenizerModel = "tokenizer.model";
    public const string AddedTokensJson = "added_tokens.json";
    public const string TokenizerConfigJson = "tokenizer_config.json";
    public const string GenerationConfigJson = "generation_config.json";
    public const string ChatTemplateJson = "chat_template.json";
    public const string ChatTemplateJinja = "chat_template.jinja";

    /// <summary>transformers tokenizer classes whose fast version rebuilds its post-processor from add_bos_token/add_eos_token.</summary>
    private static readonly HashSet<string> s_bosEosClasses =
    [
        "LlamaTokenizer", "LlamaTokenizerFast", "CodeLlamaTokenizer", "CodeLlamaTokenizerFast", "GemmaTokenizer", "GemmaTokenizerFast",
    ];

    /// <summary>Whether <paramref name="folder"/> holds a tokenizer.json or a tokenizer.model.</summary>
    public static bool Exists(string folder) =>
        File.Exists(Path.Combine(folder, TokenizerJson)) || File.Exists(Path.Combine(folder, TokenizerModel));

    /// <summary>Loads the folder's tokenizer as a ready <see cref="Tokenizer"/>.</summary>
    public static Tokenizer LoadTokenizer(string folder) => Tokenizer.FromVocabulary(Load(folder));

    /// <summary>
    /// Reads the tokenizer files of <paramref name="folder"/> into a <see cref="VocabularyData"/> for
    /// <see cref="Tokenizer.FromVocabulary"/>: tokenizer.json when there is one, else tokenizer.model. A path to
    /// either file is accepted too (its folder is used).
    /// </summary>
    public static VocabularyData Load(string folder)
    {
        if (File.Exists(folder) && Path.GetFileName(folder) is TokenizerJson or TokenizerModel)
            folder = Path.GetDirectoryName(Path.GetFullPath(folder))!;
        string tokenizerPath = Path.Combine(folder, TokenizerJson);
        if (!File.Exists(tokenizerPath))
        {
            if (File.Exists(Path.Combine(folder, TokenizerModel)))
                return LoadSentencePiece(folder);
            throw new FileNotFoundException($"{folder}: no {TokenizerJson} or {TokenizerModel}", tokenizerPath);
        }

        using JsonDocument? config = ReadOptional(Path.Combine(folder, TokenizerConfigJson));
        var configReader = config is null ? default : new TokenizerJsonReader(config.RootElement, Path.Combine(folder, TokenizerConfigJson), "");
        bool hasConfig = config is not null;

        // transformers' fast-tokenizer init: every added_tokens_decoder entry (its properties win), then named
        // special tokens that are not added tokens yet
        var extraAdded = new List<AddedToken>();
        string? bosText = null, eosText = null, unkText = null, padText = null;
        bool? addBos = null, addEos = null;
        string? tokenizerClass = null;
        if (hasConfig)
        {
            bosText = SpecialTokenText(configReader["bos_token"]);
            eosText = SpecialTokenText(configReader["eos_token"]);
            unkText = SpecialTokenText(configReader["unk_token"]);
            padText = SpecialTokenText(configReader["pad_token"]);
            addBos = configReader["add_bos_token"].BoolOrNull();
            addEos = configReader["add_eos_token"].BoolOrNull();
            tokenizerClass = configReader["tokenizer_class"].StringOrNull();

            // transformers' SPECIAL_TOKENS_ATTRIBUTES order
            var named = new List<string>();
            foreach (string? text in new[] { bosText, eosText, unkText, SpecialTokenText(configReader["sep_token"]), padText,
                         SpecialTokenText(configReader["cls_token"]), SpecialTokenText(configReader["mask_token"]) })
                if (text is not null) named.Add(text);
            if (!configReader["additional_special_tokens"].IsNull)
                foreach (var item in configReader["additional_special_tokens"].Items())
                    if (SpecialTokenText(item) is { } text) named.Add(text);

            if (!configReader["added_tokens_decoder"].IsNull)
            {
                foreach (var (key, value) in configReader["added_tokens_decoder"].Members()
                    .OrderBy(m => int.TryParse(m.Key, out int id) ? id : int.MaxValue))
                {
                    var token = HuggingFaceTokenizer.ParseAddedToken(value);
                    extraAdded.Add(token with { Special = token.Special || named.Contains(token.Content) });
                }
            }
            foreach (string text in named)
                if (!extraAdded.Any(t => t.Content == text))
                    extraAdded.Add(new AddedToken(text, Special: true, Normalized: false));
        }

        var tokenizer = new HuggingFaceTokenizer(File.ReadAllText(tokenizerPath), tokenizerPath, extraAdded);
        if (tokenizerClass is not null && s_bosEosClasses.Contains(tokenizerClass))
        {
            // LlamaTokenizerFast's defaults: add_bos_token true, add_eos_token false
            int bos = bosText is not null && tokenizer.TryGetId(bosText, out int b) ? b : -1;
            int eos = eosText is not null && tokenizer.TryGetId(eosText, out int e) ? e : -1;
            bool wantBos = addBos ?? true, wantEos = addEos ?? false;
            if (wantBos && bos < 0)
                throw configReader.Error($"asks for add_bos_token but bos_token {(bosText is null ? "is not set" : $"'{bosText}' is not a token")}");
            if (wantEos && eos < 0)
                throw configReader.Error($"asks for add_eos_token but eos_token {(eosText is null ? "is not set" : $"'{eosText}' is not a token")}");
            tokenizer.ReplacePostProcessorWithBosEos(wantBos, wantEos, bos, eos);
        }

        int? IdOf(string? text) => text is not null && tokenizer.TryGetId(text, out int id) ? id : null;
        int? bosId = IdOf(bosText) ?? (tokenizer.Prefix.Length > 0 ? tokenizer.Prefix[0] : null);
        int? eosId = IdOf(eosText);

        var endOfGeneration = new List<int>();
        var generationEos = ReadGenerationEos(Path.Combine(folder, GenerationConfigJson));
        endOfGeneration.AddRange(generationEos);
        eosId ??= generationEos.Count > 0 ? generationEos[0] : null;
        foreach (string text in SpecialTokenRules.EndOfGenerationTexts)
            if (tokenizer.TryGetId(text, out int id) && tokenizer.IsSpecial(id))
                endOfGeneration.Add(id);

        int n = tokenizer.VocabSize;
        var tokens = new string[n];
        var types = new int[n];
        string? unk = tokenizer.UnknownToken;
        for (int id = 0; id < n; id++)
        {
            string? text = tokenizer.IdToToken(id);
            tokens[id] = text ?? $"[EMPTY_{id}]";
            types[id] = text is null ? 5
                : tokenizer.AddedTokens.TryGetValue(id, out var added) ? (added.Special ? 3 : 4)
                : text == unk ? 2
                : tokenizer.IsByteToken(id) ? 6
                : 1;
        }

        return new VocabularyData
        {
            Model = "huggingface",
            Tokens = tokens,
            TokenTypes = types,
            BosId = bosId,
            EosId = eosId,
            UnknownId = IdOf(unkText) ?? IdOf(unk),
            PaddingId = IdOf(padText),
            ExtraEndOfGenerationIds = endOfGeneration.Distinct().ToArray(),
            AddBos = tokenizer.Prefix.Length > 0,
            AddEos = tokenizer.Suffix.Length > 0,
            ChatTemplate = ReadChatTemplate(folder, hasConfig ? configReader : null),
            HuggingFace = tokenizer,
        };
    }

    /// <summary>
    /// tokenizer.model (+ tokenizer_config.json, added_tokens.json, generation_config.json): the pieces become a
    /// SentencePiece vocabulary for our llama.cpp-exact encoder, which behaves like transformers' slow LlamaTokenizer
    /// with legacy=True: text between added tokens gets the "▁" prefix, BOS when add_bos_token (default true), EOS
    /// when add_eos_token (default false). Added tokens beyond the pieces are control tokens when special, else
    /// user-defined (always recognised in text).
    /// </summary>
    internal static VocabularyData LoadSentencePiece(string folder)
    {
        string modelPath = Path.Combine(folder, TokenizerModel);
        var model = SentencePieceModelFile.Read(modelPath);
        model.CheckSupported(modelPath);

        var tokens = new List<string>(model.Pieces);
        var scores = new List<float>(model.Scores);
        var types = new List<int>(model.Types);
        var pieceIds = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < tokens.Count; i++)
            pieceIds.TryAdd(tokens[i], i);

        string configPath = Path.Combine(folder, TokenizerConfigJson);
        using JsonDocument? config = ReadOptional(configPath);
        var c = config is null ? (TokenizerJsonReader?)null : new TokenizerJsonReader(config.RootElement, configPath, "");

        // added tokens with their ids: added_tokens.json {"content": id}, then tokenizer_config.json added_tokens_decoder
        var added = new SortedDictionary<int, (string Content, bool Special)>();
        string addedPath = Path.Combine(folder, AddedTokensJson);
        using (JsonDocument? addedJson = ReadOptional(addedPath))
        {
            if (addedJson is not null)
                foreach (var (content, id) in new TokenizerJsonReader(addedJson.RootElement, addedPath, "").Members())
                    added[id.Int()] = (content, false);
        }
        var named = new HashSet<string>(StringComparer.Ordinal);
        if (c is { } cfg)
        {
            foreach (string key in new[] { "bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token" })
                if (SpecialTokenText(cfg[key]) is { } text) named.Add(text);
            if (!cfg["additional_special_tokens"].IsNull)
                foreach (var item in cfg["additional_special_tokens"].Items())
                    if (SpecialTokenText(item) is { } text) named.Add(text);
            if (!cfg["added_tokens_decoder"].IsNull)
            {
                foreach (var (key, value) in cfg["added_tokens_decoder"].Members())
                {
                    if (!int.TryParse(key, out int id) || id < 0)
                        throw value.Error("has a key that is not a token id");
                    var token = HuggingFaceTokenizer.ParseAddedToken(value);
                    added[id] = (token.Content, token.Special);
                }
            }
        }
        foreach (var (id, (content, special)) in added)
        {
            if (id < model.Pieces.Length)
                continue; // the piece itself (<unk>, <s>, </s>): sentencepiece's own type stays
            while (tokens.Count < id)
            {
                tokens.Add($"[EMPTY_{tokens.Count}]");
                scores.Add(0);
                types.Add(5);
            }
            tokens.Add(content);
            scores.Add(0);
            types.Add(special || named.Contains(content) ? 3 : 4);
            pieceIds.TryAdd(content, id);
        }

        int? IdOf(string key)
        {
            if (c is not { } cfg || SpecialTokenText(cfg[key]) is not { } text)
                return null;
            return pieceIds.TryGetValue(text, out int id) ? id : throw cfg[key].Error($"is '{text}', which is not a token");
        }
        int? Valid(int id) => id >= 0 && id < tokens.Count ? id : null;
        var generationEos = ReadGenerationEos(Path.Combine(folder, GenerationConfigJson));

        return new VocabularyData
        {
            Model = "llama",
            Tokens = [.. tokens],
            Scores = [.. scores],
            TokenTypes = [.. types],
            BosId = IdOf("bos_token") ?? Valid(model.BosId),
            EosId = IdOf("eos_token") ?? Valid(model.EosId),
            UnknownId = IdOf("unk_token") ?? Valid(model.UnknownId),
            PaddingId = IdOf("pad_token") ?? Valid(model.PadId),
            ExtraEndOfGenerationIds = [.. generationEos.Where(id => id >= 0 && id < tokens.Count)],
            AddBos = c?["add_bos_token"].BoolOrNull() ?? true,
            AddEos = c?["add_eos_token"].BoolOrNull() ?? false,
            AddSpacePrefix = model.AddDummyPrefix,
            ChatTemplate = ReadChatTemplate(folder, c),
        };
    }

    /// <summary>A special token in a config: a string, or an AddedToken object with "content"; null when unset.</summary>
    private static string? SpecialTokenText(TokenizerJsonReader value)
    {
        if (value.IsNull)
            return null;
        if (value.Element.ValueKind == JsonValueKind.String)
            return value.String();
        if (value.Element.ValueKind == JsonValueKind.Object)
            return value["content"].String();
        throw value.Error("is neither a string nor an {\"content\": …} object");
    }

    private static JsonDocument? ReadOptional(string path)
    {
        if (!File.Exists(path))
            return null;
        try
        {
            return JsonDocument.Parse(File.ReadAllText(path), new JsonDocumentOptions { AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new HuggingFaceTokenizerException(path, $"is not valid JSON: {e.Message}");
        }
    }

    /// <summary>generation_config.json's eos_token_id: one id or a list.</summary>
    private static List<int> ReadGenerationEos(string path)
    {
        var ids = new List<int>();
        using JsonDocument? document = ReadOptional(path);
        if (document is null)
            return ids;
        var eos = new TokenizerJsonReader(document.RootElement, path, "")["eos_token_id"];
        if (eos.IsNull)
            return ids;
        if (eos.Element.ValueKind == JsonValueKind.Array)
            ids.AddRange(eos.Items().Select(i => i.Int()));
        else
            ids.Add(eos.Int());
        return ids;
    }

    /// <summary>
    /// The chat template: the processor's (chat_template.json, then chat_template.jinja) — for LLaVA checkpoints the
    /// one that places images — else tokenizer_config.json's chat_template (a string, or a list of named templates of
    /// which "default" is taken, else the first).
    /// </summary>
    private static string? ReadChatTemplate(string folder, TokenizerJsonReader? config)
    {
        string processorPath = Path.Combine(folder, ChatTemplateJson);
        using (JsonDocument? processor = ReadOptional(processorPath))
        {
            if (processor is not null)
            {
                var template = new TokenizerJsonReader(processor.RootElement, processorPath, "")["chat_template"];
                if (!template.IsNull)
                    return template.String();
            }
        }
        string jinjaPath = Path.Combine(folder, ChatTemplateJinja);
        if (File.Exists(jinjaPath))
            return File.ReadAllText(jinjaPath);
        if (config is not { } c || c["chat_template"].IsNull)
            return null;
        var value = c["chat_template"];
        if (value.Element.ValueKind == JsonValueKind.String)
            return value.String();
        var named = value.Items().Select(t => (Name: t["name"].String(), Template: t["template"].String())).ToList();
        if (named.Count == 0)
            return null;
        return named.FirstOrDefault(t => t.Name == "default").Template ?? named[0].Template;
    }
}
