using Xunit;
using LlavaNative.Kernels.Cpu;
using LlavaNative.Kernels.Cpu.Ops;
using LlavaNative.Kernels.Cpu.Quant;
using LlavaNative.Kernels.Tensors;
using LlavaNative.TestSupport;

namespace LlavaNative.Tests.Kernels;

/// <summary>
/// <see cref="PackedGemm"/> and <see cref="GemmAttention"/> at vision-tower-like sizes on a 2-thread pool, against
/// float64 references: 577 tokens (48 full 12-token panels and one of a single token), row counts that leave a short
/// last panel, K over several 256-column blocks with a short last one. (LlavaNative.IsaCheck runs the small awkward
/// sizes on every ISA path.) GEMM: |error| ≤ 1e-5 · Σ|wᵢxᵢ|; attention: ≤ 2e-5 · (max |v| + 1).
/// </summary>
public unsafe class PackedGemmTests
{
    [Theory]
    [InlineData(TensorType.F32, 80, 1100, 577)]
    [InlineData(TensorType.F16, 45, 588, 577)]
    [InlineData(TensorType.BF16, 33, 300, 100)]
    public void MatchesFloat64Reference(TensorType type, int rows, int cols, int tokens)
    {
        var rng = new Random(rows * cols + tokens);
        long rowBytes = TensorTypeInfo.RowBytes(type, cols);
        var w = new byte[rowBytes * rows];
        for (int r = 0; r < rows; r++) QuantTestData.RandomRow(type, cols, rng).CopyTo(w, r * rowBytes);
        float[] x = QuantTestData.RandomActivations(cols * tokens, rng);
        var y = new float[rows * tokens];
        var expected = new double[rows * tokens];
        var wf = new float[rows * cols];
        var packed = new float[PackedGemm.PackedActivationFloats(tokens, cols)];
        using var pool = new ComputeThreadPool(2);
        fixed (byte* pw = w)
        fixed (float* px = x, py = y, pp = packed, pwf = wf)
        fixed (double* pe = expected)
        {
            var matrix = new WeightMatrix(pw, type, rows, cols);
            PackedGemm.Multiply(pool, matrix, px, tokens, py, pp);
            PackedGemm.MultiplyReference(matrix, px, tokens, pe);
            for (int r = 0; r < rows; r++)
                for (int i = 0; i < cols; i++)
                    wf[r * cols + i] = type switch
                    {
                        TensorType.F16 => Fp16.ToFloat(((ushort*)(pw + r * rowBytes))[i]),
                        TensorType.BF16 => Bf16.ToFloat(((ushort*)(pw + r * rowBytes))[i]),
                        _ => ((float*)(pw + r * rowBytes))[i],
                    };
        }
        for (int t = 0; t < tokens; t++)
            for (int r = 0; r < rows; r++)
            {
                double magnitude = 0;
                for (int i = 0; i < cols; i++) magnitude += Math.Abs((double)wf[r * cols + i] * x[t * cols + i]);
                double error = Math.Abs(y[t * rows + r] - expected[t * rows + r]);
                Assert.True(error <= 1e-5 * magnitude, $"{type} {rows}x{cols}, {tokens} tokens: y[{t},{r}] = {y[t * rows + r]:R}, float64 {expected[t * rows + r]:R}");
            }
    }

    [Theory]
    [InlineData(TensorType.F32)]
    [InlineData(TensorType.F16)]
    public void PermutingWeightRowsPermutesOutputsExactly(TensorType type)
    {
        // Every y[t, r] is the same sequence of FMAs wherever row r lands in the panels: HF and GGUF checkpoints of
        // llama store q/k rows in different orders and must give identical projections.
        const int rows = 70, cols = 300, tokens = 40;
        var rng = new Random(5);
        long rowBytes = TensorTypeInfo.RowBytes(type, cols);
        var w = new byte[rowBytes * rows];
        for (int r = 0; r < rows; r++) QuantTestData.RandomRow(type, cols, rng).CopyTo(w, r * rowBytes);
        int[] order = Enumerable.Range(0, rows).OrderBy(_ => rng.Next()).ToArray();
        var permuted = new byte[w.Length];
        for (int r = 0; r < rows; r++) Array.Copy(w, order[r] * rowBytes, permuted, r * rowBytes, rowBytes);
        float[] x = QuantTestData.RandomActivations(cols * tokens, rng);
        var y = new float[rows * tokens];
        var yp = new float[rows * tokens];
        var scratch = new byte[MatMul.ScratchBytes(type, cols, tokens)];
        using var pool = new ComputeThreadPool(2);
        fixed (byte* pw = w, ppw = permuted, ps = scratch)
        fixed (float* px = x, py = y, pyp = yp)
        {
            MatMul.Compute(pool, new WeightMatrix(pw, type, rows, cols), px, tokens, py, ps);
            MatMul.Compute(pool, new WeightMatrix(ppw, type, rows, cols), px, tokens, pyp, ps);
        }
        for (int t = 0; t < tokens; t++)
            for (int r = 0; r < rows; r++)
                Assert.Equal(y[t * rows + order[r]], yp[t * rows + r]);
    }

    [Fact]
    public void ReferenceIsIndependentOfPacking()
    {
        // A hand-checkable product: W = [[1, 2, 3], [−1, 0, 0.5]], x = [[1, 1, 1], [2, −1, 4]].
        float[] w = [1, 2, 3, -1, 0, 0.5f];
        float[] x = [1, 1, 1, 2, -1, 4];
        var y = new double[4];
        var yf = new float[4];
        var packed = new float[PackedGemm.PackedActivationFloats(2, 3)];
        using var pool = new ComputeThreadPool(2);
        fixed (float* pw = w, px = x, pyf = yf, pp = packed)
        fixed (double* py = y)
        {
            var matrix = new WeightMatrix((byte*)pw, TensorType.F32, 2, 3);
            PackedGemm.MultiplyReference(matrix, px, 2, py);
            PackedGemm.Multiply(pool, matrix, px, 2, pyf, pp);
        }
        Assert.Equal(new double[] { 6, -0.5, 12, 0 }, y);
        Assert.Equal(new float[] { 6, -0.5f, 12, 0 }, yf);
    }

    [Theory]
    [InlineData(197, 2, 72)]
    [InlineData(130, 3, 64)]
    public void GemmAttentionMatchesScalarAttention(int tokens, int heads, int headDim)
    {
        var rng = new Random(tokens + heads);
        int d = heads * headDim;
        float[] q = QuantTestData.RandomActivations(tokens * d, rng, 3f), k = QuantTestData.RandomActivations(tokens * d, rng, 3f), v = QuantTestData.RandomActivations(tokens * d, rng);
        var o = new float[tokens * d];
        var expected = new float[tokens * d];
        using var pool = new ComputeThreadPool(2);
        using var scratch = NativeBuffer.Floats(GemmAttention.ScratchFloats(tokens, heads, headDim, pool.ThreadCount));
        fixed (float* pq = q, pk = k, pv = v, po = o, pe = expected)
        {
            var problem = new Attention.Problem
            {
                Q = pq, K = pk, V = pv, Output = po, Tokens = tokens, Heads = heads, KvHeads = heads, HeadDim = headDim,
                KvStride = d, KeyCount = tokens, Causal = false, Scale = 1f / MathF.Sqrt(headDim),
            };
            GemmAttention.Compute(pool, problem, scratch.Floats());
            problem.Output = pe;
            Attention.ComputeScalar(problem);
        }
        float vmax = v.Max(Math.Abs);
        for (int i = 0; i < o.Length; i++)
            Assert.True(Math.Abs(o[i] - expected[i]) <= 2e-5 * (vmax + 1), $"out[{i / d},{i % d}] = {o[i]:R}, scalar {expected[i]:R}");
    }

    [Fact]
    public void GemmAttentionRejectsCausalProblems()
    {
        using var pool = new ComputeThreadPool(1);
        var problem = new Attention.Problem { Tokens = 4, Heads = 2, KvHeads = 1, HeadDim = 8, KeyCount = 4, Causal = false };
        var e = Assert.Throws<ArgumentException>(() => GemmAttention.Compute(pool, problem, null));
        Assert.Contains("one KV head per head", e.Message);
    }
}
