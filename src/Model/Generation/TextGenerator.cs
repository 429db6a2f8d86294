using LlavaNative.Model.Language;
using LlavaNative.Model.Tokenizers;

namespace LlavaNative.Model.Generation;

/// <summary>What ends a generation.</summary>
public enum StopReason
{
    /// <summary>Still generating (only seen on intermediate pieces).</summary>
    None,
    /// <summary>The model produced an end-of-generation token.</summary>
    EndOfGeneration,
    /// <summary>The requested number of tokens was produced.</summary>
    TokenLimit,
    /// <summary>A stop string appeared in the output.</summary>
    StopString,
    /// <summary>The context window is full.</summary>
    ContextFull,
    /// <summary>The caller cancelled.</summary>
    Cancelled,
}

/// <summary>Generation settings: how many tokens, how to sample, when to stop.</summary>
public sealed record GenerationOptions
{
    /// <summary>Maximum new tokens (&lt; 0: until end of generation or a full context).</summary>
    public int MaxTokens { get; init; } = -1;
    public SamplingOptions Sampling { get; init; } = new();
    /// <summary>Generation stops when the output contains one of these; the stop string itself is not emitted.</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];

    /// <summary>
    /// End-of-generation tokens are never sampled (llama.cpp's <c>--ignore-eos</c>): generation runs to
    /// <see cref="MaxTokens"/>, a stop string, a full context or cancellation. For benchmarks and tests.
    /// </summary>
    public bool IgnoreEndOfGeneration { get; init; }

    /// <summary>A sampler for these options: <see cref="SamplingOptions"/>, plus the end-of-generation tokens banned when asked.</summary>
    internal Sampler CreateSampler(int vocabSize, Tokenizer tokenizer)
    {
        var sampler = new Sampler(vocabSize, Sampling);
        if (IgnoreEndOfGeneration) sampler.Ban(Enumerable.Range(0, vocabSize).Where(tokenizer.IsEndOfGeneration));
        return sampler;
    }
}

/// <summary>One streamed piece of output.</summary>
public readonly record struct GeneratedPiece(string Text, int TokenId, StopReason Stop);

/// <summary>Counters of the last <see cref="TextGenerator.Generate"/> call.</summary>
public sealed record GenerationStats(int PromptTokens, int GeneratedTokens, TimeSpan PromptTime, TimeSpan GenerationTime, StopReason Stop)
{
    public double PromptTokensPerSecond => PromptTokens / Math.Max(PromptTime.TotalSeconds, 1e-9);
    public double GeneratedTokensPerSecond => GeneratedTokens / Math.Max(GenerationTime.TotalSeconds, 1e-9);
}

/// <summary>
/// Prompt → streamed text on a <see cref="DecoderModel"/> (on any <see cref="DecoderBackend"/>): tokenizes, prefills the KV cache in batches,
/// then samples one token at a time. Text is released only in whole UTF-8 characters and is held back
/// while it could still be the start of a stop string.
/// </summary>
public sealed class TextGenerator : IDisposable
{
    private readonly DecoderModel _model;
    private readonly bool _ownsSession;

    public Tokenizer Tokenizer { get; }

    /// <summary>The KV cache on the backend it was made for.</summary>
    public DecoderSession Session { get; }
    public GenerationStats? LastStats { get; private set; }

    /// <summary>Generates on <paramref name="state"/> (a CPU state of <paramref name="model"/>, not disposed here).</summary>
    public TextGenerator(DecoderModel model, Tokenizer tokenizer, DecoderState state)
        : this(model, tokenizer, new CpuDecoderSession(model, state, ownsState: false), ownsSession: true)
    {
    }

    /// <summary>A CPU session of <paramref name="contextSize"/> positions.</summary>
    public TextGenerator(DecoderModel model, int contextSize, Kernels.Cpu.ComputeThreadPool? pool = null)
        : this(DecoderBackend.Cpu(model), contextSize, pool)
    {
    }

    /// <summary>
    /// A session of <paramref name="contextSize"/> positions on <paramref name="backend"/> (which must outlive the generator),
    /// its KV cache stored as <paramref name="cacheType"/>.
    /// </summary>
    public TextGenerator(DecoderBackend backend, int contextSize, Kernels.Cpu.ComputeThreadPool? pool = null,
        Kernels.Tensors.KvCacheType cacheType = Kernels.Tensors.KvCacheType.F32)
        : this(backend.Model, RequireTokenizer(backend.Model), backend.CreateSession(contextSize, pool: pool, cacheType: cacheType), ownsSession: true)
    {
    }

    private TextGenerator(DecoderModel model, Tokenizer tokenizer, DecoderSession session, bool ownsSession)
    {
        _model = model;
        Tokenizer = tokenizer;
        Session = session;
        _ownsSession = ownsSession;
    }

    private static Tokenizer RequireTokenizer(DecoderModel model) => Tokenizer.FromVocabulary(model.Vocabulary ?? throw new InvalidOperationException(
        $"{Path.GetFileName(model.SourcePath)}: the model has no tokenizer (a GGUF file without tokenizer.ggml.* keys, or a Hugging Face folder without tokenizer.json)"));

    /// <summary>Tokenizes <paramref name="prompt"/> (BOS as the model asks, special tokens recognised) and generates.</summary>
    public IEnumerable<GeneratedPiece> Generate(string prompt, GenerationOptions options, CancellationToken cancellation = default)
        => Generate(Tokenizer.Encode(prompt, addSpecial: Session.Position == 0, parseSpecial: true), options, cancellation);

    /// <summary>Appends <paramref name="promptTokens"/> to the session and generates.</summary>
    public IEnumerable<GeneratedPiece> Generate(int[] promptTokens, GenerationOptions options, CancellationToken cancellation = default)
    {
        if (promptTokens.Length == 0) throw new ArgumentException("the prompt is empty (no tokens)", nameof(promptTokens));
        var sampler = options.CreateSampler(_model.Config.VocabSize, Tokenizer);
        foreach (int t in promptTokens) sampler.Accept(t);

        var promptClock = System.Diagnostics.Stopwatch.StartNew();
        Session.Forward(promptTokens);
        promptClock.Stop();

        var decoder = new TextDecoder(Tokenizer);
        var pending = new System.Text.StringBuilder(); // decoded text not yet released (stop-string look-behind)
        int generated = 0;
        var stop = StopReason.None;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        int[] one = new int[1];
        int next = -1; // the token drawn with the last step (ForwardSample); the prompt's is drawn from its logits

        while (stop == StopReason.None)
        {
            if (cancellation.IsCancellationRequested) { stop = StopReason.Cancelled; break; }
            int token = next >= 0 ? next : sampler.Sample(Session.LastLogits);
            if (Tokenizer.IsEndOfGeneration(token)) { stop = StopReason.EndOfGeneration; break; }
            generated++;
            sampler.Accept(token);

            pending.Append(decoder.Append(token));
            string? released = Release(pending, options.StopStrings, ref stop);
            if (stop == StopReason.None && options.MaxTokens >= 0 && generated >= options.MaxTokens) stop = StopReason.TokenLimit;
            if (stop == StopReason.None && Session.Position >= Session.ContextSize) stop = StopReason.ContextFull;
            if (released is { Length: > 0 } || stop != StopReason.None)
                yield return new GeneratedPiece(released ?? "", token, StopReason.None);
            if (stop != StopReason.None) break;

            one[0] = token;
            // On the GPU with top-k sampling only the K best candidates come back, not the logits.
            next = Session.ForwardSample(one, sampler);
        }

        // Flush what the look-behind held (unless a stop string cut it) and any incomplete UTF-8 tail.
        if (stop != StopReason.StopString)
        {
            pending.Append(decoder.Flush());
        }
        clock.Stop();
        LastStats = new GenerationStats(promptTokens.Length, generated, promptClock.Elapsed, clock.Elapsed, stop);
        yield return new GeneratedPiece(pending.ToString(), -1, stop);
    }

    /// <summary>
    /// Returns the text that can no longer be part of a stop string and removes it from <paramref name="pending"/>;
    /// on a stop-string match, keeps only the text before it and sets <paramref name="stop"/>.
    /// </summary>
    internal static string? Release(System.Text.StringBuilder pending, IReadOnlyList<string> stopStrings, ref StopReason stop)
    {
        if (pending.Length == 0) return null;
        if (stopStrings.Count == 0)
        {
            string all = pending.ToString();
            pending.Clear();
            return all;
        }
        string text = pending.ToString();
        foreach (var s in stopStrings)
        {
            int at = text.IndexOf(s, StringComparison.Ordinal);
            if (at >= 0)
            {
                stop = StopReason.StopString;
                pending.Clear();
                return text[..at];
            }
        }
        // Hold back the longest suffix that is a prefix of some stop string.
        int hold = 0;
        foreach (var s in stopStrings)
            for (int k = Math.Min(s.Length - 1, text.Length); k > hold; k--)
                if (text.AsSpan(text.Length - k).SequenceEqual(s.AsSpan(0, k))) { hold = k; break; }
        string release = text[..^hold];
        pending.Remove(0, release.Length);
        return release;
    }

    public void Dispose()
    {
        if (_ownsSession) Session.Dispose();
    }
}
