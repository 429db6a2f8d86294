using Xunit;
using Xunit.Abstractions;
using LlavaNative.Kernels.Cuda;
using LlavaNative.TestSupport.Cuda;

namespace LlavaNative.Tests.Cuda;

/// <summary>The integer (dp4a) prefill mat-mul against the CPU (<see cref="GpuDp4aChecks"/>) on the host emulator.</summary>
public class GpuDp4aEmulatorTests(ITestOutputHelper output)
{
    public static TheoryData<string> CheckNames()
    {
        var data = new TheoryData<string>();
        foreach (var (name, _) in GpuDp4aChecks.All) data.Add(name);
        return data;
    }

    [EmulatorTheory]
    [MemberData(nameof(CheckNames))]
    public void Dp4aMatMulAgreesWithCpu(string check)
    {
        using var device = GpuTestDevices.Emulator();
        foreach (int seed in new[] { 1, 2 })
        {
            GpuCheckResult result = GpuDp4aChecks.All.Single(c => c.Name == check).Run(device, seed);
            output.WriteLine(result.ToString());
            Assert.True(result.Passed, $"seed {seed}: {result}");
        }
    }

    /// <summary>MatMul takes the dp4a kernel only when asked and for batches of at least Dp4aMinTokens; the float path stays the default.</summary>
    [EmulatorFact]
    public void MatMulChoosesDp4aOnlyWhenAskedAndForPrefillBatches()
    {
        using var device = GpuTestDevices.Emulator();
        using var ops = new CudaOps(device) { MatMulPath = MatMulPath.Float }; // Auto would take the tensor cores at 16 tokens
        Assert.Equal(QuantizedMatMulPath.Float, ops.QuantizedMatMulPath);
        using var w = device.Allocate(34 * 2);
        device.Fill(w, 0, w.Bytes);
        using var x = device.Allocate(32 * 4 * CudaOps.Dp4aMinTokens);
        device.Fill(x, 0, x.Bytes);
        using var y = device.Allocate(2 * 4 * CudaOps.Dp4aMinTokens);
        int before = device.LaunchCount;
        ops.MatMul(LlavaNative.Kernels.Tensors.TensorType.Q8_0, w, x, y, 2, 32, CudaOps.Dp4aMinTokens, 2);
        Assert.Equal(1, device.LaunchCount - before); // the float kernel
        ops.QuantizedMatMulPath = QuantizedMatMulPath.Dp4a;
        before = device.LaunchCount;
        ops.MatMul(LlavaNative.Kernels.Tensors.TensorType.Q8_0, w, x, y, 2, 32, CudaOps.Dp4aMinTokens, 2);
        Assert.Equal(2, device.LaunchCount - before); // quantize + dp4a
        before = device.LaunchCount;
        ops.MatMul(LlavaNative.Kernels.Tensors.TensorType.Q8_0, w, x, y, 2, 32, CudaOps.Dp4aMinTokens - 1, 2);
        Assert.Equal(1, device.LaunchCount - before); // below the threshold: float
    }
}

/// <summary>The dp4a checks on a real GPU; skipped (with the reason) without one.</summary>
public class GpuDp4aGpuTests(ITestOutputHelper output)
{
    [GpuTheory]
    [MemberData(nameof(GpuDp4aEmulatorTests.CheckNames), MemberType = typeof(GpuDp4aEmulatorTests))]
    public void Dp4aMatMulAgreesWithCpu(string check)
    {
        using var device = CudaDevice.Open();
        GpuCheckResult result = GpuDp4aChecks.All.Single(c => c.Name == check).Run(device, 1);
        output.WriteLine(result.ToString());
        Assert.True(result.Passed, result.ToString());
    }
}
