using LlavaNative.Kernels.Cuda;

namespace LlavaNative.Model.Language;

/// <summary>
/// Everything one GPU decoding session mutates (<see cref="DecoderState"/>'s device twin), allocated once: the
/// F32 KV cache and the activation buffers for batches of up to <see cref="MaxBatch"/> tokens on the device,
/// and the few host arrays the pass copies through. Decode steps reuse these and allocate nothing.
/// </summary>
public sealed class GpuDecoderState : IDisposable
{
    private readonly List<DeviceBuffer> _buffers = [];

    public DecoderConfig Config { get; }
    public int ContextSize { get; }
    public int MaxBatch { get; }

    /// <summary>Number of positions already in the KV cache.</summary>
    public int Position { get; internal set; }

    public DeviceBuffer[] KeyCache { get; }   // per layer [ContextSize, kvDim]
    public DeviceBuffer[] ValueCache { get; } // per layer [ContextSize, kvDim]
    public DeviceBuffer X { get; }            // [MaxBatch, dim] residual stream
    public DeviceBuffer Normed { get; }       // [MaxBatch, dim]
    public DeviceBuffer Query { get; }        // [MaxBatch, qDim]
    public DeviceBuffer AttnOut { get; }      // [MaxBatch, qDim]
    public DeviceBuffer Gate { get; }         // [MaxBatch, ffn]
    public DeviceBuffer Up { get; }           // [MaxBatch, ffn]
    public DeviceBuffer Cos { get; }          // [MaxBatch, ropeDims/2]
    public DeviceBuffer Sin { get; }          // [MaxBatch, ropeDims/2]
    public DeviceBuffer Logits { get; }       // [MaxBatch, vocab] (row 0 only when not all logits are wanted)
    public DeviceBuffer TokenIds { get; }     // [MaxBatch] int
    public DeviceBuffer ArgMax { get; }       // [1] int

    /// <summary>The last position's logits [vocab] after a pass that copied them back.</summary>
    public float[] HostLogits { get; }
    internal float[] HostCos { get; }         // [MaxBatch, ropeDims/2]
    internal float[] HostSin { get; }
    internal int[] HostArgMax { get; } = new int[1];

    public GpuDecoderState(IGpuDevice device, DecoderConfig config, int contextSize, int maxBatch = 256)
    {
        if (contextSize <= 0) throw new ArgumentOutOfRangeException(nameof(contextSize), contextSize, "context size must be positive");
        if (maxBatch <= 0) throw new ArgumentOutOfRangeException(nameof(maxBatch), maxBatch, "batch size must be positive");
        Config = config;
        ContextSize = contextSize;
        MaxBatch = Math.Min(maxBatch, contextSize);
        int b = MaxBatch;
        try
        {
            KeyCache = new DeviceBuffer[config.Layers];
            ValueCache = new DeviceBuffer[config.Layers];
            for (int l = 0; l < config.Layers; l++)
            {
                KeyCache[l] = Floats(device, (long)contextSize * config.KvDim);
                ValueCache[l] = Floats(device, (long)contextSize * config.KvDim);
            }
            X = Floats(device, (long)b * config.Dim);
            Normed = Floats(device, (long)b * config.Dim);
            Query = Floats(device, (long)b * config.QueryDim);
            AttnOut = Floats(device, (long)b * config.QueryDim);
            Gate = Floats(device, (long)b * config.FeedForward);
            Up = Floats(device, (long)b * config.FeedForward);
            Cos = Floats(device, (long)b * config.RopeDims / 2);
            Sin = Floats(device, (long)b * config.RopeDims / 2);
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
        HostCos = new float[b * config.RopeDims / 2];
        HostSin = new float[b * config.RopeDims / 2];
    }

    /// <summary>Bytes held by the KV cache.</summary>
    public long KvCacheBytes => 2L * Config.Layers * ContextSize * Config.KvDim * sizeof(float);

    /// <summary>Forgets the conversation: the next token goes to position 0.</summary>
    public void Reset() => Position = 0;

    /// <summary>Drops every position from <paramref name="position"/> on (e.g. to regenerate an answer).</summary>
    public void Truncate(int position)
    {
        if (position < 0 || position > Position) throw new ArgumentOutOfRangeException(nameof(position));
        Position = position;
    }

    private DeviceBuffer Floats(IGpuDevice device, long count)
    {
        var buffer = device.Allocate(count * 4);
        _buffers.Add(buffer);
        return buffer;
    }

    public void Dispose()
    {
        foreach (var b in _buffers) b.Dispose();
        _buffers.Clear();
    }
}
