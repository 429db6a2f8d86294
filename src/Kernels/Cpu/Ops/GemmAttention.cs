using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace LlavaNative.Kernels.Cpu.Ops;

/// <summary>
/// Bidirectional multi-head attention (vision towers: every query sees every key, no KV cache) as two packed GEMMs
/// per head and block of queries, instead of <see cref="Attention"/>'s one dot product per (query, key):
/// <code>
/// per head h (once):      K_h packed as GEMM "weights" [N keys × d_head]; V_h packed K-major (keys are the K dimension)
/// per (h, query block):   S = Q_blk · K_hᵀ              [qb, N]
///                         E = e^(scale · (S − rowmax))    row by row, vectorized (SoftmaxExp), row sums kept
///                         O_blk = (E · V_h) / rowsum    [qb, d_head], written into the heads-concatenated output
/// </code>
/// The (head, query block) items are spread over the pool; each participant works in its own slot of the scratch
/// (S, packed Q and packed P of one block: ~0.3 MB at 729 keys), claimed for the length of a chunk.
/// </summary>
public static unsafe class GemmAttention
{
    /// <summary>Queries per work item: four microkernel tiles of tokens.</summary>
    private static int QueryBlock => 4 * PackedGemm.TileTokens;

    private const int HeaderFloats = 16;

    /// <summary>Scratch floats <see cref="Compute"/> needs for this geometry on a pool of <paramref name="threads"/> participants.</summary>
    public static long ScratchFloats(int tokens, int heads, int headDim, int threads)
        => HeaderFloats + heads * (PackedKeysFloats(tokens, headDim) + PackedValuesFloats(tokens, headDim)) + threads * SlotFloats(tokens, headDim);

    private static long Align(long floats) => (floats + 15) & ~15L;
    private static long PackedKeysFloats(int tokens, int headDim) => Align(PackedGemm.PackedWeightFloats(tokens, headDim));
    private static long PackedValuesFloats(int tokens, int headDim) => Align(PackedGemm.PackedWeightFloats(headDim, tokens));
    private static int ScoreStride(int tokens) => (tokens + 15) & ~15;
    private static long SlotFloats(int tokens, int headDim)
        => Align((long)QueryBlock * ScoreStride(tokens)) + Align(PackedGemm.PackedActivationFloats(QueryBlock, headDim)) + Align(PackedGemm.PackedActivationFloats(QueryBlock, tokens));

    /// <summary>
    /// Bidirectional attention of <paramref name="problem"/> (Causal false, KvHeads = Heads, KeyCount = Tokens: the
    /// keys are the queries' own tokens). <paramref name="scratch"/>: <see cref="ScratchFloats"/> floats, 64-byte aligned.
    /// </summary>
    public static void Compute(ComputeThreadPool pool, in Attention.Problem problem, float* scratch)
    {
        if (problem.Causal || problem.KvHeads != problem.Heads || problem.KeyCount != problem.Tokens)
            throw new ArgumentException("GEMM attention is bidirectional self-attention: not causal, one KV head per head, keys = the queries' tokens");
        int n = problem.Tokens, hd = problem.HeadDim;
        float* packedHeads = scratch + HeaderFloats;
        *(int*)scratch = 0; // slot-claim mask
        var pack = new PackHeadsJob { P = problem, Packed = packedHeads };
        pool.Run(ref pack, 2 * problem.Heads);
        int blocks = (n + QueryBlock - 1) / QueryBlock;
        var job = new BlockJob
        {
            P = problem, Packed = packedHeads, SlotMask = (int*)scratch, Blocks = blocks, Slots = pool.ThreadCount,
            SlotBase = packedHeads + problem.Heads * (PackedKeysFloats(n, hd) + PackedValuesFloats(n, hd)),
        };
        pool.Run(ref job, problem.Heads * blocks);
    }

    /// <summary>Item 2h: pack K_h; item 2h + 1: pack V_h.</summary>
    private struct PackHeadsJob : IRangeJob
    {
        public Attention.Problem P;
        public float* Packed;

        public void Execute(int start, int end)
        {
            int n = P.Tokens, hd = P.HeadDim;
            long perHead = PackedKeysFloats(n, hd) + PackedValuesFloats(n, hd);
            for (int item = start; item < end; item++)
            {
                int h = item >> 1;
                float* dst = Packed + h * perHead;
                if ((item & 1) == 0) PackedGemm.PackWeightsRowMajor(P.K + h * hd, P.KvStride, n, hd, dst);
                else PackedGemm.PackWeightsKMajor(P.V + h * hd, P.KvStride, hd, n, dst + PackedKeysFloats(n, hd));
            }
        }
    }

    private struct BlockJob : IRangeJob
    {
        public Attention.Problem P;
        public float* Packed, SlotBase;
        public int* SlotMask;
        public int Blocks, Slots;

        public void Execute(int start, int end)
        {
            int slot = Claim(SlotMask, Slots);
            try
            {
                int n = P.Tokens, hd = P.HeadDim, qb = QueryBlock, ldS = ScoreStride(n);
                long rowStride = (long)P.Heads * hd;
                long perHead = PackedKeysFloats(n, hd) + PackedValuesFloats(n, hd);
                float* scores = SlotBase + slot * SlotFloats(n, hd);                 // [qb, ldS]
                float* packedQ = scores + Align((long)qb * ldS);
                float* packedP = packedQ + Align(PackedGemm.PackedActivationFloats(qb, hd));
                float* inverseSums = stackalloc float[qb];
                for (int item = start; item < end; item++)
                {
                    int h = item / Blocks, t0 = (item % Blocks) * qb;
                    int rows = Math.Min(qb, n - t0);
                    float* keys = Packed + h * perHead, values = keys + PackedKeysFloats(n, hd);
                    PackedGemm.PackActivations(P.Q + t0 * rowStride + h * hd, rowStride, rows, hd, packedQ);
                    PackedGemm.MultiplyPacked(packedQ, rows, keys, n, hd, scores, ldS);
                    // Unnormalized weights e^(s − max) go through P·V; each output row is divided by its sum after
                    // (hd floats per row instead of a third pass over the n scores).
                    for (int i = 0; i < rows; i++) inverseSums[i] = 1f / ExpRow(scores + i * ldS, n, P.Scale);
                    PackedGemm.PackActivations(scores, ldS, rows, n, packedP);
                    float* output = P.Output + t0 * rowStride + h * hd;
                    PackedGemm.MultiplyPacked(packedP, rows, values, hd, n, output, rowStride);
                    for (int i = 0; i < rows; i++) ScaleRow(output + i * rowStride, hd, inverseSums[i]);
                }
            }
            finally
            {
                Interlocked.And(ref *SlotMask, ~(1 << slot));
            }
        }
    }

    /// <summary>A free scratch slot: at most <paramref name="slots"/> chunks run at once, one per pool participant.</summary>
    private static int Claim(int* mask, int slots)
    {
        while (true)
        {
            int m = Volatile.Read(ref *mask);
            int slot = BitOperations.TrailingZeroCount(~m);
            if (slot < slots && Interlocked.CompareExchange(ref *mask, m | (1 << slot), m) == m) return slot;
            Thread.SpinWait(1);
        }
    }

    /// <summary>row ← e^(scale · (row − max row)) over <paramref name="n"/> floats; returns their sum (≥ 1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float ExpRow(float* row, int n, float scale)
    {
        int i = 0;
        float max = float.NegativeInfinity;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            var m = Vector512.Create(float.NegativeInfinity);
            for (; i + 16 <= n; i += 16) m = Vector512.Max(m, Vector512.Load(row + i));
            for (int j = 0; j < 16; j++) max = Math.Max(max, m.GetElement(j));
        }
        else if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            var m = Vector256.Create(float.NegativeInfinity);
            for (; i + 8 <= n; i += 8) m = Vector256.Max(m, Vector256.Load(row + i));
            for (int j = 0; j < 8; j++) max = Math.Max(max, m.GetElement(j));
        }
        for (; i < n; i++) max = Math.Max(max, row[i]);

        float sum = 0;
        i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var vs = Vector512.Create(scale);
            var vm = Vector512.Create(max * scale);
            var acc = Vector512<float>.Zero;
            for (; i + 16 <= n; i += 16)
            {
                var e = SoftmaxExp.Exp(Vector512.FusedMultiplyAdd(Vector512.Load(row + i), vs, -vm));
                e.Store(row + i);
                acc += e;
            }
            sum = Vector512.Sum(acc);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var vs = Vector256.Create(scale);
            var vm = Vector256.Create(max * scale);
            var acc = Vector256<float>.Zero;
            for (; i + 8 <= n; i += 8)
            {
                var e = SoftmaxExp.Exp(Vector256.FusedMultiplyAdd(Vector256.Load(row + i), vs, -vm));
                e.Store(row + i);
                acc += e;
            }
            sum = Vector256.Sum(acc);
        }
        for (; i < n; i++)
        {
            float e = MathF.Exp(MathF.FusedMultiplyAdd(row[i], scale, -max * scale));
            row[i] = e;
            sum += e;
        }
        return sum;
    }

    /// <summary>row[0..n) ×= <paramref name="factor"/>.</summary>
    internal static void ScaleRow(float* row, int n, float factor)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i + 16 <= n; i += 16) (Vector512.Load(row + i) * factor).Store(row + i);
        else if (Vector256.IsHardwareAccelerated)
            for (; i + 8 <= n; i += 8) (Vector256.Load(row + i) * factor).Store(row + i);
        for (; i < n; i++) row[i] *= factor;
    }
}
