namespace LlavaNative.Model.Tokenizers;

/// <summary>
/// Everything a tokenizer needs, independent of where it came from (GGUF <c>tokenizer.ggml.*</c> keys,
/// or later tokenizer.json). Token types use llama.cpp's values: 1 normal, 2 unknown, 3 control,
/// 4 user-defined, 5 unused, 6 byte.
/// </summary>
public sealed class VocabularyData
{
    /// <summary>"llama" (SentencePiece) or "gpt2" (byte-level BPE), as in <c>tokenizer.ggml.model</c>.</summary>
    public required string Model { get; init; }

    /// <summary>Pre-tokenizer name (<c>tokenizer.ggml.pre</c>), e.g. "qwen2", "llama-bpe", "default".</summary>
    public string? PreTokenizer { get; init; }

    public required string[] Tokens { get; init; }
    public float[]? Scores { get; init; }
    public int[]? TokenTypes { get; init; }

    /// <summary>BPE merges "left right", highest priority first.</summary>
    public string[]? Merges { get; init; }

    public int BosId { get; init; } = -1;
    public int EosId { get; init; } = -1;
    public int UnknownId { get; init; } = -1;
    public int PaddingId { get; init; } = -1;
    public int SeparatorId { get; init; } = -1;

    /// <summary>Extra end-of-generation ids (<c>tokenizer.ggml.eot_token_id</c>, <c>eom_token_id</c>).</summary>
    public int[] ExtraEndOfGenerationIds { get; init; } = [];

    // null: the file does not say, and the tokenizer applies llama.cpp's default for the model and
    // pre-tokenizer (SPM: add BOS and a space prefix; BPE "llama-bpe"/"llama3": add BOS; otherwise no)
    public bool? AddBos { get; init; }
    public bool? AddEos { get; init; }
    public bool? AddSpacePrefix { get; init; }

    /// <summary>Chat template (<c>tokenizer.chat_template</c>), if the file carries one.</summary>
    public string? ChatTemplate { get; init; }
}
