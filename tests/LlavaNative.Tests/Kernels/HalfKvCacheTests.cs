using LlavaNative.Kernels.Cpu;
using LlavaNative.Kernels.Cpu.Ops;
using LlavaNative.Kernels.Cpu.Quant;
using LlavaNative.Kernels.Tensors;
using LlavaNative.Model.Language;
using LlavaNative.TestSupport;
using Xunit;
using Xunit.Abstractions;

namespace LlavaNative.Tests.Kernels;

/// <summary>
/// The F16 KV cache on the CPU: the F32 · F16 row kernels (<see cref="HalfRows"/>, SIMD vs their scalar references on
/// every length 0…300 and on zeros, subnormals and large values), attention on an F16 cache (SIMD vs
/// <see cref="Attention.ComputeScalar"/>, and vs the F32 kernel fed the same rounded values), and the decoder with
/// <see cref="KvCacheType.F16"/> (the cache holds exactly the RNE halves of what the F32 cache holds where the inputs
/// agree; logits near the F32 cache's).
/// </summary>
public sealed unsafe class HalfKvCacheTests(ITestOutputHelper output)
{
    private static float[] RandomFloats(Random r, int n, float scale = 1f)
    {
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)(r.NextDouble() * 2 - 1) * scale;
        return x;
    }

    private static ushort[] Halves(float[] x) => x.Select(Fp16.FromFloat).ToArray();

    /// <summary>Random halves with a sprinkling of ±0, subnormals (below 2⁻¹⁴) and values near the F16 maximum.</summary>
    private static ushort[] AwkwardHalves(Random r, int n)
    {
        var h = new ushort[n];
        for (int i = 0; i < n; i++)
        {
            h[i] = (r.Next(8)) switch
            {
                0 => (ushort)(r.Next(2) << 15),                              // ±0
                1 => (ushort)((r.Next(2) << 15) | r.Next(1, 0x400)),         // subnormal
                2 => Fp16.FromFloat((float)(r.NextDouble() * 2 - 1) * 60000f), // large
                _ => Fp16.FromFloat((float)(r.NextDouble() * 2 - 1) * 4f),
            };
        }
        return h;
    }

    [Fact]
    public void HalfRowDotAndAxpyMatchScalarOnEveryLength()
    {
        var r = new Random(7);
        for (int n = 0; n <= 300; n++)
        {
            float[] a = RandomFloats(r, n, 2f);
            ushort[] b = AwkwardHalves(r, n);
            float[] y1 = RandomFloats(r, n), y2 = (float[])y1.Clone();
            float w = (float)r.NextDouble() - 0.5f;
            fixed (float* pa = a, p1 = y1, p2 = y2)
            fixed (ushort* pb = b)
            {
                float fast = HalfRows.Dot(pa, pb, n), scalar = HalfRows.DotScalar(pa, pb, n);
                double magnitude = 0;
                for (int i = 0; i < n; i++) magnitude += Math.Abs(a[i] * Fp16.ToFloat(b[i]));
                // float32 accumulation in another order: a few ulps of the sum of |products|.
                Assert.True(Math.Abs(fast - scalar) <= 4e-7 * magnitude * Math.Max(1, Math.Sqrt(n)) + 1e-30,
                    $"n {n}: dot {fast:R} vs scalar {scalar:R} (Σ|ab| {magnitude:G4})");
                HalfRows.Axpy(w, pb, p1, n);
                HalfRows.AxpyScalar(w, pb, p2, n);
            }
            // Both are one fused multiply-add per element (Vector FMA, MathF.FusedMultiplyAdd): bit-identical.
            for (int i = 0; i < n; i++) Assert.Equal(BitConverter.SingleToInt32Bits(y2[i]), BitConverter.SingleToInt32Bits(y1[i]));
        }
    }

    [Theory]
    [InlineData(1, 4, 2, 64, 17, true)]      // decode, GQA
    [InlineData(37, 4, 2, 32, 5, true)]      // prefill chunk after 5 cached positions
    [InlineData(9, 6, 6, 72, 0, false)]      // bidirectional
    [InlineData(130, 2, 1, 16, 0, true)]     // more keys than one online-softmax block
    [InlineData(3, 2, 2, 13, 200, true)]     // odd head dim: scalar tails in every row
    public void HalfCacheAttentionMatchesScalarReference(int tokens, int heads, int kvHeads, int headDim, int startPos, bool causal)
    {
        int keys = startPos + tokens;
        int kvStride = kvHeads * headDim;
        var r = new Random(tokens * 31 + heads + headDim);
        var q = RandomFloats(r, tokens * heads * headDim, 2f);
        ushort[] k = Halves(RandomFloats(r, keys * kvStride, 2f)), v = Halves(RandomFloats(r, keys * kvStride));
        float[] kWide = k.Select(Fp16.ToFloat).ToArray(), vWide = v.Select(Fp16.ToFloat).ToArray();
        var fast = new float[tokens * heads * headDim];
        var scalar = new float[fast.Length];
        var wide = new float[fast.Length];
        using var pool = new ComputeThreadPool(2);
        fixed (float* pq = q, pkw = kWide, pvw = vWide, p1 = fast, p2 = scalar, p3 = wide)
        fixed (ushort* pk = k, pv = v)
        {
            var problem = new Attention.Problem
            {
                Q = pq, KHalf = pk, VHalf = pv, Output = p1, Tokens = tokens, Heads = heads, KvHeads = kvHeads, HeadDim = headDim,
                KvStride = kvStride, StartPos = startPos, KeyCount = keys, Causal = causal, Scale = 1f / MathF.Sqrt(headDim),
            };
            Attention.Compute(pool, problem);
            problem.Output = p2;
            Attention.ComputeScalar(problem);
            // The F32 kernel on the widened halves: the same values, so the same outputs up to float32 summation order.
            problem.Output = p3;
            problem.KHalf = null;
            problem.VHalf = null;
            problem.K = pkw;
            problem.V = pvw;
            Attention.Compute(pool, problem);
        }
        double worst = 0;
        for (int i = 0; i < fast.Length; i++)
        {
            worst = Math.Max(worst, Math.Abs(fast[i] - scalar[i]));
            Assert.Equal(scalar[i], fast[i], 1e-5f);
            Assert.Equal(wide[i], fast[i], 1e-5f);
        }
        output.WriteLine($"max |SIMD − scalar| {worst:0.0e0}");
    }

    [Fact]
    public void AttentionRejectsAMixedOrMissingCache()
    {
        var problem = new Attention.Problem { Tokens = 1, Heads = 1, KvHeads = 1, HeadDim = 4, KvStride = 4, Causal = true, Scale = 1 };
        using var pool = new ComputeThreadPool(1);
        var e = Assert.Throws<ArgumentException>(() => Attention.Compute(pool, problem));
        Assert.Contains("either an F32 cache", e.Message);
        float x = 0;
        ushort h = 0;
        problem.K = &x;
        problem.VHalf = &h;
        Assert.Throws<ArgumentException>(() => Attention.Compute(pool, problem));
    }

    /// <summary>
    /// The decoder with an F16 cache against the same decoder with an F32 cache (random tiny llama / qwen2, 12-token prompt
    /// in batches of 5, 5, 2, then 6 decode steps). Layer 0's K and V rows depend on nothing the cache type changes, so
    /// the F16 cache must hold exactly their round-to-nearest-even halves (bit for bit, every position); the logits
    /// differ by the rounding of K and V (relative 2⁻¹¹) carried through 2 layers: measured max |Δ| is printed, the bound
    /// is 2e-2 on logits of std ≈ 3, and the greedy tokens are equal where the F32 top-2 margin exceeds it.
    /// </summary>
    [Theory]
    [InlineData(RandomModelArchitecture.Llama)]
    [InlineData(RandomModelArchitecture.Qwen2)]
    public void DecoderWithHalfCacheStoresRoundedRowsAndStaysNearF32(RandomModelArchitecture architecture)
    {
        using var model = DecoderModel.LoadGguf(RandomModels.GetPath(RandomModelSpec.Tiny(architecture, RandomModelVocabulary.Synthetic)));
        var c = model.Config;
        using var pool = new ComputeThreadPool(2);
        using var f32 = model.CreateState(32, maxBatch: 5, pool: pool);
        using var f16 = model.CreateState(32, maxBatch: 5, pool: pool, cacheType: KvCacheType.F16);
        Assert.Equal(KvCacheType.F16, f16.CacheType);
        Assert.Equal(2L * c.Layers * 32 * c.KvDim * 4, f32.KvCacheBytes);
        Assert.Equal(f32.KvCacheBytes / 2, f16.KvCacheBytes);

        var r = new Random(3);
        int[] prompt = Enumerable.Range(0, 12).Select(_ => r.Next(c.VocabSize)).ToArray();
        var want = new float[prompt.Length * c.VocabSize];
        var got = new float[want.Length];
        model.Forward(f32, prompt, LogitsMode.All, want);
        model.Forward(f16, prompt, LogitsMode.All, got);
        for (long i = 0; i < (long)prompt.Length * c.KvDim; i++)
        {
            Assert.Equal(Fp16.FromFloat(f32.KeyCache[0][i]), f16.KeyCacheHalf[0][i]);
            Assert.Equal(Fp16.FromFloat(f32.ValueCache[0][i]), f16.ValueCacheHalf[0][i]);
        }
        double worst = MaxAbs(got, want);
        int next = ArgMax(want.AsSpan((prompt.Length - 1) * c.VocabSize));
        for (int step = 0; step < 6; step++)
        {
            float[] a = model.Forward(f32, [next]).ToArray();
            float[] b = model.Forward(f16, [next]).ToArray();
            double d = MaxAbs(b, a);
            worst = Math.Max(worst, d);
            if (Margin(a) > 2 * 2e-2) Assert.Equal(ArgMax(a), ArgMax(b));
            next = ArgMax(a);
        }
        output.WriteLine($"{architecture}: max |logit(F16 cache) − logit(F32 cache)| {worst:0.0e0}");
        Assert.True(worst < 2e-2, $"max |Δ| {worst}");
        Assert.True(worst > 0, "the F16 cache changed nothing: is it used?");
    }

    private static double MaxAbs(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs(a[i] - b[i]));
        return m;
    }

    private static int ArgMax(ReadOnlySpan<float> x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }

    private static double Margin(float[] x)
    {
        int best = ArgMax(x);
        float second = float.NegativeInfinity;
        for (int i = 0; i < x.Length; i++) if (i != best && x[i] > second) second = x[i];
        return x[best] - second;
    }
}
