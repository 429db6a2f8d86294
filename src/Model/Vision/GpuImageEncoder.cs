using LlavaNative.Kernels.Cpu.Ops;
using LlavaNative.Kernels.Cuda;
using LlavaNative.Kernels.Tensors;
using LlavaNative.Model.Language;
using LlavaNative.Model.Llava;

namespace LlavaNative.Model.Vision;

/// <summary>One vision block's weights on the device (<see cref="VisionLayerWeights"/>'s twin); norms and biases F32.</summary>
internal sealed class GpuVisionLayerWeights
{
    public DevicePtr Norm1Weight, Norm1Bias;            // [dim]
    public GpuWeightMatrix Query, Key, Value, Output;   // [dim, dim]
    public DevicePtr QueryBias, KeyBias, ValueBias;     // [dim]
    public DevicePtr OutputBias;                        // [dim]
    public DevicePtr Norm2Weight, Norm2Bias;            // [dim]
    public GpuWeightMatrix Up;                          // [ffn, dim]  fc1
    public DevicePtr UpBias;                            // [ffn]
    public GpuWeightMatrix Down;                        // [dim, ffn]  fc2
    public DevicePtr DownBias;                          // [dim]
}

/// <summary>
/// <see cref="ImageEncoder"/> on a GPU: the CLIP / SigLIP tower (<see cref="VisionEncoder"/>) and the LLaVA projector
/// (<see cref="Projector"/>) with the same configurations and weights, uploaded once in their stored encoding, and the
/// same order of operations, each op a <see cref="CudaOps"/> launch:
/// <code>
/// patches = im2col(pixels)                          [P, 3·p·p]
/// x[first..] = patches · W_patchᵀ (+ b_patch)       [P, D]      tiled mat-mul (the patch kernel is F32)
/// x[0] = class + pos[0]; x[r] += pos[r]             [N, D]      one kernel; pre-LN (CLIP)
/// per block: LN1 → q, k, v (+ bias) → bidirectional attention → out_proj (+ bias) → x +=;
///            LN2 → fc1 (+ bias) → act → fc2 (+ bias) → x +=
/// features = x[FirstOutputRow..]                    [T, D]      no post-layernorm
/// projector: linear_1 (+ b1) [→ GELU(erf) → linear_2 (+ b2)]   [T, E]
/// </code>
/// Mat-muls run on the tensor cores (sm_80+) when <see cref="UsesTensorCores"/>: F16 / BF16 weights as they are
/// (<see cref="CudaOps.MatMulTensorCores"/>), quantized ones expanded to F16 first (<see cref="MatMulPath.Auto"/>);
/// F32 weights, and every type when not, take the tiled mat-mul with F32 activations.
/// Attention follows the same choice: with <see cref="UsesTensorCores"/> the tiled tensor-core kernel (F16 Q, K, V,
/// F32 softmax; <see cref="AttentionPath.Auto"/>), without it the F32 kernel.
/// Every device buffer is allocated here, sized from the configuration; encoding an image allocates nothing.
/// </summary>
public sealed unsafe class GpuImageEncoder : IDisposable
{
    private readonly List<DeviceBuffer> _buffers = [];
    private readonly GpuVisionLayerWeights[] _layers;
    private readonly List<long> _quantizedElements = []; // element counts of the quantized matrices (tensor-core scratch)
    private readonly GpuWeightMatrix _patchEmbedding;   // [D, 3·p·p] F32
    private readonly DevicePtr _patchBias;              // [D] or 0
    private readonly DevicePtr _classEmbedding;         // [D] or 0
    private readonly DevicePtr _positionEmbedding;      // [N, D]
    private readonly DevicePtr _preNormWeight, _preNormBias; // [D] or 0
    private readonly GpuWeightMatrix _linear1;          // [H, D]
    private readonly DevicePtr _bias1;                  // [H] or 0
    private readonly GpuWeightMatrix? _linear2;         // [E, H] (mlp2x_gelu)
    private readonly DevicePtr _bias2;                  // [E] or 0

    // Activations, allocated once.
    private readonly DeviceBuffer _pixels;   // [3, S, S]
    private readonly DeviceBuffer _patches;  // [P, 3·p·p]
    private readonly DeviceBuffer _x;        // [N, D]  residual stream
    private readonly DeviceBuffer _normed;   // [N, D]  LayerNorm output; reused for the attention / MLP outputs
    private readonly DeviceBuffer _q, _k, _v; // [N, D]
    private readonly DeviceBuffer _attn;     // [N, D]  attention output, heads concatenated
    private readonly DeviceBuffer _hidden;   // [N, FFN] MLP hidden; also the projector's hidden [T, H] (H·T ≤ FFN·N checked)
    private readonly DeviceBuffer _output;   // [T, E]  projected rows of the last image

    public VisionConfig VisionConfig { get; }
    public ProjectorConfig ProjectorConfig { get; }
    public IGpuDevice Device { get; }
    public CudaOps Ops { get; }

    /// <summary>True when F16 / BF16 matrices go through the tensor-core mat-mul (activations rounded to 16 bits).</summary>
    public bool UsesTensorCores { get; }

    /// <summary>Bytes of weights uploaded to the device.</summary>
    public long WeightBytes { get; private set; }

    /// <summary>Rows per image: 576 for CLIP-L/336 with strategy "default", 729 for SigLIP-so400m/384.</summary>
    public int ImageTokenCount => VisionConfig.OutputTokenCount;

    /// <summary>Width of each projected row (the text model's hidden size).</summary>
    public int EmbeddingLength => ProjectorConfig.OutputSize;

    /// <summary>Floats one image has: 3 · ImageSize².</summary>
    public int PixelCount => 3 * VisionConfig.ImageSize * VisionConfig.ImageSize;

    /// <summary>The projected rows of the last image on the device, [ImageTokenCount, EmbeddingLength].</summary>
    public DevicePtr Output => _output.Pointer;

    /// <summary>Uploads <paramref name="encoder"/>'s tower and projector weights (see the main constructor).</summary>
    public GpuImageEncoder(IGpuDevice device, ImageEncoder encoder, bool? tensorCores = null)
        : this(device, encoder.VisionConfig, encoder.Vision.Weights, encoder.ProjectorConfig, encoder.Projector.Weights, tensorCores)
    {
    }

    /// <summary>
    /// Uploads the weights to <paramref name="device"/> and allocates every activation buffer. Each matrix must have a
    /// device kernel (<see cref="CudaOps.WeightTypes"/>); the error names the matrix otherwise.
    /// <paramref name="tensorCores"/>: null = on devices of compute capability 8.0 or newer (mma.sync m16n8k16).
    /// </summary>
    public GpuImageEncoder(IGpuDevice device, VisionConfig visionConfig, VisionWeights visionWeights, ProjectorConfig projectorConfig,
        ProjectorWeights projectorWeights, bool? tensorCores = null)
    {
        if (projectorConfig.InputSize != visionConfig.HiddenSize)
            throw new ArgumentException($"the projector reads {projectorConfig.InputSize} features, the vision tower produces {visionConfig.HiddenSize}");
        if (visionWeights.Layers.Length < visionConfig.LayersToRun)
            throw new ArgumentException($"the weights hold {visionWeights.Layers.Length} blocks, the configuration runs {visionConfig.LayersToRun}");
        if (visionConfig.HasClassEmbedding != (visionWeights.ClassEmbedding != null) || visionConfig.HasPatchBias != (visionWeights.PatchBias != null)
            || visionConfig.HasPreLayerNorm != (visionWeights.PreNormWeight != null))
            throw new ArgumentException("the weights' class embedding / patch bias / pre-layernorm do not match the configuration");
        if (visionWeights.PatchEmbedding.Rows != visionConfig.HiddenSize || visionWeights.PatchEmbedding.Cols != visionConfig.PatchElements)
            throw new ArgumentException($"patch embedding is [{visionWeights.PatchEmbedding.Rows}, {visionWeights.PatchEmbedding.Cols}], expected [{visionConfig.HiddenSize}, {visionConfig.PatchElements}]");
        if ((projectorConfig.Kind == ProjectorKind.Mlp2xGelu) != projectorWeights.Linear2.HasValue)
            throw new ArgumentException($"a {projectorConfig.Kind} projector {(projectorWeights.Linear2.HasValue ? "has no" : "needs a")} linear_2");
        if (tensorCores == true && device.ComputeCapability.Major < 8)
            throw new ArgumentException($"the tensor-core mat-mul (mma.sync m16n8k16) needs compute capability 8.0 or newer; {device.Name} is {device.ComputeCapability.Major}.{device.ComputeCapability.Minor}", nameof(tensorCores));
        long largest = Math.Max((long)visionConfig.PositionCount * Math.Max(visionConfig.FeedForward, visionConfig.HiddenSize),
            (long)visionConfig.OutputTokenCount * Math.Max(projectorConfig.HiddenSize, projectorConfig.OutputSize));
        if (largest > int.MaxValue)
            throw new NotSupportedException($"GpuImageEncoder: an activation of {largest} floats is more than the kernels' int element counts ({int.MaxValue}); {visionConfig}");
        Device = device;
        VisionConfig = visionConfig;
        ProjectorConfig = projectorConfig;
        UsesTensorCores = tensorCores ?? device.ComputeCapability.Major >= 8;
        Ops = new CudaOps(device) { MatMulPath = UsesTensorCores ? MatMulPath.Auto : MatMulPath.Float };
        var c = visionConfig;
        int d = c.HiddenSize, ffn = c.FeedForward;
        long n = c.PositionCount, t = c.OutputTokenCount;
        try
        {
            _patchEmbedding = UploadMatrix(visionWeights.PatchEmbedding, "patch embedding", d, c.PatchElements);
            _patchBias = UploadVector(visionWeights.PatchBias, d);
            _classEmbedding = UploadVector(visionWeights.ClassEmbedding, d);
            _positionEmbedding = UploadVector(visionWeights.PositionEmbedding, (int)(n * d));
            _preNormWeight = UploadVector(visionWeights.PreNormWeight, d);
            _preNormBias = UploadVector(visionWeights.PreNormBias, d);
            _layers = new GpuVisionLayerWeights[c.LayersToRun];
            for (int l = 0; l < _layers.Length; l++)
            {
                var w = visionWeights.Layers[l];
                _layers[l] = new GpuVisionLayerWeights
                {
                    Norm1Weight = UploadVector(w.Norm1Weight, d),
                    Norm1Bias = UploadVector(w.Norm1Bias, d),
                    Query = UploadMatrix(w.Query, $"block {l} attention query", d, d),
                    Key = UploadMatrix(w.Key, $"block {l} attention key", d, d),
                    Value = UploadMatrix(w.Value, $"block {l} attention value", d, d),
                    QueryBias = UploadVector(w.QueryBias, d),
                    KeyBias = UploadVector(w.KeyBias, d),
                    ValueBias = UploadVector(w.ValueBias, d),
                    Output = UploadMatrix(w.Output, $"block {l} attention output", d, d),
                    OutputBias = UploadVector(w.OutputBias, d),
                    Norm2Weight = UploadVector(w.Norm2Weight, d),
                    Norm2Bias = UploadVector(w.Norm2Bias, d),
                    Up = UploadMatrix(w.Up, $"block {l} fc1", ffn, d),
                    UpBias = UploadVector(w.UpBias, ffn),
                    Down = UploadMatrix(w.Down, $"block {l} fc2", d, ffn),
                    DownBias = UploadVector(w.DownBias, d),
                };
            }
            var p = projectorConfig;
            _linear1 = UploadMatrix(projectorWeights.Linear1, "projector linear_1", p.HiddenSize, p.InputSize);
            _bias1 = UploadVector(projectorWeights.Bias1, p.HiddenSize);
            if (projectorWeights.Linear2 is { } linear2)
            {
                _linear2 = UploadMatrix(linear2, "projector linear_2", p.OutputSize, p.HiddenSize);
                _bias2 = UploadVector(projectorWeights.Bias2, p.OutputSize);
            }

            _pixels = Floats(PixelCount);
            _patches = Floats((long)c.PatchCount * c.PatchElements);
            _x = Floats(n * d);
            _normed = Floats(n * d);
            _q = Floats(n * d);
            _k = Floats(n * d);
            _v = Floats(n * d);
            _attn = Floats(n * d);
            // The MLP hidden rows are dead once fc2 has run, so the projector's hidden rows [T, H] reuse them.
            _hidden = Floats(Math.Max(n * ffn, _linear2.HasValue ? t * p.HiddenSize : 0));
            _output = Floats(t * p.OutputSize);
            // The tensor-core mat-muls' 16-bit activations and expanded quantized weights, sized now: encoding allocates nothing.
            if (UsesTensorCores)
            {
                long quantized = _quantizedElements.Count == 0 ? 0 : _quantizedElements.Max();
                Ops.ReserveTensorCoreScratch((int)n, Math.Max(Math.Max(d, ffn), Math.Max(p.InputSize, p.HiddenSize)), quantized);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    private GpuWeightMatrix UploadMatrix(in WeightMatrix m, string what, int rows, int cols)
    {
        if (m.Rows != rows || m.Cols != cols)
            throw new ArgumentException($"GpuImageEncoder: the {what} matrix is [{m.Rows}, {m.Cols}], the configuration says [{rows}, {cols}]");
        var uploaded = GpuUploads.Matrix(Device, _buffers, m, nameof(GpuImageEncoder), what);
        WeightBytes += m.RowBytes * m.Rows;
        if (TensorTypeInfo.BlockElements(m.Type) > 1) _quantizedElements.Add((long)m.Rows * m.Cols);
        return uploaded;
    }

    private DevicePtr UploadVector(float* v, int count)
    {
        if (v != null) WeightBytes += count * 4L;
        return GpuUploads.Vector(Device, _buffers, v, count);
    }

    private DeviceBuffer Floats(long count)
    {
        var buffer = Device.Allocate(count * 4);
        _buffers.Add(buffer);
        return buffer;
    }

    /// <summary>
    /// Encodes and projects one image: <paramref name="pixels"/> [3, S, S] normalized planar RGB (as the CPU
    /// <see cref="ImageEncoder.EncodeAndProject(ReadOnlySpan{float}, Span{float})"/> takes them) →
    /// <paramref name="destination"/> [ImageTokenCount, EmbeddingLength] on the host. Allocates nothing.
    /// </summary>
    public void EncodeAndProject(ReadOnlySpan<float> pixels, Span<float> destination)
    {
        int count = ImageTokenCount * EmbeddingLength;
        if (destination.Length < count)
            throw new ArgumentException($"destination holds {destination.Length} floats, needs {count} ({ImageTokenCount} × {EmbeddingLength})", nameof(destination));
        lock (Device.WorkLock)
        {
            EncodeAndProject(pixels, _output.Pointer);
            Device.Download(destination[..count], _output.Pointer);
        }
    }

    /// <summary>As <see cref="EncodeAndProject(ReadOnlySpan{float}, Span{float})"/> into a new array [ImageTokenCount, EmbeddingLength].</summary>
    public float[] EncodeAndProject(ReadOnlySpan<float> pixels)
    {
        var result = new float[ImageTokenCount * EmbeddingLength];
        EncodeAndProject(pixels, result);
        return result;
    }

    /// <summary>
    /// As <see cref="EncodeAndProject(ReadOnlySpan{float}, Span{float})"/>, leaving the projected rows on the device in
    /// <see cref="Output"/> (valid until the next image) and returning its address — ready for
    /// <see cref="GpuDecoder.ForwardEmbeddings(GpuDecoderState, DevicePtr, int, LogitsMode?, Span{float})"/>.
    /// </summary>
    public DevicePtr EncodeAndProjectOnDevice(ReadOnlySpan<float> pixels)
    {
        lock (Device.WorkLock) EncodeAndProject(pixels, _output.Pointer);
        return _output.Pointer;
    }

    /// <summary>
    /// As <see cref="EncodeAndProject(ReadOnlySpan{float}, Span{float})"/>, writing the projected rows to the caller's
    /// device memory at <paramref name="destination"/> (room for ImageTokenCount × EmbeddingLength floats).
    /// </summary>
    public void EncodeAndProject(ReadOnlySpan<float> pixels, DevicePtr destination)
    {
        if (destination.Address == 0) throw new ArgumentException("the destination is a null device pointer", nameof(destination));
        lock (Device.WorkLock) Project(Encode(pixels), destination);
    }

    /// <summary>
    /// The tower's selected features [ImageTokenCount, HiddenSize] before the projector
    /// (<see cref="ImageEncoder.EncodeFeatures"/>), copied to <paramref name="destination"/>.
    /// </summary>
    public void EncodeFeatures(ReadOnlySpan<float> pixels, Span<float> destination)
    {
        int count = ImageTokenCount * VisionConfig.HiddenSize;
        if (destination.Length < count)
            throw new ArgumentException($"destination holds {destination.Length} floats, needs {count} ({ImageTokenCount} × {VisionConfig.HiddenSize})", nameof(destination));
        lock (Device.WorkLock) Device.Download(destination[..count], Encode(pixels));
    }

    /// <summary>The tower (<see cref="VisionEncoder"/>'s Forward, op for op); returns the first selected row of the hidden state.</summary>
    private DevicePtr Encode(ReadOnlySpan<float> pixels)
    {
        if (pixels.Length != PixelCount)
            throw new ArgumentException($"expected {PixelCount} floats (3 × {VisionConfig.ImageSize} × {VisionConfig.ImageSize}, planar RGB), got {pixels.Length}", nameof(pixels));
        var c = VisionConfig;
        int n = c.PositionCount, d = c.HiddenSize, ffn = c.FeedForward;
        int first = c.HasClassEmbedding ? 1 : 0; // the class token is row 0; patches follow
        Device.Upload(_pixels.Pointer, pixels);

        // Embeddings: the patch conv as im2col + GEMM, written straight into the patch rows of x.
        Ops.Im2ColPatches(_pixels, _patches, c.ImageSize, c.PatchSize);
        DevicePtr patchRows = _x.Pointer.Offset((long)first * d * 4);
        Ops.MatMul(_patchEmbedding.Type, _patchEmbedding.Data, _patches, patchRows, d, c.PatchElements, c.PatchCount, d);
        if (_patchBias.Address != 0) Ops.AddBiasRows(patchRows, _patchBias, c.PatchCount, d);
        Ops.AddPositionEmbeddings(_x, _positionEmbedding, _classEmbedding, n, d);
        if (_preNormWeight.Address != 0) Ops.LayerNorm(_x, _preNormWeight, _preNormBias, _x, n, d, c.LayerNormEps);

        float scale = 1.0f / MathF.Sqrt(c.HeadDim);
        foreach (var w in _layers)
        {
            // Self-attention block: x += out_proj(attention(LN1(x))).
            Ops.LayerNorm(_x, w.Norm1Weight, w.Norm1Bias, _normed, n, d, c.LayerNormEps);
            Linear(w.Query, _normed, _q, n);
            Linear(w.Key, _normed, _k, n);
            Linear(w.Value, _normed, _v, n);
            Ops.AddBiasRows(_q, w.QueryBias, n, d);
            Ops.AddBiasRows(_k, w.KeyBias, n, d);
            Ops.AddBiasRows(_v, w.ValueBias, n, d);
            Ops.Attention(_q, _k, _v, _attn, n, c.Heads, c.Heads, c.HeadDim, d, startPos: 0, keyCount: n, causal: false, scale,
                UsesTensorCores ? AttentionPath.Auto : AttentionPath.F32);
            Linear(w.Output, _attn, _normed, n);
            Ops.AddBiasRows(_normed, w.OutputBias, n, d); // the bias belongs to out_proj, before the residual sum (as the CPU)
            Ops.Add(_x, _normed, _x, n * d);

            // MLP block: x += fc2(act(fc1(LN2(x)))).
            Ops.LayerNorm(_x, w.Norm2Weight, w.Norm2Bias, _normed, n, d, c.LayerNormEps);
            Linear(w.Up, _normed, _hidden, n);
            Ops.AddBiasRows(_hidden, w.UpBias, n, ffn);
            Ops.Activation(c.Activation, _hidden, _hidden, n * ffn);
            Linear(w.Down, _hidden, _normed, n);
            Ops.AddBiasRows(_normed, w.DownBias, n, d);
            Ops.Add(_x, _normed, _x, n * d);
        }
        return _x.Pointer.Offset((long)c.FirstOutputRow * d * 4);
    }

    /// <summary>The projector (<see cref="Projector.Project"/>): features [T, D] → <paramref name="output"/> [T, E].</summary>
    private void Project(DevicePtr features, DevicePtr output)
    {
        var p = ProjectorConfig;
        int t = ImageTokenCount;
        if (_linear2 is not { } linear2)
        {
            Linear(_linear1, features, output, t);
            if (_bias1.Address != 0) Ops.AddBiasRows(output, _bias1, t, p.OutputSize);
            return;
        }
        Linear(_linear1, features, _hidden, t);
        if (_bias1.Address != 0) Ops.AddBiasRows(_hidden, _bias1, t, p.HiddenSize);
        Ops.Activation(p.Activation, _hidden, _hidden, t * p.HiddenSize);
        Linear(linear2, _hidden, output, t);
        if (_bias2.Address != 0) Ops.AddBiasRows(output, _bias2, t, p.OutputSize);
    }

    /// <summary>y [n, rows] = x [n, cols] · Wᵀ: the tensor-core mat-mul for F16 / BF16 when enabled, else the tiled one.</summary>
    private void Linear(in GpuWeightMatrix w, DevicePtr x, DevicePtr y, int n)
    {
        if (UsesTensorCores && w.Type is TensorType.F16 or TensorType.BF16) Ops.MatMulTensorCores(w.Type, w.Data, x, y, w.Rows, w.Cols, n, w.Rows);
        else Ops.MatMul(w.Type, w.Data, x, y, w.Rows, w.Cols, n, w.Rows);
    }

    public void Dispose()
    {
        foreach (var b in _buffers) b.Dispose();
        _buffers.Clear();
        Ops.Dispose();
    }
}
