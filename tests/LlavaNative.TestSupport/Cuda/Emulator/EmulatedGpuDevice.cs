using System.Runtime.InteropServices;
using LlavaNative.Kernels.Cuda;

namespace LlavaNative.TestSupport.Cuda.Emulator;

/// <summary>
/// <see cref="IGpuDevice"/> over the <see cref="CudaEmulator"/>: "device memory" is host memory, launches run the
/// g++-compiled kernels. Stricter than a GPU where it helps find bugs: new allocations are filled with 0xFF
/// (NaN as floats) so unwritten outputs show; each allocation is followed by guard bytes checked after every
/// launch, so a kernel writing past a buffer's end fails the launch that did it; copies must lie inside a live
/// allocation; shared memory beyond the static declarations (dynamic shared memory) is refused.
/// Graphs: between <see cref="BeginCapture"/> and <see cref="EndCapture"/> launches and fills are recorded (with a
/// copy of their argument values), not run, and a replay runs them in order with the same checks; the rules the
/// driver enforces during a capture are enforced here too: no allocation or free, no upload, download or
/// synchronisation, no first use of a kernel unit (the driver would load a module), no nested capture.
/// </summary>
public sealed unsafe class EmulatedGpuDevice : IGpuDevice
{
    private const int GuardBytes = 256;
    private const byte GuardValue = 0xA7;

    private readonly CudaEmulator _emulator;
    // A Dictionary, not a SortedDictionary: its enumerator is a struct, so the checks around a launch allocate nothing.
    private readonly Dictionary<ulong, long> _allocations = new();
    private readonly Dictionary<string, GpuKernel> _kernels = new();

    public EmulatedGpuDevice(CudaEmulator emulator) => _emulator = emulator;

    /// <summary>
    /// An emulator that reports <paramref name="computeCapability"/> (default 8.0, which has mma.sync), so tests can
    /// check what the launchers decide for an older device; the emulated kernels themselves do not change.
    /// </summary>
    public EmulatedGpuDevice(CudaEmulator emulator, (int Major, int Minor) computeCapability) : this(emulator) => ComputeCapability = computeCapability;

    public string Name => "CUDA host emulator (g++, fibers)";
    public (int Major, int Minor) ComputeCapability { get; } = (8, 0);

    /// <summary>Launches so far (tests check that an op launched what it should).</summary>
    public int LaunchCount { get; private set; }

    /// <summary>Allocations so far (tests check that a steady-state pass allocates no device memory).</summary>
    public int AllocationCount { get; private set; }

    /// <summary>Bytes copied device → host so far, and the largest single copy (tests check what a step brings back).</summary>
    public long DownloadedBytes { get; private set; }
    public long LargestDownloadBytes { get; private set; }

    public DeviceBuffer Allocate(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        RefuseDuringCapture("Allocate (cuMemAlloc)");
        AllocationCount++;
        byte* p = (byte*)NativeMemory.AlignedAlloc((nuint)(bytes + GuardBytes), 256);
        NativeMemory.Fill(p, (nuint)bytes, 0xFF);
        NativeMemory.Fill(p + bytes, GuardBytes, GuardValue);
        _allocations[(ulong)p] = bytes;
        return new DeviceBuffer(this, new DevicePtr((ulong)p), bytes, bytes);
    }

    public void Free(DeviceBuffer buffer)
    {
        RefuseDuringCapture("Free (cuMemFree)");
        if (!_allocations.Remove(buffer.Pointer.Address, out long bytes))
            throw new InvalidOperationException($"free of {buffer.Pointer}, which is not a live allocation");
        CheckGuard(buffer.Pointer.Address, bytes, "before free");
        NativeMemory.AlignedFree((void*)buffer.Pointer.Address);
    }

    private void CheckRange(DevicePtr p, long bytes, string what)
    {
        if (!InsideOneAllocation(p, bytes)) throw OutsideAllocations(p, bytes, what);
    }

    private bool InsideOneAllocation(DevicePtr p, long bytes)
    {
        foreach (var (start, length) in _allocations)
        {
            if (p.Address >= start && p.Address + (ulong)bytes <= start + (ulong)length) return true;
        }
        return false;
    }

    private static InvalidOperationException OutsideAllocations(DevicePtr p, long bytes, string what) =>
        new($"{what} of {bytes} bytes at {p} is not inside one live device allocation");

    // The kernel's name is passed apart from "after " so a launch builds no string unless a guard is broken
    // (the GPU decoder's tests count the managed bytes a decode step allocates).
    private static void CheckGuard(ulong start, long bytes, string when, string? kernel = null)
    {
        byte* guard = (byte*)start + bytes;
        for (int i = 0; i < GuardBytes; i++)
            if (guard[i] != GuardValue)
            {
                NativeMemory.Fill(guard, GuardBytes, GuardValue); // report each overrun once
                throw new InvalidOperationException($"device buffer 0x{start:x} ({bytes} bytes) was written {i} bytes past its end ({when}{kernel})");
            }
    }

    public void Upload(DevicePtr destination, void* source, long bytes)
    {
        RefuseDuringCapture("Upload");
        CheckRange(destination, bytes, "upload");
        Buffer.MemoryCopy(source, (void*)destination.Address, bytes, bytes);
    }

    public void Download(void* destination, DevicePtr source, long bytes)
    {
        RefuseDuringCapture("Download");
        CheckRange(source, bytes, "download");
        DownloadedBytes += bytes;
        LargestDownloadBytes = Math.Max(LargestDownloadBytes, bytes);
        Buffer.MemoryCopy((void*)source.Address, destination, bytes, bytes);
    }

    public void Fill(DevicePtr destination, byte value, long bytes)
    {
        CheckRange(destination, bytes, "fill");
        if (_capture != null)
        {
            _capture.Add(new RecordedWork(null, default, default, 0, 0, null, destination, value, bytes));
            return;
        }
        NativeMemory.Fill((void*)destination.Address, (nuint)bytes, value);
    }

    public GpuKernel Kernel(string name)
    {
        if (_kernels.TryGetValue(name, out var kernel)) return kernel;
        if (!CudaEmulator.Signatures.TryGetValue(name, out var signature))
            throw new ArgumentException($"no CUDA kernel named '{name}' in the emulator library");
        if (_capture != null && !_loadedUnits.Contains(signature.File))
            throw new InvalidOperationException(
                $"kernel {name} is first used during a graph capture: on a GPU its module {signature.File} would be compiled and loaded inside the capture; run the work once without capture first");
        _loadedUnits.Add(signature.File);
        int index = _emulator.Find(name);
        if (index < 0) throw new InvalidOperationException($"kernel {name} is missing from the emulator library {_emulator.LibraryPath}");
        kernel = new GpuKernel(name, signature, index);
        _kernels[name] = kernel;
        return kernel;
    }

    public void Launch(GpuKernel kernel, Dim3 grid, Dim3 block, int sharedBytes, KernelArguments arguments)
    {
        kernel.Signature.Check(arguments);
        if (sharedBytes != 0) throw new NotSupportedException($"{kernel.Name}: dynamic shared memory is not emulated");
        for (int i = 0; i < arguments.Count; i++)
        {
            if (arguments.Kind(i) != KernelArgumentKind.Pointer) continue;
            ulong address = *(ulong*)arguments.Pointers[i];
            if (address != 0 && !InsideOneAllocation(new DevicePtr(address), 0))
                throw OutsideAllocations(new DevicePtr(address), 0, $"{kernel.Name} argument {i} ({kernel.Signature.Parameters[i].Name})");
        }
        if (grid.Count == 0 || block.Count == 0) return;
        if (_capture != null)
        {
            _capture.Add(new RecordedWork(kernel, grid, block, sharedBytes, arguments.Count, CopyArguments(arguments), default, 0, 0));
            return;
        }
        Run(kernel, grid, block, arguments.Pointers);
    }

    private void Run(GpuKernel kernel, Dim3 grid, Dim3 block, void** arguments)
    {
        LaunchCount++;
        _emulator.Launch((int)kernel.Handle, kernel.Name, grid, block, arguments);
        foreach (var (start, bytes) in _allocations) CheckGuard(start, bytes, "after ", kernel.Name);
    }

    public void Synchronize() => RefuseDuringCapture("Synchronize");

    // ---- graphs ----

    private List<RecordedWork>? _capture;
    private readonly HashSet<string> _loadedUnits = new();

    /// <summary>Graph replays so far (tests check that decode steps went through a graph).</summary>
    public int GraphLaunchCount { get; private set; }

    /// <summary>Graphs captured so far.</summary>
    public int GraphCaptureCount { get; private set; }

    public bool SupportsGraphs => true;

    public bool IsCapturing => _capture != null;

    private void RefuseDuringCapture(string what)
    {
        if (_capture != null)
            throw new InvalidOperationException($"{what} while the stream is being captured into a graph (between BeginCapture and EndCapture): the CUDA driver does not allow it");
    }

    public void BeginCapture()
    {
        if (_capture != null) throw new InvalidOperationException("BeginCapture while a capture is already under way");
        _capture = [];
    }

    public IGpuGraph EndCapture()
    {
        var work = _capture ?? throw new InvalidOperationException("EndCapture without BeginCapture");
        _capture = null;
        GraphCaptureCount++;
        return new EmulatedGraph(this, work.ToArray());
    }

    /// <summary>
    /// A launch (<see cref="Kernel"/> set; its argument values copied into <see cref="Arguments"/>, a <c>void**</c>
    /// block of <see cref="ArgumentCount"/> pointers followed by the 8-byte values they point at) or a fill.
    /// </summary>
    private sealed class RecordedWork(GpuKernel? kernel, Dim3 grid, Dim3 block, int sharedBytes, int argumentCount, void** arguments,
        DevicePtr fillDestination, byte fillValue, long fillBytes)
    {
        public readonly GpuKernel? Kernel = kernel;
        public readonly Dim3 Grid = grid, Block = block;
        public readonly int SharedBytes = sharedBytes, ArgumentCount = argumentCount;
        public readonly void** Arguments = arguments;
        public readonly DevicePtr FillDestination = fillDestination;
        public readonly byte FillValue = fillValue;
        public readonly long FillBytes = fillBytes;
    }

    private static void** CopyArguments(KernelArguments arguments)
    {
        int n = arguments.Count;
        var block = (void**)NativeMemory.AllocZeroed((nuint)(n * (sizeof(void*) + sizeof(ulong)) + 8));
        ulong* values = (ulong*)(block + n);
        for (int i = 0; i < n; i++)
        {
            values[i] = *(ulong*)arguments.Pointers[i];
            block[i] = values + i;
        }
        return block;
    }

    private sealed class EmulatedGraph(EmulatedGpuDevice device, RecordedWork[] work) : IGpuGraph
    {
        private bool _disposed;

        public void Launch()
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            device.RefuseDuringCapture("a graph launch");
            device.GraphLaunchCount++;
            foreach (var w in work)
            {
                if (w.Kernel is not { } kernel)
                {
                    device.Fill(w.FillDestination, w.FillValue, w.FillBytes);
                    continue;
                }
                // A buffer the graph uses may have been freed since the capture: the same check as a direct launch.
                for (int i = 0; i < w.ArgumentCount; i++)
                {
                    if (kernel.Signature.Parameters[i].Kind != KernelArgumentKind.Pointer) continue;
                    ulong address = *(ulong*)w.Arguments[i];
                    if (address != 0 && !device.InsideOneAllocation(new DevicePtr(address), 0))
                        throw OutsideAllocations(new DevicePtr(address), 0, $"graph replay: {kernel.Name} argument {i} ({kernel.Signature.Parameters[i].Name})");
                }
                device.Run(kernel, w.Grid, w.Block, w.Arguments);
            }
        }

        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            foreach (var w in work)
                if (w.Arguments != null) NativeMemory.Free(w.Arguments);
        }
    }

    public void Dispose()
    {
        foreach (ulong start in _allocations.Keys) NativeMemory.AlignedFree((void*)start);
        _allocations.Clear();
    }
}
