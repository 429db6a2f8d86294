using LlavaNative.Kernels.Cpu.Ops;
using LlavaNative.Kernels.Cuda;
using LlavaNative.Kernels.Tensors;

namespace LlavaNative.Model.Language;

/// <summary>
/// Everything one GPU decoding session mutates (<see cref="DecoderState"/>'s device twin), allocated once: the
/// F32 KV cache and the activation buffers for batches of up to <see cref="MaxBatch"/> tokens on the device,
/// and the few host arrays the pass copies through. Decode steps reuse these and allocate nothing.
/// A single-token decode step reads its position from <see cref="DevicePosition"/> (RoPE row, cache row, key count),
/// so it can be captured once into a graph (<see cref="GpuDecoder.UseGraphs"/>), held here and replayed at every
/// position; <see cref="Reset"/> and <see cref="Truncate"/> need no recapture.
/// The cache is F32 or, with <see cref="KvCacheType.F16"/>, IEEE halves (<see cref="CacheType"/>): K and V are then
/// always computed into the F32 <see cref="KeyStep"/> / <see cref="ValueStep"/> rows (a prefill batch's too) and
/// rounded into the cache once biased and rotated.
/// </summary>
public sealed unsafe class GpuDecoderState : IDisposable
{
    private readonly List<DeviceBuffer> _buffers = [];

    public DecoderConfig Config { get; }
    public int ContextSize { get; }
    public int MaxBatch { get; }
    /// <summary>How the K and V rows are stored.</summary>
    public KvCacheType CacheType { get; }

    /// <summary>Number of positions already in the KV cache.</summary>
    public int Position { get; internal set; }

    public DeviceBuffer[] KeyCache { get; }   // per layer [ContextSize, kvDim] F32, or F16 halves (CacheType)
    public DeviceBuffer[] ValueCache { get; } // per layer [ContextSize, kvDim]
    public DeviceBuffer X { get; }            // [MaxBatch, dim] residual stream
    public DeviceBuffer Normed { get; }       // [MaxBatch, dim]
    public DeviceBuffer Query { get; }        // [MaxBatch, qDim]
    public DeviceBuffer AttnOut { get; }      // [MaxBatch, qDim]
    public DeviceBuffer Gate { get; }         // [MaxBatch, ffn]
    public DeviceBuffer Up { get; }           // [MaxBatch, ffn]
    /// <summary>RoPE angles of every position [ContextSize, ropeDims/2] (<see cref="Rope.ComputeAngles"/> from 0), uploaded once.</summary>
    public DeviceBuffer CosTable { get; }
    public DeviceBuffer SinTable { get; }     // [ContextSize, ropeDims/2]
    public DeviceBuffer KeyStep { get; }      // [kvDim] a decode step's key row, before it is appended to the cache ([MaxBatch, kvDim] for F16)
    public DeviceBuffer ValueStep { get; }    // [kvDim] ([MaxBatch, kvDim] for F16)
    /// <summary>[1] int: the position of the current decode step, written before the step (graph or not) runs.</summary>
    public DeviceBuffer DevicePosition { get; }
    public DeviceBuffer Logits { get; }       // [MaxBatch, vocab] (row 0 only when not all logits are wanted)
    public DeviceBuffer TokenIds { get; }     // [MaxBatch] int
    public DeviceBuffer ArgMax { get; }       // [1] int

    /// <summary>The last position's logits [vocab] after a pass that copied them back.</summary>
    public float[] HostLogits { get; }
    internal int[] HostArgMax { get; } = new int[1];

    // The captured single-token decode step and the decoder it was captured for (its weights and kernels are baked in).
    private IGpuGraph? _decodeGraph;
    private GpuDecoder? _decodeGraphOwner;
    private DecodeKernelChoice _decodeGraphChoice;

    /// <summary>Whether a captured decode step is held (captured at a decode step, kept until <see cref="InvalidateDecodeGraph"/>).</summary>
    public bool HasDecodeGraph => _decodeGraph != null;

    public GpuDecoderState(IGpuDevice device, DecoderConfig config, int contextSize, int maxBatch = 256, KvCacheType cacheType = KvCacheType.F32)
    {
        if (contextSize <= 0) throw new ArgumentOutOfRangeException(nameof(contextSize), contextSize, "context size must be positive");
        if (maxBatch <= 0) throw new ArgumentOutOfRangeException(nameof(maxBatch), maxBatch, "batch size must be positive");
        int valueBytes = KvCacheTypes.BytesPerValue(cacheType);
        Config = config;
        ContextSize = contextSize;
        MaxBatch = Math.Min(maxBatch, contextSize);
        CacheType = cacheType;
        int b = MaxBatch;
        try
        {
            KeyCache = new DeviceBuffer[config.Layers];
            ValueCache = new DeviceBuffer[config.Layers];
            for (int l = 0; l < config.Layers; l++)
            {
                KeyCache[l] = Bytes(device, (long)contextSize * config.KvDim * valueBytes);
                ValueCache[l] = Bytes(device, (long)contextSize * config.KvDim * valueBytes);
            }
            X = Floats(device, (long)b * config.Dim);
            Normed = Floats(device, (long)b * config.Dim);
            Query = Floats(device, (long)b * config.QueryDim);
            AttnOut = Floats(device, (long)b * config.QueryDim);
            Gate = Floats(device, (long)b * config.FeedForward);
            Up = Floats(device, (long)b * config.FeedForward);
            CosTable = Floats(device, (long)contextSize * config.RopeDims / 2);
            SinTable = Floats(device, (long)contextSize * config.RopeDims / 2);
            UploadAngles(device, config, contextSize, CosTable, SinTable);
            int stepRows = cacheType == KvCacheType.F16 ? b : 1;
            KeyStep = Floats(device, (long)stepRows * config.KvDim);
            ValueStep = Floats(device, (long)stepRows * config.KvDim);
            DevicePosition = Floats(device, 1);
            Logits = Floats(device, (long)b * config.VocabSize);
            TokenIds = Floats(device, b);
            ArgMax = Floats(device, 1);
        }
        catch
        {
            Dispose();
            throw;
        }
        HostLogits = new float[config.VocabSize];
    }

    // The CPU's own angles for positions 0 … contextSize − 1 (row p is what ComputeAngles(p, 1, …) gives, so any batch
    // of the CPU pass rotates by the same floats), in slices so the host buffer stays small for long contexts.
    private static void UploadAngles(IGpuDevice device, DecoderConfig config, int contextSize, DeviceBuffer cos, DeviceBuffer sin)
    {
        int half = config.RopeDims / 2;
        const int slice = 1024;
        var hostCos = new float[Math.Min(slice, contextSize) * half];
        var hostSin = new float[hostCos.Length];
        fixed (float* c = hostCos, s = hostSin)
        {
            for (int start = 0; start < contextSize; start += slice)
            {
                int n = Math.Min(slice, contextSize - start);
                Rope.ComputeAngles(start, n, config.RopeDims, config.RopeFreqBase, c, s);
                long offset = (long)start * half * 4;
                device.Upload(cos.Pointer.Offset(offset), c, (long)n * half * 4);
                device.Upload(sin.Pointer.Offset(offset), s, (long)n * half * 4);
            }
        }
    }

    /// <summary>The captured decode step for <paramref name="decoder"/> under its kernel <paramref name="choice"/>, or null when none is held.</summary>
    internal IGpuGraph? DecodeGraphFor(GpuDecoder decoder, DecodeKernelChoice choice)
        => _decodeGraphOwner == decoder && _decodeGraphChoice == choice ? _decodeGraph : null;

    internal void SetDecodeGraph(IGpuGraph graph, GpuDecoder decoder, DecodeKernelChoice choice)
    {
        InvalidateDecodeGraph();
        _decodeGraph = graph;
        _decodeGraphOwner = decoder;
        _decodeGraphChoice = choice;
    }

    /// <summary>Drops the captured decode step; the next decode step captures a new one (when graphs are on).</summary>
    public void InvalidateDecodeGraph()
    {
        _decodeGraph?.Dispose();
        _decodeGraph = null;
        _decodeGraphOwner = null;
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

    private DeviceBuffer Floats(IGpuDevice device, long count) => Bytes(device, count * 4);

    private DeviceBuffer Bytes(IGpuDevice device, long bytes)
    {
        var buffer = device.Allocate(bytes);
        _buffers.Add(buffer);
        return buffer;
    }

    public void Dispose()
    {
        InvalidateDecodeGraph();
        foreach (var b in _buffers) b.Dispose();
        _buffers.Clear();
    }
}
