using LlavaNative.Kernels.Cpu;
using LlavaNative.Kernels.Cpu.Quant;
using LlavaNative.Kernels.Tensors;
using LlavaNative.Model.Formats;
using LlavaNative.Model.Formats.Gguf;

namespace LlavaNative.Model.Language;

/// <summary>Weights of one decoder block. Matrices point into the mapped file; norm and bias vectors are F32.</summary>
public sealed unsafe class DecoderLayerWeights
{
    public float* AttentionNorm;   // [dim]
    public WeightMatrix Query;     // [heads·headDim, dim]
    public WeightMatrix Key;       // [kvHeads·headDim, dim]
    public WeightMatrix Value;     // [kvHeads·headDim, dim]
    public float* QueryBias;       // [heads·headDim] (qwen2) or null
    public float* KeyBias;         // [kvHeads·headDim] or null
    public float* ValueBias;       // [kvHeads·headDim] or null
    public WeightMatrix Output;    // [dim, heads·headDim]
    public float* FeedForwardNorm; // [dim]
    public WeightMatrix Gate;      // [ffn, dim]
    public WeightMatrix Up;        // [ffn, dim]
    public WeightMatrix Down;      // [dim, ffn]
}

/// <summary>All decoder weights: embedding table, blocks, final norm and the LM head (tied to the embedding when absent).</summary>
public sealed unsafe class DecoderWeights : IDisposable
{
    private readonly List<NativeBuffer> _owned = [];

    public required WeightMatrix TokenEmbedding { get; init; } // [vocab, dim]
    public required DecoderLayerWeights[] Layers { get; init; }
    public float* OutputNorm { get; init; }                   // [dim]
    public required WeightMatrix LmHead { get; init; }         // [vocab, dim]
    public bool TiedEmbeddings { get; init; }

    /// <summary>Binds the GGUF tensors of <paramref name="config"/>'s layout, checking every shape.</summary>
    public static DecoderWeights FromGguf(GgufFile file, DecoderConfig config, ModelLoadOptions? options = null) =>
        Bind(new GgufTensorSource(file), DecoderTensorNames.Gguf, config, options: options);

    /// <summary>
    /// Binds the decoder of <paramref name="config"/> from <paramref name="source"/> under the names of
    /// <paramref name="names"/>, checking every shape ([out, in] matrices, [n] vectors). q/k/v biases are bound
    /// when present and required when <paramref name="requireAttentionBias"/>. The LM head is the token embedding
    /// when <paramref name="tieLmHead"/> or when the source has no LM head tensor. With
    /// <see cref="ModelLoadOptions.Quantize"/> every matrix is re-encoded into buffers these weights own.
    /// </summary>
    public static DecoderWeights Bind(ITensorSource source, DecoderTensorNames names, DecoderConfig config,
        bool requireAttentionBias = false, bool tieLmHead = false, ModelLoadOptions? options = null)
    {
        var binder = new WeightBinder(source);
        var quantizer = new LoadQuantizer(source, options ?? ModelLoadOptions.Default);
        try
        {
            int dim = config.Dim, qDim = config.QueryDim, kvDim = config.KvDim, ffn = config.FeedForward;
            var layers = new DecoderLayerWeights[config.Layers];
            for (int l = 0; l < config.Layers; l++)
            {
                string Name(string tensor) => names.Layer(l, tensor);
                WeightMatrix Matrix(string tensor, int rows, int cols) => quantizer.Apply(Name(tensor), binder.Matrix(Name(tensor), rows, cols));
                float* Bias(string tensor, int n) => requireAttentionBias ? binder.Vector(Name(tensor), n) : binder.OptionalVector(Name(tensor), n);
                layers[l] = new DecoderLayerWeights
                {
                    AttentionNorm = binder.Vector(Name(names.AttentionNorm), dim),
                    Query = Matrix(names.Query, qDim, dim),
                    Key = Matrix(names.Key, kvDim, dim),
                    Value = Matrix(names.Value, kvDim, dim),
                    QueryBias = Bias(names.QueryBias, qDim),
                    KeyBias = Bias(names.KeyBias, kvDim),
                    ValueBias = Bias(names.ValueBias, kvDim),
                    Output = Matrix(names.Output, dim, qDim),
                    FeedForwardNorm = binder.Vector(Name(names.FeedForwardNorm), dim),
                    Gate = Matrix(names.Gate, ffn, dim),
                    Up = Matrix(names.Up, ffn, dim),
                    Down = Matrix(names.Down, dim, ffn),
                };
            }
            var embedding = quantizer.Apply(names.TokenEmbedding, binder.Matrix(names.TokenEmbedding, config.VocabSize, dim));
            bool tied = tieLmHead || !binder.Has(names.LmHead);
            return new DecoderWeights
            {
                TokenEmbedding = embedding,
                Layers = layers,
                OutputNorm = binder.Vector(names.OutputNorm, dim),
                LmHead = tied ? embedding : quantizer.Apply(names.LmHead, binder.Matrix(names.LmHead, config.VocabSize, dim)),
                TiedEmbeddings = tied,
                Owned = [.. binder.TakeOwnedBuffers(), .. quantizer.TakeBuffers()],
            };
        }
        catch
        {
            binder.ReleaseOwnedBuffers();
            quantizer.Release();
            throw;
        }
    }

    private List<NativeBuffer> Owned { init => _owned = value; }

    /// <summary>
    /// On-load quantization of bound matrices (<see cref="ModelLoadOptions.Quantize"/>; without it matrices pass
    /// through as stored). Owns the new buffers until <see cref="TakeBuffers"/>.
    /// </summary>
    private sealed class LoadQuantizer : IDisposable
    {
        private readonly ITensorSource _source;
        private readonly TensorType? _target;
        private readonly ComputeThreadPool? _pool;
        private readonly bool _ownsPool;
        private readonly List<NativeBuffer> _buffers = [];

        public LoadQuantizer(ITensorSource source, ModelLoadOptions options)
        {
            _source = source;
            _target = options.Quantize;
            if (_target is not { } target) return;
            if (!MatrixQuantizer.IsTarget(target))
                throw new ArgumentException($"cannot quantize to {TensorTypeInfo.Name(target)} on load; supported: {string.Join(", ", MatrixQuantizer.Targets.Select(TensorTypeInfo.Name))}", nameof(options));
            _ownsPool = options.Pool == null;
            _pool = options.Pool ?? new ComputeThreadPool();
        }

        public WeightMatrix Apply(string name, WeightMatrix matrix)
        {
            if (_target is not { } target) return matrix;
            if (!MatrixQuantizer.IsFloatSource(matrix.Type))
                throw _source.Error(name, $"tensor '{name}' is already {TensorTypeInfo.Name(matrix.Type)}; quantizing on load needs F32, F16 or BF16 weights");
            var type = MatrixQuantizer.TypeForRowLength(target, matrix.Cols);
            if (type == matrix.Type) return matrix;
            var quantized = MatrixQuantizer.Quantize(matrix, type, _pool, out var buffer);
            _buffers.Add(buffer);
            return quantized;
        }

        public List<NativeBuffer> TakeBuffers()
        {
            var list = new List<NativeBuffer>(_buffers);
            _buffers.Clear();
            Dispose();
            return list;
        }

        public void Release()
        {
            foreach (var b in _buffers) b.Dispose();
            _buffers.Clear();
            Dispose();
        }

        public void Dispose()
        {
            if (_ownsPool) _pool?.Dispose();
        }
    }

    /// <summary>Writes the embedding row of <paramref name="token"/> into <paramref name="destination"/> [dim].</summary>
    public void Embed(int token, float* destination)
    {
        var e = TokenEmbedding;
        QuantRegistry.Kernels(e.Type).Dequantize(e.Row(token), destination, e.Cols);
    }

    public void Dispose()
    {
        foreach (var b in _owned) b.Dispose();
        _owned.Clear();
    }
}
