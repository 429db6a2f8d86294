using LlavaNative.Kernels.Cuda;

namespace LlavaNative.Model.Generation;

/// <summary>
/// A <see cref="Sampler"/>'s choice made from logits that stay on the device: the repetition penalty, the banned
/// tokens and the top-k selection run there (<see cref="DeviceTopK"/>), only K (value, id) pairs come back, and the
/// sampler finishes on them (<see cref="Sampler.SampleFromCandidates"/>: temperature, top-p, min-p, the seeded draw)
/// — the token <see cref="Sampler.Sample"/> would pick from the downloaded row. Samplers whose options need the whole
/// distribution (top-k off, or above <see cref="DeviceTopK.MaxK"/>) are not <see cref="Reduces">reduced</see>; the
/// caller downloads the logits for them. Allocation-free per token once the id list has room for the sampler's
/// history and banned tokens.
/// </summary>
public sealed class GpuSampler : IDisposable
{
    private readonly DeviceTopK _topK;
    private readonly float[] _values = new float[DeviceTopK.MaxK];
    private readonly int[] _ids = new int[DeviceTopK.MaxK];
    private int[] _adjust = new int[256];

    /// <summary>For rows of up to <paramref name="maxVocab"/> logits on <paramref name="device"/>.</summary>
    public GpuSampler(IGpuDevice device, int maxVocab) => _topK = new DeviceTopK(device, maxVocab);

    /// <summary>Whether <paramref name="sampler"/>'s choice can be made from device top-k candidates (rows of up to <paramref name="maxVocab"/>).</summary>
    public static bool Reduces(Sampler sampler, int maxVocab)
        => sampler.CandidatesNeeded is > 0 and <= DeviceTopK.MaxK && sampler.VocabSize <= maxVocab;

    /// <summary>
    /// The token <paramref name="sampler"/> picks from the first <see cref="Sampler.VocabSize"/> logits at
    /// <paramref name="logits"/> (device memory; not modified). The sampler must be <see cref="Reduces">reducible</see>.
    /// </summary>
    public int Sample(Sampler sampler, DevicePtr logits)
    {
        ArgumentNullException.ThrowIfNull(sampler);
        if (!Reduces(sampler, _topK.MaxCount))
            throw new ArgumentException(sampler.VocabSize > _topK.MaxCount
                ? $"the sampler's vocabulary of {sampler.VocabSize} exceeds the {_topK.MaxCount} logits this device sampler was made for"
                : $"the sampling options need {(sampler.CandidatesNeeded == 0 ? "every logit (top-k off)" : $"{sampler.CandidatesNeeded} candidates")}; the device top-k gives at most {DeviceTopK.MaxK}",
                nameof(sampler));
        int needed = sampler.LogitAdjustmentCount;
        if (_adjust.Length < needed) _adjust = new int[Math.Max(needed, 2 * _adjust.Length)];
        int count = sampler.WriteLogitAdjustments(_adjust, out int penalized);
        int k = sampler.CandidatesNeeded;
        _topK.Select(logits, sampler.VocabSize, _adjust.AsSpan(0, count), penalized, sampler.Options.RepeatPenalty, k, _values, _ids);
        return sampler.SampleFromCandidates(_values.AsSpan(0, k), _ids.AsSpan(0, k));
    }

    public void Dispose() => _topK.Dispose();
}
