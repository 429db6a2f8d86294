using LlavaNative.Kernels.Cpu.Ops;
using LlavaNative.Model.Formats.Gguf;
using LlavaNative.Model.Formats.HuggingFace;

namespace LlavaNative.Model.Language;

/// <summary>Hyper-parameters of a Llama-family decoder (Llama/Vicuna, Qwen2), whatever file it came from.</summary>
public sealed record DecoderConfig
{
    /// <summary>"llama" or "qwen2".</summary>
    public required string Architecture { get; init; }
    public required int VocabSize { get; init; }
    public required int Dim { get; init; }
    public required int Layers { get; init; }
    public required int Heads { get; init; }
    public required int KvHeads { get; init; }
    public required int HeadDim { get; init; }
    public required int FeedForward { get; init; }
    public required int ContextLength { get; init; }
    public required float NormEps { get; init; }
    public required float RopeFreqBase { get; init; }
    /// <summary>Rotated dimensions per head (≤ HeadDim; fewer means partial rotary).</summary>
    public required int RopeDims { get; init; }
    public required RopeMode RopeMode { get; init; }

    public int QueryDim => Heads * HeadDim;
    public int KvDim => KvHeads * HeadDim;

    public static readonly string[] SupportedArchitectures = ["llama", "qwen2"];

    /// <summary>Reads <c>{arch}.*</c> keys; sizes not stated in metadata come from tensor shapes.</summary>
    public static DecoderConfig FromGguf(GgufFile file)
    {
        string arch = file.GetString("general.architecture");
        if (!SupportedArchitectures.Contains(arch))
            throw new GgufFormatException(file.Path, $"architecture '{arch}' is not a supported decoder (supported: {string.Join(", ", SupportedArchitectures)})");

        int dim = file.GetInt32($"{arch}.embedding_length");
        int layers = file.GetInt32($"{arch}.block_count");
        int heads = file.GetInt32($"{arch}.attention.head_count");
        int kvHeads = file.GetInt32($"{arch}.attention.head_count_kv", heads);
        if (dim <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || heads % kvHeads != 0)
            throw new GgufFormatException(file.Path, $"inconsistent sizes: embedding_length {dim}, block_count {layers}, head_count {heads}, head_count_kv {kvHeads} (head_count must be a positive multiple of head_count_kv)");
        if (dim > 1 << 16 || layers > 1024 || heads > 1024)
            throw new GgufFormatException(file.Path, $"absurd sizes: embedding_length {dim}, block_count {layers}, head_count {heads}");
        int headDim = file.GetInt32($"{arch}.attention.key_length", dim / heads);
        if (headDim <= 0 || headDim % 2 != 0 || headDim > 1024)
            throw new GgufFormatException(file.Path, $"head dimension {headDim} is invalid (must be even, 2..1024)");
        int ropeDims = file.GetInt32($"{arch}.rope.dimension_count", headDim);
        if (ropeDims <= 0 || ropeDims > headDim || ropeDims % 2 != 0)
            throw new GgufFormatException(file.Path, $"{arch}.rope.dimension_count = {ropeDims} is invalid for head dimension {headDim}");

        var embedding = file.GetTensor("token_embd.weight");
        int vocab = file.Contains($"{arch}.vocab_size") ? file.GetInt32($"{arch}.vocab_size") : (int)embedding.Dimensions[^1];
        int ffn = file.GetInt32($"{arch}.feed_forward_length");
        int context = file.GetInt32($"{arch}.context_length", 4096);
        if (ffn <= 0 || vocab <= 0 || context <= 0)
            throw new GgufFormatException(file.Path, $"invalid sizes: feed_forward_length {ffn}, vocab {vocab}, context_length {context}");

        return new DecoderConfig
        {
            Architecture = arch,
            VocabSize = vocab,
            Dim = dim,
            Layers = layers,
            Heads = heads,
            KvHeads = kvHeads,
            HeadDim = headDim,
            FeedForward = ffn,
            ContextLength = context,
            NormEps = file.GetFloat32($"{arch}.attention.layer_norm_rms_epsilon", 1e-5f),
            RopeFreqBase = file.GetFloat32($"{arch}.rope.freq_base", arch == "qwen2" ? 1e6f : 10000f),
            RopeDims = ropeDims,
            // GGUF llama q/k rows were permuted at conversion, so it uses adjacent pairs; qwen2 was not permuted.
            RopeMode = arch == "qwen2" ? RopeMode.Neox : RopeMode.Normal,
        };
    }

    /// <summary>
    /// From a Hugging Face text config (defaults already applied). HF Llama and Qwen2 checkpoints store q/k
    /// unpermuted and rotate with rotate_half, i.e. NEOX pairs (i, i + d/2), for both architectures.
    /// </summary>
    public static DecoderConfig FromHuggingFace(HfTextConfig text) => new()
    {
        Architecture = text.ModelType,
        VocabSize = text.VocabSize,
        Dim = text.HiddenSize,
        Layers = text.NumHiddenLayers,
        Heads = text.NumAttentionHeads,
        KvHeads = text.NumKeyValueHeads,
        HeadDim = text.HeadDim,
        FeedForward = text.IntermediateSize,
        ContextLength = text.MaxPositionEmbeddings,
        NormEps = (float)text.RmsNormEps,
        RopeFreqBase = (float)text.RopeTheta,
        RopeDims = text.RotaryDims,
        RopeMode = RopeMode.Neox,
    };
}
