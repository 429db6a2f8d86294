using Xunit;
using Xunit.Abstractions;
using LlavaNative.Kernels.Cuda;
using LlavaNative.Model.Language;
using LlavaNative.TestSupport;
using LlavaNative.TestSupport.Cuda;

namespace LlavaNative.Tests.Cuda;

/// <summary>
/// The GPU decoder end to end on the host emulator (the .cu kernels compiled by g++, launched by the same
/// GpuDecoder code a GPU runs): logits of every prompt position and decode step, greedy tokens from the device
/// argmax, and image rows through ForwardEmbeddings, against the CPU DecoderModel (<see cref="GpuDecoderChecks"/>).
/// </summary>
public class GpuDecoderEmulatorTests(ITestOutputHelper output)
{
    public static TheoryData<string> CheckNames()
    {
        var data = new TheoryData<string>();
        foreach (var (name, _) in GpuDecoderChecks.All) data.Add(name);
        return data;
    }

    [EmulatorTheory]
    [MemberData(nameof(CheckNames))]
    public void GpuDecoderAgreesWithCpuDecoder(string check)
    {
        using var device = GpuTestDevices.Emulator();
        GpuCheckResult result = GpuDecoderChecks.All.Single(c => c.Name == check).Run(device, 1);
        output.WriteLine(result.ToString());
        Assert.True(result.Passed, result.ToString());
    }

    /// <summary>
    /// A greedy decode step (token upload, 2 layers of launches, device argmax, one int back) allocates no managed
    /// memory once warmed up: the launch code (CudaOps, argument block) and the decoder's buffers are reused.
    /// </summary>
    [EmulatorFact]
    public void GreedyDecodeStepAllocatesNothing()
    {
        using var device = GpuTestDevices.Emulator();
        using var model = GpuDecoderChecks.LoadModel(RandomModelArchitecture.Qwen2, null);
        using var gpu = new GpuDecoder(device, model.Config, model.Weights);
        using var state = gpu.CreateState(48);
        int[] one = [gpu.ForwardGreedy(state, [3, 1, 4, 1, 5])];
        for (int i = 0; i < 4; i++) one[0] = gpu.ForwardGreedy(state, one); // warm-up: JIT tiers, first-use paths
        int launches = device.LaunchCount;
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 16; i++) one[0] = gpu.ForwardGreedy(state, one);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
        // Per step: the embedding gather; per layer 18 (2 norms, 7 mat-vecs, 3 q/k/v biases, 2 RoPE, attention,
        // SiLU-mul, 2 residual adds); final norm, LM head, argmax.
        Assert.Equal(16 * (1 + 2 * 18 + 3), device.LaunchCount - launches);
    }

    [EmulatorFact]
    public void ContextOverflowAndBadTokensAreClearErrorsBeforeAnyLaunch()
    {
        using var device = GpuTestDevices.Emulator();
        using var model = GpuDecoderChecks.LoadModel(RandomModelArchitecture.Llama, null);
        using var gpu = new GpuDecoder(device, model.Config, model.Weights);
        using var state = gpu.CreateState(8);
        int launches = device.LaunchCount;
        var overflow = Assert.Throws<ContextOverflowException>(() => gpu.Forward(state, new int[9]));
        Assert.Contains("8 positions", overflow.Message);
        var bad = Assert.Throws<ArgumentOutOfRangeException>(() => gpu.Forward(state, [1, model.Config.VocabSize]));
        Assert.Contains($"token id {model.Config.VocabSize}", bad.Message);
        Assert.Equal(launches, device.LaunchCount);
        Assert.Equal(0, state.Position);
    }
}

/// <summary>The same end-to-end checks on a real GPU; skipped (with the reason) without one.</summary>
public class GpuDecoderGpuTests(ITestOutputHelper output)
{
    [GpuTheory]
    [MemberData(nameof(GpuDecoderEmulatorTests.CheckNames), MemberType = typeof(GpuDecoderEmulatorTests))]
    public void GpuDecoderAgreesWithCpuDecoder(string check)
    {
        using var device = CudaDevice.Open();
        foreach (int seed in new[] { 1, 2 })
        {
            GpuCheckResult result = GpuDecoderChecks.All.Single(c => c.Name == check).Run(device, seed);
            output.WriteLine($"seed {seed}: {result}");
            Assert.True(result.Passed, $"seed {seed}: {result}");
        }
    }
}
