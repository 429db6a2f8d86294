namespace LlavaNative.Model.Formats.HuggingFace;

/// <summary>
/// The decoder part of a Hugging Face <c>config.json</c> (a whole Llama / Qwen2 config, or a LLaVA
/// <c>text_config</c>) after the library's defaults are applied to omitted fields:
/// <list type="table">
/// <item><term>LlamaConfig</term><description>vocab 32000, hidden 4096, intermediate 11008, 32 layers, 32 heads,
/// kv heads = heads, max_position_embeddings 2048, rms_norm_eps 1e-6, rope_theta 10000, untied, no biases,
/// bos 1, eos 2</description></item>
/// <item><term>Qwen2Config</term><description>vocab 151936, hidden 4096, intermediate 22016, 32 layers, 32 heads,
/// 32 kv heads (the library's default, not "= heads"), max_position_embeddings 32768, rms_norm_eps 1e-6,
/// rope_theta 10000, untied, q/k/v biases always</description></item>
/// </list>
/// head_dim = hidden / heads unless given. RoPE base and partial rotary come from <c>rope_theta</c> /
/// <c>partial_rotary_factor</c> (written up to transformers 4.x) or <c>rope_parameters</c> (5.x).
/// </summary>
public sealed record HfTextConfig
{
    public static readonly string[] SupportedModelTypes = ["llama", "qwen2"];

    /// <summary>"llama" or "qwen2".</summary>
    public required string ModelType { get; init; }
    public required int VocabSize { get; init; }
    public required int HiddenSize { get; init; }
    public required int IntermediateSize { get; init; }
    public required int NumHiddenLayers { get; init; }
    public required int NumAttentionHeads { get; init; }
    public required int NumKeyValueHeads { get; init; }
    public required int HeadDim { get; init; }
    public required string HiddenAct { get; init; }
    public required int MaxPositionEmbeddings { get; init; }
    public required double RmsNormEps { get; init; }
    public required double RopeTheta { get; init; }

    /// <summary>Fraction of each head's dimensions that RoPE rotates (1 = all).</summary>
    public required double PartialRotaryFactor { get; init; }

    public required bool TieWordEmbeddings { get; init; }

    /// <summary>q/k/v projections carry biases (always for Qwen2).</summary>
    public required bool AttentionBias { get; init; }

    public int? BosTokenId { get; init; }
    public int[] EosTokenIds { get; init; } = [];
    public int? PadTokenId { get; init; }

    /// <summary><c>torch_dtype</c> (or 5.x <c>dtype</c>) as stated, e.g. "bfloat16"; informational.</summary>
    public string? TorchDtype { get; init; }

    /// <summary>Rotated dimensions per head: <c>int(head_dim · partial_rotary_factor)</c>.</summary>
    public int RotaryDims => (int)(HeadDim * PartialRotaryFactor);

    /// <summary>Reads and validates a text config object whose <c>model_type</c> is <paramref name="modelType"/>.</summary>
    internal static HfTextConfig Parse(ConfigJson json, string modelType)
    {
        bool qwen2 = modelType == "qwen2";
        if (modelType is not ("llama" or "qwen2"))
            throw json.Error($"{json.KeyPath("model_type")} '{modelType}' is not a supported decoder (supported: {string.Join(", ", SupportedModelTypes)})");

        int hidden = json.Int("hidden_size", 4096);
        int heads = json.Int("num_attention_heads", 32);
        int layers = json.Int("num_hidden_layers", 32);
        // Omitted: Qwen2Config's default is 32; an explicit null (and LlamaConfig's default) means "= heads".
        int kvHeads = json.IntOrNull("num_key_value_heads") ?? (qwen2 && !json.IsExplicitNull("num_key_value_heads") ? 32 : heads);
        int vocab = json.Int("vocab_size", qwen2 ? 151936 : 32000);
        int intermediate = json.Int("intermediate_size", qwen2 ? 22016 : 11008);
        int maxPositions = json.Int("max_position_embeddings", qwen2 ? 32768 : 2048);

        Require(json, hidden > 0 && hidden <= 1 << 16, "hidden_size", hidden, "between 1 and 65536");
        Require(json, heads > 0 && heads <= 1024, "num_attention_heads", heads, "between 1 and 1024");
        Require(json, layers > 0 && layers <= 1024, "num_hidden_layers", layers, "between 1 and 1024");
        Require(json, kvHeads > 0 && heads % kvHeads == 0, "num_key_value_heads", kvHeads, $"a positive divisor of num_attention_heads ({heads})");
        Require(json, vocab > 0, "vocab_size", vocab, "positive");
        Require(json, intermediate > 0, "intermediate_size", intermediate, "positive");
        Require(json, maxPositions > 0, "max_position_embeddings", maxPositions, "positive");

        int headDim;
        if (json.Has("head_dim"))
        {
            headDim = json.Int("head_dim", 0);
            Require(json, headDim > 0 && headDim % 2 == 0 && headDim <= 1024, "head_dim", headDim, "even, 2..1024");
        }
        else
        {
            if (hidden % heads != 0)
                throw json.Error($"{json.KeyPath("hidden_size")} {hidden} is not a multiple of {json.KeyPath("num_attention_heads")} {heads} (and no head_dim is given)");
            headDim = hidden / heads;
            if (headDim % 2 != 0)
                throw json.Error($"head dimension {headDim} (hidden_size / num_attention_heads) is odd; RoPE needs an even one");
        }

        string act = json.String("hidden_act", "silu");
        if (act is not ("silu" or "swish"))
            throw json.Error($"{json.KeyPath("hidden_act")} '{act}' is not supported: the decoder's feed-forward is SiLU-gated (silu)");

        double eps = json.Double("rms_norm_eps", 1e-6);
        Require(json, eps > 0 && eps < 1, "rms_norm_eps", eps, "in (0, 1)");

        var (theta, rotaryFactor) = ReadRope(json);
        int rotaryDims = (int)(headDim * rotaryFactor);
        if (rotaryDims < 2 || rotaryDims % 2 != 0)
            throw json.Error($"partial_rotary_factor {rotaryFactor} × head_dim {headDim} = {rotaryDims} rotated dimensions; RoPE needs an even number ≥ 2");

        bool attentionBias = qwen2;
        if (!qwen2)
        {
            // Llama's attention_bias adds a bias to o_proj as well, which the shared forward pass does not have.
            if (json.Bool("attention_bias", false))
                throw json.Error($"{json.KeyPath("attention_bias")} = true (biases on q/k/v and o_proj) is not supported for llama");
            if (json.Bool("mlp_bias", false))
                throw json.Error($"{json.KeyPath("mlp_bias")} = true (biases on the MLP projections) is not supported");
        }
        else if (json.Bool("use_sliding_window", false))
        {
            int windowLayers = json.Int("max_window_layers", 28);
            if (windowLayers < layers)
                throw json.Error($"{json.KeyPath("use_sliding_window")} = true makes layers {windowLayers}..{layers - 1} use sliding-window attention, which is not supported");
        }

        return new HfTextConfig
        {
            ModelType = modelType,
            VocabSize = vocab,
            HiddenSize = hidden,
            IntermediateSize = intermediate,
            NumHiddenLayers = layers,
            NumAttentionHeads = heads,
            NumKeyValueHeads = kvHeads,
            HeadDim = headDim,
            HiddenAct = act,
            MaxPositionEmbeddings = maxPositions,
            RmsNormEps = eps,
            RopeTheta = theta,
            PartialRotaryFactor = rotaryFactor,
            TieWordEmbeddings = json.Bool("tie_word_embeddings", false),
            AttentionBias = attentionBias,
            BosTokenId = json.IntOrNull("bos_token_id") ?? (qwen2 ? null : 1),
            EosTokenIds = json.IntOrIntListOrNull("eos_token_id") ?? (qwen2 ? [] : [2]),
            PadTokenId = json.IntOrNull("pad_token_id"),
            TorchDtype = json.StringOrNull("torch_dtype") ?? json.StringOrNull("dtype"),
        };
    }

    /// <summary>
    /// RoPE base and rotary fraction. transformers 5 keeps them in <c>rope_parameters</c>; older files have
    /// top-level <c>rope_theta</c> / <c>partial_rotary_factor</c> and a <c>rope_scaling</c> dict (which, when
    /// present, takes the place of rope_parameters). Only unscaled ("default") RoPE is supported.
    /// </summary>
    private static (double Theta, double RotaryFactor) ReadRope(ConfigJson json)
    {
        ConfigJson? parameters = json.Object("rope_scaling") ?? json.Object("rope_parameters");
        double theta = parameters?.DoubleOrNull("rope_theta") ?? json.Double("rope_theta", 10000.0);
        double factor = parameters?.DoubleOrNull("partial_rotary_factor") ?? json.Double("partial_rotary_factor", 1.0);
        if (parameters is { } p)
        {
            string type = p.StringOrNull("rope_type") ?? p.StringOrNull("type") ?? "default";
            if (type != "default")
                throw json.Error($"{p.KeyPath(p.Has("rope_type") ? "rope_type" : "type")} '{type}' (scaled RoPE) is not supported; only unscaled RoPE (\"default\")");
        }
        if (!(theta > 1))
            throw json.Error($"rope_theta {theta} is invalid (must be greater than 1)");
        if (!(factor > 0 && factor <= 1))
            throw json.Error($"partial_rotary_factor {factor} is invalid (must be in (0, 1])");
        return (theta, factor);
    }

    private static void Require(ConfigJson json, bool ok, string key, double value, string expected)
    {
        if (!ok) throw json.Error($"{json.KeyPath(key)} = {value} is invalid (expected {expected})");
    }
}
