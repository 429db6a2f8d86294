namespace LlavaNative.Kernels.Cuda;

/// <summary>
/// The K largest values of a device row of logits (sampling.cu: topk_first_pass, topk_merge_pass), after a
/// repetition penalty on some ids and −∞ on banned ids, with only the K (value, id) pairs coming back: the
/// candidates a host sampler needs for top-k sampling, instead of the whole vocabulary. Order: larger value first,
/// the smaller id on equal values (−0 equals +0); NaN values rank below −∞. Buffers are allocated once for rows of
/// up to <see cref="MaxCount"/> values, so <see cref="Select"/> allocates nothing (the id list's device buffer
/// grows only when a longer list than any before is passed).
/// </summary>
public sealed unsafe class DeviceTopK : IDisposable
{
    /// <summary>The largest K (the kernel's chunk of 4096 keys must shrink at least 16-fold per pass).</summary>
    public const int MaxK = 256;

    private const int Chunk = 4096;   // sampling.cu: TOPK_CHUNK
    private const int Threads = 512;  // sampling.cu: TOPK_THREADS

    private readonly KernelArguments _args = new();
    private readonly DeviceBuffer _keysA, _keysB; // [⌈MaxCount / Chunk⌉ · MaxK] 64-bit keys, ping-pong between passes
    private readonly ulong[] _hostKeys = new ulong[MaxK];
    private DeviceBuffer? _adjust;                // [capacity] ids: penalised, then banned

    public IGpuDevice Device { get; }

    /// <summary>The longest row <see cref="Select"/> takes.</summary>
    public int MaxCount { get; }

    public DeviceTopK(IGpuDevice device, int maxCount)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (maxCount <= 0) throw new ArgumentOutOfRangeException(nameof(maxCount), maxCount, "the row length must be positive");
        Device = device;
        MaxCount = maxCount;
        long keys = (long)((maxCount + Chunk - 1) / Chunk) * MaxK;
        _keysA = device.Allocate(keys * 8);
        try
        {
            _keysB = device.Allocate(keys * 8);
        }
        catch
        {
            _keysA.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Writes the <paramref name="k"/> largest of logits [n] (device memory, not modified) to
    /// <paramref name="values"/> and <paramref name="ids"/>, in order, after: logit v of each id in
    /// adjust[0 … penalized−1] becomes v &gt; 0 ? v / penalty : v · penalty (IEEE single operations), then each id
    /// in adjust[penalized …] becomes −∞. Ids outside [0, n) in <paramref name="adjust"/> are ignored; repeats are
    /// harmless.
    /// </summary>
    public void Select(DevicePtr logits, int n, ReadOnlySpan<int> adjust, int penalized, float penalty, int k, Span<float> values, Span<int> ids)
    {
        if (n <= 0 || n > MaxCount) throw new ArgumentOutOfRangeException(nameof(n), n, $"DeviceTopK: the row must hold 1 … {MaxCount} values");
        if (k <= 0 || k > Math.Min(MaxK, n)) throw new ArgumentOutOfRangeException(nameof(k), k, $"DeviceTopK: k must be in 1 … {Math.Min(MaxK, n)} for a row of {n}");
        if ((uint)penalized > (uint)adjust.Length)
            throw new ArgumentOutOfRangeException(nameof(penalized), penalized, $"DeviceTopK: {penalized} penalised ids of a list of {adjust.Length}");
        if (!(penalty > 0) || float.IsInfinity(penalty)) throw new ArgumentOutOfRangeException(nameof(penalty), penalty, "DeviceTopK: the repetition penalty must be positive and finite");
        if (values.Length < k || ids.Length < k) throw new ArgumentException($"DeviceTopK: room for {Math.Min(values.Length, ids.Length)} candidates, k is {k}");

        DevicePtr adjustPtr = default;
        if (adjust.Length > 0)
        {
            if (_adjust == null || _adjust.Bytes < adjust.Length * 4L)
            {
                _adjust?.Dispose();
                _adjust = null;
                _adjust = Device.Allocate(Math.Max(256, adjust.Length) * 4L);
            }
            fixed (int* a = adjust) Device.Upload(_adjust.Pointer, a, adjust.Length * 4L);
            adjustPtr = _adjust.Pointer;
        }

        int blocks = (n + Chunk - 1) / Chunk;
        _args.Clear().Add(logits).Add(n).Add(adjustPtr).Add(penalized).Add(adjust.Length - penalized).Add(penalty).Add(k).Add(_keysA);
        Device.Launch(Device.Kernel("topk_first_pass"), blocks, Threads, 0, _args);
        DevicePtr source = _keysA, destination = _keysB;
        int count = blocks * k;
        while (blocks > 1)
        {
            blocks = (count + Chunk - 1) / Chunk;
            _args.Clear().Add(source).Add(count).Add(k).Add(destination);
            Device.Launch(Device.Kernel("topk_merge_pass"), blocks, Threads, 0, _args);
            (source, destination) = (destination, source);
            count = blocks * k;
        }
        fixed (ulong* h = _hostKeys) Device.Download(h, source, k * 8L);
        for (int i = 0; i < k; i++) (values[i], ids[i]) = DecodeKey(_hostKeys[i]);
    }

    /// <summary>
    /// A kernel key back to (value, id): the high half is the value's bits mapped to an order-preserving unsigned
    /// (0 for NaN), the low half 0xffffffff − id.
    /// </summary>
    public static (float Value, int Id) DecodeKey(ulong key)
    {
        uint ordered = (uint)(key >> 32);
        int id = (int)(0xffffffffu - (uint)key);
        if (ordered == 0) return (float.NaN, id);
        uint bits = (ordered & 0x80000000u) != 0 ? ordered & 0x7fffffffu : ~ordered;
        return (BitConverter.UInt32BitsToSingle(bits), id);
    }

    public void Dispose()
    {
        _adjust?.Dispose();
        _adjust = null;
        _keysA.Dispose();
        _keysB.Dispose();
        _args.Dispose();
    }
}
