using LlavaNative.Kernels.Cuda;
using LlavaNative.Model.Generation;

namespace LlavaNative.TestSupport.Cuda;

/// <summary>
/// Device sampling against the host: <see cref="DeviceTopK"/> (the top-k kernels with the repetition penalty and
/// banned ids) against a scalar reference written here (penalise, ban, sort by value then id, keep k), and
/// <see cref="GpuSampler"/> against <see cref="Sampler.Sample"/> on the same logits row, with two samplers of the
/// same options and seed fed the same history: the tokens must be identical, step after step. Logits are drawn from
/// a few dozen values so that ties are everywhere (the top-k boundary and the draw then depend on the tie order),
/// with −0, −∞ and NaN sprinkled in. Shared by the xunit tests (host emulator; a GPU when present) and
/// tools/device/GpuCheck. Exact agreement is required: nothing here is a float sum.
/// </summary>
public static class GpuSamplingChecks
{
    /// <summary>One shape for <see cref="TopKCheck"/>: a row of <paramref name="Vocab"/> logits, the k best.</summary>
    public sealed record TopKCase(string Name, int Vocab, int K, int History, int Banned, float Penalty);

    // Declared before All, which reads them while the class initializes.
    public static IReadOnlyList<TopKCase> TopKCases { get; } =
    [
        new("topk n 1 k 1", Vocab: 1, K: 1, History: 0, Banned: 0, Penalty: 1f),
        new("topk n 300 k 1, penalty", Vocab: 300, K: 1, History: 40, Banned: 3, Penalty: 1.3f),
        new("topk n 300 k 256", Vocab: 300, K: 256, History: 64, Banned: 5, Penalty: 0.7f),
        new("topk n 4096 k 40", Vocab: 4096, K: 40, History: 64, Banned: 1, Penalty: 1.1f),
        new("topk n 4097 k 256", Vocab: 4097, K: 256, History: 20, Banned: 0, Penalty: 1.5f),
        new("topk n 9001 k 40, penalty", Vocab: 9001, K: 40, History: 64, Banned: 8, Penalty: 1.1f),
        new("topk n 70001 k 256 (two merge passes)", Vocab: 70001, K: 256, History: 64, Banned: 2, Penalty: 1.2f),
    ];

    /// <summary>One option set for <see cref="SamplerCheck"/>.</summary>
    public sealed record SamplerCase(string Name, int Vocab, SamplingOptions Options, int Banned, int Steps);

    public static IReadOnlyList<SamplerCase> SamplerCases { get; } =
    [
        new("sampler defaults (k 40, p 0.95, min-p 0.05) + penalty", 1000,
            new SamplingOptions { Temperature = 0.8f, TopK = 40, TopP = 0.95f, MinP = 0.05f, RepeatPenalty = 1.1f, RepeatLastN = 64 }, Banned: 2, Steps: 60),
        new("sampler greedy + penalty + bans", 4097,
            new SamplingOptions { Temperature = 0f, RepeatPenalty = 1.3f, RepeatLastN = 16 }, Banned: 4, Steps: 40),
        new("sampler k 256, hot, no top-p", 5000,
            new SamplingOptions { Temperature = 1.5f, TopK = 256, TopP = 1f, MinP = 0f, RepeatPenalty = 0.9f, RepeatLastN = 32 }, Banned: 0, Steps: 40),
        new("sampler k 1", 777,
            new SamplingOptions { Temperature = 0.7f, TopK = 1, RepeatPenalty = 1.2f }, Banned: 1, Steps: 30),
        new("sampler k 5, cold, top-p 0.5", 9001,
            new SamplingOptions { Temperature = 0.3f, TopK = 5, TopP = 0.5f, MinP = 0.2f, RepeatLastN = 0 }, Banned: 0, Steps: 30),
    ];

    public static IReadOnlyList<(string Name, Func<IGpuDevice, int, GpuCheckResult> Run)> All { get; } =
    [
        .. TopKCases.Select(c => (c.Name, (Func<IGpuDevice, int, GpuCheckResult>)((d, seed) => TopKCheck(d, c, seed)))),
        .. SamplerCases.Select(c => (c.Name, (Func<IGpuDevice, int, GpuCheckResult>)((d, seed) => SamplerCheck(d, c, seed)))),
    ];

    /// <summary>
    /// Logits with ties everywhere: multiples of 0.25 in [−8, 8) (64 values), about 1% −0, 0.5% −∞ and 0.5% NaN (never
    /// at id 0, where Sampler.ArgMax would keep a NaN), and a few exact copies of the largest value.
    /// </summary>
    public static float[] TiedLogits(Random rng, int n)
    {
        var x = new float[n];
        for (int i = 0; i < n; i++)
        {
            int kind = rng.Next(200);
            x[i] = kind switch
            {
                < 2 => -0.0f,
                2 => float.NegativeInfinity,
                3 when i > 0 => float.NaN,
                _ => (rng.Next(64) - 32) * 0.25f,
            };
        }
        return x;
    }

    /// <summary>
    /// The scalar reference: logit v of each distinct id in <paramref name="penalized"/> becomes v &gt; 0 ? v / p :
    /// v · p, then banned ids −∞; the non-NaN values sorted by value (descending; −0 equal to +0), then id
    /// (ascending); the first k.
    /// </summary>
    public static (float Value, int Id)[] ReferenceTopK(float[] logits, IEnumerable<int> penalized, IEnumerable<int> banned, float penalty, int k)
    {
        var v = (float[])logits.Clone();
        foreach (int id in penalized.Distinct()) if ((uint)id < (uint)v.Length) v[id] = v[id] > 0 ? v[id] / penalty : v[id] * penalty;
        foreach (int id in banned) if ((uint)id < (uint)v.Length) v[id] = float.NegativeInfinity;
        var list = new List<(float Value, int Id)>();
        for (int i = 0; i < v.Length; i++) if (!float.IsNaN(v[i])) list.Add((v[i], i));
        list.Sort((a, b) => a.Value > b.Value ? -1 : a.Value < b.Value ? 1 : a.Id.CompareTo(b.Id));
        return list.Take(k).ToArray();
    }

    /// <summary><see cref="DeviceTopK.Select"/> on tied logits with a history of repeats and banned ids, against <see cref="ReferenceTopK"/>.</summary>
    public static unsafe GpuCheckResult TopKCheck(IGpuDevice device, TopKCase c, int seed)
    {
        var rng = new Random(seed * 7919 + c.Vocab);
        float[] logits = TiedLogits(rng, c.Vocab);
        // History with repeats (ids drawn from a small range so they recur) and one id past the vocabulary (ignored).
        var history = Enumerable.Range(0, c.History).Select(_ => rng.Next(Math.Min(c.Vocab, 48))).ToList();
        if (c.History > 0) history.Add(c.Vocab + 3);
        var banned = Enumerable.Range(0, c.Banned).Select(_ => rng.Next(c.Vocab)).Distinct().ToArray();
        // Ban the current best too, when there are bans, so a masked token would show at the top.
        if (banned.Length > 0) banned[0] = ReferenceTopK(logits, [], [], 1f, 1)[0].Id;
        var expected = ReferenceTopK(logits, history, banned, c.Penalty, c.K);

        int[] adjust = [.. history, .. banned];
        using var topK = new DeviceTopK(device, c.Vocab);
        using var row = device.Upload<float>(logits);
        var values = new float[c.K];
        var ids = new int[c.K];
        topK.Select(row, c.Vocab, adjust, history.Count, c.Penalty, c.K, values, ids);

        int wrong = 0;
        string first = "";
        for (int i = 0; i < c.K; i++)
        {
            bool same = ids[i] == expected[i].Id && values[i] == expected[i].Value
                        && (values[i] != 0 || expected[i].Value == 0); // −0 and +0 count as equal, as in the sort
            if (!same && wrong++ == 0) first = $"rank {i}: device ({values[i]:R}, {ids[i]}), reference ({expected[i].Value:R}, {expected[i].Id})";
        }
        // The logits on the device are not modified.
        var after = device.Download<float>(row);
        bool untouched = after.AsSpan().SequenceEqual(logits);
        int ties = expected.Count(e => expected.Count(o => o.Value == e.Value) > 1);
        string detail = $"n {c.Vocab}, k {c.K}, {history.Count} history ids, {banned.Length} banned, penalty {c.Penalty}; {ties} of the k tied"
                        + (wrong > 0 ? $"; {wrong} ranks differ, first {first}" : "") + (untouched ? "" : "; the logits were modified");
        return new GpuCheckResult(c.Name, wrong == 0 && untouched, wrong, 0, "identical (value, id) list", detail);
    }

    /// <summary>
    /// <see cref="GpuSampler.Sample"/> (device top-k + <see cref="Sampler.SampleFromCandidates"/>) against
    /// <see cref="Sampler.Sample"/> on the host: two samplers of the same options and seed, a new tied logits row each
    /// step, both fed the chosen token; every step must choose the same token.
    /// </summary>
    public static GpuCheckResult SamplerCheck(IGpuDevice device, SamplerCase c, int seed)
    {
        var rng = new Random(seed * 104729 + c.Vocab);
        var options = c.Options with { Seed = (ulong)(seed * 31 + 7) };
        var host = new Sampler(c.Vocab, options);
        var onDevice = new Sampler(c.Vocab, options);
        if (c.Banned > 0)
        {
            var banned = Enumerable.Range(0, c.Banned).Select(_ => rng.Next(c.Vocab)).ToArray();
            host.Ban(banned);
            onDevice.Ban(banned);
        }
        for (int i = 0; i < 10; i++)
        {
            int t = rng.Next(Math.Min(c.Vocab, 40));
            host.Accept(t);
            onDevice.Accept(t);
        }
        if (!GpuSampler.Reduces(onDevice, c.Vocab))
            return new GpuCheckResult(c.Name, false, 1, 0, "identical tokens", "the options were expected to reduce to device top-k");

        using var gpu = new GpuSampler(device, c.Vocab);
        using var row = device.Allocate(c.Vocab * 4L);
        int mismatches = 0, distinct = 0;
        string first = "";
        var seen = new HashSet<int>();
        for (int step = 0; step < c.Steps; step++)
        {
            float[] logits = TiedLogits(rng, c.Vocab);
            // Make the penalised history matter: give some history tokens the top values.
            for (int j = 0; j < 3; j++) logits[rng.Next(Math.Min(c.Vocab, 40))] = 8f;
            device.Upload<float>(row.Pointer, logits);
            int expected = host.Sample(logits);
            int actual = gpu.Sample(onDevice, row.Pointer);
            if (actual != expected && mismatches++ == 0) first = $"step {step}: device {actual}, host {expected}";
            if (seen.Add(expected)) distinct++;
            host.Accept(expected);
            onDevice.Accept(expected);
        }
        string detail = $"vocab {c.Vocab}, {c.Steps} steps, {distinct} distinct tokens" + (mismatches > 0 ? $"; {mismatches} differ, first {first}" : "");
        return new GpuCheckResult(c.Name, mismatches == 0, mismatches, 0, "identical tokens", detail);
    }
}
