using Xunit;
using LlavaNative.Kernels.Cpu;
using LlavaNative.Kernels.Cpu.Ops;
using LlavaNative.Kernels.Cpu.Quant;
using LlavaNative.Kernels.Tensors;
using LlavaNative.TestSupport;

namespace LlavaNative.Tests.Kernels;

/// <summary>
/// <see cref="MatMul"/> over several tokens on a pool of 2 threads, against (a) ggml's vec_dot per (row, token)
/// on the same quantized activations, and (b) exact float64 math on ggml-dequantized weights and activations.
/// Odd row counts and token counts exercise the tile edges of the prefill path.
/// </summary>
public unsafe class MatMulTests
{
    public static TheoryData<TensorType> WeightTypes()
    {
        var data = new TheoryData<TensorType>();
        foreach (var t in QuantRegistry.WeightTypes) data.Add(t);
        return data;
    }

    [Theory]
    [MemberData(nameof(WeightTypes))]
    public void ManyTokensMatchGgmlAndExactMath(TensorType type)
    {
        using var pool = new ComputeThreadPool(2);
        var rng = new Random(77 + (int)type);
        // Float types: more than one 1024-column F16 panel and a tail that is not a multiple of 16.
        int cols = TensorTypeInfo.BlockElements(type) switch { 256 => 768, 32 => 352, _ => 1100 };
        foreach (int rows in new[] { 1, 37, 70 })
            foreach (int tokens in new[] { 1, 2, 5, 13 })
                Check(pool, type, rows, cols, tokens, rng);
    }

    private static void Check(ComputeThreadPool pool, TensorType type, int rows, int cols, int tokens, Random rng)
    {
        var kernels = QuantRegistry.Kernels(type);
        long rowBytes = TensorTypeInfo.RowBytes(type, cols);
        var weights = new byte[rowBytes * rows];
        for (int r = 0; r < rows; r++) QuantTestData.RandomRow(type, cols, rng).CopyTo(weights, r * rowBytes);
        float[] x = QuantTestData.RandomActivations(cols * tokens, rng);
        var y = new float[rows * tokens];
        var scratch = new byte[Math.Max(1, MatMul.ScratchBytes(type, cols, tokens))];
        long xRowBytes = type == TensorType.F32 ? cols * 4L : TensorTypeInfo.RowBytes(kernels.DotType, cols);
        var xq = new byte[xRowBytes * tokens];
        var wf = new float[cols];
        var xf = new float[cols];
        fixed (byte* pw = weights, ps = scratch, pxq = xq)
        fixed (float* px = x, py = y, pwf = wf, pxf = xf)
        {
            var w = new WeightMatrix(pw, type, rows, cols);
            MatMul.Compute(pool, w, px, tokens, py, ps);
            for (int t = 0; t < tokens; t++)
                QuantRegistry.Activation(kernels.DotType).QuantizeRow(px + t * cols, pxq + t * xRowBytes, cols);
            for (int r = 0; r < rows; r++)
            {
                if (type == TensorType.F32) Buffer.MemoryCopy(pw + r * rowBytes, pwf, cols * 4, cols * 4);
                else GgmlReference.DequantizeRow(QuantTestData.GgmlName(type), pw + r * rowBytes, pwf, cols);
                for (int t = 0; t < tokens; t++)
                {
                    byte* xt = pxq + t * xRowBytes;
                    if (type == TensorType.F32) Buffer.MemoryCopy(px + t * cols, pxf, cols * 4, cols * 4);
                    else VecDotTests.DequantizeActivation(kernels.DotType, xt, pxf, cols);
                    double exact = 0, magnitude = 0;
                    for (int i = 0; i < cols; i++) { exact += (double)pwf[i] * pxf[i]; magnitude += Math.Abs((double)pwf[i] * pxf[i]); }
                    exact += VecDotTests.Q8_1SumCorrection(type, kernels.DotType, pw + r * rowBytes, xt, cols);
                    float reference = GgmlReference.VecDot(QuantTestData.GgmlName(type), QuantTestData.GgmlName(kernels.DotType), cols, pw + r * rowBytes, xt);
                    float got = py[t * rows + r];
                    double scale = magnitude + 1e-30;
                    Assert.True(Math.Abs(got - reference) / scale <= 2e-6, $"{type} {rows}x{cols}, {tokens} tokens: y[{t},{r}] = {got:R}, ggml vec_dot {reference:R}");
                    Assert.True(Math.Abs(got - exact) / scale <= 2e-6, $"{type} {rows}x{cols}, {tokens} tokens: y[{t},{r}] = {got:R}, exact {exact:R}");
                }
            }
        }
    }
}

/// <summary>Decode allocates nothing: a mat-vec (and a small prefill) through every kernel table leaves the GC heap untouched.</summary>
public unsafe class MatMulAllocationTests
{
    [Fact]
    public void MatMulAllocatesNothingAfterWarmUp()
    {
        using var pool = new ComputeThreadPool(2);
        var rng = new Random(5);
        foreach (var type in QuantRegistry.WeightTypes)
        {
            int cols = TensorTypeInfo.BlockElements(type) == 256 ? 512 : 256;
            const int rows = 64, tokens = 5;
            long rowBytes = TensorTypeInfo.RowBytes(type, cols);
            var weights = new byte[rowBytes * rows];
            for (int r = 0; r < rows; r++) QuantTestData.RandomRow(type, cols, rng).CopyTo(weights, r * rowBytes);
            float[] x = QuantTestData.RandomActivations(cols * tokens, rng);
            var y = new float[rows * tokens];
            var scratch = new byte[Math.Max(64, MatMul.ScratchBytes(type, cols, tokens))];
            fixed (byte* pw = weights, ps = scratch)
            fixed (float* px = x, py = y)
            {
                var w = new WeightMatrix(pw, type, rows, cols);
                MatMul.Compute(pool, w, px, 1, py, ps);      // warm-up: JIT, static tables
                MatMul.Compute(pool, w, px, tokens, py, ps);
                long before = GC.GetAllocatedBytesForCurrentThread();
                for (int i = 0; i < 3; i++)
                {
                    MatMul.Compute(pool, w, px, 1, py, ps);
                    MatMul.Compute(pool, w, px, tokens, py, ps);
                }
                Assert.True(GC.GetAllocatedBytesForCurrentThread() == before, $"{type}: MatMul allocated {GC.GetAllocatedBytesForCurrentThread() - before} bytes");
            }
        }
    }
}
