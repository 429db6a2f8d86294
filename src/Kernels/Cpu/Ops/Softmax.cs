namespace LlavaNative.Kernels.Cpu.Ops;

/// <summary>In-place softmax over one row.</summary>
public static unsafe class Softmax
{
    public static void Apply(float* x, int n)
    {
        float max = float.NegativeInfinity;
        for (int i = 0; i < n; i++) if (x[i] > max) max = x[i];
        double sum = 0;
        for (int i = 0; i < n; i++) { x[i] = MathF.Exp(x[i] - max); sum += x[i]; }
        float inv = (float)(1.0 / sum);
        for (int i = 0; i < n; i++) x[i] *= inv;
    }
}
