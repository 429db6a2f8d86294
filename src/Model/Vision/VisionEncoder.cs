using LlavaNative.Kernels.Cpu;
using LlavaNative.Kernels.Cpu.Ops;
using LlavaNative.Kernels.Tensors;

namespace LlavaNative.Model.Vision;

/// <summary>
/// One forward pass of a CLIP or SigLIP vision tower, written once for both (HF modeling_clip / modeling_siglip):
/// <code>
/// patches = im2col(pixels)                       [P, 3·p·p]      P = (S/p)² patches, row-major over the grid
/// x[first..] = patches · W_patchᵀ (+ b_patch)    [P, D]          the stride-p conv as one GEMM
/// x[0] = class_embedding (CLIP)                  [N, D]          N = P (+ 1 with a class token, which comes first)
/// x += position_embedding;  x = pre_LN(x) (CLIP)
/// repeat LayersToRun times:
///   x += out_proj(attention(LN1(x)))             bidirectional, 1/√d_head scale, q/k/v/out with bias
///   x += fc2(act(fc1(LN2(x))))                   act: quick_gelu (CLIP) / gelu tanh (SigLIP)
/// features = x[FirstOutputRow..]                 hidden_states[FeatureLayer], no post-layernorm
/// </code>
/// Every buffer is allocated once here (llama2.c's RunState) and reused for each image: encoding allocates nothing.
/// All N rows go through each mat-mul together, and every step is split across the pool.
/// </summary>
public sealed unsafe class VisionEncoder : IDisposable
{
    private readonly List<NativeBuffer> _buffers = [];
    private readonly bool _ownsPool;

    private readonly float* _patches; // [P, 3·p·p]  im2col of the image
    private readonly float* _x;       // [N, D]      residual stream (hidden state)
    private readonly float* _normed;  // [N, D]      LayerNorm output; reused for attention / MLP outputs before the residual add
    private readonly float* _q;       // [N, D]      queries, head h at columns h·d_head
    private readonly float* _k;       // [N, D]      keys
    private readonly float* _v;       // [N, D]      values
    private readonly float* _attn;    // [N, D]      attention output (heads concatenated)
    private readonly float* _hidden;  // [N, FFN]    MLP hidden activations
    private readonly byte* _scratch;  // activation rows converted / packed for the mat-muls (max over all weights)
    private readonly float* _attentionScratch; // packed K/V of every head and per-thread score blocks (GemmAttention)

    public VisionConfig Config { get; }
    public VisionWeights Weights { get; }
    public ComputeThreadPool Pool { get; }

    /// <summary>Rows of <see cref="Encode(ReadOnlySpan{float})"/>'s result.</summary>
    public int OutputTokenCount => Config.OutputTokenCount;

    /// <summary>Floats <see cref="Encode(ReadOnlySpan{float})"/> expects: 3 · ImageSize².</summary>
    public int PixelCount => 3 * Config.ImageSize * Config.ImageSize;

    public VisionEncoder(VisionConfig config, VisionWeights weights, ComputeThreadPool? pool = null)
    {
        if (weights.Layers.Length < config.LayersToRun)
            throw new ArgumentException($"the weights hold {weights.Layers.Length} blocks, the configuration runs {config.LayersToRun}");
        if (weights.PatchEmbedding.Rows != config.HiddenSize || weights.PatchEmbedding.Cols != config.PatchElements)
            throw new ArgumentException($"patch embedding is [{weights.PatchEmbedding.Rows}, {weights.PatchEmbedding.Cols}], expected [{config.HiddenSize}, {config.PatchElements}]");
        if (config.HasClassEmbedding != (weights.ClassEmbedding != null) || config.HasPatchBias != (weights.PatchBias != null)
            || config.HasPreLayerNorm != (weights.PreNormWeight != null))
            throw new ArgumentException("the weights' class embedding / patch bias / pre-layernorm do not match the configuration");
        Config = config;
        Weights = weights;
        _ownsPool = pool == null;
        Pool = pool ?? new ComputeThreadPool();

        long n = config.PositionCount, d = config.HiddenSize;
        _patches = Floats((long)config.PatchCount * config.PatchElements);
        _x = Floats(n * d);
        _normed = Floats(n * d);
        _q = Floats(n * d);
        _k = Floats(n * d);
        _v = Floats(n * d);
        _attn = Floats(n * d);
        _hidden = Floats(n * config.FeedForward);

        long scratch = MatMul.ScratchBytes(weights.PatchEmbedding.Type, weights.PatchEmbedding.Cols, config.PatchCount);
        void Need(in WeightMatrix w) => scratch = Math.Max(scratch, MatMul.ScratchBytes(w.Type, w.Cols, (int)n));
        for (int l = 0; l < config.LayersToRun; l++)
        {
            var layer = weights.Layers[l];
            Need(layer.Query); Need(layer.Key); Need(layer.Value); Need(layer.Output); Need(layer.Up); Need(layer.Down);
        }
        var scratchBuffer = new NativeBuffer(scratch);
        _buffers.Add(scratchBuffer);
        _scratch = scratchBuffer.Pointer;
        _attentionScratch = Floats(GemmAttention.ScratchFloats((int)n, config.Heads, config.HeadDim, Pool.ThreadCount));
    }

    /// <summary>
    /// Encodes normalized pixels [3, ImageSize, ImageSize] (planar RGB) into features [OutputTokenCount, HiddenSize].
    /// The result is a view of this encoder's buffer, valid until the next call.
    /// </summary>
    public ReadOnlySpan<float> Encode(ReadOnlySpan<float> pixels)
    {
        CheckPixels(pixels.Length);
        fixed (float* p = pixels)
            return new ReadOnlySpan<float>(Forward(p), OutputTokenCount * Config.HiddenSize);
    }

    /// <summary>As <see cref="Encode(ReadOnlySpan{float})"/>, copying the features into <paramref name="destination"/>.</summary>
    public void Encode(ReadOnlySpan<float> pixels, Span<float> destination)
    {
        int count = OutputTokenCount * Config.HiddenSize;
        if (destination.Length < count) throw new ArgumentException($"destination holds {destination.Length} floats, needs {count}", nameof(destination));
        Encode(pixels).CopyTo(destination);
    }

    internal void CheckPixels(int length)
    {
        if (length != PixelCount)
            throw new ArgumentException($"expected {PixelCount} floats (3 × {Config.ImageSize} × {Config.ImageSize}, planar RGB), got {length}", "pixels");
    }

    /// <summary>Runs the tower on <paramref name="pixels"/> [3, S, S]; returns a pointer to the first selected row of the hidden state.</summary>
    internal float* Forward(float* pixels)
    {
        var c = Config;
        var w = Weights;
        var pool = Pool;
        int n = c.PositionCount, d = c.HiddenSize, ffn = c.FeedForward;
        int first = c.HasClassEmbedding ? 1 : 0; // the class token is row 0; patches follow

        // Embeddings: the patch conv as im2col + GEMM, written straight into the patch rows of x.
        var im2col = new Im2ColJob { Pixels = pixels, Patches = _patches, ImageSize = c.ImageSize, PatchSize = c.PatchSize, PerSide = c.PatchesPerSide };
        pool.Run(ref im2col, c.PatchCount);
        float* patchRows = _x + (long)first * d;
        MatMul.Compute(pool, w.PatchEmbedding, _patches, c.PatchCount, patchRows, _scratch);
        if (w.PatchBias != null) RowOps.AddBias(pool, patchRows, w.PatchBias, c.PatchCount, d);
        if (w.ClassEmbedding != null) new ReadOnlySpan<float>(w.ClassEmbedding, d).CopyTo(new Span<float>(_x, d));
        RowOps.AddRows(pool, _x, w.PositionEmbedding, n, d);
        if (w.PreNormWeight != null) RowOps.LayerNormRows(pool, _x, w.PreNormWeight, w.PreNormBias, _x, n, d, c.LayerNormEps);

        float scale = 1.0f / MathF.Sqrt(c.HeadDim);
        for (int l = 0; l < c.LayersToRun; l++)
        {
            var layer = w.Layers[l];

            // Self-attention block: x += out_proj(attention(LN1(x))).
            RowOps.LayerNormRows(pool, _x, layer.Norm1Weight, layer.Norm1Bias, _normed, n, d, c.LayerNormEps);
            MatMul.Compute(pool, layer.Query, _normed, n, _q, _scratch);
            MatMul.Compute(pool, layer.Key, _normed, n, _k, _scratch);
            MatMul.Compute(pool, layer.Value, _normed, n, _v, _scratch);
            RowOps.AddBias(pool, _q, layer.QueryBias, n, d);
            RowOps.AddBias(pool, _k, layer.KeyBias, n, d);
            RowOps.AddBias(pool, _v, layer.ValueBias, n, d);
            GemmAttention.Compute(pool, new Attention.Problem
            {
                Q = _q, K = _k, V = _v, Output = _attn,
                Tokens = n, Heads = c.Heads, KvHeads = c.Heads, HeadDim = c.HeadDim, KvStride = d,
                KeyCount = n, Causal = false, Scale = scale,
            }, _attentionScratch);
            MatMul.Compute(pool, layer.Output, _attn, n, _normed, _scratch);
            RowOps.AddBiasResidual(pool, _x, _normed, layer.OutputBias, n, d);

            // MLP block: x += fc2(act(fc1(LN2(x)))).
            RowOps.LayerNormRows(pool, _x, layer.Norm2Weight, layer.Norm2Bias, _normed, n, d, c.LayerNormEps);
            MatMul.Compute(pool, layer.Up, _normed, n, _hidden, _scratch);
            RowOps.AddBiasActivation(pool, _hidden, layer.UpBias, c.Activation, n, ffn);
            MatMul.Compute(pool, layer.Down, _hidden, n, _normed, _scratch);
            RowOps.AddBiasResidual(pool, _x, _normed, layer.DownBias, n, d);
        }
        return _x + (long)c.FirstOutputRow * d;
    }

    private float* Floats(long count)
    {
        var buffer = NativeBuffer.Floats(count);
        _buffers.Add(buffer);
        return buffer.Floats();
    }

    public void Dispose()
    {
        foreach (var b in _buffers) b.Dispose();
        _buffers.Clear();
        if (_ownsPool) Pool.Dispose();
    }

    /// <summary>
    /// Gathers each patch of the planar image into one row: patch (py, px) → row py·G + px (HF flattens the conv
    /// output row-major), element (ch, ky, kx) → column ch·p² + ky·p + kx (the conv kernel's [3, p, p] order).
    /// Pixels beyond G·p in either direction are not read, as a stride-p conv without padding ignores them.
    /// </summary>
    private struct Im2ColJob : IRangeJob
    {
        public float* Pixels, Patches;
        public int ImageSize, PatchSize, PerSide;

        public void Execute(int start, int end)
        {
            int p = PatchSize, s = ImageSize;
            for (int patch = start; patch < end; patch++)
            {
                int py = patch / PerSide, px = patch % PerSide;
                float* row = Patches + (long)patch * 3 * p * p;
                for (int ch = 0; ch < 3; ch++)
                    for (int ky = 0; ky < p; ky++)
                    {
                        float* src = Pixels + ((long)ch * s + (long)py * p + ky) * s + (long)px * p;
                        new ReadOnlySpan<float>(src, p).CopyTo(new Span<float>(row + (ch * p + ky) * p, p));
                    }
            }
        }
    }
}
