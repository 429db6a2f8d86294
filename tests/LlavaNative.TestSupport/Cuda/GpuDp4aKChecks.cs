using LlavaNative.Kernels.Cpu.Quant;
using LlavaNative.Kernels.Cuda;
using LlavaNative.Kernels.Tensors;
using LlavaNative.Model;
using LlavaNative.Model.Language;

namespace LlavaNative.TestSupport.Cuda;

/// <summary>
/// The integer K-quant products (matmul_dp4a_k.cu through <see cref="CudaOps.MatMulDp4aK"/>, <see cref="CudaOps.MatVecDp4aK"/>
/// and the Dp4a routes of MatMul / MatVec) against the CPU:
/// <list type="bullet">
/// <item>the device's Q8_K activation blocks must be the bytes of the CPU's scalar quantizer (d, 256 int8, 16 bsums),
///   on rows with an all-zero block, a block whose largest magnitude appears with both signs (the first one sets the
///   sign of the scale) and values at ±amax;</item>
/// <item>every product must equal the CPU's scalar VecDot (<see cref="QuantRegistry.ScalarKernels"/>) on those blocks
///   bit for bit (same integers, same float operations in the same order), and the CPU's SIMD VecDot (the production
///   path, which reassociates the float sums) within |Δ| ≤ 1e-6·Σ_j |w_j|·|x_j| (the magnitudes of the terms before
///   cancellation, the mins' included);</item>
/// <item>sizes off every tile and warp share: 70 rows (tile 32, 4 rows per mat-vec block), 37 and 5 tokens (off the tile;
///   below <see cref="CudaOps.Dp4aMinTokens"/> MatMul takes the mat-vec kernel per token), 1, 3, 16 and 43 (llama's
///   ffn_down) super-blocks of columns (the mat-vec takes 8 per loop step), output stride rows + 3 whose NaN padding
///   must survive;</item>
/// <item>end to end: a tiny llama with Q4_K, Q5_K and Q6_K matrices (the Q4_K_M kinds of mix) on <see cref="GpuDecoder"/>
///   with <see cref="QuantizedMatMulPath.Dp4a"/> against the CPU decoder on the same quantized weights, with the decode
///   step replayed from a captured graph compared bit for bit with direct launches.</item>
/// </list>
/// Shared by the xunit tests (host emulator, and a GPU when present) and tools/device/GpuCheck.
/// </summary>
public static unsafe class GpuDp4aKChecks
{
    private static readonly TensorType[] s_types = [TensorType.Q4_K, TensorType.Q5_K, TensorType.Q6_K];

    public static IReadOnlyList<(string Name, Func<IGpuDevice, int, GpuCheckResult> Run)> All { get; } = BuildList();

    private static List<(string Name, Func<IGpuDevice, int, GpuCheckResult> Run)> BuildList()
    {
        var list = new List<(string, Func<IGpuDevice, int, GpuCheckResult>)> { ("dp4a-k quantize rows Q8_K", QuantizeCheck) };
        foreach (var type in s_types)
        {
            string n = TensorTypeInfo.Name(type);
            list.Add(($"dp4a-k matmul {n} 256 cols 37 tokens", (d, seed) => ProductCheck(d, type, 70, 256, 37, matVec: false, seed)));
            list.Add(($"dp4a-k matmul {n} 768 cols 37 tokens", (d, seed) => ProductCheck(d, type, 70, 768, 37, matVec: false, seed)));
            list.Add(($"dp4a-k matmul {n} 768 cols 5 tokens", (d, seed) => ProductCheck(d, type, 70, 768, 5, matVec: false, seed)));
            list.Add(($"dp4a-k matvec {n} 4096 cols 37 rows", (d, seed) => ProductCheck(d, type, 37, 4096, 1, matVec: true, seed)));
            list.Add(($"dp4a-k matvec {n} 768 cols 70 rows", (d, seed) => ProductCheck(d, type, 70, 768, 1, matVec: true, seed)));
            list.Add(($"dp4a-k matvec {n} 256 cols 5 rows", (d, seed) => ProductCheck(d, type, 5, 256, 1, matVec: true, seed)));
            list.Add(($"dp4a-k matvec {n} 11008 cols 6 rows", (d, seed) => ProductCheck(d, type, 6, 11008, 1, matVec: true, seed)));
        }
        list.Add(("dp4a-k decoder llama K-quant mix", (d, seed) => Decoder(d, seed)));
        return list;
    }

    /// <summary>
    /// Activations [tokens, cols]: uniform in ±1 with every 7th value ×4; block 0 of row 0 all zero (unless it is the
    /// only block); block 1 of row 0 (when there) has its largest magnitude 5 at element 3 as −5 and at elements 5 and
    /// 200 as +5 (the scale's sign comes from the first); the last block of every row has +amax and −amax.
    /// </summary>
    private static float[] Activations(Random rng, int cols, int tokens)
    {
        var x = new float[cols * tokens];
        for (int i = 0; i < x.Length; i++) x[i] = (float)((rng.NextDouble() * 2 - 1) * (i % 7 == 0 ? 4 : 1));
        if (tokens > 1 || cols >= 512) for (int i = 0; i < 256; i++) x[i] = 0; // (a lone one-block row stays nonzero)
        if (cols >= 512) { x[256 + 3] = -5f; x[256 + 5] = 5f; x[256 + 200] = 5f; } // ties within a lane's 8 and across lanes
        for (int t = 0; t < tokens; t++)
        {
            int last = t * cols + cols - 256;
            float amax = 0;
            for (int j = 0; j < 256; j++) amax = MathF.Max(amax, MathF.Abs(x[last + j]));
            if (amax == 0) continue; // row 0 of a one-block row: the zero block
            x[last + 17] = amax;
            x[last + 100] = -amax;
        }
        return x;
    }

    /// <summary>Q8_K blocks [292 bytes: F32 d, 256 int8, 16 int16 bsums] of the CPU's scalar quantizer for each row.</summary>
    private static byte[] CpuBlocks(float[] x, int cols, int tokens)
    {
        var quantizer = ActivationQuantizers.ScalarQ8_K;
        long rowBytes = (cols / 256) * (long)ActivationQuantizers.Q8_KBlockBytes;
        var blocks = new byte[tokens * rowBytes];
        fixed (float* px = x)
        fixed (byte* pb = blocks)
            for (int t = 0; t < tokens; t++) quantizer.QuantizeRow(px + (long)t * cols, pb + t * rowBytes, cols);
        return blocks;
    }

    public static GpuCheckResult QuantizeCheck(IGpuDevice device, int seed)
    {
        const string name = "dp4a-k quantize rows Q8_K";
        var rng = new Random(seed);
        const int cols = 768, tokens = 5;
        float[] x = Activations(rng, cols, tokens);
        byte[] expected = CpuBlocks(x, cols, tokens);
        // The production (SIMD) quantizer must give the same bytes, or the bit-exact product checks would hold for
        // activations the CPU decoder never uses.
        byte[] production = new byte[expected.Length];
        var simd = QuantRegistry.Activation(TensorType.Q8_K);
        fixed (float* px = x)
        fixed (byte* pp = production)
            for (int t = 0; t < tokens; t++) simd.QuantizeRow(px + t * cols, pp + t * (cols / 256) * 292L, cols);

        using var ops = new CudaOps(device);
        using var dx = device.Upload<float>(x);
        using var dk = device.Allocate(expected.Length);
        device.Fill(dk, 0xA5, dk.Bytes);
        ops.QuantizeRowsQ8_K(dx, dk, cols, tokens);
        byte[] got = device.Download<byte>(dk);
        int wrongD = 0, wrongQ = 0, wrongBsums = 0;
        string first = "";
        for (int i = 0; i < expected.Length; i++)
        {
            if (got[i] == expected[i]) continue;
            int offset = i % 292;
            if (offset < 4) wrongD++;
            else if (offset < 260) wrongQ++;
            else wrongBsums++;
            if (first.Length == 0) first = $"; first at block {i / 292} byte {offset}: GPU {got[i]}, CPU {expected[i]}";
        }
        bool zeroBlock = expected.AsSpan(0, 292).IndexOfAnyExcept((byte)0) < 0;
        bool productionSame = production.AsSpan().SequenceEqual(expected);
        bool passed = wrongD + wrongQ + wrongBsums == 0 && zeroBlock && productionSame;
        return new GpuCheckResult(name, passed, wrongD + wrongQ + wrongBsums, 0, "identical bytes (d, int8, bsums)",
            $"{tokens} rows × {cols}; {wrongD} d bytes, {wrongQ} int8, {wrongBsums} bsum bytes differ{first}" +
            (zeroBlock ? "" : "; the all-zero block is not zeros on the CPU") + (productionSame ? "" : "; the CPU's SIMD Q8_K quantizer differs from its scalar one"));
    }

    /// <summary>
    /// W [rows, cols] of random <paramref name="type"/> blocks times random activations: through <see cref="CudaOps.MatMul"/>
    /// (<paramref name="tokens"/> rows, output stride rows + 3) or <see cref="CudaOps.MatVec"/> (one row, output followed
    /// by 3 NaN), both with <see cref="QuantizedMatMulPath.Dp4a"/>.
    /// </summary>
    public static GpuCheckResult ProductCheck(IGpuDevice device, TensorType type, int rows, int cols, int tokens, bool matVec, int seed)
    {
        string name = matVec ? $"dp4a-k matvec {TensorTypeInfo.Name(type)} {cols} cols {rows} rows" : $"dp4a-k matmul {TensorTypeInfo.Name(type)} {cols} cols {tokens} tokens";
        var rng = new Random(seed * 131 + cols + 7 * tokens + (int)type);
        int stride = rows + 3;
        long rowBytes = TensorTypeInfo.RowBytes(type, cols);
        var w = new byte[rowBytes * rows];
        for (int r = 0; r < rows; r++) QuantTestData.RandomRow(type, cols, rng, realistic: false).CopyTo(w, rowBytes * r);
        float[] x = Activations(rng, cols, tokens);
        byte[] blocks = CpuBlocks(x, cols, tokens);
        long activationRowBytes = (cols / 256) * 292L;
        var scalar = QuantRegistry.ScalarKernels(type);
        var simd = QuantRegistry.Kernels(type);

        using var ops = new CudaOps(device) { QuantizedMatMulPath = QuantizedMatMulPath.Dp4a };
        using var dw = device.Upload<byte>(w);
        using var dx = device.Upload<float>(x);
        using var dy = device.Allocate(tokens * stride * 4L);
        device.Fill(dy, 0xFF, dy.Bytes); // NaN
        if (matVec) ops.MatVec(type, dw, dx, dy, rows, cols);
        else ops.MatMul(type, dw, dx, dy, rows, cols, tokens, stride);
        float[] y = device.Download<float>(dy);

        int notExact = 0, padding = 0;
        double maxAbs = 0, worstRatio = 0;
        string worst = "", firstInexact = "";
        fixed (byte* pw = w)
        fixed (byte* pb = blocks)
        {
            for (int t = 0; t < tokens; t++)
            {
                for (int r = 0; r < stride; r++)
                {
                    float got = y[t * stride + r];
                    if (r >= rows) { if (!float.IsNaN(got)) padding++; continue; }
                    byte* wr = pw + rowBytes * r;
                    byte* xr = pb + activationRowBytes * t;
                    float exact = scalar.VecDot(cols, wr, xr);
                    float fast = simd.VecDot(cols, wr, xr);
                    if (BitConverter.SingleToInt32Bits(got) != BitConverter.SingleToInt32Bits(exact) && notExact++ == 0)
                        firstInexact = $"; first not exact: token {t} row {r}: GPU {got:R}, scalar {exact:R}";
                    double d = Math.Abs(got - (double)fast);
                    maxAbs = Math.Max(maxAbs, d);
                    double ratio = d / Math.Max(AbsTermSum(type, wr, xr, cols), 1e-30);
                    if (ratio > worstRatio) { worstRatio = ratio; worst = $"token {t} row {r}: GPU {got:R}, CPU SIMD {fast:R}, scalar {exact:R}"; }
                }
            }
        }
        bool passed = notExact == 0 && padding == 0 && worstRatio <= 1e-6;
        return new GpuCheckResult(name, passed, maxAbs, worstRatio,
            "bit-identical to the CPU scalar VecDot; |Δ| ≤ 1e-6·Σ|w_j·x_j| vs the CPU SIMD VecDot",
            $"{rows} rows × {tokens} tokens × {cols}; {notExact} not bit-identical to scalar, {padding} padding written{firstInexact}; worst vs SIMD {worst}");
    }

    /// <summary>
    /// Σ_j |w_j|·|x_j| in double over the terms before cancellation: the row dequantized with d ≥ 0 and the min
    /// subtracted as −|dmin| (so each weight is |d·sc·q| + |dmin·m|), times |d_x·q_x|.
    /// </summary>
    private static double AbsTermSum(TensorType type, byte* w, byte* x, int cols)
    {
        int blockBytes = TensorTypeInfo.BlockBytes(type);
        var block = new byte[blockBytes];
        var values = new float[256];
        var kernels = QuantRegistry.ScalarKernels(type);
        double sum = 0;
        for (int b = 0; b < cols / 256; b++, w += blockBytes, x += 292)
        {
            new ReadOnlySpan<byte>(w, blockBytes).CopyTo(block);
            if (type == TensorType.Q6_K) block[209] &= 0x7F;
            else { block[1] &= 0x7F; block[3] |= 0x80; }
            fixed (byte* pb = block)
            fixed (float* pv = values)
                kernels.Dequantize(pb, pv, 256);
            float dx = *(float*)x;
            for (int j = 0; j < 256; j++) sum += Math.Abs(values[j]) * Math.Abs(dx * (sbyte)x[4 + j]);
        }
        return sum;
    }

    // ---- end to end ----

    /// <summary>
    /// How the Dp4a GPU decoder must agree with the CPU decoder on the same quantized weights (logit std ≈ 3). Both
    /// quantize every activation row to Q8_K and sum the same integers; what differs is the float order of the ops
    /// between the products (RMSNorm, RoPE, attention, SwiGLU; ≈ 1e-7 relative) and the CPU SIMD VecDot's reassociation.
    /// So a position agrees within <see cref="GpuDecoderChecks.LogitTolerance"/> — unless one of the ~3000 activations
    /// quantized per position lands within that 1e-7 of a Q8_K rounding midpoint (≈ 1e-5 each): its int8 moves by one, a
    /// change of one quantum (amax / 127 of its block) that this random model carries to the logits and, through the KV
    /// cache, to later positions. Measured on the emulator: every prompt position within 2e-6 … 4e-6; one such flip in
    /// seed 1's decode steps, 4.0e-2. The check therefore holds the median position to LogitTolerance (a wrong route —
    /// the Float path is 0.17 … 0.44 from this reference at every position — or a stale scratch moves them all) and every
    /// logit to <see cref="DecoderFlipTolerance"/>. Prefill attention is held to F32: the tensor-core path's F16
    /// rounding (checked in GpuDecoderChecks.TensorCorePrefill) moves many roundings at once (0.37 measured).
    /// </summary>
    public const double DecoderFlipTolerance = 0.15;

    private const int PromptTokens = 20, PromptBatch = 16, DecodeSteps = 6;

    /// <summary>
    /// The quantizable tiny llama (dim 256, ffn 512, 2 layers, untied) re-encoded as a Q4_K_M-like mix: Q4_K by default
    /// (the embedding too), attn_v / ffn_down Q6_K in layer 0 and Q5_K in layer 1, the LM head Q6_K. The caller disposes
    /// the returned model, then the F32 source (its norms are shared), then the buffers.
    /// </summary>
    public static (DecoderModel Model, DecoderModel Source, List<NativeBuffer> Buffers) KQuantMix()
    {
        var source = DecoderModel.LoadGguf(RandomModels.GetPath(RandomModelSpec.Quantizable(RandomModelArchitecture.Llama)));
        var buffers = new List<NativeBuffer>();
        WeightMatrix As(in WeightMatrix m, TensorType type)
        {
            var q = MatrixQuantizer.Quantize(m, type, null, out var buffer);
            buffers.Add(buffer);
            return q;
        }
        var w = source.Weights;
        var layers = w.Layers.Select((l, i) => new DecoderLayerWeights
        {
            AttentionNorm = l.AttentionNorm, Query = As(l.Query, TensorType.Q4_K), Key = As(l.Key, TensorType.Q4_K),
            Value = As(l.Value, i == 0 ? TensorType.Q6_K : TensorType.Q5_K),
            QueryBias = l.QueryBias, KeyBias = l.KeyBias, ValueBias = l.ValueBias, Output = As(l.Output, TensorType.Q4_K),
            FeedForwardNorm = l.FeedForwardNorm, Gate = As(l.Gate, TensorType.Q4_K), Up = As(l.Up, TensorType.Q4_K),
            Down = As(l.Down, i == 0 ? TensorType.Q6_K : TensorType.Q5_K),
        }).ToArray();
        var weights = new DecoderWeights
        {
            TokenEmbedding = As(w.TokenEmbedding, TensorType.Q4_K), Layers = layers, OutputNorm = w.OutputNorm,
            LmHead = As(w.LmHead, TensorType.Q6_K), TiedEmbeddings = false,
        };
        return (new DecoderModel(source.Config, weights, null, source.SourcePath + " (Q4_K/Q5_K/Q6_K mix)"), source, buffers);
    }

    /// <summary>
    /// A 20-token prompt in batches of 16 (the tiled kernel) and 4 (the mat-vec kernel per token), all logits, then 6
    /// greedy decode steps (the first launched directly, which sizes the one-row scratch, the rest replayed), on two GPU decoders with Dp4a — graphs on (steps 2… replayed from a capture) and off — against
    /// the CPU decoder: logits as <see cref="DecoderFlipTolerance"/> says, greedy tokens equal, and the graph decoder's
    /// logits bit-identical to the direct one's.
    /// </summary>
    public static GpuCheckResult Decoder(IGpuDevice device, int seed)
    {
        const string name = "dp4a-k decoder llama K-quant mix";
        var (model, source, buffers) = KQuantMix();
        try
        {
            var config = model.Config;
            int vocab = config.VocabSize;
            var rng = new Random(seed);
            int[] prompt = new int[PromptTokens];
            for (int i = 0; i < prompt.Length; i++) prompt[i] = rng.Next(vocab);

            using var graphs = new GpuDecoder(device, config, model.Weights) { UseGraphs = device.SupportsGraphs };
            using var direct = new GpuDecoder(device, config, model.Weights) { UseGraphs = false };
            foreach (var ops in new[] { graphs.Ops, direct.Ops })
            {
                ops.QuantizedMatMulPath = QuantizedMatMulPath.Dp4a;
                ops.AttentionPath = AttentionPath.F32; // see DecoderFlipTolerance
            }
            using var graphState = graphs.CreateState(64, maxBatch: PromptBatch);
            using var directState = direct.CreateState(64, maxBatch: PromptBatch);
            using var cpuState = model.CreateState(64, maxBatch: PromptBatch);

            double maxAbs = 0;
            string worst = "";
            var positionMax = new List<double>(); // max |Δ| per position
            var failures = new List<string>();
            int bitMismatches = 0, greedyChecked = 0;
            void Compare(string where, ReadOnlySpan<float> got, ReadOnlySpan<float> want, ReadOnlySpan<float> fromDirect)
            {
                for (int p = 0; p < want.Length / vocab; p++) positionMax.Add(0);
                for (int i = 0; i < want.Length; i++)
                {
                    double d = float.IsFinite(got[i]) ? Math.Abs(got[i] - (double)want[i]) : double.PositiveInfinity;
                    int at = positionMax.Count - want.Length / vocab + i / vocab;
                    positionMax[at] = Math.Max(positionMax[at], d);
                    if (d > maxAbs) { maxAbs = d; worst = $"{where}, position {i / vocab}, token {i % vocab}: GPU {got[i]:R}, CPU {want[i]:R}"; }
                    if (BitConverter.SingleToInt32Bits(got[i]) != BitConverter.SingleToInt32Bits(fromDirect[i])) bitMismatches++;
                }
            }

            var expected = new float[PromptTokens * vocab];
            var fromGraphs = new float[expected.Length];
            var fromDirect = new float[expected.Length];
            model.Forward(cpuState, prompt, LogitsMode.All, expected);
            graphs.Forward(graphState, prompt, LogitsMode.All, fromGraphs);
            direct.Forward(directState, prompt, LogitsMode.All, fromDirect);
            Compare("prompt", fromGraphs, expected, fromDirect);

            int next = ArgMax(expected.AsSpan((PromptTokens - 1) * vocab, vocab));
            var graphLogits = new float[vocab];
            var directLogits = new float[vocab];
            for (int step = 0; step < DecodeSteps; step++)
            {
                int[] one = [next];
                float[] want = model.Forward(cpuState, one).ToArray();
                int graphNext = graphs.ForwardGreedy(graphState, one);
                device.Download<float>(graphLogits, graphState.Logits.Pointer);
                int directNext = direct.ForwardGreedy(directState, one);
                device.Download<float>(directLogits, directState.Logits.Pointer);
                Compare($"decode step {step}", graphLogits, want, directLogits);
                next = ArgMax(want);
                if (graphNext != directNext) failures.Add($"decode step {step}: graph token {graphNext}, direct {directNext}");
                float second = float.NegativeInfinity;
                for (int i = 0; i < vocab; i++) if (i != next) second = Math.Max(second, want[i]);
                if (want[next] - second > 2 * DecoderFlipTolerance)
                {
                    greedyChecked++;
                    if (graphNext != next) failures.Add($"decode step {step}: GPU token {graphNext}, CPU {next}");
                }
            }
            if (device.SupportsGraphs && !graphState.HasDecodeGraph) failures.Add("no decode graph was captured");
            if (bitMismatches > 0) failures.Add($"{bitMismatches} logits of the graph decoder differ in bits from direct launches");
            double median = positionMax.Order().ElementAt(positionMax.Count / 2);
            int above = positionMax.Count(m => m > GpuDecoderChecks.LogitTolerance);
            bool passed = failures.Count == 0 && maxAbs <= DecoderFlipTolerance && median <= GpuDecoderChecks.LogitTolerance;
            return new GpuCheckResult(name, passed, maxAbs, 0,
                $"vs the CPU on the same weights: median position max|Δ logit| ≤ {GpuDecoderChecks.LogitTolerance:0e0}, every logit ≤ {DecoderFlipTolerance}; graph = direct bit for bit",
                $"{PromptTokens}-token prompt in batches of {PromptBatch} + {PromptTokens - PromptBatch}, {DecodeSteps} greedy steps ({greedyChecked} with a clear margin checked)" +
                $"{(device.SupportsGraphs ? ", decode graph captured and replayed" : ", no graphs on this device")}; median position {median:0.0e0}, {above} of {positionMax.Count} positions above " +
                $"{GpuDecoderChecks.LogitTolerance:0e0} (Q8_K rounding flips); worst {worst}" +
                (failures.Count > 0 ? "; " + string.Join("; ", failures) : ""));
        }
        finally
        {
            model.Dispose();
            source.Dispose();
            foreach (var b in buffers) b.Dispose();
        }
    }

    private static int ArgMax(ReadOnlySpan<float> v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
        return best;
    }
}
