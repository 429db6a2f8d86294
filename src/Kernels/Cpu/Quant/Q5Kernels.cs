using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using LlavaNative.Kernels.Tensors;

namespace LlavaNative.Kernels.Cpu.Quant;

/// <summary>
/// Q5_0 weights · Q8_0 activations. Block (22 bytes): <c>d: f16, qh: u32, qs[16]</c>; element j's fifth bit is
/// bit j of qh (elements 16..31: bits 16..31); y = (q − 16)·d. Dot product per block
/// (<c>ggml_vec_dot_q5_0_q8_0</c>): d_w·d_x·Σ (q − 16)·x_q.
/// </summary>
internal static unsafe class Q5_0Kernels
{
    public const int BlockBytes = 22;
    private const int XBytes = ActivationQuantizers.Q8_0BlockBytes;

    public static QuantKernels Table => new()
    {
        Type = TensorType.Q5_0, DotType = TensorType.Q8_0, Dequantize = &Dequantize,
        VecDot = QuantSimd.UseAvx512 ? &VecDotAvx512 : QuantSimd.UseAvx2 ? &VecDotAvx2 : &VecDotScalar,
        MatMulTile = QuantSimd.UseAvx512 ? &LegacyTileKernels.TileUnsignedAvx512<LegacyTileKernels.Q5_0Blocks> : QuantSimd.UseAvx2 ? &LegacyTileKernels.TileUnsignedAvx2<LegacyTileKernels.Q5_0Blocks> : null,
        TileRows = QuantSimd.UseAvx512 ? 4 : 2, TileTokens = 4,
    };

    public static QuantKernels ScalarTable => new()
    {
        Type = TensorType.Q5_0, DotType = TensorType.Q8_0, Dequantize = &Dequantize, VecDot = &VecDotScalar,
    };

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dequantize(byte* src, float* dst, int n)
    {
        for (int b = 0; b < n / 32; b++, src += BlockBytes, dst += 32)
        {
            float d = Fp16.ToFloat(*(ushort*)src);
            uint qh = *(uint*)(src + 2);
            byte* q = src + 6;
            for (int j = 0; j < 16; j++)
            {
                int h0 = (int)((qh >> j) << 4) & 0x10, h1 = (int)(qh >> (j + 12)) & 0x10;
                dst[j] = (((q[j] & 0x0F) | h0) - 16) * d;
                dst[j + 16] = (((q[j] >> 4) | h1) - 16) * d;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotScalar(int n, byte* w, byte* x)
    {
        float sum = 0;
        for (int b = 0; b < n / 32; b++, w += BlockBytes, x += XBytes)
        {
            uint qh = *(uint*)(w + 2);
            byte* q = w + 6;
            sbyte* qx = (sbyte*)(x + 2);
            int isum = 0;
            for (int j = 0; j < 16; j++)
            {
                int h0 = (int)((qh >> j) << 4) & 0x10, h1 = (int)(qh >> (j + 12)) & 0x10;
                isum += (((q[j] & 0x0F) | h0) - 16) * qx[j] + (((q[j] >> 4) | h1) - 16) * qx[j + 16];
            }
            sum += Fp16.ToFloat(*(ushort*)w) * Fp16.ToFloat(*(ushort*)x) * isum;
        }
        return sum;
    }

    /// <summary>Codes 0..31 (nibble | fifth bit), kept unsigned; the −16 is taken off as 16·(pair sums of x).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotAvx2(int n, byte* w, byte* x)
    {
        float* f16 = Fp16.Table;
        Vector256<float> acc = Vector256<float>.Zero;
        Vector256<byte> sixteen = Vector256.Create((byte)16);
        for (int b = 0; b < n / 32; b++, w += BlockBytes, x += XBytes)
        {
            Vector256<byte> q = QuantSimd.Nibbles32(w + 6) | (QuantSimd.BytesFromBits32(*(uint*)(w + 2)) & sixteen);
            Vector256<sbyte> y = Vector256.Load((sbyte*)(x + 2));
            Vector256<short> p = Avx2.MultiplyAddAdjacent(q, y) - Avx2.MultiplyAddAdjacent(sixteen, y);
            Vector256<int> p32 = Avx2.MultiplyAddAdjacent(p, Vector256.Create((short)1));
            acc = Fma.MultiplyAdd(Vector256.Create(f16[*(ushort*)w] * f16[*(ushort*)x]), Avx.ConvertToVector256Single(p32), acc);
        }
        return QuantSimd.HorizontalSum(acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotAvx512(int n, byte* w, byte* x)
    {
        float* f16 = Fp16.Table;
        int nb = n / 32;
        Vector512<float> acc = Vector512<float>.Zero;
        Vector512<byte> sixteen = Vector512.Create((byte)16);
        int b = 0;
        for (; b + 2 <= nb; b += 2, w += 2 * BlockBytes, x += 2 * XBytes)
        {
            Vector512<byte> high = QuantSimd.Combine(QuantSimd.BytesFromBits32(*(uint*)(w + 2)), QuantSimd.BytesFromBits32(*(uint*)(w + BlockBytes + 2)));
            Vector512<byte> q = QuantSimd.Nibbles2x32(w + 6, w + BlockBytes + 6) | (high & sixteen);
            Vector512<sbyte> y = QuantSimd.Load2x32((sbyte*)(x + 2), (sbyte*)(x + XBytes + 2));
            Vector512<short> p = Avx512BW.MultiplyAddAdjacent(q, y) - Avx512BW.MultiplyAddAdjacent(sixteen, y);
            Vector512<int> p32 = Avx512BW.MultiplyAddAdjacent(p, Vector512.Create((short)1));
            Vector512<float> d = QuantSimd.Splat2(f16[*(ushort*)w] * f16[*(ushort*)x],
                                                  f16[*(ushort*)(w + BlockBytes)] * f16[*(ushort*)(x + XBytes)]);
            acc = Avx512F.FusedMultiplyAdd(d, Avx512F.ConvertToVector512Single(p32), acc);
        }
        float sum = QuantSimd.HorizontalSum(acc);
        return b < nb ? sum + VecDotAvx2(32, w, x) : sum;
    }
}

/// <summary>
/// Q5_1 weights · Q8_1 activations. Block (24 bytes): <c>d, m: f16, qh: u32, qs[16]</c>; y = q·d + m with
/// q ∈ [0, 31]. Dot product per block (<c>ggml_vec_dot_q5_1_q8_1</c>): d_w·d_x·Σ q·x_q + m·s_x.
/// </summary>
internal static unsafe class Q5_1Kernels
{
    public const int BlockBytes = 24;
    private const int XBytes = ActivationQuantizers.Q8_1BlockBytes;

    public static QuantKernels Table => new()
    {
        Type = TensorType.Q5_1, DotType = TensorType.Q8_1, Dequantize = &Dequantize,
        VecDot = QuantSimd.UseAvx2 ? &VecDotAvx2 : &VecDotScalar,
    };

    public static QuantKernels ScalarTable => new()
    {
        Type = TensorType.Q5_1, DotType = TensorType.Q8_1, Dequantize = &Dequantize, VecDot = &VecDotScalar,
    };

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dequantize(byte* src, float* dst, int n)
    {
        for (int b = 0; b < n / 32; b++, src += BlockBytes, dst += 32)
        {
            float d = Fp16.ToFloat(*(ushort*)src), m = Fp16.ToFloat(*(ushort*)(src + 2));
            uint qh = *(uint*)(src + 4);
            byte* q = src + 8;
            for (int j = 0; j < 16; j++)
            {
                int h0 = (int)((qh >> j) << 4) & 0x10, h1 = (int)(qh >> (j + 12)) & 0x10;
                dst[j] = ((q[j] & 0x0F) | h0) * d + m;
                dst[j + 16] = ((q[j] >> 4) | h1) * d + m;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotScalar(int n, byte* w, byte* x)
    {
        float sum = 0;
        for (int b = 0; b < n / 32; b++, w += BlockBytes, x += XBytes)
        {
            uint qh = *(uint*)(w + 4);
            byte* q = w + 8;
            sbyte* qx = (sbyte*)(x + 4);
            int isum = 0;
            for (int j = 0; j < 16; j++)
            {
                int h0 = (int)((qh >> j) << 4) & 0x10, h1 = (int)(qh >> (j + 12)) & 0x10;
                isum += ((q[j] & 0x0F) | h0) * qx[j] + ((q[j] >> 4) | h1) * qx[j + 16];
            }
            sum += Fp16.ToFloat(*(ushort*)w) * Fp16.ToFloat(*(ushort*)x) * isum
                 + Fp16.ToFloat(*(ushort*)(w + 2)) * Fp16.ToFloat(*(ushort*)(x + 2));
        }
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotAvx2(int n, byte* w, byte* x)
    {
        float* f16 = Fp16.Table;
        Vector256<float> acc = Vector256<float>.Zero;
        float summs = 0;
        Vector256<byte> sixteen = Vector256.Create((byte)16);
        for (int b = 0; b < n / 32; b++, w += BlockBytes, x += XBytes)
        {
            Vector256<byte> q = QuantSimd.Nibbles32(w + 8) | (QuantSimd.BytesFromBits32(*(uint*)(w + 4)) & sixteen);
            Vector256<int> p = QuantSimd.DotU8x4(q, Vector256.Load((sbyte*)(x + 4)));
            acc = Fma.MultiplyAdd(Vector256.Create(f16[*(ushort*)w] * f16[*(ushort*)x]), Avx.ConvertToVector256Single(p), acc);
            summs += f16[*(ushort*)(w + 2)] * f16[*(ushort*)(x + 2)];
        }
        return QuantSimd.HorizontalSum(acc) + summs;
    }
}
