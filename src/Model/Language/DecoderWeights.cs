using LlavaNative.Kernels.Cpu.Quant;
using LlavaNative.Kernels.Tensors;
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
    public static DecoderWeights FromGguf(GgufFile file, DecoderConfig config)
    {
        var owned = new List<NativeBuffer>();
        var binder = new GgufBinder(file, owned);
        int dim = config.Dim, qDim = config.QueryDim, kvDim = config.KvDim, ffn = config.FeedForward;
        var layers = new DecoderLayerWeights[config.Layers];
        for (int l = 0; l < config.Layers; l++)
        {
            string p = $"blk.{l}.";
            layers[l] = new DecoderLayerWeights
            {
                AttentionNorm = binder.Vector(p + "attn_norm.weight", dim),
                Query = binder.Matrix(p + "attn_q.weight", qDim, dim),
                Key = binder.Matrix(p + "attn_k.weight", kvDim, dim),
                Value = binder.Matrix(p + "attn_v.weight", kvDim, dim),
                QueryBias = binder.OptionalVector(p + "attn_q.bias", qDim),
                KeyBias = binder.OptionalVector(p + "attn_k.bias", kvDim),
                ValueBias = binder.OptionalVector(p + "attn_v.bias", kvDim),
                Output = binder.Matrix(p + "attn_output.weight", dim, qDim),
                FeedForwardNorm = binder.Vector(p + "ffn_norm.weight", dim),
                Gate = binder.Matrix(p + "ffn_gate.weight", ffn, dim),
                Up = binder.Matrix(p + "ffn_up.weight", ffn, dim),
                Down = binder.Matrix(p + "ffn_down.weight", dim, ffn),
            };
        }
        var embedding = binder.Matrix("token_embd.weight", config.VocabSize, dim);
        bool tied = !file.HasTensor("output.weight");
        return new DecoderWeights
        {
            TokenEmbedding = embedding,
            Layers = layers,
            OutputNorm = binder.Vector("output_norm.weight", dim),
            LmHead = tied ? embedding : binder.Matrix("output.weight", config.VocabSize, dim),
            TiedEmbeddings = tied,
            Owned = owned,
        };
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

    /// <summary>Resolves GGUF tensors by name with shape and type checks; converts small vectors to F32.</summary>
    private sealed class GgufBinder(GgufFile file, List<NativeBuffer> owned)
    {
        public WeightMatrix Matrix(string name, int rows, int cols)
        {
            var t = file.GetTensor(name);
            if (t.Dimensions.Length != 2 || t.Dimensions[0] != cols || t.Dimensions[1] != rows)
                throw new GgufFormatException(file.Path, $"tensor '{name}' has shape {t.ShapeText}, expected [{cols}, {rows}]");
            if (t.Type is TensorType.Q8_1 or TensorType.Q8_K)
                throw new GgufFormatException(file.Path, $"tensor '{name}' has type {t.Type}, which is an activation format, not a weight format; supported: {TensorTypeInfo.SupportedWeightTypeNames}");
            return new WeightMatrix(t.Data, t.Type, rows, cols);
        }

        public float* Vector(string name, int n)
        {
            var t = file.GetTensor(name);
            if (t.ElementCount != n || t.Dimensions[0] != n)
                throw new GgufFormatException(file.Path, $"tensor '{name}' has shape {t.ShapeText}, expected [{n}]");
            if (t.Type == TensorType.F32) return (float*)t.Data;
            var buffer = NativeBuffer.Floats(n);
            owned.Add(buffer);
            QuantRegistry.Kernels(t.Type).Dequantize(t.Data, buffer.Floats(), n);
            return buffer.Floats();
        }

        public float* OptionalVector(string name, int n) => file.HasTensor(name) ? Vector(name, n) : null;
    }
}
