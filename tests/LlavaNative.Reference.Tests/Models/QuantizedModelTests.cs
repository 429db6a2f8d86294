using LlavaNative.Kernels.Tensors;
using LlavaNative.TestSupport;
using LlavaNative.TestSupport.LlamaCpp;
using Xunit;
using Xunit.Abstractions;

namespace LlavaNative.Reference.Tests.Models;

/// <summary>
/// llama_model_quantize turns the "quantizable" random models (every row a multiple of 256) into each file
/// type the engine must read; the results load, use only tensor types the engine knows, and stay close to
/// the F32 model by an amount that fits the format.
/// </summary>
public class QuantizedModelTests(ITestOutputHelper output)
{
    public static TheoryData<RandomModelArchitecture, LlamaFtype, TensorType, double> Cases()
    {
        // ftype, the tensor type it is named after, and a bound on the rel. L2 error of all logits vs F32.
        var types = new (LlamaFtype, TensorType, double)[]
        {
            (LlamaFtype.MOSTLY_F16, TensorType.F16, 0.005),
            (LlamaFtype.MOSTLY_BF16, TensorType.BF16, 0.03),
            (LlamaFtype.MOSTLY_Q8_0, TensorType.Q8_0, 0.05),
            (LlamaFtype.MOSTLY_Q6_K, TensorType.Q6_K, 0.1),
            (LlamaFtype.MOSTLY_Q5_0, TensorType.Q5_0, 0.2),
            (LlamaFtype.MOSTLY_Q5_1, TensorType.Q5_1, 0.2),
            (LlamaFtype.MOSTLY_Q5_K_M, TensorType.Q5_K, 0.2),
            (LlamaFtype.MOSTLY_Q4_0, TensorType.Q4_0, 0.4),
            (LlamaFtype.MOSTLY_Q4_1, TensorType.Q4_1, 0.4),
            (LlamaFtype.MOSTLY_Q4_K_M, TensorType.Q4_K, 0.4),
            (LlamaFtype.MOSTLY_IQ4_NL, TensorType.IQ4_NL, 0.4),
            (LlamaFtype.MOSTLY_Q3_K_M, TensorType.Q3_K, 0.8),
            (LlamaFtype.MOSTLY_Q2_K, TensorType.Q2_K, 1.2),
        };
        var data = new TheoryData<RandomModelArchitecture, LlamaFtype, TensorType, double>();
        foreach (RandomModelArchitecture arch in new[] { RandomModelArchitecture.Llama, RandomModelArchitecture.Qwen2 })
            foreach (var (ftype, main, bound) in types)
                data.Add(arch, ftype, main, bound);
        return data;
    }

    private static readonly Lazy<float[][]> ReferenceLlama = new(() => EvalF32(RandomModelArchitecture.Llama));
    private static readonly Lazy<float[][]> ReferenceQwen2 = new(() => EvalF32(RandomModelArchitecture.Qwen2));
    private const string Prompt = "quantized models must still make sense of this";

    private static float[][] EvalF32(RandomModelArchitecture arch)
    {
        using LlamaCppModel m = LlamaCppModel.Load(RandomModels.GetPath(RandomModelSpec.Quantizable(arch)));
        return m.EvalLogits(m.Tokenize(Prompt, true, false));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void QuantizedFile_LoadsAndStaysCloseToF32(RandomModelArchitecture arch, LlamaFtype ftype, TensorType mainType, double maxRelL2)
    {
        RandomModelSpec spec = RandomModelSpec.Quantizable(arch);
        string path = RandomModels.GetQuantizedPath(spec, ftype);

        var seen = new SortedSet<string>();
        using (var g = GgmlGgufReader.Open(path))
        {
            Assert.Equal((uint)ftype, g.GetUInt32(g.FindKey("general.file_type")));
            bool sawMain = false;
            for (long i = 0; i < g.TensorCount; i++)
            {
                string name = g.TensorName(i);
                var type = (TensorType)g.TensorType(i);
                Assert.True(TensorTypeInfo.IsKnown(type), $"{ftype}: '{name}' has ggml type {(int)type}, which the engine does not read");
                bool oneDimensional = g.TensorDimensions(i)[1] == 1;
                if (oneDimensional)
                    Assert.Equal(TensorType.F32, type); // norms and biases stay F32
                sawMain |= type == mainType;
                seen.Add($"{name}:{type}");
            }
            Assert.True(sawMain, $"{ftype} produced no {mainType} tensor: {string.Join(", ", seen)}");
        }

        using LlamaCppModel model = LlamaCppModel.Load(path);
        Assert.Equal(ftype, model.FileType);
        float[][] reference = arch == RandomModelArchitecture.Llama ? ReferenceLlama.Value : ReferenceQwen2.Value;
        float[][] logits = model.EvalLogits(model.Tokenize(Prompt, true, false));
        Assert.Equal(reference.Length, logits.Length);
        double num = 0, den = 0;
        for (int t = 0; t < logits.Length; t++)
            for (int v = 0; v < logits[t].Length; v++)
            {
                Assert.True(float.IsFinite(logits[t][v]));
                double e = logits[t][v] - reference[t][v];
                num += e * e;
                den += (double)reference[t][v] * reference[t][v];
            }
        double rel = Math.Sqrt(num / den);
        output.WriteLine($"{arch} {ftype}: rel L2 of logits vs F32 = {rel:G3}; tensors: {string.Join(", ", seen.Where(s => !s.EndsWith(":F32")))}");
        Assert.True(rel > 0, "quantization changed nothing: the file was not quantized");
        Assert.True(rel < maxRelL2, $"{ftype}: logits moved by rel L2 {rel:G3} (bound {maxRelL2})");
    }

    [Theory]
    [InlineData(LlamaFtype.MOSTLY_Q4_0, 1e-3)]
    [InlineData(LlamaFtype.MOSTLY_Q4_K_M, 0.5)]
    public void RepackedKernels_StayCloseToThePlainPath(LlamaFtype ftype, double bound)
    {
        // llama.cpp's default on x86 repacks some quant types into interleaved layouts with their own kernels.
        // LlamaCppModel uses the plain vec_dot path by default; the repacked one must stay far inside the
        // quantization error (measured: Q4_0 ~2e-5, Q4_K_M ~0.16 against a ~0.8 RMS quantization error).
        string path = RandomModels.GetQuantizedPath(RandomModelSpec.Quantizable(RandomModelArchitecture.Llama), ftype);
        using LlamaCppModel repacked = LlamaCppModel.Load(path, repackWeights: true);
        using LlamaCppModel plain = LlamaCppModel.Load(path);
        int[] tokens = plain.Tokenize(Prompt, true, false);
        float[][] a = repacked.EvalLogits(tokens), b = plain.EvalLogits(tokens);
        double worst = a.Zip(b, RandomModelTests.MaxAbsDiff).Max();
        output.WriteLine($"{ftype}: repacked vs plain max |Δlogit| = {worst:G3}");
        Assert.True(worst < bound, $"{ftype}: repacked and plain kernels differ by {worst}");
    }
}
