using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using LlavaNative.Kernels.Tensors;

namespace LlavaNative.Kernels.Cpu.Quant;

/// <summary>
/// IQ4_NL weights · Q8_0 activations. Block (18 bytes): <c>d: f16, qs[16]</c>, nibbles index a fixed
/// non-linear table (<c>kvalues_iq4nl</c>); y = d·kv[q]. Dot product per block
/// (<c>ggml_vec_dot_iq4_nl_q8_0</c>): d_x·d_w·Σ kv[q]·x_q.
/// </summary>
internal static unsafe class IQ4_NLKernels
{
    public const int BlockBytes = 18;
    private const int XBytes = ActivationQuantizers.Q8_0BlockBytes;

    /// <summary>ggml's <c>kvalues_iq4nl</c>.</summary>
    internal static ReadOnlySpan<sbyte> Values => [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

    public static QuantKernels Table => new()
    {
        Type = TensorType.IQ4_NL, DotType = TensorType.Q8_0, Dequantize = &Dequantize,
        VecDot = QuantSimd.UseAvx2 ? &VecDotAvx2 : &VecDotScalar,
        MatMulTile = QuantSimd.UseAvx512 ? &LegacyTileKernels.TileSignedAvx512<LegacyTileKernels.IQ4_NLBlocks>
                   : QuantSimd.UseAvx2 ? &LegacyTileKernels.TileSignedAvx2<LegacyTileKernels.IQ4_NLBlocks> : null,
        TileRows = QuantSimd.UseAvx512 ? 4 : 2, TileTokens = 4,
    };

    public static QuantKernels ScalarTable => new()
    {
        Type = TensorType.IQ4_NL, DotType = TensorType.Q8_0, Dequantize = &Dequantize, VecDot = &VecDotScalar,
    };

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dequantize(byte* src, float* dst, int n)
    {
        ReadOnlySpan<sbyte> kv = Values;
        for (int b = 0; b < n / 32; b++, src += BlockBytes, dst += 32)
        {
            float d = Fp16.ToFloat(*(ushort*)src);
            byte* q = src + 2;
            for (int j = 0; j < 16; j++)
            {
                dst[j] = d * kv[q[j] & 0xF];
                dst[j + 16] = d * kv[q[j] >> 4];
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotScalar(int n, byte* w, byte* x)
    {
        ReadOnlySpan<sbyte> kv = Values;
        float sum = 0;
        for (int b = 0; b < n / 32; b++, w += BlockBytes, x += XBytes)
        {
            byte* q = w + 2;
            sbyte* qx = (sbyte*)(x + 2);
            int s1 = 0, s2 = 0;
            for (int j = 0; j < 16; j++)
            {
                s1 += qx[j] * kv[q[j] & 0xF];
                s2 += qx[j + 16] * kv[q[j] >> 4];
            }
            sum += Fp16.ToFloat(*(ushort*)x) * Fp16.ToFloat(*(ushort*)w) * (s1 + s2);
        }
        return sum;
    }

    /// <summary>Table lookup with <c>vpshufb</c> (16 entries fit one 128-bit lane), then a signed byte dot.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotAvx2(int n, byte* w, byte* x)
    {
        float* f16 = Fp16.Table;
        Vector128<sbyte> table = Vector128.Create(Values);
        Vector256<sbyte> lookup = Vector256.Create(table, table);
        Vector256<float> acc = Vector256<float>.Zero;
        for (int b = 0; b < n / 32; b++, w += BlockBytes, x += XBytes)
        {
            Vector256<sbyte> q = Avx2.Shuffle(lookup, QuantSimd.Nibbles32(w + 2).AsSByte());
            Vector256<int> p = QuantSimd.DotI8x4(q, Vector256.Load((sbyte*)(x + 2)));
            acc = Fma.MultiplyAdd(Vector256.Create(f16[*(ushort*)x] * f16[*(ushort*)w]), Avx.ConvertToVector256Single(p), acc);
        }
        return QuantSimd.HorizontalSum(acc);
    }
}
