using LlavaNative.Model.Formats;

namespace LlavaNative.Model.Language;

/// <summary>
/// Where a checkpoint layout keeps each decoder weight. One binder (<see cref="DecoderWeights.Bind"/>) reads
/// every layout; a layout is only names — GGUF's <c>blk.N.attn_q.weight</c>, or Hugging Face's
/// <c>{prefix}layers.N.self_attn.q_proj.weight</c> under the prefix of a plain model (<c>model.</c>), an old
/// llava-hf checkpoint (<c>language_model.model.</c>) or a new one (<c>model.language_model.</c>), as candle's
/// VarBuilder prefixes do.
/// </summary>
public sealed record DecoderTensorNames
{
    /// <summary>Short name of the layout, for messages.</summary>
    public required string Layout { get; init; }

    public required string TokenEmbedding { get; init; }
    public required string OutputNorm { get; init; }

    /// <summary>The LM head; when absent from the file it is tied to the token embedding.</summary>
    public required string LmHead { get; init; }

    /// <summary>Prefix of layer N's tensors, with {0} for N.</summary>
    public required string LayerPrefix { get; init; }

    public required string AttentionNorm { get; init; }
    public required string Query { get; init; }
    public required string Key { get; init; }
    public required string Value { get; init; }
    public required string QueryBias { get; init; }
    public required string KeyBias { get; init; }
    public required string ValueBias { get; init; }
    public required string Output { get; init; }
    public required string FeedForwardNorm { get; init; }
    public required string Gate { get; init; }
    public required string Up { get; init; }
    public required string Down { get; init; }

    /// <summary>Full name of a layer tensor, e.g. <c>Layer(3, Query)</c>.</summary>
    public string Layer(int layer, string tensor) => string.Format(System.Globalization.CultureInfo.InvariantCulture, LayerPrefix, layer) + tensor;

    /// <summary>llama.cpp's GGUF names (ggml <c>ne</c> order is handled by the GGUF tensor source).</summary>
    public static readonly DecoderTensorNames Gguf = new()
    {
        Layout = "GGUF",
        TokenEmbedding = "token_embd.weight",
        OutputNorm = "output_norm.weight",
        LmHead = "output.weight",
        LayerPrefix = "blk.{0}.",
        AttentionNorm = "attn_norm.weight",
        Query = "attn_q.weight",
        Key = "attn_k.weight",
        Value = "attn_v.weight",
        QueryBias = "attn_q.bias",
        KeyBias = "attn_k.bias",
        ValueBias = "attn_v.bias",
        Output = "attn_output.weight",
        FeedForwardNorm = "ffn_norm.weight",
        Gate = "ffn_gate.weight",
        Up = "ffn_up.weight",
        Down = "ffn_down.weight",
    };

    /// <summary>
    /// transformers' LlamaForCausalLM / Qwen2ForCausalLM module names under <paramref name="modelPrefix"/>
    /// (the decoder stack) with the LM head at <paramref name="lmHead"/>.
    /// </summary>
    public static DecoderTensorNames HuggingFace(string layout, string modelPrefix, string lmHead) => new()
    {
        Layout = layout,
        TokenEmbedding = modelPrefix + "embed_tokens.weight",
        OutputNorm = modelPrefix + "norm.weight",
        LmHead = lmHead,
        LayerPrefix = modelPrefix + "layers.{0}.",
        AttentionNorm = "input_layernorm.weight",
        Query = "self_attn.q_proj.weight",
        Key = "self_attn.k_proj.weight",
        Value = "self_attn.v_proj.weight",
        QueryBias = "self_attn.q_proj.bias",
        KeyBias = "self_attn.k_proj.bias",
        ValueBias = "self_attn.v_proj.bias",
        Output = "self_attn.o_proj.weight",
        FeedForwardNorm = "post_attention_layernorm.weight",
        Gate = "mlp.gate_proj.weight",
        Up = "mlp.up_proj.weight",
        Down = "mlp.down_proj.weight",
    };

    /// <summary>A plain HF decoder (also the text part of original haotian LLaVA checkpoints).</summary>
    public static readonly DecoderTensorNames HuggingFaceCausalLM = HuggingFace("Hugging Face causal LM", "model.", "lm_head.weight");

    /// <summary>llava-hf checkpoints written by transformers &lt; 4.52 (everything on the Hub so far).</summary>
    public static readonly DecoderTensorNames LlavaHfOld = HuggingFace("llava-hf (language_model.model.*)", "language_model.model.", "language_model.lm_head.weight");

    /// <summary>
    /// llava-hf checkpoints written by transformers ≥ 4.52, whose <c>_checkpoint_conversion_mapping</c> maps
    /// <c>^language_model.model</c> → <c>model.language_model</c> and <c>^language_model.lm_head</c> → <c>lm_head</c>.
    /// </summary>
    public static readonly DecoderTensorNames LlavaHfNew = HuggingFace("llava-hf (model.language_model.*)", "model.language_model.", "lm_head.weight");

    /// <summary>The Hugging Face layouts, in the order <see cref="DetectHuggingFace"/> tries them.</summary>
    public static readonly DecoderTensorNames[] HuggingFaceLayouts = [LlavaHfNew, LlavaHfOld, HuggingFaceCausalLM];

    /// <summary>The Hugging Face layout whose token embedding <paramref name="source"/> holds.</summary>
    public static DecoderTensorNames DetectHuggingFace(ITensorSource source)
    {
        foreach (var names in HuggingFaceLayouts)
            if (source.TryGetTensor(names.TokenEmbedding, out _))
                return names;
        throw source.Error(null, "no decoder token embedding found: expected one of " +
                                 string.Join(", ", HuggingFaceLayouts.Select(n => $"'{n.TokenEmbedding}' ({n.Layout})")));
    }
}
