using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using LlavaNative.Kernels.Tensors;

namespace LlavaNative.Kernels.Cpu.Quant;

/// <summary>
/// Q4_1 weights · Q8_1 activations. Block (20 bytes): <c>d, m: f16, qs[16]</c>; y = q·d + m with q ∈ [0, 15].
/// Dot product per block (<c>ggml_vec_dot_q4_1_q8_1</c>): d_w·d_x·Σ q·x_q + m·s_x, where the activation
/// block carries s = d_x·Σ x_q.
/// </summary>
internal static unsafe class Q4_1Kernels
{
    public const int BlockBytes = 20;
    private const int XBytes = ActivationQuantizers.Q8_1BlockBytes;

    public static QuantKernels Table => new()
    {
        Type = TensorType.Q4_1, DotType = TensorType.Q8_1, Dequantize = &Dequantize,
        VecDot = QuantSimd.UseAvx2 ? &VecDotAvx2 : &VecDotScalar,
    };

    public static QuantKernels ScalarTable => new()
    {
        Type = TensorType.Q4_1, DotType = TensorType.Q8_1, Dequantize = &Dequantize, VecDot = &VecDotScalar,
    };

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dequantize(byte* src, float* dst, int n)
    {
        for (int b = 0; b < n / 32; b++, src += BlockBytes, dst += 32)
        {
            float d = Fp16.ToFloat(*(ushort*)src), m = Fp16.ToFloat(*(ushort*)(src + 2));
            byte* q = src + 4;
            for (int j = 0; j < 16; j++)
            {
                dst[j] = (q[j] & 0x0F) * d + m;
                dst[j + 16] = (q[j] >> 4) * d + m;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotScalar(int n, byte* w, byte* x)
    {
        float sum = 0;
        for (int b = 0; b < n / 32; b++, w += BlockBytes, x += XBytes)
        {
            byte* qw = w + 4;
            sbyte* qx = (sbyte*)(x + 4);
            int isum = 0;
            for (int j = 0; j < 16; j++) isum += (qw[j] & 0x0F) * qx[j] + (qw[j] >> 4) * qx[j + 16];
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
        for (int b = 0; b < n / 32; b++, w += BlockBytes, x += XBytes)
        {
            Vector256<int> p = QuantSimd.DotU8x4(QuantSimd.Nibbles32(w + 4), Vector256.Load((sbyte*)(x + 4)));
            acc = Fma.MultiplyAdd(Vector256.Create(f16[*(ushort*)w] * f16[*(ushort*)x]), Avx.ConvertToVector256Single(p), acc);
            summs += f16[*(ushort*)(w + 2)] * f16[*(ushort*)(x + 2)];
        }
        return QuantSimd.HorizontalSum(acc) + summs;
    }
}
