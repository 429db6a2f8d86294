using System.Runtime.InteropServices;

namespace LlavaNative.Kernels.Cuda;

/// <summary>
/// The subset of the CUDA driver API (<c>cuda.h</c>) the engine uses, bound at run time from the library
/// <see cref="CudaLibraries"/> found. Names are the exported symbols, with the <c>_v2</c> suffixes <c>cuda.h</c>
/// maps the plain names to. Handles are opaque pointers; <c>CUdeviceptr</c> is a 64-bit integer.
/// Every call goes through <see cref="Check"/>, which turns a non-zero CUresult into a <see cref="CudaException"/>.
/// </summary>
internal sealed unsafe class CudaDriverApi
{
    // CUdevice_attribute values (cuda.h).
    public const int AttributeMultiprocessorCount = 16;
    public const int AttributeComputeCapabilityMajor = 75;
    public const int AttributeComputeCapabilityMinor = 76;
    public const int AttributeMaxSharedMemoryPerBlockOptin = 97;

    public const int EventDefault = 0;
    public const int StreamNonBlocking = 1;
    public const int StreamCaptureModeThreadLocal = 1;
    public const int HostAllocPortable = 1;
    public const int FunctionAttributeMaxDynamicSharedSizeBytes = 8;

    public readonly delegate* unmanaged<uint, int> cuInit;
    public readonly delegate* unmanaged<int*, int> cuDriverGetVersion;
    public readonly delegate* unmanaged<int*, int> cuDeviceGetCount;
    public readonly delegate* unmanaged<int*, int, int> cuDeviceGet;
    public readonly delegate* unmanaged<byte*, int, int, int> cuDeviceGetName;
    public readonly delegate* unmanaged<int*, int, int, int> cuDeviceGetAttribute;
    public readonly delegate* unmanaged<nuint*, int, int> cuDeviceTotalMem;
    public readonly delegate* unmanaged<nint*, int, int> cuDevicePrimaryCtxRetain;
    public readonly delegate* unmanaged<int, int> cuDevicePrimaryCtxRelease;
    public readonly delegate* unmanaged<nint, int> cuCtxSetCurrent;
    public readonly delegate* unmanaged<int> cuCtxSynchronize;
    public readonly delegate* unmanaged<ulong*, nuint, int> cuMemAlloc;
    public readonly delegate* unmanaged<ulong, int> cuMemFree;
    public readonly delegate* unmanaged<nint*, nuint, uint, int> cuMemHostAlloc;
    public readonly delegate* unmanaged<nint, int> cuMemFreeHost;
    public readonly delegate* unmanaged<ulong, void*, nuint, nint, int> cuMemcpyHtoDAsync;
    public readonly delegate* unmanaged<void*, ulong, nuint, nint, int> cuMemcpyDtoHAsync;
    public readonly delegate* unmanaged<ulong, ulong, nuint, nint, int> cuMemcpyDtoDAsync;
    public readonly delegate* unmanaged<ulong, byte, nuint, nint, int> cuMemsetD8Async;
    public readonly delegate* unmanaged<nint*, uint, int> cuStreamCreate;
    public readonly delegate* unmanaged<nint, int> cuStreamDestroy;
    public readonly delegate* unmanaged<nint, int> cuStreamSynchronize;
    public readonly delegate* unmanaged<nint*, uint, int> cuEventCreate;
    public readonly delegate* unmanaged<nint, nint, int> cuEventRecord;
    public readonly delegate* unmanaged<nint, int> cuEventSynchronize;
    public readonly delegate* unmanaged<float*, nint, nint, int> cuEventElapsedTime;
    public readonly delegate* unmanaged<nint, int> cuEventDestroy;
    public readonly delegate* unmanaged<nint*, void*, int> cuModuleLoadData;
    public readonly delegate* unmanaged<nint, int> cuModuleUnload;
    public readonly delegate* unmanaged<nint*, nint, byte*, int> cuModuleGetFunction;
    public readonly delegate* unmanaged<nint, int, int, int> cuFuncSetAttribute;
    public readonly delegate* unmanaged<nint, uint, uint, uint, uint, uint, uint, uint, nint, void**, void**, int> cuLaunchKernel;
    public readonly delegate* unmanaged<nint, int, int> cuStreamBeginCapture;
    public readonly delegate* unmanaged<nint, nint*, int> cuStreamEndCapture;
    public readonly delegate* unmanaged<nint*, nint, ulong, int> cuGraphInstantiateWithFlags;
    public readonly delegate* unmanaged<nint, nint, int> cuGraphLaunch;
    public readonly delegate* unmanaged<nint, int> cuGraphExecDestroy;
    public readonly delegate* unmanaged<nint, int> cuGraphDestroy;
    public readonly delegate* unmanaged<int, byte**, int> cuGetErrorName;

    public CudaDriverApi(nint library)
    {
        cuInit = (delegate* unmanaged<uint, int>)Export(library, "cuInit");
        cuDriverGetVersion = (delegate* unmanaged<int*, int>)Export(library, "cuDriverGetVersion");
        cuDeviceGetCount = (delegate* unmanaged<int*, int>)Export(library, "cuDeviceGetCount");
        cuDeviceGet = (delegate* unmanaged<int*, int, int>)Export(library, "cuDeviceGet");
        cuDeviceGetName = (delegate* unmanaged<byte*, int, int, int>)Export(library, "cuDeviceGetName");
        cuDeviceGetAttribute = (delegate* unmanaged<int*, int, int, int>)Export(library, "cuDeviceGetAttribute");
        cuDeviceTotalMem = (delegate* unmanaged<nuint*, int, int>)Export(library, "cuDeviceTotalMem_v2");
        cuDevicePrimaryCtxRetain = (delegate* unmanaged<nint*, int, int>)Export(library, "cuDevicePrimaryCtxRetain");
        cuDevicePrimaryCtxRelease = (delegate* unmanaged<int, int>)Export(library, "cuDevicePrimaryCtxRelease_v2");
        cuCtxSetCurrent = (delegate* unmanaged<nint, int>)Export(library, "cuCtxSetCurrent");
        cuCtxSynchronize = (delegate* unmanaged<int>)Export(library, "cuCtxSynchronize");
        cuMemAlloc = (delegate* unmanaged<ulong*, nuint, int>)Export(library, "cuMemAlloc_v2");
        cuMemFree = (delegate* unmanaged<ulong, int>)Export(library, "cuMemFree_v2");
        cuMemHostAlloc = (delegate* unmanaged<nint*, nuint, uint, int>)Export(library, "cuMemHostAlloc");
        cuMemFreeHost = (delegate* unmanaged<nint, int>)Export(library, "cuMemFreeHost");
        cuMemcpyHtoDAsync = (delegate* unmanaged<ulong, void*, nuint, nint, int>)Export(library, "cuMemcpyHtoDAsync_v2");
        cuMemcpyDtoHAsync = (delegate* unmanaged<void*, ulong, nuint, nint, int>)Export(library, "cuMemcpyDtoHAsync_v2");
        cuMemcpyDtoDAsync = (delegate* unmanaged<ulong, ulong, nuint, nint, int>)Export(library, "cuMemcpyDtoDAsync_v2");
        cuMemsetD8Async = (delegate* unmanaged<ulong, byte, nuint, nint, int>)Export(library, "cuMemsetD8Async");
        cuStreamCreate = (delegate* unmanaged<nint*, uint, int>)Export(library, "cuStreamCreate");
        cuStreamDestroy = (delegate* unmanaged<nint, int>)Export(library, "cuStreamDestroy_v2");
        cuStreamSynchronize = (delegate* unmanaged<nint, int>)Export(library, "cuStreamSynchronize");
        cuEventCreate = (delegate* unmanaged<nint*, uint, int>)Export(library, "cuEventCreate");
        cuEventRecord = (delegate* unmanaged<nint, nint, int>)Export(library, "cuEventRecord");
        cuEventSynchronize = (delegate* unmanaged<nint, int>)Export(library, "cuEventSynchronize");
        cuEventElapsedTime = (delegate* unmanaged<float*, nint, nint, int>)Export(library, "cuEventElapsedTime");
        cuEventDestroy = (delegate* unmanaged<nint, int>)Export(library, "cuEventDestroy_v2");
        cuModuleLoadData = (delegate* unmanaged<nint*, void*, int>)Export(library, "cuModuleLoadData");
        cuModuleUnload = (delegate* unmanaged<nint, int>)Export(library, "cuModuleUnload");
        cuModuleGetFunction = (delegate* unmanaged<nint*, nint, byte*, int>)Export(library, "cuModuleGetFunction");
        cuFuncSetAttribute = (delegate* unmanaged<nint, int, int, int>)Export(library, "cuFuncSetAttribute");
        cuLaunchKernel = (delegate* unmanaged<nint, uint, uint, uint, uint, uint, uint, uint, nint, void**, void**, int>)Export(library, "cuLaunchKernel");
        cuStreamBeginCapture = (delegate* unmanaged<nint, int, int>)Export(library, "cuStreamBeginCapture_v2");
        cuStreamEndCapture = (delegate* unmanaged<nint, nint*, int>)Export(library, "cuStreamEndCapture");
        cuGraphInstantiateWithFlags = (delegate* unmanaged<nint*, nint, ulong, int>)Export(library, "cuGraphInstantiateWithFlags");
        cuGraphLaunch = (delegate* unmanaged<nint, nint, int>)Export(library, "cuGraphLaunch");
        cuGraphExecDestroy = (delegate* unmanaged<nint, int>)Export(library, "cuGraphExecDestroy");
        cuGraphDestroy = (delegate* unmanaged<nint, int>)Export(library, "cuGraphDestroy");
        cuGetErrorName = (delegate* unmanaged<int, byte**, int>)Export(library, "cuGetErrorName");
    }

    private static nint Export(nint library, string name)
        => NativeLibrary.TryGetExport(library, name, out nint address)
            ? address
            : throw new CudaUnavailableException($"the CUDA driver library lacks {name}: it is older than CUDA 11.4 (update the NVIDIA driver)");

    /// <summary>Throws a <see cref="CudaException"/> naming <paramref name="call"/> when <paramref name="result"/> is not CUDA_SUCCESS.</summary>
    public void Check(int result, string call)
    {
        if (result != 0) throw new CudaException(call, result, ErrorName(result));
    }

    /// <summary>The CUresult's symbolic name, from the driver itself (it knows codes newer than this file).</summary>
    public string ErrorName(int result)
    {
        byte* name = null;
        if (cuGetErrorName(result, &name) == 0 && name != null) return Marshal.PtrToStringUTF8((nint)name) ?? $"CUresult {result}";
        return $"CUresult {result}";
    }
}

/// <summary>The NVRTC functions used to compile kernel sources at first use (<c>nvrtc.h</c>).</summary>
internal sealed unsafe class NvrtcApi
{
    public const int Success = 0;
    public const int ErrorCompilation = 6;

    public readonly delegate* unmanaged<int*, int*, int> nvrtcVersion;
    public readonly delegate* unmanaged<nint*, byte*, byte*, int, byte**, byte**, int> nvrtcCreateProgram;
    public readonly delegate* unmanaged<nint, int, byte**, int> nvrtcCompileProgram;
    public readonly delegate* unmanaged<nint, nuint*, int> nvrtcGetProgramLogSize;
    public readonly delegate* unmanaged<nint, byte*, int> nvrtcGetProgramLog;
    public readonly delegate* unmanaged<nint, nuint*, int> nvrtcGetCUBINSize;
    public readonly delegate* unmanaged<nint, byte*, int> nvrtcGetCUBIN;
    public readonly delegate* unmanaged<nint*, int> nvrtcDestroyProgram;
    public readonly delegate* unmanaged<int, byte*> nvrtcGetErrorString;

    public NvrtcApi(nint library)
    {
        nvrtcVersion = (delegate* unmanaged<int*, int*, int>)Export(library, "nvrtcVersion");
        nvrtcCreateProgram = (delegate* unmanaged<nint*, byte*, byte*, int, byte**, byte**, int>)Export(library, "nvrtcCreateProgram");
        nvrtcCompileProgram = (delegate* unmanaged<nint, int, byte**, int>)Export(library, "nvrtcCompileProgram");
        nvrtcGetProgramLogSize = (delegate* unmanaged<nint, nuint*, int>)Export(library, "nvrtcGetProgramLogSize");
        nvrtcGetProgramLog = (delegate* unmanaged<nint, byte*, int>)Export(library, "nvrtcGetProgramLog");
        nvrtcGetCUBINSize = (delegate* unmanaged<nint, nuint*, int>)Export(library, "nvrtcGetCUBINSize");
        nvrtcGetCUBIN = (delegate* unmanaged<nint, byte*, int>)Export(library, "nvrtcGetCUBIN");
        nvrtcDestroyProgram = (delegate* unmanaged<nint*, int>)Export(library, "nvrtcDestroyProgram");
        nvrtcGetErrorString = (delegate* unmanaged<int, byte*>)Export(library, "nvrtcGetErrorString");
    }

    private static nint Export(nint library, string name)
        => NativeLibrary.TryGetExport(library, name, out nint address)
            ? address
            : throw new CudaUnavailableException($"the NVRTC library lacks {name}: it is older than CUDA 11.2");

    public void Check(int result, string call, string? detail = null)
    {
        if (result != Success) throw new CudaException(call, result, ErrorName(result), detail);
    }

    public string ErrorName(int result) => Marshal.PtrToStringUTF8((nint)nvrtcGetErrorString(result)) ?? $"nvrtcResult {result}";

    /// <summary>(major, minor) of this NVRTC.</summary>
    public (int Major, int Minor) Version()
    {
        int major, minor;
        Check(nvrtcVersion(&major, &minor), "nvrtcVersion");
        return (major, minor);
    }
}
