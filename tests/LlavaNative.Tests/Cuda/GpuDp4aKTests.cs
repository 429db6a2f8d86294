using Xunit;
using Xunit.Abstractions;
using LlavaNative.Kernels.Cuda;
using LlavaNative.Kernels.Tensors;
using LlavaNative.TestSupport.Cuda;

namespace LlavaNative.Tests.Cuda;

/// <summary>The integer (dp4a) K-quant mat-mul and mat-vec against the CPU (<see cref="GpuDp4aKChecks"/>) on the host emulator.</summary>
public class GpuDp4aKEmulatorTests(ITestOutputHelper output)
{
    public static TheoryData<string> CheckNames()
    {
        var data = new TheoryData<string>();
        foreach (var (name, _) in GpuDp4aKChecks.All) data.Add(name);
        return data;
    }

    [EmulatorTheory]
    [MemberData(nameof(CheckNames))]
    public void Dp4aKAgreesWithCpu(string check)
    {
        using var device = GpuTestDevices.Emulator();
        foreach (int seed in new[] { 1, 2 })
        {
            GpuCheckResult result = GpuDp4aKChecks.All.Single(c => c.Name == check).Run(device, seed);
            output.WriteLine(result.ToString());
            Assert.True(result.Passed, $"seed {seed}: {result}");
        }
    }

    /// <summary>
    /// Q4_K / Q5_K / Q6_K go to the dp4a kernels only when asked, at every batch size (MatVec included); the float
    /// kernels stay the default; other types keep their routes.
    /// </summary>
    [EmulatorFact]
    public void KQuantsTakeDp4aOnlyWhenAsked()
    {
        using var device = GpuTestDevices.Emulator();
        using var ops = new CudaOps(device);
        Assert.Equal(QuantizedMatMulPath.Float, ops.QuantizedMatMulPath);
        using var w = device.Allocate(210 * 2);
        device.Fill(w, 0, w.Bytes);
        using var x = device.Allocate(256 * 4 * CudaOps.Dp4aMinTokens);
        device.Fill(x, 0, x.Bytes);
        using var y = device.Allocate(2 * 4 * CudaOps.Dp4aMinTokens);
        int Launches(Action a)
        {
            int before = device.LaunchCount;
            a();
            return device.LaunchCount - before;
        }
        foreach (var type in new[] { TensorType.Q4_K, TensorType.Q5_K, TensorType.Q6_K })
        {
            ops.QuantizedMatMulPath = QuantizedMatMulPath.Float;
            Assert.Equal(1, Launches(() => ops.MatVec(type, w, x, y, 2, 256)));
            Assert.Equal(1, Launches(() => ops.MatMul(type, w, x, y, 2, 256, 3, 2)));
            ops.QuantizedMatMulPath = QuantizedMatMulPath.Dp4a;
            Assert.Equal(2, Launches(() => ops.MatVec(type, w, x, y, 2, 256)));                            // quantize + mat-vec
            Assert.Equal(2, Launches(() => ops.MatMul(type, w, x, y, 2, 256, 3, 2)));                      // quantize + mat-vec per token
            Assert.Equal(2, Launches(() => ops.MatMul(type, w, x, y, 2, 256, CudaOps.Dp4aMinTokens, 2)));  // quantize + tiled
        }
        Assert.Equal(2, Launches(() => ops.MatVec(TensorType.Q4_0, w, x, y, 2, 256))); // Q4_0: the 32-block dp4a mat-vec (matvec_dp4a.cu)
        Assert.Equal(1, Launches(() => ops.MatVec(TensorType.Q3_K, w, x, y, 2, 256))); // no dp4a kernel: the float mat-vec
    }

    [EmulatorFact]
    public void BadInputIsRefusedWithTheReason()
    {
        using var device = GpuTestDevices.Emulator();
        using var ops = new CudaOps(device) { QuantizedMatMulPath = QuantizedMatMulPath.Dp4a };
        using var w = device.Allocate(1024);
        using var x = device.Allocate(4096);
        using var y = device.Allocate(64);
        var e = Assert.Throws<ArgumentException>(() => ops.MatVec(TensorType.Q4_K, w, x, y, 2, 300));
        Assert.Contains("multiple of 256", e.Message);
        e = Assert.Throws<ArgumentException>(() => ops.MatVecDp4aK(TensorType.Q4_K, w.Pointer.Offset(2), x, y, 2, 256));
        Assert.Contains("4-byte aligned", e.Message);
        e = Assert.Throws<ArgumentException>(() => ops.MatMulDp4aK(TensorType.Q6_K, w, x, y, 4, 256, 2, 3));
        Assert.Contains("output stride 3", e.Message);
        var n = Assert.Throws<NotSupportedException>(() => ops.MatMulDp4aK(TensorType.Q8_0, w, x, y, 2, 256, 2, 2));
        Assert.Contains("Q4_K, Q5_K, Q6_K", n.Message);
    }
}

/// <summary>The dp4a K-quant checks on a real GPU; skipped (with the reason) without one.</summary>
public class GpuDp4aKGpuTests(ITestOutputHelper output)
{
    [GpuTheory]
    [MemberData(nameof(GpuDp4aKEmulatorTests.CheckNames), MemberType = typeof(GpuDp4aKEmulatorTests))]
    public void Dp4aKAgreesWithCpu(string check)
    {
        using var device = CudaDevice.Open();
        GpuCheckResult result = GpuDp4aKChecks.All.Single(c => c.Name == check).Run(device, 1);
        output.WriteLine(result.ToString());
        Assert.True(result.Passed, result.ToString());
    }
}
