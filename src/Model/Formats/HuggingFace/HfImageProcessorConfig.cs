namespace LlavaNative.Model.Formats.HuggingFace;

/// <summary>
/// A Hugging Face <c>preprocessor_config.json</c> of the image processors LLaVA checkpoints use, as written:
/// <c>CLIPImageProcessor</c> / <c>CLIPFeatureExtractor</c> (llava-1.5-hf, openai/clip-vit-*: <c>size.shortest_edge</c>,
/// <c>crop_size</c>, <c>do_center_crop</c>), <c>LlavaImageProcessor</c> (the same plus <c>do_pad</c>) and
/// <c>SiglipImageProcessor</c> (llava-interleave: <c>size.height/width</c>, no crop); "…Fast" variants take the same
/// fields. Omitted switches take the processor class's defaults (do_resize, do_rescale, do_normalize true;
/// do_center_crop true for CLIP/LLaVA, absent for SigLIP; rescale_factor 1/255; resample 3 = BICUBIC). The geometry
/// (<c>size</c>, <c>crop_size</c> when cropping) and <c>image_mean</c> / <c>image_std</c> are required: save_pretrained
/// always writes them, and a guessed default would silently change every pixel.
/// </summary>
public sealed record HfImageProcessorConfig
{
    public const string FileName = "preprocessor_config.json";

    /// <summary>PIL's resample code for BICUBIC, the only one the engine implements (Pillow-exact).</summary>
    public const int Bicubic = 3;

    public static readonly string[] KnownProcessorTypes =
    [
        "CLIPImageProcessor", "CLIPImageProcessorFast", "CLIPFeatureExtractor",
        "LlavaImageProcessor", "LlavaImageProcessorFast", "SiglipImageProcessor", "SiglipImageProcessorFast",
    ];

    public required string Path { get; init; }

    /// <summary><c>image_processor_type</c> (or the older <c>feature_extractor_type</c>), null when neither is given.</summary>
    public string? ProcessorType { get; init; }

    public bool DoResize { get; init; } = true;
    /// <summary><c>size.shortest_edge</c> (or a plain integer <c>size</c>, as old feature extractors wrote it).</summary>
    public int? ShortestEdge { get; init; }
    /// <summary><c>size.height</c> / <c>size.width</c>: resize to exactly this, aspect not kept.</summary>
    public int? Height { get; init; }
    public int? Width { get; init; }
    public bool DoCenterCrop { get; init; }
    public int? CropHeight { get; init; }
    public int? CropWidth { get; init; }
    public bool DoRescale { get; init; } = true;
    public double RescaleFactor { get; init; } = 1.0 / 255.0;
    public bool DoNormalize { get; init; } = true;
    public required double[] ImageMean { get; init; }
    public required double[] ImageStd { get; init; }
    public int Resample { get; init; } = Bicubic;
    /// <summary>LlavaImageProcessor's <c>do_pad</c>: pad to a square of the mean colour before resizing.</summary>
    public bool DoPad { get; init; }

    /// <summary>Reads <paramref name="path"/>: the file, or a folder holding one.</summary>
    public static HfImageProcessorConfig Load(string path)
    {
        string file = Directory.Exists(path) ? System.IO.Path.Combine(path, FileName) : path;
        if (!File.Exists(file)) throw new FileNotFoundException($"{file}: file not found", file);
        using var document = ConfigJson.ParseFile(file);
        return Parse(new ConfigJson(document.RootElement, file, ""));
    }

    internal static HfImageProcessorConfig Parse(ConfigJson json)
    {
        string? type = json.StringOrNull("image_processor_type") ?? json.StringOrNull("feature_extractor_type");
        if (type is not null && !KnownProcessorTypes.Contains(type))
            throw json.Error($"{(json.Has("image_processor_type") ? "image_processor_type" : "feature_extractor_type")} '{type}' is not supported (supported: {string.Join(", ", KnownProcessorTypes)})");
        bool siglip = type?.StartsWith("Siglip", StringComparison.Ordinal) == true;

        int? shortestEdge = null, height = null, width = null;
        if (json.IsObject("size"))
        {
            var size = json.Object("size")!.Value;
            shortestEdge = size.IntOrNull("shortest_edge");
            height = size.IntOrNull("height");
            width = size.IntOrNull("width");
            if (shortestEdge is null && (height is null || width is null))
                throw json.Error("size has neither shortest_edge nor height and width");
        }
        else if (json.IntOrNull("size") is { } plain)
        {
            // CLIPFeatureExtractor wrote "size": 224 for the shortest edge; SigLIP's plain size is the square side.
            if (siglip) height = width = plain; else shortestEdge = plain;
        }
        else
            throw json.Error("no 'size' (the resize target: {\"shortest_edge\": N} for CLIP, {\"height\": N, \"width\": N} for SigLIP)");

        bool crop = json.Bool("do_center_crop", !siglip);
        int? cropHeight = null, cropWidth = null;
        if (crop)
        {
            if (json.IsObject("crop_size"))
            {
                var c = json.Object("crop_size")!.Value;
                cropHeight = c.IntOrNull("height");
                cropWidth = c.IntOrNull("width");
                if (cropHeight is null || cropWidth is null) throw json.Error("crop_size needs height and width");
            }
            else if (json.IntOrNull("crop_size") is { } side)
                cropHeight = cropWidth = side;
            else
                throw json.Error("do_center_crop is true but there is no 'crop_size'");
        }

        double[] mean = json.DoubleListOrNull("image_mean") ?? throw json.Error("no 'image_mean' (per-channel mean, e.g. CLIP's [0.48145466, 0.4578275, 0.40821073])");
        double[] std = json.DoubleListOrNull("image_std") ?? throw json.Error("no 'image_std' (per-channel standard deviation)");
        if (mean.Length != 3) throw json.Error($"image_mean has {mean.Length} values, expected 3 (R, G, B)");
        if (std.Length != 3) throw json.Error($"image_std has {std.Length} values, expected 3 (R, G, B)");
        foreach (double s in std)
            if (!(s > 0)) throw json.Error($"image_std contains {s}, expected positive values");

        var config = new HfImageProcessorConfig
        {
            Path = json.Path,
            ProcessorType = type,
            DoResize = json.Bool("do_resize", true),
            ShortestEdge = shortestEdge,
            Height = height,
            Width = width,
            DoCenterCrop = crop,
            CropHeight = cropHeight,
            CropWidth = cropWidth,
            DoRescale = json.Bool("do_rescale", true),
            RescaleFactor = json.Double("rescale_factor", 1.0 / 255.0),
            DoNormalize = json.Bool("do_normalize", true),
            ImageMean = mean,
            ImageStd = std,
            Resample = json.Int("resample", Bicubic),
            DoPad = json.Bool("do_pad", false),
        };
        foreach (var (key, value) in new[] { ("size.shortest_edge", shortestEdge), ("size.height", height), ("size.width", width), ("crop_size.height", cropHeight), ("crop_size.width", cropWidth) })
            if (value is < 1 or > 16384) throw json.Error($"{key} = {value} is invalid (expected 1..16384)");
        if (!(config.RescaleFactor > 0)) throw json.Error($"rescale_factor = {config.RescaleFactor} is invalid (expected a positive number)");
        return config;
    }
}

/// <summary>
/// A llava-hf <c>processor_config.json</c> (newer Hub revisions): how many <c>&lt;image&gt;</c> placeholders the
/// processor expands each image into — <c>(H // patch_size) · (W // patch_size) + num_additional_image_tokens</c>,
/// minus 1 when <c>vision_feature_select_strategy</c> is "default" (processing_llava.py; num_additional_image_tokens
/// is 1 for CLIP's class token, 0 for SigLIP). Omitted fields take LlavaProcessor's defaults (patch_size none,
/// num_additional_image_tokens 0, strategy "default", image_token "&lt;image&gt;").
/// </summary>
public sealed record HfProcessorConfig
{
    public const string FileName = "processor_config.json";

    public required string Path { get; init; }
    public int? PatchSize { get; init; }
    public int NumAdditionalImageTokens { get; init; }
    public string VisionFeatureSelectStrategy { get; init; } = "default";
    public string ImageToken { get; init; } = "<image>";

    /// <summary>Placeholders per image of <paramref name="height"/> × <paramref name="width"/> processed pixels, or null without a patch size.</summary>
    public int? ImageTokenCount(int height, int width) => PatchSize is not { } p
        ? null
        : height / p * (width / p) + NumAdditionalImageTokens - (VisionFeatureSelectStrategy == "default" ? 1 : 0);

    /// <summary>The folder's processor_config.json, or null when it has none.</summary>
    public static HfProcessorConfig? LoadIfPresent(string folder)
    {
        string file = System.IO.Path.Combine(folder, FileName);
        if (!File.Exists(file)) return null;
        using var document = ConfigJson.ParseFile(file);
        var json = new ConfigJson(document.RootElement, file, "");
        string strategy = json.String("vision_feature_select_strategy", "default");
        if (strategy is not ("default" or "full"))
            throw json.Error($"vision_feature_select_strategy '{strategy}' is not one of 'default', 'full'");
        var config = new HfProcessorConfig
        {
            Path = file,
            PatchSize = json.IntOrNull("patch_size"),
            NumAdditionalImageTokens = json.Int("num_additional_image_tokens", 0),
            VisionFeatureSelectStrategy = strategy,
            ImageToken = json.String("image_token", "<image>"),
        };
        if (config.PatchSize is < 1) throw json.Error($"patch_size = {config.PatchSize} is invalid (expected a positive integer)");
        if (config.NumAdditionalImageTokens is < 0 or > 16) throw json.Error($"num_additional_image_tokens = {config.NumAdditionalImageTokens} is invalid (expected 0..16)");
        return config;
    }
}
