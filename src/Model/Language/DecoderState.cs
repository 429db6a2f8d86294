using LlavaNative.Kernels.Cpu;
using LlavaNative.Kernels.Cpu.Ops;
using LlavaNative.Kernels.Tensors;

namespace LlavaNative.Model.Language;

/// <summary>
/// Everything one decoding session mutates, allocated once (llama2.c's RunState): the KV cache and the
/// activation buffers for batches of up to <see cref="MaxBatch"/> tokens. Decode steps reuse these and allocate nothing.
/// The cache holds F32 rows (<see cref="KeyCache"/>, <see cref="ValueCache"/>) or, with <see cref="KvCacheType.F16"/>,
/// F16 rows (<see cref="KeyCacheHalf"/>, <see cref="ValueCacheHalf"/>): a batch's K and V are then computed into
/// <see cref="KeyRows"/> / <see cref="ValueRows"/> and rounded into the cache once biased and rotated.
/// </summary>
public sealed unsafe class DecoderState : IDisposable
{
    private readonly List<NativeBuffer> _buffers = [];

    public DecoderConfig Config { get; }
    public int ContextSize { get; }
    public int MaxBatch { get; }
    /// <summary>How the K and V rows are stored.</summary>
    public KvCacheType CacheType { get; }
    public ComputeThreadPool Pool { get; }
    private readonly bool _ownsPool;

    /// <summary>Number of positions already in the KV cache.</summary>
    public int Position { get; internal set; }

    public float*[] KeyCache { get; }    // per layer [ContextSize, kvDim] (F32 cache; null entries for F16)
    public float*[] ValueCache { get; }  // per layer [ContextSize, kvDim]
    public ushort*[] KeyCacheHalf { get; }   // per layer [ContextSize, kvDim] IEEE halves (F16 cache; null entries for F32)
    public ushort*[] ValueCacheHalf { get; } // per layer [ContextSize, kvDim]
    public float* KeyRows;    // [MaxBatch, kvDim] the batch's K before it is rounded into an F16 cache (null for F32)
    public float* ValueRows;  // [MaxBatch, kvDim]
    /// <summary>
    /// One layer's F16 cache widened to F32 [ContextSize, kvDim] for prefill batches of
    /// <see cref="DecoderModel.WidenHalfCacheMinTokens"/> or more (attention then reads floats: widening each half once
    /// costs far less than at every query); null for an F32 cache or when <see cref="MaxBatch"/> is smaller.
    /// </summary>
    public float* WideKeys;
    public float* WideValues; // [ContextSize, kvDim]
    public float* X;          // [MaxBatch, dim] residual stream
    public float* Normed;     // [MaxBatch, dim]
    public float* Query;      // [MaxBatch, qDim]
    public float* AttnOut;    // [MaxBatch, qDim]
    public float* Gate;       // [MaxBatch, ffn]
    public float* Up;         // [MaxBatch, ffn]
    public float* Cos, Sin;   // [MaxBatch, ropeDims/2]
    public float* Logits;     // [MaxBatch, vocab] (only row 0 used when not all logits are wanted)
    public byte* Scratch;     // activation conversion for mat-muls

    public DecoderState(DecoderConfig config, DecoderWeights weights, int contextSize, int maxBatch = 256, ComputeThreadPool? pool = null,
        KvCacheType cacheType = KvCacheType.F32)
    {
        if (contextSize <= 0) throw new ArgumentOutOfRangeException(nameof(contextSize), contextSize, "context size must be positive");
        if (maxBatch <= 0) throw new ArgumentOutOfRangeException(nameof(maxBatch));
        KvCacheTypes.BytesPerValue(cacheType); // rejects values outside the enum
        Config = config;
        ContextSize = contextSize;
        MaxBatch = Math.Min(maxBatch, contextSize);
        CacheType = cacheType;
        _ownsPool = pool == null;
        Pool = pool ?? new ComputeThreadPool();

        KeyCache = new float*[config.Layers];
        ValueCache = new float*[config.Layers];
        KeyCacheHalf = new ushort*[config.Layers];
        ValueCacheHalf = new ushort*[config.Layers];
        for (int l = 0; l < config.Layers; l++)
        {
            if (cacheType == KvCacheType.F16)
            {
                KeyCacheHalf[l] = Halves((long)contextSize * config.KvDim);
                ValueCacheHalf[l] = Halves((long)contextSize * config.KvDim);
            }
            else
            {
                KeyCache[l] = Floats((long)contextSize * config.KvDim);
                ValueCache[l] = Floats((long)contextSize * config.KvDim);
            }
        }
        int b = MaxBatch;
        if (cacheType == KvCacheType.F16)
        {
            KeyRows = Floats((long)b * config.KvDim);
            ValueRows = Floats((long)b * config.KvDim);
            if (b >= DecoderModel.WidenHalfCacheMinTokens)
            {
                WideKeys = Floats((long)contextSize * config.KvDim);
                WideValues = Floats((long)contextSize * config.KvDim);
            }
        }
        X = Floats((long)b * config.Dim);
        Normed = Floats((long)b * config.Dim);
        Query = Floats((long)b * config.QueryDim);
        AttnOut = Floats((long)b * config.QueryDim);
        Gate = Floats((long)b * config.FeedForward);
        Up = Floats((long)b * config.FeedForward);
        Cos = Floats((long)b * config.RopeDims / 2);
        Sin = Floats((long)b * config.RopeDims / 2);
        Logits = Floats((long)b * config.VocabSize);

        long scratch = 0;
        void Need(in WeightMatrix w) => scratch = Math.Max(scratch, MatMul.ScratchBytes(w.Type, w.Cols, b));
        foreach (var layer in weights.Layers)
        {
            Need(layer.Query); Need(layer.Key); Need(layer.Value); Need(layer.Output);
            Need(layer.Gate); Need(layer.Up); Need(layer.Down);
        }
        Need(weights.LmHead);
        var scratchBuffer = new NativeBuffer(scratch);
        _buffers.Add(scratchBuffer);
        Scratch = scratchBuffer.Pointer;
    }

    /// <summary>Row <paramref name="row"/> of <see cref="Logits"/> [vocab] (row 0 after a pass that computed only the last position).</summary>
    public ReadOnlySpan<float> LogitsRow(int row)
    {
        if ((uint)row >= (uint)MaxBatch) throw new ArgumentOutOfRangeException(nameof(row));
        return new ReadOnlySpan<float>(Logits + (long)row * Config.VocabSize, Config.VocabSize);
    }

    /// <summary>Bytes held by the KV cache (K and V of every layer and position, in <see cref="CacheType"/>).</summary>
    public long KvCacheBytes => 2L * Config.Layers * ContextSize * Config.KvDim * KvCacheTypes.BytesPerValue(CacheType);

    /// <summary>Forgets the conversation: the next token goes to position 0.</summary>
    public void Reset() => Position = 0;

    /// <summary>Drops every position from <paramref name="position"/> on (e.g. to regenerate an answer).</summary>
    public void Truncate(int position)
    {
        if (position < 0 || position > Position) throw new ArgumentOutOfRangeException(nameof(position));
        Position = position;
    }

    private float* Floats(long count)
    {
        var buffer = NativeBuffer.Floats(count);
        _buffers.Add(buffer);
        return buffer.Floats();
    }

    private ushort* Halves(long count)
    {
        var buffer = new NativeBuffer(count * sizeof(ushort));
        _buffers.Add(buffer);
        return (ushort*)buffer.Pointer;
    }

    public void Dispose()
    {
        foreach (var b in _buffers) b.Dispose();
        _buffers.Clear();
        if (_ownsPool) Pool.Dispose();
    }
}
