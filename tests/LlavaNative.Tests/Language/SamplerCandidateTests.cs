using LlavaNative.Model.Generation;
using LlavaNative.TestSupport.Cuda;
using Xunit;

namespace LlavaNative.Tests.Language;

/// <summary>
/// <see cref="Sampler.SampleFromCandidates"/> (what the GPU path finishes with) against <see cref="Sampler.Sample"/> on
/// the whole row, on the host: the candidates are the scalar reference top-k of <see cref="GpuSamplingChecks"/>.
/// </summary>
public sealed class SamplerCandidateTests
{
    [Theory]
    [InlineData(0.8f, 40, 0.95f, 0.05f, 1.1f)]
    [InlineData(0f, 40, 1f, 0f, 1.3f)]
    [InlineData(1.5f, 256, 1f, 0f, 0.9f)]
    [InlineData(0.5f, 1, 1f, 0f, 1f)]
    [InlineData(1f, 7, 0.6f, 0.3f, 1.2f)]
    public void CandidatesGiveTheTokenOfTheWholeRow(float temperature, int topK, float topP, float minP, float penalty)
    {
        const int Vocab = 3001;
        var options = new SamplingOptions { Temperature = temperature, TopK = topK, TopP = topP, MinP = minP, RepeatPenalty = penalty, RepeatLastN = 32, Seed = 42 };
        var whole = new Sampler(Vocab, options);
        var candidates = new Sampler(Vocab, options);
        int[] banned = [5, 17, 2999];
        whole.Ban(banned);
        candidates.Ban(banned);
        var rng = new Random(7);
        var adjust = new int[candidates.LogitAdjustmentCount + 64];
        int distinct = 0;
        var seen = new HashSet<int>();
        for (int step = 0; step < 80; step++)
        {
            float[] logits = GpuSamplingChecks.TiedLogits(rng, Vocab);
            int n = candidates.WriteLogitAdjustments(adjust, out int penalized);
            var top = GpuSamplingChecks.ReferenceTopK(logits, adjust[..penalized], adjust[penalized..n], penalty, candidates.CandidatesNeeded);
            int expected = whole.Sample(logits);
            int actual = candidates.SampleFromCandidates(top.Select(t => t.Value).ToArray(), top.Select(t => t.Id).ToArray());
            Assert.Equal(expected, actual);
            if (seen.Add(expected)) distinct++;
            whole.Accept(expected);
            candidates.Accept(expected);
        }
        Assert.True(temperature <= 0 || topK == 1 || distinct > 10, $"only {distinct} distinct tokens: the draw is not exercised");
    }

    [Fact]
    public void BadCandidateListsAreClearErrors()
    {
        var sampler = new Sampler(100, new SamplingOptions { TopK = 3, Seed = 1 });
        Assert.Equal(3, sampler.CandidatesNeeded);
        Assert.Contains("needs 3 to 100", Assert.Throws<ArgumentException>(() => sampler.SampleFromCandidates([2f, 1f], [0, 1])).Message);
        Assert.Contains("not in order", Assert.Throws<ArgumentException>(() => sampler.SampleFromCandidates([2f, 3f, 1f], [0, 1, 2])).Message);
        Assert.Contains("not in order", Assert.Throws<ArgumentException>(() => sampler.SampleFromCandidates([2f, 2f, 1f], [4, 1, 2])).Message);
        var whole = new Sampler(100, new SamplingOptions { TopK = 0, Seed = 1 });
        Assert.Equal(0, whole.CandidatesNeeded);
        Assert.Throws<InvalidOperationException>(() => whole.SampleFromCandidates([2f], [0]));
        Assert.Equal(1, new Sampler(100, SamplingOptions.Greedy).CandidatesNeeded);
    }

    /// <summary>Equal logits are candidates in id order (Array.Sort alone is not stable): the draw is defined by the row.</summary>
    [Fact]
    public void TiesAreOrderedById()
    {
        var logits = new float[64];
        for (int i = 0; i < logits.Length; i++) logits[i] = i % 3 == 0 ? 1f : 0f;
        // Top-k 5 of a row whose 22 largest are equal: ids 0, 3, 6, 9, 12, whatever the sort did with them.
        for (int seed = 0; seed < 30; seed++)
        {
            var sampler = new Sampler(64, new SamplingOptions { Temperature = 1f, TopK = 5, TopP = 1f, MinP = 0f, Seed = (ulong)seed });
            Assert.Contains(sampler.Sample(logits), (int[])[0, 3, 6, 9, 12]);
        }
    }
}
