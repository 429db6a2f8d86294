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
