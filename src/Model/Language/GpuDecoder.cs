using LlavaNative.Kernels.Cpu.Ops;
using LlavaNative.Kernels.Cuda;
using LlavaNative.Kernels.Tensors;

namespace LlavaNative.Model.Language;

/// <summary>A weight matrix in device memory, in the encoding it was stored in (the CudaOps kernels read every type).</summary>
public readonly record struct GpuWeightMatrix(DevicePtr Data, TensorType Type, int Rows, int Cols);

/// <summary>One decoder block's weights on the device; biases are null pointers (address 0) when absent.</summary>
internal sealed class GpuLayerWeights
{
    public DevicePtr AttentionNorm;   // [dim] F32
    public GpuWeightMatrix Query;     // [heads·headDim, dim]
    public GpuWeightMatrix Key;       // [kvHeads·headDim, dim]
    public GpuWeightMatrix Value;     // [kvHeads·headDim, dim]
    public DevicePtr QueryBias;       // [heads·headDim] or 0
    public DevicePtr KeyBias;         // [kvHeads·headDim] or 0
    public DevicePtr ValueBias;       // [kvHeads·headDim] or 0
    public GpuWeightMatrix Output;    // [dim, heads·headDim]
    public DevicePtr FeedForwardNorm; // [dim] F32
    public GpuWeightMatrix Gate;      // [ffn, dim]
    public GpuWeightMatrix Up;        // [ffn, dim]
    public GpuWeightMatrix Down;      // [dim, ffn]
}

/// <summary>
/// The Llama-family decoder (<see cref="DecoderModel"/>) on a GPU: the same <see cref="DecoderConfig"/> and
/// <see cref="DecoderWeights"/>, uploaded once; the same order of operations as <see cref="DecoderModel"/>'s
/// RunBatch, each op a <see cref="CudaOps"/> launch. Prefill batches use the tiled mat-mul, a single token the
/// mat-vec. The KV cache is F32 on the device. Runs on any <see cref="IGpuDevice"/>: the CUDA driver, or the
/// host emulator in the tests.
/// A single-token step (decode) takes its position from device memory (<see cref="GpuDecoderState.DevicePosition"/>,
/// written by one small launch before the step): RoPE reads its row of the state's angle table, K and V go through
/// scratch rows appended to the cache by a kernel, and attention reads its key count, so no launch of the step depends
/// on the position. With <see cref="UseGraphs"/> the token steps of a state are captured once into a graph and
/// replayed (one graph launch instead of ~20 launches per layer); prefill batches are launched directly.
/// </summary>
public sealed unsafe class GpuDecoder : IDisposable
{
    private readonly List<DeviceBuffer> _buffers = [];
    private readonly GpuLayerWeights[] _layers;
    private readonly GpuWeightMatrix _tokenEmbedding; // [vocab, dim]
    private readonly GpuWeightMatrix _lmHead;         // [vocab, dim]; the embedding's buffer when tied
    private readonly DevicePtr _outputNorm;           // [dim]

    public DecoderConfig Config { get; }
    public IGpuDevice Device { get; }
    public CudaOps Ops { get; }

    /// <summary>Bytes of weights uploaded to the device.</summary>
    public long WeightBytes { get; private set; }

    /// <summary>Set to "0" to start decoders with <see cref="UseGraphs"/> off (A/B timing, or to locate a fault per launch).</summary>
    public const string GraphsVariable = "LLAVANATIVE_CUDA_GRAPHS";

    /// <summary>
    /// Whether single-token steps run as a captured graph per state (when the device <see cref="IGpuDevice.SupportsGraphs"/>).
    /// Off, the same launches are made one by one; the results are the same bits. Default on, unless
    /// <see cref="GraphsVariable"/> is "0". Turning it off keeps a state's graph for when it is turned on again.
    /// </summary>
    public bool UseGraphs { get; set; } = Environment.GetEnvironmentVariable(GraphsVariable) != "0";

    // Set after a decode step ran with direct launches: every kernel of the step has been used once (its module loaded),
    // which a capture needs (a module load is not allowed inside one).
    // The kernel choice of the last decode step made with direct launches (null: none yet). A step is captured only
    // under the same choice: a changed CudaOps path first runs directly, which loads its kernels and sizes its scratch.
    private DecodeKernelChoice? _decodeKernelsLoaded;

    private DecodeKernelChoice CurrentKernelChoice => new(Ops.QuantizedMatMulPath, Ops.AttentionPath, Ops.MatMulPath);

    /// <summary>
    /// Uploads <paramref name="weights"/> to <paramref name="device"/>. Every matrix must have a device kernel
    /// (<see cref="CudaOps.WeightTypes"/>); the error names the matrix otherwise.
    /// </summary>
    public GpuDecoder(IGpuDevice device, DecoderConfig config, DecoderWeights weights)
    {
        Device = device;
        Config = config;
        Ops = new CudaOps(device);
        try
        {
            _layers = new GpuLayerWeights[config.Layers];
            for (int l = 0; l < config.Layers; l++)
            {
                var w = weights.Layers[l];
                _layers[l] = new GpuLayerWeights
                {
                    AttentionNorm = UploadVector(w.AttentionNorm, config.Dim),
                    Query = UploadMatrix(w.Query, $"layer {l} attention query"),
                    Key = UploadMatrix(w.Key, $"layer {l} attention key"),
                    Value = UploadMatrix(w.Value, $"layer {l} attention value"),
                    QueryBias = UploadVector(w.QueryBias, config.QueryDim),
                    KeyBias = UploadVector(w.KeyBias, config.KvDim),
                    ValueBias = UploadVector(w.ValueBias, config.KvDim),
                    Output = UploadMatrix(w.Output, $"layer {l} attention output"),
                    FeedForwardNorm = UploadVector(w.FeedForwardNorm, config.Dim),
                    Gate = UploadMatrix(w.Gate, $"layer {l} feed-forward gate"),
                    Up = UploadMatrix(w.Up, $"layer {l} feed-forward up"),
                    Down = UploadMatrix(w.Down, $"layer {l} feed-forward down"),
                };
            }
            _tokenEmbedding = UploadMatrix(weights.TokenEmbedding, "token embedding");
            bool tied = weights.LmHead.Data == weights.TokenEmbedding.Data && weights.LmHead.Type == weights.TokenEmbedding.Type;
            _lmHead = tied ? _tokenEmbedding : UploadMatrix(weights.LmHead, "LM head");
            _outputNorm = UploadVector(weights.OutputNorm, config.Dim);
            // The integer mat-vec's activation scratch, sized once for the longest row (a few KiB): a decode step
            // captured into a graph must find it allocated, and at the same address on every replay.
            Ops.ReserveMatVecScratch(Math.Max(config.Dim, Math.Max(config.FeedForward, config.QueryDim)));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    private GpuWeightMatrix UploadMatrix(in WeightMatrix m, string what)
    {
        var uploaded = GpuUploads.Matrix(Device, _buffers, m, nameof(GpuDecoder), what);
        WeightBytes += m.RowBytes * m.Rows;
        return uploaded;
    }

    private DevicePtr UploadVector(float* v, int n)
    {
        if (v != null) WeightBytes += n * 4L;
        return GpuUploads.Vector(Device, _buffers, v, n);
    }

    /// <summary>A session state with a device KV cache of <paramref name="contextSize"/> positions stored as <paramref name="cacheType"/>.</summary>
    public GpuDecoderState CreateState(int contextSize, int maxBatch = 256, KvCacheType cacheType = KvCacheType.F32)
        => new(Device, Config, contextSize, maxBatch, cacheType);

    /// <summary>
    /// Appends <paramref name="tokens"/> at the state's position and returns the logits, as
    /// <see cref="DecoderModel.Forward"/>: [vocab] of the last token for <see cref="LogitsMode.Last"/>, or every
    /// token's [tokens, vocab] written to <paramref name="logitsAll"/> for <see cref="LogitsMode.All"/>.
    /// </summary>
    public ReadOnlySpan<float> Forward(GpuDecoderState state, ReadOnlySpan<int> tokens, LogitsMode mode = LogitsMode.Last, Span<float> logitsAll = default)
    {
        lock (Device.WorkLock)
        {
            RunTokens(state, tokens, mode, logitsAll);
            if (mode == LogitsMode.All) return logitsAll[..(tokens.Length * Config.VocabSize)];
            Device.Download(state.HostLogits.AsSpan(0, Config.VocabSize), state.Logits.Pointer);
            return state.HostLogits.AsSpan(0, Config.VocabSize);
        }
    }

    /// <summary>
    /// Appends <paramref name="tokens"/> and leaves the last token's logits [vocab] on the device in
    /// <see cref="GpuDecoderState.Logits"/>, downloading nothing (for a device-side sampler, <see cref="Generation.GpuSampler"/>).
    /// </summary>
    public void ForwardOnDevice(GpuDecoderState state, ReadOnlySpan<int> tokens)
    {
        lock (Device.WorkLock) RunTokens(state, tokens, LogitsMode.Last, default);
    }

    /// <summary>
    /// Appends <paramref name="tokens"/> and returns the most likely next token (first on ties, as
    /// <c>Sampler.ArgMax</c>), found on the device: only one int comes back, not the logits.
    /// </summary>
    public int ForwardGreedy(GpuDecoderState state, ReadOnlySpan<int> tokens)
    {
        lock (Device.WorkLock)
        {
            RunTokens(state, tokens, LogitsMode.Last, default);
            Ops.ArgMax(state.Logits, Config.VocabSize, state.ArgMax);
            Device.Download(state.HostArgMax.AsSpan(), state.ArgMax.Pointer);
            return state.HostArgMax[0];
        }
    }

    /// <summary>
    /// Appends rows of input embeddings [count, dim] (projected image features) at the current position, as
    /// <see cref="DecoderModel.ForwardEmbeddings"/>: no logits unless <paramref name="mode"/> asks
    /// (<see cref="LogitsMode.All"/> writes count × vocab floats to <paramref name="logitsAll"/>;
    /// <see cref="LogitsMode.Last"/> leaves the last row's in <see cref="GpuDecoderState.HostLogits"/>).
    /// </summary>
    public void ForwardEmbeddings(GpuDecoderState state, ReadOnlySpan<float> embeddings, LogitsMode? mode = null, Span<float> logitsAll = default)
    {
        int dim = Config.Dim;
        if (embeddings.Length == 0 || embeddings.Length % dim != 0)
            throw new ArgumentException($"embeddings hold {embeddings.Length} floats, not a positive multiple of the model dimension {dim}", nameof(embeddings));
        lock (Device.WorkLock) RunEmbeddings(state, embeddings, default, embeddings.Length / dim, mode, logitsAll);
    }

    /// <summary>
    /// As <see cref="ForwardEmbeddings(GpuDecoderState, ReadOnlySpan{float}, LogitsMode?, Span{float})"/> with the
    /// <paramref name="count"/> rows [count, dim] already in device memory at <paramref name="embeddings"/> (e.g.
    /// <see cref="Vision.GpuImageEncoder.EncodeAndProjectOnDevice"/>'s output): each batch is copied device to device
    /// into the state, so the image never goes through the host. The rows are only read.
    /// </summary>
    public void ForwardEmbeddings(GpuDecoderState state, DevicePtr embeddings, int count, LogitsMode? mode = null, Span<float> logitsAll = default)
    {
        if (count <= 0) throw new ArgumentOutOfRangeException(nameof(count), count, "the number of embedding rows must be positive");
        if (embeddings.Address == 0) throw new ArgumentException("the embeddings are a null device pointer", nameof(embeddings));
        lock (Device.WorkLock) RunEmbeddings(state, default, embeddings, count, mode, logitsAll);
    }

    /// <summary>The rows come from <paramref name="host"/> when it is not empty, else from <paramref name="device"/>.</summary>
    private void RunEmbeddings(GpuDecoderState state, ReadOnlySpan<float> host, DevicePtr device, int count, LogitsMode? mode, Span<float> logitsAll)
    {
        var c = Config;
        CheckRoom(state, count);
        CheckLogitsBuffer(mode == LogitsMode.All, count, logitsAll);
        int done = 0;
        while (done < count)
        {
            int n = Math.Min(state.MaxBatch, count - done);
            if (host.IsEmpty) Ops.Copy(device.Offset((long)done * c.Dim * 4), state.X, n * c.Dim);
            else Device.Upload(state.X.Pointer, host.Slice(done * c.Dim, n * c.Dim));
            bool last = done + n == count;
            RunBatch(state, n, mode ?? LogitsMode.Last, computeLogits: mode != null && (mode == LogitsMode.All || last));
            if (mode == LogitsMode.All) Device.Download(logitsAll.Slice(done * c.VocabSize, n * c.VocabSize), state.Logits.Pointer);
            done += n;
        }
        if (mode == LogitsMode.Last) Device.Download(state.HostLogits.AsSpan(0, c.VocabSize), state.Logits.Pointer);
    }

    private void RunTokens(GpuDecoderState state, ReadOnlySpan<int> tokens, LogitsMode mode, Span<float> logitsAll)
    {
        var c = Config;
        if (tokens.Length == 0) throw new ArgumentException("no tokens to process", nameof(tokens));
        foreach (int t in tokens)
            if ((uint)t >= (uint)c.VocabSize)
                throw new ArgumentOutOfRangeException(nameof(tokens), t, $"token id {t} is outside the vocabulary (0..{c.VocabSize - 1})");
        CheckRoom(state, tokens.Length);
        CheckLogitsBuffer(mode == LogitsMode.All, tokens.Length, logitsAll);
        if (tokens.Length == 1)
        {
            DecodeToken(state, tokens[0]);
            if (mode == LogitsMode.All) Device.Download(logitsAll[..c.VocabSize], state.Logits.Pointer);
            return;
        }
        int done = 0;
        while (done < tokens.Length)
        {
            int n = Math.Min(state.MaxBatch, tokens.Length - done);
            Device.Upload(state.TokenIds.Pointer, tokens.Slice(done, n));
            Ops.GetRows(_tokenEmbedding.Type, _tokenEmbedding.Data, state.TokenIds, state.X, n, c.Dim);
            bool last = done + n == tokens.Length;
            RunBatch(state, n, mode, computeLogits: mode == LogitsMode.All || last);
            if (mode == LogitsMode.All) Device.Download(logitsAll.Slice(done * c.VocabSize, n * c.VocabSize), state.Logits.Pointer);
            done += n;
        }
    }

    private void CheckLogitsBuffer(bool all, int count, Span<float> logitsAll)
    {
        if (all && logitsAll.Length < (long)count * Config.VocabSize)
            throw new ArgumentException($"logits buffer holds {logitsAll.Length} floats, needs {(long)count * Config.VocabSize}", nameof(logitsAll));
    }

    private static void CheckRoom(GpuDecoderState state, int n)
    {
        if (state.Position + n > state.ContextSize)
            throw new ContextOverflowException(state.Position, n, state.ContextSize);
    }

    /// <summary>y [n, rows] = x [n, cols] · Wᵀ: the mat-vec for one token (decode), the tiled mat-mul for a batch.</summary>
    private void Linear(in GpuWeightMatrix w, DevicePtr x, DevicePtr y, int n)
    {
        if (n == 1) Ops.MatVec(w.Type, w.Data, x, y, w.Rows, w.Cols);
        else Ops.MatMul(w.Type, w.Data, x, y, w.Rows, w.Cols, n, w.Rows);
    }

    /// <summary>
    /// One token step: its inputs (position, token id) written to device memory, then the step itself, replayed from
    /// the state's graph when <see cref="UseGraphs"/> (captured here at the first step that finds none, once the
    /// step's kernels have been used directly), else launched directly. Logits [vocab] are left in state.Logits.
    /// </summary>
    private void DecodeToken(GpuDecoderState s, int token)
    {
        Ops.DecodeStepBegin(s.DevicePosition, s.Position, s.TokenIds, token);
        var choice = CurrentKernelChoice;
        if (UseGraphs && Device.SupportsGraphs && _decodeKernelsLoaded == choice)
        {
            var graph = s.DecodeGraphFor(this, choice);
            if (graph == null)
            {
                graph = CaptureDecodeStep(s);
                s.SetDecodeGraph(graph, this, choice);
            }
            graph.Launch();
        }
        else
        {
            DecodeStepLaunches(s);
            _decodeKernelsLoaded = choice;
        }
        s.Position++;
    }

    private IGpuGraph CaptureDecodeStep(GpuDecoderState s)
    {
        Device.BeginCapture();
        try
        {
            DecodeStepLaunches(s);
        }
        catch
        {
            // Leave the stream out of capture mode; the launch's own error is the one to report.
            try { Device.EndCapture().Dispose(); }
            catch (Exception) { }
            throw;
        }
        return Device.EndCapture();
    }

    /// <summary>Everything a token step launches after its inputs are written: embedding row, layers, logits.</summary>
    private void DecodeStepLaunches(GpuDecoderState s)
    {
        Ops.GetRows(_tokenEmbedding.Type, _tokenEmbedding.Data, s.TokenIds, s.X, 1, Config.Dim);
        DecodeLayers(s);
        OutputLogits(s, 0);
    }

    /// <summary>
    /// The transformer over the <paramref name="n"/> rows already in <c>state.X</c> at positions
    /// state.Position … state.Position + n − 1 (<see cref="DecoderModel"/>'s RunBatch, op for op). One row goes
    /// through the decode-step launches (position from device memory), more through the prefill launches.
    /// </summary>
    private void RunBatch(GpuDecoderState s, int n, LogitsMode mode, bool computeLogits)
    {
        if (n == 1)
        {
            Ops.DecodeStepBegin(s.DevicePosition, s.Position, default, 0);
            DecodeLayers(s);
            s.Position++;
            if (computeLogits) OutputLogits(s, 0);
            return;
        }
        var c = Config;
        int dim = c.Dim, qDim = c.QueryDim, kvDim = c.KvDim, half = c.RopeDims / 2;
        int start = s.Position;
        // The batch's rows of the state's angle table (the CPU's own ComputeAngles, uploaded once).
        DevicePtr cos = s.CosTable.Pointer.Offset((long)start * half * 4), sin = s.SinTable.Pointer.Offset((long)start * half * 4);
        bool halfCache = s.CacheType == KvCacheType.F16;
        long cacheOffset = (long)start * kvDim * KvCacheTypes.BytesPerValue(s.CacheType);

        for (int l = 0; l < c.Layers; l++)
        {
            var w = _layers[l];
            // This batch's K and V rows [n, kvDim]: in the F32 cache itself, or F32 rows rounded into the F16 cache below.
            DevicePtr kCache = halfCache ? s.KeyStep.Pointer : s.KeyCache[l].Pointer.Offset(cacheOffset);
            DevicePtr vCache = halfCache ? s.ValueStep.Pointer : s.ValueCache[l].Pointer.Offset(cacheOffset);

            // Attention block: x += Wo · attention(rope(Wq·norm(x)), rope(Wk·norm(x)), Wv·norm(x))
            Ops.RmsNorm(s.X, w.AttentionNorm, s.Normed, n, dim, c.NormEps);
            Linear(w.Query, s.Normed, s.Query, n);
            Linear(w.Key, s.Normed, kCache, n);
            Linear(w.Value, s.Normed, vCache, n);
            if (w.QueryBias.Address != 0) Ops.AddBiasRows(s.Query, w.QueryBias, n, qDim);
            if (w.KeyBias.Address != 0) Ops.AddBiasRows(kCache, w.KeyBias, n, kvDim);
            if (w.ValueBias.Address != 0) Ops.AddBiasRows(vCache, w.ValueBias, n, kvDim);
            Ops.Rope(s.Query, cos, sin, n, c.Heads, c.HeadDim, c.RopeDims, qDim, c.RopeMode);
            Ops.Rope(kCache, cos, sin, n, c.KvHeads, c.HeadDim, c.RopeDims, kvDim, c.RopeMode);
            if (halfCache)
            {
                Ops.KvStoreF16(kCache, vCache, s.KeyCache[l].Pointer.Offset(cacheOffset), s.ValueCache[l].Pointer.Offset(cacheOffset), n * kvDim);
                Ops.AttentionF16Kv(s.Query, s.KeyCache[l], s.ValueCache[l], s.AttnOut, n, c.Heads, c.KvHeads, c.HeadDim, kvDim,
                    start, start + n, causal: true, scale: 1.0f / MathF.Sqrt(c.HeadDim));
            }
            else
                Ops.Attention(s.Query, s.KeyCache[l], s.ValueCache[l], s.AttnOut, n, c.Heads, c.KvHeads, c.HeadDim, kvDim,
                    start, start + n, causal: true, scale: 1.0f / MathF.Sqrt(c.HeadDim));
            Linear(w.Output, s.AttnOut, s.Normed, n);
            Ops.Add(s.X, s.Normed, s.X, n * dim);
            FeedForward(w, s, n);
        }
        s.Position = start + n;

        if (!computeLogits) return;
        if (mode == LogitsMode.All)
        {
            Ops.RmsNorm(s.X, _outputNorm, s.Normed, n, dim, c.NormEps);
            Linear(_lmHead, s.Normed, s.Logits, n);
        }
        else OutputLogits(s, n - 1);
    }

    /// <summary>
    /// The layers for the one row in state.X at the position in state.DevicePosition: the same ops as a batch, but K
    /// and V are computed into scratch rows, rotated there and appended to the cache at the device position, and RoPE
    /// and attention read the position too, so nothing here depends on it (the launches can be captured once).
    /// </summary>
    private void DecodeLayers(GpuDecoderState s)
    {
        var c = Config;
        int dim = c.Dim, qDim = c.QueryDim, kvDim = c.KvDim;
        for (int l = 0; l < c.Layers; l++)
        {
            var w = _layers[l];
            Ops.RmsNorm(s.X, w.AttentionNorm, s.Normed, 1, dim, c.NormEps);
            Ops.MatVec(w.Query.Type, w.Query.Data, s.Normed, s.Query, w.Query.Rows, w.Query.Cols);
            Ops.MatVec(w.Key.Type, w.Key.Data, s.Normed, s.KeyStep, w.Key.Rows, w.Key.Cols);
            Ops.MatVec(w.Value.Type, w.Value.Data, s.Normed, s.ValueStep, w.Value.Rows, w.Value.Cols);
            if (w.QueryBias.Address != 0) Ops.AddBiasRows(s.Query, w.QueryBias, 1, qDim);
            if (w.KeyBias.Address != 0) Ops.AddBiasRows(s.KeyStep, w.KeyBias, 1, kvDim);
            if (w.ValueBias.Address != 0) Ops.AddBiasRows(s.ValueStep, w.ValueBias, 1, kvDim);
            Ops.RopeAt(s.Query, s.CosTable, s.SinTable, s.DevicePosition, c.Heads, c.HeadDim, c.RopeDims, c.RopeMode);
            Ops.RopeAt(s.KeyStep, s.CosTable, s.SinTable, s.DevicePosition, c.KvHeads, c.HeadDim, c.RopeDims, c.RopeMode);
            if (s.CacheType == KvCacheType.F16)
            {
                Ops.KvAppendF16(s.KeyStep, s.ValueStep, s.KeyCache[l], s.ValueCache[l], s.DevicePosition, kvDim);
                Ops.AttentionDecodeF16Kv(s.Query, s.KeyCache[l], s.ValueCache[l], s.AttnOut, c.Heads, c.KvHeads, c.HeadDim, kvDim, s.DevicePosition,
                    1.0f / MathF.Sqrt(c.HeadDim));
            }
            else
            {
                Ops.KvAppend(s.KeyStep, s.ValueStep, s.KeyCache[l], s.ValueCache[l], s.DevicePosition, kvDim);
                Ops.AttentionDecode(s.Query, s.KeyCache[l], s.ValueCache[l], s.AttnOut, c.Heads, c.KvHeads, c.HeadDim, kvDim, s.DevicePosition,
                    1.0f / MathF.Sqrt(c.HeadDim));
            }
            Ops.MatVec(w.Output.Type, w.Output.Data, s.AttnOut, s.Normed, w.Output.Rows, w.Output.Cols);
            Ops.Add(s.X, s.Normed, s.X, dim);
            FeedForward(w, s, 1);
        }
    }

    /// <summary>Feed-forward block on n rows: x += W_down · (silu(W_gate·norm(x)) ⊙ W_up·norm(x)).</summary>
    private void FeedForward(GpuLayerWeights w, GpuDecoderState s, int n)
    {
        var c = Config;
        Ops.RmsNorm(s.X, w.FeedForwardNorm, s.Normed, n, c.Dim, c.NormEps);
        Linear(w.Gate, s.Normed, s.Gate, n);
        Linear(w.Up, s.Normed, s.Up, n);
        Ops.SiluMul(s.Gate, s.Up, n * c.FeedForward);
        Linear(w.Down, s.Gate, s.Normed, n);
        Ops.Add(s.X, s.Normed, s.X, n * c.Dim);
    }

    /// <summary>Logits [vocab] of row <paramref name="row"/> of state.X into state.Logits: final norm and LM head.</summary>
    private void OutputLogits(GpuDecoderState s, int row)
    {
        var c = Config;
        Ops.RmsNorm(s.X.Pointer.Offset((long)row * c.Dim * 4), _outputNorm, s.Normed, 1, c.Dim, c.NormEps);
        Linear(_lmHead, s.Normed, s.Logits, 1);
    }

    public void Dispose()
    {
        foreach (var b in _buffers) b.Dispose();
        _buffers.Clear();
        Ops.Dispose();
    }
}

/// <summary>The <see cref="CudaOps"/> paths a decode step was launched or captured with.</summary>
internal readonly record struct DecodeKernelChoice(QuantizedMatMulPath Quantized, AttentionPath Attention, MatMulPath MatMul);
