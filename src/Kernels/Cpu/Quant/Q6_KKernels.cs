using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using LlavaNative.Kernels.Tensors;

namespace LlavaNative.Kernels.Cpu.Quant;

/// <summary>
/// Q6_K weights · Q8_K activations. Super-block (210 bytes, 256 elements): <c>ql[128], qh[64], scales: i8[16],
/// d: f16</c> (d last). Per 128-element half, element l (&lt; 32) of each quarter: q = low/high nibble of
/// ql[l] or ql[l+32] | two bits of qh[l] &lt;&lt; 4, minus 32; y = d·sc[16-group]·q.
/// Dot product (<c>ggml_vec_dot_q6_K_q8_K</c>): d·d_x·(Σ sc_g Σ q_u·x − 32·Σ sc_g·bsum_g) with q_u = q + 32 ∈ [0, 63].
/// </summary>
internal static unsafe class Q6_KKernels
{
    public const int BlockBytes = 210;
    private const int XBytes = ActivationQuantizers.Q8_KBlockBytes;

    public static QuantKernels Table => new()
    {
        Type = TensorType.Q6_K, DotType = TensorType.Q8_K, Dequantize = &Dequantize,
        VecDot = QuantSimd.UseAvx512 ? &VecDotAvx512 : QuantSimd.UseAvx2 ? &VecDotAvx2 : &VecDotScalar,
        MatMulTile = QuantSimd.UseAvx512 ? &KQuantTileKernels.TileQ6_KAvx512 : null, TileRows = 2, TileTokens = 4,
    };

    public static QuantKernels ScalarTable => new()
    {
        Type = TensorType.Q6_K, DotType = TensorType.Q8_K, Dequantize = &Dequantize, VecDot = &VecDotScalar,
    };

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dequantize(byte* src, float* y, int n)
    {
        for (int b = 0; b < n / 256; b++, src += BlockBytes)
        {
            float d = Fp16.ToFloat(*(ushort*)(src + 208));
            byte* ql = src;
            byte* qh = src + 128;
            sbyte* sc = (sbyte*)(src + 192);
            for (int half = 0; half < 2; half++, y += 128, ql += 64, qh += 32, sc += 8)
                for (int l = 0; l < 32; l++)
                {
                    int g = l / 16;
                    int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                    int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                    int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                    y[l] = d * sc[g] * q1;
                    y[l + 32] = d * sc[g + 2] * q2;
                    y[l + 64] = d * sc[g + 4] * q3;
                    y[l + 96] = d * sc[g + 6] * q4;
                }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotScalar(int n, byte* w, byte* x)
    {
        float sum = 0;
        for (int b = 0; b < n / 256; b++, w += BlockBytes, x += XBytes)
        {
            byte* ql = w;
            byte* qh = w + 128;
            sbyte* sc = (sbyte*)(w + 192);
            sbyte* y = (sbyte*)(x + 4);
            int isum = 0;
            for (int half = 0; half < 2; half++, ql += 64, qh += 32, sc += 8, y += 128)
                for (int g = 0; g < 2; g++)
                {
                    int s1 = 0, s2 = 0, s3 = 0, s4 = 0;
                    for (int l = 16 * g; l < 16 * g + 16; l++)
                    {
                        s1 += (((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32) * y[l];
                        s2 += (((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32) * y[l + 32];
                        s3 += (((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32) * y[l + 64];
                        s4 += (((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32) * y[l + 96];
                    }
                    isum += sc[g] * s1 + sc[g + 2] * s2 + sc[g + 4] * s3 + sc[g + 6] * s4;
                }
            sum += Fp16.ToFloat(*(ushort*)(w + 208)) * *(float*)x * isum;
        }
        return sum;
    }

    /// <summary>32·Σ sc_g·bsum_g, the offset of the unsigned codes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> OffsetCorrection(byte* w, byte* x)
    {
        Vector256<short> sc16 = Avx2.ConvertToVector256Int16(Vector128.Load((sbyte*)(w + 192)));
        return Avx2.MultiplyAddAdjacent(Vector256.Load((short*)(x + 260)), sc16) << 5;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotAvx2(int n, byte* w, byte* x)
    {
        float* f16 = Fp16.Table;
        Vector256<float> acc = Vector256<float>.Zero;
        Vector256<byte> m15 = Vector256.Create((byte)15), m3 = Vector256.Create((byte)3);
        for (int b = 0; b < n / 256; b++, w += BlockBytes, x += XBytes)
        {
            byte* ql = w;
            byte* qh = w + 128;
            sbyte* sc = (sbyte*)(w + 192);
            sbyte* y = (sbyte*)(x + 4);
            Vector256<int> sumi = Vector256<int>.Zero - OffsetCorrection(w, x);
            for (int half = 0; half < 2; half++, ql += 64, qh += 32, sc += 8, y += 128)
            {
                Vector256<byte> bits1 = Vector256.Load(ql), bits2 = Vector256.Load(ql + 32), high = Vector256.Load(qh);
                Vector256<byte> q0 = (bits1 & m15) | ((high & m3).AsUInt16() << 4).AsByte();
                Vector256<byte> q1 = (bits2 & m15) | (((high.AsUInt16() >> 2).AsByte() & m3).AsUInt16() << 4).AsByte();
                Vector256<byte> q2 = ((bits1.AsUInt16() >> 4).AsByte() & m15) | (high & Vector256.Create((byte)0x30));
                Vector256<byte> q3 = ((bits2.AsUInt16() >> 4).AsByte() & m15) | ((high & Vector256.Create((byte)0xC0)).AsUInt16() >> 2).AsByte();
                sumi += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q0, Vector256.Load(y)), Scales(sc[0], sc[1]));
                sumi += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q1, Vector256.Load(y + 32)), Scales(sc[2], sc[3]));
                sumi += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q2, Vector256.Load(y + 64)), Scales(sc[4], sc[5]));
                sumi += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q3, Vector256.Load(y + 96)), Scales(sc[6], sc[7]));
            }
            acc = Fma.MultiplyAdd(Vector256.Create(f16[*(ushort*)(w + 208)] * *(float*)x), Avx.ConvertToVector256Single(sumi), acc);
        }
        return QuantSimd.HorizontalSum(acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> Scales(sbyte lo, sbyte hi) => Vector256.Create(Vector128.Create((short)lo), Vector128.Create((short)hi));

    /// <summary>
    /// One 128-element half per step: the four quarters pair up into two 512-bit vectors
    /// (quarters 0|1 from the low nibbles of ql[0..63], quarters 2|3 from the high nibbles).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotAvx512(int n, byte* w, byte* x)
    {
        float* f16 = Fp16.Table;
        Vector256<float> acc = Vector256<float>.Zero;
        Vector512<byte> m15 = Vector512.Create((byte)15);
        for (int b = 0; b < n / 256; b++, w += BlockBytes, x += XBytes)
        {
            // Decode streams the weights from DRAM: fetching ~10 blocks ahead took one core from 6.5 to 8.7 GB/s.
            for (int line = 0; line < 4; line++) Sse.Prefetch0(w + 2048 + line * 64);
            byte* ql = w;
            byte* qh = w + 128;
            sbyte* sc = (sbyte*)(w + 192);
            sbyte* y = (sbyte*)(x + 4);
            Vector512<int> sumi = Vector512<int>.Zero;
            for (int half = 0; half < 2; half++, ql += 64, qh += 32, sc += 8, y += 128)
            {
                Vector512<byte> bits = Vector512.Load(ql);
                Vector256<byte> h = Vector256.Load(qh);
                // High bits for quarter k sit at bits 2k..2k+1 of qh[l]; move them to bits 4..5.
                Vector512<byte> high01 = QuantSimd.Combine((h.AsUInt16() << 4).AsByte(), (h.AsUInt16() << 2).AsByte()) & Vector512.Create((byte)0x30);
                Vector512<byte> high23 = QuantSimd.Combine(h, (h.AsUInt16() >> 2).AsByte()) & Vector512.Create((byte)0x30);
                Vector512<byte> q01 = (bits & m15) | high01;
                Vector512<byte> q23 = ((bits.AsUInt16() >> 4).AsByte() & m15) | high23;
                Vector512<short> s01 = QuantSimd.Combine(Scales(sc[0], sc[1]), Scales(sc[2], sc[3]));
                Vector512<short> s23 = QuantSimd.Combine(Scales(sc[4], sc[5]), Scales(sc[6], sc[7]));
                sumi += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q01, Vector512.Load(y)), s01);
                sumi += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q23, Vector512.Load(y + 64)), s23);
            }
            Vector256<int> folded = sumi.GetLower() + sumi.GetUpper() - OffsetCorrection(w, x);
            acc = Fma.MultiplyAdd(Vector256.Create(f16[*(ushort*)(w + 208)] * *(float*)x), Avx.ConvertToVector256Single(folded), acc);
        }
        return QuantSimd.HorizontalSum(acc);
    }
}
