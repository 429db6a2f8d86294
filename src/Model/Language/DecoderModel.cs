using LlavaNative.Kernels.Cpu.Ops;
using LlavaNative.Kernels.Cpu.Quant;
using LlavaNative.Kernels.Tensors;
using LlavaNative.Model.Formats.Gguf;
using LlavaNative.Model.Formats.HuggingFace;
using LlavaNative.Model.Tokenizers;
using LlavaNative.Model.Tokenizers.HuggingFace;

namespace LlavaNative.Model.Language;

/// <summary>Which logits a forward pass produces.</summary>
public enum LogitsMode
{
    /// <summary>Only the last position's logits (generation).</summary>
    Last,
    /// <summary>Every position's logits (evaluation / perplexity).</summary>
    All,
}

/// <summary>
/// A Llama-family decoder (Llama/Vicuna, Qwen2): one forward pass for every checkpoint layout. Prompt
/// processing runs as batched mat-muls over up to <see cref="DecoderState.MaxBatch"/> tokens at a time;
/// decoding is the same pass with one token.
/// </summary>
public sealed unsafe class DecoderModel : IDisposable
{
    /// <summary>The mapped file(s) the weights point into; disposed with the model.</summary>
    private readonly IDisposable? _weightsSource;

    public DecoderConfig Config { get; }
    public DecoderWeights Weights { get; }
    public VocabularyData? Vocabulary { get; }
    public string SourcePath { get; }

    public DecoderModel(DecoderConfig config, DecoderWeights weights, VocabularyData? vocabulary, string sourcePath, IDisposable? weightsSource = null)
    {
        Config = config;
        Weights = weights;
        Vocabulary = vocabulary;
        SourcePath = sourcePath;
        _weightsSource = weightsSource;
    }

    /// <summary>Opens a GGUF text model (llama or qwen2); <paramref name="options"/> may quantize its weights on load.</summary>
    public static DecoderModel LoadGguf(string path, ModelLoadOptions? options = null)
    {
        var file = GgufFile.Open(path);
        try
        {
            var config = DecoderConfig.FromGguf(file);
            var weights = DecoderWeights.FromGguf(file, config, options);
            var vocabulary = file.Contains("tokenizer.ggml.model") ? GgufVocabulary.Load(file) : null;
            if (vocabulary != null && vocabulary.Tokens.Length > config.VocabSize)
                throw new GgufFormatException(path, $"the tokenizer has {vocabulary.Tokens.Length} tokens but the embedding only {config.VocabSize} rows");
            return new DecoderModel(config, weights, vocabulary, path, file);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens the decoder of a Hugging Face model folder: <c>config.json</c> (a llama or qwen2 model, or the
    /// <c>text_config</c> of a llava one) and the weights <see cref="HuggingFaceCheckpoint.Open"/> picks:
    /// safetensors (single or sharded), else <c>pytorch_model.bin</c> (single or sharded). Weights are bound in place
    /// in the mapped files (F32, F16 or BF16, [out, in] exactly as stored; re-encoded when
    /// <see cref="ModelLoadOptions.Quantize"/> is set) under the plain, old llava-hf or new llava-hf names, whichever
    /// the checkpoint has. The tokenizer comes from tokenizer.json, or else tokenizer.model (with tokenizer_config.json,
    /// generation_config.json and the chat template files, <see cref="HuggingFaceTokenizerFiles"/>) when the folder
    /// has one; otherwise <see cref="Vocabulary"/> is null.
    /// </summary>
    public static DecoderModel LoadHuggingFace(string folder, ModelLoadOptions? options = null)
    {
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"{folder}: folder not found (a Hugging Face model is a folder with config.json and safetensors or pytorch_model.bin weights)");
        var hf = HfModelConfig.Load(folder);
        var config = DecoderConfig.FromHuggingFace(hf.Text);
        var checkpoint = HuggingFaceCheckpoint.Open(folder);
        try
        {
            var names = DecoderTensorNames.DetectHuggingFace(checkpoint);
            var weights = DecoderWeights.Bind(checkpoint, names, config,
                requireAttentionBias: hf.Text.AttentionBias, tieLmHead: hf.TieWordEmbeddings, options: options);
            var vocabulary = HuggingFaceTokenizerFiles.Exists(folder) ? HuggingFaceTokenizerFiles.Load(folder) : null;
            if (vocabulary != null && vocabulary.Tokens.Length > config.VocabSize)
                throw new HuggingFaceTokenizerException(Path.Combine(folder, File.Exists(Path.Combine(folder, HuggingFaceTokenizerFiles.TokenizerJson))
                        ? HuggingFaceTokenizerFiles.TokenizerJson : HuggingFaceTokenizerFiles.TokenizerModel),
                    $"the tokenizer has {vocabulary.Tokens.Length} tokens but the embedding only {config.VocabSize} rows");
            return new DecoderModel(config, weights, vocabulary, folder, checkpoint);
        }
        catch
        {
            checkpoint.Dispose();
            throw;
        }
    }

    /// <summary>A session state with a KV cache of <paramref name="contextSize"/> positions stored as <paramref name="cacheType"/>.</summary>
    public DecoderState CreateState(int contextSize, int maxBatch = 256, Kernels.Cpu.ComputeThreadPool? pool = null,
        KvCacheType cacheType = KvCacheType.F32)
        => new(Config, Weights, contextSize, maxBatch, pool, cacheType);

    /// <summary>
    /// Appends <paramref name="tokens"/> at the state's current position and returns the logits
    /// ([vocab] for <see cref="LogitsMode.Last"/>, [tokens, vocab] for <see cref="LogitsMode.All"/>, written to
    /// <paramref name="logitsAll"/> which must then hold tokens × vocab floats).
    /// </summary>
    public ReadOnlySpan<float> Forward(DecoderState state, ReadOnlySpan<int> tokens, LogitsMode mode = LogitsMode.Last, Span<float> logitsAll = default)
    {
        if (tokens.Length == 0) throw new ArgumentException("no tokens to process", nameof(tokens));
        foreach (int t in tokens)
            if ((uint)t >= (uint)Config.VocabSize)
                throw new ArgumentOutOfRangeException(nameof(tokens), t, $"token id {t} is outside the vocabulary (0..{Config.VocabSize - 1})");
        CheckRoom(state, tokens.Length);
        if (mode == LogitsMode.All && logitsAll.Length < (long)tokens.Length * Config.VocabSize)
            throw new ArgumentException($"logits buffer holds {logitsAll.Length} floats, needs {(long)tokens.Length * Config.VocabSize}", nameof(logitsAll));

        int done = 0;
        while (done < tokens.Length)
        {
            int n = Math.Min(state.MaxBatch, tokens.Length - done);
            for (int t = 0; t < n; t++) Weights.Embed(tokens[done + t], state.X + (long)t * Config.Dim);
            bool last = done + n == tokens.Length;
            RunBatch(state, n, mode, computeLogits: mode == LogitsMode.All || last);
            if (mode == LogitsMode.All)
                new ReadOnlySpan<float>(state.Logits, n * Config.VocabSize).CopyTo(logitsAll.Slice(done * Config.VocabSize));
            done += n;
        }
        return mode == LogitsMode.All
            ? logitsAll[..(tokens.Length * Config.VocabSize)]
            : new ReadOnlySpan<float>(state.Logits, Config.VocabSize);
    }

    /// <summary>
    /// Appends rows of input embeddings (e.g. projected image features) [count, dim] at the current position.
    /// Logits are not computed unless <paramref name="mode"/> asks for them (<see cref="LogitsMode.All"/> writes
    /// count × vocab floats to <paramref name="logitsAll"/>).
    /// </summary>
    public void ForwardEmbeddings(DecoderState state, ReadOnlySpan<float> embeddings, LogitsMode? mode = null, Span<float> logitsAll = default)
    {
        int count = embeddings.Length / Config.Dim;
        if (count == 0 || embeddings.Length % Config.Dim != 0)
            throw new ArgumentException($"embeddings hold {embeddings.Length} floats, not a positive multiple of the model dimension {Config.Dim}", nameof(embeddings));
        CheckRoom(state, count);
        int done = 0;
        while (done < count)
        {
            int n = Math.Min(state.MaxBatch, count - done);
            embeddings.Slice(done * Config.Dim, n * Config.Dim).CopyTo(new Span<float>(state.X, n * Config.Dim));
            bool last = done + n == count;
            RunBatch(state, n, mode ?? LogitsMode.Last, computeLogits: mode != null && (mode == LogitsMode.All || last));
            if (mode == LogitsMode.All)
                new ReadOnlySpan<float>(state.Logits, n * Config.VocabSize).CopyTo(logitsAll.Slice(done * Config.VocabSize));
            done += n;
        }
    }

    private void CheckRoom(DecoderState state, int n)
    {
        if (state.Position + n > state.ContextSize)
            throw new ContextOverflowException(state.Position, n, state.ContextSize);
    }

    /// <summary>
    /// The transformer over the <paramref name="n"/> rows already in <c>state.X</c> at positions
    /// state.Position … state.Position + n − 1.
    /// </summary>
    /// <summary>
    /// Batches of this many tokens or more attend over an F16 cache widened to F32 once per layer
    /// (<see cref="DecoderState.WideKeys"/>): the same values, read as floats instead of widened at every query.
    /// </summary>
    public const int WidenHalfCacheMinTokens = 16;

    private void RunBatch(DecoderState s, int n, LogitsMode mode, bool computeLogits)
    {
        var c = Config;
        var pool = s.Pool;
        int dim = c.Dim, qDim = c.QueryDim, kvDim = c.KvDim, halfRope = c.RopeDims / 2;
        int start = s.Position;
        bool half = s.CacheType == KvCacheType.F16;
        Rope.ComputeAngles(start, n, c.RopeDims, c.RopeFreqBase, s.Cos, s.Sin);

        for (int l = 0; l < c.Layers; l++)
        {
            var w = Weights.Layers[l];
            // This batch's K and V rows [n, kvDim]: in the F32 cache itself, or in F32 rows rounded into the F16 cache below.
            float* kCache = half ? s.KeyRows : s.KeyCache[l] + (long)start * kvDim;
            float* vCache = half ? s.ValueRows : s.ValueCache[l] + (long)start * kvDim;

            // Attention block: x += Wo · attention(rope(Wq·norm(x)), rope(Wk·norm(x)), Wv·norm(x))
            for (int t = 0; t < n; t++) RmsNorm.Apply(s.X + (long)t * dim, w.AttentionNorm, s.Normed + (long)t * dim, dim, c.NormEps);
            MatMul.Compute(pool, w.Query, s.Normed, n, s.Query, s.Scratch);
            MatMul.Compute(pool, w.Key, s.Normed, n, kCache, s.Scratch);
            MatMul.Compute(pool, w.Value, s.Normed, n, vCache, s.Scratch);
            if (w.QueryBias != null) Elementwise.AddBiasRows(s.Query, w.QueryBias, n, qDim);
            if (w.KeyBias != null) Elementwise.AddBiasRows(kCache, w.KeyBias, n, kvDim);
            if (w.ValueBias != null) Elementwise.AddBiasRows(vCache, w.ValueBias, n, kvDim);
            for (int t = 0; t < n; t++)
            {
                Rope.Apply(s.Query + (long)t * qDim, c.Heads, c.HeadDim, c.RopeDims, c.RopeMode, s.Cos + t * halfRope, s.Sin + t * halfRope);
                Rope.Apply(kCache + (long)t * kvDim, c.KvHeads, c.HeadDim, c.RopeDims, c.RopeMode, s.Cos + t * halfRope, s.Sin + t * halfRope);
            }
            if (half)
            {
                Fp16.FromFloatRow(kCache, s.KeyCacheHalf[l] + (long)start * kvDim, n * kvDim);
                Fp16.FromFloatRow(vCache, s.ValueCacheHalf[l] + (long)start * kvDim, n * kvDim);
            }
            var attention = new Attention.Problem
            {
                Q = s.Query, K = s.KeyCache[l], V = s.ValueCache[l], KHalf = s.KeyCacheHalf[l], VHalf = s.ValueCacheHalf[l], Output = s.AttnOut,
                Tokens = n, Heads = c.Heads, KvHeads = c.KvHeads, HeadDim = c.HeadDim, KvStride = kvDim,
                StartPos = start, Causal = true, Scale = 1.0f / MathF.Sqrt(c.HeadDim),
            };
            if (half && n >= WidenHalfCacheMinTokens && s.WideKeys != null)
            {
                // A prefill batch reads every cached row once per query: widen the visible rows once (exact), read floats.
                long visible = (long)(start + n) * kvDim;
                for (long done = 0; done < visible; done += 1 << 24)
                {
                    int count = (int)Math.Min(1 << 24, visible - done);
                    Fp16.ToFloatRow(s.KeyCacheHalf[l] + done, s.WideKeys + done, count);
                    Fp16.ToFloatRow(s.ValueCacheHalf[l] + done, s.WideValues + done, count);
                }
                attention.K = s.WideKeys;
                attention.V = s.WideValues;
                attention.KHalf = attention.VHalf = null;
            }
            Attention.Compute(pool, attention);
            MatMul.Compute(pool, w.Output, s.AttnOut, n, s.Normed, s.Scratch);
            Elementwise.Add(s.X, s.Normed, s.X, (long)n * dim);

            // Feed-forward block: x += W_down · (silu(W_gate·norm(x)) ⊙ W_up·norm(x))
            for (int t = 0; t < n; t++) RmsNorm.Apply(s.X + (long)t * dim, w.FeedForwardNorm, s.Normed + (long)t * dim, dim, c.NormEps);
            MatMul.Compute(pool, w.Gate, s.Normed, n, s.Gate, s.Scratch);
            MatMul.Compute(pool, w.Up, s.Normed, n, s.Up, s.Scratch);
            Elementwise.SiluMul(s.Gate, s.Up, (long)n * c.FeedForward);
            MatMul.Compute(pool, w.Down, s.Gate, n, s.Normed, s.Scratch);
            Elementwise.Add(s.X, s.Normed, s.X, (long)n * dim);
        }
        s.Position = start + n;

        if (!computeLogits) return;
        if (mode == LogitsMode.All)
        {
            for (int t = 0; t < n; t++) RmsNorm.Apply(s.X + (long)t * dim, Weights.OutputNorm, s.Normed + (long)t * dim, dim, c.NormEps);
            MatMul.Compute(pool, Weights.LmHead, s.Normed, n, s.Logits, s.Scratch);
        }
        else
        {
            RmsNorm.Apply(s.X + (long)(n - 1) * dim, Weights.OutputNorm, s.Normed, dim, c.NormEps);
            MatMul.Compute(pool, Weights.LmHead, s.Normed, 1, s.Logits, s.Scratch);
        }
    }

    public void Dispose()
    {
        Weights.Dispose();
        _weightsSource?.Dispose();
    }
}

/// <summary>A prompt (or generation) that does not fit in the context window.</summary>
public sealed class ContextOverflowException(int position, int adding, int contextSize)
    : InvalidOperationException($"the context holds {contextSize} positions; {position} are used and {adding} more were requested (prompt too long: raise the context size with -c or shorten the prompt)")
{
    public int ContextSize { get; } = contextSize;
}
