using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text;
using LlavaNative.Kernels.Tensors;
using LlavaNative.Model.Generation;
using LlavaNative.Model.Imaging;
using LlavaNative.Model.Language;
using LlavaNative.Model.Tokenizers;

namespace LlavaNative.Model.Llava;

/// <summary>Settings of one <see cref="LlavaSession"/>.</summary>
public sealed record LlavaSessionOptions
{
    /// <summary>KV cache positions (text tokens and image rows together); at most the model's training context.</summary>
    public int ContextSize { get; init; } = 4096;

    /// <summary>
    /// How the KV cache stores K and V: <see cref="KvCacheType.F32"/> (default) or <see cref="KvCacheType.F16"/> (half the
    /// memory and attention traffic, llama.cpp's default; logits move by the F16 rounding of K and V).
    /// </summary>
    public KvCacheType CacheType { get; init; } = KvCacheType.F32;

    /// <summary>Positions evaluated per batch during prompt processing.</summary>
    public int MaxBatch { get; init; } = 256;

    /// <summary>Preprocessing instead of <see cref="LlavaModel.Preprocessing"/> (e.g. another <see cref="ImageFitMode"/>).</summary>
    public ImagePreprocessorConfig? Preprocessing { get; init; }

    /// <summary>Encoded images kept by content hash; the oldest is dropped beyond this many.</summary>
    public int ImageCacheCapacity { get; init; } = 32;

    /// <summary>Told before each image is encoded and before each chunk of the prompt is evaluated.</summary>
    public IProgress<LlavaProgress>? Progress { get; init; }
}

/// <summary>What a session is busy with.</summary>
public enum LlavaStage
{
    /// <summary>Decoding, preprocessing and encoding image <see cref="LlavaProgress.Done"/> + 1 of <see cref="LlavaProgress.Total"/>.</summary>
    EncodingImage,
    /// <summary>Evaluating prompt positions: <see cref="LlavaProgress.Done"/> of <see cref="LlavaProgress.Total"/>.</summary>
    EvaluatingPrompt,
}

public readonly record struct LlavaProgress(LlavaStage Stage, int Done, int Total, string? Item = null);

/// <summary>Counters since the session was created or last <see cref="LlavaSession.Reset"/>.</summary>
public sealed record LlavaSessionStats
{
    public TimeSpan ModelLoadTime { get; init; }
    /// <summary>Images run through the encoder (cache misses) and images served from the cache.</summary>
    public int ImagesEncoded { get; init; }
    public int ImageCacheHits { get; init; }
    /// <summary>Decode + preprocess + vision tower + projector, for the images encoded.</summary>
    public TimeSpan ImageEncodeTime { get; init; }
    /// <summary>Prompt positions evaluated by the decoder (text tokens and image rows) and the time it took.</summary>
    public int PromptPositions { get; init; }
    public int PromptImagePositions { get; init; }
    public TimeSpan PromptTime { get; init; }
    public int GeneratedTokens { get; init; }
    public TimeSpan GenerationTime { get; init; }

    public double PromptTokensPerSecond => PromptPositions / Math.Max(PromptTime.TotalSeconds, 1e-9);
    public double GeneratedTokensPerSecond => GeneratedTokens / Math.Max(GenerationTime.TotalSeconds, 1e-9);
}

/// <summary>
/// One conversation on a <see cref="LlavaModel"/>: a KV cache that grows by appended chunks — text, images, token ids —
/// which are evaluated once and never recomputed; then <see cref="Generate"/> streams an answer, whose tokens stay
/// in the cache so the conversation can go on. Images are encoded once per content (SHA-256 of the bytes). Not
/// thread-safe: one call at a time.
/// <para>
/// After <see cref="Generate"/> the cache holds every token it produced except an end-of-generation token (the
/// caller's chat template writes the turn's end as text); the last sampled token is evaluated at the start of the
/// next append or generation. The decode step allocates nothing: the state's buffers, the sampler and the
/// history are allocated once per session or per <see cref="Generate"/> call; only the streamed text pieces are new strings.
/// </para>
/// </summary>
public sealed class LlavaSession : IDisposable
{
    private readonly Dictionary<string, float[]> _imageCache = new(StringComparer.Ordinal);
    private readonly Queue<string> _imageCacheOrder = new();
    private readonly float[] _lastLogits;          // [vocab] logits after the last evaluated position
    private readonly int[] _history;               // token ids in the cache (image rows as −1), for the repetition penalty
    private readonly string?[] _imageAt;           // for image rows: the image's content hash (valid where _history is −1)
    private readonly int[] _imageRowAt;            // for image rows: which row of that image's embeddings
    private readonly int[] _one = new int[1];
    private bool _hasLogits;
    private int _pendingToken = -1;                // sampled last, not yet evaluated
    private LlavaSessionStats _stats;

    internal LlavaSession(LlavaModel model, LlavaSessionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.ContextSize <= 0) throw new ArgumentOutOfRangeException(nameof(options), options.ContextSize, "context size must be positive");
        if (options.ContextSize > model.Decoder.Config.ContextLength)
            throw new ArgumentOutOfRangeException(nameof(options), options.ContextSize, $"context size {options.ContextSize} exceeds the model's {model.Decoder.Config.ContextLength}");
        if (options.ImageCacheCapacity < 0) throw new ArgumentOutOfRangeException(nameof(options), options.ImageCacheCapacity, "image cache capacity must be ≥ 0");
        Model = model;
        Options = options;
        Preprocessing = options.Preprocessing ?? model.Preprocessing;
        if (Preprocessing.ImageSize != model.Encoder.VisionConfig.ImageSize)
            throw new ArgumentException($"preprocessing makes {Preprocessing.ImageSize}-pixel squares but the vision tower takes {model.Encoder.VisionConfig.ImageSize}", nameof(options));
        Decoder = model.Backend.CreateSession(options.ContextSize, options.MaxBatch, model.Pool, options.CacheType);
        _lastLogits = new float[model.Decoder.Config.VocabSize];
        _history = new int[options.ContextSize];
        _imageAt = new string?[options.ContextSize];
        _imageRowAt = new int[options.ContextSize];
        _stats = new LlavaSessionStats { ModelLoadTime = model.LoadTime };
    }

    public LlavaModel Model { get; }
    public LlavaSessionOptions Options { get; }
    public ImagePreprocessorConfig Preprocessing { get; }

    /// <summary>
    /// The KV cache and activation buffers on the model's <see cref="LlavaModel.Backend"/>, with the forward pass bound
    /// to them (on the CPU a <see cref="CpuDecoderSession"/>, whose <see cref="CpuDecoderSession.State"/> is the
    /// <see cref="DecoderState"/>; on a GPU a <see cref="GpuDecoderSession"/>).
    /// </summary>
    public DecoderSession Decoder { get; }

    /// <summary>Where the decoder runs: <see cref="ComputeBackend.Cpu"/> or <see cref="ComputeBackend.Cuda"/>.</summary>
    public ComputeBackend Backend => Decoder.Kind;

    /// <summary>Positions used (text tokens, image rows, generated tokens; a pending sampled token included).</summary>
    public int Position => Decoder.Position + (_pendingToken >= 0 ? 1 : 0);

    public int ContextSize => Decoder.ContextSize;

    /// <summary>Positions still free.</summary>
    public int FreePositions => ContextSize - Position;

    /// <summary>Token ids at each position so far (image rows are −1).</summary>
    public ReadOnlySpan<int> History => _history.AsSpan(0, Position);

    public LlavaSessionStats Stats => _stats;

    /// <summary>Counters of the last <see cref="Generate"/> call.</summary>
    public GenerationStats? LastGeneration { get; private set; }

    /// <summary>Logits [vocab] after the last position evaluated (empty before anything was appended).</summary>
    public ReadOnlySpan<float> Logits => _hasLogits ? _lastLogits : default;

    // ---- appending -------------------------------------------------------------------------------------------

    /// <summary>
    /// Text, tokenized with the model's tokenizer (special tokens written in it are recognised; BOS first when the
    /// session is empty). Image markers are NOT interpreted here: use <see cref="AppendPrompt"/>.
    /// </summary>
    public void AppendText(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        int[] ids = Model.RequireTokenizer().Encode(text, addSpecial: Position == 0, parseSpecial: true);
        if (ids.Length > 0) Append(new LlavaPrompt([new TokenChunk(ids)]));
    }

    /// <summary>Raw token ids.</summary>
    public void AppendTokens(ReadOnlySpan<int> ids)
    {
        if (ids.Length > 0) Append(new LlavaPrompt([new TokenChunk(ids.ToArray())]));
    }

    /// <summary>One image at the next positions (with <c>&lt;im_start&gt;</c>/<c>&lt;im_end&gt;</c> around it for LLaVA v1 checkpoints).</summary>
    public void AppendImage(LlavaImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        Append(Model.PromptFormat.Placement == ImagePlacement.PatchTokens
            ? new LlavaPrompt([new TokenChunk([Model.PromptFormat.StartTokenId]), new ImageChunk(image), new TokenChunk([Model.PromptFormat.EndTokenId])])
            : new LlavaPrompt([new ImageChunk(image)]));
    }

    /// <summary>
    /// Prompt text with image markers (<see cref="LlavaPromptFormat.ImageMarker"/>): the k-th image at the k-th
    /// marker, or, with no marker, the images first (see <see cref="LlavaModel.ComposeText"/>).
    /// </summary>
    /// <exception cref="LlavaPromptException">Markers and images do not pair up.</exception>
    /// <exception cref="LlavaContextOverflowException">The prompt does not fit in the free positions (checked before any work).</exception>
    public void AppendPrompt(string text, IReadOnlyList<LlavaImage> images)
        => Append(Model.ComposeText(text, images, addSpecial: Position == 0));

    /// <summary>
    /// Evaluates a composed prompt at the next positions. With a non-empty <paramref name="logitsAll"/>, the logits of
    /// every position of the prompt (text tokens and image rows) are written to it, [positions, vocab].
    /// </summary>
    public void Append(LlavaPrompt prompt, Span<float> logitsAll = default) => AppendCore(prompt, logitsAll, keep: -1);

    /// <summary>
    /// Makes the cache hold exactly <paramref name="prompt"/> from position 0 (a whole conversation, BOS included),
    /// keeping the positions it already shares with the cache — the same token ids, the same rows of the same images
    /// (by content), from the start — and evaluating only the rest, as llama.cpp's server reuses a cached prompt
    /// prefix. The prompt's last position is always evaluated again, so <see cref="Logits"/> are the prompt's. Images
    /// are encoded (and every check made) before the cache is touched: on an error the cache is unchanged.
    /// </summary>
    /// <returns>Positions kept from the cache.</returns>
    public int ReplaceWith(LlavaPrompt prompt)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        int positions = prompt.PositionCount(Model.ImageTokenCount);
        if (positions == 0) throw new ArgumentException("the prompt is empty", nameof(prompt));
        int keep = Math.Min(CommonPrefixLength(prompt), positions - 1);
        AppendCore(prompt, default, keep);
        return keep;
    }

    /// <summary>How many leading positions of <paramref name="prompt"/> (placed from position 0) the cache already holds.</summary>
    public int CommonPrefixLength(LlavaPrompt prompt)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        int n = Model.ImageTokenCount, held = Position, p = 0;
        foreach (var chunk in prompt.Chunks)
        {
            switch (chunk)
            {
                case TokenChunk t:
                    foreach (int id in t.Ids)
                    {
                        if (p >= held || _history[p] != id || id < 0) return p;
                        p++;
                    }
                    break;
                case ImageChunk ic:
                {
                    string hash = ic.Image.ContentHash;
                    for (int r = 0, rows = ic.Rows(n); r < rows; r++)
                    {
                        if (p >= held || _history[p] != -1 || _imageRowAt[p] != ic.FirstRow + r || !string.Equals(_imageAt[p], hash, StringComparison.Ordinal)) return p;
                        p++;
                    }
                    break;
                }
            }
        }
        return p;
    }

    /// <summary>
    /// Drops every position from <paramref name="position"/> on (e.g. an answer to regenerate). <see cref="Logits"/>
    /// are empty until something is appended.
    /// </summary>
    public void Truncate(int position)
    {
        if (position < 0 || position > Position)
            throw new ArgumentOutOfRangeException(nameof(position), position, $"the cache holds {Position} positions");
        if (position == Position) return;
        _pendingToken = -1; // it sat at Decoder.Position, which is at or after the cut
        Decoder.Truncate(position);
        _hasLogits = false;
    }

    private void AppendCore(LlavaPrompt prompt, Span<float> logitsAll, int keep)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        int n = Model.ImageTokenCount, vocab = Model.Decoder.Config.VocabSize;
        foreach (var c in prompt.Chunks)
            if (c is ImageChunk ic && (ic.FirstRow < 0 || ic.FirstRow >= n || ic.RowCount == 0 || ic.RowCount < -1 || ic.FirstRow + ic.Rows(n) > n))
                throw new ArgumentException($"image chunk rows {ic.FirstRow}..+{ic.RowCount} are outside the image's {n} rows", nameof(prompt));
        if (keep >= 0)
        {
            // Replacing from position 0: evaluate what follows the kept prefix (the overflow check is on the whole prompt).
            int total = prompt.PositionCount(n);
            if (total > ContextSize)
                throw new LlavaContextOverflowException(total, ContextSize, ContextSize, prompt.TextTokenCount, prompt.ImageRowCount(n), prompt.Images.Count());
            prompt = prompt.SkipPositions(keep, n);
        }
        int positions = prompt.PositionCount(n);
        if (positions == 0) return;
        int needed = positions + (_pendingToken >= 0 && keep < 0 ? 1 : 0);
        int start = keep >= 0 ? keep : Decoder.Position;
        if (keep < 0 && start + needed > ContextSize)
            throw new LlavaContextOverflowException(positions, ContextSize - Position, ContextSize, prompt.TextTokenCount,
                prompt.ImageRowCount(n), prompt.Images.Count());
        bool all = !logitsAll.IsEmpty;
        if (all && logitsAll.Length < (long)positions * vocab)
            throw new ArgumentException($"logits buffer holds {logitsAll.Length} floats, needs {(long)positions * vocab} ({positions} × {vocab})", nameof(logitsAll));
        foreach (var c in prompt.Chunks)
            if (c is TokenChunk tc)
                foreach (int t in tc.Ids)
                    if ((uint)t >= (uint)vocab)
                        throw new ArgumentOutOfRangeException(nameof(prompt), t, $"token id {t} is outside the vocabulary (0..{vocab - 1})");

        // Encode every image first (the slow, failure-prone part), so a bad image leaves the cache untouched.
        var embeddings = new Dictionary<LlavaImage, float[]>(ReferenceEqualityComparer.Instance);
        var distinct = prompt.Images.ToList();
        for (int i = 0; i < distinct.Count; i++)
        {
            Options.Progress?.Report(new LlavaProgress(LlavaStage.EncodingImage, i, distinct.Count, distinct[i].Name));
            embeddings[distinct[i]] = EncodeImage(distinct[i]);
        }

        if (keep >= 0) Truncate(keep); // a kept prefix that is the whole cache keeps its pending token
        FlushPendingToken();
        var clock = Stopwatch.StartNew();
        int done = 0, imagePositions = 0;
        for (int k = 0; k < prompt.Chunks.Count; k++)
        {
            Options.Progress?.Report(new LlavaProgress(LlavaStage.EvaluatingPrompt, done, positions));
            bool last = k == prompt.Chunks.Count - 1;
            switch (prompt.Chunks[k])
            {
                case TokenChunk { Ids.Length: > 0 } t:
                {
                    var logits = Decoder.Forward(t.Ids, all ? LogitsMode.All : LogitsMode.Last,
                        all ? logitsAll.Slice(done * vocab, t.Ids.Length * vocab) : default);
                    if (last && !all) logits.CopyTo(_lastLogits);
                    t.Ids.CopyTo(_history, Decoder.Position - t.Ids.Length);
                    done += t.Ids.Length;
                    break;
                }
                case ImageChunk ic:
                {
                    int rows = ic.Rows(n), dim = Model.Decoder.Config.Dim;
                    var rowsData = embeddings[ic.Image].AsSpan(ic.FirstRow * dim, rows * dim);
                    LogitsMode? mode = all ? LogitsMode.All : last ? LogitsMode.Last : null;
                    Decoder.ForwardEmbeddings(rowsData, mode, all ? logitsAll.Slice(done * vocab, rows * vocab) : default);
                    if (last && !all) Decoder.LastLogits.CopyTo(_lastLogits);
                    _history.AsSpan(Decoder.Position - rows, rows).Fill(-1);
                    for (int r = 0; r < rows; r++)
                    {
                        _imageAt[Decoder.Position - rows + r] = ic.Image.ContentHash;
                        _imageRowAt[Decoder.Position - rows + r] = ic.FirstRow + r;
                    }
                    done += rows;
                    imagePositions += rows;
                    break;
                }
            }
        }
        clock.Stop();
        if (all) logitsAll.Slice((positions - 1) * vocab, vocab).CopyTo(_lastLogits);
        _hasLogits = true;
        _stats = _stats with
        {
            PromptPositions = _stats.PromptPositions + positions,
            PromptImagePositions = _stats.PromptImagePositions + imagePositions,
            PromptTime = _stats.PromptTime + clock.Elapsed,
        };
    }

    /// <summary>
    /// The image's embeddings [ImageTokenCount, dim] as this session's preprocessing makes them; from the cache when the
    /// same content was encoded before. The array is shared with the cache: do not modify it.
    /// </summary>
    /// <exception cref="Imaging.ImageFormatException">The image cannot be decoded (the message names it).</exception>
    public float[] EncodeImage(LlavaImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        string key = image.ContentHash;
        if (_imageCache.TryGetValue(key, out var cached))
        {
            _stats = _stats with { ImageCacheHits = _stats.ImageCacheHits + 1 };
            return cached;
        }
        var clock = Stopwatch.StartNew();
        float[] pixels = ImagePreprocessor.Process(image.Decode(), Preprocessing);
        float[] embeddings = Model.GpuEncoder?.EncodeAndProject(pixels) ?? Model.Encoder.EncodeAndProject(pixels);
        clock.Stop();
        _stats = _stats with { ImagesEncoded = _stats.ImagesEncoded + 1, ImageEncodeTime = _stats.ImageEncodeTime + clock.Elapsed };
        if (Options.ImageCacheCapacity > 0)
        {
            if (_imageCache.Count >= Options.ImageCacheCapacity) _imageCache.Remove(_imageCacheOrder.Dequeue());
            _imageCache[key] = embeddings;
            _imageCacheOrder.Enqueue(key);
        }
        return embeddings;
    }

    /// <summary>Forgets the conversation (the next append starts at position 0 with BOS) and the counters; encoded images stay cached.</summary>
    public void Reset()
    {
        Decoder.Reset();
        _pendingToken = -1;
        _hasLogits = false;
        LastGeneration = null;
        _stats = new LlavaSessionStats { ModelLoadTime = Model.LoadTime };
    }

    public void ClearImageCache()
    {
        _imageCache.Clear();
        _imageCacheOrder.Clear();
    }

    private void FlushPendingToken()
    {
        if (_pendingToken < 0) return;
        _one[0] = _pendingToken;
        _pendingToken = -1;
        var logits = Decoder.Forward(_one);
        logits.CopyTo(_lastLogits);
        _history[Decoder.Position - 1] = _one[0];
    }

    // ---- generation ----------------------------------------------------------------------------------------------

    /// <summary>
    /// Samples an answer from the current position, streaming text as whole characters (held back while it could
    /// still start a stop string). The last piece has <see cref="GeneratedPiece.Stop"/> set (≠ None) and carries any
    /// remaining text. Cancelling ends the stream with <see cref="StopReason.Cancelled"/> (no exception).
    /// </summary>
    public IEnumerable<GeneratedPiece> Generate(GenerationOptions options, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Sampling.Validate();
        var tokenizer = Model.RequireTokenizer();
        if (!_hasLogits && _pendingToken < 0)
            throw new InvalidOperationException("nothing to continue: append a prompt (text, image or tokens) before generating");
        return GenerateCore(options, tokenizer, cancellation);
    }

    private IEnumerable<GeneratedPiece> GenerateCore(GenerationOptions options, Tokenizer tokenizer, CancellationToken cancellation)
    {
        var clock = Stopwatch.StartNew();
        int vocab = Model.Decoder.Config.VocabSize;
        var sampler = options.CreateSampler(Math.Min(tokenizer.VocabSize, vocab), tokenizer);
        int promptPositions = Position;
        FlushPendingToken();
        int historyStart = Math.Max(0, Decoder.Position - options.Sampling.RepeatLastN);
        foreach (int t in _history.AsSpan(historyStart, Decoder.Position - historyStart)) if (t >= 0) sampler.Accept(t);

        var decoder = new TextDecoder(tokenizer);
        var pending = new StringBuilder(); // decoded text not yet released (stop-string look-behind)
        bool inState = false; // whether a step ran (the decoder then holds the current logits, possibly only on the device)
        int next = -1;        // the token chosen with the last step (device argmax, or ForwardSample)
        int generated = 0;
        var stop = StopReason.None;
        while (stop == StopReason.None)
        {
            if (cancellation.IsCancellationRequested) { stop = StopReason.Cancelled; break; }
            if (Decoder.Position >= ContextSize) { stop = StopReason.ContextFull; break; }
            int token = next >= 0 ? next : sampler.Sample(_lastLogits);
            if (tokenizer.IsEndOfGeneration(token)) { stop = StopReason.EndOfGeneration; break; }
            generated++;
            sampler.Accept(token);
            pending.Append(decoder.Append(token));
            string? released = TextGenerator.Release(pending, options.StopStrings, ref stop);
            if (stop == StopReason.None && options.MaxTokens >= 0 && generated >= options.MaxTokens) stop = StopReason.TokenLimit;
            if (stop != StopReason.None)
            {
                _pendingToken = token; // kept in the conversation, evaluated when it continues
                _history[Decoder.Position] = token;
                if (released is { Length: > 0 }) yield return new GeneratedPiece(released, token, StopReason.None);
                break;
            }
            _one[0] = token;
            // On the GPU, plain greedy brings back one int (device argmax) and top-k the K best candidates, not the logits.
            next = Decoder.ForwardSample(_one, sampler);
            inState = true;
            _history[Decoder.Position - 1] = token;
            if (released is { Length: > 0 }) yield return new GeneratedPiece(released, token, StopReason.None);
        }
        if (_pendingToken < 0 && inState) Decoder.LastLogits.CopyTo(_lastLogits);
        if (stop != StopReason.StopString) pending.Append(decoder.Flush());
        clock.Stop();
        LastGeneration = new GenerationStats(promptPositions, generated, TimeSpan.Zero, clock.Elapsed, stop);
        _stats = _stats with { GeneratedTokens = _stats.GeneratedTokens + generated, GenerationTime = _stats.GenerationTime + clock.Elapsed };
        yield return new GeneratedPiece(pending.ToString(), -1, stop);
    }

    /// <summary>
    /// <see cref="Generate"/> as an async stream: each step runs on the thread pool. Cancellation ends the stream
    /// with a final piece whose Stop is <see cref="StopReason.Cancelled"/>, as the synchronous form does.
    /// </summary>
    public async IAsyncEnumerable<GeneratedPiece> GenerateAsync(GenerationOptions options, [EnumeratorCancellation] CancellationToken cancellation = default)
    {
        using var steps = Generate(options, cancellation).GetEnumerator();
        while (await Task.Run(steps.MoveNext, CancellationToken.None).ConfigureAwait(false))
            yield return steps.Current;
    }

    public void Dispose() => Decoder.Dispose();
}
