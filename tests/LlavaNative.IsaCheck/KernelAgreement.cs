using LlavaNative.Kernels.Cpu;
using LlavaNative.Kernels.Cpu.Ops;
using LlavaNative.Kernels.Cpu.Quant;
using LlavaNative.Kernels.Tensors;
using LlavaNative.TestSupport;

namespace LlavaNative.IsaCheck;

/// <summary>
/// The dispatched kernels (<see cref="QuantRegistry.Kernels"/>, <see cref="QuantRegistry.Activation"/>,
/// <see cref="Fp16"/>/<see cref="Bf16"/> rows) against the scalar references on random inputs: encodings and
/// dequantized values must be identical, dot products equal to float rounding (≤ 2e-6 of Σ|wᵢxᵢ|).
/// </summary>
internal static unsafe class KernelAgreement
{
    public static int Run(TextWriter log)
    {
        int failures = 0;
        var rng = new Random(12345);
        failures += CheckHalfRows(log, rng);
        foreach (var dot in new[] { TensorType.Q8_0, TensorType.Q8_1, TensorType.Q8_K, TensorType.F16, TensorType.BF16 })
            failures += CheckActivation(log, dot, rng);
        foreach (var type in QuantRegistry.WeightTypes)
            failures += CheckWeightType(log, type, rng);
        using var pool = new ComputeThreadPool(2);
        foreach (var type in QuantRegistry.WeightTypes)
            failures += CheckMatMul(log, pool, type, rng);
        return failures;
    }

    private static int CheckHalfRows(TextWriter log, Random rng)
    {
        const int n = 1000;
        var halves = new ushort[n];
        for (int i = 0; i < n; i++) halves[i] = (ushort)rng.Next(65536);
        var f = new float[n];
        int failures = 0;
        fixed (ushort* h = halves)
        fixed (float* pf = f)
        {
            Fp16.ToFloatRow(h, pf, n);
            for (int i = 0; i < n; i++)
            {
                float expected = Fp16.ToFloat(halves[i]);
                if (!(float.IsNaN(expected) ? float.IsNaN(f[i]) : BitConverter.SingleToUInt32Bits(expected) == BitConverter.SingleToUInt32Bits(f[i])))
                {
                    log.WriteLine($"FAIL Fp16.ToFloatRow: half 0x{halves[i]:X4} → {f[i]:R}, scalar {expected:R}");
                    failures++;
                }
            }
            Bf16.ToFloatRow(h, pf, n);
            for (int i = 0; i < n; i++)
                if (BitConverter.SingleToUInt32Bits(Bf16.ToFloat(halves[i])) != BitConverter.SingleToUInt32Bits(f[i]))
                {
                    log.WriteLine($"FAIL Bf16.ToFloatRow: 0x{halves[i]:X4}");
                    failures++;
                }
        }
        log.WriteLine($"{(failures == 0 ? "ok  " : "FAIL")} half/bfloat16 rows");
        return failures;
    }

    private static int CheckActivation(TextWriter log, TensorType dot, Random rng)
    {
        int failures = 0;
        foreach (int n in new[] { 256, 768, 4864 })
        {
            float[] x = QuantTestData.RandomActivations(n, rng);
            x[0] = 127f; x[1] = 2.5f; x[2] = -3.5f; x[3] = 0.5f;
            long bytes = TensorTypeInfo.RowBytes(dot, n);
            var a = new byte[bytes];
            var b = new byte[bytes];
            fixed (float* px = x)
            fixed (byte* pa = a, pb = b)
            {
                QuantRegistry.Activation(dot).QuantizeRow(px, pa, n);
                QuantRegistry.ScalarActivation(dot).QuantizeRow(px, pb, n);
            }
            if (!a.AsSpan().SequenceEqual(b))
            {
                log.WriteLine($"FAIL activation {dot} n={n}: encodings differ");
                failures++;
            }
        }
        log.WriteLine($"{(failures == 0 ? "ok  " : "FAIL")} activation {dot}");
        return failures;
    }

    private static int CheckWeightType(TextWriter log, TensorType type, Random rng)
    {
        var best = QuantRegistry.Kernels(type);
        var scalar = QuantRegistry.ScalarKernels(type);
        int failures = 0;
        double worst = 0;
        foreach (int n in QuantTestData.Lengths(type))
        {
            byte[] w = QuantTestData.RandomRow(type, n, rng);
            float[] xf = QuantTestData.RandomActivations(n, rng);
            var x = new byte[QuantRegistry.ActivationRowBytes(scalar, n)];
            var xBest = new byte[QuantRegistry.ActivationRowBytes(best, n)];
            var d1 = new float[n];
            var d2 = new float[n];
            fixed (byte* pw = w, px = x, pxb = xBest)
            fixed (float* pxf = xf, p1 = d1, p2 = d2)
            {
                QuantRegistry.ActivationQuantizerFor(scalar).QuantizeRow(pxf, px, n);
                QuantRegistry.ActivationQuantizerFor(best).QuantizeRow(pxf, pxb, n);
                if (type != TensorType.F32)
                {
                    best.Dequantize(pw, p1, n);
                    scalar.Dequantize(pw, p2, n);
                    for (int i = 0; i < n; i++)
                        if (BitConverter.SingleToUInt32Bits(d1[i]) != BitConverter.SingleToUInt32Bits(d2[i]))
                        {
                            log.WriteLine($"FAIL {type} dequantize n={n} element {i}: {d1[i]:R} vs scalar {d2[i]:R}");
                            failures++;
                            break;
                        }
                }
                else Buffer.BlockCopy(w, 0, d2, 0, w.Length);
                float got = best.VecDot(n, pw, pxb);
                float expected = scalar.VecDot(n, pw, px);
                double magnitude = 0;
                for (int i = 0; i < n; i++) magnitude += Math.Abs((double)d2[i] * xf[i]);
                double error = Math.Abs(got - expected) / (magnitude + 1e-30);
                worst = Math.Max(worst, error);
                if (!(error <= 2e-6))
                {
                    log.WriteLine($"FAIL {type} vec_dot n={n}: {got:R} vs scalar {expected:R} (Σ|wx| ≈ {magnitude:G4})");
                    failures++;
                }
            }
        }
        log.WriteLine($"{(failures == 0 ? "ok  " : "FAIL")} {type}: dequantize identical, vec_dot worst error {worst:G3} of Σ|wx|");
        return failures;
    }

    /// <summary>MatMul with the dispatched kernels (prefill tiles included) against MatMul with the scalar table.</summary>
    private static int CheckMatMul(TextWriter log, ComputeThreadPool pool, TensorType type, Random rng)
    {
        var best = QuantRegistry.Kernels(type);
        var scalar = QuantRegistry.ScalarKernels(type);
        // Float types: more than one 1024-column F16 panel and a tail that is not a multiple of 16.
        // 32-element blocks: 35 blocks, odd (the 4 × 4 tiles pair blocks) and more than one 32-block K-chunk of the Q4_0 packed GEMM.
        int cols = TensorTypeInfo.BlockElements(type) switch { 256 => 768, 32 => 1120, _ => 1100 };
        const int rows = 37;
        int failures = 0;
        double worst = 0;
        long rowBytes = TensorTypeInfo.RowBytes(type, cols);
        var w = new byte[rowBytes * rows];
        for (int r = 0; r < rows; r++) QuantTestData.RandomRow(type, cols, rng).CopyTo(w, r * rowBytes);
        var wf = new float[rows * cols];
        foreach (int tokens in new[] { 1, 3, 6, 9, 21, 40 }) // 40: F32/F16/BF16 take the packed GEMM
        {
            float[] x = QuantTestData.RandomActivations(cols * tokens, rng);
            var y1 = new float[rows * tokens];
            var y2 = new float[rows * tokens];
            var scratch = new byte[Math.Max(64, MatMul.ScratchBytes(type, cols, tokens))];
            fixed (byte* pw = w, ps = scratch)
            fixed (float* px = x, p1 = y1, p2 = y2, pwf = wf)
            {
                var matrix = new WeightMatrix(pw, type, rows, cols);
                MatMul.Compute(pool, matrix, best, px, tokens, p1, ps);
                MatMul.Compute(pool, matrix, scalar, px, tokens, p2, ps);
                if (type == TensorType.F32) Buffer.MemoryCopy(pw, pwf, rows * cols * 4L, rows * cols * 4L);
                else for (int r = 0; r < rows; r++) scalar.Dequantize(pw + r * rowBytes, pwf + r * cols, cols);
                // The packed GEMM keeps activations in F32 where VecDot rounds them to F16 / BF16: compare it with exact math.
                bool packed = best.UsePackedGemm && tokens >= MatMul.PackedGemmMinTokens;
                for (int t = 0; t < tokens; t++)
                    for (int r = 0; r < rows; r++)
                    {
                        double magnitude = 0, exact = 0;
                        for (int i = 0; i < cols; i++)
                        {
                            double product = (double)pwf[r * cols + i] * px[t * cols + i];
                            magnitude += Math.Abs(product);
                            exact += product;
                        }
                        double reference = packed ? exact : p2[t * rows + r];
                        double error = Math.Abs(p1[t * rows + r] - reference) / (magnitude + 1e-30);
                        worst = Math.Max(worst, error);
                        if (!(error <= 2e-6))
                        {
                            log.WriteLine($"FAIL {type} mat-mul {tokens} tokens, y[{t},{r}] = {p1[t * rows + r]:R} vs {(packed ? "exact" : "scalar")} {reference:R}");
                            failures++;
                        }
                    }
            }
        }
        log.WriteLine($"{(failures == 0 ? "ok  " : "FAIL")} {type} mat-mul{(best.MatMulTile != null ? " (prefill tile)" : "")}: worst error {worst:G3} of Σ|wx|");
        return failures;
    }
}
