using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using LlavaNative.Kernels.Tensors;

namespace LlavaNative.Kernels.Cpu.Quant;

/// <summary>
/// Q3_K weights · Q8_K activations. Super-block (110 bytes): <c>hmask[32], qs[64], scales[12] (sixteen 6-bit
/// scales, bias 32), d: f16</c>. Element (half h, shift s, l): q = ((qs[32h+l] &gt;&gt; 2s) &amp; 3) − 4 unless bit
/// 4h+s of hmask[l] is set; y = d·(sc − 32)·q. Dot product (<c>ggml_vec_dot_q3_K_q8_K</c>): d·d_x·Σ sc_g Σ q·x.
/// </summary>
internal static unsafe class Q3_KKernels
{
    public const int BlockBytes = 110;
    private const int XBytes = ActivationQuantizers.Q8_KBlockBytes;

    public static QuantKernels Table => new()
    {
        Type = TensorType.Q3_K, DotType = TensorType.Q8_K, Dequantize = &Dequantize,
        VecDot = QuantSimd.UseAvx2 ? &VecDotAvx2 : &VecDotScalar,
    };

    public static QuantKernels ScalarTable => new()
    {
        Type = TensorType.Q3_K, DotType = TensorType.Q8_K, Dequantize = &Dequantize, VecDot = &VecDotScalar,
    };

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dequantize(byte* src, float* y, int n)
    {
        uint* aux = stackalloc uint[4];
        sbyte* scales = (sbyte*)aux;
        for (int b = 0; b < n / 256; b++, src += BlockBytes)
        {
            float dAll = Fp16.ToFloat(*(ushort*)(src + 108));
            byte* hm = src;
            byte* q = src + 32;
            KQuantScales.UnpackQ3K(src + 96, aux);
            int g = 0, m = 1;
            for (int half = 0; half < 2; half++, q += 32)
                for (int shift = 0; shift < 8; shift += 2, m <<= 1)
                {
                    float dl = dAll * (scales[g++] - 32);
                    for (int l = 0; l < 16; l++) *y++ = dl * (((q[l] >> shift) & 3) - ((hm[l] & m) != 0 ? 0 : 4));
                    dl = dAll * (scales[g++] - 32);
                    for (int l = 0; l < 16; l++) *y++ = dl * (((q[l + 16] >> shift) & 3) - ((hm[l + 16] & m) != 0 ? 0 : 4));
                }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotScalar(int n, byte* w, byte* x)
    {
        uint* aux = stackalloc uint[4];
        sbyte* scales = (sbyte*)aux;
        float sum = 0;
        for (int b = 0; b < n / 256; b++, w += BlockBytes, x += XBytes)
        {
            byte* hm = w;
            byte* q = w + 32;
            sbyte* y = (sbyte*)(x + 4);
            KQuantScales.UnpackQ3K(w + 96, aux);
            int isum = 0, g = 0, m = 1;
            for (int half = 0; half < 2; half++, q += 32)
                for (int shift = 0; shift < 8; shift += 2, m <<= 1, y += 32)
                {
                    int s0 = 0, s1 = 0;
                    for (int l = 0; l < 16; l++)
                    {
                        s0 += y[l] * (((q[l] >> shift) & 3) - ((hm[l] & m) != 0 ? 0 : 4));
                        s1 += y[l + 16] * (((q[l + 16] >> shift) & 3) - ((hm[l + 16] & m) != 0 ? 0 : 4));
                    }
                    isum += (scales[g] - 32) * s0 + (scales[g + 1] - 32) * s1;
                    g += 2;
                }
            sum += Fp16.ToFloat(*(ushort*)(w + 108)) * *(float*)x * isum;
        }
        return sum;
    }

    /// <summary>
    /// Codes made unsigned: q + 4 = (2 bits) | (hmask bit &lt;&lt; 2) ∈ [0, 7] for <c>vpmaddubsw</c>; the 4·Σx
    /// offset comes off per 16-group as 4·Σ sc_g·bsum_g.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotAvx2(int n, byte* w, byte* x)
    {
        float* f16 = Fp16.Table;
        Vector256<float> acc = Vector256<float>.Zero;
        Vector256<byte> m3 = Vector256.Create((byte)3), one = Vector256.Create((byte)1);
        for (int b = 0; b < n / 256; b++, w += BlockBytes, x += XBytes)
        {
            Vector256<short> scales = Avx2.ConvertToVector256Int16(KQuantScales.UnpackQ3K(w + 96)) - Vector256.Create((short)32);
            Vector256<int> sumi = Vector256<int>.Zero - (Avx2.MultiplyAddAdjacent(Vector256.Load((short*)(x + 260)), scales) << 2);
            Vector256<byte> high = Vector256.Load(w);
            byte* q = w + 32;
            sbyte* y = (sbyte*)(x + 4);
            int g = 0, bit = 0;
            for (int half = 0; half < 2; half++, q += 32)
            {
                Vector256<byte> bits = Vector256.Load(q);
                for (int shift = 0; shift < 8; shift += 2, y += 32, g += 2, bit++)
                {
                    Vector256<byte> hb = (((high.AsUInt16() >> bit).AsByte() & one).AsUInt16() << 2).AsByte();
                    Vector256<byte> q3 = ((bits.AsUInt16() >> shift).AsByte() & m3) | hb;
                    Vector256<short> p = Avx2.MultiplyAddAdjacent(q3, Vector256.Load(y));
                    Vector256<short> s = Vector256.Create(Vector128.Create(scales.GetElement(g)), Vector128.Create(scales.GetElement(g + 1)));
                    sumi += Avx2.MultiplyAddAdjacent(p, s);
                }
            }
            acc = Fma.MultiplyAdd(Vector256.Create(f16[*(ushort*)(w + 108)] * *(float*)x), Avx.ConvertToVector256Single(sumi), acc);
        }
        return QuantSimd.HorizontalSum(acc);
    }
}
