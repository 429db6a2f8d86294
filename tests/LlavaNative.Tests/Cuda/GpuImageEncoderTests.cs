using Xunit;
using Xunit.Abstractions;
using LlavaNative.Kernels.Cpu;
using LlavaNative.Kernels.Cuda;
using LlavaNative.Model.Vision;
using LlavaNative.TestSupport;
using LlavaNative.TestSupport.Cuda;
using LlavaNative.TestSupport.Vision;

namespace LlavaNative.Tests.Cuda;

/// <summary>
/// The GPU image encoder (vision tower + projector) on the host emulator, against the CPU ImageEncoder
/// (<see cref="GpuVisionChecks"/>): CLIP and SigLIP towers of awkward sizes, F32 / F16 / Q8_0 matrices, tiled and
/// tensor-core mat-muls, and the projected rows fed from device memory into the GPU decoder.
/// </summary>
public class GpuImageEncoderEmulatorTests(ITestOutputHelper output)
{
    public static TheoryData<string> CheckNames()
    {
        var data = new TheoryData<string>();
        foreach (var (name, _) in GpuVisionChecks.All) data.Add(name);
        return data;
    }

    [EmulatorTheory]
    [MemberData(nameof(CheckNames))]
    public void GpuImageEncoderAgreesWithCpuImageEncoder(string check)
    {
        using var device = GpuTestDevices.Emulator();
        GpuCheckResult result = GpuVisionChecks.All.Single(c => c.Name == check).Run(device, 1);
        output.WriteLine(result.ToString());
        Assert.True(result.Passed, result.ToString());
    }

    /// <summary>
    /// After the first image, encoding allocates neither managed memory nor device memory (every buffer was sized at
    /// construction), and launches a fixed number of kernels (counted below).
    /// </summary>
    [EmulatorFact]
    public void EncodingAnImageAllocatesNothing()
    {
        using var device = GpuTestDevices.Emulator();
        using var pool = new ComputeThreadPool(2);
        var check = GpuVisionChecks.Cases[0]; // CLIP: pre-LN, 2 blocks run, mlp2x projector
        using var encoder = GpuVisionChecks.LoadEncoder(check.Spec, check.Layout, pool, out var model);
        using var gpu = new GpuImageEncoder(device, encoder);
        float[] pixels = model.RandomPixels(1);
        var output = new float[gpu.ImageTokenCount * gpu.EmbeddingLength];
        for (int i = 0; i < 2; i++) gpu.EncodeAndProject(pixels, output); // warm-up: JIT tiers, first-use paths
        int launches = device.LaunchCount;
        int allocations = device.AllocationCount;
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 3; i++) gpu.EncodeAndProject(pixels, output);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(allocations, device.AllocationCount);
        // Embeddings: im2col, patch mat-mul, positions (+ class row), pre-LN = 4. Per block: LN1, 3 q/k/v mat-muls,
        // 3 biases, attention, out_proj + bias, residual add, LN2, fc1 + bias, activation, fc2 + bias, residual add = 18.
        // Projector mlp2x: linear_1 + bias, GELU, linear_2 + bias = 5.
        int blocks = encoder.VisionConfig.LayersToRun;
        Assert.Equal(3 * (4 + 18 * blocks + 5), device.LaunchCount - launches);
    }

    [EmulatorFact]
    public void WrongPixelCountAndShortDestinationAreClearErrorsBeforeAnyLaunch()
    {
        using var device = GpuTestDevices.Emulator();
        using var pool = new ComputeThreadPool(2);
        var check = GpuVisionChecks.Cases[^1];
        using var encoder = GpuVisionChecks.LoadEncoder(check.Spec, check.Layout, pool, out var model);
        using var gpu = new GpuImageEncoder(device, encoder);
        int launches = device.LaunchCount;
        var output = new float[gpu.ImageTokenCount * gpu.EmbeddingLength];
        var wrong = Assert.Throws<ArgumentException>(() => gpu.EncodeAndProject(new float[gpu.PixelCount - 1], output));
        Assert.Contains($"expected {gpu.PixelCount} floats", wrong.Message);
        var shortDestination = Assert.Throws<ArgumentException>(() => gpu.EncodeAndProject(model.RandomPixels(1), new float[output.Length - 1]));
        Assert.Contains($"needs {output.Length}", shortDestination.Message);
        Assert.Throws<ArgumentException>(() => gpu.EncodeAndProject(model.RandomPixels(1), default(DevicePtr)));
        Assert.Equal(launches, device.LaunchCount);
    }
}

/// <summary>The tower the device runner times, checked for shape on the CPU (the timing itself needs a GPU).</summary>
public class SyntheticVisionTowerTests
{
    [Fact]
    public void ClipL336HasLlava15Shape()
    {
        using var tower = GpuVisionChecks.ClipL336(LlavaNative.Kernels.Tensors.TensorType.F16, featureLayer: 23, seed: 1);
        var c = tower.VisionConfig;
        Assert.Equal(577, c.PositionCount);
        Assert.Equal(576, c.OutputTokenCount);
        Assert.Equal(23, c.LayersToRun);
        Assert.Equal(64, c.HeadDim);
        Assert.Equal(4096, tower.ProjectorConfig.OutputSize);
        using var pool = new ComputeThreadPool(1);
        // The CPU encoder's constructor checks every shape the GPU encoder relies on.
        using var encoder = new ImageEncoder(c, tower.Vision, tower.ProjectorConfig, tower.Projector, pool);
        Assert.Equal(3 * 336 * 336, tower.Pixels(1).Length);
    }
}

/// <summary>The same end-to-end checks on a real GPU; skipped (with the reason) without one.</summary>
public class GpuImageEncoderGpuTests(ITestOutputHelper output)
{
    [GpuTheory]
    [MemberData(nameof(GpuImageEncoderEmulatorTests.CheckNames), MemberType = typeof(GpuImageEncoderEmulatorTests))]
    public void GpuImageEncoderAgreesWithCpuImageEncoder(string check)
    {
        using var device = CudaDevice.Open();
        foreach (int seed in new[] { 1, 2 })
        {
            GpuCheckResult result = GpuVisionChecks.All.Single(c => c.Name == check).Run(device, seed);
            output.WriteLine($"seed {seed}: {result}");
            Assert.True(result.Passed, $"seed {seed}: {result}");
        }
    }
}
