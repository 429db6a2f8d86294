using LlavaNative.Kernels.Tensors;

namespace LlavaNative.Model.Formats.Conversion;

/// <summary>
/// What <c>llava convert --type</c> asks for: the file's <c>general.file_type</c> and the encoding of each
/// tensor. Float types follow llama.cpp's convert_hf_to_gguf.py (1-D tensors and norms stay F32, every matrix
/// takes the type); quantized types follow llama_model_quantize with default parameters on an F32 file
/// (llama-quant.cpp), so a quantized conversion is the file llama.cpp's quantizer would make from the F32 one:
/// <list type="bullet">
/// <item>only 2-D tensors whose name ends in "weight" and is not a norm are quantized; the rest stay F32;</item>
/// <item>the output matrix (<c>output.weight</c>, or <c>token_embd.weight</c> when the embedding is tied) becomes
/// Q6_K unless the target is Q8_0, or Q8_0 when its rows are not whole blocks of the target;</item>
/// <item>a row length that is not a whole number of blocks falls back: Q6_K → Q8_0, a 32-block type stays,
/// and if that still does not fit, F16.</item>
/// </list>
/// Q4_K_M is llama.cpp's mix for a dense llama / qwen2 model (llama_tensor_get_type_impl): Q4_K by default, the
/// output matrix Q6_K, and Q6_K for <c>attn_v</c> and <c>ffn_down</c> in the layers its <c>use_more_bits</c> picks (the
/// first and last eighth and every third layer between). Its rules for experts, 70B models and Falcon do not
/// apply to these architectures and are not implemented.
/// </summary>
public sealed record GgufOutputType(string Name, TensorType DefaultType, uint FileType, bool MoreBitsMix = false)
{
    public static readonly GgufOutputType F32 = new("f32", TensorType.F32, 0);
    public static readonly GgufOutputType F16 = new("f16", TensorType.F16, 1);
    public static readonly GgufOutputType BF16 = new("bf16", TensorType.BF16, 32);
    public static readonly GgufOutputType Q8_0 = new("q8_0", TensorType.Q8_0, 7);
    public static readonly GgufOutputType Q4_0 = new("q4_0", TensorType.Q4_0, 2);
    public static readonly GgufOutputType Q4_1 = new("q4_1", TensorType.Q4_1, 3);
    public static readonly GgufOutputType Q5_0 = new("q5_0", TensorType.Q5_0, 8);
    public static readonly GgufOutputType Q5_1 = new("q5_1", TensorType.Q5_1, 9);

    public static readonly GgufOutputType Q4_K_M = new("q4_k_m", TensorType.Q4_K, 15, MoreBitsMix: true);

    public static readonly GgufOutputType[] All = [F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K_M];

    public static string SupportedNames => string.Join(", ", All.Select(t => t.Name));

    /// <summary>The type called <paramref name="name"/> (case-insensitive), or an ArgumentException listing the supported ones.</summary>
    public static GgufOutputType Parse(string name) =>
        All.FirstOrDefault(t => string.Equals(t.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new ArgumentException($"output type '{name}' is not supported; supported: {SupportedNames}" +
                                       (name.Contains("_k", StringComparison.OrdinalIgnoreCase)
                                           ? " (other K-quant mixes are not implemented: convert to f32 and quantize with llama.cpp's llama-quantize)" : ""));

    public bool IsQuantized => DefaultType is not (TensorType.F32 or TensorType.F16 or TensorType.BF16);

    /// <summary>
    /// The encoding of the GGUF tensor <paramref name="name"/> with ggml dimensions <paramref name="ne"/>
    /// (<c>ne[0]</c> = row length); <paramref name="isOutput"/> for the LM head (or the tied embedding);
    /// <paramref name="layer"/> of <paramref name="layerCount"/> for a layer's tensor (the Q4_K_M mix depends on it).
    /// </summary>
    public TensorType TypeFor(string name, ReadOnlySpan<long> ne, bool isOutput, int layer = -1, int layerCount = 0)
    {
        if (ne.Length < 2 || name.EndsWith("_norm.weight", StringComparison.Ordinal) || !name.EndsWith("weight", StringComparison.Ordinal))
            return TensorType.F32;
        if (!IsQuantized)
            return DefaultType;

        long rowLength = ne[0];
        TensorType type = DefaultType;
        if (isOutput)
        {
            // llama_tensor_get_type_impl, output tensor: a row that is not whole blocks of the target → Q8_0,
            // otherwise Q6_K, unless the target is Q8_0 already
            if (rowLength % TensorTypeInfo.BlockElements(type) != 0) type = TensorType.Q8_0;
            else if (type != TensorType.Q8_0) type = TensorType.Q6_K;
        }
        else if (MoreBitsMix && layer >= 0 && UseMoreBits(layer, layerCount)
                 && (name.EndsWith(".attn_v.weight", StringComparison.Ordinal) || name.EndsWith(".ffn_down.weight", StringComparison.Ordinal)))
        {
            type = TensorType.Q6_K;
        }
        // tensor_type_fallback
        if (rowLength % TensorTypeInfo.BlockElements(type) != 0)
        {
            type = type switch
            {
                TensorType.Q6_K => TensorType.Q8_0,
                TensorType.Q4_K => TensorType.Q5_0,
                TensorType.Q5_K => TensorType.Q5_1,
                TensorType.Q2_K or TensorType.Q3_K => TensorType.Q4_0,
                _ => type,
            };
            if (rowLength % TensorTypeInfo.BlockElements(type) != 0) type = TensorType.F16;
        }
        return type;
    }

    /// <summary>llama.cpp's use_more_bits: the first and last eighth of the layers, and every third one between.</summary>
    private static bool UseMoreBits(int layer, int layers) =>
        layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2;
}
