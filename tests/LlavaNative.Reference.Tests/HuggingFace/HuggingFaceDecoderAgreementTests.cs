using LlavaNative.Kernels.Cpu.Ops;
using LlavaNative.Kernels.Tensors;
using LlavaNative.Model;
using LlavaNative.Model.Formats.HuggingFace;
using LlavaNative.Model.Formats.Safetensors;
using LlavaNative.Model.Language;
using LlavaNative.Reference.Tests.Models;
using LlavaNative.TestSupport;
using LlavaNative.TestSupport.HuggingFace;
using LlavaNative.TestSupport.LlamaCpp;
using Xunit;
using Xunit.Abstractions;

namespace LlavaNative.Reference.Tests.HuggingFace;

/// <summary>
/// Hugging Face checkpoints as a model source: random GGUF llama / qwen2 models are converted (by test code,
/// undoing llama.cpp's converter) into HF folders — config.json + safetensors, single file or sharded, plain or
/// llava-hf names — and the HF-loaded decoder must give llama.cpp's logits on the original GGUF, and the
/// GGUF-loaded decoder's. The llama case is a real test of the loader: its q/k rows are unpermuted in the HF
/// folder and RoPE pairs dimensions differently (NEOX instead of adjacent), so agreement is not automatic.
/// </summary>
public sealed class HuggingFaceDecoderAgreementTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("llavanative-hf-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); }
        catch (IOException) { }
    }

    public static TheoryData<RandomModelArchitecture> Architectures => new() { RandomModelArchitecture.Llama, RandomModelArchitecture.Qwen2 };

    public static TheoryData<RandomModelArchitecture, int> ArchitecturesAndShards => new()
    {
        { RandomModelArchitecture.Llama, 1 }, { RandomModelArchitecture.Llama, 2 },
        { RandomModelArchitecture.Qwen2, 1 }, { RandomModelArchitecture.Qwen2, 2 },
    };

    private static RandomModelSpec Spec(RandomModelArchitecture architecture) =>
        RandomModelSpec.Tiny(architecture, RandomModelVocabulary.Synthetic);

    private string Export(string gguf, string name, HfExportOptions options)
    {
        string folder = Path.Combine(_root, name);
        GgufToHuggingFace.Export(gguf, folder, options);
        return folder;
    }

    private static float[] Logits(DecoderModel model, int[] tokens)
    {
        using var state = model.CreateState(64, maxBatch: 20); // several batches: exercises cache reuse
        var logits = new float[tokens.Length * model.Config.VocabSize];
        model.Forward(state, tokens, LogitsMode.All, logits);
        return logits;
    }

    private static double MaxAbs(float[] a, float[] b)
    {
        double m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs((double)a[i] - b[i]));
        return m;
    }

    private static double RelL2(float[] a, float[] b)
    {
        double d2 = 0, b2 = 0;
        for (int i = 0; i < a.Length; i++)
        {
            double d = (double)a[i] - b[i];
            d2 += d * d;
            b2 += (double)b[i] * b[i];
        }
        return Math.Sqrt(d2 / b2);
    }

    /// <summary>
    /// F32 bound: the GGUF path's own agreement with llama.cpp. The HF llama path is the GGUF path with q/k
    /// dimensions in another order (rotate_half pairs instead of adjacent ones), so q·k sums run in another
    /// order: float32 rounding noise of ~1e-5 on logits of magnitude ~10 (about 10 ulp) after sharp attention.
    /// qwen2, whose GGUF is not permuted, agrees bit for bit.
    /// </summary>
    private const double F32MaxAbs = 2e-5;

    [Theory, MemberData(nameof(ArchitecturesAndShards))]
    public void F32CheckpointGivesTheLogitsOfTheGgufPathAndOfLlamaCpp(RandomModelArchitecture architecture, int shards)
    {
        string gguf = RandomModels.GetPath(Spec(architecture));
        string folder = Export(gguf, $"{architecture}-f32-{shards}", new HfExportOptions { Shards = shards });
        Assert.Equal(shards > 1, File.Exists(Path.Combine(folder, SafetensorsCheckpoint.IndexFileName)));

        using var hf = ModelLoader.Load(folder);
        using var fromGguf = ModelLoader.Load(gguf);
        Assert.Equal(RopeMode.Neox, hf.Config.RopeMode);
        Assert.Equal(fromGguf.Config with { RopeMode = RopeMode.Neox }, hf.Config);
        Assert.Equal(architecture == RandomModelArchitecture.Qwen2, hf.Weights.TiedEmbeddings);
        Assert.Null(hf.Vocabulary);

        int vocab = hf.Config.VocabSize;
        int[] tokens = DecoderAgreementTests.SampleTokens(vocab, 48, seed: 7);
        float[] ours = Logits(hf, tokens);
        float[] gguPath = Logits(fromGguf, tokens);
        using var reference = LlamaCppModel.Load(gguf);
        var (vsLlama, rel) = DecoderAgreementTests.Compare(ours, reference.EvalLogits(tokens), vocab);
        double vsGguf = MaxAbs(ours, gguPath), vsGgufRel = RelL2(ours, gguPath);
        output.WriteLine($"{architecture}, {shards} shard(s): HF vs GGUF path max abs {vsGguf:E2} (rel L2 {vsGgufRel:E2}); " +
                         $"HF vs llama.cpp max abs {vsLlama:E2} (rel L2 {rel:E2})");
        Assert.True(vsGguf <= F32MaxAbs && vsGgufRel <= 1e-6, $"HF vs GGUF-loaded logits: max abs {vsGguf:E3} (bound {F32MaxAbs:E0}), rel L2 {vsGgufRel:E2} (bound 1e-6)");
        Assert.True(vsLlama <= F32MaxAbs, $"HF vs llama.cpp logits: max abs {vsLlama:E3} > {F32MaxAbs:E0}");
        if (architecture == RandomModelArchitecture.Qwen2) Assert.Equal(gguPath, ours);
    }

    /// <summary>
    /// F16 and BF16 safetensors against llama.cpp on a GGUF of the same precision (F16 written by the random
    /// model writer, BF16 by llama.cpp's own quantizer), with the tolerance of the quantized agreement tests:
    /// our distance to llama.cpp must not exceed llama.cpp's distance from exact math, which is our F32 path on
    /// an F32 checkpoint holding the very same (expanded) values.
    /// </summary>
    [Theory]
    [InlineData(RandomModelArchitecture.Llama, TensorType.F16)]
    [InlineData(RandomModelArchitecture.Qwen2, TensorType.F16)]
    [InlineData(RandomModelArchitecture.Llama, TensorType.BF16)]
    [InlineData(RandomModelArchitecture.Qwen2, TensorType.BF16)]
    public void HalfPrecisionCheckpointAgreesWithLlamaCppOnTheSamePrecisionGguf(RandomModelArchitecture architecture, TensorType type)
    {
        string gguf = type == TensorType.F16
            ? RandomModels.GetPath(Spec(architecture) with { WeightType = TensorType.F16 })
            : RandomModels.GetQuantizedPath(Spec(architecture), LlamaFtype.MOSTLY_BF16);
        string half = Export(gguf, $"{architecture}-{type}", new HfExportOptions { Shards = 2 });
        string exact = Export(gguf, $"{architecture}-{type}-as-f32", new HfExportOptions { ExpandToF32 = true });

        using var hf = ModelLoader.Load(half);
        Assert.Equal(type, hf.Weights.Layers[0].Query.Type);
        using var exactModel = ModelLoader.Load(exact);
        Assert.Equal(TensorType.F32, exactModel.Weights.Layers[0].Query.Type);
        using var fromGguf = ModelLoader.Load(gguf);

        int vocab = hf.Config.VocabSize;
        int[] tokens = DecoderAgreementTests.SampleTokens(vocab, 40, seed: 3);
        float[] ours = Logits(hf, tokens);
        float[] exactLogits = Logits(exactModel, tokens);
        float[] gguPath = Logits(fromGguf, tokens);
        using var reference = LlamaCppModel.Load(gguf);
        float[][] theirs = reference.EvalLogits(tokens);
        var (oursVsTheirs, rel) = DecoderAgreementTests.Compare(ours, theirs, vocab);
        var (exactVsTheirs, exactRel) = DecoderAgreementTests.Compare(exactLogits, theirs, vocab);
        double vsGguf = MaxAbs(ours, gguPath);
        output.WriteLine($"{architecture} {type}: HF vs llama.cpp max abs {oursVsTheirs:E2} (rel L2 {rel:E2}); " +
                         $"llama.cpp vs exact math {exactVsTheirs:E2} (rel L2 {exactRel:E2}); HF vs GGUF path {vsGguf:E2}");
        Assert.True(oursVsTheirs <= Math.Max(exactVsTheirs, 1e-4),
            $"{type}: HF distance to llama.cpp {oursVsTheirs:E3} exceeds llama.cpp's distance to exact math {exactVsTheirs:E3}");
        Assert.True(vsGguf <= F32MaxAbs, $"{type}: HF vs GGUF-loaded logits max abs {vsGguf:E3} > {F32MaxAbs:E0}");
    }

    [Theory, MemberData(nameof(Architectures))]
    public void OldAndNewLlavaHfPrefixesLoadTheSameDecoder(RandomModelArchitecture architecture)
    {
        string gguf = RandomModels.GetPath(Spec(architecture));
        string plain = Export(gguf, $"{architecture}-plain", new HfExportOptions());
        string old = Export(gguf, $"{architecture}-llava-old", new HfExportOptions { Layout = HfCheckpointLayout.LlavaOld });
        string @new = Export(gguf, $"{architecture}-llava-new", new HfExportOptions { Layout = HfCheckpointLayout.LlavaNew, Shards = 2 });

        using var plainModel = ModelLoader.Load(plain);
        int[] tokens = DecoderAgreementTests.SampleTokens(plainModel.Config.VocabSize, 24, seed: 5);
        float[] expected = Logits(plainModel, tokens);
        foreach (string folder in new[] { old, @new })
        {
            Assert.True(HfModelConfig.Load(folder).IsLlava);
            using var model = ModelLoader.Load(folder);
            Assert.Equal(plainModel.Config, model.Config);
            Assert.Equal(plainModel.Weights.TiedEmbeddings, model.Weights.TiedEmbeddings);
            // Same weights bound, same forward pass: identical logits, bit for bit.
            Assert.Equal(expected, Logits(model, tokens));
        }
    }

    [Theory]
    [InlineData(HfCheckpointLayout.CausalLM)]
    [InlineData(HfCheckpointLayout.LlavaOld)]
    [InlineData(HfCheckpointLayout.LlavaNew)]
    public unsafe void WeightsPointIntoTheMappedShardsWithoutCopies(HfCheckpointLayout layout)
    {
        string gguf = RandomModels.GetPath(Spec(RandomModelArchitecture.Llama) with { WeightType = TensorType.F16 });
        string folder = Export(gguf, $"mapped-{layout}", new HfExportOptions { Layout = layout, Shards = 2 });
        using var checkpoint = SafetensorsCheckpoint.Open(folder);
        var names = DecoderTensorNames.DetectHuggingFace(checkpoint);
        var config = DecoderConfig.FromHuggingFace(HfModelConfig.Load(folder).Text);
        using var weights = DecoderWeights.Bind(checkpoint, names, config);

        byte* Stored(string name) => checkpoint.TryGetTensor(name, out Model.Formats.TensorView t) ? t.Data : throw new KeyNotFoundException(name);
        Assert.True(weights.TokenEmbedding.Data == Stored(names.TokenEmbedding));
        Assert.True(weights.LmHead.Data == Stored(names.LmHead));
        for (int l = 0; l < config.Layers; l++)
        {
            Assert.True(weights.Layers[l].Query.Data == Stored(names.Layer(l, names.Query)));
            Assert.True(weights.Layers[l].Down.Data == Stored(names.Layer(l, names.Down)));
            // F32 norms are used in place too.
            Assert.True((byte*)weights.Layers[l].AttentionNorm == Stored(names.Layer(l, names.AttentionNorm)));
        }
        Assert.Equal(TensorType.F16, weights.Layers[0].Gate.Type);
    }
}
