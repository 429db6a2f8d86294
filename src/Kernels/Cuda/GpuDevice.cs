using System.Runtime.InteropServices;

namespace LlavaNative.Kernels.Cuda;

/// <summary>An address in device memory (a <c>CUdeviceptr</c>): passed to kernels as a 64-bit pointer.</summary>
public readonly record struct DevicePtr(ulong Address)
{
    public DevicePtr Offset(long bytes) => new(Address + (ulong)bytes);
    public override string ToString() => $"0x{Address:x}";
}

/// <summary>Grid or block extent of a launch.</summary>
public readonly record struct Dim3(uint X, uint Y = 1, uint Z = 1)
{
    public static implicit operator Dim3(int x) => new((uint)x);
    public static implicit operator Dim3(uint x) => new(x);
    public ulong Count => (ulong)X * Y * Z;
}

/// <summary>
/// A device allocation. Disposing returns it to the device's pool; the device frees everything it still
/// holds when it is disposed.
/// </summary>
public sealed class DeviceBuffer : IDisposable
{
    public IGpuDevice Device { get; }
    public DevicePtr Pointer { get; }
    public long Bytes { get; }
    /// <summary>The size actually reserved (a pool bucket), at least <see cref="Bytes"/>.</summary>
    public long CapacityBytes { get; }
    private bool _released;

    public DeviceBuffer(IGpuDevice device, DevicePtr pointer, long bytes, long capacityBytes)
    {
        Device = device;
        Pointer = pointer;
        Bytes = bytes;
        CapacityBytes = capacityBytes;
    }

    public static implicit operator DevicePtr(DeviceBuffer buffer) => buffer.Pointer;

    public void Dispose()
    {
        if (_released) return;
        _released = true;
        Device.Free(this);
    }
}

/// <summary>A kernel of the device's compiled module, found by its <c>extern "C"</c> name.</summary>
public sealed class GpuKernel(string name, KernelSignature signature, nint handle)
{
    public string Name { get; } = name;
    public KernelSignature Signature { get; } = signature;
    /// <summary>The driver's CUfunction, or the emulator's entry.</summary>
    public nint Handle { get; } = handle;
    public override string ToString() => Name;
}

/// <summary>
/// "A device": what kernel launchers need, implemented by the CUDA driver (<see cref="CudaDevice"/>) and, in
/// the tests, by a host emulator that runs the same <c>.cu</c> sources compiled for the CPU — so the launch code
/// (grids, argument marshalling, buffers) is exercised in CI without a GPU. Copies are ordered with launches
/// (one stream); <see cref="Download"/> returns once the data is on the host.
/// </summary>
public interface IGpuDevice : IDisposable
{
    /// <summary>A human-readable name, e.g. "NVIDIA H100 80GB HBM3 (sm_90)".</summary>
    string Name { get; }

    /// <summary>Compute capability (major, minor).</summary>
    (int Major, int Minor) ComputeCapability { get; }

    /// <summary>
    /// Held for a whole unit of work on this device (a decoder forward pass, one image through an encoder): units from
    /// different threads — two sessions of one model — then run one after another on the device's one stream, and
    /// never interleave their launches into a launcher's shared scratch. Re-entrant (a Monitor).
    /// </summary>
    object WorkLock => this;

    DeviceBuffer Allocate(long bytes);

    /// <summary>Returns <paramref name="buffer"/>'s memory to the pool (called by <see cref="DeviceBuffer.Dispose"/>).</summary>
    void Free(DeviceBuffer buffer);

    unsafe void Upload(DevicePtr destination, void* source, long bytes);

    unsafe void Download(void* destination, DevicePtr source, long bytes);

    /// <summary>Sets <paramref name="bytes"/> bytes at <paramref name="destination"/> to <paramref name="value"/>.</summary>
    void Fill(DevicePtr destination, byte value, long bytes);

    /// <summary>The kernel named <paramref name="name"/> (compiled at first use).</summary>
    GpuKernel Kernel(string name);

    /// <summary>Launches <paramref name="kernel"/>; <paramref name="arguments"/> must match its signature exactly.</summary>
    void Launch(GpuKernel kernel, Dim3 grid, Dim3 block, int sharedBytes, KernelArguments arguments);

    /// <summary>Waits for all queued work.</summary>
    void Synchronize();

    /// <summary>Whether <see cref="BeginCapture"/> / <see cref="EndCapture"/> record work into replayable graphs.</summary>
    bool SupportsGraphs => false;

    /// <summary>True between <see cref="BeginCapture"/> and <see cref="EndCapture"/>.</summary>
    bool IsCapturing => false;

    /// <summary>
    /// Starts recording the stream's launches and fills into a graph instead of running them (CUDA stream capture).
    /// Until <see cref="EndCapture"/>, nothing may allocate, free, upload, download or synchronize (the driver forbids
    /// it or cannot record it; implementations throw), and every kernel used must have been used once before (its
    /// module loaded). Argument values are copied when each launch is recorded: a replay sees the same pointers and
    /// sizes, so anything that changes between replays must be read by the kernels from device memory.
    /// </summary>
    void BeginCapture() => throw new NotSupportedException($"{Name} cannot capture work into graphs");

    /// <summary>Ends the capture and returns the recorded work, ready to replay.</summary>
    IGpuGraph EndCapture() => throw new NotSupportedException($"{Name} cannot capture work into graphs");
}

/// <summary>Work recorded by <see cref="IGpuDevice.BeginCapture"/> … <see cref="IGpuDevice.EndCapture"/> (a CUDA graph).</summary>
public interface IGpuGraph : IDisposable
{
    /// <summary>Queues the recorded work on the device's stream, in order, with the argument values it was recorded with.</summary>
    void Launch();
}

/// <summary>Span helpers over <see cref="IGpuDevice"/>'s pointer copies.</summary>
public static unsafe class GpuDeviceExtensions
{
    public static DeviceBuffer Upload<T>(this IGpuDevice device, ReadOnlySpan<T> data) where T : unmanaged
    {
        var buffer = device.Allocate((long)data.Length * sizeof(T));
        fixed (T* p = data) device.Upload(buffer.Pointer, p, buffer.Bytes);
        return buffer;
    }

    public static void Upload<T>(this IGpuDevice device, DevicePtr destination, ReadOnlySpan<T> data) where T : unmanaged
    {
        fixed (T* p = data) device.Upload(destination, p, (long)data.Length * sizeof(T));
    }

    public static void Download<T>(this IGpuDevice device, Span<T> destination, DevicePtr source) where T : unmanaged
    {
        fixed (T* p = destination) device.Download(p, source, (long)destination.Length * sizeof(T));
    }

    public static T[] Download<T>(this IGpuDevice device, DeviceBuffer source) where T : unmanaged
    {
        var result = new T[source.Bytes / sizeof(T)];
        device.Download<T>(result, source.Pointer);
        return result;
    }
}

/// <summary>Kind of one kernel parameter, as far as the launch ABI cares.</summary>
public enum KernelArgumentKind : byte { Int32, UInt32, Float32, Int64, Pointer }

/// <summary>
/// The argument block of one launch, reused across launches (no allocation per launch). Each value lives in
/// an 8-byte slot of unmanaged memory; <see cref="Pointers"/> is the <c>void**</c> array cuLaunchKernel reads
/// (one pointer to each argument's value). The kinds are kept so a launch can be checked against the
/// kernel's declared parameters: an int where the kernel takes a pointer, or a float where it takes an int,
/// is a launch-time error instead of garbage on the GPU.
/// </summary>
public sealed unsafe class KernelArguments : IDisposable
{
    public const int Capacity = 24;
    private readonly ulong* _values;
    private readonly void** _pointers;
    private readonly KernelArgumentKind[] _kinds = new KernelArgumentKind[Capacity];

    public int Count { get; private set; }

    public KernelArguments()
    {
        _values = (ulong*)NativeMemory.AllocZeroed(Capacity * sizeof(ulong));
        _pointers = (void**)NativeMemory.AllocZeroed((nuint)(Capacity * sizeof(void*)));
        for (int i = 0; i < Capacity; i++) _pointers[i] = _values + i;
    }

    public void** Pointers => _pointers;

    public KernelArgumentKind Kind(int index) => _kinds[index];

    public KernelArguments Clear() { Count = 0; return this; }

    public KernelArguments Add(int value) => Put(KernelArgumentKind.Int32, (uint)value);
    public KernelArguments Add(uint value) => Put(KernelArgumentKind.UInt32, value);
    public KernelArguments Add(float value) => Put(KernelArgumentKind.Float32, BitConverter.SingleToUInt32Bits(value));
    public KernelArguments Add(long value) => Put(KernelArgumentKind.Int64, (ulong)value);
    public KernelArguments Add(DevicePtr value) => Put(KernelArgumentKind.Pointer, value.Address);
    public KernelArguments Add(DeviceBuffer value) => Put(KernelArgumentKind.Pointer, value.Pointer.Address);

    private KernelArguments Put(KernelArgumentKind kind, ulong bits)
    {
        if (Count == Capacity) throw new InvalidOperationException($"more than {Capacity} kernel arguments");
        _values[Count] = 0;
        // Little-endian: a 4-byte argument occupies the first 4 bytes of its slot, where the pointer points.
        if (kind is KernelArgumentKind.Int32 or KernelArgumentKind.UInt32 or KernelArgumentKind.Float32) *(uint*)(_values + Count) = (uint)bits;
        else _values[Count] = bits;
        _kinds[Count++] = kind;
        return this;
    }

    private bool _disposed;

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        NativeMemory.Free(_values);
        NativeMemory.Free(_pointers);
        GC.SuppressFinalize(this);
    }

    ~KernelArguments() => Dispose();
}
