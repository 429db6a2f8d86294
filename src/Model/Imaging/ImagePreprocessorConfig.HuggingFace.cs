using System.Text.Json;
using LlavaNative.Model.Formats.HuggingFace;
using LlavaNative.Model.Llava;

namespace LlavaNative.Model.Imaging;

public sealed partial record ImagePreprocessorConfig
{
    /// <summary>
    /// The preprocessing of a Hugging Face checkpoint folder, as its processor would do it:
    /// <list type="bullet">
    /// <item><c>preprocessor_config.json</c> (the folder's, else the vision tower folder's):
    /// CLIPImageProcessor — resize the shortest edge to <c>size.shortest_edge</c> (long side truncated), center crop to
    /// <c>crop_size</c> (<see cref="ImageFitMode.Crop"/>); SiglipImageProcessor — resize to <c>size.height × width</c>
    /// (<see cref="ImageFitMode.Stretch"/>); LlavaImageProcessor <c>do_pad</c> — pad to square first
    /// (<see cref="ImageFitMode.Pad"/>). Then <c>rescale_factor</c> and <c>image_mean</c> / <c>image_std</c>
    /// (skipped when do_rescale / do_normalize are false). <c>resample</c> must be 3 (BICUBIC); the result must be square.</item>
    /// <item>Original LLaVA's <c>image_aspect_ratio: "pad"</c> in config.json: pad to a square of
    /// <c>int(mean·255)</c> (122, 116, 104 for CLIP), centred, before the CLIP processor (<see cref="ImageFitMode.Pad"/>).</item>
    /// <item>No preprocessor_config.json anywhere: derived from the vision config — CLIP: shortest edge and center
    /// crop at <c>image_size</c> with CLIP's mean/std (CLIPImageProcessor's defaults); SigLIP: stretch to
    /// <c>image_size</c> with mean/std 0.5.</item>
    /// </list>
    /// Errors (unsupported resample, missing size / crop_size / image_mean / image_std, a crop that is not the
    /// tower's image size, …) are <see cref="HuggingFaceConfigException"/>s naming the file.
    /// </summary>
    public static ImagePreprocessorConfig FromHuggingFace(string folder) => FromHuggingFace(folder, null);

    /// <summary>
    /// As <see cref="FromHuggingFace(string)"/>; an original LLaVA checkpoint names its CLIP tower folder in
    /// <paramref name="visionTowerFolder"/> (its preprocessor_config.json and vision config are used).
    /// </summary>
    public static ImagePreprocessorConfig FromHuggingFace(string folder, string? visionTowerFolder)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"{folder}: folder not found");
        HfVisionConfig? vision = null;
        string? visionSource = null, aspect = null;
        HfImageProcessorConfig? processor = null;
        string configPath = Path.Combine(folder, HfModelConfig.FileName);
        if (File.Exists(configPath))
        {
            if (IsLlavaConfig(configPath))
            {
                var layout = LlavaHfLayout.Read(folder, visionTowerFolder);
                (vision, visionSource, aspect, processor) = (layout.Vision, layout.VisionConfigPath, layout.ImageAspectRatio, layout.ImageProcessor);
            }
            else
            {
                // A CLIP / SigLIP checkpoint folder of its own.
                (vision, visionSource) = LlavaHfLayout.ReadTowerConfig(folder);
            }
        }
        processor ??= FindProcessor(folder, visionTowerFolder);
        bool pad = aspect == "pad";

        if (processor is null)
        {
            if (vision is null)
                throw new FileNotFoundException($"{folder}: neither {HfImageProcessorConfig.FileName} nor a {HfModelConfig.FileName} with a vision config to derive the preprocessing from",
                    Path.Combine(folder, HfImageProcessorConfig.FileName));
            return vision.IsClip
                ? new ImagePreprocessorConfig { ImageSize = vision.ImageSize, Mode = pad ? ImageFitMode.Pad : ImageFitMode.Crop, Mean = ClipMean, Std = ClipStd }
                : SigLip(vision.ImageSize) with { Mode = pad ? ImageFitMode.Pad : ImageFitMode.Stretch };
        }

        var config = FromProcessor(processor, pad);
        if (vision is not null && config.ImageSize != vision.ImageSize)
            throw new HuggingFaceConfigException(processor.Path,
                $"the processor produces {config.ImageSize}×{config.ImageSize} images but the vision tower ({visionSource}) takes image_size {vision.ImageSize}");
        return config;
    }

    private static ImagePreprocessorConfig FromProcessor(HfImageProcessorConfig p, bool pad)
    {
        HuggingFaceConfigException Error(string problem) => new(p.Path, problem);
        if (!p.DoResize) throw Error("do_resize is false: images would reach the tower at their own size, which is not supported");
        if (p.Resample != HfImageProcessorConfig.Bicubic)
            throw Error($"resample = {p.Resample} ({ResampleName(p.Resample)}) is not supported: only 3 (BICUBIC, Pillow-exact) is implemented");
        float[] mean = p.DoNormalize ? p.ImageMean.Select(x => (float)x).ToArray() : [0f, 0f, 0f];
        float[] std = p.DoNormalize ? p.ImageStd.Select(x => (float)x).ToArray() : [1f, 1f, 1f];
        double rescale = p.DoRescale ? p.RescaleFactor : 1.0;
        pad |= p.DoPad;

        if (p.ShortestEdge is { } edge)
        {
            if (!p.DoCenterCrop)
                throw Error($"size.shortest_edge {edge} without do_center_crop keeps the aspect ratio; the vision tower needs a square image");
            if (p.CropHeight != p.CropWidth)
                throw Error($"crop_size {p.CropHeight}×{p.CropWidth} is not square; the vision tower needs a square image");
            return new ImagePreprocessorConfig
            {
                ImageSize = p.CropHeight!.Value, ShortestEdge = edge, Mode = pad ? ImageFitMode.Pad : ImageFitMode.Crop,
                Mean = mean, Std = std, RescaleFactor = rescale,
            };
        }
        int side = p.Height!.Value;
        if (p.Width != side) throw Error($"size {p.Height}×{p.Width} is not square; the vision tower needs a square image");
        if (p.DoCenterCrop && (p.CropHeight != side || p.CropWidth != side))
            throw Error($"a {side}×{side} resize followed by a {p.CropHeight}×{p.CropWidth} center crop is not supported");
        return new ImagePreprocessorConfig
        {
            ImageSize = side, Mode = pad ? ImageFitMode.Pad : ImageFitMode.Stretch, Mean = mean, Std = std, RescaleFactor = rescale,
        };
    }

    private static HfImageProcessorConfig? FindProcessor(string folder, string? towerFolder)
    {
        foreach (string? dir in new[] { folder, towerFolder })
            if (dir is not null && File.Exists(Path.Combine(dir, HfImageProcessorConfig.FileName)))
                return HfImageProcessorConfig.Load(Path.Combine(dir, HfImageProcessorConfig.FileName));
        return null;
    }

    /// <summary>A LLaVA config (llava-hf or original) rather than a tower's own.</summary>
    private static bool IsLlavaConfig(string configPath)
    {
        using var document = ConfigJson.ParseFile(configPath);
        var root = document.RootElement;
        if (root.TryGetProperty("model_type", out var type) && type.ValueKind == JsonValueKind.String && type.GetString() == "llava") return true;
        foreach (string key in new[] { "mm_vision_tower", "mm_projector_type", "mm_hidden_size", "mm_vision_select_layer" })
            if (root.TryGetProperty(key, out _)) return true;
        return false;
    }

    private static string ResampleName(int code) => code switch
    {
        0 => "NEAREST", 1 => "LANCZOS", 2 => "BILINEAR", 3 => "BICUBIC", 4 => "BOX", 5 => "HAMMING", _ => "unknown",
    };
}
