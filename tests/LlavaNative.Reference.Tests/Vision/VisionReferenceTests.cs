using LlavaNative.Kernels.Cpu;
using LlavaNative.Kernels.Cpu.Ops;
using LlavaNative.Kernels.Tensors;
using LlavaNative.Model.Formats.Gguf;
using LlavaNative.Model.Llava;
using LlavaNative.Model.Vision;
using LlavaNative.TestSupport.Vision;
using Xunit;
using Xunit.Abstractions;

namespace LlavaNative.Reference.Tests.Vision;

/// <summary>
/// The vision tower and projector against an independent float64 PyTorch implementation of HF's forward pass
/// (<c>torch_reference.py</c>), on tiny random towers: the oracle reads the full HF-layout model (all blocks,
/// HF config with a negative <c>vision_feature_layer</c>), the engine reads the mmproj GGUF as llama.cpp's
/// converters lay it out (legacy: last block dropped, fc1/fc2 names swapped, F16 patch/position embeddings).
/// With F32 Linear weights both sides use identical values, so agreement is float32 rounding: max |Δ| ≤ 1e-4.
/// </summary>
public sealed class VisionReferenceTests(ITestOutputHelper output) : IDisposable
{
    private const double F32Tolerance = 1e-4;
    private readonly ComputeThreadPool _pool = new(2);

    public void Dispose() => _pool.Dispose();

    /// <summary>A written GGUF, its pixels and the oracle's outputs.</summary>
    private sealed record Prepared(RandomVisionModel Model, string GgufPath, float[] Pixels, TorchVisionReference.Result Reference);

    private static readonly RandomVisionSpec ClipGeluLinear =
        RandomVisionSpec.TinyClip with { HiddenAct = "gelu", Projector = ProjectorKind.Linear, TextHiddenSize = 80, Seed = 3 };

    /// <summary>Every case this class compares; the first test to run prepares them all with one PyTorch start.</summary>
    private static readonly (RandomVisionSpec Spec, MmprojLayout Layout)[] AllCases =
    [
        (RandomVisionSpec.TinyClip, MmprojLayout.Legacy),
        (RandomVisionSpec.TinyClip, MmprojLayout.ExplicitFeatureLayer),
        (RandomVisionSpec.TinySigLip, MmprojLayout.AllBlocks),
        (ClipGeluLinear, MmprojLayout.Legacy),
        (QuantizedSpec(TensorType.F16), MmprojLayout.Legacy),
        (QuantizedSpec(TensorType.Q8_0), MmprojLayout.Legacy),
    ];

    private static RandomVisionSpec QuantizedSpec(TensorType type) => RandomVisionSpec.TinyClip with { MatrixType = type, Seed = 5 };

    private static readonly Lazy<Dictionary<(RandomVisionSpec, MmprojLayout), Prepared>> AllPrepared = new(PrepareAll);

    private static Dictionary<(RandomVisionSpec, MmprojLayout), Prepared> PrepareAll()
    {
        string root = Directory.CreateTempSubdirectory("llavanative-vision-").FullName;
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        };
        var cases = new List<TorchVisionReference.Case>();
        foreach (var (spec, layout) in AllCases)
        {
            var model = RandomVisionModel.Create(spec);
            string work = Path.Combine(root, $"case{cases.Count}-{spec.Kind}-{layout}");
            Directory.CreateDirectory(work);
            string gguf = Path.Combine(work, "mmproj.gguf");
            model.WriteGguf(gguf, layout);
            cases.Add(new TorchVisionReference.Case(model, model.RandomPixels(11), work, gguf, layout));
        }
        var results = TorchVisionReference.Run(cases);
        var map = new Dictionary<(RandomVisionSpec, MmprojLayout), Prepared>();
        for (int i = 0; i < cases.Count; i++)
            map[AllCases[i]] = new Prepared(cases[i].Model, cases[i].GgufPath, cases[i].Pixels, results[i]);
        return map;
    }

    private sealed record Comparison(ImageEncoder Encoder, float[] Pixels, TorchVisionReference.Result Reference, RandomVisionModel Model, string GgufPath) : IDisposable
    {
        public void Dispose() => Encoder.Dispose();
    }

    private Comparison Prepare(RandomVisionSpec spec, MmprojLayout layout)
    {
        var p = AllPrepared.Value[(spec, layout)];
        return new Comparison(ImageEncoder.LoadGguf(p.GgufPath, _pool), p.Pixels, p.Reference, p.Model, p.GgufPath);
    }

    private static double MaxAbsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.Equal(b.Length, a.Length);
        double worst = 0;
        for (int i = 0; i < a.Length; i++) worst = Math.Max(worst, Math.Abs((double)a[i] - b[i]));
        return worst;
    }

    private static double MaxAbs(ReadOnlySpan<float> a)
    {
        double m = 0;
        foreach (float v in a) m = Math.Max(m, Math.Abs(v));
        return m;
    }

    /// <summary>Runs ours, checks shapes, reports and returns (features Δ, projected Δ).</summary>
    private (double Features, double Projected) Compare(Comparison c, string label)
    {
        var enc = c.Encoder;
        var r = c.Reference;
        Assert.Equal(new long[] { enc.ImageTokenCount, enc.VisionConfig.HiddenSize }, r.FeatureShape);
        Assert.Equal(new long[] { enc.ImageTokenCount, enc.EmbeddingLength }, r.ProjectedShape);
        double features = MaxAbsDiff(enc.EncodeFeatures(c.Pixels), r.Features);
        double projected = MaxAbsDiff(enc.EncodeAndProject(c.Pixels), r.Projected);
        output.WriteLine($"{label}: {enc.VisionConfig}; projector {enc.ProjectorConfig}");
        output.WriteLine($"  {enc.ImageTokenCount} tokens; max|feature| {MaxAbs(r.Features):F3}, max|Δ features| {features:E2}; " +
                         $"max|projected| {MaxAbs(r.Projected):F3}, max|Δ projected| {projected:E2}");
        return (features, projected);
    }

    [Fact]
    public void ClipLegacyMmprojMatchesHfForward()
    {
        // LLaVA-1.5 shape in miniature: 3-block CLIP, feature layer −2, legacy GGUF with 2 blocks and swapped ffn names.
        using var c = Prepare(RandomVisionSpec.TinyClip, MmprojLayout.Legacy);
        Assert.Equal(2, c.Encoder.VisionConfig.BlockCount);
        Assert.Equal(2, c.Encoder.VisionConfig.LayersToRun);
        Assert.True(c.Encoder.Vision.Weights.FeedForwardNamesSwapped);
        Assert.Equal(16, c.Encoder.ImageTokenCount); // (56/14)² patches, class token dropped
        var (features, projected) = Compare(c, "CLIP legacy");
        Assert.True(features <= F32Tolerance, $"features differ by {features:E2}");
        Assert.True(projected <= F32Tolerance, $"projected embeddings differ by {projected:E2}");
    }

    [Fact]
    public void ClipExplicitFeatureLayerMmprojMatchesHfForward()
    {
        // Same weights, every block stored, clip.vision.feature_layer = [2]: the engine must stop after block 2 of 3.
        using var c = Prepare(RandomVisionSpec.TinyClip, MmprojLayout.ExplicitFeatureLayer);
        Assert.Equal(3, c.Encoder.VisionConfig.BlockCount);
        Assert.Equal(2, c.Encoder.VisionConfig.LayersToRun);
        Assert.False(c.Encoder.Vision.Weights.FeedForwardNamesSwapped);
        var (features, projected) = Compare(c, "CLIP explicit feature layer");
        Assert.True(features <= F32Tolerance, $"features differ by {features:E2}");
        Assert.True(projected <= F32Tolerance, $"projected embeddings differ by {projected:E2}");
    }

    [Fact]
    public void SigLipMmprojMatchesHfForward()
    {
        // llava-interleave shape in miniature: no class token, patch bias, gelu tanh, eps 1e-6, last hidden state,
        // all tokens kept; 60 px with 14 px patches leaves 4 pixel rows/columns the stride-14 conv never reads.
        using var c = Prepare(RandomVisionSpec.TinySigLip, MmprojLayout.AllBlocks);
        Assert.Equal(VisionTowerKind.SigLip, c.Encoder.VisionConfig.Kind);
        Assert.Equal(ActivationFunction.GeluTanh, c.Encoder.VisionConfig.Activation);
        Assert.Equal(16, c.Encoder.ImageTokenCount);
        var (features, projected) = Compare(c, "SigLIP");
        Assert.True(features <= F32Tolerance, $"features differ by {features:E2}");
        Assert.True(projected <= F32Tolerance, $"projected embeddings differ by {projected:E2}");
    }

    [Fact]
    public void ClipWithErfGeluAndLinearProjectorMatchesOriginalLlavaV1()
    {
        // hidden_act "gelu" (clip.use_gelu = true → erf GELU in the tower) and LLaVA v1's single Linear projector.
        using var c = Prepare(ClipGeluLinear, MmprojLayout.Legacy);
        Assert.Equal(ActivationFunction.GeluErf, c.Encoder.VisionConfig.Activation);
        Assert.Equal(ProjectorKind.Linear, c.Encoder.ProjectorConfig.Kind);
        var (features, projected) = Compare(c, "CLIP gelu + linear projector");
        Assert.True(features <= F32Tolerance, $"features differ by {features:E2}");
        Assert.True(projected <= F32Tolerance, $"projected embeddings differ by {projected:E2}");
    }

    [Fact]
    public void WrongLayerCountOrKeptClassTokenDisagree()
    {
        // The comparison can fail: running one block fewer or more than HF's hidden_states[-2], or keeping the class
        // token, must be far outside the tolerance. (llama.cpp's legacy graph runs block_count − 1 blocks.)
        using var legacy = Prepare(RandomVisionSpec.TinyClip, MmprojLayout.Legacy);
        using var explicitLayer = Prepare(RandomVisionSpec.TinyClip, MmprojLayout.ExplicitFeatureLayer);
        var reference = legacy.Reference.Features;
        int d = legacy.Encoder.VisionConfig.HiddenSize;

        double Run(Comparison c, Func<VisionConfig, VisionConfig> change)
        {
            // Bind the weights again for the changed configuration (one more block needs block 2's tensors).
            using var file = GgufFile.Open(c.GgufPath);
            var config = change(VisionConfig.FromGguf(file));
            using var weights = VisionWeights.FromGguf(file, config);
            using var encoder = new VisionEncoder(config, weights, _pool);
            var ours = encoder.Encode(c.Pixels);
            int rows = Math.Min(ours.Length, reference.Length) / d;
            return MaxAbsDiff(ours[..(rows * d)], reference.AsSpan(0, rows * d));
        }

        double oneFewer = Run(legacy, g => g.WithFeatureLayer(g.FeatureLayer - 1));
        double oneMore = Run(explicitLayer, g => g.WithFeatureLayer(g.FeatureLayer + 1));
        double keptClass = Run(legacy, g => g.WithSelectStrategy(FeatureSelectStrategy.Full));
        double right = Run(legacy, g => g);
        output.WriteLine($"max|Δ| vs HF hidden_states[-2]: right {right:E2}; one block fewer {oneFewer:E2}; one block more {oneMore:E2}; class token kept {keptClass:E2}");
        Assert.True(right <= F32Tolerance);
        Assert.True(oneFewer > 100 * F32Tolerance, $"one block fewer agrees ({oneFewer:E2})");
        Assert.True(oneMore > 100 * F32Tolerance, $"one block more agrees ({oneMore:E2})");
        Assert.True(keptClass > 100 * F32Tolerance, $"keeping the class token agrees ({keptClass:E2})");
    }

    [Theory]
    [InlineData(TensorType.F16, 2e-3)]
    [InlineData(TensorType.Q8_0, 5e-2)]
    public void QuantizedMatricesStayCloseToHfForward(TensorType type, double tolerance)
    {
        // The oracle uses the exact values the GGUF decodes to, so what remains is the activation encoding of ggml's
        // mat-mul (F16: 2^-11 relative per input; Q8_0: ~1/254 of each 32-block's max), amplified by two blocks of
        // peaked attention and the projector. Measured as relative RMS error ‖Δ‖/‖ref‖; tolerances are ~3× what was
        // measured. A mis-bound or mis-decoded weight gives ≈ 1.
        using var c = Prepare(QuantizedSpec(type), MmprojLayout.Legacy);
        Compare(c, $"CLIP legacy, {type} matrices");
        double features = RelativeRms(c.Encoder.EncodeFeatures(c.Pixels), c.Reference.Features);
        double projected = RelativeRms(c.Encoder.EncodeAndProject(c.Pixels), c.Reference.Projected);
        output.WriteLine($"  relative RMS error: features {features:E2}, projected {projected:E2}");
        Assert.True(features <= tolerance, $"features: relative RMS error {features:E2}");
        Assert.True(projected <= tolerance, $"projected embeddings: relative RMS error {projected:E2}");
    }

    private static double RelativeRms(ReadOnlySpan<float> ours, ReadOnlySpan<float> reference)
    {
        Assert.Equal(reference.Length, ours.Length);
        double diff = 0, norm = 0;
        for (int i = 0; i < ours.Length; i++)
        {
            double d = (double)ours[i] - reference[i];
            diff += d * d;
            norm += (double)reference[i] * reference[i];
        }
        return Math.Sqrt(diff / norm);
    }
}
