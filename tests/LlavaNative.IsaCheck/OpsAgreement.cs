using LlavaNative.Kernels.Cpu;
using LlavaNative.Kernels.Cpu.Ops;
using LlavaNative.Kernels.Cpu.Quant;

namespace LlavaNative.IsaCheck;

/// <summary>
/// The float kernels of the decoder (dot, RMSNorm, SiLU-mul, add, axpy, attention) against their scalar
/// references on random inputs of every length 0..257, so each vector width and every tail is exercised.
/// </summary>
internal static unsafe class OpsAgreement
{
    public static int Run(TextWriter log)
    {
        var rng = new Random(777);
        int failures = 0;
        for (int n = 0; n <= 257; n++)
        {
            float[] a = Random(rng, n, 2f), b = Random(rng, n, 2f), w = Random(rng, n, 1f);
            float[] y1 = new float[n], y2 = new float[n];
            fixed (float* pa = a, pb = b, pw = w, p1 = y1, p2 = y2)
            {
                float dot = FloatDot.Dot(pa, pb, n), dotRef = FloatDot.DotScalar(pa, pb, n);
                double magnitude = 0;
                for (int i = 0; i < n; i++) magnitude += Math.Abs(a[i] * b[i]);
                if (Math.Abs(dot - dotRef) > 1e-6 * (magnitude + 1)) failures += Fail(log, $"FloatDot n={n}: {dot} vs {dotRef}");

                if (n > 0)
                {
                    RmsNorm.Apply(pa, pw, p1, n, 1e-6f);
                    RmsNorm.ApplyScalar(pa, pw, p2, n, 1e-6f);
                    failures += Compare(log, "RmsNorm", n, y1, y2, 2e-6f);
                }

                a.CopyTo(y1, 0); a.CopyTo(y2, 0);
                Elementwise.SiluMul(p1, pb, n);
                Elementwise.SiluMulScalar(p2, pb, n);
                failures += Compare(log, "SiluMul", n, y1, y2, 2e-6f);

                Elementwise.Add(pa, pb, p1, n);
                for (int i = 0; i < n; i++) y2[i] = a[i] + b[i];
                failures += Compare(log, "Add", n, y1, y2, 0f);

                a.CopyTo(y1, 0); a.CopyTo(y2, 0);
                Elementwise.Axpy(0.75f, pb, p1, n);
                for (int i = 0; i < n; i++) y2[i] = MathF.FusedMultiplyAdd(0.75f, b[i], y2[i]);
                failures += Compare(log, "Axpy", n, y1, y2, 1e-6f);
            }
        }
        failures += CheckAttention(log, rng);
        log.WriteLine($"{(failures == 0 ? "ok  " : "FAIL")} float ops (dot, rms_norm, silu_mul, add, axpy, attention on F32 and F16 caches), lengths 0..257");
        return failures;
    }

    private static int CheckAttention(TextWriter log, Random rng)
    {
        int failures = 0;
        using var pool = new ComputeThreadPool(2);
        foreach (var (tokens, heads, kvHeads, headDim, start) in new[] { (1, 14, 2, 64, 200), (19, 4, 2, 24, 3), (5, 3, 3, 72, 0) })
        {
            int keys = start + tokens, stride = kvHeads * headDim;
            float[] q = Random(rng, tokens * heads * headDim, 2f), k = Random(rng, keys * stride, 2f), v = Random(rng, keys * stride, 1f);
            float[] o1 = new float[q.Length], o2 = new float[q.Length];
            fixed (float* pq = q, pk = k, pv = v, p1 = o1, p2 = o2)
            {
                var p = new Attention.Problem
                {
                    Q = pq, K = pk, V = pv, Output = p1, Tokens = tokens, Heads = heads, KvHeads = kvHeads, HeadDim = headDim,
                    KvStride = stride, StartPos = start, KeyCount = keys, Causal = true, Scale = 1f / MathF.Sqrt(headDim),
                };
                Attention.Compute(pool, p);
                p.Output = p2;
                Attention.ComputeScalar(p);
            }
            failures += Compare(log, $"Attention t={tokens} h={heads}/{kvHeads} d={headDim}", o1.Length, o1, o2, 1e-5f);

            // The same problem on an F16 cache (HalfRows widening on this ISA vs the scalar Fp16.ToFloat reference).
            ushort[] kh = k.Select(Fp16.FromFloat).ToArray(), vh = v.Select(Fp16.FromFloat).ToArray();
            fixed (float* pq = q, p1 = o1, p2 = o2)
            fixed (ushort* pk = kh, pv = vh)
            {
                var p = new Attention.Problem
                {
                    Q = pq, KHalf = pk, VHalf = pv, Output = p1, Tokens = tokens, Heads = heads, KvHeads = kvHeads, HeadDim = headDim,
                    KvStride = stride, StartPos = start, KeyCount = keys, Causal = true, Scale = 1f / MathF.Sqrt(headDim),
                };
                Attention.Compute(pool, p);
                p.Output = p2;
                Attention.ComputeScalar(p);
            }
            failures += Compare(log, $"Attention F16 cache t={tokens} h={heads}/{kvHeads} d={headDim}", o1.Length, o1, o2, 1e-5f);
        }
        return failures;
    }

    private static float[] Random(Random rng, int n, float scale)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
        return a;
    }

    private static int Compare(TextWriter log, string what, int n, float[] got, float[] expected, float tolerance)
    {
        for (int i = 0; i < n; i++)
            if (!(Math.Abs(got[i] - expected[i]) <= tolerance * Math.Max(1f, Math.Abs(expected[i]))))
                return Fail(log, $"{what} n={n} element {i}: {got[i]:R} vs scalar {expected[i]:R}");
        return 0;
    }

    private static int Fail(TextWriter log, string message)
    {
        log.WriteLine("FAIL " + message);
        return 1;
    }
}
