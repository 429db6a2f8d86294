using LlavaNative.Kernels.Cpu;
using LlavaNative.Kernels.Cpu.Quant;
using LlavaNative.Kernels.Tensors;
using LlavaNative.Model;
using LlavaNative.Model.Formats.Gguf;
using LlavaNative.Model.Formats.Npy;
using LlavaNative.Reference.Tests.Cli;
using LlavaNative.Model.Language;
using LlavaNative.TestSupport;
using LlavaNative.TestSupport.HuggingFace;
using LlavaNative.TestSupport.LlamaCpp;
using Xunit;
using Xunit.Abstractions;

namespace LlavaNative.Reference.Tests.Models;

/// <summary>
/// <see cref="ModelLoadOptions.Quantize"/> against <c>llama_model_quantize</c> with the <c>pure</c> flag (every
/// matrix, embedding and output included, gets the ftype's type, with llama.cpp's fallback where a row is not a
/// whole number of blocks): (a) the bytes we encode on load are the bytes llama.cpp writes, tensor by tensor,
/// types included; (b) logits of a Hugging Face folder quantized on load agree with llama.cpp's logits on its
/// quantized file within llama.cpp's own distance from exact math (as in <see cref="QuantizedDecoderAgreementTests"/>).
/// </summary>
public sealed unsafe class OnLoadQuantizationTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("llavanative-onload-q-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); }
        catch (IOException) { }
    }

    private static LlamaFtype Ftype(TensorType type) => type switch
    {
        TensorType.Q8_0 => LlamaFtype.MOSTLY_Q8_0,
        TensorType.Q4_0 => LlamaFtype.MOSTLY_Q4_0,
        TensorType.Q4_1 => LlamaFtype.MOSTLY_Q4_1,
        TensorType.Q5_0 => LlamaFtype.MOSTLY_Q5_0,
        TensorType.Q5_1 => LlamaFtype.MOSTLY_Q5_1,
        TensorType.Q4_K => LlamaFtype.MOSTLY_Q4_K_M, // default type Q4_K; --pure applies it everywhere
        TensorType.Q5_K => LlamaFtype.MOSTLY_Q5_K_M,
        TensorType.Q6_K => LlamaFtype.MOSTLY_Q6_K,
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    /// <summary>
    /// dim 256 and ffn 512 (every row a multiple of 256), or ffn 160 so ffn_down rows (160) take the K-quant fallback
    /// (Q4_K → Q5_0 …), or ffn 176 so they are not even a multiple of 32 (F16 fallback).
    /// </summary>
    private static RandomModelSpec Spec(RandomModelArchitecture architecture, int ffn, TensorType weightType = TensorType.F32) =>
        RandomModelSpec.Quantizable(architecture) with { FeedForwardLength = ffn, WeightType = weightType };

    private static readonly object CacheGate = new();

    private static string PureQuantized(string source, TensorType type)
    {
        string path = source.Replace(".gguf", $"-pure-{TensorTypeInfo.Name(type)}.gguf");
        lock (CacheGate)
        {
            if (!File.Exists(path))
            {
                LlamaCppModel.Quantize(source, path + ".tmp", Ftype(type), pure: true);
                File.Move(path + ".tmp", path, overwrite: true);
            }
        }
        return path;
    }

    /// <summary>Our bound matrices under their GGUF names.</summary>
    private static Dictionary<string, WeightMatrix> ByGgufName(DecoderWeights w)
    {
        var map = new Dictionary<string, WeightMatrix> { ["token_embd.weight"] = w.TokenEmbedding };
        if (!w.TiedEmbeddings) map["output.weight"] = w.LmHead;
        for (int l = 0; l < w.Layers.Length; l++)
        {
            var layer = w.Layers[l];
            map[$"blk.{l}.attn_q.weight"] = layer.Query;
            map[$"blk.{l}.attn_k.weight"] = layer.Key;
            map[$"blk.{l}.attn_v.weight"] = layer.Value;
            map[$"blk.{l}.attn_output.weight"] = layer.Output;
            map[$"blk.{l}.ffn_gate.weight"] = layer.Gate;
            map[$"blk.{l}.ffn_up.weight"] = layer.Up;
            map[$"blk.{l}.ffn_down.weight"] = layer.Down;
        }
        return map;
    }

    public static TheoryData<TensorType, RandomModelArchitecture, int, TensorType> ByteCases()
    {
        var data = new TheoryData<TensorType, RandomModelArchitecture, int, TensorType>();
        foreach (var type in MatrixQuantizer.Targets) data.Add(type, RandomModelArchitecture.Llama, 512, TensorType.F32);
        data.Add(TensorType.Q4_K, RandomModelArchitecture.Qwen2, 512, TensorType.F32);
        data.Add(TensorType.Q8_0, RandomModelArchitecture.Llama, 512, TensorType.F16);  // F16 source: widened exactly first
        data.Add(TensorType.Q4_K, RandomModelArchitecture.Qwen2, 512, TensorType.BF16); // BF16 source (a GGUF llama.cpp converted)
        data.Add(TensorType.Q4_K, RandomModelArchitecture.Llama, 160, TensorType.F32);  // ffn_down → Q5_0
        data.Add(TensorType.Q6_K, RandomModelArchitecture.Llama, 160, TensorType.F32);  // ffn_down → Q8_0
        data.Add(TensorType.Q4_K, RandomModelArchitecture.Llama, 176, TensorType.F32);  // ffn_down → F16
        data.Add(TensorType.Q8_0, RandomModelArchitecture.Llama, 176, TensorType.F32);  // ffn_down → F16
        return data;
    }

    [Theory, MemberData(nameof(ByteCases))]
    public void QuantizedOnLoadBytesAreTheBytesLlamaCppWrites(TensorType type, RandomModelArchitecture architecture, int ffn, TensorType source)
    {
        string gguf = source == TensorType.BF16
            ? RandomModels.GetQuantizedPath(Spec(architecture, ffn), LlamaFtype.MOSTLY_BF16)
            : RandomModels.GetPath(Spec(architecture, ffn, source));
        string theirs = PureQuantized(gguf, type);

        using var pool = new ComputeThreadPool(2);
        using var model = DecoderModel.LoadGguf(gguf, new ModelLoadOptions { Quantize = type, Pool = pool });
        var ours = ByGgufName(model.Weights);
        using (var input = GgufFile.Open(gguf)) Assert.Equal(source, input.GetTensor("blk.0.attn_q.weight").Type);
        using var file = GgufFile.Open(theirs);
        int compared = 0;
        var types = new SortedSet<string>();
        foreach (var t in file.Tensors.Where(t => t.Dimensions.Length == 2))
        {
            Assert.True(ours.TryGetValue(t.Name, out var m), $"llama.cpp wrote matrix '{t.Name}', which we did not bind");
            Assert.True(t.Type == m.Type, $"{t.Name}: llama.cpp chose {t.Type}, we chose {m.Type}");
            Assert.Equal(t.ByteSize, m.RowBytes * m.Rows);
            Assert.True(new ReadOnlySpan<byte>(t.Data, (int)t.ByteSize).SequenceEqual(new ReadOnlySpan<byte>(m.Data, (int)t.ByteSize)),
                $"{t.Name} ({t.Type}): bytes differ from llama.cpp's");
            types.Add($"{t.Name.Split('.')[^2]}:{t.Type}");
            compared++;
        }
        Assert.Equal(ours.Count, compared);
        output.WriteLine($"{type} {architecture} ffn {ffn} from {source}: {compared} matrices byte-identical ({string.Join(", ", types)})");
    }

    public static TheoryData<TensorType, RandomModelArchitecture> LogitCases() => new()
    {
        { TensorType.Q8_0, RandomModelArchitecture.Llama }, { TensorType.Q4_0, RandomModelArchitecture.Llama },
        { TensorType.Q4_K, RandomModelArchitecture.Llama }, { TensorType.Q8_0, RandomModelArchitecture.Qwen2 },
        { TensorType.Q4_0, RandomModelArchitecture.Qwen2 }, { TensorType.Q4_K, RandomModelArchitecture.Qwen2 },
    };

    /// <summary>
    /// The F32 GGUF exported as a Hugging Face folder (llama q/k rows un-permuted, rotate_half RoPE), quantized on load,
    /// against llama.cpp on the file it quantized from the GGUF.
    /// </summary>
    [Theory, MemberData(nameof(LogitCases))]
    public void HuggingFaceFolderQuantizedOnLoadAgreesWithLlamaCpp(TensorType type, RandomModelArchitecture architecture)
    {
        string gguf = RandomModels.GetPath(Spec(architecture, 512));
        string theirsPath = PureQuantized(gguf, type);
        string folder = Path.Combine(_root, $"{architecture}-{type}");
        GgufToHuggingFace.Export(gguf, folder, new HfExportOptions { Shards = 2 });

        using var model = ModelLoader.Load(folder, new ModelLoadOptions { Quantize = type });
        Assert.Equal(type, model.Weights.Layers[0].Query.Type);
        Assert.Equal(type, model.Weights.TokenEmbedding.Type);
        int vocab = model.Config.VocabSize;
        int[] tokens = DecoderAgreementTests.SampleTokens(vocab, 40, seed: 3);
        float[] ours = Logits(model, tokens);
        float[] exact;
        using (var exactModel = DecoderModel.LoadGguf(QuantizedDecoderAgreementTests.DequantizedCopy(theirsPath))) exact = Logits(exactModel, tokens);
        using var reference = LlamaCppModel.Load(theirsPath);
        float[][] theirs = reference.EvalLogits(tokens);

        var (oursVsTheirs, rel) = DecoderAgreementTests.Compare(ours, theirs, vocab);
        var (exactVsTheirs, exactRel) = DecoderAgreementTests.Compare(exact, theirs, vocab);
        output.WriteLine($"{type} {architecture} HF folder quantized on load: vs llama.cpp max abs {oursVsTheirs:E2} (rel L2 {rel:E2}); " +
                         $"llama.cpp vs exact math {exactVsTheirs:E2} (rel L2 {exactRel:E2})");
        Assert.True(oursVsTheirs <= Math.Max(exactVsTheirs, 1e-4),
            $"{type}: our distance to llama.cpp {oursVsTheirs:E3} exceeds llama.cpp's distance to exact math {exactVsTheirs:E3}");
    }

    [Fact]
    public void EvalQuantizeOptionGivesLlamaCppsQuantizedLogits()
    {
        string gguf = RandomModels.GetPath(Spec(RandomModelArchitecture.Qwen2, 512));
        string theirsPath = PureQuantized(gguf, TensorType.Q4_K);
        string folder = Path.Combine(_root, "cli-qwen2");
        GgufToHuggingFace.Export(gguf, folder, new HfExportOptions());
        int[] tokens = DecoderAgreementTests.SampleTokens(512, 12, seed: 9);
        string npy = Path.Combine(_root, "logits.npy");

        var (exit, _, err) = CliContractTests.RunCli("eval", "-m", folder, "--quantize", "q4_k", "--tokens", string.Join(",", tokens), "--logits-out", npy, "-t", "2");
        Assert.True(exit == 0, err);
        var (ours, shape) = NpyFile.ReadFloat32(npy);
        Assert.Equal([tokens.Length, 512], shape);
        float[] exact;
        using (var exactModel = DecoderModel.LoadGguf(QuantizedDecoderAgreementTests.DequantizedCopy(theirsPath))) exact = Logits(exactModel, tokens);
        using var reference = LlamaCppModel.Load(theirsPath);
        float[][] theirs = reference.EvalLogits(tokens);
        var (oursVsTheirs, _) = DecoderAgreementTests.Compare(ours, theirs, 512);
        var (exactVsTheirs, _) = DecoderAgreementTests.Compare(exact, theirs, 512);
        output.WriteLine($"llava eval --quantize q4_k: vs llama.cpp max abs {oursVsTheirs:E2}; llama.cpp vs exact math {exactVsTheirs:E2}");
        Assert.True(oursVsTheirs <= Math.Max(exactVsTheirs, 1e-4), $"{oursVsTheirs:E3} > {exactVsTheirs:E3}");
    }

    [Fact]
    public void AnAlreadyQuantizedModelOrAnUnknownTypeIsRefused()
    {
        string gguf = RandomModels.GetPath(Spec(RandomModelArchitecture.Llama, 512));
        string quantized = PureQuantized(gguf, TensorType.Q4_0);
        var e = Assert.Throws<GgufFormatException>(() => DecoderModel.LoadGguf(quantized, new ModelLoadOptions { Quantize = TensorType.Q8_0 }));
        Assert.Contains(Path.GetFileName(quantized), e.Message);
        Assert.Contains("is already Q4_0; quantizing on load needs F32, F16 or BF16 weights", e.Message);
        Assert.Throws<ArgumentException>(() => DecoderModel.LoadGguf(gguf, new ModelLoadOptions { Quantize = TensorType.Q2_K }));

        var (exit, _, err) = CliContractTests.RunCli("eval", "-m", quantized, "--quantize", "q8_0", "--tokens", "1,2", "--logits-out", Path.Combine(_root, "x.npy"));
        Assert.Equal(1, exit);
        Assert.Contains("is already Q4_0", err);
        (exit, _, err) = CliContractTests.RunCli("bench", "-m", gguf, "--quantize", "q3_k", "-p", "1", "-n", "1");
        Assert.Equal(2, exit);
        Assert.Contains("--quantize: unknown type 'q3_k'; use one of q8_0, q4_0", err);
    }

    private static float[] Logits(DecoderModel model, int[] tokens)
    {
        using var state = model.CreateState(tokens.Length, maxBatch: 16);
        var logits = new float[tokens.Length * model.Config.VocabSize];
        model.Forward(state, tokens, LogitsMode.All, logits);
        return logits;
    }
}
