using Xunit;
using Xunit.Abstractions;
using LlavaNative.Kernels.Cpu;
using LlavaNative.Kernels.Cuda;
using LlavaNative.Model.Generation;
using LlavaNative.Model.Language;
using LlavaNative.TestSupport;
using LlavaNative.TestSupport.Cuda;
using LlavaNative.TestSupport.Llava;

namespace LlavaNative.Tests.Cuda;

/// <summary>
/// Sampling on the device (<see cref="DeviceTopK"/>, <see cref="GpuSampler"/>) on the host emulator against the
/// host (<see cref="GpuSamplingChecks"/>), and the CUDA decoder session's top-k path end to end.
/// </summary>
public class GpuSamplingEmulatorTests(ITestOutputHelper output)
{
    public static TheoryData<string> CheckNames()
    {
        var data = new TheoryData<string>();
        foreach (var (name, _) in GpuSamplingChecks.All) data.Add(name);
        return data;
    }

    [EmulatorTheory]
    [MemberData(nameof(CheckNames))]
    public void DeviceSamplingAgreesWithHost(string check)
    {
        using var device = GpuTestDevices.Emulator();
        GpuCheckResult result = GpuSamplingChecks.All.Single(c => c.Name == check).Run(device, 1);
        output.WriteLine(result.ToString());
        Assert.True(result.Passed, result.ToString());
    }

    /// <summary>
    /// TextGenerator with seeded top-k sampling and a repetition penalty gives the CPU backend's text on the CUDA
    /// backend, and its decode steps bring back K candidates (8-byte keys), never the 512-float logits.
    /// </summary>
    [EmulatorFact]
    public void TopKGenerationOnTheCudaBackend_GivesTheCpuTokens_WithoutDownloadingLogits()
    {
        using var device = GpuTestDevices.Emulator();
        using var model = DecoderModel.LoadGguf(RandomModels.GetPath(LlavaFixtures.LlamaSynthetic));
        using var gpuBackend = DecoderBackend.Open(model, ComputeBackend.Cuda, device);
        using var pool = new ComputeThreadPool(2);
        using var cpu = new TextGenerator(model, 64, pool);
        using var gpu = new TextGenerator(gpuBackend, 64, pool);
        var options = new GenerationOptions
        {
            MaxTokens = 16,
            IgnoreEndOfGeneration = true,
            Sampling = new SamplingOptions { Temperature = 1.2f, TopK = 40, TopP = 0.98f, MinP = 0.01f, RepeatPenalty = 1.15f, Seed = 11 },
        };
        int[] prompt = cpu.Tokenizer.Encode("hello there, how are", addSpecial: true);
        int[] cpuTokens = cpu.Generate(prompt, options).Where(p => p.TokenId >= 0).Select(p => p.TokenId).ToArray();
        long largestBefore = device.LargestDownloadBytes; // the backend's probe and loading
        long downloadedBefore = device.DownloadedBytes;
        int[] gpuTokens = gpu.Generate(prompt, options).Where(p => p.TokenId >= 0).Select(p => p.TokenId).ToArray();
        output.WriteLine($"CPU [{string.Join(",", cpuTokens)}]; {device.DownloadedBytes - downloadedBefore} bytes downloaded during the GPU generation");
        // Pieces carry the tokens that released text (a token ending inside a UTF-8 character releases none).
        Assert.Equal(16, cpu.LastStats!.GeneratedTokens);
        Assert.Equal(16, gpu.LastStats!.GeneratedTokens);
        Assert.True(cpuTokens.Distinct().Count() > 4, "the sampled stream is not varied enough to show anything");
        Assert.Equal(cpuTokens, gpuTokens);
        // The prompt's logits come back once (512 floats); each of the 15 decode steps brings back 40 keys of 8 bytes.
        int vocab = model.Config.VocabSize;
        Assert.Equal(vocab * 4L + 15 * 40 * 8L, device.DownloadedBytes - downloadedBefore);
    }

    /// <summary>A top-k decode step on the CUDA session (forward, device top-k, host draw) allocates no managed or device memory once warmed up.</summary>
    [EmulatorFact]
    public void TopKDecodeStepAllocatesNothing()
    {
        using var device = GpuTestDevices.Emulator();
        using var model = DecoderModel.LoadGguf(RandomModels.GetPath(LlavaFixtures.LlamaSynthetic));
        using var backend = DecoderBackend.Open(model, ComputeBackend.Cuda, device);
        using var session = backend.CreateSession(64);
        var sampler = new Sampler(model.Config.VocabSize, new SamplingOptions { Temperature = 0.8f, TopK = 40, RepeatPenalty = 1.1f, Seed = 3 });
        sampler.Ban([1, 2]);
        int[] one = [session.ForwardSample([3, 1, 4, 1, 5], sampler)];
        for (int i = 0; i < 4; i++) { sampler.Accept(one[0]); one[0] = session.ForwardSample(one, sampler); }
        int allocations = device.AllocationCount;
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 16; i++) { sampler.Accept(one[0]); one[0] = session.ForwardSample(one, sampler); }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(allocations, device.AllocationCount);
    }
}

/// <summary>The device sampling checks on a real GPU; skipped (with the reason) without one.</summary>
public class GpuSamplingGpuTests(ITestOutputHelper output)
{
    [GpuTheory]
    [MemberData(nameof(GpuSamplingEmulatorTests.CheckNames), MemberType = typeof(GpuSamplingEmulatorTests))]
    public void DeviceSamplingAgreesWithHost(string check)
    {
        using var device = CudaDevice.Open();
        GpuCheckResult result = GpuSamplingChecks.All.Single(c => c.Name == check).Run(device, 1);
        output.WriteLine(result.ToString());
        Assert.True(result.Passed, result.ToString());
    }
}
