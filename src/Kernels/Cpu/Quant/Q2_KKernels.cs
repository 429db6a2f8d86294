using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using LlavaNative.Kernels.Tensors;

namespace LlavaNative.Kernels.Cpu.Quant;

/// <summary>
/// Q2_K weights · Q8_K activations. Super-block (84 bytes): <c>scales[16] (low nibble: scale, high: min),
/// qs[64], d, dmin: f16</c>. Per 128-element half h and shift s ∈ {0,2,4,6}: 32 elements
/// (qs[32h + l] &gt;&gt; s) &amp; 3, two 16-element groups; y = d·sc·q − dmin·m.
/// Dot product (<c>ggml_vec_dot_q2_K_q8_K</c>): d_x·d·Σ sc_g Σ q·x − d_x·dmin·Σ m_g·bsum_g.
/// </summary>
internal static unsafe class Q2_KKernels
{
    public const int BlockBytes = 84;
    private const int XBytes = ActivationQuantizers.Q8_KBlockBytes;

    public static QuantKernels Table => new()
    {
        Type = TensorType.Q2_K, DotType = TensorType.Q8_K, Dequantize = &Dequantize,
        VecDot = QuantSimd.UseAvx2 ? &VecDotAvx2 : &VecDotScalar,
    };

    public static QuantKernels ScalarTable => new()
    {
        Type = TensorType.Q2_K, DotType = TensorType.Q8_K, Dequantize = &Dequantize, VecDot = &VecDotScalar,
    };

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dequantize(byte* src, float* y, int n)
    {
        for (int b = 0; b < n / 256; b++, src += BlockBytes)
        {
            float d = Fp16.ToFloat(*(ushort*)(src + 80)), min = Fp16.ToFloat(*(ushort*)(src + 82));
            byte* q = src + 16;
            int g = 0;
            for (int half = 0; half < 2; half++, q += 32)
                for (int shift = 0; shift < 8; shift += 2)
                {
                    byte sc = src[g++];
                    float dl = d * (sc & 0xF), ml = min * (sc >> 4);
                    for (int l = 0; l < 16; l++) *y++ = dl * ((q[l] >> shift) & 3) - ml;
                    sc = src[g++];
                    dl = d * (sc & 0xF); ml = min * (sc >> 4);
                    for (int l = 0; l < 16; l++) *y++ = dl * ((q[l + 16] >> shift) & 3) - ml;
                }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotScalar(int n, byte* w, byte* x)
    {
        float sum = 0;
        for (int b = 0; b < n / 256; b++, w += BlockBytes, x += XBytes)
        {
            byte* q = w + 16;
            sbyte* y = (sbyte*)(x + 4);
            short* bsums = (short*)(x + 260);
            int msum = 0;
            for (int j = 0; j < 16; j++) msum += bsums[j] * (w[j] >> 4);
            int isum = 0, g = 0;
            for (int half = 0; half < 2; half++, q += 32)
                for (int shift = 0; shift < 8; shift += 2, y += 32)
                {
                    int s0 = 0, s1 = 0;
                    for (int l = 0; l < 16; l++)
                    {
                        s0 += y[l] * ((q[l] >> shift) & 3);
                        s1 += y[l + 16] * ((q[l + 16] >> shift) & 3);
                    }
                    isum += (w[g] & 0xF) * s0 + (w[g + 1] & 0xF) * s1;
                    g += 2;
                }
            float dx = *(float*)x;
            sum += dx * Fp16.ToFloat(*(ushort*)(w + 80)) * isum - dx * Fp16.ToFloat(*(ushort*)(w + 82)) * msum;
        }
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotAvx2(int n, byte* w, byte* x)
    {
        float* f16 = Fp16.Table;
        Vector256<float> acc = Vector256<float>.Zero;
        float accMin = 0;
        Vector256<byte> m3 = Vector256.Create((byte)3);
        for (int b = 0; b < n / 256; b++, w += BlockBytes, x += XBytes)
        {
            byte* q = w + 16;
            sbyte* y = (sbyte*)(x + 4);
            Vector128<byte> sc = Vector128.Load(w);
            Vector256<short> scales = Avx2.ConvertToVector256Int16(sc & Vector128.Create((byte)0x0F)).AsInt16();
            Vector256<short> mins = Avx2.ConvertToVector256Int16((sc.AsUInt16() >> 4).AsByte() & Vector128.Create((byte)0x0F)).AsInt16();
            int msum = Vector256.Sum(Avx2.MultiplyAddAdjacent(Vector256.Load((short*)(x + 260)), mins));
            Vector256<int> sumi = Vector256<int>.Zero;
            int g = 0;
            for (int half = 0; half < 2; half++, q += 32)
            {
                Vector256<byte> bits = Vector256.Load(q);
                for (int shift = 0; shift < 8; shift += 2, y += 32, g += 2)
                {
                    Vector256<byte> q2 = (bits.AsUInt16() >> shift).AsByte() & m3;
                    Vector256<short> p = Avx2.MultiplyAddAdjacent(q2, Vector256.Load(y));
                    Vector256<short> s = Vector256.Create(Vector128.Create(scales.GetElement(g)), Vector128.Create(scales.GetElement(g + 1)));
                    sumi += Avx2.MultiplyAddAdjacent(p, s);
                }
            }
            float dx = *(float*)x;
            acc = Fma.MultiplyAdd(Vector256.Create(dx * f16[*(ushort*)(w + 80)]), Avx.ConvertToVector256Single(sumi), acc);
            accMin += dx * f16[*(ushort*)(w + 82)] * msum;
        }
        return QuantSimd.HorizontalSum(acc) - accMin;
    }
}
