using System.Runtime.InteropServices;
using LlavaNative.Kernels.Cuda;

namespace LlavaNative.TestSupport.Cuda.Emulator;

/// <summary>
/// <see cref="IGpuDevice"/> over the <see cref="CudaEmulator"/>: "device memory" is host memory, launches run the
/// g++-compiled kernels. Stricter than a GPU where it helps find bugs: new allocations are filled with 0xFF
/// (NaN as floats) so unwritten outputs show; each allocation is followed by guard bytes checked after every
/// launch, so a kernel writing past a buffer's end fails the launch that did it; copies must lie inside a live
/// allocation; shared memory beyond the static declarations (dynamic shared memory) is refused.
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
        AllocationCount++;
        byte* p = (byte*)NativeMemory.AlignedAlloc((nuint)(bytes + GuardBytes), 256);
        NativeMemory.Fill(p, (nuint)bytes, 0xFF);
        NativeMemory.Fill(p + bytes, GuardBytes, GuardValue);
        _allocations[(ulong)p] = bytes;
        return new DeviceBuffer(this, new DevicePtr((ulong)p), bytes, bytes);
    }

    public void Free(DeviceBuffer buffer)
    {
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
        CheckRange(destination, bytes, "upload");
        Buffer.MemoryCopy(source, (void*)destination.Address, bytes, bytes);
    }

    public void Download(void* destination, DevicePtr source, long bytes)
    {
        CheckRange(source, bytes, "download");
        DownloadedBytes += bytes;
        LargestDownloadBytes = Math.Max(LargestDownloadBytes, bytes);
        Buffer.MemoryCopy((void*)source.Address, destination, bytes, bytes);
    }

    public void Fill(DevicePtr destination, byte value, long bytes)
    {
        CheckRange(destination, bytes, "fill");
        NativeMemory.Fill((void*)destination.Address, (nuint)bytes, value);
    }

    public GpuKernel Kernel(string name)
    {
        if (_kernels.TryGetValue(name, out var kernel)) return kernel;
        if (!CudaEmulator.Signatures.TryGetValue(name, out var signature))
            throw new ArgumentException($"no CUDA kernel named '{name}' in the emulator library");
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
        LaunchCount++;
        _emulator.Launch((int)kernel.Handle, kernel.Name, grid, block, arguments.Pointers);
        foreach (var (start, bytes) in _allocations) CheckGuard(start, bytes, "after ", kernel.Name);
    }

    public void Synchronize() { }

    public void Dispose()
    {
        foreach (ulong start in _allocations.Keys) NativeMemory.AlignedFree((void*)start);
        _allocations.Clear();
    }
}
