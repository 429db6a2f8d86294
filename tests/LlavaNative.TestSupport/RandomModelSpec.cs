using LlavaNative.Kernels.Tensors;

namespace LlavaNative.TestSupport;

/// <summary>Decoder architectures <see cref="RandomModels"/> can write (GGUF <c>general.architecture</c>).</summary>
public enum RandomModelArchitecture
{
    /// <summary>GGUF "llama": no q/k/v bias, separate output.weight, NORM (adjacent-pair) RoPE in llama.cpp.</summary>
    Llama,

    /// <summary>GGUF "qwen2": q/k/v biases, output tied to token_embd, NEOX RoPE in llama.cpp.</summary>
    Qwen2,
}

/// <summary>Where a random model's tokenizer comes from.</summary>
public enum RandomModelVocabulary
{
    /// <summary>
    /// The <c>tokenizer.*</c> metadata of a real vocabulary GGUF shipped with llama.cpp (by default
    /// ggml-vocab-llama-spm for llama, 32000 tokens; ggml-vocab-qwen2 for qwen2, ~151k tokens).
    /// </summary>
    Real,

    /// <summary>
    /// A small SentencePiece ("llama") vocabulary: &lt;unk&gt; &lt;s&gt; &lt;/s&gt;, the 256 byte tokens &lt;0x00&gt;…&lt;0xFF&gt;,
    /// then ASCII characters and "▁"-prefixed pieces, so any text tokenizes. Fast to write and to evaluate.
    /// </summary>
    Synthetic,
}

/// <summary>
/// Shape, numerics and tokenizer of a random decoder. Records compare by value, so equal specs share one file
/// in <see cref="RandomModels.GetPath"/>. Weights depend only on <see cref="Seed"/> and each tensor's name and
/// shape, so two specs differing only in architecture details (e.g. RoPE base) share every common tensor.
/// </summary>
public sealed record RandomModelSpec
{
    public required RandomModelArchitecture Architecture { get; init; }

    /// <summary>n_embd (<c>{arch}.embedding_length</c>).</summary>
    public int EmbeddingLength { get; init; } = 64;

    public int BlockCount { get; init; } = 2;
    public int HeadCount { get; init; } = 4;
    public int KvHeadCount { get; init; } = 2;

    /// <summary>n_ff (<c>{arch}.feed_forward_length</c>).</summary>
    public int FeedForwardLength { get; init; } = 160;

    /// <summary>Training context written to the file (<c>{arch}.context_length</c>).</summary>
    public int ContextLength { get; init; } = 4096;

    public required float RmsEpsilon { get; init; }
    public required float RopeFreqBase { get; init; }

    /// <summary>No output.weight: the LM head reuses token_embd.</summary>
    public required bool TiedOutput { get; init; }

    /// <summary>Write attn_q/k/v.bias (llama.cpp treats them as optional for both architectures).</summary>
    public required bool AttentionBias { get; init; }

    public RandomModelVocabulary Vocabulary { get; init; } = RandomModelVocabulary.Real;

    /// <summary>For <see cref="RandomModelVocabulary.Real"/>: the name in models/ggml-vocab-NAME.gguf; null = by architecture.</summary>
    public string? RealVocabularyName { get; init; }

    /// <summary>Token count of the <see cref="RandomModelVocabulary.Synthetic"/> vocabulary (at least 300).</summary>
    public int SyntheticVocabularySize { get; init; } = 512;

    /// <summary>F32 or F16 for 2-D weights; 1-D tensors (norms, biases) are always F32, as llama.cpp's converter does.</summary>
    public TensorType WeightType { get; init; } = TensorType.F32;

    public ulong Seed { get; init; } = 20240601;

    /// <summary>
    /// Std of q and k entries for a unit-RMS input: attention scores then have std ≈ QkScale² (4 by default),
    /// so attention is sharp and a wrong RoPE variant or base moves the logits a lot.
    /// </summary>
    public float QkScale { get; init; } = 2f;

    /// <summary>Intended standard deviation of the logits.</summary>
    public float LogitStd { get; init; } = 3f;

    public int HeadDim => EmbeddingLength / HeadCount;

    public string ArchitectureName => Architecture switch
    {
        RandomModelArchitecture.Llama => "llama",
        RandomModelArchitecture.Qwen2 => "qwen2",
        _ => throw new ArgumentOutOfRangeException(nameof(Architecture)),
    };

    public string VocabularyFileName => RealVocabularyName ?? (Architecture == RandomModelArchitecture.Llama ? "llama-spm" : "qwen2");

    /// <summary>
    /// Defaults of the architecture: llama RMS eps 1e-5, RoPE base 10000, untied, no bias; qwen2 eps 1e-6,
    /// base 1e6, tied, q/k/v bias. Dim 64, 2 layers, 4 heads / 2 kv heads (head_dim 16), ffn 160, real vocabulary.
    /// </summary>
    public static RandomModelSpec Tiny(RandomModelArchitecture architecture, RandomModelVocabulary vocabulary = RandomModelVocabulary.Real) =>
        architecture switch
        {
            RandomModelArchitecture.Llama => new RandomModelSpec
            {
                Architecture = architecture, RmsEpsilon = 1e-5f, RopeFreqBase = 10000f, TiedOutput = false,
                AttentionBias = false, Vocabulary = vocabulary,
            },
            RandomModelArchitecture.Qwen2 => new RandomModelSpec
            {
                Architecture = architecture, RmsEpsilon = 1e-6f, RopeFreqBase = 1e6f, TiedOutput = true,
                AttentionBias = true, Vocabulary = vocabulary,
            },
            _ => throw new ArgumentOutOfRangeException(nameof(architecture)),
        };

    /// <summary>
    /// Every row length a multiple of 256 so all K-quants apply to every matrix: dim 256, ffn 512, 4 / 2 heads
    /// (head_dim 64), 2 layers; synthetic vocabulary by default (512 rows) to keep the file small.
    /// </summary>
    public static RandomModelSpec Quantizable(RandomModelArchitecture architecture, RandomModelVocabulary vocabulary = RandomModelVocabulary.Synthetic) =>
        Tiny(architecture, vocabulary) with { EmbeddingLength = 256, FeedForwardLength = 512, HeadCount = 4, KvHeadCount = 2 };

    internal void Validate()
    {
        if (EmbeddingLength <= 0 || HeadCount <= 0 || EmbeddingLength % HeadCount != 0)
            throw new ArgumentException($"embedding length {EmbeddingLength} is not a multiple of the head count {HeadCount}");
        if (KvHeadCount <= 0 || HeadCount % KvHeadCount != 0)
            throw new ArgumentException($"head count {HeadCount} is not a multiple of the kv head count {KvHeadCount}");
        if (HeadDim % 2 != 0)
            throw new ArgumentException($"head_dim {HeadDim} must be even for RoPE");
        if (BlockCount <= 0 || FeedForwardLength <= 0 || ContextLength <= 0)
            throw new ArgumentException("block count, feed-forward length and context length must be positive");
        if (WeightType is not (TensorType.F32 or TensorType.F16))
            throw new ArgumentException($"weight type {WeightType}: random models are written as F32 or F16 (quantize them with llama.cpp)");
        if (Vocabulary == RandomModelVocabulary.Synthetic && SyntheticVocabularySize < 300)
            throw new ArgumentException("the synthetic vocabulary needs at least 300 tokens (3 special + 256 bytes + pieces)");
    }
}
