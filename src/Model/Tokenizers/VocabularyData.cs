using LlavaNative.Model.Tokenizers.HuggingFace;

namespace LlavaNative.Model.Tokenizers;

/// <summary>
/// Everything a tokenizer needs, independent of where it came from (GGUF <c>tokenizer.ggml.*</c> keys, or a
/// Hugging Face tokenizer.json read by <see cref="HuggingFaceTokenizerFiles"/>). Token types use llama.cpp's
/// values: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
/// </summary>
public sealed class VocabularyData
{
    /// <summary>"llama" (SentencePiece) or "gpt2" (byte-level BPE), as in <c>tokenizer.ggml.model</c>; "huggingface" for a tokenizer.json.</summary>
    public required string Model { get; init; }

    /// <summary>Pre-tokenizer name (<c>tokenizer.ggml.pre</c>), e.g. "qwen2", "llama-bpe", "default".</summary>
    public string? PreTokenizer { get; init; }

    public required string[] Tokens { get; init; }
    public float[]? Scores { get; init; }
    public int[]? TokenTypes { get; init; }

    /// <summary>BPE merges "left right", highest priority first.</summary>
    public string[]? Merges { get; init; }

    // Special ids and flags are null when the file does not state them: the tokenizer then applies
    // llama.cpp's per-model / per-pre-tokenizer defaults (llama-vocab.cpp load), e.g. SPM bos 1 eos 2 unk 0.
    public int? BosId { get; init; }
    public int? EosId { get; init; }
    public int? UnknownId { get; init; }
    public int? PaddingId { get; init; }
    public int? SeparatorId { get; init; }

    /// <summary>Extra end-of-generation ids (<c>tokenizer.ggml.eot_token_id</c>, <c>eom_token_id</c>).</summary>
    public int[] ExtraEndOfGenerationIds { get; init; } = [];

    public bool? AddBos { get; init; }
    public bool? AddEos { get; init; }
    public bool? AddSpacePrefix { get; init; }

    /// <summary>
    /// <c>general.name</c> and <c>general.architecture</c>: llama.cpp adjusts a few special tokens by model name
    /// (Phi-3's control tokens swallow the white space after them).
    /// </summary>
    public string? ModelName { get; init; }
    public string? Architecture { get; init; }

    /// <summary>Chat template (<c>tokenizer.chat_template</c>), if the file carries one.</summary>
    public string? ChatTemplate { get; init; }

    /// <summary>
    /// A tokenizer.json pipeline (Hugging Face tokenizers' semantics instead of llama.cpp's); set by
    /// <see cref="HuggingFaceTokenizerFiles.Load"/>, with <see cref="Model"/> "huggingface".
    /// </summary>
    internal HuggingFaceTokenizer? HuggingFace { get; init; }
}
