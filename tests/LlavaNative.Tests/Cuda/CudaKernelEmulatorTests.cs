using Xunit;
using LlavaNative.Kernels.Cuda;
using LlavaNative.Kernels.Tensors;
using LlavaNative.TestSupport.Cuda;
using LlavaNative.TestSupport.Cuda.Emulator;

namespace LlavaNative.Tests.Cuda;

/// <summary>
/// Every CUDA kernel against the CPU ops on random inputs of awkward sizes, run on the host emulator (the .cu
/// sources compiled by g++), through the same <see cref="CudaOps"/> launch code the GPU uses.
/// </summary>
public class CudaKernelEmulatorTests
{
    [EmulatorTheory]
    [MemberData(nameof(GpuTestDevices.CheckNames), MemberType = typeof(GpuTestDevices))]
    public void KernelAgreesWithCpuOp(string check)
    {
        using var device = GpuTestDevices.Emulator();
        var run = GpuOpChecks.All.Single(c => c.Name == check).Run;
        foreach (int seed in new[] { 1, 2 })
        {
            GpuCheckResult result = run(device, seed);
            Assert.True(result.Passed, $"seed {seed}: {result}");
        }
    }

    /// <summary>The emulator's __dp4a (behind common.cuh's dot4_i8) against the scalar formula: c + Σ signed byte products, byte extremes included.</summary>
    [EmulatorFact]
    public void Dp4aIsTheSignedByteDotProduct()
    {
        const int n = 4096;
        var rng = new Random(3);
        int[] a = new int[n], b = new int[n], c = new int[n];
        for (int i = 0; i < n; i++)
        {
            a[i] = rng.Next(int.MinValue, int.MaxValue);
            b[i] = i < 4 ? new[] { unchecked((int)0x80808080), 0x7f7f7f7f, -1, 0 }[i] : rng.Next(int.MinValue, int.MaxValue);
            c[i] = rng.Next(-1 << 20, 1 << 20);
        }
        a[0] = unchecked((int)0x80808080); // −128 · −128 four times
        using var device = GpuTestDevices.Emulator();
        using var args = new KernelArguments();
        using var da = device.Upload<int>(a);
        using var db = device.Upload<int>(b);
        using var dc = device.Upload<int>(c);
        using var dout = device.Allocate(n * 4);
        device.Launch(device.Kernel("emu_selftest_dp4a"), n / 256, 256, 0, args.Add(da).Add(db).Add(dc).Add(dout).Add(n));
        int[] got = device.Download<int>(dout);
        for (int i = 0; i < n; i++)
        {
            int expected = c[i];
            for (int k = 0; k < 4; k++) expected += (sbyte)(a[i] >> (8 * k)) * (sbyte)(b[i] >> (8 * k));
            Assert.Equal(expected, got[i]);
        }
        Assert.Equal(c[0] + 4 * 128 * 128, got[0]);
    }

    [EmulatorFact]
    public void ShufflesAndBarriersFollowTheirCudaDefinitions()
    {
        // 70 threads: two full warps and a partial one of 6 lanes.
        const int threads = 70;
        using var device = GpuTestDevices.Emulator();
        using var args = new KernelArguments();
        using var xor = device.Allocate(threads * 4);
        using var down = device.Allocate(threads * 4);
        using var reversed = device.Allocate(threads * 4);
        device.Launch(device.Kernel("emu_selftest_semantics"), 1, threads, 0, args.Add(xor).Add(down).Add(reversed));
        int[] x = device.Download<int>(xor), d = device.Download<int>(down), r = device.Download<int>(reversed);
        for (int t = 0; t < threads; t++)
        {
            int warp = t / 32, lanes = Math.Min(32, threads - warp * 32), lane = t % 32;
            int xorPartner = lane ^ 5, downSource = lane + 3;
            Assert.Equal(xorPartner < lanes ? warp * 32 + xorPartner : t, x[t]);
            Assert.Equal(downSource < lanes ? t + 3 : t, d[t]);
            Assert.Equal(threads - 1 - t, r[t]);
        }
    }

    [EmulatorFact]
    public void DivergentBarrierIsReportedAsADeadlockNotAHang()
    {
        using var device = GpuTestDevices.Emulator();
        using var args = new KernelArguments();
        using var output = device.Allocate(64 * 4);
        var e = Assert.Throws<InvalidOperationException>(() =>
            device.Launch(device.Kernel("emu_selftest_divergent_barrier"), 1, 64, 0, args.Add(output)));
        Assert.StartsWith("emulated launch of emu_selftest_divergent_barrier", e.Message);
        Assert.Contains("failed: deadlock in block (0,0,0): 64 of 64 threads wait at a barrier (__syncthreads or a warp shuffle) that the others never reach",
            e.Message);
    }

    [EmulatorFact]
    public void LaunchWithWrongArgumentKindsIsRefusedBeforeTheKernelRuns()
    {
        using var device = GpuTestDevices.Emulator();
        using var args = new KernelArguments();
        using var x = device.Allocate(64);
        var kernel = device.Kernel("scale_f32"); // (float* x, float s, int n)
        args.Add(x).Add(3).Add(16); // an int where the kernel takes a float
        var e = Assert.Throws<ArgumentException>(() => device.Launch(kernel, 1, 32, 0, args));
        Assert.Contains("argument 1 'float s' is Float32, the launch passed Int32", e.Message);
        args.Clear().Add(x).Add(1f);
        e = Assert.Throws<ArgumentException>(() => device.Launch(kernel, 1, 32, 0, args));
        Assert.Contains("takes 3 arguments, the launch passed 2", e.Message);
        Assert.Equal(0, device.LaunchCount);
    }

    [EmulatorFact]
    public void EmulatorReportsAnOutputBufferTooSmallForTheLaunch()
    {
        // The op is told n = 40 floats but the buffer holds 32: the kernel writes past its end, which the
        // emulator's guard bytes catch (on a GPU this would corrupt a neighbouring allocation silently).
        using var device = GpuTestDevices.Emulator();
        using var ops = new CudaOps(device);
        using var a = device.Upload<float>(new float[40]);
        using var small = device.Allocate(32 * 4);
        var e = Assert.Throws<InvalidOperationException>(() => ops.Add(a, a, small, 40));
        Assert.Contains("written 0 bytes past its end (after add_f32)", e.Message);
    }

    [EmulatorFact]
    public void AttentionTakesTheTensorCoresForPrefillBatchesOnSm80Only()
    {
        using var device = GpuTestDevices.Emulator(); // reports 8.0
        using var ops = new CudaOps(device);
        Assert.Equal(AttentionPath.F32, ops.ResolveAttentionPath(AttentionPath.Auto, 1, 128)); // decode
        Assert.Equal(AttentionPath.F32, ops.ResolveAttentionPath(AttentionPath.Auto, CudaOps.TiledAttentionMinTokens - 1, 64));
        Assert.Equal(AttentionPath.TensorCores, ops.ResolveAttentionPath(AttentionPath.Auto, CudaOps.TiledAttentionMinTokens, 64));
        Assert.Equal(AttentionPath.TensorCores, ops.ResolveAttentionPath(AttentionPath.Auto, 577, 72));
        Assert.Equal(AttentionPath.F32, ops.ResolveAttentionPath(AttentionPath.Auto, 577, 160)); // above the tiled kernel's head dims
        Assert.Equal(AttentionPath.F32, ops.ResolveAttentionPath(AttentionPath.F32, 577, 64));
        var e = Assert.Throws<ArgumentException>(() =>
            ops.Attention(default, default, default, default, 32, 2, 2, 160, 320, 0, 32, false, 0.1f, AttentionPath.TensorCores));
        Assert.Equal("Attention: head dim 160 is above the tensor-core kernel's 128", e.Message);

        using var turing = new TestSupport.Cuda.Emulator.EmulatedGpuDevice(
            TestSupport.Cuda.Emulator.CudaEmulator.Shared(out _)!, (7, 5));
        using var old = new CudaOps(turing);
        Assert.Equal(AttentionPath.F32, old.ResolveAttentionPath(AttentionPath.Auto, 577, 64));
        var refused = Assert.Throws<NotSupportedException>(() =>
            old.Attention(default, default, default, default, 577, 16, 16, 64, 1024, 0, 577, false, 0.125f, AttentionPath.TensorCores));
        Assert.Contains("needs compute capability 8.0 or newer", refused.Message);
        Assert.Equal(0, turing.LaunchCount);
    }

    [EmulatorFact]
    public void QuantizedRowLengthMustBeAWholeNumberOfBlocks()
    {
        using var device = GpuTestDevices.Emulator();
        using var ops = new CudaOps(device);
        var e = Assert.Throws<ArgumentException>(() => ops.MatVec(TensorType.Q4_K, default, default, default, 4, 300));
        Assert.Equal("MatVec: rows of Q4_K must be a positive multiple of 256 elements, got 300", e.Message);
        var unsupported = Assert.Throws<NotSupportedException>(() => ops.MatVec(TensorType.Q8_K, default, default, default, 4, 256));
        Assert.Contains("no CUDA kernel for weight type Q8_K; supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K",
            unsupported.Message);
        var notTensorCore = Assert.Throws<NotSupportedException>(() => ops.MatMulTensorCores(TensorType.Q4_0, default, default, default, 4, 32, 1, 4));
        Assert.Equal("MatMulTensorCores: weight type Q4_0; supported: F16, BF16", notTensorCore.Message);
    }
}

/// <summary>Which kernels <see cref="CudaOps.MatMul"/> launches under each <see cref="MatMulPath"/> (counted on the emulator).</summary>
public class MatMulPathRoutingTests
{
    private static int Launches(EmulatedGpuDevice device, CudaOps ops, TensorType type, int cols, int tokens)
    {
        long rowBytes = TensorTypeInfo.RowBytes(type, cols);
        using var w = device.Allocate(rowBytes * 2);
        device.Fill(w, 0, w.Bytes);
        using var x = device.Allocate(4L * cols * tokens);
        device.Fill(x, 0, x.Bytes);
        using var y = device.Allocate(4L * 2 * tokens);
        int before = device.LaunchCount;
        ops.MatMul(type, w, x, y, 2, cols, tokens, 2);
        return device.LaunchCount - before;
    }

    [EmulatorFact]
    public void AutoTakesTheTensorCoresForPrefillBatchesOfNonF32Weights()
    {
        using var device = GpuTestDevices.Emulator(); // compute capability 8.0
        using var ops = new CudaOps(device);
        Assert.Equal(MatMulPath.Auto, ops.MatMulPath);
        int n = CudaOps.TensorCoreMinTokens;
        Assert.Equal(3, Launches(device, ops, TensorType.Q8_0, 32, n));     // expand to F16, round activations, tc2
        Assert.Equal(2, Launches(device, ops, TensorType.F16, 32, n));      // round activations, tc2
        Assert.Equal(1, Launches(device, ops, TensorType.F16, 36, n));      // cols not a multiple of 8: version 1
        Assert.Equal(1, Launches(device, ops, TensorType.F32, 32, n));      // F32 weights stay on the F32 kernel
        Assert.Equal(1, Launches(device, ops, TensorType.Q8_0, 32, n - 1)); // below the threshold: F32 kernel
        ops.QuantizedMatMulPath = QuantizedMatMulPath.Dp4a;                 // an explicit dp4a request wins
        Assert.Equal(2, Launches(device, ops, TensorType.Q8_0, 32, n));
        ops.QuantizedMatMulPath = QuantizedMatMulPath.Float;
        ops.MatMulPath = MatMulPath.Float;
        Assert.Equal(1, Launches(device, ops, TensorType.Q4_K, 256, 64));
        ops.MatMulPath = MatMulPath.TensorCores;                            // forced: any batch
        Assert.Equal(3, Launches(device, ops, TensorType.Q4_K, 256, 2));
        Assert.Equal(1, Launches(device, ops, TensorType.F32, 32, 64));
    }

    [EmulatorFact]
    public void AutoStaysOnTheF32KernelsBeforeSm80()
    {
        var emulator = CudaEmulator.Shared(out string reason) ?? throw new InvalidOperationException("the CUDA emulator is unavailable: " + reason);
        using var device = new EmulatedGpuDevice(emulator, (7, 5));
        using var ops = new CudaOps(device);
        Assert.Equal(1, Launches(device, ops, TensorType.F16, 32, 64));
    }
}

/// <summary>The same checks on a real GPU through the CUDA driver and NVRTC; skipped (with the reason) without one.</summary>
public class CudaKernelGpuTests
{
    [GpuTheory]
    [MemberData(nameof(GpuTestDevices.CheckNames), MemberType = typeof(GpuTestDevices))]
    public void KernelAgreesWithCpuOp(string check)
    {
        using var device = CudaDevice.Open();
        var run = GpuOpChecks.All.Single(c => c.Name == check).Run;
        foreach (int seed in new[] { 1, 2 })
        {
            GpuCheckResult result = run(device, seed);
            Assert.True(result.Passed, $"seed {seed}: {result}");
        }
    }
}
