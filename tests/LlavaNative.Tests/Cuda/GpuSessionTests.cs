using Xunit;
using Xunit.Abstractions;
using LlavaNative.Kernels.Cpu;
using LlavaNative.Kernels.Cuda;
using LlavaNative.Model;
using LlavaNative.Model.Generation;
using LlavaNative.Model.Language;
using LlavaNative.Model.Llava;
using LlavaNative.TestSupport;
using LlavaNative.TestSupport.Cuda;
using LlavaNative.TestSupport.Llava;

namespace LlavaNative.Tests.Cuda;

/// <summary>
/// The decoder backend seam: LlavaSession, LlavaConversation and TextGenerator on <see cref="ComputeBackend.Cuda"/>
/// (the host emulator standing in for the GPU) against the CPU backend (<see cref="GpuSessionChecks"/>), and how the
/// backend is chosen where there is no GPU.
/// </summary>
public class GpuSessionEmulatorTests(ITestOutputHelper output)
{
    public static TheoryData<string> CheckNames()
    {
        var data = new TheoryData<string>();
        foreach (var (name, _) in GpuSessionChecks.All) data.Add(name);
        return data;
    }

    [EmulatorTheory]
    [MemberData(nameof(CheckNames))]
    public void CudaSessionAgreesWithCpuSession(string check)
    {
        using var device = GpuTestDevices.Emulator();
        GpuCheckResult result = GpuSessionChecks.All.Single(c => c.Name == check).Run(device, 1);
        output.WriteLine(result.ToString());
        Assert.True(result.Passed, result.ToString());
    }

    /// <summary>Auto with a usable device runs there, with no notice; the device is the model's, not disposed by it.</summary>
    [EmulatorFact]
    public void AutoWithADevice_RunsOnIt_WithoutANotice()
    {
        using var device = GpuTestDevices.Emulator();
        using (var model = LlavaModel.LoadGguf(RandomModels.GetPath(LlavaFixtures.LlamaSynthetic), LlavaFixtures.ClipMmproj(),
                   options: new ModelLoadOptions { Backend = ComputeBackend.Auto, GpuDevice = device }))
        {
            Assert.Equal(ComputeBackend.Cuda, model.Backend.Kind);
            Assert.Null(model.Backend.Notice);
            Assert.Same(device, model.Backend.Device);
            using var session = model.CreateSession(new LlavaSessionOptions { ContextSize = 32 });
            Assert.IsType<GpuDecoderSession>(session.Decoder);
            Assert.Equal(ComputeBackend.Cuda, session.Backend);

            // Context errors as on the CPU: checked before any work, the cache untouched; generation stops at a full context.
            var image = LlavaImage.FromBytes(LlavaFixtures.RandomPng(5), "five.png");
            Assert.Throws<LlavaContextOverflowException>(() => session.AppendPrompt("<image> and <image>", [image, image]));
            Assert.Equal(0, session.Position);
            session.AppendPrompt("<image> what?", [image]);
            var last = session.Generate(new GenerationOptions { IgnoreEndOfGeneration = true, Sampling = SamplingOptions.Greedy }).Last();
            Assert.Equal(StopReason.ContextFull, last.Stop);
            Assert.Equal(32, session.Position);
        }
        // Still usable after the model is gone: the caller owns it.
        using var buffer = device.Allocate(16);
    }

    /// <summary>
    /// A device whose kernels fail (here: every launch reports NVRTC's compile error, as an unsupported GPU would) is
    /// found out when the backend opens (the probe), not mid-conversation: Auto falls back with a notice naming the
    /// device and the error, Cuda throws with the same reason; nothing stays allocated on the device.
    /// </summary>
    [EmulatorFact]
    public void KernelsFailingOnTheDevice_AutoFallsBack_CudaThrows_AtLoad()
    {
        using var emulator = GpuTestDevices.Emulator();
        var failing = new FailingLaunchDevice(emulator);
        using var model = DecoderModel.LoadGguf(RandomModels.GetPath(LlavaFixtures.LlamaSynthetic));
        using (var auto = DecoderBackend.Open(model, ComputeBackend.Auto, failing))
        {
            Assert.Equal(ComputeBackend.Cpu, auto.Kind);
            output.WriteLine(auto.Notice);
            Assert.Equal($"the decoder cannot run on {emulator.Name}: nvrtcCompileProgram failed: NVRTC_ERROR_COMPILATION (6); running on the CPU", auto.Notice);
        }
        var e = Assert.Throws<ComputeBackendUnavailableException>(() => DecoderBackend.Open(model, ComputeBackend.Cuda, failing));
        Assert.Equal($"the CUDA backend was requested but the decoder cannot run on {emulator.Name}: nvrtcCompileProgram failed: NVRTC_ERROR_COMPILATION (6)", e.Message);
        Assert.Equal(0, failing.LiveBuffers);
    }

    /// <summary>The emulator, except that launching a kernel fails as a kernel that NVRTC cannot compile does.</summary>
    private sealed unsafe class FailingLaunchDevice(IGpuDevice inner) : IGpuDevice
    {
        public int LiveBuffers { get; private set; }
        public string Name => inner.Name;
        public (int Major, int Minor) ComputeCapability => inner.ComputeCapability;
        public DeviceBuffer Allocate(long bytes)
        {
            var b = inner.Allocate(bytes);
            LiveBuffers++;
            return new DeviceBuffer(this, b.Pointer, b.Bytes, b.CapacityBytes);
        }
        public void Free(DeviceBuffer buffer)
        {
            LiveBuffers--;
            inner.Free(new DeviceBuffer(inner, buffer.Pointer, buffer.Bytes, buffer.CapacityBytes));
        }
        public void Upload(DevicePtr destination, void* source, long bytes) => inner.Upload(destination, source, bytes);
        public void Download(void* destination, DevicePtr source, long bytes) => inner.Download(destination, source, bytes);
        public void Fill(DevicePtr destination, byte value, long bytes) => inner.Fill(destination, value, bytes);
        public GpuKernel Kernel(string name) => inner.Kernel(name);
        public void Launch(GpuKernel kernel, Dim3 grid, Dim3 block, int sharedBytes, KernelArguments arguments)
            => throw new CudaException("nvrtcCompileProgram", 6, "NVRTC_ERROR_COMPILATION");
        public void Synchronize() => inner.Synchronize();
        public void Dispose() { }
    }

    /// <summary>The text-only path (TextGenerator, as `llava run` without images uses it): the same greedy text on both backends.</summary>
    [EmulatorFact]
    public void TextGeneratorOnTheCudaBackend_GivesTheCpuText()
    {
        using var device = GpuTestDevices.Emulator();
        using var model = DecoderModel.LoadGguf(RandomModels.GetPath(LlavaFixtures.LlamaSynthetic));
        using var gpuBackend = DecoderBackend.Open(model, ComputeBackend.Cuda, device);
        Assert.Equal(ComputeBackend.Cuda, gpuBackend.Kind);
        using var pool = new ComputeThreadPool(2);
        using var cpu = new TextGenerator(model, 64, pool);
        using var gpu = new TextGenerator(gpuBackend, 64, pool);
        var options = new GenerationOptions { MaxTokens = 10, Sampling = SamplingOptions.Greedy };
        int[] prompt = cpu.Tokenizer.Encode("hello there, how are", addSpecial: true);
        string cpuText = string.Concat(cpu.Generate(prompt, options).Select(p => p.Text));
        string gpuText = string.Concat(gpu.Generate(prompt, options).Select(p => p.Text));
        output.WriteLine($"'{cpuText}' ({cpu.LastStats!.GeneratedTokens} tokens, {cpu.LastStats.Stop})");
        Assert.Equal(cpuText, gpuText);
        Assert.Equal(cpu.Session.Position, gpu.Session.Position);
        Assert.Equal(cpu.LastStats.GeneratedTokens, gpu.LastStats!.GeneratedTokens);
    }
}

/// <summary>The session checks on a real GPU; skipped (with the reason) without one.</summary>
public class GpuSessionGpuTests(ITestOutputHelper output)
{
    [GpuTheory]
    [MemberData(nameof(GpuSessionEmulatorTests.CheckNames), MemberType = typeof(GpuSessionEmulatorTests))]
    public void CudaSessionAgreesWithCpuSession(string check)
    {
        using var device = CudaDevice.Open();
        GpuCheckResult result = GpuSessionChecks.All.Single(c => c.Name == check).Run(device, 1);
        output.WriteLine(result.ToString());
        Assert.True(result.Passed, result.ToString());
    }
}

/// <summary>Choosing the backend on this machine: Cuda fails clearly without a GPU, Auto falls back with a one-line notice.</summary>
public class ComputeBackendSelectionTests(ITestOutputHelper output)
{
    private static LlavaModel Load(ComputeBackend backend) => LlavaModel.LoadGguf(RandomModels.GetPath(LlavaFixtures.LlamaSynthetic),
        LlavaFixtures.ClipMmproj(), options: new ModelLoadOptions { Backend = backend });

    [Fact]
    public void Cuda_WithoutAGpu_ThrowsWithTheReason_AndWithAGpu_RunsThere()
    {
        if (GpuTestDevices.GpuUnavailableReason is { } reason)
        {
            var e = Assert.Throws<ComputeBackendUnavailableException>(() => Load(ComputeBackend.Cuda));
            output.WriteLine(e.Message);
            Assert.StartsWith("the CUDA backend was requested but no CUDA GPU (", e.Message);
            Assert.Contains(reason.TrimEnd('.'), e.Message);
            Assert.DoesNotContain('\n', e.Message);
        }
        else
        {
            using var model = Load(ComputeBackend.Cuda);
            Assert.Equal(ComputeBackend.Cuda, model.Backend.Kind);
        }
    }

    [Fact]
    public void Auto_WithoutAGpu_FallsBackToTheCpu_WithAOneLineNotice()
    {
        using var model = Load(ComputeBackend.Auto);
        if (GpuTestDevices.GpuUnavailableReason is { } reason)
        {
            Assert.Equal(ComputeBackend.Cpu, model.Backend.Kind);
            string notice = Assert.IsType<string>(model.Backend.Notice);
            output.WriteLine(notice);
            Assert.StartsWith("no CUDA GPU (", notice);
            Assert.Contains(reason.TrimEnd('.'), notice);
            Assert.EndsWith("; running on the CPU", notice);
            Assert.DoesNotContain('\n', notice);
        }
        else
        {
            Assert.Equal(ComputeBackend.Cuda, model.Backend.Kind);
            Assert.Null(model.Backend.Notice);
        }
        // Either way the session works.
        using var session = model.CreateSession(new LlavaSessionOptions { ContextSize = 32 });
        session.AppendText("hello");
        Assert.False(session.Logits.IsEmpty);
    }

    [Fact]
    public void Cpu_IsTheLibraryDefault_AndNeverLooksForAGpu()
    {
        using var model = LlavaModel.LoadGguf(RandomModels.GetPath(LlavaFixtures.LlamaSynthetic), LlavaFixtures.ClipMmproj());
        Assert.Equal(ComputeBackend.Cpu, model.Backend.Kind);
        Assert.Null(model.Backend.Notice);
        Assert.Null(model.Backend.Device);
        using var session = model.CreateSession(new LlavaSessionOptions { ContextSize = 32 });
        Assert.IsType<CpuDecoderSession>(session.Decoder);
    }

    /// <summary>The seam adds one virtual call per forward pass and no allocation: a CPU decode step through it allocates nothing.</summary>
    [Fact]
    public void CpuDecodeStepThroughTheSeam_AllocatesNothing()
    {
        using var model = DecoderModel.LoadGguf(RandomModels.GetPath(LlavaFixtures.LlamaSynthetic));
        using var backend = DecoderBackend.Cpu(model);
        using var pool = new ComputeThreadPool(1);
        using var session = backend.CreateSession(48, pool: pool);
        int[] one = [session.ForwardGreedy([3, 1, 4, 1, 5])];
        for (int i = 0; i < 4; i++) one[0] = session.ForwardGreedy(one);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 16; i++)
        {
            session.Forward(one);
            one[0] = Sampler.ArgMax(session.LastLogits);
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(25, session.Position);
    }
}
