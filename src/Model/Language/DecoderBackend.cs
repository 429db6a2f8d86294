using LlavaNative.Kernels.Cpu;
using LlavaNative.Kernels.Cuda;
using LlavaNative.Kernels.Tensors;
using LlavaNative.Model.Generation;

namespace LlavaNative.Model.Language;

/// <summary>Where a model's text decoder runs.</summary>
public enum ComputeBackend
{
    /// <summary>A CUDA GPU when one is usable (driver, NVRTC, a device, kernels for every weight type), else the CPU with a notice.</summary>
    Auto,
    /// <summary>The CPU: <see cref="DecoderModel"/> with SIMD kernels.</summary>
    Cpu,
    /// <summary>CUDA GPU 0 (<see cref="GpuDecoder"/>); <see cref="ComputeBackendUnavailableException"/> when there is none.</summary>
    Cuda,
}

/// <summary>The CUDA backend was asked for explicitly but cannot run; the message says why (no driver, no GPU, a weight type without a kernel…).</summary>
public sealed class ComputeBackendUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// A model's decoder on one backend — the seam between the conversation code (<see cref="Llava.LlavaSession"/>,
/// <see cref="TextGenerator"/>, the CLI) and the forward pass. Belongs with the model: the CPU backend is the
/// <see cref="DecoderModel"/> itself; the CUDA backend holds the weights uploaded once (<see cref="GpuDecoder"/>).
/// Each conversation gets its own <see cref="DecoderSession"/> (KV cache and buffers) from <see cref="CreateSession"/>.
/// </summary>
public abstract class DecoderBackend : IDisposable
{
    private protected DecoderBackend(DecoderModel model) => Model = model;

    /// <summary>The CPU model (config, vocabulary, and the weights the GPU copy was uploaded from).</summary>
    public DecoderModel Model { get; }

    /// <summary><see cref="ComputeBackend.Cpu"/> or <see cref="ComputeBackend.Cuda"/>: where it actually runs.</summary>
    public abstract ComputeBackend Kind { get; }

    /// <summary>The device the decoder runs on (e.g. "CPU" or the GPU's name).</summary>
    public abstract string DeviceName { get; }

    /// <summary>
    /// The GPU device when <see cref="Kind"/> is <see cref="ComputeBackend.Cuda"/> (null on the CPU): where another
    /// part of the model (a GPU image encoder) should run too, sharing the device.
    /// </summary>
    public abstract IGpuDevice? Device { get; }

    /// <summary>
    /// The kernel launcher of the GPU decoder (null on the CPU): its <see cref="CudaOps.MatMulPath"/>,
    /// <see cref="CudaOps.QuantizedMatMulPath"/> and <see cref="CudaOps.AttentionPath"/> choose the kernels. Set them
    /// before a session's first decode step: a session captures its step as a graph with the kernels chosen then.
    /// </summary>
    public virtual CudaOps? GpuOps => null;

    /// <summary>
    /// Set when <see cref="ComputeBackend.Auto"/> fell back to the CPU: one line saying why, e.g.
    /// "no CUDA GPU (…); running on the CPU". Null otherwise.
    /// </summary>
    public string? Notice { get; private protected init; }

    /// <summary>
    /// A KV cache of <paramref name="contextSize"/> positions stored as <paramref name="cacheType"/> (F16: half the
    /// memory, as llama.cpp's default) and buffers for batches of <paramref name="maxBatch"/>.
    /// </summary>
    public abstract DecoderSession CreateSession(int contextSize, int maxBatch = 256, ComputeThreadPool? pool = null,
        KvCacheType cacheType = KvCacheType.F32);

    public abstract void Dispose();

    /// <summary>The CPU backend of <paramref name="model"/> (nothing to set up, nothing to dispose).</summary>
    public static DecoderBackend Cpu(DecoderModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return new CpuDecoderBackend(model, notice: null);
    }

    /// <summary>
    /// The backend <paramref name="requested"/> for <paramref name="model"/>. <see cref="ComputeBackend.Cuda"/> and
    /// <see cref="ComputeBackend.Auto"/> run on <paramref name="device"/> when given (not disposed with the backend:
    /// e.g. another GPU, or the tests' host emulator), else open CUDA GPU 0 (<see cref="CudaDevice.TryOpen"/>) and
    /// upload the decoder's weights to it, then run a 3-token probe (a batch of 2 and one decode step with the device
    /// argmax) so the kernels are compiled now (NVRTC, cached on disk) and not in the middle of a conversation. If any
    /// of that fails, Cuda throws <see cref="ComputeBackendUnavailableException"/> and Auto returns the CPU backend
    /// with a <see cref="Notice"/>. <paramref name="tensorCores"/> false keeps prefill attention in F32 (no F16
    /// rounding for the tensor cores); null lets <see cref="CudaOps"/> choose by compute capability.
    /// </summary>
    public static DecoderBackend Open(DecoderModel model, ComputeBackend requested, IGpuDevice? device = null, bool? tensorCores = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (requested == ComputeBackend.Cpu) return new CpuDecoderBackend(model, notice: null);
        if (requested is not (ComputeBackend.Auto or ComputeBackend.Cuda))
            throw new ArgumentOutOfRangeException(nameof(requested), requested, "not a compute backend");

        bool ownsDevice = device is null;
        if (device is null)
        {
            device = CudaDevice.TryOpen(out string reason);
            if (device is null) return Unavailable(model, requested, $"no CUDA GPU ({reason.TrimEnd('.')})", null);
        }
        GpuDecoder? decoder = null;
        try
        {
            decoder = new GpuDecoder(device, model.Config, model.Weights);
            if (tensorCores == false)
            {
                decoder.Ops.AttentionPath = AttentionPath.F32;
                decoder.Ops.MatMulPath = MatMulPath.Float;
            }
            Probe(decoder);
            return new GpuDecoderBackend(model, decoder, ownsDevice);
        }
        catch (Exception e) when (e is NotSupportedException or CudaException or CudaUnavailableException or OutOfMemoryException)
        {
            string name = device.Name;
            decoder?.Dispose();
            if (ownsDevice) device.Dispose();
            // NotSupportedException: a weight type without a CUDA kernel (the message names the matrix). An NVRTC
            // error carries the compiler's log on further lines: the notice keeps the first (the exception has it all).
            string first = e.Message.Split('\n', 2)[0].TrimEnd('.', ':', ' ', '\r');
            return Unavailable(model, requested, $"the decoder cannot run on {name}: {first}", e);
        }
    }

    /// <summary>Token 0 twice (the prefill mat-mul), then one decode step (mat-vec, device argmax), on a throw-away 3-position state.</summary>
    private static void Probe(GpuDecoder decoder)
    {
        using var state = decoder.CreateState(3, maxBatch: 2);
        ReadOnlySpan<int> two = [0, 0];
        int next = decoder.ForwardGreedy(state, two);
        decoder.ForwardGreedy(state, [next]);
    }

    private static DecoderBackend Unavailable(DecoderModel model, ComputeBackend requested, string why, Exception? inner)
    {
        if (requested == ComputeBackend.Cuda)
            throw new ComputeBackendUnavailableException($"the CUDA backend was requested but {why}", inner);
        return new CpuDecoderBackend(model, $"{why}; running on the CPU");
    }
}

/// <summary>The CPU decoder: <see cref="DecoderModel"/> and <see cref="DecoderState"/>.</summary>
internal sealed class CpuDecoderBackend : DecoderBackend
{
    public CpuDecoderBackend(DecoderModel model, string? notice) : base(model) => Notice = notice;

    public override ComputeBackend Kind => ComputeBackend.Cpu;
    public override string DeviceName => "CPU";
    public override IGpuDevice? Device => null;

    public override DecoderSession CreateSession(int contextSize, int maxBatch = 256, ComputeThreadPool? pool = null,
        KvCacheType cacheType = KvCacheType.F32)
        => new CpuDecoderSession(Model, Model.CreateState(contextSize, maxBatch, pool, cacheType), ownsState: true);

    public override void Dispose() { }
}

/// <summary>The GPU decoder: weights uploaded once (<see cref="GpuDecoder"/>), a <see cref="GpuDecoderState"/> per session.</summary>
internal sealed class GpuDecoderBackend(DecoderModel model, GpuDecoder decoder, bool ownsDevice) : DecoderBackend(model)
{
    public GpuDecoder Decoder { get; } = decoder;

    public override ComputeBackend Kind => ComputeBackend.Cuda;
    public override string DeviceName => Decoder.Device.Name;
    public override IGpuDevice? Device => Decoder.Device;
    public override CudaOps? GpuOps => Decoder.Ops;

    public override DecoderSession CreateSession(int contextSize, int maxBatch = 256, ComputeThreadPool? pool = null,
        KvCacheType cacheType = KvCacheType.F32)
        => new GpuDecoderSession(Decoder, Decoder.CreateState(contextSize, maxBatch, cacheType));

    public override void Dispose()
    {
        Decoder.Dispose();
        if (ownsDevice) Decoder.Device.Dispose();
    }
}

/// <summary>
/// One conversation's KV cache on a <see cref="DecoderBackend"/>, with the decoder's forward pass bound to it. The
/// abstraction costs one virtual call per forward pass (not per kernel): the CPU implementation forwards to
/// <see cref="DecoderModel"/> as before, allocation-free. Positions, overflow errors and logits layouts are those of
/// <see cref="DecoderModel.Forward"/> on both backends.
/// </summary>
public abstract class DecoderSession : IDisposable
{
    public abstract ComputeBackend Kind { get; }

    /// <summary>Positions already in the KV cache.</summary>
    public abstract int Position { get; }
    public abstract int ContextSize { get; }
    public abstract int MaxBatch { get; }

    /// <summary>Bytes held by the KV cache (host or device memory).</summary>
    public abstract long KvCacheBytes { get; }

    /// <summary>How the session's K and V rows are stored.</summary>
    public abstract KvCacheType CacheType { get; }

    /// <summary>As <see cref="DecoderModel.Forward"/>: appends tokens; [vocab] of the last for Last, [tokens, vocab] into <paramref name="logitsAll"/> for All.</summary>
    public abstract ReadOnlySpan<float> Forward(ReadOnlySpan<int> tokens, LogitsMode mode = LogitsMode.Last, Span<float> logitsAll = default);

    /// <summary>As <see cref="DecoderModel.ForwardEmbeddings"/>: appends rows [count, dim]; Last leaves the last row's logits in <see cref="LastLogits"/>.</summary>
    public abstract void ForwardEmbeddings(ReadOnlySpan<float> embeddings, LogitsMode? mode = null, Span<float> logitsAll = default);

    /// <summary>
    /// Appends <paramref name="tokens"/> and returns the most likely next token (first on ties, as
    /// <see cref="Sampler.ArgMax"/>). On the GPU the argmax runs on the device and only one int comes back.
    /// </summary>
    public abstract int ForwardGreedy(ReadOnlySpan<int> tokens);

    /// <summary>
    /// Appends <paramref name="tokens"/> and returns the token <paramref name="sampler"/> draws from the last
    /// position's logits — <c>sampler.Sample(Forward(tokens))</c>. On the GPU, top-k sampling (and greedy with a
    /// repetition penalty or banned tokens) applies the penalty, the bans and the top-k on the device, and only the
    /// K candidates come back (<see cref="GpuSampler"/>); the token is the one the host sampler would draw.
    /// </summary>
    public virtual int ForwardSample(ReadOnlySpan<int> tokens, Sampler sampler)
    {
        ArgumentNullException.ThrowIfNull(sampler);
        return sampler.Sample(Forward(tokens));
    }

    /// <summary>The last position's logits [vocab] after the latest pass that computed them (Last mode, <see cref="ForwardGreedy"/> or <see cref="ForwardSample"/>).</summary>
    public abstract ReadOnlySpan<float> LastLogits { get; }

    /// <summary>Drops every position from <paramref name="position"/> on.</summary>
    public abstract void Truncate(int position);

    /// <summary>Forgets everything: the next token goes to position 0.</summary>
    public void Reset() => Truncate(0);

    public abstract void Dispose();
}

/// <summary>A <see cref="DecoderState"/> and the <see cref="DecoderModel"/> that runs on it.</summary>
public sealed class CpuDecoderSession : DecoderSession
{
    private readonly DecoderModel _model;
    private readonly bool _ownsState;

    /// <summary>Binds <paramref name="state"/> (made by <paramref name="model"/>.CreateState) to its model; disposes it when <paramref name="ownsState"/>.</summary>
    public CpuDecoderSession(DecoderModel model, DecoderState state, bool ownsState)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(state);
        _model = model;
        State = state;
        _ownsState = ownsState;
    }

    /// <summary>The KV cache and activation buffers (host memory).</summary>
    public DecoderState State { get; }

    public override ComputeBackend Kind => ComputeBackend.Cpu;
    public override int Position => State.Position;
    public override int ContextSize => State.ContextSize;
    public override int MaxBatch => State.MaxBatch;
    public override long KvCacheBytes => State.KvCacheBytes;
    public override KvCacheType CacheType => State.CacheType;

    public override ReadOnlySpan<float> Forward(ReadOnlySpan<int> tokens, LogitsMode mode = LogitsMode.Last, Span<float> logitsAll = default)
        => _model.Forward(State, tokens, mode, logitsAll);

    public override void ForwardEmbeddings(ReadOnlySpan<float> embeddings, LogitsMode? mode = null, Span<float> logitsAll = default)
        => _model.ForwardEmbeddings(State, embeddings, mode, logitsAll);

    public override int ForwardGreedy(ReadOnlySpan<int> tokens) => Sampler.ArgMax(_model.Forward(State, tokens));

    public override ReadOnlySpan<float> LastLogits => State.LogitsRow(0);

    public override void Truncate(int position) => State.Truncate(position);

    public override void Dispose()
    {
        if (_ownsState) State.Dispose();
    }
}

/// <summary>A <see cref="GpuDecoderState"/> and the <see cref="GpuDecoder"/> that runs on it.</summary>
public sealed class GpuDecoderSession : DecoderSession
{
    private readonly GpuDecoder _decoder;
    private bool _hostLogitsStale; // after ForwardGreedy or a device ForwardSample the logits stayed on the device
    private GpuSampler? _sampler;  // made at the first device-sampled step

    public GpuDecoderSession(GpuDecoder decoder, GpuDecoderState state)
    {
        ArgumentNullException.ThrowIfNull(decoder);
        ArgumentNullException.ThrowIfNull(state);
        _decoder = decoder;
        State = state;
    }

    /// <summary>The device KV cache and buffers.</summary>
    public GpuDecoderState State { get; }

    public override ComputeBackend Kind => ComputeBackend.Cuda;
    public override int Position => State.Position;
    public override int ContextSize => State.ContextSize;
    public override int MaxBatch => State.MaxBatch;
    public override long KvCacheBytes => State.KvCacheBytes;
    public override KvCacheType CacheType => State.CacheType;

    public override ReadOnlySpan<float> Forward(ReadOnlySpan<int> tokens, LogitsMode mode = LogitsMode.Last, Span<float> logitsAll = default)
    {
        var logits = _decoder.Forward(State, tokens, mode, logitsAll);
        if (mode == LogitsMode.Last) _hostLogitsStale = false;
        return logits;
    }

    public override void ForwardEmbeddings(ReadOnlySpan<float> embeddings, LogitsMode? mode = null, Span<float> logitsAll = default)
    {
        _decoder.ForwardEmbeddings(State, embeddings, mode, logitsAll);
        if (mode == LogitsMode.Last) _hostLogitsStale = false;
    }

    public override int ForwardGreedy(ReadOnlySpan<int> tokens)
    {
        int token = _decoder.ForwardGreedy(State, tokens);
        _hostLogitsStale = true;
        return token;
    }

    public override int ForwardSample(ReadOnlySpan<int> tokens, Sampler sampler)
    {
        ArgumentNullException.ThrowIfNull(sampler);
        int vocab = State.Config.VocabSize;
        if (!GpuSampler.Reduces(sampler, vocab)) return sampler.Sample(Forward(tokens));
        // Plain greedy over the whole row: the device argmax (one int back) is the same choice.
        if (sampler.CandidatesNeeded == 1 && sampler.LogitAdjustmentCount == 0 && sampler.VocabSize == vocab) return ForwardGreedy(tokens);
        lock (_decoder.Device.WorkLock) // the step and its device sampling as one unit of work
        {
            _decoder.ForwardOnDevice(State, tokens);
            _hostLogitsStale = true;
            _sampler ??= new GpuSampler(_decoder.Device, vocab);
            return _sampler.Sample(sampler, State.Logits.Pointer);
        }
    }

    public override ReadOnlySpan<float> LastLogits
    {
        get
        {
            int vocab = State.Config.VocabSize;
            if (_hostLogitsStale)
            {
                lock (_decoder.Device.WorkLock) _decoder.Device.Download(State.HostLogits.AsSpan(0, vocab), State.Logits.Pointer);
                _hostLogitsStale = false;
            }
            return State.HostLogits.AsSpan(0, vocab);
        }
    }

    public override void Truncate(int position) => State.Truncate(position);

    public override void Dispose()
    {
        _sampler?.Dispose();
        _sampler = null;
        State.Dispose();
    }
}
