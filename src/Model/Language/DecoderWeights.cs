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
    public static DecoderWeights FromGguf(GgufFile file, DecoderConfig config) =>
        Bind(new GgufTensorSource(file), DecoderTensorNames.Gguf, config);

    /// <summary>
    /// Binds the decoder of <paramref name="config"/> from <paramref name="source"/> under the names of
    /// <paramref name="names"/>, checking every shape ([out, in] matrices, [n] vectors). q/k/v biases are bound
    /// when present and required when <paramref name="requireAttentionBias"/>. The LM head is the token embedding
    /// when <paramref name="tieLmHead"/> or when the source has no LM head tensor.
    /// </summary>
    public static DecoderWeights Bind(ITensorSource source, DecoderTensorNames names, DecoderConfig config,
        bool requireAttentionBias = false, bool tieLmHead = false)
    {
        var binder = new WeightBinder(source);
        try
        {
            int dim = config.Dim, qDim = config.QueryDim, kvDim = config.KvDim, ffn = config.FeedForward;
            var layers = new DecoderLayerWeights[config.Layers];
            for (int l = 0; l < config.Layers; l++)
            {
                string Name(string tensor) => names.Layer(l, tensor);
                float* Bias(string tensor, int n) => requireAttentionBias ? binder.Vector(Name(tensor), n) : binder.OptionalVector(Name(tensor), n);
                layers[l] = new DecoderLayerWeights
                {
                    AttentionNorm = binder.Vector(Name(names.AttentionNorm), dim),
                    Query = binder.Matrix(Name(names.Query), qDim, dim),
                    Key = binder.Matrix(Name(names.Key), kvDim, dim),
                    Value = binder.Matrix(Name(names.Value), kvDim, dim),
                    QueryBias = Bias(names.QueryBias, qDim),
                    KeyBias = Bias(names.KeyBias, kvDim),
                    ValueBias = Bias(names.ValueBias, kvDim),
                    Output = binder.Matrix(Name(names.Output), dim, qDim),
                    FeedForwardNorm = binder.Vector(Name(names.FeedForwardNorm), dim),
                    Gate = binder.Matrix(Name(names.Gate), ffn, dim),
                    Up = binder.Matrix(Name(names.Up), ffn, dim),
                    Down = binder.Matrix(Name(names.Down), dim, ffn),
                };
            }
            var embedding = binder.Matrix(names.TokenEmbedding, config.VocabSize, dim);
            bool tied = tieLmHead || !binder.Has(names.LmHead);
            return new DecoderWeights
            {
                TokenEmbedding = embedding,
                Layers = layers,
                OutputNorm = binder.Vector(names.OutputNorm, dim),
                LmHead = tied ? embedding : binder.Matrix(names.LmHead, config.VocabSize, dim),
                TiedEmbeddings = tied,
                Owned = binder.TakeOwnedBuffers(),
            };
        }
        catch
        {
            binder.ReleaseOwnedBuffers();
            throw;
        }
    }

    private List<NativeBuffer> Owned { init => _owned = value; }

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
