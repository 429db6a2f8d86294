using Xunit;
using LlavaNative.Kernels.Cuda;

namespace LlavaNative.Tests.Cuda;

/// <summary>The parts of the CUDA runtime that need no GPU: library discovery, the module cache, kernel signatures, launch arguments.</summary>
public class CudaRuntimeTests
{
    [Fact]
    public void MissingLibraryNamesWhatWasTriedAndTheOverrideVariable()
    {
        string empty = Directory.CreateTempSubdirectory("llava-nvrtc-").FullName;
        try
        {
            var e = Assert.Throws<CudaUnavailableException>(() => CudaLibraries.Load("NVRTC (CUDA runtime compiler)", CudaLibraries.NvrtcVariable,
                null, ["libnvrtc-does-not-exist.so.99"], [empty, "/no/such/folder"], "libnvrtc-does-not-exist.so.*", useLoaderSearch: true));
            Assert.Equal("NVRTC (CUDA runtime compiler) not found (tried libnvrtc-does-not-exist.so.99); set LLAVANATIVE_NVRTC to the library file or its folder",
                e.Message);
        }
        finally { Directory.Delete(empty, recursive: true); }
    }

    [Fact]
    public void OverrideThatNamesNoLibraryIsAnErrorNotASilentFallback()
    {
        string empty = Directory.CreateTempSubdirectory("llava-cuda-").FullName;
        try
        {
            var e = Assert.Throws<CudaUnavailableException>(() => CudaLibraries.Load("CUDA driver", CudaLibraries.DriverVariable, empty,
                ["libcuda.so.1"], [], "libcuda.so*", useLoaderSearch: true));
            // An empty folder holds no candidate: the message says the override names nothing loadable.
            Assert.Equal($"CUDA driver not found: LLAVANATIVE_CUDA_DRIVER={empty} names no loadable library (tried {empty} (a folder with no libcuda.so* in it))",
                e.Message);
            e = Assert.Throws<CudaUnavailableException>(() => CudaLibraries.Load("CUDA driver", CudaLibraries.DriverVariable, empty + "/missing",
                ["libcuda.so.1"], [], "libcuda.so*", useLoaderSearch: true));
            Assert.Equal($"CUDA driver not found: LLAVANATIVE_CUDA_DRIVER={empty}/missing names no loadable library (tried {empty}/missing (does not exist))",
                e.Message);

            string notALibrary = Path.Combine(empty, "libcuda.so.1");
            File.WriteAllText(notALibrary, "not an ELF file");
            e = Assert.Throws<CudaUnavailableException>(() => CudaLibraries.Load("CUDA driver", CudaLibraries.DriverVariable, empty,
                ["libcuda.so.1"], [], "libcuda.so*", useLoaderSearch: true));
            Assert.Equal($"CUDA driver not found: LLAVANATIVE_CUDA_DRIVER={empty} names no loadable library (tried {notALibrary})", e.Message);
        }
        finally { Directory.Delete(empty, recursive: true); }
    }

    [Fact]
    public void ModuleCacheKeyIsSha256OverTheCompilationInputs()
    {
        IReadOnlyList<string> options = ["--gpu-architecture=sm_90", "-std=c++17"];
        var headers = new Dictionary<string, string> { ["common.cuh"] = "#pragma once", ["a.cuh"] = "// a" };
        string key = CudaModuleCache.Key("nvrtc 13.0", options, "matvec.cu", "extern \"C\" __global__ void k(int n) {}", headers);
        // Independent reference: Python's hashlib.sha256 over the same NUL-separated fields (headers in name order).
        Assert.Equal("baeff73b8c102d79a6513d0d29cfb0586150e1d88ab1c03929bfaa70a497f907", key);

        Assert.NotEqual(key, CudaModuleCache.Key("nvrtc 13.0", ["--gpu-architecture=sm_80", "-std=c++17"], "matvec.cu",
            "extern \"C\" __global__ void k(int n) {}", headers));
        Assert.NotEqual(key, CudaModuleCache.Key("nvrtc 12.8", options, "matvec.cu", "extern \"C\" __global__ void k(int n) {}", headers));
        Assert.NotEqual(key, CudaModuleCache.Key("nvrtc 13.0", options, "matvec.cu", "extern \"C\" __global__ void k(int n) {}",
            new Dictionary<string, string> { ["common.cuh"] = "#pragma once ", ["a.cuh"] = "// a" }));
    }

    [Fact]
    public void ModuleCacheRoundTripsAndSurvivesAnUnwritableFolder()
    {
        string dir = Path.Combine(Path.GetTempPath(), "llava-cuda-cache-" + Guid.NewGuid().ToString("N"));
        try
        {
            var cache = new CudaModuleCache(dir);
            Assert.Null(cache.TryRead("abc"));
            cache.Write("abc", [1, 2, 3]);
            Assert.Equal(new byte[] { 1, 2, 3 }, cache.TryRead("abc"));
            Assert.Equal(Path.Combine(dir, "abc.cubin"), cache.PathOf("abc"));
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }

        var readOnly = new CudaModuleCache("/proc/llava-no-such-cache");
        readOnly.Write("abc", [1]); // must not throw: a cache that cannot be written only costs a recompilation
        Assert.Null(readOnly.TryRead("abc"));
    }

    [Fact]
    public void EveryEmbeddedKernelHasAParsableSignature()
    {
        var kernels = KernelSources.Kernels;
        Assert.Contains("matvec_q4_k", kernels.Keys);
        Assert.Contains("attention_f32", kernels.Keys);
        var matvec = kernels["matvec_q4_0"];
        Assert.Equal("matvec.cu", matvec.File);
        Assert.Equal([KernelArgumentKind.Pointer, KernelArgumentKind.Pointer, KernelArgumentKind.Pointer, KernelArgumentKind.Int32, KernelArgumentKind.Int32],
            matvec.Parameters.Select(p => p.Kind));
        Assert.Equal(["w", "x", "y", "rows", "cols"], matvec.Parameters.Select(p => p.Name));
        Assert.Equal(KernelArgumentKind.Float32, kernels["rms_norm_f32"].Parameters[4].Kind);
        Assert.Contains("common.cuh", KernelSources.Headers);
    }

    [Fact]
    public void SignatureParserReadsQualifiersAndRefusesTypesTheLauncherCannotPass()
    {
        var parsed = KernelSources.Parse("t.cu", """
            // extern "C" __global__ void commented_out(int n)
            extern "C" __global__ void __launch_bounds__(128) k1(const float* __restrict__ a, unsigned int b, long long c, float d) {}
            extern "C" __global__ void k2() {}
            """).ToList();
        Assert.Equal(["k1", "k2"], parsed.Select(k => k.Name));
        Assert.Equal([KernelArgumentKind.Pointer, KernelArgumentKind.UInt32, KernelArgumentKind.Int64, KernelArgumentKind.Float32],
            parsed[0].Parameters.Select(p => p.Kind));
        Assert.Empty(parsed[1].Parameters);

        var e = Assert.Throws<InvalidOperationException>(() => KernelSources.Parse("t.cu", "extern \"C\" __global__ void k(double x) {}").ToList());
        Assert.Equal("t.cu: kernel k: parameter type 'double' is not one the launcher can pass (int, unsigned, float, long long, pointers)", e.Message);
    }

    [Fact]
    public unsafe void ArgumentBlockPointsAtEachValueInItsDeclaredWidth()
    {
        using var args = new KernelArguments();
        args.Add(new DevicePtr(0x1122334455667788)).Add(-5).Add(2.5f).Add(7L);
        Assert.Equal(4, args.Count);
        Assert.Equal(0x1122334455667788UL, *(ulong*)args.Pointers[0]);
        Assert.Equal(-5, *(int*)args.Pointers[1]);
        Assert.Equal(2.5f, *(float*)args.Pointers[2]);
        Assert.Equal(7L, *(long*)args.Pointers[3]);
        args.Clear().Add(9);
        Assert.Equal(1, args.Count);
        Assert.Equal(9, *(int*)args.Pointers[0]);
    }

    [Fact]
    public void PoolBucketsArePowersOfTwoThenWholeGranules()
    {
        Assert.Equal(256, CudaDevice.BucketOf(1));
        Assert.Equal(256, CudaDevice.BucketOf(256));
        Assert.Equal(512, CudaDevice.BucketOf(257));
        Assert.Equal(64L << 20, CudaDevice.BucketOf(64L << 20));
        Assert.Equal((64L << 20) + (2L << 20), CudaDevice.BucketOf((64L << 20) + 1));
    }

    [Fact]
    public void WithoutADriverOpeningTheGpuIsAClearErrorNotACrash()
    {
        if (GpuTestDevices.GpuUnavailableReason == null) return; // a GPU is present: nothing to check here
        using var device = CudaDevice.TryOpen(out string reason);
        Assert.Null(device);
        Assert.False(string.IsNullOrWhiteSpace(reason));
        Assert.DoesNotContain("   at ", reason); // a message, not a stack trace
    }
}
