namespace LlavaNative.Model.Tokenizers;

/// <summary>Per-token attributes, llama.cpp's <c>llama_token_attr</c> bits (include/llama.h).</summary>
[Flags]
internal enum TokenAttributes
{
    Undefined = 0,
    Unknown = 1 << 0,
    Unused = 1 << 1,
    Normal = 1 << 2,
    Control = 1 << 3,
    UserDefined = 1 << 4,
    Byte = 1 << 5,
    /// <summary>When found in text, white space before the token is dropped.</summary>
    LStrip = 1 << 7,
    /// <summary>When found in text, white space after the token is dropped.</summary>
    RStrip = 1 << 8,
}

/// <summary>
/// How llama.cpp turns GGUF token types into attributes and then adjusts them by token text when it loads a
/// vocabulary (llama_vocab::impl::load): end-of-generation and fill-in-the-middle tokens found by their text
/// become control tokens, a few chat markers become user-defined. These adjustments decide which tokens are
/// recognised in text, how they print, and which end generation.
/// </summary>
internal static class SpecialTokenRules
{
    /// <summary>Texts llama.cpp treats as end of generation wherever they occur in a vocabulary.</summary>
    public static readonly string[] EndOfGenerationTexts =
    [
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
        "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
        "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>", "<｜end▁of▁sentence｜>", "[e~[",
    ];

    // fill-in-the-middle markers; llama.cpp picks one token per role, the first it meets
    private static readonly string[] s_fimPrefix = ["<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>"];
    private static readonly string[] s_fimSuffix = ["<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>"];
    private static readonly string[] s_fimMiddle = ["<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>"];
    private static readonly string[] s_fimPad = ["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"];
    private static readonly string[] s_fimRepo = ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"];
    private static readonly string[] s_fimSeparator = ["<|file_sep|>"];

    // gpt-oss channel markers, always printed: llama.cpp forces them to user-defined
    private static readonly string[] s_alwaysUserDefined = ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"];

    public static TokenAttributes FromTokenType(int type) => type switch
    {
        1 => TokenAttributes.Normal,
        2 => TokenAttributes.Unknown,
        3 => TokenAttributes.Control,
        4 => TokenAttributes.UserDefined,
        5 => TokenAttributes.Unused,
        6 => TokenAttributes.Byte,
        _ => TokenAttributes.Undefined,
    };

    /// <summary>
    /// Applies llama.cpp's text-based adjustments to <paramref name="attributes"/> and returns the
    /// end-of-generation ids: <paramref name="eosId"/>, <paramref name="extraEndOfGeneration"/> (eot/eom from the
    /// file), FIM pad/repo/separator tokens and every token whose text is in <see cref="EndOfGenerationTexts"/>.
    /// </summary>
    /// <remarks>
    /// Where a vocabulary holds several candidates for one FIM role llama.cpp's choice depends on hash-map order;
    /// here the lowest id wins.
    /// </remarks>
    public static HashSet<int> Apply(string[] texts, TokenAttributes[] attributes, TokenLookup lookup, int eosId, int[] extraEndOfGeneration)
    {
        var endOfGeneration = new HashSet<int>();

        int FirstOf(string[] candidates)
        {
            int best = -1;
            foreach (string text in candidates)
                if (lookup.TryGetId(text, out int id) && (best < 0 || id < best))
                    best = id;
            return best;
        }

        foreach (string[] role in new[] { s_fimPrefix, s_fimSuffix, s_fimMiddle, s_fimPad, s_fimRepo, s_fimSeparator })
        {
            int id = FirstOf(role);
            if (id < 0)
                continue;
            attributes[id] |= TokenAttributes.Control;
            if (role == s_fimPad || role == s_fimRepo || role == s_fimSeparator)
                endOfGeneration.Add(id);
        }

        foreach (string text in EndOfGenerationTexts)
        {
            if (lookup.TryGetId(text, out int id))
            {
                attributes[id] |= TokenAttributes.Control;
                endOfGeneration.Add(id);
            }
        }

        foreach (string text in s_alwaysUserDefined)
            if (lookup.TryGetId(text, out int id))
                attributes[id] = TokenAttributes.UserDefined;

        if (eosId >= 0)
            endOfGeneration.Add(eosId);
        foreach (int id in extraEndOfGeneration)
            if (id >= 0 && id < texts.Length)
                endOfGeneration.Add(id);

        // o200k_harmony / solar-open: "<|end|>" ends a message, not the generation
        bool Has(string text) => lookup.TryGetId(text, out int id) && endOfGeneration.Contains(id);
        bool hasCall = Has("<|call|>") || Has("<|calls|>");
        if (Has("<|end|>") && ((Has("<|return|>") && hasCall) || (hasCall && Has("<|flush|>"))))
        {
            lookup.TryGetId("<|end|>", out int end);
            endOfGeneration.Remove(end);
            attributes[end] = TokenAttributes.UserDefined;
        }

        // gemma4 / paddleocr: "</s>" is an ordinary token there
        if (Has("<|tool_response>") && Has("</s>"))
        {
            lookup.TryGetId("</s>", out int s);
            endOfGeneration.Remove(s);
            attributes[s] = TokenAttributes.Normal;
        }

        return endOfGeneration;
    }

    /// <summary>
    /// llama.cpp's per-model strip flags (the end of llama_vocab::impl::load), chosen by pre-tokenizer,
    /// architecture or model name; applied after the special-token list is built, so they only change how
    /// special tokens found in text treat the white space around them.
    /// </summary>
    public static void ApplyStripRules(TokenAttributes[] attributes, TokenLookup lookup, int[] specialTokens,
        string? preTokenizer, string? architecture, string? modelName)
    {
        static bool ContainsAny(string? text, params string[] parts) => text is not null && parts.Any(p => text.Contains(p, StringComparison.Ordinal));
        void Set(string text, TokenAttributes flag, bool on)
        {
            if (!lookup.TryGetId(text, out int id))
                return;
            attributes[id] = on ? attributes[id] | flag : attributes[id] & ~flag;
        }

        string? name = modelName?.ToLowerInvariant();
        if (ContainsAny(preTokenizer, "jina-v2-de", "jina-v2-es", "jina-v2-code") || ContainsAny(architecture, "nomic-bert-moe", "jina-bert-v3"))
        {
            Set("<mask>", TokenAttributes.LStrip, true);
        }
        else if (ContainsAny(name, "phi-3", "phi3"))
        {
            foreach (int id in specialTokens)
                attributes[id] |= TokenAttributes.RStrip;
            Set("</s>", TokenAttributes.RStrip, true);
            foreach (string text in new[] { "<unk>", "<s>", "<|endoftext|>" })
                Set(text, TokenAttributes.RStrip, false);
        }
        else if (ContainsAny(name, "modern-bert"))
        {
            Set("[MASK]", TokenAttributes.LStrip, true);
        }
    }
}
