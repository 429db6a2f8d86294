namespace LlavaNative.Model.Generation;

/// <summary>
/// Picks the next token from logits: repetition penalty → top-k → top-p → min-p → temperature → draw
/// (llama.cpp's sampler chain order). All buffers are allocated once per vocabulary size, so sampling in
/// the decode loop allocates nothing.
/// </summary>
public sealed class Sampler
{
    private readonly SamplingOptions _options;
    private readonly Random _random;
    private readonly float[] _keys;    // candidate logits (negated while sorting)
    private readonly int[] _ids;       // candidate token ids
    private readonly int[] _history;   // ring of recent tokens for the repetition penalty
    private int _historyCount, _historyNext;
    private int[] _banned = [];        // tokens never sampled (e.g. end-of-generation tokens with --ignore-eos)

    public SamplingOptions Options => _options;
    public ulong Seed { get; }

    public Sampler(int vocabSize, SamplingOptions options)
    {
        options.Validate();
        _options = options;
        Seed = options.Seed ?? (ulong)Random.Shared.NextInt64();
        _random = new Random((int)(Seed ^ (Seed >> 32)));
        _keys = new float[vocabSize];
        _ids = new int[vocabSize];
        _probabilities = new float[vocabSize];
        _history = new int[Math.Max(1, options.RepeatLastN)];
    }

    /// <summary>Records a token of the context (prompt or generated) for the repetition penalty.</summary>
    public void Accept(int token)
    {
        if (_options.RepeatLastN == 0) return;
        _history[_historyNext] = token;
        _historyNext = (_historyNext + 1) % _history.Length;
        if (_historyCount < _history.Length) _historyCount++;
    }

    public void ResetHistory() => _historyCount = _historyNext = 0;

    /// <summary>Tokens this sampler never picks (their logits count as −∞), as llama.cpp's logit bias of −∞ does.</summary>
    public void Ban(IEnumerable<int> tokens)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        _banned = tokens.Where(t => (uint)t < (uint)_keys.Length).Distinct().ToArray();
        if (_banned.Length >= _keys.Length) throw new ArgumentException("every token of the vocabulary is banned", nameof(tokens));
    }

    /// <summary>Chooses a token. <paramref name="logits"/> is not modified.</summary>
    public int Sample(ReadOnlySpan<float> logits)
    {
        int n = Math.Min(logits.Length, _keys.Length);
        logits[..n].CopyTo(_keys);
        ApplyRepeatPenalty(n);
        foreach (int token in _banned) if (token < n) _keys[token] = float.NegativeInfinity;

        if (_options.Temperature <= 0) return ArgMax(_keys.AsSpan(0, n));

        // Candidates: everything within 30 nats of the best (e^-30 ≈ 1e-13 of its probability: dropping those
        // changes no practical outcome and keeps the sort small for 150k-token vocabularies).
        float max = float.NegativeInfinity;
        for (int i = 0; i < n; i++) if (_keys[i] > max) max = _keys[i];
        float floor = max - 30f * Math.Max(1f, _options.Temperature);
        int count = 0;
        for (int i = 0; i < n; i++)
        {
            if (_keys[i] >= floor)
            {
                _keys[count] = -_keys[i]; // negate so ascending sort = descending logits
                _ids[count] = i;
                count++;
            }
        }
        Array.Sort(_keys, _ids, 0, count);
        // Array.Sort is not stable: put equal values in id order, so the candidate order (and with it the draw) is
        // fully defined — the order a device top-k (DeviceTopK) reproduces.
        for (int i = 0; i < count;)
        {
            int end = i + 1;
            while (end < count && _keys[end] == _keys[i]) end++;
            if (end - i > 1) Array.Sort(_ids, i, end - i);
            i = end;
        }
        for (int i = 0; i < count; i++) _keys[i] = -_keys[i];
        return Draw(count);
    }

    /// <summary>
    /// How many of the best candidates <see cref="SampleFromCandidates"/> needs to choose exactly as
    /// <see cref="Sample"/> would: 1 when greedy, top-k when it is set (at most the vocabulary), 0 when the whole
    /// distribution matters (top-k off), i.e. the logits cannot be reduced to a short candidate list.
    /// </summary>
    public int CandidatesNeeded => _options.Temperature <= 0 ? 1 : _options.TopK > 0 ? Math.Min(_options.TopK, _keys.Length) : 0;

    /// <summary>The vocabulary size this sampler was made for: <see cref="Sample"/> reads that many logits.</summary>
    public int VocabSize => _keys.Length;

    /// <summary>An upper bound on what <see cref="WriteLogitAdjustments"/> writes.</summary>
    public int LogitAdjustmentCount => (_options.RepeatPenalty != 1f ? _historyCount : 0) + _banned.Length;

    /// <summary>
    /// What <see cref="Sample"/> does to the logits before choosing, as token lists for a device that does it:
    /// first the distinct tokens of the history that get the repetition penalty (<paramref name="penalized"/> of
    /// them; logit v becomes v &gt; 0 ? v / penalty : v · penalty), then the banned tokens (logit −∞, applied after
    /// the penalty). All ids are below <see cref="VocabSize"/>. Returns the number written; allocation-free.
    /// </summary>
    public int WriteLogitAdjustments(Span<int> destination, out int penalized)
    {
        if (destination.Length < LogitAdjustmentCount)
            throw new ArgumentException($"the destination holds {destination.Length} ids, needs {LogitAdjustmentCount}", nameof(destination));
        int written = 0;
        if (_options.RepeatPenalty != 1f)
        {
            for (int i = 0; i < _historyCount; i++)
            {
                int token = _history[i];
                if ((uint)token >= (uint)_keys.Length) continue;
                bool seenBefore = false;
                for (int j = 0; j < i; j++) if (_history[j] == token) { seenBefore = true; break; }
                if (!seenBefore) destination[written++] = token;
            }
        }
        penalized = written;
        _banned.CopyTo(destination[written..]);
        return written + _banned.Length;
    }

    /// <summary>
    /// Chooses a token from the best candidates of the (penalised, banned-masked) logits instead of all of them — the
    /// same token <see cref="Sample"/> returns for the same state, when <paramref name="values"/> / <paramref name="ids"/>
    /// are the <see cref="CandidatesNeeded"/> (or more) largest values of those logits in Sample's order: larger value
    /// first, the smaller id on equal values (NaN logits are never candidates). Allocation-free.
    /// </summary>
    public int SampleFromCandidates(ReadOnlySpan<float> values, ReadOnlySpan<int> ids)
    {
        int needed = CandidatesNeeded;
        if (needed == 0)
            throw new InvalidOperationException("top-k is off, so sampling needs every logit: call Sample with the whole row");
        if (values.Length != ids.Length)
            throw new ArgumentException($"{values.Length} candidate values but {ids.Length} ids");
        if (values.Length < needed || values.Length > _keys.Length)
            throw new ArgumentException($"{values.Length} candidates; this sampler needs {needed} to {_keys.Length}");
        for (int i = 1; i < values.Length; i++)
            if (values[i] > values[i - 1] || (values[i] == values[i - 1] && ids[i] <= ids[i - 1]))
                throw new ArgumentException($"candidates are not in order (largest value first, then smaller id) at {i}: ({values[i - 1]}, {ids[i - 1]}) then ({values[i]}, {ids[i]})");

        if (_options.Temperature <= 0) return ids[0]; // ArgMax: the first of the largest
        // As Sample: everything within 30 nats of the best, which is a prefix of the ordered candidates.
        float floor = values[0] - 30f * Math.Max(1f, _options.Temperature);
        int count = 0;
        while (count < values.Length && values[count] >= floor)
        {
            _keys[count] = values[count];
            _ids[count] = ids[count];
            count++;
        }
        if (count == 0) throw new ArgumentException("no candidate has a finite or infinite value (all NaN)");
        return Draw(count);
    }

    /// <summary>Top-k, top-p, min-p and temperature over the sorted candidates _keys/_ids [0, count), then the random draw.</summary>
    private int Draw(int count)
    {
        if (_options.TopK > 0 && _options.TopK < count) count = _options.TopK;

        // Probabilities at temperature 1 for top-p / min-p (as llama.cpp's chain: they precede temperature).
        Softmax(count, 1f);
        if (_options.TopP < 1f)
        {
            double cumulative = 0;
            for (int i = 0; i < count; i++)
            {
                cumulative += _probabilities[i];
                if (cumulative >= _options.TopP) { count = i + 1; break; }
            }
        }
        if (_options.MinP > 0f)
        {
            float threshold = _probabilities[0] * _options.MinP;
            int kept = 1;
            while (kept < count && _probabilities[kept] >= threshold) kept++;
            count = kept;
        }

        Softmax(count, _options.Temperature);
        double r = _random.NextDouble(), acc = 0;
        for (int i = 0; i < count; i++)
        {
            acc += _probabilities[i];
            if (r < acc) return _ids[i];
        }
        return _ids[count - 1];
    }

    private readonly float[] _probabilities; // softmax of the candidates

    private void Softmax(int count, float temperature)
    {
        float max = _keys[0];
        double sum = 0;
        for (int i = 0; i < count; i++)
        {
            float p = MathF.Exp((_keys[i] - max) / temperature);
            _probabilities[i] = p;
            sum += p;
        }
        for (int i = 0; i < count; i++) _probabilities[i] = (float)(_probabilities[i] / sum);
    }

    private void ApplyRepeatPenalty(int n)
    {
        float penalty = _options.RepeatPenalty;
        if (penalty == 1f || _historyCount == 0) return;
        // Each distinct token is penalised once, however often it occurred (llama.cpp semantics).
        for (int i = 0; i < _historyCount; i++)
        {
            int token = _history[i];
            if ((uint)token >= (uint)n) continue;
            bool seenBefore = false;
            for (int j = 0; j < i; j++) if (_history[j] == token) { seenBefore = true; break; }
            if (seenBefore) continue;
            _keys[token] = _keys[token] > 0 ? _keys[token] / penalty : _keys[token] * penalty;
        }
    }

    /// <summary>Index of the largest value (first on ties).</summary>
    public static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        float bestValue = values[0];
        for (int i = 1; i < values.Length; i++)
            if (values[i] > bestValue) { bestValue = values[i]; best = i; }
        return best;
    }
}
