using LlavaNative.Kernels.Cpu;
using LlavaNative.Kernels.Tensors;
using LlavaNative.Model.Formats.Safetensors;
using LlavaNative.Model.Llava;
using LlavaNative.Model.Vision;
using LlavaNative.Reference.Tests.Cli;
using LlavaNative.Model.Formats.Npy;
using LlavaNative.TestSupport.Vision;
using Xunit;
using Xunit.Abstractions;

namespace LlavaNative.Reference.Tests.Vision;

/// <summary>
/// <see cref="ImageEncoder.LoadHuggingFace"/> and <see cref="MmprojConverter"/> on random tiny LLaVA folders
/// (llava-hf old and new prefixes, single and sharded, F32 / F16 / BF16, CLIP and SigLIP, original LLaVA + CLIP
/// folder with mlp2x and linear projectors), against the float64 PyTorch reference (torch_reference.py), which reads
/// the folders' config.json and safetensors itself and maps the names as transformers / LLaVA do. The converted
/// mmproj files are also checked by llama.cpp's gguf-py reader (names, block count, feature layer, exact values).
/// </summary>
public sealed class HuggingFaceVisionReferenceTests(ITestOutputHelper output) : IDisposable
{
    private const double F32Tolerance = 1e-4;
    private readonly ComputeThreadPool _pool = new(2);

    public void Dispose() => _pool.Dispose();

    private sealed record FolderSpec(string Name, RandomVisionSpec Spec, LlavaFolderOptions Options, bool ConvertForGgufCheck);

    private static readonly RandomVisionSpec LinearGeluClip =
        RandomVisionSpec.TinyClip with { HiddenAct = "gelu", Projector = ProjectorKind.Linear, TextHiddenSize = 80, Seed = 3 };

    private static readonly FolderSpec[] Specs =
    [
        new("clip-old-f32", RandomVisionSpec.TinyClip, new LlavaFolderOptions { ProcessorConfig = true }, true),
        new("clip-new-bf16-sharded-nobias", RandomVisionSpec.TinyClip with { Seed = 7 },
            new LlavaFolderOptions { Layout = LlavaFolderLayout.LlavaHfNew, DType = SafetensorsDType.BF16, Shards = 3, ProjectorBias = false }, false),
        new("clip-new-f32-sharded", RandomVisionSpec.TinyClip with { Seed = 8 },
            new LlavaFolderOptions { Layout = LlavaFolderLayout.LlavaHfNew, Shards = 2 }, false),
        new("siglip-old-f16", RandomVisionSpec.TinySigLip, new LlavaFolderOptions { DType = SafetensorsDType.F16, ProcessorConfig = true }, true),
        new("original-mlp", RandomVisionSpec.TinyClip with { Seed = 9 }, new LlavaFolderOptions { Layout = LlavaFolderLayout.Original }, true),
        new("original-linear", LinearGeluClip, new LlavaFolderOptions { Layout = LlavaFolderLayout.Original, TowerAsClipModel = false }, false),
    ];

    private sealed record Prepared(FolderSpec Spec, RandomVisionModel Model, string Folder, string? TowerFolder, string Root,
        float[] Pixels, TorchVisionReference.Result Reference);

    private static readonly Lazy<Dictionary<string, Prepared>> All = new(PrepareAll);

    private static Dictionary<string, Prepared> PrepareAll()
    {
        string root = Directory.CreateTempSubdirectory("llavanative-hfvision-").FullName;
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        };
        var cases = new List<TorchVisionReference.FolderCase>();
        var pending = new List<(FolderSpec, RandomVisionModel, string, string?, string, float[])>();
        foreach (var spec in Specs)
        {
            var model = RandomVisionModel.Create(spec.Spec);
            string caseRoot = Path.Combine(root, spec.Name);
            var (folder, tower) = RandomLlavaHfFolder.Write(model, caseRoot, spec.Options);
            string? gguf = null;
            if (spec.ConvertForGgufCheck)
            {
                gguf = Path.Combine(caseRoot, "mmproj-f32.gguf");
                MmprojConverter.Convert(folder, gguf, TensorType.F32, tower);
            }
            var pixels = model.RandomPixels(11);
            cases.Add(new TorchVisionReference.FolderCase(folder, tower, pixels, spec.Spec.ImageSize, Path.Combine(caseRoot, "work"), gguf));
            pending.Add((spec, model, folder, tower, caseRoot, pixels));
        }
        var results = TorchVisionReference.Run(cases);
        var map = new Dictionary<string, Prepared>();
        for (int i = 0; i < pending.Count; i++)
        {
            var (spec, model, folder, tower, caseRoot, pixels) = pending[i];
            map[spec.Name] = new Prepared(spec, model, folder, tower, caseRoot, pixels, results[i]);
        }
        return map;
    }

    private static double MaxAbsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.Equal(b.Length, a.Length);
        double worst = 0;
        for (int i = 0; i < a.Length; i++) worst = Math.Max(worst, Math.Abs((double)a[i] - b[i]));
        return worst;
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

    public static TheoryData<string> F32Folders => new() { "clip-old-f32", "clip-new-f32-sharded", "original-mlp", "original-linear" };

    [Theory, MemberData(nameof(F32Folders))]
    public void F32FolderMatchesTorchReference(string name)
    {
        var p = All.Value[name];
        using var encoder = ImageEncoder.LoadHuggingFace(p.Folder, _pool, p.TowerFolder);
        Assert.Equal(new long[] { encoder.ImageTokenCount, encoder.VisionConfig.HiddenSize }, p.Reference.FeatureShape);
        Assert.Equal(new long[] { encoder.ImageTokenCount, encoder.EmbeddingLength }, p.Reference.ProjectedShape);
        Assert.Equal(encoder.HuggingFaceLayout!.ImageTokenCount, encoder.ImageTokenCount);
        double features = MaxAbsDiff(encoder.EncodeFeatures(p.Pixels), p.Reference.Features);
        double projected = MaxAbsDiff(encoder.EncodeAndProject(p.Pixels), p.Reference.Projected);
        output.WriteLine($"{name}: {encoder.VisionConfig}; projector {encoder.ProjectorConfig}; max|Δ features| {features:E2}, max|Δ projected| {projected:E2}");
        Assert.True(features <= F32Tolerance, $"features differ by {features:E2}");
        Assert.True(projected <= F32Tolerance, $"projected embeddings differ by {projected:E2}");
    }

    [Fact]
    public void OriginalLayoutReadsItsSettings()
    {
        var mlp = All.Value["original-mlp"];
        using (var encoder = ImageEncoder.LoadHuggingFace(mlp.Folder, _pool, mlp.TowerFolder))
        {
            Assert.Equal(LlavaCheckpointKind.Original, encoder.HuggingFaceLayout!.Kind);
            Assert.Equal(ProjectorKind.Mlp2xGelu, encoder.ProjectorConfig.Kind);
            Assert.Equal(2, encoder.VisionConfig.LayersToRun); // mm_vision_select_layer −2 of 3
            Assert.Equal(16, encoder.ImageTokenCount);         // 'patch': class token dropped
        }
        var linear = All.Value["original-linear"];
        using (var encoder = ImageEncoder.LoadHuggingFace(linear.Folder, _pool, linear.TowerFolder))
        {
            Assert.Equal(ProjectorKind.Linear, encoder.ProjectorConfig.Kind);
            Assert.Equal(Kernels.Cpu.Ops.ActivationFunction.GeluErf, encoder.VisionConfig.Activation);
        }
    }

    [Theory]
    [InlineData("clip-new-bf16-sharded-nobias", 2e-2)]
    [InlineData("siglip-old-f16", 2e-3)]
    public void HalfPrecisionFolderStaysCloseToTorchReference(string name, double tolerance)
    {
        // The oracle computes in float64 with exactly the stored F16 / BF16 values; what remains is how our mat-mul
        // encodes activations for half-precision weights (as ggml does: F16 → 2^-11, BF16 → 2^-8 relative per input).
        // Measured as relative RMS error ‖Δ‖/‖ref‖; a mis-bound weight gives ≈ 1.
        var p = All.Value[name];
        using var encoder = ImageEncoder.LoadHuggingFace(p.Folder, _pool, p.TowerFolder);
        double features = RelativeRms(encoder.EncodeFeatures(p.Pixels), p.Reference.Features);
        double projected = RelativeRms(encoder.EncodeAndProject(p.Pixels), p.Reference.Projected);
        double maxAbs = MaxAbsDiff(encoder.EncodeAndProject(p.Pixels), p.Reference.Projected);
        output.WriteLine($"{name}: {encoder.VisionConfig}; relative RMS error features {features:E2}, projected {projected:E2} (max|Δ projected| {maxAbs:E2})");
        Assert.True(features <= tolerance, $"features: relative RMS error {features:E2}");
        Assert.True(projected <= tolerance, $"projected: relative RMS error {projected:E2}");
    }

    [Fact]
    public void SameWeightsAsMmprojGgufAndAsHfFolderGiveTheSameEmbeddings()
    {
        // RandomVisionModel writes the same values to a GGUF (legacy and explicit-feature-layer layouts, F32 Linear weights,
        // F16 patch/position tables holding exactly the values the HF folder stores as F32): identical math on both paths.
        var p = All.Value["clip-old-f32"];
        using var hf = ImageEncoder.LoadHuggingFace(p.Folder, _pool);
        var hfEmbeddings = hf.EncodeAndProject(p.Pixels);
        foreach (var layout in new[] { MmprojLayout.Legacy, MmprojLayout.ExplicitFeatureLayer })
        {
            string gguf = Path.Combine(p.Root, $"random-{layout}.gguf");
            p.Model.WriteGguf(gguf, layout);
            using var g = ImageEncoder.LoadGguf(gguf, _pool);
            double d = MaxAbsDiff(g.EncodeAndProject(p.Pixels), hfEmbeddings);
            output.WriteLine($"mmproj {layout} vs HF folder: max|Δ| {d:E2}");
            Assert.True(d <= 1e-6, $"{layout}: {d:E2}");
        }
    }

    public static TheoryData<string> ConvertibleFolders => new() { "clip-old-f32", "siglip-old-f16", "original-mlp", "clip-new-bf16-sharded-nobias" };

    [Theory, MemberData(nameof(ConvertibleFolders))]
    public void ConvertedMmprojGivesTheSameEmbeddings(string name)
    {
        // F32 output holds exactly the folder's values (checked value by value with gguf-py for three folders), so it
        // agrees with the float64 oracle like an F32 folder does, and with LoadHuggingFace bit for bit when the folder
        // is F32 (identical arithmetic). An F16 file written from an F16 folder is a byte copy: bit-identical too.
        // Otherwise F16 / Q8_0 round the matrices and the mat-muls round activations: compared as relative RMS vs torch.
        var p = All.Value[name];
        var source = p.Spec.Options.DType;
        using var hf = ImageEncoder.LoadHuggingFace(p.Folder, _pool, p.TowerFolder);
        var viaFolder = hf.EncodeAndProject(p.Pixels);
        foreach (var type in new[] { TensorType.F32, TensorType.F16, TensorType.Q8_0 })
        {
            string gguf = Path.Combine(p.Root, $"converted-{type}.gguf");
            MmprojConverter.Convert(p.Folder, gguf, type, p.TowerFolder);
            using var g = ImageEncoder.LoadGguf(gguf, _pool);
            Assert.Equal(hf.ImageTokenCount, g.ImageTokenCount);
            Assert.Equal(hf.VisionConfig.LayersToRun, g.VisionConfig.LayersToRun);
            Assert.Equal(hf.VisionConfig.Activation, g.VisionConfig.Activation);
            var ours = g.EncodeAndProject(p.Pixels);
            double vsFolder = MaxAbsDiff(ours, viaFolder);
            double vsTorchMax = MaxAbsDiff(ours, p.Reference.Projected), vsTorchRel = RelativeRms(ours, p.Reference.Projected);
            output.WriteLine($"{name} ({source} folder) → {type} mmproj: vs LoadHuggingFace max|Δ| {vsFolder:E2}; vs torch max|Δ| {vsTorchMax:E2}, relative RMS {vsTorchRel:E2}");
            bool sameEncoding = type == SafetensorsDTypes.ToTensorType(source);
            if (sameEncoding) Assert.True(vsFolder <= 1e-6, $"{type} conversion of a {source} folder differs from LoadHuggingFace by {vsFolder:E2}");
            if (type == TensorType.F32) Assert.True(vsTorchMax <= F32Tolerance, $"F32 conversion differs from torch by {vsTorchMax:E2}");
            if (type == TensorType.F16) Assert.True(vsTorchRel <= 3e-3, $"F16 conversion: relative RMS {vsTorchRel:E2}");
            if (type == TensorType.Q8_0) Assert.True(vsTorchRel <= 6e-2, $"Q8_0 conversion: relative RMS {vsTorchRel:E2}");
        }
    }

    [Fact]
    public void ProcessorConfigTokenCountIsExposed()
    {
        var clip = All.Value["clip-old-f32"];
        using var encoder = ImageEncoder.LoadHuggingFace(clip.Folder, _pool);
        var layout = encoder.HuggingFaceLayout!;
        Assert.NotNull(layout.Processor);
        // (56 // 14)² + num_additional_image_tokens 1 − 1 (strategy default) = 16.
        Assert.Equal(16, layout.Processor!.ImageTokenCount(56, 56));
        Assert.Equal(16, encoder.ImageTokenCount);
        Assert.Equal("<image>", layout.ImageToken);
        Assert.Equal(7, layout.ImageTokenIndex);
        var siglip = All.Value["siglip-old-f16"];
        using var s = ImageEncoder.LoadHuggingFace(siglip.Folder, _pool);
        Assert.Equal(16, s.HuggingFaceLayout!.Processor!.ImageTokenCount(60, 60)); // (60 // 14)², strategy full, no class token
        Assert.Equal(16, s.ImageTokenCount);
    }

    [Fact]
    public void EncodeImageCliTakesAHuggingFaceFolder()
    {
        var p = All.Value["original-mlp"];
        string image = Path.Combine(p.Root, "image.ppm");
        var pixels = new byte[70 * 50 * 3];
        new Random(5).NextBytes(pixels);
        File.WriteAllBytes(image, [.. System.Text.Encoding.ASCII.GetBytes("P6\n70 50\n255\n"), .. pixels]);
        string outPath = Path.Combine(p.Root, "cli-embeddings.npy"), pixelsOut = Path.Combine(p.Root, "cli-pixels.npy");
        var (exit, _, err) = CliContractTests.RunCli("encode-image", "-m", p.Folder, "--vision-tower", p.TowerFolder!, "--image", image,
            "--out", outPath, "--pixels-out", pixelsOut, "-t", "2");
        Assert.True(exit == 0, err);
        Assert.Contains("Pad preprocessing", err); // image_aspect_ratio "pad" in config.json
        var (embeddings, shape) = NpyFile.ReadFloat32(outPath);
        Assert.Equal(new long[] { 16, p.Spec.Spec.TextHiddenSize }, shape);
        var (cliPixels, _) = NpyFile.ReadFloat32(pixelsOut);
        using var encoder = ImageEncoder.LoadHuggingFace(p.Folder, _pool, p.TowerFolder);
        Assert.Equal(encoder.EncodeAndProject(cliPixels), embeddings);

        var (missingTower, _, message) = CliContractTests.RunCli("encode-image", "-m", p.Folder, "--image", image, "--out", outPath);
        Assert.Equal(1, missingTower);
        Assert.Contains("--vision-tower", message);
    }
}
