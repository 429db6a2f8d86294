using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using LlavaNative.Kernels.Tensors;

namespace LlavaNative.Kernels.Cpu.Quant;

/// <summary>
/// Q8_0 weights · Q8_0 activations. Block (34 bytes, 32 elements): <c>d: f16, qs: i8[32]</c>, y = qs·d.
/// Dot product per block: Σ qs_w·qs_x in integers, times fp32(d_w)·fp32(d_x) (ggml's
/// <c>ggml_vec_dot_q8_0_q8_0</c>), accumulated in float.
/// </summary>
internal static unsafe class Q8_0Kernels
{
    public const int BlockBytes = 34;

    public static QuantKernels Table => new()
    {
        Type = TensorType.Q8_0, DotType = TensorType.Q8_0, Dequantize = &Dequantize,
        VecDot = QuantSimd.UseAvx512 ? &VecDotAvx512 : QuantSimd.UseAvx2 ? &VecDotAvx2 : &VecDotScalar,
        MatMulTile = QuantSimd.UseAvx512 ? &LegacyTileKernels.TileSignedAvx512<LegacyTileKernels.Q8_0Blocks> : QuantSimd.UseAvx2 ? &LegacyTileKernels.TileSignedAvx2<LegacyTileKernels.Q8_0Blocks> : null,
        TileRows = QuantSimd.UseAvx512 ? 4 : 2, TileTokens = 4,
    };

    public static QuantKernels ScalarTable => new()
    {
        Type = TensorType.Q8_0, DotType = TensorType.Q8_0, Dequantize = &Dequantize, VecDot = &VecDotScalar,
    };

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dequantize(byte* src, float* dst, int n)
    {
        for (int b = 0; b < n / 32; b++, src += BlockBytes, dst += 32)
        {
            float d = Fp16.ToFloat(*(ushort*)src);
            sbyte* q = (sbyte*)(src + 2);
            for (int j = 0; j < 32; j++) dst[j] = q[j] * d;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotScalar(int n, byte* w, byte* x)
    {
        float sum = 0;
        for (int b = 0; b < n / 32; b++, w += BlockBytes, x += ActivationQuantizers.Q8_0BlockBytes)
        {
            sbyte* qw = (sbyte*)(w + 2), qx = (sbyte*)(x + 2);
            int isum = 0;
            for (int j = 0; j < 32; j++) isum += qw[j] * qx[j];
            sum += isum * (Fp16.ToFloat(*(ushort*)w) * Fp16.ToFloat(*(ushort*)x));
        }
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotAvx2(int n, byte* w, byte* x)
    {
        float* f16 = Fp16.Table;
        int nb = n / 32;
        Vector256<float> acc0 = Vector256<float>.Zero, acc1 = Vector256<float>.Zero;
        int b = 0;
        for (; b + 2 <= nb; b += 2, w += 2 * BlockBytes, x += 2 * BlockBytes)
        {
            Vector256<int> p0 = QuantSimd.DotI8x4(Vector256.Load((sbyte*)(w + 2)), Vector256.Load((sbyte*)(x + 2)));
            Vector256<int> p1 = QuantSimd.DotI8x4(Vector256.Load((sbyte*)(w + BlockBytes + 2)), Vector256.Load((sbyte*)(x + BlockBytes + 2)));
            float d0 = f16[*(ushort*)w] * f16[*(ushort*)x];
            float d1 = f16[*(ushort*)(w + BlockBytes)] * f16[*(ushort*)(x + BlockBytes)];
            acc0 = Fma.MultiplyAdd(Vector256.Create(d0), Avx.ConvertToVector256Single(p0), acc0);
            acc1 = Fma.MultiplyAdd(Vector256.Create(d1), Avx.ConvertToVector256Single(p1), acc1);
        }
        if (b < nb)
        {
            Vector256<int> p0 = QuantSimd.DotI8x4(Vector256.Load((sbyte*)(w + 2)), Vector256.Load((sbyte*)(x + 2)));
            float d0 = f16[*(ushort*)w] * f16[*(ushort*)x];
            acc0 = Fma.MultiplyAdd(Vector256.Create(d0), Avx.ConvertToVector256Single(p0), acc0);
        }
        return QuantSimd.HorizontalSum(acc0 + acc1);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotAvx512(int n, byte* w, byte* x)
    {
        float* f16 = Fp16.Table;
        int nb = n / 32;
        Vector512<float> acc0 = Vector512<float>.Zero, acc1 = Vector512<float>.Zero;
        int b = 0;
        for (; b + 4 <= nb; b += 4, w += 4 * BlockBytes, x += 4 * BlockBytes)
        {
            Vector512<int> p0 = QuantSimd.DotI8x4(QuantSimd.Load2x32((sbyte*)(w + 2), (sbyte*)(w + BlockBytes + 2)),
                                                  QuantSimd.Load2x32((sbyte*)(x + 2), (sbyte*)(x + BlockBytes + 2)));
            Vector512<int> p1 = QuantSimd.DotI8x4(QuantSimd.Load2x32((sbyte*)(w + 2 * BlockBytes + 2), (sbyte*)(w + 3 * BlockBytes + 2)),
                                                  QuantSimd.Load2x32((sbyte*)(x + 2 * BlockBytes + 2), (sbyte*)(x + 3 * BlockBytes + 2)));
            Vector512<float> d0 = QuantSimd.Splat2(f16[*(ushort*)w] * f16[*(ushort*)x],
                                                   f16[*(ushort*)(w + BlockBytes)] * f16[*(ushort*)(x + BlockBytes)]);
            Vector512<float> d1 = QuantSimd.Splat2(f16[*(ushort*)(w + 2 * BlockBytes)] * f16[*(ushort*)(x + 2 * BlockBytes)],
                                                   f16[*(ushort*)(w + 3 * BlockBytes)] * f16[*(ushort*)(x + 3 * BlockBytes)]);
            acc0 = Avx512F.FusedMultiplyAdd(d0, Avx512F.ConvertToVector512Single(p0), acc0);
            acc1 = Avx512F.FusedMultiplyAdd(d1, Avx512F.ConvertToVector512Single(p1), acc1);
        }
        Vector256<float> acc = (acc0 + acc1).GetLower() + (acc0 + acc1).GetUpper();
        for (; b < nb; b++, w += BlockBytes, x += BlockBytes)
        {
            Vector256<int> p = QuantSimd.DotI8x4(Vector256.Load((sbyte*)(w + 2)), Vector256.Load((sbyte*)(x + 2)));
            float d = f16[*(ushort*)w] * f16[*(ushort*)x];
            acc = Fma.MultiplyAdd(Vector256.Create(d), Avx.ConvertToVector256Single(p), acc);
        }
        return QuantSimd.HorizontalSum(acc);
    }
}
