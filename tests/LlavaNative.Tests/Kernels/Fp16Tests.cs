using Xunit;
using LlavaNative.Kernels.Cpu.Quant;
using LlavaNative.TestSupport;

namespace LlavaNative.Tests.Kernels;

/// <summary>Half/bfloat16 conversions against ggml's (libggml-base) and between our scalar and vector paths.</summary>
public unsafe class Fp16Tests
{
    [Fact]
    public void EveryHalfExpandsExactlyLikeGgml()
    {
        var halves = new ushort[65536];
        for (int i = 0; i < halves.Length; i++) halves[i] = (ushort)i;
        var vector = new float[65536];
        var reference = new float[65536];
        fixed (ushort* h = halves)
        fixed (float* v = vector, r = reference)
        {
            Fp16.ToFloatRow(h, v, halves.Length);
            GgmlReference.DequantizeRow("f16", h, r, halves.Length);
        }
        for (int i = 0; i < halves.Length; i++)
        {
            uint expected = BitConverter.SingleToUInt32Bits(reference[i]);
            bool nan = float.IsNaN(reference[i]);
            Assert.True(nan ? float.IsNaN(Fp16.ToFloat((ushort)i)) : BitConverter.SingleToUInt32Bits(Fp16.ToFloat((ushort)i)) == expected, $"scalar half 0x{i:X4}");
            Assert.True(nan ? float.IsNaN(vector[i]) : BitConverter.SingleToUInt32Bits(vector[i]) == expected, $"vector half 0x{i:X4}");
        }
    }

    [Fact]
    public void FloatsRoundToHalfLikeGgml()
    {
        var rng = new Random(1);
        var values = new List<float> { 0f, -0f, 65504f, 65519.99f, 65520f, 1e6f, -1e6f, float.PositiveInfinity, float.NegativeInfinity,
            6.1035156e-05f, 6.097555e-05f, 5.9604645e-08f, 2.9802322e-08f, 2.9802326e-08f, 1e-10f, 1.00048828125f, 1.00146484375f };
        // Exact ties between neighbouring halves, across the normal and subnormal ranges.
        for (int h = 0; h < 0x7BFF; h += 7) values.Add((Fp16.ToFloat((ushort)h) + Fp16.ToFloat((ushort)(h + 1))) / 2);
        for (int i = 0; i < 20000; i++)
            values.Add(BitConverter.UInt32BitsToSingle((uint)rng.NextInt64(0, 0x4800_0000L)) * (rng.Next(2) == 0 ? 1 : -1));
        float[] x = values.ToArray();
        var vector = new ushort[x.Length];
        var cpu = new ushort[x.Length];
        fixed (float* px = x)
        fixed (ushort* pv = vector, pc = cpu)
        {
            Fp16.FromFloatRow(px, pv, x.Length);
            GgmlReference.QuantizeRowCpu("f16", px, pc, x.Length);
        }
        for (int i = 0; i < x.Length; i++)
        {
            ushort expected = GgmlReference.Fp32ToFp16(x[i]);
            Assert.True(expected == Fp16.FromFloat(x[i]), $"scalar {x[i]:R}: 0x{Fp16.FromFloat(x[i]):X4} vs ggml 0x{expected:X4}");
            Assert.True(expected == vector[i], $"vector {x[i]:R}: 0x{vector[i]:X4} vs ggml 0x{expected:X4}");
            Assert.True(expected == cpu[i], $"ggml-cpu {x[i]:R}: 0x{cpu[i]:X4} vs ggml 0x{expected:X4}");
        }
    }

    [Fact]
    public void FloatsRoundToBf16LikeGgml()
    {
        var rng = new Random(2);
        var x = new float[4099];
        for (int i = 0; i < x.Length; i++) x[i] = BitConverter.UInt32BitsToSingle((uint)rng.NextInt64(0, 0x1_0000_0000L));
        x[0] = float.NaN; x[1] = BitConverter.UInt32BitsToSingle(0x3F80_8000); x[2] = BitConverter.UInt32BitsToSingle(0x3F81_8000);
        var vector = new ushort[x.Length];
        fixed (float* px = x)
        fixed (ushort* pv = vector)
            Bf16.FromFloatRow(px, pv, x.Length);
        for (int i = 0; i < x.Length; i++)
        {
            ushort expected = GgmlReference.Fp32ToBf16(x[i]);
            Assert.Equal(expected, Bf16.FromFloat(x[i]));
            Assert.Equal(expected, vector[i]);
        }
    }
}
