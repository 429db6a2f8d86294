using System.Runtime.InteropServices;
using System.Text.Json;
using LlavaNative.Kernels.Cpu.Quant;
using LlavaNative.Kernels.Tensors;
using LlavaNative.Model.Formats.Safetensors;
using LlavaNative.Model.Llava;
using LlavaNative.Model.Vision;
using LlavaNative.TestSupport.HuggingFace;

namespace LlavaNative.TestSupport.Vision;

/// <summary>Which checkpoint layout <see cref="RandomLlavaHfFolder"/> writes.</summary>
public enum LlavaFolderLayout
{
    /// <summary>llava-hf, transformers &lt; 4.52: <c>vision_tower.vision_model.*</c>, <c>multi_modal_projector.*</c>.</summary>
    LlavaHfOld,
    /// <summary>llava-hf, transformers ≥ 4.52: <c>model.vision_tower.vision_model.*</c>, <c>model.multi_modal_projector.*</c>.</summary>
    LlavaHfNew,
    /// <summary>haotian-liu/LLaVA: <c>model.mm_projector.{0,2}</c> (or <c>model.mm_projector</c>) + a separate CLIP folder (<c>vision_model.*</c>).</summary>
    Original,
}

/// <summary>How <see cref="RandomLlavaHfFolder.Write"/> writes a folder.</summary>
public sealed record LlavaFolderOptions
{
    public LlavaFolderLayout Layout { get; init; } = LlavaFolderLayout.LlavaHfOld;
    /// <summary>1: model.safetensors; more: that many shards + model.safetensors.index.json.</summary>
    public int Shards { get; init; } = 1;
    /// <summary>F32, F16 or BF16 for every tensor (the values are rounded to it).</summary>
    public SafetensorsDType DType { get; init; } = SafetensorsDType.F32;
    /// <summary>Write preprocessor_config.json (in the tower folder for <see cref="LlavaFolderLayout.Original"/>).</summary>
    public bool PreprocessorConfig { get; init; } = true;
    /// <summary>Write llava-hf's processor_config.json (patch_size, num_additional_image_tokens, strategy).</summary>
    public bool ProcessorConfig { get; init; }
    /// <summary>HF <c>multimodal_projector_bias</c>; false drops the projector biases.</summary>
    public bool ProjectorBias { get; init; } = true;
    /// <summary>Original layout: the tower's config.json as CLIPConfig (model_type clip + vision_config) or as CLIPVisionConfig.</summary>
    public bool TowerAsClipModel { get; init; } = true;
    /// <summary>Original layout: <c>image_aspect_ratio</c> in config.json (null: omitted).</summary>
    public string? ImageAspectRatio { get; init; } = "pad";
    /// <summary>
    /// A random decoder GGUF (<c>RandomModels</c>) whose tensors become the folder's text model (GgufToHuggingFace's
    /// naming under the layout's prefixes) and whose metadata becomes text_config (the top-level Llama fields for
    /// <see cref="LlavaFolderLayout.Original"/>); null: only a small dummy embedding the vision loader must ignore.
    /// </summary>
    public string? TextGguf { get; init; }
    /// <summary>With <see cref="TextGguf"/>: embedding / LM head rows (padded with random rows above the GGUF's), 0 = as the GGUF.</summary>
    public int VocabularyRows { get; init; }
    /// <summary>A folder whose files (tokenizer.json, tokenizer_config.json, …) are copied into the model folder.</summary>
    public string? TokenizerFolder { get; init; }
    /// <summary>llava-hf <c>image_token_index</c>.</summary>
    public int ImageTokenIndex { get; init; } = 7;
    /// <summary>Original layout: <c>mm_use_im_start_end</c>.</summary>
    public bool UseImStartEnd { get; init; }
    /// <summary>Called with each (name, shape, values) before writing: return false to drop the tensor (bad-input tests).</summary>
    public Func<string, long[], float[], bool>? Filter { get; init; }
    /// <summary>Applied to config.json (the LLaVA one) before it is written.</summary>
    public Action<Dictionary<string, object?>>? EditConfig { get; init; }
}

/// <summary>
/// Writes a <see cref="RandomVisionModel"/> as a Hugging Face LLaVA folder — config.json, safetensors (single or
/// sharded, F32/F16/BF16), preprocessor_config.json, optionally processor_config.json — in the llava-hf old or new
/// layout, or as an original LLaVA checkpoint plus a separate CLIP checkpoint folder. Tensors a loader must ignore
/// are written too: a small decoder embedding, the tower's post_layernorm and (CLIP folder) a text-tower tensor.
/// With <see cref="LlavaFolderOptions.TextGguf"/> (and a <see cref="LlavaFolderOptions.TokenizerFolder"/>) the folder
/// is a whole checkpoint: the decoder of a random GGUF replaces the dummy embedding (<c>LlavaFixtures</c>
/// writes the CLIP + llama and SigLIP + qwen2 pairs).
/// </summary>
public static class RandomLlavaHfFolder
{
    private const string Tower = "vision_tower.vision_model.";

    /// <summary>Writes into <paramref name="root"/>/model (and <paramref name="root"/>/clip for the original layout).</summary>
    public static (string Folder, string? TowerFolder) Write(RandomVisionModel model, string root, LlavaFolderOptions options)
    {
        var s = model.Spec;
        string folder = Path.Combine(root, "model");
        Directory.CreateDirectory(folder);
        string? towerFolder = options.Layout == LlavaFolderLayout.Original ? Path.Combine(root, "clip") : null;
        if (towerFolder != null) Directory.CreateDirectory(towerFolder);

        var main = new List<(string Name, long[] Shape, float[] Data)>();
        var tower = new List<(string Name, long[] Shape, float[] Data)>();
        int d = s.HiddenSize;
        var extras = new List<(string, long[], float[])>
        {
            (Tower + "post_layernorm.weight", [d], Enumerable.Repeat(3f, d).ToArray()),
            (Tower + "post_layernorm.bias", [d], Enumerable.Repeat(-1f, d).ToArray()),
        };
        foreach (var (name, (data, shape)) in model.Tensors.Select(kv => (kv.Key, kv.Value)).Concat(extras.Select(e => (e.Item1, (e.Item3, e.Item2)))))
        {
            bool projectorTensor = name.StartsWith("multi_modal_projector.", StringComparison.Ordinal);
            if (projectorTensor && !options.ProjectorBias && name.EndsWith(".bias", StringComparison.Ordinal)) continue;
            switch (options.Layout)
            {
                case LlavaFolderLayout.LlavaHfOld:
                    main.Add((name, shape, data));
                    break;
                case LlavaFolderLayout.LlavaHfNew:
                    main.Add(("model." + name, shape, data));
                    break;
                default:
                    if (projectorTensor)
                    {
                        string rest = name["multi_modal_projector.".Length..]; // linear_1.weight
                        string module = s.Projector == ProjectorKind.Linear ? "model.mm_projector"
                            : rest.StartsWith("linear_1", StringComparison.Ordinal) ? "model.mm_projector.0" : "model.mm_projector.2";
                        main.Add((module + rest[rest.IndexOf('.')..], shape, data));
                    }
                    else tower.Add((name["vision_tower.".Length..], shape, data));
                    break;
            }
        }
        // Tensors the vision loader must ignore: a decoder embedding and (CLIP folder) a text-tower table.
        string embed = options.Layout switch
        {
            LlavaFolderLayout.LlavaHfOld => "language_model.model.embed_tokens.weight",
            LlavaFolderLayout.LlavaHfNew => "model.language_model.embed_tokens.weight",
            _ => "model.embed_tokens.weight",
        };
        if (options.TextGguf is null)
            main.Insert(0, (embed, [8, s.TextHiddenSize], new float[8 * s.TextHiddenSize]));
        else
        {
            string modelPrefix = embed[..^"embed_tokens.weight".Length];
            string lmHead = options.Layout == LlavaFolderLayout.LlavaHfOld ? "language_model.lm_head.weight" : "lm_head.weight";
            main.InsertRange(0, GgufToHuggingFace.DecoderTensors(options.TextGguf, modelPrefix, lmHead, options.VocabularyRows));
        }
        if (towerFolder != null) tower.Add(("text_model.embeddings.token_embedding.weight", [4, 8], new float[32]));

        WriteSafetensors(folder, main, options);
        if (towerFolder != null) WriteSafetensors(towerFolder, tower, options with { Shards = 1 });

        var visionConfig = VisionConfigJson(s);
        Dictionary<string, object?> config;
        if (options.Layout == LlavaFolderLayout.Original)
        {
            config = new()
            {
                ["architectures"] = new[] { "LlavaLlamaForCausalLM" },
                ["model_type"] = "llava",
                ["hidden_size"] = s.TextHiddenSize,
                ["mm_hidden_size"] = s.HiddenSize,
                ["mm_projector_type"] = s.Projector == ProjectorKind.Linear ? "linear" : "mlp2x_gelu",
                ["mm_vision_select_layer"] = s.VisionFeatureLayer,
                ["mm_vision_select_feature"] = s.SelectStrategy == "full" ? "cls_patch" : "patch",
                ["mm_vision_tower"] = "openai/clip-vit-large-patch14-336",
                ["mm_use_im_start_end"] = options.UseImStartEnd,
            };
            if (options.TextGguf is not null)
                foreach (var (key, value) in GgufToHuggingFace.TextConfig(options.TextGguf, options.VocabularyRows))
                    if (key is not ("model_type" or "architectures")) config[key] = value;
            if (options.ImageAspectRatio != null) config["image_aspect_ratio"] = options.ImageAspectRatio;
            object towerConfig = options.TowerAsClipModel
                ? new Dictionary<string, object?> { ["model_type"] = "clip", ["projection_dim"] = 16, ["vision_config"] = visionConfig, ["text_config"] = new Dictionary<string, object?> { ["hidden_size"] = 8 } }
                : visionConfig;
            WriteJson(Path.Combine(towerFolder!, "config.json"), towerConfig);
        }
        else
        {
            config = new()
            {
                ["architectures"] = new[] { "LlavaForConditionalGeneration" },
                ["model_type"] = "llava",
                ["image_token_index"] = options.ImageTokenIndex,
                ["projector_hidden_act"] = "gelu",
                ["multimodal_projector_bias"] = options.ProjectorBias,
                ["vision_feature_layer"] = s.VisionFeatureLayer,
                ["vision_feature_select_strategy"] = s.SelectStrategy,
                ["vision_config"] = visionConfig,
                ["text_config"] = options.TextGguf is not null ? GgufToHuggingFace.TextConfig(options.TextGguf, options.VocabularyRows) : new Dictionary<string, object?>
                {
                    ["model_type"] = "llama", ["hidden_size"] = s.TextHiddenSize, ["intermediate_size"] = 2 * s.TextHiddenSize,
                    ["num_hidden_layers"] = 1, ["num_attention_heads"] = 2, ["vocab_size"] = 8,
                },
            };
        }
        options.EditConfig?.Invoke(config);
        WriteJson(Path.Combine(folder, "config.json"), config);

        if (options.TokenizerFolder is not null)
            foreach (string file in Directory.GetFiles(options.TokenizerFolder))
                File.Copy(file, Path.Combine(folder, Path.GetFileName(file)), overwrite: true);
        if (options.PreprocessorConfig) WriteJson(Path.Combine(towerFolder ?? folder, "preprocessor_config.json"), PreprocessorConfigJson(s));
        if (options.ProcessorConfig)
            WriteJson(Path.Combine(folder, "processor_config.json"), new Dictionary<string, object?>
            {
                ["processor_class"] = "LlavaProcessor", ["image_token"] = "<image>", ["patch_size"] = s.PatchSize,
                ["num_additional_image_tokens"] = s.Kind == VisionTowerKind.Clip ? 1 : 0,
                ["vision_feature_select_strategy"] = s.SelectStrategy,
            });
        return (folder, towerFolder);
    }

    public static Dictionary<string, object?> VisionConfigJson(RandomVisionSpec s) => new()
    {
        ["model_type"] = s.Kind == VisionTowerKind.Clip ? "clip_vision_model" : "siglip_vision_model",
        ["image_size"] = s.ImageSize, ["patch_size"] = s.PatchSize, ["hidden_size"] = s.HiddenSize,
        ["intermediate_size"] = s.FeedForward, ["num_attention_heads"] = s.Heads, ["num_hidden_layers"] = s.Layers,
        ["hidden_act"] = s.HiddenAct, ["layer_norm_eps"] = s.LayerNormEps,
    };

    /// <summary>CLIPImageProcessor (shortest edge + crop at image_size) or SiglipImageProcessor (stretch), as the Hub files have them.</summary>
    public static Dictionary<string, object?> PreprocessorConfigJson(RandomVisionSpec s) => s.Kind == VisionTowerKind.Clip
        ? new()
        {
            ["image_processor_type"] = "CLIPImageProcessor", ["do_resize"] = true, ["size"] = new Dictionary<string, int> { ["shortest_edge"] = s.ImageSize },
            ["resample"] = 3, ["do_center_crop"] = true, ["crop_size"] = new Dictionary<string, int> { ["height"] = s.ImageSize, ["width"] = s.ImageSize },
            ["do_rescale"] = true, ["rescale_factor"] = 0.00392156862745098, ["do_normalize"] = true,
            ["image_mean"] = s.ImageMean, ["image_std"] = s.ImageStd, ["do_convert_rgb"] = true,
        }
        : new()
        {
            ["image_processor_type"] = "SiglipImageProcessor", ["do_resize"] = true, ["size"] = new Dictionary<string, int> { ["height"] = s.ImageSize, ["width"] = s.ImageSize },
            ["resample"] = 3, ["do_rescale"] = true, ["rescale_factor"] = 0.00392156862745098, ["do_normalize"] = true,
            ["image_mean"] = s.ImageMean, ["image_std"] = s.ImageStd,
        };

    public static void WriteJson(string path, object value) =>
        File.WriteAllText(path, JsonSerializer.Serialize(value, new JsonSerializerOptions { WriteIndented = true }));

    private static unsafe void WriteSafetensors(string folder, List<(string Name, long[] Shape, float[] Data)> tensors, LlavaFolderOptions options)
    {
        var writer = new SafetensorsWriter();
        writer.SetMetadata("format", "pt");
        var type = SafetensorsDTypes.ToTensorType(options.DType) ?? throw new ArgumentException($"{options.DType} is not a float dtype");
        foreach (var (name, shape, data) in tensors)
        {
            if (options.Filter is { } filter && !filter(name, shape, data)) continue;
            byte[] bytes;
            if (type == TensorType.F32) bytes = MemoryMarshal.AsBytes(data.AsSpan()).ToArray();
            else
            {
                bytes = new byte[data.Length * 2];
                fixed (float* src = data)
                fixed (byte* dst = bytes)
                    WeightQuantizer.QuantizeRow(type, src, dst, data.Length);
            }
            writer.AddTensor(name, options.DType, shape, bytes);
        }
        if (options.Shards > 1) writer.WriteSharded(folder, options.Shards);
        else writer.WriteTo(Path.Combine(folder, SafetensorsCheckpoint.SingleFileName));
    }
}
