using LlavaNative.Kernels.Cpu;
using LlavaNative.Kernels.Cpu.Ops;
using LlavaNative.Kernels.Cpu.Quant;
using LlavaNative.Kernels.Cuda;
using LlavaNative.Kernels.Tensors;
using LlavaNative.Model;
using LlavaNative.Model.Language;
using LlavaNative.Model.Llava;
using LlavaNative.Model.Vision;
using LlavaNative.TestSupport.Vision;

namespace LlavaNative.TestSupport.Cuda;

/// <summary>
/// End-to-end checks of <see cref="GpuImageEncoder"/> against the CPU <see cref="ImageEncoder"/> on random tiny CLIP
/// and SigLIP towers written as mmproj GGUFs (<see cref="RandomVisionModel"/>) with awkward sizes: images that are not
/// a multiple of the patch, hidden sizes off the warp width, head dims 24 / 36 / 48 / 64 / 72, feature layer −2
/// (resolved by <see cref="VisionConfig"/>, including the legacy trimmed-tower layout) and −1, both projector kinds,
/// matrices in F32, F16 and Q8_0. Both the projected rows and the selected hidden state (the tower's features) are
/// compared. Shared by the xunit tests (host emulator, and a GPU when present) and tools/device/GpuCheck.
///
/// The reference is the CPU encoder on F32 weights: for F32 towers the encoder itself; for F16 / Q8_0 the same tower
/// with every matrix dequantized to F32 by the CPU's scalar Dequantize (the tiled GPU mat-mul dequantizes the same way
/// and multiplies F32 activations, whereas the CPU's stored-type path rounds activations to Q8 for Q8_0 weights — its
/// distance to the reference is printed for scale, not checked). What remains is float32 summation order:
/// max |gpu − cpu| ≤ <see cref="Tolerance"/> · max(1, max |cpu|).
///
/// The tensor-core path rounds every mat-mul's activations to F16 (unit roundoff 2⁻¹¹ ≈ 4.9e-4) before F32
/// accumulation, and its attention (the tiled tensor-core kernel, 16 or more tokens) rounds Q, K, V and the
/// probabilities to F16 (per-op bound: GpuOpChecks.TiledAttentionCheck), so it carries an error of that order per op
/// against the F32 reference, compounded over the blocks and the projector: <see cref="TensorCoreTolerance"/>. That it is the rounding (and not a bug) is shown by
/// the same towers on the tiled path meeting <see cref="Tolerance"/>.
/// </summary>
public static unsafe class GpuVisionChecks
{
    /// <summary>Tiled mat-mul path, F32 activations: float32 summation order only.</summary>
    public const double Tolerance = 1e-4;

    /// <summary>
    /// Tensor-core path: activations rounded to F16 at each of the (2 blocks × 6 + 1 or 2) mat-muls and Q, K, V, P
    /// at each attention. Measured on the emulator with the mat-muls alone: 8.7e-4 (CLIP d64) and 8.1e-4 (SigLIP d36)
    /// scaled; with the tensor-core attention too (26 and 16 tokens), seeds 1 / 2: 9.5e-4 / 1.3e-3 (CLIP d64) and
    /// 1.0e-3 / 9.2e-4 (SigLIP d36). The bound leaves ~4× for other seeds and the real mma's accumulation order.
    /// </summary>
    public const double TensorCoreTolerance = 5e-3;

    /// <summary>A tower for a check and how its GGUF lays it out.</summary>
    public sealed record VisionCase(string Name, RandomVisionSpec Spec, MmprojLayout Layout, bool TensorCores);

    private static readonly RandomVisionSpec s_clip = new()
    {
        Kind = VisionTowerKind.Clip, ImageSize = 32, PatchSize = 6, HiddenSize = 72, Heads = 3, FeedForward = 100, Layers = 3,
        VisionFeatureLayer = -2, HiddenAct = "quick_gelu", Projector = ProjectorKind.Mlp2xGelu, TextHiddenSize = 56,
    };

    private static readonly RandomVisionSpec s_sigLip = new()
    {
        Kind = VisionTowerKind.SigLip, ImageSize = 30, PatchSize = 7, HiddenSize = 144, Heads = 2, FeedForward = 136, Layers = 2,
        VisionFeatureLayer = -1, SelectStrategy = "full", HiddenAct = "gelu_pytorch_tanh", LayerNormEps = 1e-6f,
        Projector = ProjectorKind.Linear, TextHiddenSize = 48,
    };

    /// <summary>Every tower checked, by name.</summary>
    public static IReadOnlyList<VisionCase> Cases { get; } =
    [
        // CLIP: 5×5 patches of 6 from 32 px (2 px unseen) + class token, head_dim 24, 2 of 3 blocks run.
        new("vision clip F32 mlp d24", s_clip, MmprojLayout.ExplicitFeatureLayer, false),
        // CLIP-L-like head_dim 64, erf GELU, the legacy trimmed-tower GGUF, a linear projector.
        new("vision clip F16 linear gelu d64", s_clip with
        {
            ImageSize = 30, HiddenSize = 128, Heads = 2, FeedForward = 200, Layers = 3, HiddenAct = "gelu", Projector = ProjectorKind.Linear,
            TextHiddenSize = 80, MatrixType = TensorType.F16, Seed = 2,
        }, MmprojLayout.Legacy, false),
        new("vision clip F16 linear gelu d64 tensor cores", s_clip with
        {
            ImageSize = 30, HiddenSize = 128, Heads = 2, FeedForward = 200, Layers = 3, HiddenAct = "gelu", Projector = ProjectorKind.Linear,
            TextHiddenSize = 80, MatrixType = TensorType.F16, Seed = 2,
        }, MmprojLayout.Legacy, true),
        // Q8_0 rows are whole blocks of 32: widths 96 / 160 / 64.
        new("vision clip Q8_0 mlp d24", s_clip with { HiddenSize = 96, Heads = 4, FeedForward = 160, TextHiddenSize = 64, MatrixType = TensorType.Q8_0, Seed = 3 },
            MmprojLayout.ExplicitFeatureLayer, false),
        // SigLIP: 4×4 patches of 7 from 30 px, patch bias, no class token, strategy "full"; head_dim 72 as so400m.
        new("vision siglip F32 linear d72", s_sigLip, MmprojLayout.AllBlocks, false),
        new("vision siglip F16 mlp d36", s_sigLip with
        {
            HiddenSize = 108, Heads = 3, Projector = ProjectorKind.Mlp2xGelu, TextHiddenSize = 64, MatrixType = TensorType.F16, Seed = 4,
        }, MmprojLayout.AllBlocks, false),
        new("vision siglip F16 mlp d36 tensor cores", s_sigLip with
        {
            HiddenSize = 108, Heads = 3, Projector = ProjectorKind.Mlp2xGelu, TextHiddenSize = 64, MatrixType = TensorType.F16, Seed = 4,
        }, MmprojLayout.AllBlocks, true),
        // Feature layer −2 of 3 on SigLIP (explicit key), Q8_0.
        new("vision siglip Q8_0 mlp d48", s_sigLip with
        {
            HiddenSize = 96, Heads = 2, FeedForward = 128, Layers = 3, VisionFeatureLayer = -2, Projector = ProjectorKind.Mlp2xGelu,
            TextHiddenSize = 64, MatrixType = TensorType.Q8_0, Seed = 5,
        }, MmprojLayout.ExplicitFeatureLayer, false),
    ];

    /// <summary>Every check, by name, with the signature of <see cref="GpuOpChecks.All"/>.</summary>
    public static IReadOnlyList<(string Name, Func<IGpuDevice, int, GpuCheckResult> Run)> All { get; } =
        Cases.Select(c => (c.Name, (Func<IGpuDevice, int, GpuCheckResult>)((d, seed) => Encoder(d, c, seed))))
            .Append(("vision clip → decoder from device rows", ImageIntoDecoder))
            .Append(("vision synthetic clip F16 (the timing tower's builder)", SyntheticTowerCheck))
            .ToList();

    /// <summary>Writes <paramref name="spec"/>'s tower as an mmproj GGUF and loads it on the CPU.</summary>
    public static ImageEncoder LoadEncoder(RandomVisionSpec spec, MmprojLayout layout, ComputeThreadPool pool, out RandomVisionModel model)
    {
        model = RandomVisionModel.Create(spec);
        string path = Path.Combine(Path.GetTempPath(), $"llavanative-gpu-vision-{Guid.NewGuid():N}.gguf");
        model.WriteGguf(path, layout);
        try
        {
            // The mapping keeps the file's data alive after the name is gone (Linux); elsewhere the delete may fail.
            return ImageEncoder.LoadGguf(path, pool);
        }
        finally
        {
            try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    /// <summary>One image through the GPU encoder and the CPU F32 reference: projected rows and features.</summary>
    public static GpuCheckResult Encoder(IGpuDevice device, VisionCase check, int seed)
    {
        using var pool = new ComputeThreadPool(2);
        using var encoder = LoadEncoder(check.Spec with { Seed = check.Spec.Seed * 100 + seed }, check.Layout, pool, out var model);
        using var reference = check.Spec.MatrixType == TensorType.F32 ? null : Dequantized(encoder, pool);
        var cpu = reference?.Encoder ?? encoder;
        float[] pixels = model.RandomPixels(seed);
        int rows = encoder.ImageTokenCount, width = encoder.EmbeddingLength, hidden = encoder.VisionConfig.HiddenSize;

        float[] expected = cpu.EncodeAndProject(pixels);
        float[] expectedFeatures = cpu.EncodeFeatures(pixels).ToArray();
        double storedTypeDistance = double.NaN;
        if (reference != null) storedTypeDistance = MaxAbs(encoder.EncodeAndProject(pixels), expected) / Math.Max(1, MaxAbs(expected, null));

        using var gpu = new GpuImageEncoder(device, encoder, check.TensorCores);
        if (gpu.UsesTensorCores != check.TensorCores) throw new InvalidOperationException("the tensor-core choice was not taken");
        var actual = new float[rows * width];
        var features = new float[rows * hidden];
        gpu.EncodeAndProject(pixels, actual);
        gpu.EncodeFeatures(pixels, features);
        // The device-output variant must leave the same rows in its buffer.
        var onDevice = new float[rows * width];
        device.Download<float>(onDevice, gpu.EncodeAndProjectOnDevice(pixels));

        double tolerance = check.TensorCores ? TensorCoreTolerance : Tolerance;
        var outputs = Measure(actual, expected, width);
        var hiddenState = Measure(features, expectedFeatures, hidden);
        bool sameOnDevice = onDevice.AsSpan().SequenceEqual(actual);
        bool passed = outputs.Scaled <= tolerance && hiddenState.Scaled <= tolerance && sameOnDevice;
        string detail = $"{encoder.VisionConfig.Kind} {rows} rows: projected max|Δ| {outputs.MaxAbs:0.00e0} (max|cpu| {outputs.Scale:0.00}), " +
            $"features max|Δ| {hiddenState.MaxAbs:0.00e0} (max|cpu| {hiddenState.Scale:0.00}, scaled {hiddenState.Scaled:0.00e0})";
        if (!double.IsNaN(storedTypeDistance)) detail += $"; CPU {TensorTypeInfo.Name(check.Spec.MatrixType)} path is {storedTypeDistance:0.0e0} (scaled) from the F32 reference";
        if (!passed) detail += $"; worst projected {outputs.Worst}; worst feature {hiddenState.Worst}" + (sameOnDevice ? "" : "; the device output differs from the host copy");
        return new GpuCheckResult(check.Name, passed, outputs.Scaled, outputs.RelL2, $"max|Δ| ≤ {tolerance:0e0}·max(1, max|cpu|) vs CPU F32", detail);
    }

    /// <summary>
    /// The GPU path the pipeline is meant to take: a CLIP image projected to the tiny llama's width (64) stays on the
    /// device and goes into <see cref="GpuDecoder.ForwardEmbeddings(GpuDecoderState, DevicePtr, int, LogitsMode?, Span{float})"/>
    /// (25 rows in batches of 8), against the CPU encoder and the CPU decoder; all logits of the image rows and the
    /// token after them. F32 weights throughout (tiled mat-muls, F32 attention), so logits within <see cref="Tolerance"/> · max(1, max|logit|).
    /// </summary>
    public static GpuCheckResult ImageIntoDecoder(IGpuDevice device, int seed)
    {
        const string name = "vision clip → decoder from device rows";
        using var pool = new ComputeThreadPool(2);
        var spec = s_clip with { ImageSize = 30, TextHiddenSize = 64, Seed = 600 + seed };
        using var encoder = LoadEncoder(spec, MmprojLayout.ExplicitFeatureLayer, pool, out var vision);
        using var model = GpuDecoderChecks.LoadModel(RandomModelArchitecture.Llama, null);
        var config = model.Config;
        if (config.Dim != encoder.EmbeddingLength) throw new InvalidOperationException($"the tiny decoder is {config.Dim} wide, the projector {encoder.EmbeddingLength}");
        float[] pixels = vision.RandomPixels(seed);
        int rows = encoder.ImageTokenCount, vocab = config.VocabSize;
        int[] prompt = [5, 17];

        using var cpuState = model.CreateState(64, maxBatch: 8);
        model.Forward(cpuState, prompt);
        var expected = new float[rows * vocab];
        model.ForwardEmbeddings(cpuState, encoder.EncodeAndProject(pixels), LogitsMode.All, expected);
        float[] expectedNext = model.Forward(cpuState, [7]).ToArray();

        // F32 attention too (tensorCores: false): the tensor-core attention rounds Q, K, V to F16 (GpuOpChecks.TiledAttentionCheck).
        using var gpuEncoder = new GpuImageEncoder(device, encoder, tensorCores: false);
        using var gpu = new GpuDecoder(device, config, model.Weights);
        using var gpuState = gpu.CreateState(64, maxBatch: 8);
        gpu.Forward(gpuState, prompt);
        var actual = new float[rows * vocab];
        gpu.ForwardEmbeddings(gpuState, gpuEncoder.EncodeAndProjectOnDevice(pixels), rows, LogitsMode.All, actual);
        float[] actualNext = gpu.Forward(gpuState, [7]).ToArray();

        var image = Measure(actual, expected, vocab);
        var next = Measure(actualNext, expectedNext, vocab);
        const double tolerance = Tolerance;
        bool passed = image.Scaled <= tolerance && next.Scaled <= tolerance && gpuState.Position == cpuState.Position;
        string detail = $"2 tokens + {rows} image rows (F32 weights) + 1 token; next-token max|Δ| {next.MaxAbs:0.00e0}";
        if (!passed) detail += $"; worst {image.Worst}; positions GPU {gpuState.Position}, CPU {cpuState.Position}";
        return new GpuCheckResult(name, passed, Math.Max(image.Scaled, next.Scaled), image.RelL2, $"max|Δ logit| ≤ {tolerance:0e0}·max(1, max|cpu|)", detail);
    }

    /// <summary>
    /// The in-memory tower builder the device runner times CLIP-L/336 with (<see cref="SyntheticClip"/>), at a small
    /// shape (56 px / 14 → 16 patches + class, width 64, 2 heads, 3 of 3 blocks, mlp2x to 64, F16 matrices shared by
    /// every block): GPU tiled path against the CPU encoder on the same weights dequantized to F32, within
    /// <see cref="Tolerance"/> · max(1, max|cpu|).
    /// </summary>
    public static GpuCheckResult SyntheticTowerCheck(IGpuDevice device, int seed)
    {
        const string name = "vision synthetic clip F16 (the timing tower's builder)";
        using var pool = new ComputeThreadPool(2);
        using var tower = SyntheticClip(image: 56, patch: 14, dim: 64, heads: 2, ffn: 128, blocks: 3, featureLayer: 3, text: 64, TensorType.F16, seed);
        using var cpu = new ImageEncoder(tower.VisionConfig, tower.Vision, tower.ProjectorConfig, tower.Projector, pool);
        using var reference = Dequantized(cpu, pool);
        float[] pixels = tower.Pixels(seed);
        float[] expected = reference.Encoder.EncodeAndProject(pixels);
        using var gpu = new GpuImageEncoder(device, tower.VisionConfig, tower.Vision, tower.ProjectorConfig, tower.Projector, tensorCores: false);
        var actual = new float[expected.Length];
        gpu.EncodeAndProject(pixels, actual);
        var agreement = Measure(actual, expected, gpu.EmbeddingLength);
        bool passed = agreement.Scaled <= Tolerance;
        string detail = $"{gpu.ImageTokenCount} rows × {gpu.EmbeddingLength}: max|Δ| {agreement.MaxAbs:0.00e0} (max|cpu| {agreement.Scale:0.00})";
        if (!passed) detail += $"; worst {agreement.Worst}";
        return new GpuCheckResult(name, passed, agreement.Scaled, agreement.RelL2, $"max|Δ| ≤ {Tolerance:0e0}·max(1, max|cpu|) vs CPU F32", detail);
    }

    private readonly record struct Agreement(double MaxAbs, double Scale, double Scaled, double RelL2, string Worst);

    /// <summary>max |a − e|, max |e|, their ratio to max(1, max|e|), relative L2 and where the worst element is; NaN fails.</summary>
    private static Agreement Measure(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, int width)
    {
        double maxAbs = 0, scale = 0, diff2 = 0, ref2 = 0;
        string worst = "";
        for (int i = 0; i < expected.Length; i++)
        {
            scale = Math.Max(scale, Math.Abs(expected[i]));
            double d = float.IsFinite(actual[i]) ? Math.Abs(actual[i] - (double)expected[i]) : double.PositiveInfinity;
            diff2 += d * d;
            ref2 += (double)expected[i] * expected[i];
            if (d > maxAbs || (double.IsPositiveInfinity(d) && worst.Length == 0))
            {
                maxAbs = d;
                worst = $"row {i / width} col {i % width}: GPU {actual[i]:R}, CPU {expected[i]:R}";
            }
        }
        return new Agreement(maxAbs, scale, maxAbs / Math.Max(1, scale), ref2 > 0 ? Math.Sqrt(diff2 / ref2) : Math.Sqrt(diff2), worst);
    }

    private static double MaxAbs(ReadOnlySpan<float> a, float[]? b)
    {
        double m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs(a[i] - (b == null ? 0 : (double)b[i])));
        return m;
    }

    /// <summary>A CPU encoder on <paramref name="encoder"/>'s weights with every matrix dequantized to F32 (the CPU's scalar Dequantize).</summary>
    public static DequantizedEncoder Dequantized(ImageEncoder encoder, ComputeThreadPool pool)
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
        var v = encoder.Vision.Weights;
        var vision = new VisionWeights
        {
            PatchEmbedding = ToF32(v.PatchEmbedding), PatchBias = v.PatchBias, ClassEmbedding = v.ClassEmbedding,
            PositionEmbedding = v.PositionEmbedding, PreNormWeight = v.PreNormWeight, PreNormBias = v.PreNormBias,
            Layers = v.Layers.Select(l => new VisionLayerWeights
            {
                Norm1Weight = l.Norm1Weight, Norm1Bias = l.Norm1Bias,
                Query = ToF32(l.Query), Key = ToF32(l.Key), Value = ToF32(l.Value),
                QueryBias = l.QueryBias, KeyBias = l.KeyBias, ValueBias = l.ValueBias,
                Output = ToF32(l.Output), OutputBias = l.OutputBias,
                Norm2Weight = l.Norm2Weight, Norm2Bias = l.Norm2Bias,
                Up = ToF32(l.Up), UpBias = l.UpBias, Down = ToF32(l.Down), DownBias = l.DownBias,
            }).ToArray(),
        };
        var p = encoder.Projector.Weights;
        var projector = new ProjectorWeights
        {
            Linear1 = ToF32(p.Linear1), Bias1 = p.Bias1,
            Linear2 = p.Linear2 is { } l2 ? ToF32(l2) : null, Bias2 = p.Bias2,
        };
        return new DequantizedEncoder(new ImageEncoder(encoder.VisionConfig, vision, encoder.ProjectorConfig, projector, pool), owned);
    }

    /// <summary>
    /// A CLIP ViT-L/14-336 tower (24 blocks of width 1024, 16 heads of 64, MLP 4096, 577 positions, quick_gelu) with a
    /// LLaVA-1.5-7B projector (mlp2x 1024 → 4096 → 4096), random weights with matrices in <paramref name="type"/>, for
    /// timing: <paramref name="featureLayer"/> 23 is LLaVA-1.5's −2 (23 blocks run), 24 the whole tower.
    /// </summary>
    public static SyntheticTower ClipL336(TensorType type, int featureLayer, int seed) =>
        SyntheticClip(image: 336, patch: 14, dim: 1024, heads: 16, ffn: 4096, blocks: 24, featureLayer, text: 4096, type, seed);

    /// <summary>
    /// A random CLIP tower + mlp2x projector built in memory (no file): matrices in <paramref name="type"/>, uniform
    /// weights scaled for unit-size activations; each matrix shape has one host copy shared by every block (the
    /// device still gets one copy per block when uploaded, so timings read every block's weights).
    /// </summary>
    public static SyntheticTower SyntheticClip(int image, int patch, int dim, int heads, int ffn, int blocks, int featureLayer, int text,
        TensorType type, int seed)
    {
        var config = new VisionConfig(VisionTowerKind.Clip, image, patch, dim, heads, ffn, blocks, 1e-5f, ActivationFunction.QuickGelu,
            featureLayer, FeatureSelectStrategy.Default, [0.48145466f, 0.4578275f, 0.40821073f], [0.26862954f, 0.26130258f, 0.27577711f]);
        var projectorConfig = new ProjectorConfig(ProjectorKind.Mlp2xGelu, dim, text, text);
        var owned = new List<NativeBuffer>();
        var rng = new Random(seed);
        float* Vector(int n, double mean, double std)
        {
            var buffer = NativeBuffer.Floats(n);
            owned.Add(buffer);
            float* v = buffer.Floats();
            for (int i = 0; i < n; i++) v[i] = (float)(mean + std * (rng.NextDouble() * 2 - 1));
            return v;
        }
        WeightMatrix Matrix(TensorType t, int rows, int cols)
        {
            var values = new float[cols];
            long rowBytes = TensorTypeInfo.RowBytes(t, cols);
            var buffer = new NativeBuffer(rowBytes * rows);
            owned.Add(buffer);
            double std = 1.7 / Math.Sqrt(cols); // uniform in ±std: unit-scale outputs
            fixed (float* src = values)
                for (int r = 0; r < rows; r++)
                {
                    for (int c = 0; c < cols; c++) values[c] = (float)(std * (rng.NextDouble() * 2 - 1));
                    WeightQuantizer.QuantizeRow(t, src, buffer.Pointer + r * rowBytes, cols);
                }
            return new WeightMatrix(buffer.Pointer, t, rows, cols);
        }
        var square = Matrix(type, dim, dim);
        var up = Matrix(type, ffn, dim);
        var down = Matrix(type, dim, ffn);
        var layers = new VisionLayerWeights[config.LayersToRun];
        for (int l = 0; l < layers.Length; l++)
            layers[l] = new VisionLayerWeights
            {
                Norm1Weight = Vector(dim, 1, 0.1), Norm1Bias = Vector(dim, 0, 0.1),
                Query = square, Key = square, Value = square, Output = square,
                QueryBias = Vector(dim, 0, 0.1), KeyBias = Vector(dim, 0, 0.1), ValueBias = Vector(dim, 0, 0.1), OutputBias = Vector(dim, 0, 0.1),
                Norm2Weight = Vector(dim, 1, 0.1), Norm2Bias = Vector(dim, 0, 0.1),
                Up = up, UpBias = Vector(ffn, 0, 0.1), Down = down, DownBias = Vector(dim, 0, 0.1),
            };
        var vision = new VisionWeights
        {
            PatchEmbedding = Matrix(TensorType.F32, dim, config.PatchElements),
            ClassEmbedding = Vector(dim, 0, 1),
            PositionEmbedding = Vector(config.PositionCount * dim, 0, 0.5),
            PreNormWeight = Vector(dim, 1, 0.1), PreNormBias = Vector(dim, 0, 0.1),
            Layers = layers,
        };
        var projector = new ProjectorWeights
        {
            Linear1 = Matrix(type, text, dim), Bias1 = Vector(text, 0, 0.1),
            Linear2 = Matrix(type, text, text), Bias2 = Vector(text, 0, 0.1),
        };
        return new SyntheticTower(config, vision, projectorConfig, projector, owned);
    }

    /// <summary>A tower and projector built in memory (<see cref="ClipL336"/>), with the buffers behind their pointers.</summary>
    public sealed class SyntheticTower(VisionConfig visionConfig, VisionWeights vision, ProjectorConfig projectorConfig, ProjectorWeights projector,
        List<NativeBuffer> buffers) : IDisposable
    {
        public VisionConfig VisionConfig { get; } = visionConfig;
        public VisionWeights Vision { get; } = vision;
        public ProjectorConfig ProjectorConfig { get; } = projectorConfig;
        public ProjectorWeights Projector { get; } = projector;

        /// <summary>Normalized pixels [3, S, S], uniform in ±2.</summary>
        public float[] Pixels(int seed)
        {
            var rng = new Random(seed);
            var pixels = new float[3 * VisionConfig.ImageSize * VisionConfig.ImageSize];
            for (int i = 0; i < pixels.Length; i++) pixels[i] = (float)(rng.NextDouble() * 4 - 2);
            return pixels;
        }

        public void Dispose()
        {
            foreach (var b in buffers) b.Dispose();
        }
    }

    /// <summary>The reference encoder and the F32 copies of the matrices it reads.</summary>
    public sealed class DequantizedEncoder(ImageEncoder encoder, List<NativeBuffer> buffers) : IDisposable
    {
        public ImageEncoder Encoder { get; } = encoder;

        public void Dispose()
        {
            Encoder.Dispose();
            foreach (var b in buffers) b.Dispose();
        }
    }
}
