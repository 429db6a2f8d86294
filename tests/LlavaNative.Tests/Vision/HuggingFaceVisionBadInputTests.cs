using LlavaNative.Kernels.Tensors;
using LlavaNative.Model.Formats;
using LlavaNative.Model.Formats.HuggingFace;
using LlavaNative.Model.Formats.Safetensors;
using LlavaNative.Model.Imaging;
using LlavaNative.Model.Llava;
using LlavaNative.Model.Vision;
using LlavaNative.TestSupport.Vision;
using Xunit;

namespace LlavaNative.Tests.Vision;

/// <summary>
/// Tiny random LLaVA folders (RandomLlavaHfFolder) broken one way at a time: <see cref="ImageEncoder.LoadHuggingFace"/>,
/// <see cref="ImagePreprocessorConfig.FromHuggingFace(string)"/> and <see cref="MmprojConverter"/> fail with an
/// exception naming the file and the problem.
/// </summary>
public sealed class HuggingFaceVisionBadInputTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("llava-hfvision-bad-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private (string Folder, string? Tower) Write(LlavaFolderOptions? options = null, RandomVisionSpec? spec = null)
    {
        var model = RandomVisionModel.Create(spec ?? RandomVisionSpec.TinyClip);
        return RandomLlavaHfFolder.Write(model, Path.Combine(_dir, Guid.NewGuid().ToString("N")[..8]), options ?? new LlavaFolderOptions());
    }

    private static void Edit(string path, Func<string, string> change) => File.WriteAllText(path, change(File.ReadAllText(path)));

    [Fact]
    public void GoodFoldersLoad()
    {
        // The baseline the tests below break: every layout loads with the expected token count.
        foreach (var layout in Enum.GetValues<LlavaFolderLayout>())
        {
            var (folder, tower) = Write(new LlavaFolderOptions { Layout = layout });
            using var encoder = ImageEncoder.LoadHuggingFace(folder, null, tower);
            Assert.Equal(16, encoder.ImageTokenCount);
        }
    }

    [Fact]
    public void EncodingFromAHalfPrecisionFolderAllocatesNothing()
    {
        // BF16 matrices used in place from the mapped file, F32 copies of the rest made once at load.
        var model = RandomVisionModel.Create(RandomVisionSpec.TinyClip);
        var (folder, _) = RandomLlavaHfFolder.Write(model, Path.Combine(_dir, "bf16"), new LlavaFolderOptions { DType = SafetensorsDType.BF16 });
        using var pool = new LlavaNative.Kernels.Cpu.ComputeThreadPool(2);
        using var encoder = ImageEncoder.LoadHuggingFace(folder, pool);
        var pixels = model.RandomPixels(1);
        var output = new float[encoder.ImageTokenCount * encoder.EmbeddingLength];
        for (int i = 0; i < 4; i++) encoder.EncodeAndProject(pixels, output);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 8; i++) encoder.EncodeAndProject(pixels, output);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(TensorType.BF16, encoder.Vision.Weights.Layers[0].Query.Type);
    }

    [Fact]
    public void MissingTensorNamesTheTensorAndFile()
    {
        string victim = "vision_tower.vision_model.encoder.layers.1.self_attn.q_proj.weight";
        var (folder, _) = Write(new LlavaFolderOptions { Filter = (name, _, _) => name != victim });
        var e = Assert.ThrowsAny<ModelFormatException>(() => ImageEncoder.LoadHuggingFace(folder));
        Assert.Contains(victim, e.Message);
        Assert.Contains("model.safetensors", e.Message);
        Assert.Contains("missing", e.Message);
    }

    [Fact]
    public void MissingProjectorNamesTheExpectedKeys()
    {
        var (folder, _) = Write(new LlavaFolderOptions { Layout = LlavaFolderLayout.LlavaHfNew, Filter = (name, _, _) => !name.Contains("multi_modal_projector") });
        var e = Assert.ThrowsAny<ModelFormatException>(() => ImageEncoder.LoadHuggingFace(folder));
        Assert.Contains("model.multi_modal_projector.linear_1.weight", e.Message);
    }

    [Fact]
    public void WrongShapeIsReported()
    {
        string victim = "vision_tower.vision_model.encoder.layers.0.mlp.fc1.weight";
        var (folder, _) = Write(new LlavaFolderOptions
        {
            Filter = (name, shape, _) =>
            {
                if (name == victim) (shape[0], shape[1]) = (shape[1], shape[0]); // [in, out] instead of [out, in]
                return true;
            },
        });
        var e = Assert.ThrowsAny<ModelFormatException>(() => ImageEncoder.LoadHuggingFace(folder));
        Assert.Contains(victim, e.Message);
        Assert.Contains("[64, 128]", e.Message);
        Assert.Contains("expected [128, 64]", e.Message);
    }

    [Fact]
    public void UnknownVisionModelTypeIsAConfigError()
    {
        var (folder, _) = Write(new LlavaFolderOptions { EditConfig = c => ((Dictionary<string, object?>)c["vision_config"]!)["model_type"] = "pixtral" });
        var e = Assert.Throws<HuggingFaceConfigException>(() => ImageEncoder.LoadHuggingFace(folder));
        Assert.Contains("config.json", e.Message);
        Assert.Contains("vision_config.model_type 'pixtral'", e.Message);
    }

    [Fact]
    public void UnsupportedVisionActivationIsAConfigError()
    {
        var (folder, _) = Write(new LlavaFolderOptions { EditConfig = c => ((Dictionary<string, object?>)c["vision_config"]!)["hidden_act"] = "relu" });
        var e = Assert.Throws<HuggingFaceConfigException>(() => ImageEncoder.LoadHuggingFace(folder));
        Assert.Contains("config.json", e.Message);
        Assert.Contains("vision_config.hidden_act 'relu'", e.Message);
    }

    [Fact]
    public void ListFeatureLayerIsAClearError()
    {
        var (folder, _) = Write(new LlavaFolderOptions { EditConfig = c => c["vision_feature_layer"] = new[] { -2, -5 } });
        var e = Assert.Throws<HuggingFaceConfigException>(() => ImageEncoder.LoadHuggingFace(folder));
        Assert.Contains("config.json", e.Message);
        Assert.Contains("vision_feature_layer [-2, -5]", e.Message);
    }

    [Fact]
    public void FeatureLayerOutsideTheTowerIsAClearError()
    {
        var (folder, _) = Write(new LlavaFolderOptions { EditConfig = c => c["vision_feature_layer"] = -9 });
        var e = Assert.Throws<HuggingFaceConfigException>(() => ImageEncoder.LoadHuggingFace(folder));
        Assert.Contains("vision_feature_layer = -9", e.Message);
    }

    [Fact]
    public void OriginalLayoutWithoutVisionTowerNamesTheOption()
    {
        var (folder, _) = Write(new LlavaFolderOptions { Layout = LlavaFolderLayout.Original });
        var e = Assert.Throws<HuggingFaceConfigException>(() => ImageEncoder.LoadHuggingFace(folder));
        Assert.Contains("config.json", e.Message);
        Assert.Contains("no vision tower", e.Message);
        Assert.Contains("--vision-tower", e.Message);
        Assert.Contains("openai/clip-vit-large-patch14-336", e.Message);
        Assert.Throws<HuggingFaceConfigException>(() => MmprojConverter.Convert(folder, Path.Combine(_dir, "x.gguf")));
    }

    [Fact]
    public void OriginalLayoutWithMismatchedProjectorTypeGivesAHint()
    {
        var (folder, tower) = Write(new LlavaFolderOptions { Layout = LlavaFolderLayout.Original, EditConfig = c => c["mm_projector_type"] = "linear" });
        var e = Assert.ThrowsAny<ModelFormatException>(() => ImageEncoder.LoadHuggingFace(folder, null, tower));
        Assert.Contains("model.mm_projector.weight", e.Message);
        Assert.Contains("model.mm_projector.0.weight", e.Message);
    }

    [Fact]
    public void OriginalLayoutWithUnknownProjectorTypeIsAConfigError()
    {
        var (folder, tower) = Write(new LlavaFolderOptions { Layout = LlavaFolderLayout.Original, EditConfig = c => c["mm_projector_type"] = "mlp3x_gelu" });
        var e = Assert.Throws<HuggingFaceConfigException>(() => ImageEncoder.LoadHuggingFace(folder, null, tower));
        Assert.Contains("mm_projector_type 'mlp3x_gelu'", e.Message);
    }

    [Fact]
    public void VisionTowerFolderWithoutTowerWeights()
    {
        var (folder, tower) = Write(new LlavaFolderOptions { Layout = LlavaFolderLayout.Original });
        File.WriteAllText(Path.Combine(tower!, "config.json"), """{"model_type": "bert"}""");
        var e = Assert.Throws<HuggingFaceConfigException>(() => ImageEncoder.LoadHuggingFace(folder, null, tower));
        Assert.Contains("model_type 'bert' is not a vision tower", e.Message);
    }

    [Fact]
    public void LlavaHfFolderRejectsASeparateTower()
    {
        var (folder, _) = Write();
        var e = Assert.Throws<HuggingFaceConfigException>(() => ImageEncoder.LoadHuggingFace(folder, null, _dir));
        Assert.Contains("only for original LLaVA", e.Message);
    }

    [Fact]
    public void MissingFolderAndMissingConfig()
    {
        Assert.Throws<DirectoryNotFoundException>(() => ImageEncoder.LoadHuggingFace(Path.Combine(_dir, "nope")));
        var (folder, _) = Write();
        File.Delete(Path.Combine(folder, "config.json"));
        var e = Assert.Throws<FileNotFoundException>(() => ImageEncoder.LoadHuggingFace(folder));
        Assert.Contains("config.json", e.Message);
    }

    [Fact]
    public void NotALlavaConfig()
    {
        var (folder, _) = Write();
        File.WriteAllText(Path.Combine(folder, "config.json"), """{"model_type": "llama", "hidden_size": 8}""");
        var e = Assert.Throws<HuggingFaceConfigException>(() => ImageEncoder.LoadHuggingFace(folder));
        Assert.Contains("model_type 'llama' is not a LLaVA checkpoint", e.Message);
    }

    [Fact]
    public void ProcessorTokenCountMismatchNamesProcessorConfig()
    {
        var (folder, _) = Write(new LlavaFolderOptions { ProcessorConfig = true });
        Edit(Path.Combine(folder, "processor_config.json"), t => t.Replace("\"num_additional_image_tokens\": 1", "\"num_additional_image_tokens\": 0"));
        var e = Assert.Throws<HuggingFaceConfigException>(() => ImageEncoder.LoadHuggingFace(folder));
        Assert.Contains("processor_config.json", e.Message);
        Assert.Contains("15 tokens", e.Message);
        Assert.Contains("16 features", e.Message);
    }

    [Fact]
    public void ProjectorBiasPresentButConfigSaysNone()
    {
        var (folder, _) = Write(new LlavaFolderOptions { EditConfig = c => c["multimodal_projector_bias"] = false });
        var e = Assert.ThrowsAny<ModelFormatException>(() => ImageEncoder.LoadHuggingFace(folder));
        Assert.Contains("multi_modal_projector.linear_1.bias", e.Message);
        Assert.Contains("multimodal_projector_bias = false", e.Message);
    }

    [Fact]
    public void UnsupportedDTypeIsNamed()
    {
        string victim = "vision_tower.vision_model.encoder.layers.0.self_attn.k_proj.weight";
        var (folder, _) = Write();
        // Rewrite the checkpoint with one tensor as I32 (same byte size as F32).
        using (var checkpoint = SafetensorsCheckpoint.Open(folder))
        {
            var writer = new SafetensorsWriter();
            foreach (var name in checkpoint.TensorNames)
            {
                checkpoint.TryGetTensor(name, out SafetensorsTensorInfo t, out _);
                byte[] bytes;
                unsafe { bytes = new ReadOnlySpan<byte>(t.Data, checked((int)t.ByteSize)).ToArray(); }
                writer.AddTensor(name, name == victim ? SafetensorsDType.I32 : t.DType, t.Shape, bytes);
            }
            writer.WriteTo(Path.Combine(_dir, "rewritten.safetensors"));
        }
        File.Move(Path.Combine(_dir, "rewritten.safetensors"), Path.Combine(folder, "model.safetensors"), overwrite: true);
        var e = Assert.ThrowsAny<ModelFormatException>(() => ImageEncoder.LoadHuggingFace(folder));
        Assert.Contains(victim, e.Message);
        Assert.Contains("I32", e.Message);
    }

    // ---- preprocessor_config.json ------------------------------------------------------------------------------

    [Fact]
    public void PreprocessingFromClipAndSiglipConfigs()
    {
        var (clip, _) = Write();
        var c = ImagePreprocessorConfig.FromHuggingFace(clip);
        Assert.Equal((56, ImageFitMode.Crop, 56), (c.ImageSize, c.Mode, c.ShortestEdge!.Value));
        Assert.Equal(ImagePreprocessorConfig.ClipMean, c.Mean);
        Assert.Equal(new byte[] { 122, 116, 104 }, c.PadColor);

        var (siglip, _) = Write(spec: RandomVisionSpec.TinySigLip);
        var s = ImagePreprocessorConfig.FromHuggingFace(siglip);
        Assert.Equal((60, ImageFitMode.Stretch), (s.ImageSize, s.Mode));
        Assert.Equal(new[] { 0.5f, 0.5f, 0.5f }, s.Std);

        var (original, tower) = Write(new LlavaFolderOptions { Layout = LlavaFolderLayout.Original });
        var o = ImagePreprocessorConfig.FromHuggingFace(original, tower);
        Assert.Equal((56, ImageFitMode.Pad), (o.ImageSize, o.Mode)); // image_aspect_ratio "pad" + the CLIP folder's processor
        var (square, squareTower) = Write(new LlavaFolderOptions { Layout = LlavaFolderLayout.Original, ImageAspectRatio = null });
        Assert.Equal(ImageFitMode.Crop, ImagePreprocessorConfig.FromHuggingFace(square, squareTower).Mode);
    }

    [Fact]
    public void PreprocessingDerivedWithoutPreprocessorConfig()
    {
        var (clip, _) = Write(new LlavaFolderOptions { PreprocessorConfig = false });
        var c = ImagePreprocessorConfig.FromHuggingFace(clip);
        Assert.Equal((56, ImageFitMode.Crop), (c.ImageSize, c.Mode));
        Assert.Equal(ImagePreprocessorConfig.ClipStd, c.Std);
        var (siglip, _) = Write(new LlavaFolderOptions { PreprocessorConfig = false }, RandomVisionSpec.TinySigLip);
        var s = ImagePreprocessorConfig.FromHuggingFace(siglip);
        Assert.Equal((60, ImageFitMode.Stretch), (s.ImageSize, s.Mode));
        // The encoder's mean/std (written to converted mmproj files) come from the same defaults.
        using var encoder = ImageEncoder.LoadHuggingFace(siglip);
        Assert.Equal(new[] { 0.5f, 0.5f, 0.5f }, encoder.VisionConfig.ImageMean);
    }

    [Theory]
    [InlineData("\"resample\": 3", "\"resample\": 2", "resample = 2 (BILINEAR)")]
    [InlineData("\"image_mean\"", "\"no_mean\"", "no 'image_mean'")]
    [InlineData("\"image_std\"", "\"no_std\"", "no 'image_std'")]
    [InlineData("\"crop_size\"", "\"no_crop\"", "no 'crop_size'")]
    [InlineData("\"size\"", "\"no_size\"", "no 'size'")]
    [InlineData("\"do_resize\": true", "\"do_resize\": false", "do_resize is false")]
    [InlineData("\"do_center_crop\": true", "\"do_center_crop\": false", "without do_center_crop")]
    [InlineData("\"CLIPImageProcessor\"", "\"ViTImageProcessor\"", "'ViTImageProcessor' is not supported")]
    [InlineData("\"height\": 56,", "\"height\": 48,", "not square")]
    public void BadPreprocessorConfigNamesTheFile(string find, string replace, string expected)
    {
        var (folder, _) = Write();
        string path = Path.Combine(folder, "preprocessor_config.json");
        Edit(path, t =>
        {
            Assert.Contains(find, t);
            return t.Replace(find, replace);
        });
        var e = Assert.Throws<HuggingFaceConfigException>(() => ImagePreprocessorConfig.FromHuggingFace(folder));
        Assert.Contains("preprocessor_config.json", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void PreprocessorCropDifferentFromTowerImageSize()
    {
        var (folder, _) = Write();
        Edit(Path.Combine(folder, "preprocessor_config.json"), t => t.Replace("56", "42"));
        var e = Assert.Throws<HuggingFaceConfigException>(() => ImagePreprocessorConfig.FromHuggingFace(folder));
        Assert.Contains("preprocessor_config.json", e.Message);
        Assert.Contains("42×42", e.Message);
        Assert.Contains("image_size 56", e.Message);
    }

    [Fact]
    public void AnyresAspectRatioIsRefused()
    {
        var (folder, tower) = Write(new LlavaFolderOptions { Layout = LlavaFolderLayout.Original, ImageAspectRatio = "anyres" });
        var e = Assert.Throws<HuggingFaceConfigException>(() => ImagePreprocessorConfig.FromHuggingFace(folder, tower));
        Assert.Contains("image_aspect_ratio 'anyres'", e.Message);
    }

    // ---- converter ------------------------------------------------------------------------------------------

    [Fact]
    public void ConverterRefusesWhatAnMmprojCannotSay()
    {
        var (full, _) = Write(new LlavaFolderOptions { EditConfig = c => c["vision_feature_select_strategy"] = "full" });
        var e = Assert.Throws<HuggingFaceConfigException>(() => MmprojConverter.Convert(full, Path.Combine(_dir, "a.gguf")));
        Assert.Contains("class token", e.Message);
        using (var encoder = ImageEncoder.LoadHuggingFace(full)) Assert.Equal(17, encoder.ImageTokenCount); // but the encoder supports it

        var (tanhProjector, _) = Write(new LlavaFolderOptions { EditConfig = c => c["projector_hidden_act"] = "gelu_pytorch_tanh" });
        Assert.Throws<HuggingFaceConfigException>(() => MmprojConverter.Convert(tanhProjector, Path.Combine(_dir, "b.gguf")));

        var (ok, _) = Write();
        var badType = Assert.Throws<ArgumentException>(() => MmprojConverter.Convert(ok, Path.Combine(_dir, "c.gguf"), TensorType.Q4_K));
        Assert.Contains("Q4_K", badType.Message);
        Assert.False(File.Exists(Path.Combine(_dir, "a.gguf")));
    }
}
