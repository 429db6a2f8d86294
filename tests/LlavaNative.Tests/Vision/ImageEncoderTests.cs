using LlavaNative.Kernels.Cpu;
using LlavaNative.Kernels.Cpu.Ops;
using LlavaNative.Model.Formats.Gguf;
using LlavaNative.Model.Llava;
using LlavaNative.Model.Vision;
using LlavaNative.TestSupport.Vision;
using Xunit;

namespace LlavaNative.Tests.Vision;

/// <summary>
/// Properties of the image path that need no reference: buffers reused without leaking state between images,
/// no allocation per image, results independent of the thread count, configuration semantics of mmproj keys.
/// (Numerical agreement with HF is in LlavaNative.Reference.Tests/Vision.)
/// </summary>
public sealed class ImageEncoderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("llavanative-image-encoder-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private string Write(RandomVisionModel model, MmprojLayout layout, Action<GgufWriter>? metadata = null)
    {
        string path = Path.Combine(_dir, $"mmproj-{Guid.NewGuid():N}.gguf");
        model.WriteGguf(path, layout, editMetadata: metadata);
        return path;
    }

    [Fact]
    public void EncodingAfterTheFirstImageAllocatesNothing()
    {
        var model = RandomVisionModel.Create(RandomVisionSpec.TinyClip);
        using var pool = new ComputeThreadPool(2);
        using var encoder = ImageEncoder.LoadGguf(Write(model, MmprojLayout.Legacy), pool);
        var pixels = model.RandomPixels(1);
        var output = new float[encoder.ImageTokenCount * encoder.EmbeddingLength];
        for (int i = 0; i < 4; i++) encoder.EncodeAndProject(pixels, output); // warm-up: JIT tiers, first-use paths
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 8; i++) encoder.EncodeAndProject(pixels, output);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void ImagesDoNotLeakIntoEachOther()
    {
        var model = RandomVisionModel.Create(RandomVisionSpec.TinySigLip);
        using var pool = new ComputeThreadPool(2);
        using var encoder = ImageEncoder.LoadGguf(Write(model, MmprojLayout.AllBlocks), pool);
        var a = model.RandomPixels(1);
        var b = model.RandomPixels(2);
        float[] first = encoder.EncodeAndProject(a);
        float[] other = encoder.EncodeAndProject(b);
        float[] again = encoder.EncodeAndProject(a);
        Assert.Equal(first, again);
        Assert.NotEqual(first, other);
    }

    [Fact]
    public void ResultDoesNotDependOnThreadCount()
    {
        // Each output element is computed by one thread with the same code, whatever the split: bitwise equal.
        var model = RandomVisionModel.Create(RandomVisionSpec.TinyClip);
        string path = Write(model, MmprojLayout.Legacy);
        var pixels = model.RandomPixels(3);
        float[] Run(int threads)
        {
            using var pool = new ComputeThreadPool(threads);
            using var encoder = ImageEncoder.LoadGguf(path, pool);
            return encoder.EncodeAndProject(pixels);
        }
        Assert.Equal(Run(1), Run(3));
    }

    [Fact]
    public void PixelsOfTheWrongSizeAreRejected()
    {
        var model = RandomVisionModel.Create(RandomVisionSpec.TinyClip);
        using var pool = new ComputeThreadPool(1);
        using var encoder = ImageEncoder.LoadGguf(Write(model, MmprojLayout.Legacy), pool);
        var e = Assert.Throws<ArgumentException>(() => encoder.EncodeAndProject(new float[3 * 56 * 55]));
        Assert.Contains("3 × 56 × 56", e.Message);
        Assert.Throws<ArgumentException>(() => encoder.EncodeAndProject(model.RandomPixels(1), new float[10]));
    }

    [Fact]
    public void LegacyFileRunsBlockCountBlocksExplicitFileRunsFeatureLayerBlocks()
    {
        var model = RandomVisionModel.Create(RandomVisionSpec.TinyClip); // 3 HF blocks, feature layer −2
        using (var file = GgufFile.Open(Write(model, MmprojLayout.Legacy)))
        {
            var c = VisionConfig.FromGguf(file);
            Assert.Equal((2, 2, 2), (c.BlockCount, c.FeatureLayer, c.LayersToRun));
            Assert.Equal((VisionTowerKind.Clip, FeatureSelectStrategy.Default, 16, 17), (c.Kind, c.SelectStrategy, c.OutputTokenCount, c.PositionCount));
            Assert.Equal(ActivationFunction.QuickGelu, c.Activation);
        }
        using (var file = GgufFile.Open(Write(model, MmprojLayout.ExplicitFeatureLayer)))
        {
            var c = VisionConfig.FromGguf(file);
            Assert.Equal((3, 2, 2), (c.BlockCount, c.FeatureLayer, c.LayersToRun));
        }
    }

    [Fact]
    public void SigLipIsDetectedByItsMissingClassEmbeddingAndUsesTanhGeluWhateverUseGeluSays()
    {
        var model = RandomVisionModel.Create(RandomVisionSpec.TinySigLip);
        using var file = GgufFile.Open(Write(model, MmprojLayout.AllBlocks, w => w.SetBool("clip.use_gelu", true)));
        var c = VisionConfig.FromGguf(file);
        Assert.Equal(VisionTowerKind.SigLip, c.Kind);
        Assert.Equal(ActivationFunction.GeluTanh, c.Activation);
        Assert.Equal(FeatureSelectStrategy.Full, c.SelectStrategy);
        Assert.False(c.HasClassEmbedding);
        Assert.False(c.HasPreLayerNorm);
        Assert.True(c.HasPatchBias);
        Assert.Equal(1e-6f, c.LayerNormEps);
        Assert.Equal(4, c.PatchesPerSide); // 60 px / 14: the last 4 pixels are not covered, as in HF's conv
        Assert.Equal((2, 2), (c.BlockCount, c.LayersToRun));
        var p = ProjectorConfig.FromGguf(file, c.HiddenSize);
        Assert.Equal((ProjectorKind.Mlp2xGelu, 64, 64, 64), (p.Kind, p.InputSize, p.HiddenSize, p.OutputSize));
    }

    [Fact]
    public void ClipUseGeluMeansErfGelu()
    {
        var model = RandomVisionModel.Create(RandomVisionSpec.TinyClip with { HiddenAct = "gelu" });
        using var file = GgufFile.Open(Write(model, MmprojLayout.Legacy));
        Assert.Equal(ActivationFunction.GeluErf, VisionConfig.FromGguf(file).Activation);
    }

    [Fact]
    public void PlainValueConfigurationMatchesHfConventions()
    {
        // llava-1.5: CLIP-L/14-336, 24 layers, vision_feature_layer −2 → hidden_states[23]; 576 tokens after dropping CLS.
        var clip = new VisionConfig(VisionTowerKind.Clip, 336, 14, 1024, 16, 4096, 24, 1e-5f, ActivationFunction.QuickGelu,
            VisionConfig.HiddenStateIndex(-2, 24), FeatureSelectStrategy.Default,
            [0.48145466f, 0.4578275f, 0.40821073f], [0.26862954f, 0.26130258f, 0.27577711f]);
        Assert.Equal((23, 23, 577, 576, 64), (clip.FeatureLayer, clip.LayersToRun, clip.PositionCount, clip.OutputTokenCount, clip.HeadDim));
        Assert.False(clip.HasPatchBias);

        // llava-interleave: SigLIP-so400m/14-384, 26 layers, −1 → hidden_states[26]; 27² = 729 tokens, all kept.
        var siglip = new VisionConfig(VisionTowerKind.SigLip, 384, 14, 1152, 16, 4304, 26, 1e-6f, ActivationFunction.GeluTanh,
            VisionConfig.HiddenStateIndex(-1, 26), FeatureSelectStrategy.Full, [0.5f, 0.5f, 0.5f], [0.5f, 0.5f, 0.5f]);
        Assert.Equal((26, 729, 729, 72), (siglip.LayersToRun, siglip.PositionCount, siglip.OutputTokenCount, siglip.HeadDim));
        Assert.True(siglip.HasPatchBias);

        Assert.Throws<ArgumentException>(() => clip.WithFeatureLayer(25));
        Assert.Throws<ArgumentException>(() => new VisionConfig(VisionTowerKind.Clip, 336, 14, 1000, 16, 4096, 24, 1e-5f,
            ActivationFunction.QuickGelu, 23, FeatureSelectStrategy.Default, [0f, 0f, 0f], [1f, 1f, 1f]));
    }
}
