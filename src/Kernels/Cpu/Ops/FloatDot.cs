using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace LlavaNative.Kernels.Cpu.Ops;

/// <summary>Float dot products: widest vector available, four independent accumulators to hide FMA latency.</summary>
public static unsafe class FloatDot
{
    public static float Dot(float* a, float* b, int n)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated && n >= 64)
        {
            Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default;
            for (; i + 64 <= n; i += 64)
            {
                s0 = Vector512.FusedMultiplyAdd(Vector512.Load(a + i), Vector512.Load(b + i), s0);
                s1 = Vector512.FusedMultiplyAdd(Vector512.Load(a + i + 16), Vector512.Load(b + i + 16), s1);
                s2 = Vector512.FusedMultiplyAdd(Vector512.Load(a + i + 32), Vector512.Load(b + i + 32), s2);
                s3 = Vector512.FusedMultiplyAdd(Vector512.Load(a + i + 48), Vector512.Load(b + i + 48), s3);
            }
            for (; i + 16 <= n; i += 16) s0 = Vector512.FusedMultiplyAdd(Vector512.Load(a + i), Vector512.Load(b + i), s0);
            float sum = Vector512.Sum((s0 + s1) + (s2 + s3));
            for (; i < n; i++) sum += a[i] * b[i];
            return sum;
        }
        if (Vector256.IsHardwareAccelerated && n >= 32)
        {
            Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default;
            for (; i + 32 <= n; i += 32)
            {
                s0 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i), Vector256.Load(b + i), s0);
                s1 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i + 8), Vector256.Load(b + i + 8), s1);
                s2 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i + 16), Vector256.Load(b + i + 16), s2);
                s3 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i + 24), Vector256.Load(b + i + 24), s3);
            }
            for (; i + 8 <= n; i += 8) s0 = Vector256.FusedMultiplyAdd(Vector256.Load(a + i), Vector256.Load(b + i), s0);
            float sum = Vector256.Sum((s0 + s1) + (s2 + s3));
            for (; i < n; i++) sum += a[i] * b[i];
            return sum;
        }
        return DotScalar(a, b, n);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    public static float DotScalar(float* a, float* b, int n)
    {
        float sum = 0;
        for (int i = 0; i < n; i++) sum += a[i] * b[i];
        return sum;
    }
}
