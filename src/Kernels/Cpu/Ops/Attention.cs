namespace LlavaNative.Kernels.Cpu.Ops;

/// <summary>
/// Scaled dot-product attention of a batch of query tokens against a KV cache, with grouped-query heads
/// (<c>nHeads / nKvHeads</c> query heads share one KV head). Causal: the query at cache position p sees keys
/// 0…p. Bidirectional (vision towers): every query sees all keys. Softmax is computed online over blocks of
/// keys (running max and sum, as flash attention does), so no [n_ctx] score buffer is needed per thread.
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
        var job = new Job { P = problem };
        pool.Run(ref job, problem.Tokens * problem.Heads);
    }

    private struct Job : IRangeJob
    {
        public Problem P;

        public void Execute(int start, int end)
        {
            float* scores = stackalloc float[KeyBlock];
            float* acc = stackalloc float[P.HeadDim];
            for (int item = start; item < end; item++)
            {
                int t = item / P.Heads, h = item % P.Heads;
                Head(in P, t, h, scores, acc);
            }
        }
    }

    private static void Head(in Problem p, int t, int h, float* scores, float* acc)
    {
        int hd = p.HeadDim;
        int kvHead = h / (p.Heads / p.KvHeads);
        float* q = p.Q + (long)t * p.Heads * hd + (long)h * hd;
        float* kBase = p.K + (long)kvHead * hd;
        float* vBase = p.V + (long)kvHead * hd;
        int nKeys = p.Causal ? p.StartPos + t + 1 : p.KeyCount;

        float max = float.NegativeInfinity, sum = 0;
        new Span<float>(acc, hd).Clear();
        for (int j0 = 0; j0 < nKeys; j0 += KeyBlock)
        {
            int nb = Math.Min(KeyBlock, nKeys - j0);
            float blockMax = float.NegativeInfinity;
            for (int j = 0; j < nb; j++)
            {
                float s = FloatDot.Dot(q, kBase + (long)(j0 + j) * p.KvStride, hd) * p.Scale;
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
                Elementwise.Axpy(w, vBase + (long)(j0 + j) * p.KvStride, acc, hd);
            }
        }
        float* o = p.Output + (long)t * p.Heads * hd + (long)h * hd;
        float inv = 1.0f / sum;
        for (int i = 0; i < hd; i++) o[i] = acc[i] * inv;
    }

    /// <summary>Scalar reference: explicit scores, max-subtracted softmax in double, weighted sum.</summary>
    public static void ComputeScalar(in Problem p)
    {
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
                float* k = p.K + (long)j * p.KvStride + (long)kvHead * hd;
                for (int i = 0; i < hd; i++) d += (double)q[i] * k[i];
                s[j] = d * p.Scale;
                max = Math.Max(max, s[j]);
            }
            double total = 0;
            for (int j = 0; j < nKeys; j++) { s[j] = Math.Exp(s[j] - max); total += s[j]; }
            float* o = p.Output + (long)t * p.Heads * hd + (long)h * hd;
            for (int i = 0; i < hd; i++)
            {
                double v = 0;
                for (int j = 0; j < nKeys; j++) v += s[j] * p.V[(long)j * p.KvStride + (long)kvHead * hd + i];
                o[i] = (float)(v / total);
            }
        }
    }
}
