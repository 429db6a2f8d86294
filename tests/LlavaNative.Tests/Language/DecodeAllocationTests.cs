using LlavaNative.Kernels.Cpu;
using LlavaNative.Kernels.Tensors;
using LlavaNative.Model.Generation;
using LlavaNative.Model.Language;
using LlavaNative.TestSupport;
using Xunit;

namespace LlavaNative.Tests.Language;

/// <summary>The decode loop (forward one token + sample) allocates no managed memory once warmed up.</summary>
public sealed class DecodeAllocationTests
{
    [Theory]
    [InlineData(RandomModelArchitecture.Llama, KvCacheType.F32)]
    [InlineData(RandomModelArchitecture.Qwen2, KvCacheType.F32)]
    [InlineData(RandomModelArchitecture.Llama, KvCacheType.F16)]
    [InlineData(RandomModelArchitecture.Qwen2, KvCacheType.F16)]
    public void DecodeStepAllocatesNothing(RandomModelArchitecture architecture, KvCacheType cacheType)
    {
        string path = RandomModels.GetPath(RandomModelSpec.Tiny(architecture, RandomModelVocabulary.Synthetic));
        using var model = DecoderModel.LoadGguf(path);
        using var pool = new ComputeThreadPool(2);
        using var state = model.CreateState(128, pool: pool, cacheType: cacheType);
        var sampler = new Sampler(model.Config.VocabSize, new SamplingOptions { Temperature = 0.7f, Seed = 1, RepeatPenalty = 1.1f });
        int[] one = [5];

        void Step()
        {
            var logits = model.Forward(state, one);
            one[0] = sampler.Sample(logits);
            sampler.Accept(one[0]);
        }

        for (int i = 0; i < 8; i++) Step(); // warm-up: JIT tiers, first-use paths
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 32; i++) Step();
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void PromptLongerThanTheContextIsAClearError()
    {
        string path = RandomModels.GetPath(RandomModelSpec.Tiny(RandomModelArchitecture.Llama, RandomModelVocabulary.Synthetic));
        using var model = DecoderModel.LoadGguf(path);
        using var state = model.CreateState(16);
        var e = Assert.Throws<ContextOverflowException>(() => model.Forward(state, new int[17]));
        Assert.Contains("16 positions", e.Message);
        Assert.Equal(0, state.Position); // nothing half-processed
    }

    [Fact]
    public void TokenIdOutOfRangeIsAClearError()
    {
        string path = RandomModels.GetPath(RandomModelSpec.Tiny(RandomModelArchitecture.Llama, RandomModelVocabulary.Synthetic));
        using var model = DecoderModel.LoadGguf(path);
        using var state = model.CreateState(16);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => model.Forward(state, [1, model.Config.VocabSize]));
        Assert.Contains($"token id {model.Config.VocabSize}", e.Message);
    }
}
