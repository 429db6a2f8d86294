using Xunit;
using Xunit.Abstractions;
using LlavaNative.Kernels.Cuda;
using LlavaNative.Kernels.Tensors;
using LlavaNative.TestSupport.Cuda;

namespace LlavaNative.Tests.Cuda;

/// <summary>The integer (dp4a) decode mat-vec against the CPU (<see cref="GpuDecodeDp4aChecks"/>) on the host emulator.</summary>
public class GpuDecodeDp4aEmulatorTests(ITestOutputHelper output)
{
    public static TheoryData<string> CheckNames()
    {
        var data = new TheoryData<string>();
        foreach (var (name, _) in GpuDecodeDp4aChecks.All) data.Add(name);
        return data;
    }

    [EmulatorTheory]
    [MemberData(nameof(CheckNames))]
    public void Dp4aDecodeAgreesWithCpu(string check)
    {
        using var device = GpuTestDevices.Emulator();
        foreach (int seed in new[] { 1, 2 })
        {
            GpuCheckResult result = GpuDecodeDp4aChecks.All.Single(c => c.Name == check).Run(device, seed);
            output.WriteLine(result.ToString());
            Assert.True(result.Passed, $"seed {seed}: {result}");
        }
    }

    /// <summary>MatVec takes the dp4a kernel (quantize + mat-vec: two launches) only when asked and only for the 32-element block types.</summary>
    [EmulatorFact]
    public void MatVecChoosesDp4aOnlyWhenAskedAndForBlockTypes()
    {
        using var device = GpuTestDevices.Emulator();
        using var ops = new CudaOps(device);
        Assert.Equal(QuantizedMatMulPath.Float, ops.QuantizedMatMulPath);
        using var w = device.Allocate(TensorTypeInfo.RowBytes(TensorType.Q4_K, 256) * 2);
        device.Fill(w, 0, w.Bytes);
        using var x = device.Allocate(256 * 4);
        device.Fill(x, 0, x.Bytes);
        using var y = device.Allocate(2 * 4);
        int Launches(TensorType type)
        {
            int before = device.LaunchCount;
            ops.MatVec(type, w, x, y, 2, 256);
            return device.LaunchCount - before;
        }
        Assert.Equal(1, Launches(TensorType.Q4_0)); // the float kernel
        ops.QuantizedMatMulPath = QuantizedMatMulPath.Dp4a;
        foreach (var type in GpuDecodeDp4aChecks.Types) Assert.Equal(2, Launches(type));
        Assert.Equal(2, Launches(TensorType.Q4_K)); // the K-quant dp4a mat-vec (matmul_dp4a_k.cu)
        Assert.Equal(1, Launches(TensorType.Q3_K)); // no dp4a kernel: the float one
        Assert.Equal(1, Launches(TensorType.F16));
    }

    /// <summary>The scratch is reserved up front; a larger row during a capture is refused with a message rather than allocated.</summary>
    [EmulatorFact]
    public void MatVecDp4aDoesNotAllocateDuringCapture()
    {
        using var device = GpuTestDevices.Emulator();
        using var ops = new CudaOps(device) { QuantizedMatMulPath = QuantizedMatMulPath.Dp4a };
        using var w = device.Allocate(TensorTypeInfo.RowBytes(TensorType.Q8_0, 128) * 2);
        device.Fill(w, 0, w.Bytes);
        using var x = device.Allocate(128 * 4);
        device.Fill(x, 0, x.Bytes);
        using var y = device.Allocate(2 * 4);
        ops.ReserveMatVecScratch(64);
        ops.MatVec(TensorType.Q8_0, w, x, y, 2, 64); // loads the kernels' modules outside the capture
        device.BeginCapture();
        ops.MatVec(TensorType.Q8_0, w, x, y, 2, 64); // fits: captured
        var error = Assert.Throws<InvalidOperationException>(() => ops.MatVec(TensorType.Q8_0, w, x, y, 2, 128));
        Assert.Contains("ReserveMatVecScratch", error.Message);
        device.EndCapture().Dispose();
    }
}

/// <summary>The dp4a decode checks on a real GPU; skipped (with the reason) without one.</summary>
public class GpuDecodeDp4aGpuTests(ITestOutputHelper output)
{
    [GpuTheory]
    [MemberData(nameof(GpuDecodeDp4aEmulatorTests.CheckNames), MemberType = typeof(GpuDecodeDp4aEmulatorTests))]
    public void Dp4aDecodeAgreesWithCpu(string check)
    {
        using var device = CudaDevice.Open();
        GpuCheckResult result = GpuDecodeDp4aChecks.All.Single(c => c.Name == check).Run(device, 1);
        output.WriteLine(result.ToString());
        Assert.True(result.Passed, result.ToString());
    }
}
