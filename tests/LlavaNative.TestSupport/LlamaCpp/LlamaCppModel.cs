using System.Runtime.InteropServices;
using LlavaNative.Kernels.Tensors;

namespace LlavaNative.TestSupport.LlamaCpp;

/// <summary><c>enum llama_rope_type</c>: how llama.cpp pairs dimensions when rotating q/k.</summary>
public enum LlamaRopeType
{
    None = -1,
    /// <summary>Adjacent pairs (2i, 2i+1): GGUF <c>llama</c> (q/k rows permuted at conversion).</summary>
    Norm = 0,
    /// <summary>Halves (i, i+d/2): GGUF <c>qwen2</c>, HF rotate_half.</summary>
    Neox = 2,
    MRope = 8,
    IMRope = 40,
    Vision = 24,
}

/// <summary>One piece of decoder input: token ids, or embeddings injected directly (e.g. projected image features).</summary>
public sealed class LlamaInput
{
    private LlamaInput(int[]? tokens, float[]? embeddings, int count)
    {
        TokenIds = tokens;
        EmbeddingData = embeddings;
        Count = count;
    }

    public int[]? TokenIds { get; }

    /// <summary>[Count, n_embd] row-major.</summary>
    public float[]? EmbeddingData { get; }

    /// <summary>Positions this input occupies.</summary>
    public int Count { get; }

    public static LlamaInput Tokens(params int[] ids) => new(ids, null, ids.Length);

    /// <summary>Embeddings [rows, nEmbd] row-major; <paramref name="nEmbd"/> must equal the model's n_embd.</summary>
    public static LlamaInput Embeddings(float[] data, int nEmbd)
    {
        if (nEmbd <= 0 || data.Length % nEmbd != 0)
            throw new ArgumentException($"{data.Length} floats are not a whole number of rows of {nEmbd}");
        return new(null, data, data.Length / nEmbd);
    }
}

/// <summary>Result of <see cref="LlamaCppModel.GreedyContinuation"/>.</summary>
/// <param name="Tokens">The n generated ids.</param>
/// <param name="Margins">For each step, top-1 minus top-2 logit: compare argmax only where this exceeds the tolerance.</param>
/// <param name="Logits">For each step, the full logits row [vocab] the token was chosen from.</param>
public sealed record GreedyResult(int[] Tokens, float[] Margins, float[][] Logits);

/// <summary>
/// A model loaded by the reference llama.cpp, set up for numerical comparisons: 1 thread, F32 KV cache (unless
/// <see cref="CacheType"/> says F16), flash attention off, logits for every position, the whole input in one batch (so keep inputs short with a
/// large vocabulary: the logits buffer is n_tokens × vocab floats). Instances are thread-safe (calls are
/// serialised per instance); different instances run in parallel.
/// </summary>
public sealed unsafe class LlamaCppModel : IDisposable
{
    private readonly object _gate = new();
    private nint _model;
    private readonly nint _vocab;
    private nint _ctx;
    private uint _ctxSize, _ctxBatch;

    private LlamaCppModel(string path, nint model, bool vocabOnly)
    {
        FilePath = path;
        _model = model;
        VocabOnly = vocabOnly;
        _vocab = LlamaNative.llama_model_get_vocab(model);
        VocabSize = LlamaNative.llama_vocab_n_tokens(_vocab);
        if (!vocabOnly)
            EmbeddingLength = LlamaNative.llama_model_n_embd(model);
    }

    public string FilePath { get; }
    public bool VocabOnly { get; }

    /// <summary>
    /// type_k and type_v of the contexts this model evaluates in (F32 unless set; llama.cpp's own default is F16). Flash
    /// attention stays off either way: with an F16 cache ggml then computes K·q as an F16 mat-mul (q rounded to F16) and
    /// V·softmax with V stored transposed (the probabilities rounded to F16). Changing it drops the current context.
    /// </summary>
    public KvCacheType CacheType
    {
        get => _cacheType;
        set
        {
            lock (_gate)
            {
                if (value == _cacheType) return;
                KvCacheTypes.BytesPerValue(value); // rejects values outside the enum
                _cacheType = value;
                if (_ctx != 0) LlamaNative.llama_free(_ctx);
                _ctx = 0;
            }
        }
    }

    private KvCacheType _cacheType = KvCacheType.F32;

    /// <summary>Number of tokens in the vocabulary (= rows of the logits).</summary>
    public int VocabSize { get; }

    /// <summary>n_embd of the decoder (0 for a vocabulary-only load).</summary>
    public int EmbeddingLength { get; }

    /// <summary>1 SPM, 2 BPE, … (<c>enum llama_vocab_type</c>).</summary>
    public int VocabType => LlamaNative.llama_vocab_type(Vocab);

    public int BosId => LlamaNative.llama_vocab_bos(Vocab);
    public int EosId => LlamaNative.llama_vocab_eos(Vocab);
    /// <summary>llama_vocab_is_eog: whether generating <paramref name="id"/> ends generation.</summary>
    public bool IsEndOfGeneration(int id) => LlamaNative.llama_vocab_is_eog(Vocab, id) != 0;

    /// <summary>llama_vocab_is_control.</summary>
    public bool IsControl(int id) => LlamaNative.llama_vocab_is_control(Vocab, id) != 0;

    public LlamaRopeType RopeType => (LlamaRopeType)LlamaNative.llama_model_rope_type(Handle);
    public LlamaFtype FileType => (LlamaFtype)LlamaNative.llama_model_ftype(Handle);
    public ulong ParameterCount => LlamaNative.llama_model_n_params(Handle);

    /// <summary>Path of the CPU backend variant ggml loaded (e.g. …/libggml-cpu-zen4.so); initialises llama.cpp.</summary>
    public static string CpuBackend
    {
        get
        {
            LlamaNative.EnsureInitialized();
            return LlamaNative.LoadedCpuBackend ?? "(not reported)";
        }
    }

    /// <summary>Loads a full model (weights included).</summary>
    /// <param name="repackWeights">
    /// llama.cpp's own default is true (use_extra_bufts): on x86 it repacks e.g. Q4_0/IQ4_NL/Q4_K weights into
    /// interleaved layouts with separate GEMM/GEMV kernels. Off by default here so the reference is ggml's
    /// plain type-traits path (activations quantized to vec_dot_type per row, then vec_dot), which is the
    /// algorithm the engine mirrors; for Q4_0 both agree to ~1e-5, for Q4_K the repacked kernels differ by
    /// ~0.1 in the logits.
    /// </param>
    public static LlamaCppModel Load(string path, bool repackWeights = false) => LoadCore(path, vocabOnly: false, repackWeights);

    /// <summary>Loads only the tokenizer of a GGUF (e.g. llama.cpp's models/ggml-vocab-*.gguf).</summary>
    public static LlamaCppModel LoadVocabOnly(string path) => LoadCore(path, vocabOnly: true, repackWeights: false);

    private static LlamaCppModel LoadCore(string path, bool vocabOnly, bool repackWeights)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"model file {path} does not exist", path);
        LlamaNative.EnsureInitialized();
        LlamaModelParams p = LlamaNative.llama_model_default_params();
        p.VocabOnly = vocabOnly ? (byte)1 : (byte)0;
        p.NGpuLayers = 0;
        p.UseExtraBufts = repackWeights ? (byte)1 : (byte)0;
        byte[] name = LlamaNative.Utf8Z(path);
        nint model;
        fixed (byte* n = name)
            model = LlamaNative.llama_model_load_from_file(n, p);
        if (model == 0)
            throw new InvalidOperationException($"llama.cpp could not load {path}{LlamaNative.RecentLog()}");
        return new LlamaCppModel(path, model, vocabOnly);
    }

    /// <summary>A metadata value rendered as a string by llama.cpp, or null if the key is absent.</summary>
    public string? MetadataString(string key)
    {
        byte[] k = LlamaNative.Utf8Z(key);
        byte[] buf = new byte[4096];
        fixed (byte* kp = k)
        fixed (byte* bp = buf)
        {
            int n = LlamaNative.llama_model_meta_val_str(Handle, kp, bp, (nuint)buf.Length);
            if (n < 0)
                return null;
            if (n >= buf.Length)
                throw new InvalidOperationException($"metadata value of '{key}' is longer than {buf.Length - 1} bytes");
            return System.Text.Encoding.UTF8.GetString(buf, 0, n);
        }
    }

    /// <summary>llama_tokenize on UTF-8 text.</summary>
    /// <param name="addSpecial">Add BOS/EOS as the vocabulary's add_bos/add_eos flags say.</param>
    /// <param name="parseSpecial">Recognise special/control token text (e.g. "&lt;|im_end|&gt;") in the input.</param>
    public int[] Tokenize(string text, bool addSpecial, bool parseSpecial) =>
        Tokenize(System.Text.Encoding.UTF8.GetBytes(text), addSpecial, parseSpecial);

    /// <summary>llama_tokenize on raw bytes (which need not be valid UTF-8).</summary>
    public int[] Tokenize(ReadOnlySpan<byte> utf8, bool addSpecial, bool parseSpecial)
    {
        lock (_gate)
        {
            int capacity = utf8.Length + 8;
            while (true)
            {
                int[] ids = new int[capacity];
                int n;
                fixed (byte* t = utf8)
                fixed (int* o = ids)
                    n = LlamaNative.llama_tokenize(Vocab, t, utf8.Length, o, capacity, addSpecial ? (byte)1 : (byte)0, parseSpecial ? (byte)1 : (byte)0);
                if (n >= 0)
                    return ids.AsSpan(0, n).ToArray();
                if (n == int.MinValue)
                    throw new InvalidOperationException($"llama_tokenize overflowed on {utf8.Length} bytes{LlamaNative.RecentLog()}");
                capacity = -n;
            }
        }
    }

    /// <summary>The bytes llama_token_to_piece renders for one token (no lstrip).</summary>
    /// <param name="special">Render control tokens as their text instead of nothing.</param>
    public byte[] TokenPiece(int id, bool special)
    {
        if ((uint)id >= (uint)VocabSize)
            throw new ArgumentOutOfRangeException(nameof(id), id, $"token id outside the vocabulary of {VocabSize}");
        lock (_gate)
        {
            byte[] buf = new byte[64];
            while (true)
            {
                int n;
                fixed (byte* b = buf)
                    n = LlamaNative.llama_token_to_piece(Vocab, id, b, buf.Length, 0, special ? (byte)1 : (byte)0);
                if (n >= 0)
                    return buf.AsSpan(0, n).ToArray();
                buf = new byte[-n];
            }
        }
    }

    /// <summary>Logits at every position of <paramref name="tokens"/>, decoded from an empty KV cache: [n_tokens][vocab].</summary>
    public float[][] EvalLogits(params int[] tokens) => EvalLogits(LlamaInput.Tokens(tokens));

    /// <summary>
    /// Logits at every position of a sequence made of token and embedding pieces (consecutive positions from 0,
    /// one llama_decode per piece, causal attention over everything before): [total positions][vocab].
    /// </summary>
    public float[][] EvalLogits(params LlamaInput[] inputs)
    {
        int total = inputs.Sum(s => s.Count);
        if (total == 0)
            throw new ArgumentException("nothing to evaluate");
        lock (_gate)
        {
            PrepareContext(total, inputs.Max(s => s.Count));
            var rows = new float[total][];
            int pos = 0;
            foreach (LlamaInput input in inputs)
            {
                if (input.Count == 0)
                    continue;
                Decode(input, pos, allLogits: true);
                for (int i = 0; i < input.Count; i++)
                    rows[pos + i] = LogitsAt(i);
                pos += input.Count;
            }
            return rows;
        }
    }

    /// <summary>
    /// Greedy decoding: decode <paramref name="prompt"/>, then <paramref name="n"/> times take the arg-max of the
    /// last logits (lowest id on ties) and feed it back. Returns the ids, each step's top-2 margin and logits.
    /// </summary>
    public GreedyResult GreedyContinuation(int[] prompt, int n)
    {
        if (prompt.Length == 0)
            throw new ArgumentException("the prompt must not be empty", nameof(prompt));
        lock (_gate)
        {
            PrepareContext(prompt.Length + n, prompt.Length);
            var tokens = new int[n];
            var margins = new float[n];
            var logits = new float[n][];
            Decode(LlamaInput.Tokens(prompt), 0, allLogits: false);
            int lastIndex = prompt.Length - 1;
            for (int step = 0; step < n; step++)
            {
                float[] row = LogitsAt(lastIndex);
                int best = 0;
                for (int v = 1; v < row.Length; v++)
                    if (row[v] > row[best])
                        best = v;
                float second = float.NegativeInfinity;
                for (int v = 0; v < row.Length; v++)
                    if (v != best && row[v] > second)
                        second = row[v];
                tokens[step] = best;
                margins[step] = row[best] - second;
                logits[step] = row;
                if (step + 1 < n)
                {
                    Decode(LlamaInput.Tokens(best), prompt.Length + step, allLogits: true);
                    lastIndex = 0;
                }
            }
            return new GreedyResult(tokens, margins, logits);
        }
    }

    /// <summary>
    /// Quantizes a GGUF with llama_model_quantize (default parameters, the given ftype's tensor-type mix; with
    /// <paramref name="pure"/>, as <c>llama-quantize --pure</c>: every quantizable tensor gets the ftype's default
    /// type, except llama.cpp's fallback for rows that are not a whole number of blocks).
    /// <paramref name="threads"/> only changes the speed: each block is quantized the same way.
    /// </summary>
    public static void Quantize(string inPath, string outPath, LlamaFtype ftype, int threads = 1, bool pure = false)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        if (!File.Exists(inPath))
            throw new FileNotFoundException($"model file {inPath} does not exist", inPath);
        LlamaNative.EnsureInitialized();
        LlamaModelQuantizeParams p = LlamaNative.llama_model_quantize_default_params();
        p.Ftype = (int)ftype;
        p.NThread = threads;
        p.Pure = pure ? (byte)1 : (byte)0;
        byte[] src = LlamaNative.Utf8Z(inPath), dst = LlamaNative.Utf8Z(outPath);
        uint rc;
        fixed (byte* s = src)
        fixed (byte* d = dst)
            rc = LlamaNative.llama_model_quantize(s, d, &p);
        if (rc != 0)
            throw new InvalidOperationException($"llama_model_quantize({inPath} -> {outPath}, {ftype}) failed with {rc}{LlamaNative.RecentLog()}");
    }

    private nint Vocab
    {
        get
        {
            ObjectDisposedException.ThrowIf(_model == 0, this);
            return _vocab;
        }
    }

    private nint Handle
    {
        get
        {
            ObjectDisposedException.ThrowIf(_model == 0, this);
            return _model;
        }
    }

    /// <summary>
    /// Makes sure a context with room for <paramref name="positions"/> and batches of <paramref name="batch"/>
    /// exists and its memory (KV cache) is empty. A context is reused while it is big enough: clearing its
    /// memory gives the same result as a fresh one (masked cells contribute exactly zero).
    /// </summary>
    private void PrepareContext(int positions, int batch)
    {
        if (VocabOnly)
            throw new InvalidOperationException($"{FilePath} was loaded vocabulary-only; it cannot evaluate");
        if (_ctx != 0 && positions <= _ctxSize && batch <= _ctxBatch)
        {
            LlamaNative.llama_memory_clear(LlamaNative.llama_get_memory(_ctx), 1);
            return;
        }
        if (_ctx != 0)
        {
            LlamaNative.llama_free(_ctx);
            _ctx = 0;
        }
        LlamaContextParams p = LlamaNative.llama_context_default_params();
        uint nCtx = (uint)((positions + 255) / 256 * 256); // llama.cpp pads to 256 anyway
        p.NCtx = nCtx;
        p.NBatch = (uint)batch;
        p.NUbatch = (uint)batch;
        p.NSeqMax = 1;
        p.NThreads = 1;
        p.NThreadsBatch = 1;
        p.FlashAttnType = LlamaNative.FlashAttnDisabled;
        p.TypeK = _cacheType == KvCacheType.F16 ? LlamaNative.GgmlTypeF16 : LlamaNative.GgmlTypeF32;
        p.TypeV = p.TypeK;
        p.Embeddings = 0;
        p.NoPerf = 1;
        LlamaNative.ClearRecentLog();
        nint ctx = LlamaNative.llama_init_from_model(Handle, p);
        if (ctx == 0)
            throw new InvalidOperationException($"llama_init_from_model failed for {FilePath} (n_ctx {nCtx}, n_batch {batch}){LlamaNative.RecentLog()}");
        _ctx = ctx;
        _ctxSize = nCtx;
        _ctxBatch = (uint)batch;
    }

    private void Decode(LlamaInput input, int firstPos, bool allLogits)
    {
        int n = input.Count;
        if (input.EmbeddingData is not null && input.EmbeddingData.Length != (long)n * EmbeddingLength)
            throw new ArgumentException($"embeddings have {input.EmbeddingData.Length / n} columns, the model's n_embd is {EmbeddingLength}");
        int[] pos = new int[n];
        int[] nSeq = new int[n];
        sbyte[] wantLogits = new sbyte[n];
        int seqZero = 0;
        nint[] seqIds = new nint[n];
        for (int i = 0; i < n; i++)
        {
            pos[i] = firstPos + i;
            nSeq[i] = 1;
            seqIds[i] = (nint)(&seqZero);
            wantLogits[i] = (sbyte)(allLogits || i == n - 1 ? 1 : 0);
        }
        int rc;
        fixed (int* tok = input.TokenIds)
        fixed (float* emb = input.EmbeddingData)
        fixed (int* pp = pos)
        fixed (int* ns = nSeq)
        fixed (nint* sp = seqIds)
        fixed (sbyte* lp = wantLogits)
        {
            var batch = new LlamaBatch
            {
                NTokens = n,
                Token = input.TokenIds is null ? null : tok,
                Embd = input.EmbeddingData is null ? null : emb,
                Pos = pp,
                NSeqId = ns,
                SeqId = (int**)sp,
                Logits = lp,
            };
            LlamaNative.ClearRecentLog();
            rc = LlamaNative.llama_decode(_ctx, batch);
        }
        if (rc != 0)
            throw new InvalidOperationException($"llama_decode returned {rc} for {n} positions from {firstPos} ({FilePath}){LlamaNative.RecentLog()}");
    }

    private float[] LogitsAt(int batchIndex)
    {
        float* p = LlamaNative.llama_get_logits_ith(_ctx, batchIndex);
        if (p == null)
            throw new InvalidOperationException($"llama_get_logits_ith({batchIndex}) returned NULL{LlamaNative.RecentLog()}");
        return new ReadOnlySpan<float>(p, VocabSize).ToArray();
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_ctx != 0)
                LlamaNative.llama_free(_ctx);
            _ctx = 0;
            if (_model != 0)
                LlamaNative.llama_model_free(_model);
            _model = 0;
        }
    }
}
