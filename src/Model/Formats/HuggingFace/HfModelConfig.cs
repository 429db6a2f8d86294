namespace LlavaNative.Model.Formats.HuggingFace;

/// <summary>
/// The LLaVA-specific fields of a <c>model_type: "llava"</c> config, with LlavaConfig's defaults:
/// image_token_index 32000 (alias image_token_id), projector_hidden_act "gelu", vision_feature_select_strategy
/// "default" (drop CLS), vision_feature_layer −2, image_seq_length 576, multimodal_projector_bias true.
/// </summary>
public sealed record HfLlavaConfig
{
    public required int ImageTokenIndex { get; init; }
    public required string ProjectorHiddenAct { get; init; }

    /// <summary>"default" (drop the CLS position) or "full" (keep every position).</summary>
    public required string VisionFeatureSelectStrategy { get; init; }

    /// <summary>Hidden-state indices as written (negative counts from the end); several are concatenated.</summary>
    public required int[] VisionFeatureLayers { get; init; }

    public required int ImageSeqLength { get; init; }
    public required bool MultimodalProjectorBias { get; init; }

    internal static HfLlavaConfig Parse(ConfigJson json)
    {
        string strategy = json.String("vision_feature_select_strategy", "default");
        if (strategy is not ("default" or "full"))
            throw json.Error($"vision_feature_select_strategy '{strategy}' is not one of 'default', 'full'");
        int[] layers = json.IntOrIntListOrNull("vision_feature_layer") ?? [-2];
        if (layers.Length == 0) throw json.Error("vision_feature_layer is an empty list");
        return new HfLlavaConfig
        {
            // image_token_id is LlavaConfig's attribute alias of image_token_index (newer files write it).
            ImageTokenIndex = json.IntOrNull("image_token_index") ?? json.Int("image_token_id", 32000),
            ProjectorHiddenAct = json.String("projector_hidden_act", "gelu"),
            VisionFeatureSelectStrategy = strategy,
            VisionFeatureLayers = layers,
            ImageSeqLength = json.Int("image_seq_length", 576),
            MultimodalProjectorBias = json.Bool("multimodal_projector_bias", true),
        };
    }
}

/// <summary>
/// A Hugging Face model folder's <c>config.json</c>: a plain decoder (<c>model_type</c> llama or qwen2), a
/// llava-hf model (<c>model_type</c> llava, with <c>text_config</c> and <c>vision_config</c>, whose
/// <c>model_type</c>s default to llama and clip_vision_model as LlavaConfig does), or an original haotian-liu/LLaVA
/// checkpoint (<c>model_type</c> llava or llava_llama, <c>LlavaLlamaForCausalLM</c>): the Llama fields at the top level
/// beside flat <c>mm_*</c> fields and no <c>text_config</c> — its decoder is read from the top level, its image side
/// by <c>LlavaHfLayout</c>.
/// </summary>
public sealed record HfModelConfig
{
    public const string FileName = "config.json";
    public static readonly string[] SupportedModelTypes = ["llama", "qwen2", "llava", "llava_llama"];

    /// <summary>The flat fields haotian-liu/LLaVA writes into a Llama config (any one marks the original layout).</summary>
    public static readonly string[] OriginalLlavaKeys = ["mm_vision_tower", "mm_projector_type", "mm_hidden_size", "mm_vision_select_layer"];

    /// <summary>The config.json read.</summary>
    public required string Path { get; init; }

    /// <summary>Top-level model_type: "llama", "qwen2", "llava" or (original LLaVA) "llava_llama".</summary>
    public required string ModelType { get; init; }

    /// <summary>The decoder (the whole config, or LLaVA's text_config).</summary>
    public required HfTextConfig Text { get; init; }

    /// <summary>LLaVA's vision tower; null for a plain decoder.</summary>
    public HfVisionConfig? Vision { get; init; }

    /// <summary>llava-hf's own fields; null for a plain decoder and for an original LLaVA checkpoint.</summary>
    public HfLlavaConfig? Llava { get; init; }

    /// <summary>
    /// An original haotian-liu/LLaVA checkpoint (flat <c>mm_*</c> fields, no <c>text_config</c>): the decoder is the
    /// top-level Llama config, images have no placeholder id (LLaVA's −200 sentinel), the tower is a separate folder.
    /// </summary>
    public bool IsOriginalLlava { get; init; }

    /// <summary>Original LLaVA's <c>mm_use_im_start_end</c>: the image rows sit between <c>&lt;im_start&gt;</c> and <c>&lt;im_end&gt;</c> in place of <c>&lt;im_patch&gt;</c> tokens (LLaVA v1).</summary>
    public bool UsesImStartEnd { get; init; }

    /// <summary>A LLaVA checkpoint of either layout (it has an image side).</summary>
    public bool IsLlava => Llava != null || IsOriginalLlava;

    /// <summary>
    /// Whether the LM head is the embedding matrix. LlavaConfig forwards text_config's tie_word_embeddings
    /// when its own is false (llava-interleave-qwen-0.5b states it only in text_config).
    /// </summary>
    public bool TieWordEmbeddings { get; init; }

    /// <summary>Reads <paramref name="path"/>: a config.json file or a folder holding one.</summary>
    public static HfModelConfig Load(string path)
    {
        string file = Directory.Exists(path) ? System.IO.Path.Combine(path, FileName) : path;
        if (!File.Exists(file))
            throw new FileNotFoundException($"{file}: file not found (a Hugging Face model folder needs a {FileName})", file);
        using var document = ConfigJson.ParseFile(file);
        return Parse(new ConfigJson(document.RootElement, file, ""));
    }

    internal static HfModelConfig Parse(ConfigJson json)
    {
        string? modelType = json.StringOrNull("model_type");
        if (modelType == null)
            throw json.Error($"no 'model_type' (supported: {string.Join(", ", SupportedModelTypes)})");
        switch (modelType)
        {
            case "llama" or "qwen2":
            {
                var text = HfTextConfig.Parse(json, modelType);
                return new HfModelConfig { Path = json.Path, ModelType = modelType, Text = text, TieWordEmbeddings = text.TieWordEmbeddings };
            }
            case "llava" or "llava_llama" when IsOriginalLlavaLayout(json):
            {
                // LlavaLlamaForCausalLM subclasses LlamaForCausalLM: its config is a LlamaConfig plus mm_* fields.
                var text = HfTextConfig.Parse(json, "llama");
                return new HfModelConfig
                {
                    Path = json.Path, ModelType = modelType, Text = text, IsOriginalLlava = true, TieWordEmbeddings = text.TieWordEmbeddings,
                    UsesImStartEnd = json.Bool("mm_use_im_start_end", false),
                };
            }
            case "llava_llama":
                throw json.Error("model_type 'llava_llama' without mm_* fields (mm_vision_tower, mm_projector_type, …): not an original LLaVA checkpoint");
            case "llava":
            {
                HfTextConfig text;
                if (json.Object("text_config") is { } textJson)
                    text = HfTextConfig.Parse(textJson, textJson.String("model_type", "llama"));
                else
                    text = HfTextConfig.Parse(new ConfigJson(EmptyObject, json.Path, "text_config."), "llama");
                var vision = json.Object("vision_config") is { } visionJson ? HfVisionConfig.Parse(visionJson) : HfVisionConfig.LlavaDefault;
                return new HfModelConfig
                {
                    Path = json.Path,
                    ModelType = modelType,
                    Text = text,
                    Vision = vision,
                    Llava = HfLlavaConfig.Parse(json),
                    TieWordEmbeddings = json.Bool("tie_word_embeddings", false) || text.TieWordEmbeddings,
                };
            }
            default:
                throw json.Error($"model_type '{modelType}' is not supported (supported: {string.Join(", ", SupportedModelTypes)})");
        }
    }

    /// <summary>
    /// haotian-liu/LLaVA's layout: an <c>mm_*</c> field and no <c>text_config</c> (llava-hf configs nest the decoder;
    /// a top-level <c>hidden_size</c> there would be ignored by transformers, so text_config decides).
    /// </summary>
    internal static bool IsOriginalLlavaLayout(ConfigJson json) =>
        !json.Has("text_config") && OriginalLlavaKeys.Any(json.Has);

    /// <summary>Stands for an omitted text_config: every field takes LlamaConfig's default.</summary>
    private static readonly System.Text.Json.JsonElement EmptyObject = ParseEmptyObject();

    private static System.Text.Json.JsonElement ParseEmptyObject()
    {
        using var document = System.Text.Json.JsonDocument.Parse("{}");
        return document.RootElement.Clone();
    }
}
