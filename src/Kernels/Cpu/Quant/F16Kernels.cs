using System.Runtime.CompilerServices;
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

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dequantize(byte* src, float* dst, int n) => Fp16.ToFloatRow((ushort*)src, dst, n);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void DequantizeScalar(byte* src, float* dst, int n)
    {
        for (int i = 0; i < n; i++) dst[i] = Fp16.ToFloat(((ushort*)src)[i]);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotScalar(int n, byte* w, byte* x)
    {
        ushort* a = (ushort*)w, b = (ushort*)x;
        double sum = 0;
        for (int i = 0; i < n; i++) sum += Fp16.ToFloat(a[i]) * Fp16.ToFloat(b[i]);
        return (float)sum;
    }

    /// <summary>
    /// 32 halves per step in two 256-bit halves. Fast path, for chunks whose halves are all normal numbers:
    /// interleaving zeros below each half (<c>vpunpck{l,h}wd</c>) puts it in the top of a 32-bit lane, an
    /// arithmetic shift by 3 and a mask leave sign | exponent | mantissa at float positions, and adding
    /// (127 − 15) &lt;&lt; 23 rebiases the exponent. Both operands are permuted alike by the unpacks, so the
    /// products still pair up. Chunks holding a zero, subnormal, infinite or NaN half take the exact
    /// converter (<see cref="Fp16.ToFloat8Lanes"/>) — never denormal arithmetic, which costs microcode
    /// assists on Intel cores.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotAvx2(int n, byte* w, byte* x)
    {
        ushort* a = (ushort*)w, b = (ushort*)x;
        Vector256<float> s0 = Vector256<float>.Zero, s1 = Vector256<float>.Zero, s2 = Vector256<float>.Zero, s3 = Vector256<float>.Zero;
        Vector256<ushort> expMask = Vector256.Create((ushort)0x7C00);
        int i = 0;
        for (; i + 32 <= n; i += 32)
        {
            Vector256<ushort> wa = Vector256.Load(a + i), xa = Vector256.Load(b + i);
            Vector256<ushort> wb = Vector256.Load(a + i + 16), xb = Vector256.Load(b + i + 16);
            Vector256<ushort> ea = wa & expMask, fa = xa & expMask, eb = wb & expMask, fb = xb & expMask;
            Vector256<ushort> lo = Vector256.Min(Vector256.Min(ea, fa), Vector256.Min(eb, fb));
            Vector256<ushort> hi = Vector256.Max(Vector256.Max(ea, fa), Vector256.Max(eb, fb));
            if (Vector256.EqualsAny(lo, Vector256<ushort>.Zero) || Vector256.EqualsAny(hi, expMask))
            {
                for (int k = 0; k < 32; k += 8) s0 = Fma.MultiplyAdd(Widen8(a + i + k), Widen8(b + i + k), s0);
                continue;
            }
            s0 = Fma.MultiplyAdd(LowHalves(wa), LowHalves(xa), s0);
            s1 = Fma.MultiplyAdd(HighHalves(wa), HighHalves(xa), s1);
            s2 = Fma.MultiplyAdd(LowHalves(wb), LowHalves(xb), s2);
            s3 = Fma.MultiplyAdd(HighHalves(wb), HighHalves(xb), s3);
        }
        for (; i + 8 <= n; i += 8) s0 = Fma.MultiplyAdd(Widen8(a + i), Widen8(b + i), s0);
        double sum = QuantSimd.HorizontalSum((s0 + s1) + (s2 + s3));
        for (; i < n; i++) sum += Fp16.ToFloat(a[i]) * Fp16.ToFloat(b[i]);
        return (float)sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> LowHalves(Vector256<ushort> h) => NormalHalfBitsToFloat(Avx2.UnpackLow(Vector256<ushort>.Zero, h).AsInt32());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> HighHalves(Vector256<ushort> h) => NormalHalfBitsToFloat(Avx2.UnpackHigh(Vector256<ushort>.Zero, h).AsInt32());

    /// <summary>A normal half in bits 16..31 of each lane → its float value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> NormalHalfBitsToFloat(Vector256<int> v)
        => (((v >> 3) & Vector256.Create(unchecked((int)0x8FFF_E000))) + Vector256.Create(0x3800_0000)).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> NormalHalfBitsToFloat(Vector512<int> v)
        => (((v >> 3) & Vector512.Create(unchecked((int)0x8FFF_E000))) + Vector512.Create(0x3800_0000)).AsSingle();

    /// <summary>As <see cref="VecDotAvx2"/> with 512-bit vectors.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotAvx512(int n, byte* w, byte* x)
    {
        ushort* a = (ushort*)w, b = (ushort*)x;
        Vector512<float> s0 = Vector512<float>.Zero, s1 = Vector512<float>.Zero;
        Vector256<float> slow = Vector256<float>.Zero;
        Vector512<ushort> expMask = Vector512.Create((ushort)0x7C00);
        int i = 0;
        for (; i + 32 <= n; i += 32)
        {
            Vector512<ushort> wv = Vector512.Load(a + i), xv = Vector512.Load(b + i);
            Vector512<ushort> ew = wv & expMask, ex = xv & expMask;
            if (Vector512.EqualsAny(Vector512.Min(ew, ex), Vector512<ushort>.Zero) || Vector512.EqualsAny(Vector512.Max(ew, ex), expMask))
            {
                for (int k = 0; k < 32; k += 8) slow = Fma.MultiplyAdd(Widen8(a + i + k), Widen8(b + i + k), slow);
                continue;
            }
            s0 = Avx512F.FusedMultiplyAdd(NormalHalfBitsToFloat(Avx512BW.UnpackLow(Vector512<ushort>.Zero, wv).AsInt32()),
                                          NormalHalfBitsToFloat(Avx512BW.UnpackLow(Vector512<ushort>.Zero, xv).AsInt32()), s0);
            s1 = Avx512F.FusedMultiplyAdd(NormalHalfBitsToFloat(Avx512BW.UnpackHigh(Vector512<ushort>.Zero, wv).AsInt32()),
                                          NormalHalfBitsToFloat(Avx512BW.UnpackHigh(Vector512<ushort>.Zero, xv).AsInt32()), s1);
        }
        for (; i + 8 <= n; i += 8) slow = Fma.MultiplyAdd(Widen8(a + i), Widen8(b + i), slow);
        double sum = QuantSimd.HorizontalSum(s0 + s1) + (double)QuantSimd.HorizontalSum(slow);
        for (; i < n; i++) sum += Fp16.ToFloat(a[i]) * Fp16.ToFloat(b[i]);
        return (float)sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Widen8(ushort* p) => Fp16.ToFloat8Lanes(Avx2.ConvertToVector256Int32(Vector128.Load(p)).AsUInt32());
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

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dequantize(byte* src, float* dst, int n) => Bf16.ToFloatRow((ushort*)src, dst, n);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void DequantizeScalar(byte* src, float* dst, int n)
    {
        for (int i = 0; i < n; i++) dst[i] = Bf16.ToFloat(((ushort*)src)[i]);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotScalar(int n, byte* w, byte* x)
    {
        ushort* a = (ushort*)w, b = (ushort*)x;
        double sum = 0;
        for (int i = 0; i < n; i++) sum += Bf16.ToFloat(a[i]) * Bf16.ToFloat(b[i]);
        return (float)sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotAvx2(int n, byte* w, byte* x)
    {
        float* f16 = Fp16.Table;
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

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotAvx512(int n, byte* w, byte* x)
    {
        float* f16 = Fp16.Table;
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
