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
            foreach (int tokens in new[] { 1, 2, 5, 13, 29 }) // 29: F32/F16/BF16 take the packed GEMM
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
                // F16/BF16 through the packed GEMM keep activations in F32 (ggml rounds them): exact math on those, no ggml comparison.
                bool floatActivations = type == TensorType.F32 || (kernels.UsePackedGemm && tokens >= MatMul.PackedGemmMinTokens);
                for (int t = 0; t < tokens; t++)
                {
                    byte* xt = pxq + t * xRowBytes;
                    if (floatActivations) Buffer.MemoryCopy(px + t * cols, pxf, cols * 4, cols * 4);
                    else VecDotTests.DequantizeActivation(kernels.DotType, xt, pxf, cols);
                    double exact = 0, magnitude = 0;
                    for (int i = 0; i < cols; i++) { exact += (double)pwf[i] * pxf[i]; magnitude += Math.Abs((double)pwf[i] * pxf[i]); }
                    exact += VecDotTests.Q8_1SumCorrection(type, kernels.DotType, pw + r * rowBytes, xt, cols);
                    float reference = GgmlReference.VecDot(QuantTestData.GgmlName(type), QuantTestData.GgmlName(kernels.DotType), cols, pw + r * rowBytes, xt);
                    float got = py[t * rows + r];
                    double scale = magnitude + 1e-30;
                    if (type == TensorType.F32 || !floatActivations)
                        Assert.True(Math.Abs(got - reference) / scale <= 2e-6, $"{type} {rows}x{cols}, {tokens} tokens: y[{t},{r}] = {got:R}, ggml vec_dot {reference:R}");
                    Assert.True(Math.Abs(got - exact) / scale <= 2e-6, $"{type} {rows}x{cols}, {tokens} tokens: y[{t},{r}] = {got:R}, exact {exact:R}");
                }
            }
        }
    }
}

/// <summary>
/// The Q4_0 prefill kernel (<see cref="Q4_0PackedGemm"/> with AVX-512, the 2 × 4 tile with AVX2) against the scalar
/// reference <see cref="Q4_0Kernels.VecDotScalar"/> per (row, token), on shapes that hit every edge of the packed GEMM:
/// rows not a multiple of its 16-row panel (1, 15, 17, 113), tokens not a multiple of its 4-token step and on both
/// sides of its 8-token threshold and 128-token chunk (1, 7, 8, 9, 130), and columns of 1, 32, 33 and 65 blocks
/// (one K-chunk, exactly one, one plus a single block, two plus one), on pools of 1 and 2 threads.
/// </summary>
public unsafe class Q4_0PrefillTests
{
    [Theory]
    [InlineData(32)]
    [InlineData(1024)]
    [InlineData(1056)]
    [InlineData(2080)]
    public void PackedGemmMatchesScalarVecDot(int cols)
    {
        const TensorType type = TensorType.Q4_0;
        var rng = new Random(cols);
        var kernels = QuantRegistry.Kernels(type);
        var scalar = QuantRegistry.ScalarKernels(type);
        foreach (int threads in new[] { 1, 2 })
        {
            using var pool = new ComputeThreadPool(threads);
            foreach (int rows in new[] { 1, 15, 17, 113 })
                foreach (int tokens in new[] { 1, 7, 8, 9, 130 })
                {
                    if (cols > 1056 && tokens != 130 && rows != 17) continue; // keep the test fast; the wide shapes matter for K-chunks
                    Check(pool, kernels, scalar, rows, cols, tokens, rng);
                }
        }
    }

    private static void Check(ComputeThreadPool pool, in QuantKernels kernels, in QuantKernels scalar, int rows, int cols, int tokens, Random rng)
    {
        const TensorType type = TensorType.Q4_0;
        long rowBytes = TensorTypeInfo.RowBytes(type, cols);
        var weights = new byte[rowBytes * rows];
        for (int r = 0; r < rows; r++) QuantTestData.RandomRow(type, cols, rng).CopyTo(weights, r * rowBytes);
        float[] x = QuantTestData.RandomActivations(cols * tokens, rng);
        var y = new float[rows * tokens];
        var scratch = new byte[Math.Max(1, MatMul.ScratchBytes(type, cols, tokens))];
        long xRowBytes = TensorTypeInfo.RowBytes(TensorType.Q8_0, cols);
        var xq = new byte[xRowBytes * tokens];
        var wf = new float[cols];
        var xf = new float[cols];
        fixed (byte* pw = weights, ps = scratch, pxq = xq)
        fixed (float* px = x, py = y, pwf = wf, pxf = xf)
        {
            MatMul.Compute(pool, new WeightMatrix(pw, type, rows, cols), kernels, px, tokens, py, ps);
            for (int t = 0; t < tokens; t++)
                ActivationQuantizers.ScalarQ8_0.QuantizeRow(px + t * cols, pxq + t * xRowBytes, cols);
            for (int r = 0; r < rows; r++)
            {
                scalar.Dequantize(pw + r * rowBytes, pwf, cols);
                for (int t = 0; t < tokens; t++)
                {
                    byte* xt = pxq + t * xRowBytes;
                    VecDotTests.DequantizeActivation(TensorType.Q8_0, xt, pxf, cols);
                    double magnitude = 1e-30;
                    for (int i = 0; i < cols; i++) magnitude += Math.Abs((double)pwf[i] * pxf[i]);
                    float reference = scalar.VecDot(cols, pw + r * rowBytes, xt);
                    float got = py[t * rows + r];
                    Assert.True(Math.Abs(got - reference) / magnitude <= 2e-6,
                        $"Q4_0 {rows}x{cols}, {tokens} tokens, {pool.ThreadCount} threads: y[{t},{r}] = {got:R}, scalar {reference:R}");
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
