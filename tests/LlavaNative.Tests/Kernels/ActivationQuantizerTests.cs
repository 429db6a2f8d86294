using Xunit;
using LlavaNative.Kernels.Cpu.Quant;
using LlavaNative.Kernels.Tensors;
using LlavaNative.TestSupport;

namespace LlavaNative.Tests.Kernels;

/// <summary>
/// Activation encodings are byte-identical with what ggml's CPU backend (the x86 variant ggml picks here)
/// produces before its dot products: <c>quantize_row_q8_0/q8_1/q8_K</c>, <c>ggml_cpu_fp32_to_fp16/bf16</c>.
/// </summary>
public unsafe class ActivationQuantizerTests
{
    public static TheoryData<TensorType> DotTypes() => new() { TensorType.Q8_0, TensorType.Q8_1, TensorType.Q8_K, TensorType.F16, TensorType.BF16 };

    [Theory]
    [MemberData(nameof(DotTypes))]
    public void MatchesGgmlCpuBackend(TensorType dotType)
    {
        var rng = new Random(17 + (int)dotType);
        foreach (int n in new[] { 256, 512, 4864 / 256 * 256 + 256, 4608 })
            foreach (float scale in new[] { 1f, 1e-3f, 300f })
            {
                float[] x = QuantTestData.RandomActivations(n, rng, scale);
                // Values that land exactly on .5 after scaling by 127/amax exercise the rounding mode:
                // with amax = 127 the multiplier is exactly 1.
                if (scale == 1f)
                {
                    x[0] = 127f; x[1] = 2.5f; x[2] = -3.5f; x[3] = 0.5f; x[4] = -0.5f; x[5] = 100.5f;
                    for (int i = 6; i < 32; i++) x[i] = (i % 2 == 0 ? 1 : -1) * (i + 0.5f);
                }
                Check(dotType, x);
            }
    }

    private static void Check(TensorType dotType, float[] x)
    {
        int n = x.Length;
        long bytes = TensorTypeInfo.RowBytes(dotType, n);
        var expected = new byte[bytes];
        var best = new byte[bytes];
        var scalar = new byte[bytes];
        fixed (float* px = x)
        fixed (byte* e = expected, b = best, s = scalar)
        {
            GgmlReference.QuantizeRowCpu(QuantTestData.GgmlName(dotType), px, e, n);
            QuantRegistry.Activation(dotType).QuantizeRow(px, b, n);
            QuantRegistry.ScalarActivation(dotType).QuantizeRow(px, s, n);
        }
        Assert.True(expected.AsSpan().SequenceEqual(best), $"{dotType} n={n}: first difference at byte {FirstDifference(expected, best)}");
        Assert.True(expected.AsSpan().SequenceEqual(scalar), $"{dotType} n={n} scalar: first difference at byte {FirstDifference(expected, scalar)}");
    }

    private static int FirstDifference(byte[] a, byte[] b)
    {
        for (int i = 0; i < a.Length; i++) if (a[i] != b[i]) return i;
        return -1;
    }
}
