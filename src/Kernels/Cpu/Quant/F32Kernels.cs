using LlavaNative.Kernels.Cpu.Ops;
using LlavaNative.Kernels.Tensors;

namespace LlavaNative.Kernels.Cpu.Quant;

/// <summary>F32 weights: dot products directly on floats.</summary>
internal static unsafe class F32Kernels
{
    public static QuantKernels Table => new()
    {
        UsePackedGemm = true,
        Type = TensorType.F32, DotType = TensorType.F32, Dequantize = &Copy, VecDot = &Dot,
    };

    public static QuantKernels ScalarTable => new()
    {
        Type = TensorType.F32, DotType = TensorType.F32, Dequantize = &Copy, VecDot = &DotScalar,
    };

    public static ActivationQuantizer Activation => new() { Type = TensorType.F32, QuantizeRow = &CopyIn };

    private static void Copy(byte* src, float* dst, int n) => Buffer.MemoryCopy(src, dst, (long)n * 4, (long)n * 4);

    private static void CopyIn(float* src, byte* dst, int n) => Buffer.MemoryCopy(src, dst, (long)n * 4, (long)n * 4);

    internal static float DotScalar(int n, byte* w, byte* x)
    {
        float* a = (float*)w, b = (float*)x;
        float sum = 0;
        for (int i = 0; i < n; i++) sum += a[i] * b[i];
        return sum;
    }

    internal static float Dot(int n, byte* w, byte* x) => FloatDot.Dot((float*)w, (float*)x, n);
}
