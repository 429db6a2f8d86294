using Xunit;
using Xunit.Abstractions;
using LlavaNative.Kernels.Cuda;
using LlavaNative.Kernels.Tensors;
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
    /// A greedy decode step (step inputs written, 2 layers of launches, device argmax, one int back) allocates no
    /// managed memory once warmed up, with graphs (replays) and without (direct launches): the launch code (CudaOps,
    /// argument block), the captured graph and the decoder's buffers are reused.
    /// </summary>
    [EmulatorTheory]
    [InlineData(true, KvCacheType.F32)]
    [InlineData(false, KvCacheType.F32)]
    [InlineData(true, KvCacheType.F16)]
    public void GreedyDecodeStepAllocatesNothing(bool useGraphs, KvCacheType cacheType)
    {
        using var device = GpuTestDevices.Emulator();
        using var model = GpuDecoderChecks.LoadModel(RandomModelArchitecture.Qwen2, null);
        using var gpu = new GpuDecoder(device, model.Config, model.Weights) { UseGraphs = useGraphs };
        using var state = gpu.CreateState(48, cacheType: cacheType);
        int[] one = [gpu.ForwardGreedy(state, [3, 1, 4, 1, 5])];
        for (int i = 0; i < 4; i++) one[0] = gpu.ForwardGreedy(state, one); // warm-up: JIT tiers, first-use paths, the capture
        Assert.Equal(useGraphs, state.HasDecodeGraph);
        int launches = device.LaunchCount, replays = device.GraphLaunchCount, captures = device.GraphCaptureCount;
        int allocations = device.AllocationCount;
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 16; i++) one[0] = gpu.ForwardGreedy(state, one);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
        Assert.Equal(allocations, device.AllocationCount);
        // Per step: the step inputs (position, token id), the embedding gather; per layer 19 (2 norms, 7 mat-vecs,
        // 3 q/k/v biases, 2 RoPE, the K/V append, attention, SiLU-mul, 2 residual adds); final norm, LM head, argmax.
        // Replayed kernels count as launches: the same kernels run either way.
        Assert.Equal(16 * (2 + 2 * 19 + 3), device.LaunchCount - launches);
        Assert.Equal(useGraphs ? 16 : 0, device.GraphLaunchCount - replays);
        Assert.Equal(captures, device.GraphCaptureCount);
    }

    /// <summary>
    /// The graph is captured once per state (at the second decode step of the decoder: the first runs directly so
    /// every kernel is used before a capture) and kept through Truncate, Reset and prefill batches; a state used by
    /// another decoder captures a graph of its own; Dispose releases it.
    /// </summary>
    [EmulatorFact]
    public void DecodeGraphIsCapturedOncePerStateAndDecoder()
    {
        using var device = GpuTestDevices.Emulator();
        using var model = GpuDecoderChecks.LoadModel(RandomModelArchitecture.Llama, null);
        using var gpu = new GpuDecoder(device, model.Config, model.Weights) { UseGraphs = true };
        using var state = gpu.CreateState(32, maxBatch: 4);
        gpu.ForwardGreedy(state, [5, 6, 7]);
        gpu.ForwardGreedy(state, [8]);
        Assert.False(state.HasDecodeGraph); // the decoder's first decode step: direct launches
        Assert.Equal(0, device.GraphCaptureCount);
        gpu.ForwardGreedy(state, [9]);
        Assert.True(state.HasDecodeGraph);
        Assert.Equal(1, device.GraphCaptureCount);
        state.Truncate(2);
        gpu.ForwardGreedy(state, [10]);
        state.Reset();
        gpu.ForwardGreedy(state, [1, 2, 3, 4, 5, 6]);
        gpu.ForwardGreedy(state, [11]);
        Assert.Equal(1, device.GraphCaptureCount);
        Assert.Equal(3, device.GraphLaunchCount);

        using var second = gpu.CreateState(32);
        gpu.ForwardGreedy(second, [12]); // its first step: a capture of its own (the kernels are loaded)
        Assert.Equal(2, device.GraphCaptureCount);
        using var other = new GpuDecoder(device, model.Config, model.Weights) { UseGraphs = true };
        other.ForwardGreedy(state, [13]); // another decoder's weights: direct first use, then its own graph
        other.ForwardGreedy(state, [14]);
        Assert.Equal(3, device.GraphCaptureCount);
        gpu.ForwardGreedy(state, [15]); // back to the first decoder: recaptured for it
        Assert.Equal(4, device.GraphCaptureCount);
        state.InvalidateDecodeGraph();
        Assert.False(state.HasDecodeGraph);
    }

    /// <summary>
    /// Changing <see cref="CudaOps.QuantizedMatMulPath"/> on a live decoder mid-conversation (Float → Dp4a → Float on a
    /// Q4_K model, whose dp4a mat-vec needs scratch of its own): the next step runs directly under the new choice, then
    /// is captured for it, and every step's logits equal, bit for bit, those of a decoder making the same switches
    /// with graphs off. (Before: the capture under the new path threw, its kernels never having run.)
    /// </summary>
    [EmulatorFact]
    public void SwitchingKernelPathsMidConversationRecapturesTheDecodeStep()
    {
        using var device = GpuTestDevices.Emulator();
        using var model = GpuDecoderChecks.LoadModel(RandomModelArchitecture.Llama, TensorType.Q4_K);
        float[][] Run(bool graphs)
        {
            using var gpu = new GpuDecoder(device, model.Config, model.Weights) { UseGraphs = graphs };
            using var state = gpu.CreateState(32, maxBatch: 4);
            var logits = new List<float[]>();
            int token = gpu.ForwardGreedy(state, [5, 6, 7]);
            foreach (var path in new[] { QuantizedMatMulPath.Float, QuantizedMatMulPath.Dp4a, QuantizedMatMulPath.Float })
            {
                gpu.Ops.QuantizedMatMulPath = path;
                for (int i = 0; i < 3; i++)
                {
                    token = gpu.ForwardGreedy(state, [token]);
                    logits.Add(device.Download<float>(state.Logits).Take(model.Config.VocabSize).ToArray());
                }
            }
            return logits.ToArray();
        }
        int capturesBefore = device.GraphCaptureCount;
        float[][] withGraphs = Run(graphs: true);
        Assert.Equal(3, device.GraphCaptureCount - capturesBefore); // one per choice: Float, Dp4a, Float again
        float[][] direct = Run(graphs: false);
        for (int step = 0; step < direct.Length; step++) Assert.Equal(direct[step], withGraphs[step]);
    }

    /// <summary>The emulator refuses what the driver forbids inside a capture, with a message naming it.</summary>
    [EmulatorFact]
    public void EmulatorEnforcesCaptureRules()
    {
        using var device = GpuTestDevices.Emulator();
        using var ops = new CudaOps(device);
        using var buffer = device.Allocate(64);
        using var position = device.Allocate(4);
        device.BeginCapture();
        Assert.True(device.IsCapturing);
        Assert.Contains("Allocate", Assert.Throws<InvalidOperationException>(() => device.Allocate(16)).Message);
        Assert.Contains("Upload", Assert.Throws<InvalidOperationException>(() => device.Upload<float>(buffer.Pointer, new float[4])).Message);
        Assert.Contains("Download", Assert.Throws<InvalidOperationException>(() => device.Download<float>(buffer)).Message);
        Assert.Contains("Synchronize", Assert.Throws<InvalidOperationException>(() => device.Synchronize()).Message);
        Assert.Contains("already", Assert.Throws<InvalidOperationException>(() => device.BeginCapture()).Message);
        // A kernel whose unit was never used: the driver would load a module inside the capture.
        Assert.Contains("kv_cache.cu", Assert.Throws<InvalidOperationException>(() => ops.DecodeStepBegin(position, 3, default, 0)).Message);
        device.Fill(buffer, 0, 64); // recorded, not run
        using var graph = device.EndCapture();
        Assert.False(device.IsCapturing);
        Assert.Equal(255, device.Download<byte>(buffer)[0]); // still the emulator's NaN fill
        graph.Launch();
        Assert.Equal(0, device.Download<byte>(buffer)[0]);
        Assert.Contains("without", Assert.Throws<InvalidOperationException>(() => device.EndCapture()).Message);
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
