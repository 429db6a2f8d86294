using System.Runtime.InteropServices;
using System.Text;

namespace LlavaNative.Kernels.Cuda;

/// <summary>
/// One GPU through the CUDA driver API: its primary context, one stream for all work of a session, a pooled
/// allocator, pinned staging buffers for copies, events for timing, stream capture into graphs, and the kernel
/// module compiled from <see cref="KernelSources"/> by NVRTC at first use (cached on disk).
/// </summary>
public sealed unsafe class CudaDevice : IGpuDevice
{
    /// <summary>When "1", every launch is followed by a synchronisation, so a fault is reported by the launch that caused it.</summary>
    public const string SyncVariable = "LLAVANATIVE_CUDA_SYNC";

    private const long StagingBytes = 16L << 20;
    private const long SmallestBucket = 256;

    private readonly CudaDriverApi _cu;
    private readonly NvrtcCompiler _compiler;
    private readonly int _deviceHandle;
    private nint _context;
    private nint _stream;
    private readonly nint[] _staging = new nint[2];
    private readonly nint[] _stagingDone = new nint[2];
    private int _nextStaging;
    private readonly Dictionary<long, Stack<ulong>> _freeLists = new();
    private readonly List<ulong> _allocations = new();
    private readonly Dictionary<string, nint> _modules = new();
    private readonly Dictionary<string, GpuKernel> _kernels = new();
    private readonly HashSet<nint> _sharedMemoryRaised = new();
    private readonly bool _syncEveryLaunch;
    private bool _capturing; // a stream being captured into a graph must not be synchronised
    private bool _disposed;

    public string Name { get; }
    public (int Major, int Minor) ComputeCapability { get; }
    public int MultiprocessorCount { get; }
    public long TotalMemoryBytes { get; }
    public int DriverVersion { get; }
    public (int Major, int Minor) NvrtcVersion => _compiler.Version;
    /// <summary>Bytes currently reserved from the driver (pool included).</summary>
    public long ReservedBytes { get; private set; }

    private CudaDevice(CudaDriverApi cu, NvrtcApi nvrtc, int ordinal, CudaModuleCache cache)
    {
        _cu = cu;
        _compiler = new NvrtcCompiler(nvrtc, cache);
        _syncEveryLaunch = Environment.GetEnvironmentVariable(SyncVariable) == "1";

        int version;
        cu.Check(cu.cuDriverGetVersion(&version), "cuDriverGetVersion");
        DriverVersion = version;
        int device;
        cu.Check(cu.cuDeviceGet(&device, ordinal), "cuDeviceGet");
        _deviceHandle = device;
        byte* name = stackalloc byte[256];
        cu.Check(cu.cuDeviceGetName(name, 256, device), "cuDeviceGetName");
        int major, minor, sms;
        cu.Check(cu.cuDeviceGetAttribute(&major, CudaDriverApi.AttributeComputeCapabilityMajor, device), "cuDeviceGetAttribute");
        cu.Check(cu.cuDeviceGetAttribute(&minor, CudaDriverApi.AttributeComputeCapabilityMinor, device), "cuDeviceGetAttribute");
        cu.Check(cu.cuDeviceGetAttribute(&sms, CudaDriverApi.AttributeMultiprocessorCount, device), "cuDeviceGetAttribute");
        nuint total;
        cu.Check(cu.cuDeviceTotalMem(&total, device), "cuDeviceTotalMem_v2");
        ComputeCapability = (major, minor);
        MultiprocessorCount = sms;
        TotalMemoryBytes = (long)total;
        Name = $"{Marshal.PtrToStringUTF8((nint)name)} (sm_{major}{minor}, {sms} SMs, {total >> 20} MiB)";

        nint context;
        cu.Check(cu.cuDevicePrimaryCtxRetain(&context, device), "cuDevicePrimaryCtxRetain");
        _context = context;
        MakeCurrent();
        nint stream;
        cu.Check(cu.cuStreamCreate(&stream, CudaDriverApi.StreamNonBlocking), "cuStreamCreate");
        _stream = stream;
        for (int i = 0; i < 2; i++)
        {
            nint host, evt;
            cu.Check(cu.cuMemHostAlloc(&host, (nuint)StagingBytes, CudaDriverApi.HostAllocPortable), "cuMemHostAlloc");
            _staging[i] = host;
            cu.Check(cu.cuEventCreate(&evt, CudaDriverApi.EventDefault), "cuEventCreate");
            _stagingDone[i] = evt;
        }
    }

    /// <summary>
    /// Opens GPU <paramref name="ordinal"/>. Throws <see cref="CudaUnavailableException"/> (a message for the user,
    /// no stack trace needed) when the driver, NVRTC or a GPU is missing.
    /// </summary>
    public static CudaDevice Open(int ordinal = 0, CudaModuleCache? cache = null)
    {
        var cu = new CudaDriverApi(CudaLibraries.LoadDriver());
        int result = cu.cuInit(0);
        if (result != 0)
            throw new CudaUnavailableException($"the CUDA driver is installed but cuInit failed: {cu.ErrorName(result)} ({result}); no usable GPU");
        int count;
        cu.Check(cu.cuDeviceGetCount(&count), "cuDeviceGetCount");
        if (count == 0) throw new CudaUnavailableException("the CUDA driver reports no GPU");
        if (ordinal < 0 || ordinal >= count)
            throw new CudaUnavailableException($"GPU {ordinal} requested, but the CUDA driver reports {count} (0…{count - 1})");
        var nvrtc = new NvrtcApi(CudaLibraries.LoadNvrtc());
        return new CudaDevice(cu, nvrtc, ordinal, cache ?? CudaModuleCache.Default());
    }

    /// <summary>Opens GPU 0, or returns null with the reason (for tests and the <c>auto</c> backend choice).</summary>
    public static CudaDevice? TryOpen(out string reason)
    {
        try
        {
            reason = "";
            return Open();
        }
        catch (CudaUnavailableException e) { reason = e.Message; }
        catch (CudaException e) { reason = e.Message; }
        return null;
    }

    // Host copies through the staging buffers and synchronisation cannot be recorded into a graph.
    private void RefuseDuringCapture(string what)
    {
        if (_capturing) throw new InvalidOperationException($"{what} while the stream is being captured into a CUDA graph (between BeginCapture and EndCapture)");
    }

    private void MakeCurrent() => _cu.Check(_cu.cuCtxSetCurrent(_context), "cuCtxSetCurrent");

    // ---- memory ----

    /// <summary>Pool bucket of a request: powers of two up to 64 MiB, then multiples of 2 MiB (weights are allocated once).</summary>
    internal static long BucketOf(long bytes)
    {
        if (bytes <= SmallestBucket) return SmallestBucket;
        if (bytes <= 64L << 20) return 1L << (64 - System.Numerics.BitOperations.LeadingZeroCount((ulong)bytes - 1));
        const long granule = 2L << 20;
        return (bytes + granule - 1) / granule * granule;
    }

    public DeviceBuffer Allocate(long bytes)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        // cuMemAlloc is illegal during capture; a pool hit would be legal but is refused too, so whether a capture
        // works does not depend on the state of the pool.
        RefuseDuringCapture("Allocate");
        long bucket = BucketOf(bytes);
        if (_freeLists.TryGetValue(bucket, out var free) && free.Count > 0) return new DeviceBuffer(this, new DevicePtr(free.Pop()), bytes, bucket);
        MakeCurrent();
        ulong address;
        int result = _cu.cuMemAlloc(&address, (nuint)bucket);
        if (result != 0)
            throw new CudaException("cuMemAlloc_v2", result, _cu.ErrorName(result),
                $"{bytes} bytes requested, {ReservedBytes >> 20} MiB already reserved of {TotalMemoryBytes >> 20} MiB on {Name}");
        _allocations.Add(address);
        ReservedBytes += bucket;
        return new DeviceBuffer(this, new DevicePtr(address), bytes, bucket);
    }

    public void Free(DeviceBuffer buffer)
    {
        if (_disposed || buffer.Device != this) return;
        if (!_freeLists.TryGetValue(buffer.CapacityBytes, out var free)) _freeLists[buffer.CapacityBytes] = free = new Stack<ulong>();
        free.Push(buffer.Pointer.Address);
    }

    /// <summary>Host → device through pinned staging buffers, two in flight, so large uploads (weights) overlap copy and memcpy.</summary>
    public void Upload(DevicePtr destination, void* source, long bytes)
    {
        RefuseDuringCapture("Upload");
        MakeCurrent();
        for (long done = 0; done < bytes;)
        {
            long chunk = Math.Min(StagingBytes, bytes - done);
            int s = _nextStaging;
            _nextStaging ^= 1;
            _cu.Check(_cu.cuEventSynchronize(_stagingDone[s]), "cuEventSynchronize");
            Buffer.MemoryCopy((byte*)source + done, (void*)_staging[s], chunk, chunk);
            _cu.Check(_cu.cuMemcpyHtoDAsync(destination.Address + (ulong)done, (void*)_staging[s], (nuint)chunk, _stream), "cuMemcpyHtoDAsync_v2");
            _cu.Check(_cu.cuEventRecord(_stagingDone[s], _stream), "cuEventRecord");
            done += chunk;
        }
    }

    public void Download(void* destination, DevicePtr source, long bytes)
    {
        RefuseDuringCapture("Download");
        MakeCurrent();
        for (long done = 0; done < bytes;)
        {
            long chunk = Math.Min(StagingBytes, bytes - done);
            _cu.Check(_cu.cuMemcpyDtoHAsync((void*)_staging[0], source.Address + (ulong)done, (nuint)chunk, _stream), "cuMemcpyDtoHAsync_v2");
            _cu.Check(_cu.cuStreamSynchronize(_stream), "cuStreamSynchronize");
            Buffer.MemoryCopy((void*)_staging[0], (byte*)destination + done, chunk, chunk);
            done += chunk;
        }
    }

    public void Copy(DevicePtr destination, DevicePtr source, long bytes)
    {
        MakeCurrent();
        _cu.Check(_cu.cuMemcpyDtoDAsync(destination.Address, source.Address, (nuint)bytes, _stream), "cuMemcpyDtoDAsync_v2");
    }

    public void Fill(DevicePtr destination, byte value, long bytes)
    {
        MakeCurrent();
        _cu.Check(_cu.cuMemsetD8Async(destination.Address, value, (nuint)bytes, _stream), "cuMemsetD8Async");
    }

    // ---- kernels ----

    public GpuKernel Kernel(string name)
    {
        if (_kernels.TryGetValue(name, out var kernel)) return kernel;
        KernelSignature signature = KernelSources.Kernel(name);
        if (_capturing && !_modules.ContainsKey(signature.File))
            throw new InvalidOperationException(
                $"kernel {name} is first used while the stream is being captured into a CUDA graph: its module {signature.File} would be compiled and loaded during the capture; run the work once without capture first");
        nint module = Module(signature.File);
        nint function;
        byte[] utf8 = Encoding.UTF8.GetBytes(name + "\0");
        fixed (byte* p = utf8) _cu.Check(_cu.cuModuleGetFunction(&function, module, p), "cuModuleGetFunction");
        kernel = new GpuKernel(name, signature, function);
        _kernels[name] = kernel;
        return kernel;
    }

    private nint Module(string unit)
    {
        if (_modules.TryGetValue(unit, out nint module)) return module;
        MakeCurrent();
        var headers = KernelSources.Headers.ToDictionary(h => h, h => KernelSources.Files[h]);
        byte[] image = _compiler.Compile(unit, KernelSources.Files[unit], headers,
            NvrtcCompiler.Options(ComputeCapability.Major, ComputeCapability.Minor));
        fixed (byte* p = image) _cu.Check(_cu.cuModuleLoadData(&module, p), "cuModuleLoadData");
        _modules[unit] = module;
        return module;
    }

    public void Launch(GpuKernel kernel, Dim3 grid, Dim3 block, int sharedBytes, KernelArguments arguments)
    {
        kernel.Signature.Check(arguments);
        if (grid.Count == 0 || block.Count == 0) return; // nothing to do (an empty tensor)
        MakeCurrent();
        if (sharedBytes > 48 * 1024 && _sharedMemoryRaised.Add(kernel.Handle))
            _cu.Check(_cu.cuFuncSetAttribute(kernel.Handle, CudaDriverApi.FunctionAttributeMaxDynamicSharedSizeBytes, sharedBytes),
                "cuFuncSetAttribute");
        int result = _cu.cuLaunchKernel(kernel.Handle, grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z, (uint)sharedBytes, _stream,
            arguments.Pointers, null);
        if (result != 0)
            throw new CudaException("cuLaunchKernel", result, _cu.ErrorName(result), $"{kernel.Name} grid {grid} block {block} shared {sharedBytes}");
        if (_syncEveryLaunch && !_capturing)
        {
            result = _cu.cuStreamSynchronize(_stream);
            if (result != 0) throw new CudaException("cuStreamSynchronize", result, _cu.ErrorName(result), $"after {kernel.Name}");
        }
    }

    public void Synchronize()
    {
        RefuseDuringCapture("Synchronize");
        MakeCurrent();
        _cu.Check(_cu.cuStreamSynchronize(_stream), "cuStreamSynchronize");
    }

    // ---- timing ----

    /// <summary>A pair of events around work queued on the session stream.</summary>
    public GpuTimer CreateTimer() => new(this);

    public sealed class GpuTimer : IDisposable
    {
        private readonly CudaDevice _device;
        private nint _start, _stop;

        internal GpuTimer(CudaDevice device)
        {
            _device = device;
            nint a, b;
            device._cu.Check(device._cu.cuEventCreate(&a, CudaDriverApi.EventDefault), "cuEventCreate");
            device._cu.Check(device._cu.cuEventCreate(&b, CudaDriverApi.EventDefault), "cuEventCreate");
            _start = a;
            _stop = b;
        }

        public void Start() => _device._cu.Check(_device._cu.cuEventRecord(_start, _device._stream), "cuEventRecord");
        public void Stop() => _device._cu.Check(_device._cu.cuEventRecord(_stop, _device._stream), "cuEventRecord");

        /// <summary>Milliseconds between <see cref="Start"/> and <see cref="Stop"/> (waits for the stop event).</summary>
        public float ElapsedMilliseconds
        {
            get
            {
                _device._cu.Check(_device._cu.cuEventSynchronize(_stop), "cuEventSynchronize");
                float ms;
                _device._cu.Check(_device._cu.cuEventElapsedTime(&ms, _start, _stop), "cuEventElapsedTime");
                return ms;
            }
        }

        public void Dispose()
        {
            if (_start != 0) _device._cu.cuEventDestroy(_start);
            if (_stop != 0) _device._cu.cuEventDestroy(_stop);
            _start = _stop = 0;
        }
    }

    // ---- graphs ----

    public bool SupportsGraphs => true;

    public bool IsCapturing => _capturing;

    /// <summary>Starts recording the stream's work into a graph instead of running it (launches and copies between device buffers).</summary>
    public void BeginCapture()
    {
        if (_capturing) throw new InvalidOperationException("BeginCapture while a capture is already under way");
        MakeCurrent();
        _cu.Check(_cu.cuStreamBeginCapture(_stream, CudaDriverApi.StreamCaptureModeThreadLocal), "cuStreamBeginCapture_v2");
        _capturing = true;
    }

    /// <summary>Ends the capture started by <see cref="BeginCapture"/> and instantiates the graph.</summary>
    public CudaGraph EndCapture()
    {
        if (!_capturing) throw new InvalidOperationException("EndCapture without BeginCapture");
        MakeCurrent();
        nint graph, exec;
        _capturing = false;
        _cu.Check(_cu.cuStreamEndCapture(_stream, &graph), "cuStreamEndCapture");
        int result = _cu.cuGraphInstantiateWithFlags(&exec, graph, 0);
        if (result != 0)
        {
            _cu.cuGraphDestroy(graph);
            throw new CudaException("cuGraphInstantiateWithFlags", result, _cu.ErrorName(result));
        }
        return new CudaGraph(this, graph, exec);
    }

    IGpuGraph IGpuDevice.EndCapture() => EndCapture();

    public sealed class CudaGraph : IGpuGraph
    {
        private readonly CudaDevice _device;
        private nint _graph, _exec;

        internal CudaGraph(CudaDevice device, nint graph, nint exec)
        {
            _device = device;
            _graph = graph;
            _exec = exec;
        }

        /// <summary>Replays the captured work on the session stream.</summary>
        public void Launch()
        {
            ObjectDisposedException.ThrowIf(_exec == 0, this);
            _device.RefuseDuringCapture("a graph launch");
            _device.MakeCurrent();
            _device._cu.Check(_device._cu.cuGraphLaunch(_exec, _device._stream), "cuGraphLaunch");
        }

        public void Dispose()
        {
            if (_exec != 0) _device._cu.cuGraphExecDestroy(_exec);
            if (_graph != 0) _device._cu.cuGraphDestroy(_graph);
            _exec = _graph = 0;
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        // Teardown ignores errors: a sticky fault (an illegal address) must not hide the exception that reported it.
        _cu.cuCtxSetCurrent(_context);
        _cu.cuStreamSynchronize(_stream);
        foreach (nint module in _modules.Values) _cu.cuModuleUnload(module);
        foreach (ulong address in _allocations) _cu.cuMemFree(address);
        for (int i = 0; i < 2; i++)
        {
            if (_staging[i] != 0) _cu.cuMemFreeHost(_staging[i]);
            if (_stagingDone[i] != 0) _cu.cuEventDestroy(_stagingDone[i]);
        }
        _cu.cuStreamDestroy(_stream);
        _cu.cuDevicePrimaryCtxRelease(_deviceHandle);
        _modules.Clear();
        _allocations.Clear();
        _freeLists.Clear();
    }
}
