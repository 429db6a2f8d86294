namespace LlavaNative.Kernels.Cpu.Ops;

/// <summary>LayerNorm: <c>y = (x − mean) / sqrt(var + eps) ⊙ w + b</c> over one row (vision towers).</summary>
public static unsafe class LayerNorm
{
    public static void Apply(float* x, float* weight, float* bias, float* y, int n, float eps)
    {
        double sum = 0;
        for (int i = 0; i < n; i++) sum += x[i];
        float mean = (float)(sum / n);
        double variance = 0;
        for (int i = 0; i < n; i++) { float d = x[i] - mean; variance += d * d; }
        float scale = 1.0f / MathF.Sqrt((float)(variance / n) + eps);
        for (int i = 0; i < n; i++) y[i] = (x[i] - mean) * scale * weight[i] + (bias == null ? 0 : bias[i]);
    }
}
