using LlavaNative.Kernels.Cpu.Quant;
using LlavaNative.Kernels.Tensors;
using LlavaNative.Model.Formats.Gguf;
using LlavaNative.Model.Language;
using LlavaNative.TestSupport;
using LlavaNative.TestSupport.LlamaCpp;
using Xunit;
using Xunit.Abstractions;

namespace LlavaNative.Reference.Tests.Models;

/// <summary>
/// Every weight type: llama.cpp quantizes a random model, then our logits are compared with llama.cpp's on
/// that file. The tolerance is llama.cpp's own distance from exact math: the "exact" logits come from an F32
/// copy of the same (dequantized) weights run through F32 arithmetic (ours, which agrees with llama.cpp's F32
/// path to 2e-5). Our distance to llama.cpp must not exceed llama.cpp's distance to exact math.
/// </summary>
public sealed class QuantizedDecoderAgreementTests(ITestOutputHelper output)
{
    public static TheoryData<LlamaFtype, RandomModelArchitecture> Cases()
    {
        var data = new TheoryData<LlamaFtype, RandomModelArchitecture>();
        foreach (var f in new[]
                 {
                     LlamaFtype.MOSTLY_F16, LlamaFtype.MOSTLY_BF16, LlamaFtype.MOSTLY_Q8_0, LlamaFtype.MOSTLY_Q4_0,
                     LlamaFtype.MOSTLY_Q4_1, LlamaFtype.MOSTLY_Q5_0, LlamaFtype.MOSTLY_Q5_1, LlamaFtype.MOSTLY_Q2_K,
                     LlamaFtype.MOSTLY_Q3_K_M, LlamaFtype.MOSTLY_Q4_K_M, LlamaFtype.MOSTLY_Q5_K_M, LlamaFtype.MOSTLY_Q6_K,
                     LlamaFtype.MOSTLY_IQ4_NL,
                 })
            data.Add(f, RandomModelArchitecture.Llama);
        data.Add(LlamaFtype.MOSTLY_Q4_0, RandomModelArchitecture.Qwen2);
        data.Add(LlamaFtype.MOSTLY_Q4_K_M, RandomModelArchitecture.Qwen2);
        return data;
    }

    private static readonly object CacheGate = new();

    /// <summary>The quantized file for (type, architecture), made once per test run.</summary>
    internal static string QuantizedModel(LlamaFtype ftype, RandomModelArchitecture architecture)
    {
        string source = RandomModels.GetPath(RandomModelSpec.Quantizable(architecture));
        string path = Path.Combine(Path.GetDirectoryName(source)!, $"{Path.GetFileNameWithoutExtension(source)}-{ftype}.gguf");
        lock (CacheGate)
        {
            if (!File.Exists(path))
            {
                string temp = path + ".tmp";
                LlamaCppModel.Quantize(source, temp, ftype);
                File.Move(temp, path, overwrite: true);
            }
        }
        return path;
    }

    /// <summary>An F32 GGUF holding exactly the dequantized weights of <paramref name="path"/>.</summary>
    internal static unsafe string DequantizedCopy(string path)
    {
        string target = path.Replace(".gguf", "-dequantized-f32.gguf");
        lock (CacheGate)
        {
            if (File.Exists(target)) return target;
            using var file = GgufFile.Open(path);
            var writer = new GgufWriter();
            writer.CopyMetadata(file, key => key != "general.file_type");
            writer.SetUInt32("general.file_type", 0);
            foreach (var t in file.Tensors)
            {
                var values = new float[t.ElementCount];
                fixed (float* dst = values)
                {
                    if (t.Type == TensorType.F32) new ReadOnlySpan<float>(t.Data, values.Length).CopyTo(values);
                    else
                    {
                        var kernels = QuantRegistry.ScalarKernels(t.Type);
                        long rows = t.ElementCount / t.Dimensions[0];
                        long rowBytes = TensorTypeInfo.RowBytes(t.Type, t.Dimensions[0]);
                        for (long r = 0; r < rows; r++)
                            kernels.Dequantize(t.Data + r * rowBytes, dst + r * t.Dimensions[0], (int)t.Dimensions[0]);
                    }
                }
                writer.AddTensor(t.Name, t.Dimensions, values);
            }
            writer.WriteTo(target + ".tmp");
            File.Move(target + ".tmp", target, overwrite: true);
        }
        return target;
    }

    private static float[] OurLogits(string path, int[] tokens)
    {
        using var model = DecoderModel.LoadGguf(path);
        using var state = model.CreateState(tokens.Length, maxBatch: 16);
        var logits = new float[tokens.Length * model.Config.VocabSize];
        model.Forward(state, tokens, LogitsMode.All, logits);
        return logits;
    }

    /// <summary>Every position's logits through the decode path: one token per forward pass (the mat-vec kernels).</summary>
    private static float[] OurDecodeLogits(string path, int[] tokens)
    {
        using var model = DecoderModel.LoadGguf(path);
        using var state = model.CreateState(tokens.Length);
        int vocab = model.Config.VocabSize;
        var logits = new float[tokens.Length * vocab];
        for (int t = 0; t < tokens.Length; t++)
            model.Forward(state, tokens.AsSpan(t, 1)).CopyTo(logits.AsSpan(t * vocab, vocab));
        return logits;
    }

    public static TheoryData<LlamaFtype, RandomModelArchitecture> DecodeCases() => new()
    {
        { LlamaFtype.MOSTLY_F16, RandomModelArchitecture.Llama },
        { LlamaFtype.MOSTLY_Q8_0, RandomModelArchitecture.Llama },
        { LlamaFtype.MOSTLY_Q4_0, RandomModelArchitecture.Llama },
        { LlamaFtype.MOSTLY_Q4_K_M, RandomModelArchitecture.Llama },
        { LlamaFtype.MOSTLY_Q4_0, RandomModelArchitecture.Qwen2 },
    };

    /// <summary>
    /// As <see cref="LogitsAgreeWithLlamaCppWithinItsOwnDistanceFromExactMath"/>, with our logits from token-by-token
    /// decoding (nTokens = 1: <c>QuantKernels.MatVec</c> / <c>VecDot</c>, not the prefill tiles).
    /// </summary>
    [Theory, MemberData(nameof(DecodeCases))]
    public void DecodeLogitsAgreeWithLlamaCppWithinItsOwnDistanceFromExactMath(LlamaFtype ftype, RandomModelArchitecture architecture)
    {
        string path = QuantizedModel(ftype, architecture);
        string exactPath = DequantizedCopy(path);
        int vocab;
        using (var probe = GgufFile.Open(path)) vocab = (int)probe.GetTensor("token_embd.weight").Dimensions[1];
        int[] tokens = DecoderAgreementTests.SampleTokens(vocab, 12, seed: 4);

        float[] ours = OurDecodeLogits(path, tokens);
        float[] exact = OurLogits(exactPath, tokens);
        using var reference = LlamaCppModel.Load(path);
        float[][] theirs = reference.EvalLogits(tokens);

        var (oursVsTheirs, oursVsTheirsRel) = DecoderAgreementTests.Compare(ours, theirs, vocab);
        var (exactVsTheirs, exactVsTheirsRel) = DecoderAgreementTests.Compare(exact, theirs, vocab);
        output.WriteLine($"{ftype} {architecture}, decode: ours vs llama.cpp max abs {oursVsTheirs:E2} (rel L2 {oursVsTheirsRel:E2}); " +
                         $"llama.cpp vs exact math max abs {exactVsTheirs:E2} (rel L2 {exactVsTheirsRel:E2})");
        Assert.True(oursVsTheirs <= Math.Max(exactVsTheirs, 1e-4),
            $"{ftype} decode: our distance to llama.cpp {oursVsTheirs:E3} exceeds llama.cpp's distance to exact math {exactVsTheirs:E3}");
    }

    [Theory, MemberData(nameof(Cases))]
    public void LogitsAgreeWithLlamaCppWithinItsOwnDistanceFromExactMath(LlamaFtype ftype, RandomModelArchitecture architecture)
    {
        string path = QuantizedModel(ftype, architecture);
        string exactPath = DequantizedCopy(path);
        int vocab;
        using (var probe = GgufFile.Open(path)) vocab = (int)probe.GetTensor("token_embd.weight").Dimensions[1];
        int[] tokens = DecoderAgreementTests.SampleTokens(vocab, 40, seed: 3);

        float[] ours = OurLogits(path, tokens);
        float[] exact = OurLogits(exactPath, tokens);
        using var reference = LlamaCppModel.Load(path);
        float[][] theirs = reference.EvalLogits(tokens);

        var (oursVsTheirs, oursVsTheirsRel) = DecoderAgreementTests.Compare(ours, theirs, vocab);
        var (exactVsTheirs, exactVsTheirsRel) = DecoderAgreementTests.Compare(exact, theirs, vocab);
        string types;
        using (var f = GgufFile.Open(path)) types = string.Join(" ", f.Tensors.GroupBy(t => t.Type).Select(g => $"{g.Key}×{g.Count()}"));
        output.WriteLine($"{ftype} {architecture} [{types}]: ours vs llama.cpp max abs {oursVsTheirs:E2} (rel L2 {oursVsTheirsRel:E2}); " +
                         $"llama.cpp vs exact math max abs {exactVsTheirs:E2} (rel L2 {exactVsTheirsRel:E2})");
        // A floor of 1e-4 covers types where llama.cpp is itself (almost) exact, e.g. F16 with F16-rounded activations.
        Assert.True(oursVsTheirs <= Math.Max(exactVsTheirs, 1e-4),
            $"{ftype}: our distance to llama.cpp {oursVsTheirs:E3} exceeds llama.cpp's distance to exact math {exactVsTheirs:E3}");
    }
}
