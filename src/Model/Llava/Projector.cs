using LlavaNative.Kernels.Cpu;
using LlavaNative.Kernels.Cpu.Ops;
using LlavaNative.Kernels.Tensors;

namespace LlavaNative.Model.Llava;

/// <summary>
/// The LLaVA multi-modal projector: vision features [n, InputSize] → text embeddings [n, OutputSize].
/// Linear: <c>y = x·W1ᵀ + b1</c>. mlp2x_gelu: <c>y = GELU(x·W1ᵀ + b1)·W2ᵀ + b2</c> with exact (erf) GELU, as HF's
/// <c>LlavaMultiModalProjector</c>. Buffers are sized for <see cref="MaxTokens"/> rows once; projecting allocates nothing.
/// </summary>
public sealed unsafe class Projector : IDisposable
{
    private readonly List<NativeBuffer> _buffers = [];
    private readonly float* _hidden;  // [MaxTokens, HiddenSize] output of linear_1 (MLP only)
    private readonly byte* _scratch;  // activation rows converted for the mat-muls' weight types

    public ProjectorConfig Config { get; }
    public ProjectorWeights Weights { get; }
    public int MaxTokens { get; }
    public ComputeThreadPool Pool { get; }

    public Projector(ProjectorConfig config, ProjectorWeights weights, int maxTokens, ComputeThreadPool pool)
    {
        if (maxTokens < 1) throw new ArgumentOutOfRangeException(nameof(maxTokens), maxTokens, "must be positive");
        if (weights.Linear1.Rows != config.HiddenSize || weights.Linear1.Cols != config.InputSize)
            throw new ArgumentException($"linear_1 is [{weights.Linear1.Rows}, {weights.Linear1.Cols}], the configuration says [{config.HiddenSize}, {config.InputSize}]");
        if ((config.Kind == ProjectorKind.Mlp2xGelu) != weights.Linear2.HasValue)
            throw new ArgumentException($"a {config.Kind} projector {(weights.Linear2.HasValue ? "has no" : "needs a")} linear_2");
        if (weights.Linear2 is { } w2 && (w2.Rows != config.OutputSize || w2.Cols != config.HiddenSize))
            throw new ArgumentException($"linear_2 is [{w2.Rows}, {w2.Cols}], the configuration says [{config.OutputSize}, {config.HiddenSize}]");
        Config = config;
        Weights = weights;
        MaxTokens = maxTokens;
        Pool = pool;

        long scratch = MatMul.ScratchBytes(weights.Linear1.Type, weights.Linear1.Cols, maxTokens);
        if (weights.Linear2 is { } second)
        {
            _hidden = Floats((long)maxTokens * config.HiddenSize);
            scratch = Math.Max(scratch, MatMul.ScratchBytes(second.Type, second.Cols, maxTokens));
        }
        var scratchBuffer = new NativeBuffer(scratch);
        _buffers.Add(scratchBuffer);
        _scratch = scratchBuffer.Pointer;
    }

    /// <summary><paramref name="features"/> [n, InputSize] → <paramref name="output"/> [n, OutputSize]; n ≤ <see cref="MaxTokens"/>.</summary>
    public void Project(float* features, int n, float* output)
    {
        if (n < 1 || n > MaxTokens) throw new ArgumentOutOfRangeException(nameof(n), n, $"must be 1..{MaxTokens}");
        var w = Weights;
        if (w.Linear2 is not { } linear2)
        {
            MatMul.Compute(Pool, w.Linear1, features, n, output, _scratch);
            RowOps.AddBias(Pool, output, w.Bias1, n, Config.OutputSize);
            return;
        }
        MatMul.Compute(Pool, w.Linear1, features, n, _hidden, _scratch);
        RowOps.AddBiasActivation(Pool, _hidden, w.Bias1, Config.Activation, n, Config.HiddenSize);
        MatMul.Compute(Pool, linear2, _hidden, n, output, _scratch);
        RowOps.AddBias(Pool, output, w.Bias2, n, Config.OutputSize);
    }

    private float* Floats(long count)
    {
        var buffer = NativeBuffer.Floats(count);
        _buffers.Add(buffer);
        return buffer.Floats();
    }

    public void Dispose()
    {
        foreach (var b in _buffers) b.Dispose();
        _buffers.Clear();
    }
}
