namespace LlavaNative.Kernels.Cpu.Ops;

/// <summary>
/// Scaled dot-product attention of a batch of query tokens against a KV cache, with grouped-query heads
/// (<c>nHeads / nKvHeads</c> query heads share one KV head). Causal: the query at cache position p sees keys
/// 0…p. Bidirectional (vision towers): every query sees all keys. Softmax is computed online over blocks of
/// keys (running max and sum, as flash attention does), so no [n_ctx] score buffer is needed per thread.
/// The cache is F32 (<see cref="Problem.K"/>, <see cref="Problem.V"/>) or F16 (<see cref="Problem.KHalf"/>,
/// <see cref="Problem.VHalf"/>, an F16 KV cache): the same loop either way, with the rows widened to F32 as they
/// are read (<see cref="HalfRows"/>); queries, scores, softmax and accumulators stay F32.
/// </summary>
public static unsafe class Attention
{
    private const int KeyBlock = 128;

    /// <summary>Geometry and pointers of one attention call.</summary>
    public struct Problem
    {
        /// <summary>Queries [nTokens, nHeads·headDim].</summary>
        public float* Q;
        /// <summary>Keys [nKeys, kvStride] (row j = position j), head g at column g·headDim.</summary>
        public float* K;
        /// <summary>Values laid out like <see cref="K"/>.</summary>
        public float* V;
        /// <summary>An F16 cache instead of <see cref="K"/> (which is then null): IEEE halves, the same layout.</summary>
        public ushort* KHalf;
        /// <summary>Values of an F16 cache, laid out like <see cref="KHalf"/>.</summary>
        public ushort* VHalf;
        /// <summary>Output [nTokens, nHeads·headDim].</summary>
        public float* Output;
        public int Tokens, Heads, KvHeads, HeadDim;
        /// <summary>Floats between consecutive key/value rows.</summary>
        public int KvStride;
        /// <summary>Cache position of query 0; with <see cref="Causal"/> query t sees keys 0…StartPos+t.</summary>
        public int StartPos;
        /// <summary>Total keys visible when not causal.</summary>
        public int KeyCount;
        public bool Causal;
        public float Scale;
    }

    public static void Compute(ComputeThreadPool pool, in Problem problem)
    {
        CheckCache(in problem);
        if (problem.KHalf != null)
        {
            var half = new Job<HalfCache> { P = problem };
            pool.Run(ref half, problem.Tokens * problem.Heads);
            return;
        }
        var job = new Job<FloatCache> { P = problem };
        pool.Run(ref job, problem.Tokens * problem.Heads);
    }

    private static void CheckCache(in Problem p)
    {
        bool f32 = p.K != null && p.V != null, f16 = p.KHalf != null && p.VHalf != null;
        if (f32 == f16 || (f32 && (p.KHalf != null || p.VHalf != null)) || (f16 && (p.K != null || p.V != null)))
            throw new ArgumentException("attention needs either an F32 cache (K and V) or an F16 one (KHalf and VHalf), not both or a mix");
    }

    /// <summary>How one cache row is read: the dot product with a query and the weighted add into the accumulator.</summary>
    private interface ICacheRows
    {
        static abstract float Dot(in Problem p, float* q, long offset, int n);
        static abstract void Axpy(in Problem p, float w, long offset, float* acc, int n);
    }

    private struct FloatCache : ICacheRows
    {
        public static float Dot(in Problem p, float* q, long offset, int n) => FloatDot.Dot(q, p.K + offset, n);
        public static void Axpy(in Problem p, float w, long offset, float* acc, int n) => Elementwise.Axpy(w, p.V + offset, acc, n);
    }

    private struct HalfCache : ICacheRows
    {
        public static float Dot(in Problem p, float* q, long offset, int n) => HalfRows.Dot(q, p.KHalf + offset, n);
        public static void Axpy(in Problem p, float w, long offset, float* acc, int n) => HalfRows.Axpy(w, p.VHalf + offset, acc, n);
    }

    private struct Job<TCache> : IRangeJob where TCache : struct, ICacheRows
    {
        public Problem P;

        public void Execute(int start, int end)
        {
            float* scores = stackalloc float[KeyBlock];
            float* acc = stackalloc float[P.HeadDim];
            for (int item = start; item < end; item++)
            {
                int t = item / P.Heads, h = item % P.Heads;
                Head<TCache>(in P, t, h, scores, acc);
            }
        }
    }

    private static void Head<TCache>(in Problem p, int t, int h, float* scores, float* acc) where TCache : struct, ICacheRows
    {
        int hd = p.HeadDim;
        int kvHead = h / (p.Heads / p.KvHeads);
        float* q = p.Q + (long)t * p.Heads * hd + (long)h * hd;
        long headOffset = (long)kvHead * hd; // of this head's columns in every cache row
        int nKeys = p.Causal ? p.StartPos + t + 1 : p.KeyCount;

        float max = float.NegativeInfinity, sum = 0;
        new Span<float>(acc, hd).Clear();
        for (int j0 = 0; j0 < nKeys; j0 += KeyBlock)
        {
            int nb = Math.Min(KeyBlock, nKeys - j0);
            float blockMax = float.NegativeInfinity;
            for (int j = 0; j < nb; j++)
            {
                float s = TCache.Dot(in p, q, headOffset + (long)(j0 + j) * p.KvStride, hd) * p.Scale;
                scores[j] = s;
                if (s > blockMax) blockMax = s;
            }
            if (blockMax > max)
            {
                float correction = MathF.Exp(max - blockMax); // 0 on the first block
                Elementwise.Scale(acc, correction, hd);
                sum *= correction;
                max = blockMax;
            }
            for (int j = 0; j < nb; j++)
            {
                float w = MathF.Exp(scores[j] - max);
                sum += w;
                TCache.Axpy(in p, w, headOffset + (long)(j0 + j) * p.KvStride, acc, hd);
            }
        }
        float* o = p.Output + (long)t * p.Heads * hd + (long)h * hd;
        float inv = 1.0f / sum;
        for (int i = 0; i < hd; i++) o[i] = acc[i] * inv;
    }

    private static float CacheValue(float* f32, ushort* f16, long at) => f16 != null ? Quant.Fp16.ToFloat(f16[at]) : f32[at];

    /// <summary>
    /// Scalar reference: explicit scores, max-subtracted softmax in double, weighted sum. An F16 cache is read with
    /// the scalar <see cref="Quant.Fp16.ToFloat"/>, value by value.
    /// </summary>
    public static void ComputeScalar(in Problem p)
    {
        CheckCache(in p);
        int hd = p.HeadDim;

        for (int t = 0; t < p.Tokens; t++)
        for (int h = 0; h < p.Heads; h++)
        {
            int kvHead = h / (p.Heads / p.KvHeads);
            int nKeys = p.Causal ? p.StartPos + t + 1 : p.KeyCount;
            float* q = p.Q + (long)t * p.Heads * hd + (long)h * hd;
            var s = new double[nKeys];
            double max = double.NegativeInfinity;
            for (int j = 0; j < nKeys; j++)
            {
                double d = 0;
                long k = (long)j * p.KvStride + (long)kvHead * hd;
                for (int i = 0; i < hd; i++) d += (double)q[i] * CacheValue(p.K, p.KHalf, k + i);
                s[j] = d * p.Scale;
                max = Math.Max(max, s[j]);
            }
            double total = 0;
            for (int j = 0; j < nKeys; j++) { s[j] = Math.Exp(s[j] - max); total += s[j]; }
            float* o = p.Output + (long)t * p.Heads * hd + (long)h * hd;
            for (int i = 0; i < hd; i++)
            {
                double v = 0;
                for (int j = 0; j < nKeys; j++) v += s[j] * CacheValue(p.V, p.VHalf, (long)j * p.KvStride + (long)kvHead * hd + i);
                o[i] = (float)(v / total);
            }
        }
    }
}
