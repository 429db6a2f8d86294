using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using LlavaNative.Kernels.Tensors;

namespace LlavaNative.Kernels.Cpu.Quant;

/// <summary>
/// F16 weights · F16 activations (ggml rounds activations to F16 for F16 weights: <c>ggml_vec_dot_f16</c>).
/// Both sides are expanded exactly to float and multiplied-added in float; ggml sums its vector lanes
/// into a double at the end, the scalar reference here sums products in double.
/// </summary>
internal static unsafe class F16Kernels
{
    public static QuantKernels Table => new()
    {
        Type = TensorType.F16, DotType = TensorType.F16, Dequantize = &Dequantize,
        VecDot = QuantSimd.UseAvx512 ? &VecDotAvx512 : QuantSimd.UseAvx2 ? &VecDotAvx2 : &VecDotScalar,
    };

    public static QuantKernels ScalarTable => new()
    {
        Type = TensorType.F16, DotType = TensorType.F16, Dequantize = &DequantizeScalar, VecDot = &VecDotScalar,
    };

    public static void Dequantize(byte* src, float* dst, int n) => Fp16.ToFloatRow((ushort*)src, dst, n);

    internal static void DequantizeScalar(byte* src, float* dst, int n)
    {
        for (int i = 0; i < n; i++) dst[i] = Fp16.ToFloat(((ushort*)src)[i]);
    }

    internal static float VecDotScalar(int n, byte* w, byte* x)
    {
        ushort* a = (ushort*)w, b = (ushort*)x;
        double sum = 0;
        for (int i = 0; i < n; i++) sum += Fp16.ToFloat(a[i]) * Fp16.ToFloat(b[i]);
        return (float)sum;
    }

    internal static float VecDotAvx2(int n, byte* w, byte* x)
    {
        ushort* a = (ushort*)w, b = (ushort*)x;
        Vector256<float> s0 = Vector256<float>.Zero, s1 = Vector256<float>.Zero, s2 = Vector256<float>.Zero, s3 = Vector256<float>.Zero;
        int i = 0;
        for (; i + 32 <= n; i += 32)
        {
            s0 = Fma.MultiplyAdd(Widen8(a + i), Widen8(b + i), s0);
            s1 = Fma.MultiplyAdd(Widen8(a + i + 8), Widen8(b + i + 8), s1);
            s2 = Fma.MultiplyAdd(Widen8(a + i + 16), Widen8(b + i + 16), s2);
            s3 = Fma.MultiplyAdd(Widen8(a + i + 24), Widen8(b + i + 24), s3);
        }
        for (; i + 8 <= n; i += 8) s0 = Fma.MultiplyAdd(Widen8(a + i), Widen8(b + i), s0);
        double sum = QuantSimd.HorizontalSum((s0 + s1) + (s2 + s3));
        for (; i < n; i++) sum += Fp16.ToFloat(a[i]) * Fp16.ToFloat(b[i]);
        return (float)sum;
    }

    internal static float VecDotAvx512(int n, byte* w, byte* x)
    {
        ushort* a = (ushort*)w, b = (ushort*)x;
        Vector512<float> s0 = Vector512<float>.Zero, s1 = Vector512<float>.Zero;
        int i = 0;
        for (; i + 32 <= n; i += 32)
        {
            s0 = Avx512F.FusedMultiplyAdd(Widen16(a + i), Widen16(b + i), s0);
            s1 = Avx512F.FusedMultiplyAdd(Widen16(a + i + 16), Widen16(b + i + 16), s1);
        }
        for (; i + 16 <= n; i += 16) s0 = Avx512F.FusedMultiplyAdd(Widen16(a + i), Widen16(b + i), s0);
        double sum = QuantSimd.HorizontalSum(s0 + s1);
        for (; i < n; i++) sum += Fp16.ToFloat(a[i]) * Fp16.ToFloat(b[i]);
        return (float)sum;
    }

    private static Vector256<float> Widen8(ushort* p) => Fp16.ToFloat8Lanes(Avx2.ConvertToVector256Int32(Vector128.Load(p)).AsUInt32());

    private static Vector512<float> Widen16(ushort* p) => Fp16.ToFloat16Lanes(Avx512F.ConvertToVector512UInt32(Vector256.Load(p)));
}

/// <summary>BF16 weights · BF16 activations (<c>ggml_vec_dot_bf16</c>): bf16 → float is a 16-bit shift.</summary>
internal static unsafe class BF16Kernels
{
    public static QuantKernels Table => new()
    {
        Type = TensorType.BF16, DotType = TensorType.BF16, Dequantize = &Dequantize,
        VecDot = QuantSimd.UseAvx512 ? &VecDotAvx512 : QuantSimd.UseAvx2 ? &VecDotAvx2 : &VecDotScalar,
    };

    public static QuantKernels ScalarTable => new()
    {
        Type = TensorType.BF16, DotType = TensorType.BF16, Dequantize = &DequantizeScalar, VecDot = &VecDotScalar,
    };

    public static void Dequantize(byte* src, float* dst, int n) => Bf16.ToFloatRow((ushort*)src, dst, n);

    internal static void DequantizeScalar(byte* src, float* dst, int n)
    {
        for (int i = 0; i < n; i++) dst[i] = Bf16.ToFloat(((ushort*)src)[i]);
    }

    internal static float VecDotScalar(int n, byte* w, byte* x)
    {
        ushort* a = (ushort*)w, b = (ushort*)x;
        double sum = 0;
        for (int i = 0; i < n; i++) sum += Bf16.ToFloat(a[i]) * Bf16.ToFloat(b[i]);
        return (float)sum;
    }

    internal static float VecDotAvx2(int n, byte* w, byte* x)
    {
        ushort* a = (ushort*)w, b = (ushort*)x;
        Vector256<float> s0 = Vector256<float>.Zero, s1 = Vector256<float>.Zero, s2 = Vector256<float>.Zero, s3 = Vector256<float>.Zero;
        int i = 0;
        for (; i + 32 <= n; i += 32)
        {
            s0 = Fma.MultiplyAdd(Widen8(a + i), Widen8(b + i), s0);
            s1 = Fma.MultiplyAdd(Widen8(a + i + 8), Widen8(b + i + 8), s1);
            s2 = Fma.MultiplyAdd(Widen8(a + i + 16), Widen8(b + i + 16), s2);
            s3 = Fma.MultiplyAdd(Widen8(a + i + 24), Widen8(b + i + 24), s3);
        }
        for (; i + 8 <= n; i += 8) s0 = Fma.MultiplyAdd(Widen8(a + i), Widen8(b + i), s0);
        double sum = QuantSimd.HorizontalSum((s0 + s1) + (s2 + s3));
        for (; i < n; i++) sum += Bf16.ToFloat(a[i]) * Bf16.ToFloat(b[i]);
        return (float)sum;
    }

    internal static float VecDotAvx512(int n, byte* w, byte* x)
    {
        ushort* a = (ushort*)w, b = (ushort*)x;
        Vector512<float> s0 = Vector512<float>.Zero, s1 = Vector512<float>.Zero;
        int i = 0;
        for (; i + 32 <= n; i += 32)
        {
            s0 = Avx512F.FusedMultiplyAdd(Widen16(a + i), Widen16(b + i), s0);
            s1 = Avx512F.FusedMultiplyAdd(Widen16(a + i + 16), Widen16(b + i + 16), s1);
        }
        for (; i + 16 <= n; i += 16) s0 = Avx512F.FusedMultiplyAdd(Widen16(a + i), Widen16(b + i), s0);
        double sum = QuantSimd.HorizontalSum(s0 + s1);
        for (; i < n; i++) sum += Bf16.ToFloat(a[i]) * Bf16.ToFloat(b[i]);
        return (float)sum;
    }

    private static Vector256<float> Widen8(ushort* p) => (Avx2.ConvertToVector256Int32(Vector128.Load(p)).AsUInt32() << 16).AsSingle();

    private static Vector512<float> Widen16(ushort* p) => (Avx512F.ConvertToVector512UInt32(Vector256.Load(p)) << 16).AsSingle();
}
