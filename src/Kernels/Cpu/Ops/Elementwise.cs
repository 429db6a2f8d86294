using System.Runtime.Intrinsics;

namespace LlavaNative.Kernels.Cpu.Ops;

/// <summary>Elementwise vector kernels used between the mat-muls.</summary>
public static unsafe class Elementwise
{
    /// <summary><c>dst[i] = a[i] + b[i]</c> (dst may alias a or b).</summary>
    public static void Add(float* a, float* b, float* dst, long n)
    {
        long i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i + 16 <= n; i += 16) Vector512.Store(Vector512.Load(a + i) + Vector512.Load(b + i), dst + i);
        if (Vector256.IsHardwareAccelerated)
            for (; i + 8 <= n; i += 8) Vector256.Store(Vector256.Load(a + i) + Vector256.Load(b + i), dst + i);
        for (; i < n; i++) dst[i] = a[i] + b[i];
    }

    /// <summary>Adds <paramref name="bias"/> [cols] to each of <paramref name="rows"/> rows of <paramref name="x"/> [rows, cols].</summary>
    public static void AddBiasRows(float* x, float* bias, int rows, int cols)
    {
        for (int r = 0; r < rows; r++) Add(x + (long)r * cols, bias, x + (long)r * cols, cols);
    }

    /// <summary>SwiGLU gate: <c>gate[i] = silu(gate[i]) · up[i]</c>, silu(x) = x / (1 + e^−x).</summary>
    public static void SiluMul(float* gate, float* up, long n)
    {
        long i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i + 16 <= n; i += 16)
            {
                var g = Vector512.Load(gate + i);
                Vector512.Store(g / (Vector512<float>.One + Vector512.Exp(-g)) * Vector512.Load(up + i), gate + i);
            }
        }
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i + 8 <= n; i += 8)
            {
                var g = Vector256.Load(gate + i);
                Vector256.Store(g / (Vector256<float>.One + Vector256.Exp(-g)) * Vector256.Load(up + i), gate + i);
            }
        }
        for (; i < n; i++) gate[i] = gate[i] / (1.0f + MathF.Exp(-gate[i])) * up[i];
    }

    /// <summary>Scalar reference of <see cref="SiluMul"/>.</summary>
    public static void SiluMulScalar(float* gate, float* up, long n)
    {
        for (long i = 0; i < n; i++) gate[i] = gate[i] / (1.0f + MathF.Exp(-gate[i])) * up[i];
    }

    /// <summary><c>x[i] *= s</c>.</summary>
    public static void Scale(float* x, float s, long n)
    {
        long i = 0;
        if (Vector256.IsHardwareAccelerated)
            for (; i + 8 <= n; i += 8) Vector256.Store(Vector256.Load(x + i) * s, x + i);
        for (; i < n; i++) x[i] *= s;
    }

    /// <summary><c>y[i] += a · x[i]</c>.</summary>
    public static void Axpy(float a, float* x, float* y, int n)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var va = Vector512.Create(a);
            for (; i + 16 <= n; i += 16) Vector512.Store(Vector512.FusedMultiplyAdd(va, Vector512.Load(x + i), Vector512.Load(y + i)), y + i);
        }
        if (Vector256.IsHardwareAccelerated)
        {
            var va = Vector256.Create(a);
            for (; i + 8 <= n; i += 8) Vector256.Store(Vector256.FusedMultiplyAdd(va, Vector256.Load(x + i), Vector256.Load(y + i)), y + i);
        }
        for (; i < n; i++) y[i] += a * x[i];
    }
}
