using Xunit;
using LlavaNative.Kernels.Cpu.Quant;
using LlavaNative.Kernels.Tensors;
using LlavaNative.TestSupport;
using Xunit.Abstractions;

namespace LlavaNative.Tests.Kernels;

/// <summary>
/// Dot products of every weight type with its activation encoding, on random valid rows of awkward
/// lengths. Three independent checks per row:
/// <list type="number">
/// <item>against ggml's own <c>ggml_vec_dot_*</c> (CPU backend) on identical bytes — the strongest check;</item>
/// <item>against exact float64 math on the dequantized weights (ggml's <c>dequantize_row_*</c>) and dequantized activations;</item>
/// <item>the dispatched SIMD kernel against our scalar reference.</item>
/// </list>
/// Tolerances are float rounding of the accumulation: relative to Σ|wᵢxᵢ| (no cancellation credit).
/// </summary>
public unsafe class VecDotTests(ITestOutputHelper output)
{
    public static TheoryData<TensorType> WeightTypes()
    {
        var data = new TheoryData<TensorType>();
        foreach (var t in QuantRegistry.WeightTypes) data.Add(t);
        return data;
    }

    [Theory]
    [MemberData(nameof(WeightTypes))]
    public void AgreesWithGgmlAndExactMath(TensorType type)
    {
        var best = QuantRegistry.Kernels(type);
        var scalar = QuantRegistry.ScalarKernels(type);
        var rng = new Random(31 * (int)type + 5);
        double worstGgml = 0, worstExact = 0, worstScalar = 0;
        foreach (int n in QuantTestData.Lengths(type))
            for (int trial = 0; trial < 3; trial++)
            {
                byte[] w = QuantTestData.RandomRow(type, n, rng);
                float[] xf = QuantTestData.RandomActivations(n, rng, trial == 2 ? 1e-2f : 1f);
                // x: the DotType encoding ggml and the scalar reference read; xBest: what the dispatched kernel reads
                // (the same values, expanded to F32 for the SIMD F16 kernels).
                byte[] x = new byte[QuantRegistry.ActivationRowBytes(scalar, n)];
                byte[] xBest = new byte[QuantRegistry.ActivationRowBytes(best, n)];
                var wf = new float[n];
                var xq = new float[n];
                float ours, reference, viaScalar;
                fixed (byte* pw = w, px = x, pxb = xBest)
                fixed (float* pxf = xf, pwf = wf, pxq = xq)
                {
                    QuantRegistry.ActivationQuantizerFor(scalar).QuantizeRow(pxf, px, n);
                    QuantRegistry.ActivationQuantizerFor(best).QuantizeRow(pxf, pxb, n);
                    ours = best.VecDot(n, pw, pxb);
                    viaScalar = scalar.VecDot(n, pw, px);
                    reference = GgmlReference.VecDot(QuantTestData.GgmlName(type), QuantTestData.GgmlName(best.DotType), n, pw, px);
                    if (type == TensorType.F32) { Buffer.BlockCopy(w, 0, wf, 0, w.Length); Array.Copy(xf, xq, n); }
                    else
                    {
                        GgmlReference.DequantizeRow(QuantTestData.GgmlName(type), pw, pwf, n);
                        DequantizeActivation(best.DotType, px, pxq, n);
                    }
                }
                double exact = 0, magnitude = 0;
                for (int i = 0; i < n; i++)
                {
                    exact += (double)wf[i] * xq[i];
                    magnitude += Math.Abs((double)wf[i] * xq[i]);
                }
                fixed (byte* pw = w, px = x) exact += Q8_1SumCorrection(type, best.DotType, pw, px, n);
                double scale = magnitude + 1e-30;
                double eGgml = Math.Abs(ours - reference) / scale, eExact = Math.Abs(ours - exact) / scale, eScalar = Math.Abs(ours - viaScalar) / scale;
                worstGgml = Math.Max(worstGgml, eGgml); worstExact = Math.Max(worstExact, eExact); worstScalar = Math.Max(worstScalar, eScalar);
                Assert.True(eGgml <= 2e-6, $"{type} n={n}: ours {ours:R} vs ggml {reference:R} (Σ|wx| {magnitude:G4})");
                Assert.True(eExact <= 2e-6, $"{type} n={n}: ours {ours:R} vs exact {exact:R} (Σ|wx| {magnitude:G4})");
                Assert.True(eScalar <= 2e-6, $"{type} n={n}: SIMD {ours:R} vs scalar {viaScalar:R} (Σ|wx| {magnitude:G4})");
            }
        output.WriteLine($"{type} (ggml {GgmlReference.CpuVariant}): worst error / Σ|wx|: vs ggml {worstGgml:G3}, vs exact {worstExact:G3}, SIMD vs scalar {worstScalar:G3}");
    }

    private static float[] MemoryMarshalFloats(byte[] bytes)
    {
        var f = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, f, 0, bytes.Length);
        return f;
    }

    /// <summary>
    /// Q8_1 blocks carry s = fp16(d·Σq) and ggml's Q4_1/Q5_1 dot products use it for the m·Σx term, so the
    /// exact reference does too: Σ_b m_b·(s_b − d_b·Σq_b), added to Σ wᵢxᵢ.
    /// </summary>
    internal static double Q8_1SumCorrection(TensorType weightType, TensorType dotType, byte* w, byte* x, int n)
    {
        if (dotType != TensorType.Q8_1) return 0;
        int wBytes = TensorTypeInfo.BlockBytes(weightType);
        double correction = 0;
        for (int b = 0; b < n / 32; b++)
        {
            byte* xb = x + b * 36;
            int sum = 0;
            for (int j = 0; j < 32; j++) sum += ((sbyte*)(xb + 4))[j];
            double m = Fp16.ToFloat(*(ushort*)(w + b * wBytes + 2));
            correction += m * (Fp16.ToFloat(*(ushort*)(xb + 2)) - (double)Fp16.ToFloat(*(ushort*)xb) * sum);
        }
        return correction;
    }

    /// <summary>Activation encodings expanded to float (exact: q · d).</summary>
    internal static void DequantizeActivation(TensorType dotType, byte* x, float* dst, int n)
    {
        switch (dotType)
        {
            case TensorType.Q8_0:
            case TensorType.Q8_1:
                int header = dotType == TensorType.Q8_0 ? 2 : 4, bytes = header + 32;
                for (int b = 0; b < n / 32; b++)
                {
                    float d = Fp16.ToFloat(*(ushort*)(x + b * bytes));
                    for (int j = 0; j < 32; j++) dst[b * 32 + j] = ((sbyte*)(x + b * bytes + header))[j] * d;
                }
                break;
            case TensorType.Q8_K:
                GgmlReference.DequantizeRow("q8_K", x, dst, n);
                break;
            case TensorType.F16:
            case TensorType.BF16:
                GgmlReference.DequantizeRow(QuantTestData.GgmlName(dotType), x, dst, n);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(dotType));
        }
    }
}

/// <summary>F16 rows with ±inf/NaN halves leave the fast conversion path and give ggml's non-finite result.</summary>
public unsafe class F16NonFiniteTests
{
    [Theory]
    [InlineData((ushort)0x7C00)] // +inf
    [InlineData((ushort)0xFC00)] // −inf
    [InlineData((ushort)0x7E00)] // NaN
    public void NonFiniteWeightsPropagateLikeGgml(ushort special)
    {
        var rng = new Random(special);
        const int n = 896;
        byte[] w = QuantTestData.RandomRow(TensorType.F16, n, rng, realistic: true);
        w[2 * 100] = (byte)special; w[2 * 100 + 1] = (byte)(special >> 8);
        float[] xf = QuantTestData.RandomActivations(n, rng);
        var best = QuantRegistry.Kernels(TensorType.F16);
        var halves = new byte[n * 2];
        var expanded = new byte[QuantRegistry.ActivationRowBytes(best, n)];
        fixed (byte* pw = w, ph = halves, pe = expanded)
        fixed (float* px = xf)
        {
            QuantRegistry.Activation(TensorType.F16).QuantizeRow(px, ph, n);
            QuantRegistry.ActivationQuantizerFor(best).QuantizeRow(px, pe, n);
            float reference = GgmlReference.VecDot("f16", "f16", n, pw, ph);
            float ours = best.VecDot(n, pw, pe);
            Assert.False(float.IsFinite(reference));
            Assert.Equal(float.IsNaN(reference), float.IsNaN(ours));
            if (!float.IsNaN(reference)) Assert.Equal(reference, ours);
        }
    }
}

/// <summary>
/// The F16 decode kernel's own half → float conversion (<see cref="F16Kernels.VecDotAvx512"/>: 16-bit shifts and
/// unpacks after a qword permutation, lane fix-ups in chunks with special halves) on every finite half, in chunks
/// with and without a zero beside it (inf/NaN lanes: <see cref="F16NonFiniteTests"/>): 64-half rows against one-hot activations return each weight exactly, in
/// its position, equal to <see cref="Fp16.ToFloat"/>.
/// </summary>
public unsafe class F16DecodeConversionTests
{
    [Fact]
    public void EveryFiniteHalfConvertsExactly()
    {
        if (!QuantSimd.UseAvx512) return; // the AVX2 and scalar paths are covered by IsaCheck and VecDotTests
        var halves = new List<ushort>();
        // Every finite half in order (the first 32 chunks hold zeros and subnormals, the last ones normals), then
        // every finite half again, each chunk with a zero in lane (chunk mod 32), so normals go through the fix-up path.
        for (int h = 0; h < 65536; h++) if ((h & 0x7C00) != 0x7C00) halves.Add((ushort)h);
        int finite = halves.Count;
        for (int k = 0; k < finite; k++) halves.Add((k / 32) % 32 == k % 32 ? (ushort)0 : halves[k]);
        while (halves.Count % 64 != 0) halves.Add(0x3C00);
        ushort[] row = halves.ToArray();
        var x = new float[64];
        fixed (ushort* pw = row)
        fixed (float* px = x)
        {
            // 64-half rows: the kernel's main step (two 32-half chunks); the 32-half step and tails are in VecDotTests.
            for (int c = 0; c < row.Length; c += 64)
                for (int j = 0; j < 64; j++)
                {
                    x[j] = 1f;
                    float got = F16Kernels.VecDotAvx512(64, (byte*)(pw + c), (byte*)px);
                    x[j] = 0f;
                    float expected = Fp16.ToFloat(row[c + j]);
                    Assert.True(BitConverter.SingleToInt32Bits(got) == BitConverter.SingleToInt32Bits(expected) || (got == 0 && expected == 0),
                        $"half 0x{row[c + j]:X4} at lane {j}: {got:R}, expected {expected:R}");
                }
        }
    }
}
