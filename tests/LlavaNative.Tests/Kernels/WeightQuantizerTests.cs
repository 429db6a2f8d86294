using Xunit;
using LlavaNative.Kernels.Cpu.Quant;
using LlavaNative.Kernels.Tensors;
using LlavaNative.TestSupport;

namespace LlavaNative.Tests.Kernels;

/// <summary>Weight quantization is byte-identical with ggml's <c>quantize_row_*_ref</c> (libggml-base).</summary>
public unsafe class WeightQuantizerTests
{
    public static TheoryData<TensorType> Types() => new()
    {
        TensorType.Q4_0, TensorType.Q4_1, TensorType.Q5_0, TensorType.Q5_1, TensorType.Q8_0,
        TensorType.Q2_K, TensorType.Q3_K, TensorType.Q4_K, TensorType.Q5_K, TensorType.Q6_K, TensorType.IQ4_NL,
    };

    [Theory]
    [MemberData(nameof(Types))]
    public void MatchesGgmlReferenceQuantizer(TensorType type)
    {
        var rng = new Random(1000 + (int)type);
        const int n = 256 * 16;
        foreach (string distribution in new[] { "gaussian", "uniform", "weights", "outliers", "positive", "sparse" })
        {
            var x = new float[n];
            for (int i = 0; i < n; i++)
            {
                x[i] = distribution switch
                {
                    "gaussian" => QuantTestData.Gaussian(rng),
                    "uniform" => (float)(rng.NextDouble() * 2 - 1),
                    "weights" => QuantTestData.Gaussian(rng) * 0.02f,
                    "outliers" => QuantTestData.Gaussian(rng) * (rng.Next(50) == 0 ? 30f : 1f),
                    "positive" => (float)rng.NextDouble() + 0.1f,
                    _ => rng.Next(8) == 0 ? QuantTestData.Gaussian(rng) : 0f,
                };
            }
            // An all-zero super-block — except for IQ4_NL, whose reference leaves an all-zero block's codes
            // uninitialised (stale stack bytes); with d = 0 they carry no value, but they are not comparable.
            if (distribution == "sparse" && type != TensorType.IQ4_NL) Array.Clear(x, 256, 256);
            if (type == TensorType.IQ4_NL && distribution == "sparse")
                for (int b = 0; b < n; b += 32) x[b] = x[b] == 0 ? 1e-3f : x[b]; // every block has a non-zero value
            var expected = new byte[TensorTypeInfo.RowBytes(type, n)];
            var actual = new byte[expected.Length];
            fixed (float* px = x)
            fixed (byte* e = expected, a = actual)
            {
                GgmlReference.QuantizeRowReference(QuantTestData.GgmlName(type), px, e, n);
                WeightQuantizer.QuantizeRow(type, px, a, n);
            }
            for (int i = 0; i < expected.Length; i++)
                Assert.True(expected[i] == actual[i],
                    $"{type} ({distribution}): byte {i} (block {i / TensorTypeInfo.BlockBytes(type)}, offset {i % TensorTypeInfo.BlockBytes(type)}) is {actual[i]}, ggml wrote {expected[i]}");
        }
    }
}
