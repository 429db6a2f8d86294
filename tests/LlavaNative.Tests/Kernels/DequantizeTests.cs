using Xunit;
using LlavaNative.Kernels.Cpu.Quant;
using LlavaNative.Kernels.Tensors;
using LlavaNative.TestSupport;

namespace LlavaNative.Tests.Kernels;

/// <summary>Dequantization is bit-exact with ggml's <c>dequantize_row_*</c> (libggml-base) for random valid blocks.</summary>
public unsafe class DequantizeTests
{
    public static TheoryData<TensorType> QuantizedTypes()
    {
        var data = new TheoryData<TensorType>();
        foreach (var t in QuantRegistry.WeightTypes) if (t != TensorType.F32) data.Add(t);
        return data;
    }

    [Theory]
    [MemberData(nameof(QuantizedTypes))]
    public void MatchesGgmlBitForBit(TensorType type)
    {
        var rng = new Random((int)type * 7919);
        int n = TensorTypeInfo.BlockElements(type) == 256 ? 256 * 24 : 32 * 200 + (TensorTypeInfo.BlockElements(type) == 1 ? 13 : 0);
        byte[] row = QuantTestData.RandomRow(type, n, rng);
        var reference = new float[n];
        var best = new float[n];
        var scalar = new float[n];
        fixed (byte* w = row)
        fixed (float* r = reference, b = best, s = scalar)
        {
            GgmlReference.DequantizeRow(QuantTestData.GgmlName(type), w, r, n);
            QuantRegistry.Kernels(type).Dequantize(w, b, n);
            QuantRegistry.ScalarKernels(type).Dequantize(w, s, n);
        }
        for (int i = 0; i < n; i++)
        {
            Assert.True(BitConverter.SingleToUInt32Bits(reference[i]) == BitConverter.SingleToUInt32Bits(best[i]),
                $"{type} element {i}: {best[i]:R} vs ggml {reference[i]:R}");
            Assert.True(BitConverter.SingleToUInt32Bits(reference[i]) == BitConverter.SingleToUInt32Bits(scalar[i]),
                $"{type} scalar element {i}: {scalar[i]:R} vs ggml {reference[i]:R}");
        }
    }
}
