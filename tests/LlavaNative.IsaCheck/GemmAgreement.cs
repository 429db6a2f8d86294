using LlavaNative.Kernels.Cpu;
using LlavaNative.Kernels.Cpu.Ops;
using LlavaNative.Kernels.Cpu.Quant;
using LlavaNative.Kernels.Tensors;
using LlavaNative.TestSupport;

namespace LlavaNative.IsaCheck;

/// <summary>
/// The packed GEMM (<see cref="PackedGemm"/>, whichever microkernel this ISA selects) and the bidirectional GEMM
/// attention (<see cref="GemmAttention"/>) against float64 references on awkward sizes: token and row counts that
/// are not multiples of any tile, K across several K-blocks with a short last one. GEMM error ≤ 1e-5 · Σ|wᵢxᵢ|;
/// attention ≤ 2e-5 · (max |v| + 1).
/// </summary>
internal static unsafe class GemmAgreement
{
    public static int Run(TextWriter log)
    {
        var rng = new Random(4242);
        int failures = 0;
        double worst = 0;
        using var pool = new ComputeThreadPool(2);
        foreach (var type in new[] { TensorType.F32, TensorType.F16, TensorType.BF16 })
            foreach (var (rows, cols, tokens) in new[] { (1, 1, 1), (7, 17, 5), (33, 300, 13), (70, 513, 25), (17, 72, 29) })
            {
                long rowBytes = TensorTypeInfo.RowBytes(type, cols);
                var w = new byte[rowBytes * rows];
                for (int r = 0; r < rows; r++) QuantTestData.RandomRow(type, cols, rng).CopyTo(w, r * rowBytes);
                float[] x = QuantTestData.RandomActivations(cols * tokens, rng);
                var y = new float[rows * tokens];
                var y1 = new float[rows * tokens];
                var expected = new double[rows * tokens];
                var magnitude = new double[rows * tokens];
                var packed = new float[PackedGemm.PackedActivationFloats(tokens, cols) + 16];
                fixed (byte* pw = w)
                fixed (float* px = x, py = y, py1 = y1, pp = packed)
                fixed (double* pe = expected, pm = magnitude)
                {
                    var matrix = new WeightMatrix(pw, type, rows, cols);
                    PackedGemm.Multiply(pool, matrix, px, tokens, py, pp);
                    PackedGemm.MultiplySingle(matrix, px, tokens, py1, pp);
                    PackedGemm.MultiplyReference(matrix, px, tokens, pe);
                    float[] abs = x.Select(Math.Abs).ToArray();
                    var absW = new byte[w.Length];
                    for (int i = 0; i < w.Length; i += type == TensorType.F32 ? 4 : 2) { absW[i] = w[i]; absW[i + 1] = w[i + 1]; if (type == TensorType.F32) { absW[i + 2] = w[i + 2]; absW[i + 3] = (byte)(w[i + 3] & 0x7F); } else absW[i + 1] &= 0x7F; }
                    fixed (byte* paw = absW)
                    fixed (float* pa = abs)
                        PackedGemm.MultiplyReference(new WeightMatrix(paw, type, rows, cols), pa, tokens, pm);
                }
                for (int i = 0; i < y.Length; i++)
                {
                    double e = Math.Max(Math.Abs(y[i] - expected[i]), Math.Abs(y1[i] - expected[i])) / (magnitude[i] + 1e-30);
                    worst = Math.Max(worst, e);
                    if (!(e <= 1e-5))
                    {
                        failures++;
                        if (failures < 10) log.WriteLine($"FAIL packed GEMM {type} {rows}x{cols}, {tokens} tokens, y[{i / rows},{i % rows}] = {y[i]:R} / {y1[i]:R} vs {expected[i]:R}");
                    }
                }
            }
        log.WriteLine($"{(failures == 0 ? "ok  " : "FAIL")} packed GEMM {PackedGemm.TileTokens}x{PackedGemm.TileRows} (F32, F16, BF16 weights): worst error {worst:G3} of Σ|wx|");
        return failures + CheckAttention(log, pool, rng);
    }

    private static int CheckAttention(TextWriter log, ComputeThreadPool pool, Random rng)
    {
        int failures = 0;
        double worst = 0;
        foreach (var (tokens, heads, headDim) in new[] { (1, 1, 8), (29, 3, 72), (50, 2, 64), (13, 4, 40) })
        {
            int d = heads * headDim;
            float[] q = QuantTestData.RandomActivations(tokens * d, rng, 2f), k = QuantTestData.RandomActivations(tokens * d, rng, 2f), v = QuantTestData.RandomActivations(tokens * d, rng);
            var o = new float[tokens * d];
            var expected = new float[tokens * d];
            var scratch = new float[GemmAttention.ScratchFloats(tokens, heads, headDim, pool.ThreadCount) + 16];
            fixed (float* pq = q, pk = k, pv = v, po = o, pe = expected, ps = scratch)
            {
                var problem = new Attention.Problem
                {
                    Q = pq, K = pk, V = pv, Output = po, Tokens = tokens, Heads = heads, KvHeads = heads, HeadDim = headDim,
                    KvStride = d, KeyCount = tokens, Causal = false, Scale = 1f / MathF.Sqrt(headDim),
                };
                GemmAttention.Compute(pool, problem, ps);
                problem.Output = pe;
                Attention.ComputeScalar(problem);
            }
            float vmax = v.Max(Math.Abs);
            for (int i = 0; i < o.Length; i++)
            {
                double e = Math.Abs(o[i] - expected[i]) / (vmax + 1);
                worst = Math.Max(worst, e);
                if (!(e <= 2e-5))
                {
                    failures++;
                    if (failures < 10) log.WriteLine($"FAIL GEMM attention {tokens} tokens × {heads} heads × {headDim}: out[{i}] = {o[i]:R} vs {expected[i]:R}");
                }
            }
        }
        log.WriteLine($"{(failures == 0 ? "ok  " : "FAIL")} GEMM attention (bidirectional): worst error {worst:G3} of max|v| + 1");
        return failures;
    }
}
