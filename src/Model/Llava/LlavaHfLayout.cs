using LlavaNative.Kernels.Cpu.Ops;
using LlavaNative.Model.Formats;
using LlavaNative.Model.Formats.HuggingFace;
using LlavaNative.Model.Formats.Safetensors;
using LlavaNative.Model.Vision;

namespace LlavaNative.Model.Llava;

/// <summary>The two ways a Hugging Face-style LLaVA folder stores its image side.</summary>
public enum LlavaCheckpointKind
{
    /// <summary>
    /// transformers' <c>LlavaForConditionalGeneration</c> (llava-hf/*): config.json <c>model_type: "llava"</c> with a
    /// <c>vision_config</c>; tower and projector weights in the checkpoint under the old or new prefixes.
    /// </summary>
    LlavaHf,

    /// <summary>
    /// haotian-liu/LLaVA (liuhaotian/llava-v1.5-*, LLaVA v1): config.json with <c>mm_*</c> fields and
    /// <c>model.mm_projector.*</c> weights; the vision tower is a separate CLIP checkpoint (<c>mm_vision_tower</c>).
    /// </summary>
    Original,
}

/// <summary>
/// What a LLaVA checkpoint folder says about its image side, read from its config files without opening the
/// weights: the tower's <see cref="HfVisionConfig"/>, which hidden state is taken and which rows are kept, the
/// projector, the image processor and the number of image tokens per image.
/// <list type="bullet">
/// <item>llava-hf: config.json <c>vision_config</c> (clip_vision_model or siglip_vision_model), <c>vision_feature_layer</c>
/// (one int; a list — features of several layers concatenated — is not supported), <c>vision_feature_select_strategy</c>,
/// <c>projector_hidden_act</c>, <c>multimodal_projector_bias</c>; the projector is always linear_1 → act → linear_2.</item>
/// <item>original LLaVA: <c>mm_vision_select_layer</c>, <c>mm_vision_select_feature</c> (patch = drop the class token,
/// cls_patch = keep it), <c>mm_projector_type</c> (linear or mlp2x_gelu; default linear, as LLaVA's builder),
/// <c>mm_hidden_size</c>, <c>image_aspect_ratio</c>; the tower's config.json comes from
/// <see cref="VisionTowerFolder"/> (model_type clip or siglip with a vision_config, or clip_vision_model /
/// siglip_vision_model).</item>
/// </list>
/// The image processor is the first <c>preprocessor_config.json</c> of the folder, then of the tower folder.
/// </summary>
public sealed record LlavaHfLayout
{
    public required LlavaCheckpointKind Kind { get; init; }
    public required string Folder { get; init; }
    public string? VisionTowerFolder { get; init; }

    /// <summary>The config.json of <see cref="Folder"/>.</summary>
    public required string ConfigPath { get; init; }

    /// <summary>The config.json the tower's hyper-parameters came from (<see cref="ConfigPath"/> for llava-hf).</summary>
    public required string VisionConfigPath { get; init; }

    public required HfVisionConfig Vision { get; init; }

    /// <summary>Non-negative index into HF's <c>hidden_states</c> (0 = embeddings; −2 of 24 blocks → 23).</summary>
    public required int FeatureLayer { get; init; }

    public required FeatureSelectStrategy SelectStrategy { get; init; }

    /// <summary>Linear for original LLaVA v1 (<c>mm_projector_type: linear</c>), else the 2-layer MLP.</summary>
    public required ProjectorKind Projector { get; init; }

    public required ActivationFunction ProjectorActivation { get; init; }
    public required bool ProjectorBias { get; init; }

    /// <summary>Original LLaVA's <c>image_aspect_ratio</c> ("pad", "square", …) or null.</summary>
    public string? ImageAspectRatio { get; init; }

    /// <summary>The image processor's settings, or null when neither folder has a preprocessor_config.json.</summary>
    public HfImageProcessorConfig? ImageProcessor { get; init; }

    /// <summary>llava-hf's processor_config.json, or null.</summary>
    public HfProcessorConfig? Processor { get; init; }

    /// <summary>The placeholder string the processor expands (processor_config.json <c>image_token</c>, else "&lt;image&gt;").</summary>
    public string ImageToken => Processor?.ImageToken ?? "<image>";

    /// <summary>Image token id of a llava-hf config (<c>image_token_index</c>); null for original LLaVA (which uses the −200 sentinel).</summary>
    public int? ImageTokenIndex { get; init; }

    public bool HasClassToken => Vision.IsClip;

    /// <summary>
    /// Embeddings (and so placeholder tokens) per image: the patch grid, plus the class token unless the strategy
    /// drops row 0 — 576 for CLIP-L/14-336 "default", 729 for SigLIP-384 "full". When processor_config.json
    /// gives a patch size, <see cref="Read"/> has checked that its count (HF's formula) is the same.
    /// </summary>
    public int ImageTokenCount => Vision.PatchesPerSide * Vision.PatchesPerSide + (HasClassToken ? 1 : 0)
                                  - (SelectStrategy == FeatureSelectStrategy.Default ? 1 : 0);

    public double[] ImageMean => ImageProcessor?.ImageMean ?? (Vision.IsClip ? ClipMean : [0.5, 0.5, 0.5]);
    public double[] ImageStd => ImageProcessor?.ImageStd ?? (Vision.IsClip ? ClipStd : [0.5, 0.5, 0.5]);

    private static readonly double[] ClipMean = [0.48145466, 0.4578275, 0.40821073];
    private static readonly double[] ClipStd = [0.26862954, 0.26130258, 0.27577711];

    /// <summary>
    /// Reads the config files of <paramref name="folder"/> (and of <paramref name="visionTowerFolder"/> for an
    /// original LLaVA checkpoint). Errors name the file and the key.
    /// </summary>
    public static LlavaHfLayout Read(string folder, string? visionTowerFolder = null)
    {
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"{folder}: folder not found (a Hugging Face LLaVA model is a folder with config.json and safetensors weights)");
        string configPath = Path.Combine(folder, HfModelConfig.FileName);
        if (!File.Exists(configPath))
            throw new FileNotFoundException($"{configPath}: file not found (a Hugging Face model folder needs a {HfModelConfig.FileName})", configPath);
        using var document = ConfigJson.ParseFile(configPath);
        var json = new ConfigJson(document.RootElement, configPath, "");

        bool original = HfModelConfig.IsOriginalLlavaLayout(json);
        var layout = original ? ReadOriginal(json, folder, visionTowerFolder) : ReadLlavaHf(json, folder, visionTowerFolder);

        var imageProcessor = FindImageProcessor(folder, layout.VisionTowerFolder);
        var processor = layout.Kind == LlavaCheckpointKind.LlavaHf ? HfProcessorConfig.LoadIfPresent(folder) : null;
        layout = layout with { ImageProcessor = imageProcessor, Processor = processor };
        layout.CheckProcessorTokenCount();
        return layout;
    }

    private static LlavaHfLayout ReadLlavaHf(ConfigJson json, string folder, string? visionTowerFolder)
    {
        string? modelType = json.StringOrNull("model_type");
        if (modelType != "llava")
            throw json.Error(modelType is null
                ? "no 'model_type' and no mm_* fields: not a LLaVA checkpoint (expected model_type \"llava\", or original LLaVA's mm_vision_tower / mm_projector_type)"
                : $"model_type '{modelType}' is not a LLaVA checkpoint (expected \"llava\", or original LLaVA's mm_vision_tower / mm_projector_type fields)");
        if (visionTowerFolder is not null)
            throw json.Error($"this llava-hf checkpoint holds its own vision tower; a separate vision tower folder ({visionTowerFolder}) is only for original LLaVA checkpoints");
        var vision = json.Object("vision_config") is { } visionJson ? HfVisionConfig.Parse(visionJson) : HfVisionConfig.LlavaDefault;
        var llava = HfLlavaConfig.Parse(json);
        if (llava.VisionFeatureLayers.Length != 1)
            throw json.Error($"vision_feature_layer [{string.Join(", ", llava.VisionFeatureLayers)}] selects several layers whose features are concatenated, which is not supported; LLaVA uses one layer");
        return new LlavaHfLayout
        {
            Kind = LlavaCheckpointKind.LlavaHf,
            Folder = folder,
            ConfigPath = json.Path,
            VisionConfigPath = json.Path,
            Vision = vision,
            FeatureLayer = FeatureLayerIndex(json, "vision_feature_layer", llava.VisionFeatureLayers[0], vision),
            SelectStrategy = llava.VisionFeatureSelectStrategy == "full" ? FeatureSelectStrategy.Full : FeatureSelectStrategy.Default,
            Projector = ProjectorKind.Mlp2xGelu,
            ProjectorActivation = ActivationOf(json.Path, "projector_hidden_act", llava.ProjectorHiddenAct),
            ProjectorBias = llava.MultimodalProjectorBias,
            ImageTokenIndex = llava.ImageTokenIndex,
        };
    }

    private static LlavaHfLayout ReadOriginal(ConfigJson json, string folder, string? visionTowerFolder)
    {
        string towerName = json.String("mm_vision_tower", json.String("vision_tower", "(not named)"));
        if (visionTowerFolder is null)
            throw json.Error($"this original LLaVA checkpoint has no vision tower: its weights are in a separate CLIP checkpoint (mm_vision_tower '{towerName}'); " +
                             "pass that folder with --vision-tower DIR (visionTowerFolder)");
        if (!Directory.Exists(visionTowerFolder))
            throw new DirectoryNotFoundException($"{visionTowerFolder}: vision tower folder not found (expected a CLIP checkpoint folder such as openai/clip-vit-large-patch14-336)");
        var (vision, visionConfigPath) = ReadTowerConfig(visionTowerFolder);

        int selectLayer = json.IntOrNull("mm_vision_select_layer")
                          ?? throw json.Error("no 'mm_vision_select_layer' (the CLIP hidden state LLaVA takes, −2 for LLaVA-1.5)");
        string feature = json.String("mm_vision_select_feature", "patch");
        var strategy = feature switch
        {
            "patch" => FeatureSelectStrategy.Default,
            "cls_patch" => FeatureSelectStrategy.Full,
            _ => throw json.Error($"mm_vision_select_feature '{feature}' is not one of 'patch', 'cls_patch'"),
        };
        if (strategy == FeatureSelectStrategy.Default && !vision.IsClip)
            throw json.Error($"mm_vision_select_feature 'patch' drops a class token, but the vision tower in {visionConfigPath} ({vision.ModelType}) has none");
        string projectorType = json.String("mm_projector_type", "linear");
        var projector = projectorType switch
        {
            "linear" => ProjectorKind.Linear,
            "mlp2x_gelu" => ProjectorKind.Mlp2xGelu,
            _ => throw json.Error($"mm_projector_type '{projectorType}' is not supported (supported: linear, mlp2x_gelu)"),
        };
        if (json.IntOrNull("mm_hidden_size") is { } mmHidden && mmHidden != vision.HiddenSize)
            throw json.Error($"mm_hidden_size {mmHidden} differs from the vision tower's hidden_size {vision.HiddenSize} ({visionConfigPath})");
        string? aspect = json.StringOrNull("image_aspect_ratio");
        if (aspect is not (null or "pad" or "square"))
            throw json.Error($"image_aspect_ratio '{aspect}' is not supported (supported: pad, square; anyres is LLaVA-1.6)");
        return new LlavaHfLayout
        {
            Kind = LlavaCheckpointKind.Original,
            Folder = folder,
            VisionTowerFolder = visionTowerFolder,
            ConfigPath = json.Path,
            VisionConfigPath = visionConfigPath,
            Vision = vision,
            FeatureLayer = FeatureLayerIndex(json, "mm_vision_select_layer", selectLayer, vision),
            SelectStrategy = strategy,
            Projector = projector,
            ProjectorActivation = ActivationFunction.GeluErf, // nn.GELU() in LLaVA's builder: exact erf
            ProjectorBias = true,
            ImageAspectRatio = aspect,
        };
    }

    /// <summary>A CLIP / SigLIP checkpoint's config.json: model_type clip / siglip (vision_config inside) or the vision model itself.</summary>
    internal static (HfVisionConfig Vision, string Path) ReadTowerConfig(string towerFolder)
    {
        string path = Path.Combine(towerFolder, HfModelConfig.FileName);
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path}: file not found (the vision tower folder needs the CLIP checkpoint's {HfModelConfig.FileName})", path);
        using var document = ConfigJson.ParseFile(path);
        var json = new ConfigJson(document.RootElement, path, "");
        string? modelType = json.StringOrNull("model_type");
        HfVisionConfig vision = modelType switch
        {
            "clip" => HfVisionConfig.Parse(json.Object("vision_config") ?? throw json.Error("model_type 'clip' without a 'vision_config'"), HfVisionConfig.Clip),
            "siglip" => HfVisionConfig.Parse(json.Object("vision_config") ?? throw json.Error("model_type 'siglip' without a 'vision_config'"), HfVisionConfig.Siglip),
            HfVisionConfig.Clip or HfVisionConfig.Siglip => HfVisionConfig.Parse(json),
            _ => throw json.Error($"model_type '{modelType}' is not a vision tower (supported: clip, siglip, {string.Join(", ", HfVisionConfig.SupportedModelTypes)})"),
        };
        return (vision, path);
    }

    private static HfImageProcessorConfig? FindImageProcessor(string folder, string? towerFolder)
    {
        foreach (string? dir in new[] { folder, towerFolder })
            if (dir is not null && File.Exists(Path.Combine(dir, HfImageProcessorConfig.FileName)))
                return HfImageProcessorConfig.Load(Path.Combine(dir, HfImageProcessorConfig.FileName));
        return null;
    }

    private static int FeatureLayerIndex(ConfigJson json, string key, int layer, HfVisionConfig vision)
    {
        int index = VisionConfig.HiddenStateIndex(layer, vision.NumHiddenLayers);
        if (index < 0 || index > vision.NumHiddenLayers)
            throw json.Error($"{key} = {layer} is outside the {vision.NumHiddenLayers + 1} hidden states of a {vision.NumHiddenLayers}-layer tower " +
                             $"(−{vision.NumHiddenLayers + 1}..{vision.NumHiddenLayers})");
        return index;
    }

    /// <summary>transformers' ACT2FN names the engine implements; <paramref name="keyPath"/> in <paramref name="file"/> for the message.</summary>
    internal static ActivationFunction ActivationOf(string file, string keyPath, string name) => name switch
    {
        "quick_gelu" => ActivationFunction.QuickGelu,
        "gelu" => ActivationFunction.GeluErf,
        "gelu_pytorch_tanh" or "gelu_new" => ActivationFunction.GeluTanh,
        _ => throw new HuggingFaceConfigException(file, $"{keyPath} '{name}' is not supported (supported: quick_gelu, gelu, gelu_pytorch_tanh, gelu_new)"),
    };

    /// <summary>HF raises "Image features and image tokens do not match" at run time; say so at load time instead.</summary>
    private void CheckProcessorTokenCount()
    {
        if (Processor is not { } processor || ImageProcessor is not { } image) return;
        int side = image.CropHeight ?? image.Height ?? image.ShortestEdge ?? Vision.ImageSize;
        int width = image.CropWidth ?? image.Width ?? image.ShortestEdge ?? Vision.ImageSize;
        if (processor.ImageTokenCount(side, width) is { } count && count != ImageTokenCount)
            throw new HuggingFaceConfigException(processor.Path,
                $"the processor expands each image into {count} tokens ({side}×{width} px, patch_size {processor.PatchSize}, " +
                $"num_additional_image_tokens {processor.NumAdditionalImageTokens}, strategy '{processor.VisionFeatureSelectStrategy}') " +
                $"but the vision tower yields {ImageTokenCount} features per image");
    }

    /// <summary>The tower's <see cref="VisionConfig"/> (mean/std from the image processor, else the tower family's defaults).</summary>
    public VisionConfig ToVisionConfig(bool hasPatchBias)
    {
        var v = Vision;
        var kind = v.IsClip ? VisionTowerKind.Clip : VisionTowerKind.SigLip;
        var activation = ActivationOf(VisionConfigPath, Kind == LlavaCheckpointKind.LlavaHf ? "vision_config.hidden_act" : "hidden_act", v.HiddenAct);
        if (v.NumChannels != 3)
            throw new HuggingFaceConfigException(VisionConfigPath, $"num_channels = {v.NumChannels}: only RGB (3) towers are supported");
        try
        {
            return new VisionConfig(kind, v.ImageSize, v.PatchSize, v.HiddenSize, v.NumAttentionHeads, v.IntermediateSize,
                v.NumHiddenLayers, (float)v.LayerNormEps, activation, FeatureLayer, SelectStrategy,
                ImageMean.Select(x => (float)x).ToArray(), ImageStd.Select(x => (float)x).ToArray(), hasPatchBias);
        }
        catch (ArgumentException e)
        {
            throw new HuggingFaceConfigException(VisionConfigPath, e.Message);
        }
    }

    /// <summary>Opens the weights (safetensors, else PyTorch .bin: <see cref="HuggingFaceCheckpoint"/>) and finds the tower and projector under whichever names they have.</summary>
    internal LlavaHfWeights OpenWeights()
    {
        var projectorCheckpoint = HuggingFaceCheckpoint.Open(Folder);
        ITensorCheckpoint? towerCheckpoint = null;
        try
        {
            ITensorSource projectorSource = projectorCheckpoint, towerSource = projectorCheckpoint;
            VisionTensorNames towerNames;
            ProjectorTensorNames projectorNames;
            if (Kind == LlavaCheckpointKind.LlavaHf)
            {
                towerNames = VisionTensorNames.Find(projectorCheckpoint, VisionTensorNames.LlavaHfLayouts)
                    ?? throw projectorCheckpoint.Error(null, "no vision tower found: expected " + string.Join(" or ", VisionTensorNames.LlavaHfLayouts.Select(n => $"'{n.PatchEmbedding}'")));
                projectorNames = ProjectorTensorNames.Find(projectorCheckpoint, ProjectorTensorNames.LlavaHfLayouts)
                    ?? throw projectorCheckpoint.Error(null, "no projector found: expected " + string.Join(" or ", ProjectorTensorNames.LlavaHfLayouts.Select(n => $"'{n.Linear1}.weight'")));
            }
            else
            {
                projectorNames = Projector == ProjectorKind.Linear ? ProjectorTensorNames.OriginalLinear : ProjectorTensorNames.OriginalMlp;
                if (!projectorCheckpoint.TryGetTensor(projectorNames.Linear1 + ".weight", out _))
                {
                    var other = Projector == ProjectorKind.Linear ? ProjectorTensorNames.OriginalMlp : ProjectorTensorNames.OriginalLinear;
                    string hint = projectorCheckpoint.TryGetTensor(other.Linear1 + ".weight", out _) ? $" (the checkpoint has '{other.Linear1}.weight': does mm_projector_type in {ConfigPath} match?)" : "";
                    throw projectorCheckpoint.Error(null, $"required tensor '{projectorNames.Linear1}.weight' ({projectorNames.Layout}) is missing{hint}");
                }
                towerCheckpoint = HuggingFaceCheckpoint.Open(VisionTowerFolder!);
                towerSource = towerCheckpoint;
                towerNames = VisionTensorNames.Find(towerCheckpoint, [VisionTensorNames.VisionModel])
                    ?? throw towerCheckpoint.Error(null, $"no vision tower found: expected '{VisionTensorNames.VisionModel.PatchEmbedding}' (a CLIP / SigLIP checkpoint)");
            }

            var vision = ToVisionConfig(hasPatchBias: towerSource.TryGetTensor(towerNames.PatchBias, out _));
            var projector = ProjectorConfigFrom(projectorSource, projectorNames, vision.HiddenSize);
            return new LlavaHfWeights(this, vision, projector, towerSource, towerNames, projectorSource, projectorNames,
                towerCheckpoint is null ? [projectorCheckpoint] : [projectorCheckpoint, towerCheckpoint]);
        }
        catch
        {
            towerCheckpoint?.Dispose();
            projectorCheckpoint.Dispose();
            throw;
        }
    }

    /// <summary>Sizes from the weight shapes: linear_1 [hidden, vision], linear_2 [out, hidden].</summary>
    private ProjectorConfig ProjectorConfigFrom(ITensorSource source, ProjectorTensorNames names, int visionHidden)
    {
        source.TryGetTensor(names.Linear1 + ".weight", out var first);
        if (first.Shape.Length != 2 || first.Shape[1] != visionHidden)
            throw source.Error(first.Name, $"tensor '{first.Name}' has shape {first.ShapeText}, expected [n, {visionHidden}] (input = vision hidden size {visionHidden})");
        long hidden = first.Shape[0], output = hidden;
        if (Projector == ProjectorKind.Mlp2xGelu)
        {
            string name = names.Linear2 + ".weight";
            if (!source.TryGetTensor(name, out var second)) throw source.Error(null, $"required tensor '{name}' is missing");
            if (second.Shape.Length != 2 || second.Shape[1] != hidden)
                throw source.Error(name, $"tensor '{name}' has shape {second.ShapeText}, expected [n, {hidden}] (input = output of {names.Linear1}, {hidden})");
            output = second.Shape[0];
        }
        try
        {
            return new ProjectorConfig(Projector, visionHidden, checked((int)hidden), checked((int)output), ProjectorActivation);
        }
        catch (Exception e) when (e is ArgumentException or OverflowException)
        {
            throw source.Error(first.Name, e.Message);
        }
    }
}

/// <summary>The opened safetensors of a <see cref="LlavaHfLayout"/>: where the tower and projector are, and their configurations.</summary>
internal sealed class LlavaHfWeights(LlavaHfLayout layout, VisionConfig vision, ProjectorConfig projector,
    ITensorSource towerSource, VisionTensorNames towerNames, ITensorSource projectorSource, ProjectorTensorNames projectorNames,
    IReadOnlyList<IDisposable> files) : IDisposable
{
    public LlavaHfLayout Layout => layout;
    public VisionConfig Vision => vision;
    public ProjectorConfig Projector => projector;
    public ITensorSource TowerSource => towerSource;
    public VisionTensorNames TowerNames => towerNames;
    public ITensorSource ProjectorSource => projectorSource;
    public ProjectorTensorNames ProjectorNames => projectorNames;

    public void Dispose()
    {
        foreach (var f in files) f.Dispose();
    }
}
