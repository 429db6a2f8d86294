using System.Diagnostics;
using LlavaNative.Kernels.Cpu.Quant;
using LlavaNative.Kernels.Cuda;
using LlavaNative.Kernels.Tensors;
using LlavaNative.Model;
using LlavaNative.Model.Language;

namespace LlavaNative.TestSupport.Cuda;

/// <summary>
/// End-to-end checks of <see cref="GpuDecoder"/> against the CPU <see cref="DecoderModel"/> on random tiny GGUF
/// decoders (synthetic 512-token vocabulary): a 10-token prompt (all logits, in batches of 8 and 2), then 4 greedy
/// decode steps, and image-like embedding rows through ForwardEmbeddings. Shared by the xunit tests (host
/// emulator, and a GPU when present) and tools/device/GpuCheck.
///
/// The reference is the CPU forward pass on F32 weights: for F32 models the model itself; for quantized models
/// the same model with every matrix dequantized to F32 by the CPU's scalar Dequantize (the GPU kernels dequantize
/// the same way and multiply F32 activations, whereas the CPU's quantized path rounds activations to Q8 first —
/// its distance to the F32 reference is printed for scale, not checked). What remains is float32 summation
/// order, so every logit must be within <see cref="LogitTolerance"/> (random logits have std ≈ 3); greedy tokens
/// must match wherever the reference's top-2 margin exceeds twice that.
/// </summary>
public static unsafe partial class GpuDecoderChecks
{
    /// <summary>Max |Δ| allowed per logit (logit std ≈ 3): float32 summation order over 2 layers.</summary>
    public const double LogitTolerance = 1e-4;

    private const int PromptTokens = 10, DecodeSteps = 4, ImageRows = 6;

    /// <summary>
    /// Max |Δ| per logit with an F16 KV cache on both sides. The GPU and the CPU compute K and V rows that differ in the
    /// last float32 bits (summation order), and rounding to F16 turns such a difference into a whole half ulp (relative
    /// 2⁻¹¹) wherever a value lies next to a rounding boundary; those rare flips are carried through 2 layers. Measured
    /// on the emulator (seed 1): llama F32 1.8e-4, qwen2 Q8_0 7e-6, llama graph decode 1.8e-5, qwen2 tensor-core
    /// prefill's F32-attention run 1.2e-4; the bound leaves ~5×.
    /// </summary>
    public const double HalfCacheLogitTolerance = 1e-3;

    /// <summary>rel L2 of all logits with an F16 KV cache: measured 4.5e-6; flips stay rare, so the aggregate is held at 1e-4.</summary>
    public const double HalfCacheLogitRelL2 = 1e-4;

    private static Tally CacheTally(string name, KvCacheType cacheType) => cacheType == KvCacheType.F16
        ? new Tally(name, HalfCacheLogitTolerance, HalfCacheLogitRelL2)
        : new Tally(name);

    /// <summary>Every check, by name, with the signature of <see cref="GpuOpChecks.All"/>.</summary>
    public static IReadOnlyList<(string Name, Func<IGpuDevice, int, GpuCheckResult> Run)> All { get; } =
    [
        ("decoder llama F32", (d, seed) => Decoder(d, RandomModelArchitecture.Llama, null, seed)),
        ("decoder qwen2 F32", (d, seed) => Decoder(d, RandomModelArchitecture.Qwen2, null, seed)),
        ("decoder llama Q8_0", (d, seed) => Decoder(d, RandomModelArchitecture.Llama, TensorType.Q8_0, seed)),
        ("decoder qwen2 Q4_K", (d, seed) => Decoder(d, RandomModelArchitecture.Qwen2, TensorType.Q4_K, seed)),
        ("decoder llama embeddings (image rows)", (d, seed) => Embeddings(d, RandomModelArchitecture.Llama, seed)),
        ("decoder qwen2 embeddings (image rows)", (d, seed) => Embeddings(d, RandomModelArchitecture.Qwen2, seed)),
        ("decoder llama embeddings from device rows", (d, seed) => Embeddings(d, RandomModelArchitecture.Llama, seed, fromDevice: true)),
        ("decoder llama prefill tensor-core attention", (d, seed) => TensorCorePrefill(d, RandomModelArchitecture.Llama, seed)),
        ("decoder qwen2 prefill tensor-core attention", (d, seed) => TensorCorePrefill(d, RandomModelArchitecture.Qwen2, seed)),
        ("decoder llama F16 prefill tensor-core mat-muls", (d, seed) => TensorCoreMatMulPrefill(d, RandomModelArchitecture.Llama, TensorType.F16, seed)),
        ("decoder qwen2 Q4_K prefill tensor-core mat-muls", (d, seed) => TensorCoreMatMulPrefill(d, RandomModelArchitecture.Qwen2, TensorType.Q4_K, seed)),
        ("decoder llama Q4_0 prefill tensor-core mat-muls", (d, seed) => TensorCoreMatMulPrefill(d, RandomModelArchitecture.Llama, TensorType.Q4_0, seed)),
        ("decoder llama graph decode vs direct launches", (d, seed) => GraphDecode(d, RandomModelArchitecture.Llama, seed)),
        ("decoder qwen2 graph decode vs direct launches", (d, seed) => GraphDecode(d, RandomModelArchitecture.Qwen2, seed)),
        // The F16 KV cache: the GPU decoder against the CPU decoder with the same cache type (both store RNE halves and
        // compute the attention in F32 on the widened values, so the F32 tolerance holds).
        ("decoder llama F32 f16 cache", (d, seed) => Decoder(d, RandomModelArchitecture.Llama, null, seed, KvCacheType.F16)),
        ("decoder qwen2 Q8_0 f16 cache", (d, seed) => Decoder(d, RandomModelArchitecture.Qwen2, TensorType.Q8_0, seed, KvCacheType.F16)),
        ("decoder qwen2 prefill tensor-core attention f16 cache", (d, seed) => TensorCorePrefill(d, RandomModelArchitecture.Qwen2, seed, KvCacheType.F16)),
        ("decoder llama graph decode vs direct launches f16 cache", (d, seed) => GraphDecode(d, RandomModelArchitecture.Llama, seed, KvCacheType.F16)),
    ];

    /// <summary>
    /// Max |Δ| per logit when prefill attention runs on the tensor cores (<see cref="AttentionPath.TensorCores"/>): Q, K,
    /// V and the probabilities rounded to F16 (u = 2⁻¹¹ ≈ 4.9e-4) put a relative error of about u on each attention
    /// output (per op: GpuOpChecks.TiledAttentionCheck), carried through out_proj, the residual stream and 2 layers to
    /// logits of std ≈ 3 (max ≈ 10). Measured on the emulator (<see cref="TensorCorePrefill"/>): up to 1.7e-2, i.e.
    /// ≈ 1.7e-3 of the largest logit, as the vision towers' tensor-core path; the bound leaves ~3× for other seeds
    /// and the real mma's accumulation order. The aggregate is held tighter (<see cref="TensorCoreLogitRelL2"/>).
    /// </summary>
    public const double TensorCoreLogitTolerance = 5e-2;

    /// <summary>rel L2 of all logits on the tensor-core prefill path: 4u; measured 5.5e-4 … 6.6e-4 (≈ 1.2u).</summary>
    public const double TensorCoreLogitRelL2 = 4.0 / 2048;

    private const int TensorCorePromptTokens = 40, TensorCoreBatch = 24;

    /// <summary>
    /// The GGUF for a check: the tiny spec (dim 64) for F32 and Q8_0; the quantizable spec (dim 256, every row a
    /// multiple of 256) for K-quants. Quantized on load by the CPU's quantizer.
    /// </summary>
    public static DecoderModel LoadModel(RandomModelArchitecture architecture, TensorType? quantize)
    {
        var spec = quantize is TensorType.Q2_K or TensorType.Q3_K or TensorType.Q4_K or TensorType.Q5_K or TensorType.Q6_K
            ? RandomModelSpec.Quantizable(architecture)
            : RandomModelSpec.Tiny(architecture, RandomModelVocabulary.Synthetic);
        return DecoderModel.LoadGguf(RandomModels.GetPath(spec), new ModelLoadOptions { Quantize = quantize });
    }

    /// <summary>Prompt, all logits, then greedy decode: GPU vs the CPU F32 reference, both with a KV cache of <paramref name="cacheType"/>.</summary>
    public static GpuCheckResult Decoder(IGpuDevice device, RandomModelArchitecture architecture, TensorType? quantize, int seed,
        KvCacheType cacheType = KvCacheType.F32)
    {
        string name = $"decoder {architecture.ToString().ToLowerInvariant()} {(quantize is { } q ? TensorTypeInfo.Name(q) : "F32")}" +
                      (cacheType == KvCacheType.F16 ? " f16 cache" : "");
        using var model = LoadModel(architecture, quantize);
        using var reference = quantize == null ? null : Dequantized(model);
        var cpu = reference?.Model ?? model;
        var config = model.Config;
        int vocab = config.VocabSize;
        var rng = new Random(seed);
        int[] prompt = new int[PromptTokens];
        for (int i = 0; i < prompt.Length; i++) prompt[i] = rng.Next(vocab);

        using var gpu = new GpuDecoder(device, config, model.Weights);
        // maxBatch 8: the 10-token prompt runs as batches of 8 and 2 (both through the prefill mat-mul).
        using var gpuState = gpu.CreateState(64, maxBatch: 8, cacheType);
        using var cpuState = cpu.CreateState(64, maxBatch: 8, cacheType: cacheType);
        using var quantState = quantize == null ? null : model.CreateState(64, maxBatch: 8, cacheType: cacheType);
        if (gpuState.KvCacheBytes != cpuState.KvCacheBytes)
            throw new InvalidOperationException($"{name}: KV cache bytes GPU {gpuState.KvCacheBytes}, CPU {cpuState.KvCacheBytes}");

        var tally = CacheTally(name, cacheType);
        var expected = new float[PromptTokens * vocab];
        var actual = new float[PromptTokens * vocab];
        cpu.Forward(cpuState, prompt, LogitsMode.All, expected);
        gpu.Forward(gpuState, prompt, LogitsMode.All, actual);
        tally.Logits("prompt", actual, expected, vocab);
        if (quantState != null)
        {
            var quantLogits = new float[PromptTokens * vocab];
            model.Forward(quantState, prompt, LogitsMode.All, quantLogits);
            tally.QuantizedActivationDistance(quantLogits, expected);
        }

        int next = ArgMax(expected.AsSpan((PromptTokens - 1) * vocab, vocab));
        var gpuLogits = new float[vocab];
        for (int step = 0; step < DecodeSteps; step++)
        {
            int[] one = [next];
            float[] want = cpu.Forward(cpuState, one).ToArray();
            int gpuNext = gpu.ForwardGreedy(gpuState, one);
            device.Download<float>(gpuLogits, gpuState.Logits.Pointer);
            tally.Logits($"decode step {step}", gpuLogits, want, vocab);
            next = ArgMax(want);
            tally.Greedy(step, gpuNext, want);
        }
        return tally.Result($"{PromptTokens}-token prompt in batches of 8 + 2 (all logits) + {DecodeSteps} greedy decode steps (device argmax)");
    }

    /// <summary>
    /// 3 prompt tokens, then 6 rows of embeddings (image features: N(0, 1)) with all logits, then one decode step,
    /// against the CPU's ForwardEmbeddings; the F32 tiny model. <paramref name="fromDevice"/>: the rows are uploaded first
    /// and passed as a device pointer (the overload an image encoded on the GPU takes).
    /// </summary>
    public static GpuCheckResult Embeddings(IGpuDevice device, RandomModelArchitecture architecture, int seed, bool fromDevice = false)
    {
        string name = $"decoder {architecture.ToString().ToLowerInvariant()} embeddings {(fromDevice ? "from device rows" : "(image rows)")}";
        using var model = LoadModel(architecture, null);
        var config = model.Config;
        int vocab = config.VocabSize;
        var rng = new Random(seed);
        int[] prompt = [rng.Next(vocab), rng.Next(vocab), rng.Next(vocab)];
        var rows = new float[ImageRows * config.Dim];
        for (int i = 0; i < rows.Length; i++)
            rows[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));

        using var gpu = new GpuDecoder(device, config, model.Weights);
        // maxBatch 4: the 6 rows go through in two batches, as a long image does.
        using var gpuState = gpu.CreateState(32, maxBatch: 4);
        using var cpuState = model.CreateState(32, maxBatch: 4);
        var tally = new Tally(name);
        model.Forward(cpuState, prompt);
        gpu.Forward(gpuState, prompt);
        var expected = new float[ImageRows * vocab];
        var actual = new float[ImageRows * vocab];
        model.ForwardEmbeddings(cpuState, rows, LogitsMode.All, expected);
        if (fromDevice)
        {
            using var deviceRows = device.Upload<float>(rows);
            gpu.ForwardEmbeddings(gpuState, deviceRows.Pointer, ImageRows, LogitsMode.All, actual);
            if (!device.Download<float>(deviceRows).AsSpan().SequenceEqual(rows)) tally.Fail("the device rows were modified");
        }
        else gpu.ForwardEmbeddings(gpuState, rows, LogitsMode.All, actual);
        tally.Logits("image rows", actual, expected, vocab);
        int[] one = [ArgMax(expected.AsSpan((ImageRows - 1) * vocab, vocab))];
        float[] want = model.Forward(cpuState, one).ToArray();
        float[] got = gpu.Forward(gpuState, one).ToArray();
        tally.Logits("token after the image", got, want, vocab);
        if (gpuState.Position != cpuState.Position) tally.Fail($"positions differ: GPU {gpuState.Position}, CPU {cpuState.Position}");
        return tally.Result($"3 tokens + {ImageRows} embedding rows in batches of 4 (all logits) + 1 token");
    }

    /// <summary>
    /// A 40-token prompt in batches of 24 and 16 (both at or above <see cref="CudaOps.TiledAttentionMinTokens"/>; the
    /// second attends to a cache from start_pos 24), all logits, then 4 greedy decode steps (the F32 kernel), on the F32
    /// tiny model: once with every attention forced to F32 (within <see cref="LogitTolerance"/>: the path the
    /// existing checks hold), once with <see cref="AttentionPath.Auto"/>, which takes the tensor-core kernel for both
    /// prefill batches (within <see cref="TensorCoreLogitTolerance"/>). Measured on the emulator, worst logit |Δ| of the
    /// tensor-core run (seeds 1 / 2): llama 1.7e-2 / 1.2e-2, qwen2 1.4e-2 / 1.5e-2, rel L2 6.0e-4 / 5.5e-4 and 6.6e-4 / 6.3e-4;
    /// the F32-attention run 1.3e-5 … 1.8e-5, so the difference is the F16 rounding of the attention alone.
    /// </summary>
    public static GpuCheckResult TensorCorePrefill(IGpuDevice device, RandomModelArchitecture architecture, int seed,
        KvCacheType cacheType = KvCacheType.F32)
    {
        string name = $"decoder {architecture.ToString().ToLowerInvariant()} prefill tensor-core attention" + (cacheType == KvCacheType.F16 ? " f16 cache" : "");
        using var model = LoadModel(architecture, null);
        var config = model.Config;
        int vocab = config.VocabSize;
        var rng = new Random(seed);
        int[] prompt = new int[TensorCorePromptTokens];
        for (int i = 0; i < prompt.Length; i++) prompt[i] = rng.Next(vocab);

        using var cpuState = model.CreateState(64, maxBatch: TensorCoreBatch, cacheType: cacheType);
        var expected = new float[prompt.Length * vocab];
        model.Forward(cpuState, prompt, LogitsMode.All, expected);
        var steps = new List<float[]>();
        int next = ArgMax(expected.AsSpan((prompt.Length - 1) * vocab, vocab));
        for (int step = 0; step < DecodeSteps; step++)
        {
            float[] want = model.Forward(cpuState, [next]).ToArray();
            steps.Add(want);
            next = ArgMax(want);
        }

        var f32 = CacheTally(name + " (F32 attention)", cacheType);
        var tensorCores = new Tally(name, TensorCoreLogitTolerance, TensorCoreLogitRelL2);
        using var gpu = new GpuDecoder(device, config, model.Weights);
        foreach (var (path, tally) in new[] { (AttentionPath.F32, f32), (AttentionPath.Auto, tensorCores) })
        {
            gpu.Ops.AttentionPath = path;
            if (path == AttentionPath.Auto && gpu.Ops.ResolveAttentionPath(path, TensorCorePromptTokens - TensorCoreBatch, config.HeadDim) != AttentionPath.TensorCores)
                throw new InvalidOperationException($"{name}: {device.Name} does not take the tensor-core attention for a batch of {TensorCorePromptTokens - TensorCoreBatch}");
            using var gpuState = gpu.CreateState(64, maxBatch: TensorCoreBatch, cacheType);
            var actual = new float[prompt.Length * vocab];
            gpu.Forward(gpuState, prompt, LogitsMode.All, actual);
            tally.Logits("prompt", actual, expected, vocab);
            next = ArgMax(expected.AsSpan((prompt.Length - 1) * vocab, vocab));
            for (int step = 0; step < DecodeSteps; step++)
            {
                int gpuNext = gpu.ForwardGreedy(gpuState, [next]);
                var logits = new float[vocab];
                device.Download<float>(logits, gpuState.Logits.Pointer);
                tally.Logits($"decode step {step}", logits, steps[step], vocab);
                tally.Greedy(step, gpuNext, steps[step]);
                next = ArgMax(steps[step]);
            }
        }
        var control = f32.Result("");
        var result = tensorCores.Result($"{TensorCorePromptTokens}-token prompt in batches of {TensorCoreBatch} + {TensorCorePromptTokens - TensorCoreBatch} (all logits) + {DecodeSteps} greedy steps");
        string detail = $"{result.Detail}; F32-attention run max|Δ| {control.MaxAbs:0.0e0} (≤ {(cacheType == KvCacheType.F16 ? HalfCacheLogitTolerance : LogitTolerance):0e0})";
        return result with { Passed = result.Passed && control.Passed, Detail = control.Passed ? detail : detail + "; F32 run: " + control.Detail };
    }

    /// <summary>
    /// The prefill mat-muls on the tensor cores (<see cref="MatMulPath.Auto"/>: F16 weights as they are, quantized ones
    /// expanded to F16; activations rounded to F16) with F32 attention, so the mat-muls are the only F16 step: a 40-token
    /// prompt in batches of 24 and 16, all logits, then 4 greedy steps (mat-vec), against the CPU decoder on the same
    /// weights dequantized to F32, within <see cref="TensorCoreLogitTolerance"/> per logit and
    /// <see cref="TensorCoreLogitRelL2"/> overall; greedy tokens equal where the CPU's margin allows.
    /// </summary>
    public static GpuCheckResult TensorCoreMatMulPrefill(IGpuDevice device, RandomModelArchitecture architecture, TensorType weights, int seed)
    {
        string name = $"decoder {architecture.ToString().ToLowerInvariant()} {TensorTypeInfo.Name(weights)} prefill tensor-core mat-muls";
        // F16 is not a quantize-on-load target: that model is written with F16 weights.
        using var model = weights == TensorType.F16
            ? DecoderModel.LoadGguf(RandomModels.GetPath(RandomModelSpec.Tiny(architecture, RandomModelVocabulary.Synthetic) with { WeightType = TensorType.F16 }))
            : LoadModel(architecture, weights);
        using var reference = Dequantized(model);
        var config = model.Config;
        int vocab = config.VocabSize;
        var rng = new Random(seed);
        int[] prompt = new int[TensorCorePromptTokens];
        for (int i = 0; i < prompt.Length; i++) prompt[i] = rng.Next(vocab);

        using var cpuState = reference.Model.CreateState(64, maxBatch: TensorCoreBatch);
        var expected = new float[prompt.Length * vocab];
        reference.Model.Forward(cpuState, prompt, LogitsMode.All, expected);

        using var gpu = new GpuDecoder(device, config, model.Weights);
        gpu.Ops.AttentionPath = AttentionPath.F32;
        gpu.Ops.MatMulPath = MatMulPath.Auto;
        var layer0 = model.Weights.Layers[0].Query.Type;
        if (gpu.Ops.ResolveMatMulPath(layer0, config.Dim, TensorCorePromptTokens - TensorCoreBatch) != MatMulPath.TensorCores)
            throw new InvalidOperationException($"{name}: {device.Name} does not take the tensor cores for {layer0} at a batch of {TensorCorePromptTokens - TensorCoreBatch}");
        using var gpuState = gpu.CreateState(64, maxBatch: TensorCoreBatch);
        var actual = new float[prompt.Length * vocab];
        gpu.Forward(gpuState, prompt, LogitsMode.All, actual);
        var tally = new Tally(name, TensorCoreLogitTolerance, TensorCoreLogitRelL2);
        tally.Logits("prompt", actual, expected, vocab);
        int next = ArgMax(expected.AsSpan((prompt.Length - 1) * vocab, vocab));
        for (int step = 0; step < DecodeSteps; step++)
        {
            float[] want = reference.Model.Forward(cpuState, [next]).ToArray();
            int gpuNext = gpu.ForwardGreedy(gpuState, [next]);
            var logits = new float[vocab];
            device.Download<float>(logits, gpuState.Logits.Pointer);
            tally.Logits($"decode step {step}", logits, want, vocab);
            tally.Greedy(step, gpuNext, want);
            next = ArgMax(want);
        }
        return tally.Result($"{TensorCorePromptTokens}-token prompt in batches of {TensorCoreBatch} + {TensorCorePromptTokens - TensorCoreBatch} (all logits) + {DecodeSteps} greedy steps, vs the CPU on the dequantized weights");
    }

    /// <summary>
    /// Decode speed of the GPU decoder on a model of <paramref name="spec"/>'s shape: a 16-token prompt, then
    /// <paramref name="steps"/> greedy steps (device argmax, one int copied back per step); tokens per second of
    /// the decode steps, wall clock. <paramref name="useGraphs"/> sets <see cref="GpuDecoder.UseGraphs"/> (null: its default).
    /// </summary>
    public static (double TokensPerSecond, double PrefillMs) DecodeSpeed(IGpuDevice device, RandomModelSpec spec, TensorType? quantize, int steps,
        bool? useGraphs = null)
    {
        using var model = DecoderModel.LoadGguf(RandomModels.GetPath(spec), new ModelLoadOptions { Quantize = quantize });
        using var gpu = new GpuDecoder(device, model.Config, model.Weights);
        if (useGraphs is { } graphs) gpu.UseGraphs = graphs;
        using var state = gpu.CreateState(16 + steps + 8, maxBatch: 16);
        int[] prompt = new int[16];
        for (int i = 0; i < prompt.Length; i++) prompt[i] = (i * 37 + 5) % model.Config.VocabSize;
        var prefill = Stopwatch.StartNew();
        int[] one = [gpu.ForwardGreedy(state, prompt)];
        double prefillMs = prefill.Elapsed.TotalMilliseconds;
        for (int i = 0; i < 4 && state.Position < state.ContextSize - steps; i++) one[0] = gpu.ForwardGreedy(state, one); // warm-up
        var timer = Stopwatch.StartNew();
        for (int i = 0; i < steps; i++) one[0] = gpu.ForwardGreedy(state, one);
        return (steps / timer.Elapsed.TotalSeconds, prefillMs);
    }

    private static int ArgMax(ReadOnlySpan<float> x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }

    /// <summary>A CPU decoder on <paramref name="model"/>'s weights with every matrix dequantized to F32.</summary>
    private static DequantizedModel Dequantized(DecoderModel model)
    {
        var owned = new List<NativeBuffer>();
        WeightMatrix ToF32(in WeightMatrix m)
        {
            if (m.Type == TensorType.F32) return m;
            var buffer = NativeBuffer.Floats((long)m.Rows * m.Cols);
            owned.Add(buffer);
            var kernels = QuantRegistry.ScalarKernels(m.Type);
            for (int r = 0; r < m.Rows; r++) kernels.Dequantize(m.Row(r), buffer.Floats() + (long)r * m.Cols, m.Cols);
            return new WeightMatrix(buffer.Pointer, TensorType.F32, m.Rows, m.Cols);
        }
        var w = model.Weights;
        var layers = w.Layers.Select(l => new DecoderLayerWeights
        {
            AttentionNorm = l.AttentionNorm, Query = ToF32(l.Query), Key = ToF32(l.Key), Value = ToF32(l.Value),
            QueryBias = l.QueryBias, KeyBias = l.KeyBias, ValueBias = l.ValueBias, Output = ToF32(l.Output),
            FeedForwardNorm = l.FeedForwardNorm, Gate = ToF32(l.Gate), Up = ToF32(l.Up), Down = ToF32(l.Down),
        }).ToArray();
        var embedding = ToF32(w.TokenEmbedding);
        var weights = new DecoderWeights
        {
            TokenEmbedding = embedding, Layers = layers, OutputNorm = w.OutputNorm,
            LmHead = w.TiedEmbeddings ? embedding : ToF32(w.LmHead), TiedEmbeddings = w.TiedEmbeddings,
        };
        return new DequantizedModel(new DecoderModel(model.Config, weights, null, model.SourcePath + " (dequantized to F32)"), owned);
    }

    private sealed class DequantizedModel(DecoderModel model, List<NativeBuffer> buffers) : IDisposable
    {
        public DecoderModel Model { get; } = model;

        public void Dispose()
        {
            foreach (var b in buffers) b.Dispose();
        }
    }

    /// <summary>Accumulates the worst logit difference, greedy agreement and failures over a run.</summary>
    private sealed class Tally(string name, double tolerance = LogitTolerance, double relL2Limit = double.PositiveInfinity)
    {
        private double _maxAbs, _diff2, _ref2, _quantDistance = double.NaN;
        private string _worst = "";
        private readonly List<string> _failures = [];
        private int _greedyChecked, _greedySkipped;

        public void Logits(string where, ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, int vocab)
        {
            for (int i = 0; i < expected.Length; i++)
            {
                if (!float.IsFinite(actual[i]))
                {
                    Fail($"{where}: position {i / vocab} token {i % vocab} is {actual[i]}");
                    _maxAbs = double.PositiveInfinity;
                    return;
                }
                double d = Math.Abs(actual[i] - (double)expected[i]);
                _diff2 += d * d;
                _ref2 += (double)expected[i] * expected[i];
                if (d > _maxAbs)
                {
                    _maxAbs = d;
                    _worst = $"{where}, position {i / vocab}, token {i % vocab}: GPU {actual[i]:R}, CPU {expected[i]:R}";
                }
            }
        }

        public void QuantizedActivationDistance(ReadOnlySpan<float> quantized, ReadOnlySpan<float> reference)
        {
            double d = 0;
            for (int i = 0; i < reference.Length; i++) d = Math.Max(d, Math.Abs(quantized[i] - (double)reference[i]));
            _quantDistance = d;
        }

        /// <summary>The device argmax must be the reference's top token whenever its margin over the second exceeds 2× the tolerance.</summary>
        public void Greedy(int step, int gpuToken, ReadOnlySpan<float> reference)
        {
            int best = ArgMax(reference);
            float second = float.NegativeInfinity;
            for (int i = 0; i < reference.Length; i++) if (i != best) second = Math.Max(second, reference[i]);
            if (reference[best] - second <= 2 * tolerance) { _greedySkipped++; return; }
            _greedyChecked++;
            if (gpuToken != best) Fail($"decode step {step}: device argmax {gpuToken}, CPU {best} (margin {reference[best] - second:0.000})");
        }

        public void Fail(string message) => _failures.Add(message);

        public GpuCheckResult Result(string what)
        {
            double relL2 = _ref2 > 0 ? Math.Sqrt(_diff2 / _ref2) : Math.Sqrt(_diff2);
            bool passed = _failures.Count == 0 && _maxAbs <= tolerance && relL2 <= relL2Limit;
            string detail = $"{what}; greedy {_greedyChecked} checked, {_greedySkipped} near-ties skipped";
            if (!double.IsNaN(_quantDistance)) detail += $"; CPU with Q8 activations is {_quantDistance:0.000e0} from the F32 reference";
            if (!passed) detail += $"; worst {_worst}" + (_failures.Count > 0 ? "; " + string.Join("; ", _failures) : "");
            string limits = double.IsPositiveInfinity(relL2Limit) ? "" : $", rel L2 ≤ {relL2Limit:0.0e0}";
            return new GpuCheckResult(name, passed, _maxAbs, relL2, $"max|Δ logit| ≤ {tolerance:0e0}{limits} vs CPU F32", detail);
        }
    }
}
