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
}
