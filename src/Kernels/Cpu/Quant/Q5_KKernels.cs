using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using LlavaNative.Kernels.Tensors;

namespace LlavaNative.Kernels.Cpu.Quant;

/// <summary>
/// Q5_K weights · Q8_K activations. Super-block (176 bytes): <c>d, dmin: f16, scales[12], qh[32], qs[128]</c>;
/// as Q4_K with a fifth bit: element l of 64-chunk c gets +16 when bit 2c (low nibble) or 2c+1 (high
/// nibble) of qh[l] is set. Dot product as Q4_K (<c>ggml_vec_dot_q5_K_q8_K</c>).
/// </summary>
internal static unsafe class Q5_KKernels
{
    public const int BlockBytes = 176;
    private const int XBytes = ActivationQuantizers.Q8_KBlockBytes;

    public static QuantKernels Table => new()
    {
        Type = TensorType.Q5_K, DotType = TensorType.Q8_K, Dequantize = &Dequantize,
        VecDot = QuantSimd.UseAvx512 ? &VecDotAvx512 : QuantSimd.UseAvx2 ? &VecDotAvx2 : &VecDotScalar,
        MatMulTile = QuantSimd.UseAvx512 ? &KQuantTileKernels.TileQ5_KAvx512 : null, TileRows = 2, TileTokens = 4,
    };

    public static QuantKernels ScalarTable => new()
    {
        Type = TensorType.Q5_K, DotType = TensorType.Q8_K, Dequantize = &Dequantize, VecDot = &VecDotScalar,
    };

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dequantize(byte* src, float* y, int n)
    {
        for (int b = 0; b < n / 256; b++, src += BlockBytes)
        {
            float d = Fp16.ToFloat(*(ushort*)src), min = Fp16.ToFloat(*(ushort*)(src + 2));
            byte* scales = src + 4;
            byte* qh = src + 16;
            byte* ql = src + 48;
            int u1 = 1, u2 = 2;
            for (int j = 0, s = 0; j < 256; j += 64, ql += 32, s += 2, u1 <<= 2, u2 <<= 2)
            {
                KQuantQuantizer.ScaleMinK4(s, scales, out byte sc, out byte m);
                float d1 = d * sc, m1 = min * m;
                KQuantQuantizer.ScaleMinK4(s + 1, scales, out sc, out m);
                float d2 = d * sc, m2 = min * m;
                for (int l = 0; l < 32; l++) *y++ = d1 * ((ql[l] & 0xF) + ((qh[l] & u1) != 0 ? 16 : 0)) - m1;
                for (int l = 0; l < 32; l++) *y++ = d2 * ((ql[l] >> 4) + ((qh[l] & u2) != 0 ? 16 : 0)) - m2;
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
            byte* qh = w + 16;
            byte* q = w + 48;
            sbyte* y = (sbyte*)(x + 4);
            short* bsums = (short*)(x + 260);
            int isum = 0;
            for (int c = 0; c < 4; c++, q += 32, y += 64)
            {
                int lo = 0, hi = 0;
                for (int l = 0; l < 32; l++)
                {
                    lo += ((q[l] & 0xF) | (((qh[l] >> (2 * c)) & 1) << 4)) * y[l];
                    hi += ((q[l] >> 4) | (((qh[l] >> (2 * c + 1)) & 1) << 4)) * y[l + 32];
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

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotAvx2(int n, byte* w, byte* x)
    {
        float* f16 = Fp16.Table;
        Vector256<float> acc = Vector256<float>.Zero;
        float accMin = 0;
        Vector256<byte> m4 = Vector256.Create((byte)0x0F), one = Vector256.Create((byte)1);
        for (int b = 0; b < n / 256; b++, w += BlockBytes, x += XBytes)
        {
            KQuantScales.UnpackQ4K(w + 4, out ulong scales, out ulong mins);
            float dx = *(float*)x;
            Vector256<byte> high = Vector256.Load(w + 16);
            byte* q = w + 48;
            sbyte* y = (sbyte*)(x + 4);
            short* bsums = (short*)(x + 260);
            Vector256<int> sumi = Vector256<int>.Zero;
            for (int c = 0; c < 4; c++, q += 32, y += 64)
            {
                Vector256<byte> bits = Vector256.Load(q);
                Vector256<ushort> hl = ((high.AsUInt16() >> (2 * c)).AsByte() & one).AsUInt16() << 4;
                Vector256<ushort> hh = ((high.AsUInt16() >> (2 * c + 1)).AsByte() & one).AsUInt16() << 4;
                Vector256<short> pl = Avx2.MultiplyAddAdjacent((bits & m4) | hl.AsByte(), Vector256.Load(y));
                Vector256<short> ph = Avx2.MultiplyAddAdjacent(((bits.AsUInt16() >> 4).AsByte() & m4) | hh.AsByte(), Vector256.Load(y + 32));
                sumi += Avx2.MultiplyAddAdjacent(pl, Vector256.Create((short)(byte)(scales >> (16 * c))));
                sumi += Avx2.MultiplyAddAdjacent(ph, Vector256.Create((short)(byte)(scales >> (16 * c + 8))));
            }
            int msum = Q4_KKernels.MinCorrection(mins, bsums);
            acc = Fma.MultiplyAdd(Vector256.Create(dx * f16[*(ushort*)w]), Avx.ConvertToVector256Single(sumi), acc);
            accMin += dx * f16[*(ushort*)(w + 2)] * msum;
        }
        return QuantSimd.HorizontalSum(acc) - accMin;
    }

    /// <summary>128 elements per step, as <see cref="Q4_KKernels.VecDotAvx512"/> plus the fifth bits.</summary>
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
            byte* q = w + 48;
            sbyte* y = (sbyte*)(x + 4);
            Vector512<int> sumi = Vector512<int>.Zero;
            for (int half = 0; half < 2; half++, q += 64, y += 128)
            {
                Vector512<byte> bits = Vector512.Load(q);
                Vector512<byte> lo = (bits & m4) | KQuantTileKernels.FifthBits(w + 16, 4 * half, 4 * half + 2);
                Vector512<byte> hi = ((bits.AsUInt16() >> 4).AsByte() & m4) | KQuantTileKernels.FifthBits(w + 16, 4 * half + 1, 4 * half + 3);
                Vector512<short> pl = Avx512BW.MultiplyAddAdjacent(lo, QuantSimd.Load2x32(y, y + 64));
                Vector512<short> ph = Avx512BW.MultiplyAddAdjacent(hi, QuantSimd.Load2x32(y + 32, y + 96));
                int s = 4 * half;
                Vector512<short> scaleLow = QuantSimd.Combine(Vector256.Create((short)(byte)(scales >> (8 * s))), Vector256.Create((short)(byte)(scales >> (8 * s + 16))));
                Vector512<short> scaleHigh = QuantSimd.Combine(Vector256.Create((short)(byte)(scales >> (8 * s + 8))), Vector256.Create((short)(byte)(scales >> (8 * s + 24))));
                sumi += Avx512BW.MultiplyAddAdjacent(pl, scaleLow) + Avx512BW.MultiplyAddAdjacent(ph, scaleHigh);
            }
            acc = Avx512F.FusedMultiplyAdd(Vector512.Create(dx * f16[*(ushort*)w]), Avx512F.ConvertToVector512Single(sumi), acc);
            accMin += dx * f16[*(ushort*)(w + 2)] * Q4_KKernels.MinCorrection(mins, (short*)(x + 260));
        }
        return QuantSimd.HorizontalSum(acc) - accMin;
    }
}
