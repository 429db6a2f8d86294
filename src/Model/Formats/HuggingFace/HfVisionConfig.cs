namespace LlavaNative.Model.Formats.HuggingFace;

/// <summary>
/// A LLaVA <c>vision_config</c> after the library's defaults are applied to omitted fields:
/// <list type="table">
/// <item><term>CLIPVisionConfig (clip_vision_model)</term><description>hidden 768, intermediate 3072, 12 layers,
/// 12 heads, 3 channels, image 224, patch 32, quick_gelu, layer_norm_eps 1e-5, projection_dim 512</description></item>
/// <item><term>SiglipVisionConfig (siglip_vision_model)</term><description>hidden 768, intermediate 3072, 12 layers,
/// 12 heads, 3 channels, image 224, patch 16, gelu_pytorch_tanh, layer_norm_eps 1e-6</description></item>
/// </list>
/// A LLaVA config without any vision_config gets LlavaConfig's CLIP-L/336 tower (hidden 1024, intermediate 4096,
/// 24 layers, 16 heads, image 336, patch 14, projection_dim 768).
/// </summary>
public sealed record HfVisionConfig
{
    public const string Clip = "clip_vision_model";
    public const string Siglip = "siglip_vision_model";
    public static readonly string[] SupportedModelTypes = [Clip, Siglip];

    public required string ModelType { get; init; }
    public required int HiddenSize { get; init; }
    public required int IntermediateSize { get; init; }
    public required int NumHiddenLayers { get; init; }
    public required int NumAttentionHeads { get; init; }
    public required int NumChannels { get; init; }
    public required int ImageSize { get; init; }
    public required int PatchSize { get; init; }

    /// <summary>"quick_gelu" (CLIP default), "gelu_pytorch_tanh" (SigLIP default), "gelu", ...</summary>
    public required string HiddenAct { get; init; }
    public required double LayerNormEps { get; init; }

    /// <summary>CLIP only (unused by LLaVA, which takes hidden states, not the projection).</summary>
    public int? ProjectionDim { get; init; }

    /// <summary>SigLIP's attention-pooling head as stated (null when omitted); LLaVA never uses it.</summary>
    public bool? VisionUseHead { get; init; }

    public bool IsClip => ModelType == Clip;
    public bool IsSiglip => ModelType == Siglip;

    /// <summary>Patches per image side: ⌊image_size / patch_size⌋, as the stride-patch_size convolution gives.</summary>
    public int PatchesPerSide => ImageSize / PatchSize;

    /// <summary>LlavaConfig's tower when the config has no vision_config at all (llava-1.5's CLIP ViT-L/14-336).</summary>
    public static HfVisionConfig LlavaDefault => new()
    {
        ModelType = Clip, HiddenSize = 1024, IntermediateSize = 4096, NumHiddenLayers = 24, NumAttentionHeads = 16,
        NumChannels = 3, ImageSize = 336, PatchSize = 14, HiddenAct = "quick_gelu", LayerNormEps = 1e-5, ProjectionDim = 768,
    };

    /// <summary>Reads a vision config object; <paramref name="defaultModelType"/> stands for an omitted model_type.</summary>
    internal static HfVisionConfig Parse(ConfigJson json, string defaultModelType = Clip)
    {
        string type = json.String("model_type", defaultModelType);
        if (!SupportedModelTypes.Contains(type))
            throw json.Error($"{json.KeyPath("model_type")} '{type}' is not a supported vision tower (supported: {string.Join(", ", SupportedModelTypes)})");
        bool clip = type == Clip;

        var config = new HfVisionConfig
        {
            ModelType = type,
            HiddenSize = json.Int("hidden_size", 768),
            IntermediateSize = json.Int("intermediate_size", 3072),
            NumHiddenLayers = json.Int("num_hidden_layers", 12),
            NumAttentionHeads = json.Int("num_attention_heads", 12),
            NumChannels = json.Int("num_channels", 3),
            ImageSize = json.Int("image_size", 224),
            PatchSize = json.Int("patch_size", clip ? 32 : 16),
            HiddenAct = json.String("hidden_act", clip ? "quick_gelu" : "gelu_pytorch_tanh"),
            LayerNormEps = json.Double("layer_norm_eps", clip ? 1e-5 : 1e-6),
            ProjectionDim = clip ? json.Int("projection_dim", 512) : null,
            VisionUseHead = clip ? null : json.BoolOrNull("vision_use_head"),
        };

        void Require(bool ok, string key, double value, string expected)
        {
            if (!ok) throw json.Error($"{json.KeyPath(key)} = {value} is invalid (expected {expected})");
        }
        Require(config.HiddenSize > 0, "hidden_size", config.HiddenSize, "positive");
        Require(config.IntermediateSize > 0, "intermediate_size", config.IntermediateSize, "positive");
        Require(config.NumHiddenLayers > 0, "num_hidden_layers", config.NumHiddenLayers, "positive");
        Require(config.NumAttentionHeads > 0 && config.HiddenSize % config.NumAttentionHeads == 0,
            "num_attention_heads", config.NumAttentionHeads, $"a positive divisor of hidden_size ({config.HiddenSize})");
        Require(config.NumChannels > 0, "num_channels", config.NumChannels, "positive");
        Require(config.PatchSize > 0, "patch_size", config.PatchSize, "positive");
        // Not necessarily a multiple: SigLIP-so400m has 384 / 14 → 27 patches per side (the stride-14 conv floors).
        Require(config.ImageSize >= config.PatchSize, "image_size", config.ImageSize, $"at least patch_size ({config.PatchSize})");
        Require(config.LayerNormEps > 0 && config.LayerNormEps < 1, "layer_norm_eps", config.LayerNormEps, "in (0, 1)");
        return config;
    }
}
