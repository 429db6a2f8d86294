using System.Runtime.Intrinsics;

namespace LlavaNative.Kernels.Cpu.Ops;

/// <summary>RMSNorm: <c>y = x / sqrt(mean(x²) + eps) ⊙ w</c> over one row.</summary>
public static unsafe class RmsNorm
{
    public static void Apply(float* x, float* weight, float* y, int n, float eps)
    {
        float scale = 1.0f / MathF.Sqrt((float)(SumOfSquares(x, n) / n) + eps);
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var s = Vector256.Create(scale);
            for (; i + 8 <= n; i += 8)
                Vector256.Store(Vector256.Load(x + i) * s * Vector256.Load(weight + i), y + i);
        }
        for (; i < n; i++) y[i] = x[i] * scale * weight[i];
    }

    /// <summary>Scalar reference (double accumulation, as ggml's rms_norm does).</summary>
    public static void ApplyScalar(float* x, float* weight, float* y, int n, float eps)
    {
        double sum = 0;
        for (int i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
        float scale = 1.0f / MathF.Sqrt((float)(sum / n) + eps);
        for (int i = 0; i < n; i++) y[i] = x[i] * scale * weight[i];
    }

    /// <summary>Σx² accumulated in double per 8-lane partial, like ggml's ggml_float sum.</summary>
    private static double SumOfSquares(float* x, int n)
    {
        int i = 0;
        double sum = 0;
        if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            // Square in float (as ggml does), accumulate in double lanes.
            Vector256<double> acc0 = default, acc1 = default;
            for (; i + 8 <= n; i += 8)
            {
                var v = Vector256.Load(x + i);
                var sq = v * v;
                acc0 += Vector256.WidenLower(sq);
                acc1 += Vector256.WidenUpper(sq);
            }
            sum = Vector256.Sum(acc0 + acc1);
        }
        for (; i < n; i++) sum += (double)(x[i] * x[i]);
        return sum;
    }
}
