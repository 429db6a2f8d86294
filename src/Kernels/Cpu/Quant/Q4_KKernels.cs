using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using LlavaNative.Kernels.Tensors;

namespace LlavaNative.Kernels.Cpu.Quant;

/// <summary>
/// Q4_K weights · Q8_K activations. Super-block (144 bytes, 256 elements): <c>d, dmin: f16, scales[12]
/// (eight 6-bit scales + eight 6-bit mins), qs[128]</c>; 64-element chunk c uses qs[32c..32c+31], low nibbles
/// for sub-block 2c, high nibbles for 2c+1; y = d·sc·q − dmin·m.
/// Dot product per super-block (<c>ggml_vec_dot_q4_K_q8_K</c>): d_x·d·Σ sc_j Σ q·x − d_x·dmin·Σ m_j·bsum_j,
/// both inner sums exact integers.
/// </summary>
internal static unsafe class Q4_KKernels
{
    public const int BlockBytes = 144;
    private const int XBytes = ActivationQuantizers.Q8_KBlockBytes;

    public static QuantKernels Table => new()
    {
        Type = TensorType.Q4_K, DotType = TensorType.Q8_K, Dequantize = &Dequantize,
        VecDot = QuantSimd.UseAvx512 ? &VecDotAvx512 : QuantSimd.UseAvx2 ? &VecDotAvx2 : &VecDotScalar,
        MatMulTile = QuantSimd.UseAvx512 ? &KQuantTileKernels.TileQ4_KAvx512 : null, TileRows = 2, TileTokens = 4,
    };

    public static QuantKernels ScalarTable => new()
    {
        Type = TensorType.Q4_K, DotType = TensorType.Q8_K, Dequantize = &Dequantize, VecDot = &VecDotScalar,
    };

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dequantize(byte* src, float* y, int n)
    {
        for (int b = 0; b < n / 256; b++, src += BlockBytes)
        {
            float d = Fp16.ToFloat(*(ushort*)src), min = Fp16.ToFloat(*(ushort*)(src + 2));
            byte* scales = src + 4;
            byte* q = src + 16;
            for (int j = 0, s = 0; j < 256; j += 64, q += 32, s += 2)
            {
                KQuantQuantizer.ScaleMinK4(s, scales, out byte sc, out byte m);
                float d1 = d * sc, m1 = min * m;
                KQuantQuantizer.ScaleMinK4(s + 1, scales, out sc, out m);
                float d2 = d * sc, m2 = min * m;
                for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] & 0xF) - m1;
                for (int l = 0; l < 32; l++) *y++ = d2 * (q[l] >> 4) - m2;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotScalar(int n, byte* w, byte* x)
    {
        uint* unpacked = stackalloc uint[4];
        byte* scales = (byte*)unpacked;
        float sum = 0;
        for (int b = 0; b < n / 256; b++, w += BlockBytes, x += XBytes)
        {
            KQuantScales.UnpackQ4K(w + 4, unpacked);
            byte* q = w + 16;
            sbyte* y = (sbyte*)(x + 4);
            short* bsums = (short*)(x + 260);
            int isum = 0;
            for (int c = 0; c < 4; c++, q += 32, y += 64)
            {
                int lo = 0, hi = 0;
                for (int l = 0; l < 32; l++)
                {
                    lo += (q[l] & 0xF) * y[l];
                    hi += (q[l] >> 4) * y[l + 32];
                }
                isum += scales[2 * c] * lo + scales[2 * c + 1] * hi;
            }
            int msum = 0;
            for (int j = 0; j < 16; j++) msum += bsums[j] * scales[8 + j / 2];
            float dx = *(float*)x;
            sum += dx * Fp16.ToFloat(*(ushort*)w) * isum - dx * Fp16.ToFloat(*(ushort*)(w + 2)) * msum;
        }
        return sum;
    }

    /// <summary>Σ mᵢ · (bsum₂ᵢ + bsum₂ᵢ₊₁): the min correction, one madd over the 16 bsums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int MinCorrection(ulong packedMins, short* bsums)
    {
        Vector256<short> bs = Vector256.Load(bsums);
        Vector256<short> mins = Avx2.ConvertToVector256Int16(Vector128.CreateScalar(packedMins).AsByte()).AsInt16();
        // mins are per 32 elements = per two bsums: interleave each min twice.
        Vector256<short> mins2 = Avx2.Shuffle(Vector256.Create(mins.GetLower(), mins.GetLower()).AsByte(),
            Vector256.Create((byte)0, 1, 0, 1, 2, 3, 2, 3, 4, 5, 4, 5, 6, 7, 6, 7, 8, 9, 8, 9, 10, 11, 10, 11, 12, 13, 12, 13, 14, 15, 14, 15)).AsInt16();
        return Vector256.Sum(Avx2.MultiplyAddAdjacent(bs, mins2));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotAvx2(int n, byte* w, byte* x)
    {
        float* f16 = Fp16.Table;
        Vector256<float> acc = Vector256<float>.Zero;
        float accMin = 0;
        Vector256<byte> m4 = Vector256.Create((byte)0x0F);
        for (int b = 0; b < n / 256; b++, w += BlockBytes, x += XBytes)
        {
            KQuantScales.UnpackQ4K(w + 4, out ulong scales, out ulong mins);
            float dx = *(float*)x;
            byte* q = w + 16;
            sbyte* y = (sbyte*)(x + 4);
            Vector256<int> sumi = Vector256<int>.Zero;
            for (int c = 0; c < 4; c++, q += 32, y += 64)
            {
                Vector256<byte> bits = Vector256.Load(q);
                Vector256<short> pl = Avx2.MultiplyAddAdjacent(bits & m4, Vector256.Load(y));
                Vector256<short> ph = Avx2.MultiplyAddAdjacent((bits.AsUInt16() >> 4).AsByte() & m4, Vector256.Load(y + 32));
                sumi += Avx2.MultiplyAddAdjacent(pl, Vector256.Create((short)(byte)(scales >> (16 * c))));
                sumi += Avx2.MultiplyAddAdjacent(ph, Vector256.Create((short)(byte)(scales >> (16 * c + 8))));
            }
            acc = Fma.MultiplyAdd(Vector256.Create(dx * f16[*(ushort*)w]), Avx.ConvertToVector256Single(sumi), acc);
            accMin += dx * f16[*(ushort*)(w + 2)] * MinCorrection(mins, (short*)(x + 260));
        }
        return QuantSimd.HorizontalSum(acc) - accMin;
    }

    /// <summary>
    /// 128 elements per step: one 512-bit load holds qs for two 64-element chunks; its low nibbles are
    /// sub-blocks (0, 2) of the step and its high nibbles (1, 3), so the activations are gathered to match.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotAvx512(int n, byte* w, byte* x)
    {
        float* f16 = Fp16.Table;
        Vector512<float> acc = Vector512<float>.Zero;
        float accMin = 0;
        Vector512<byte> m4 = Vector512.Create((byte)0x0F);
        for (int b = 0; b < n / 256; b++, w += BlockBytes, x += XBytes)
        {
            KQuantScales.UnpackQ4K(w + 4, out ulong scales, out ulong mins);
            float dx = *(float*)x;
            byte* q = w + 16;
            sbyte* y = (sbyte*)(x + 4);
            Vector512<int> sumi = Vector512<int>.Zero;
            for (int half = 0; half < 2; half++, q += 64, y += 128)
            {
                Vector512<byte> bits = Vector512.Load(q);
                Vector512<sbyte> yLow = QuantSimd.Load2x32(y, y + 64);
                Vector512<sbyte> yHigh = QuantSimd.Load2x32(y + 32, y + 96);
                Vector512<short> pl = Avx512BW.MultiplyAddAdjacent(bits & m4, yLow);
                Vector512<short> ph = Avx512BW.MultiplyAddAdjacent((bits.AsUInt16() >> 4).AsByte() & m4, yHigh);
                int s = 4 * half;
                Vector512<short> scaleLow = QuantSimd.Combine(Vector256.Create((short)(byte)(scales >> (8 * s))), Vector256.Create((short)(byte)(scales >> (8 * s + 16))));
                Vector512<short> scaleHigh = QuantSimd.Combine(Vector256.Create((short)(byte)(scales >> (8 * s + 8))), Vector256.Create((short)(byte)(scales >> (8 * s + 24))));
                sumi += Avx512BW.MultiplyAddAdjacent(pl, scaleLow);
                sumi += Avx512BW.MultiplyAddAdjacent(ph, scaleHigh);
            }
            acc = Avx512F.FusedMultiplyAdd(Vector512.Create(dx * f16[*(ushort*)w]), Avx512F.ConvertToVector512Single(sumi), acc);
            accMin += dx * f16[*(ushort*)(w + 2)] * MinCorrection(mins, (short*)(x + 260));
        }
        return QuantSimd.HorizontalSum(acc) - accMin;
    }
}
