using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using LlavaNative.Kernels.Cpu.Quant;

namespace LlavaNative.Kernels.Cpu.Ops;

/// <summary>
/// F32 · F16 row operations for an F16 KV cache: a float query against a half key row, and a half value row added,
/// weighted, into a float accumulator. The halves are widened exactly (<see cref="Fp16.ToFloat16Lanes"/> /
/// <see cref="Fp16.ToFloat8Lanes"/>, the same converters as the F16 weights: .NET has no F16C intrinsics) and the
/// arithmetic is then <see cref="FloatDot.Dot"/>'s and <see cref="Elementwise.Axpy"/>'s: AVX-512, AVX2, scalar tail.
/// </summary>
public static unsafe class HalfRows
{
    /// <summary>Σ a[i] · half(b[i]) over <paramref name="n"/> values.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot(float* a, ushort* b, int n)
    {
        int i = 0;
        if (Avx512F.IsSupported && n >= 16)
        {
            Vector512<float> s0 = default, s1 = default;
            for (; i + 32 <= n; i += 32)
            {
                s0 = Vector512.FusedMultiplyAdd(Vector512.Load(a + i), Widen16(b + i), s0);
                s1 = Vector512.FusedMultiplyAdd(Vector512.Load(a + i + 16), Widen16(b + i + 16), s1);
            }
            for (; i + 16 <= n; i += 16) s0 = Vector512.FusedMultiplyAdd(Vector512.Load(a + i), Widen16(b + i), s0);
            float sum = Vector512.Sum(s0 + s1);
            for (; i < n; i++) sum += a[i] * Fp16.ToFloat(b[i]);
            return sum;
        }
        if (Avx2.IsSupported && n >= 8)
        {
            Vector256<float> s0 = default, s1 = default;
            for (; i + 16 <= n; i += 16)
            {
                s0 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i), Widen8(b + i), s0);
                s1 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i + 8), Widen8(b + i + 8), s1);
            }
            for (; i + 8 <= n; i += 8) s0 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i), Widen8(b + i), s0);
            float sum = Vector256.Sum(s0 + s1);
            for (; i < n; i++) sum += a[i] * Fp16.ToFloat(b[i]);
            return sum;
        }
        return DotScalar(a, b, n);
    }

    /// <summary>Scalar reference of <see cref="Dot"/>: products summed in double.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static float DotScalar(float* a, ushort* b, int n)
    {
        double sum = 0;
        for (int i = 0; i < n; i++) sum += (double)a[i] * Fp16.ToFloat(b[i]);
        return (float)sum;
    }

    /// <summary><c>y[i] += a · half(x[i])</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Axpy(float a, ushort* x, float* y, int n)
    {
        int i = 0;
        if (Avx512F.IsSupported)
        {
            var va = Vector512.Create(a);
            for (; i + 16 <= n; i += 16) Vector512.Store(Vector512.FusedMultiplyAdd(va, Widen16(x + i), Vector512.Load(y + i)), y + i);
        }
        if (Avx2.IsSupported)
        {
            var va = Vector256.Create(a);
            for (; i + 8 <= n; i += 8) Vector256.Store(Vector256.FusedMultiplyAdd(va, Widen8(x + i), Vector256.Load(y + i)), y + i);
        }
        for (; i < n; i++) y[i] = MathF.FusedMultiplyAdd(a, Fp16.ToFloat(x[i]), y[i]);
    }

    /// <summary>Scalar reference of <see cref="Axpy"/>.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void AxpyScalar(float a, ushort* x, float* y, int n)
    {
        for (int i = 0; i < n; i++) y[i] = MathF.FusedMultiplyAdd(a, Fp16.ToFloat(x[i]), y[i]);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Widen16(ushort* p) => Fp16.ToFloat16Lanes(Avx512F.ConvertToVector512UInt32(Vector256.Load(p)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Widen8(ushort* p) => Fp16.ToFloat8Lanes(Avx2.ConvertToVector256Int32(Vector128.Load(p)).AsUInt32());
}
