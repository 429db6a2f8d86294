namespace LlavaNative.Kernels.Tensors;

/// <summary>Block geometry of every supported <see cref="TensorType"/> (ggml-common.h layouts).</summary>
public static class TensorTypeInfo
{
    /// <summary>Elements per K-quant super-block.</summary>
    public const int QK_K = 256;

    /// <summary>Elements per legacy quant block.</summary>
    public const int QK = 32;

    /// <summary>True for the types this engine can read (and, for weights, multiply with).</summary>
    public static bool IsKnown(TensorType type) => type switch
    {
        TensorType.F32 or TensorType.F16 or TensorType.BF16 or
        TensorType.Q4_0 or TensorType.Q4_1 or TensorType.Q5_0 or TensorType.Q5_1 or
        TensorType.Q8_0 or TensorType.Q8_1 or
        TensorType.Q2_K or TensorType.Q3_K or TensorType.Q4_K or TensorType.Q5_K or TensorType.Q6_K or
        TensorType.Q8_K or TensorType.IQ4_NL => true,
        _ => false,
    };

    /// <summary>Comma-separated names of the types that may appear in a weight file.</summary>
    public static string SupportedWeightTypeNames =>
        "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL";

    /// <summary>Elements per block (1 for plain float types).</summary>
    public static int BlockElements(TensorType type) => type switch
    {
        TensorType.F32 or TensorType.F16 or TensorType.BF16 => 1,
        TensorType.Q4_0 or TensorType.Q4_1 or TensorType.Q5_0 or TensorType.Q5_1 or
        TensorType.Q8_0 or TensorType.Q8_1 or TensorType.IQ4_NL => QK,
        TensorType.Q2_K or TensorType.Q3_K or TensorType.Q4_K or TensorType.Q5_K or
        TensorType.Q6_K or TensorType.Q8_K => QK_K,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "unknown tensor type"),
    };

    /// <summary>Bytes per block.</summary>
    public static int BlockBytes(TensorType type) => type switch
    {
        TensorType.F32 => 4,
        TensorType.F16 or TensorType.BF16 => 2,
        TensorType.Q4_0 => 18,
        TensorType.Q4_1 => 20,
        TensorType.Q5_0 => 22,
        TensorType.Q5_1 => 24,
        TensorType.Q8_0 => 34,
        TensorType.Q8_1 => 36,
        TensorType.Q2_K => 84,
        TensorType.Q3_K => 110,
        TensorType.Q4_K => 144,
        TensorType.Q5_K => 176,
        TensorType.Q6_K => 210,
        TensorType.Q8_K => 292, // f32 d, i8 qs[256], i16 bsums[16]
        TensorType.IQ4_NL => 18,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "unknown tensor type"),
    };

    /// <summary>Bytes of one row of <paramref name="elements"/> values; the row length must be a whole number of blocks.</summary>
    public static long RowBytes(TensorType type, long elements)
    {
        int be = BlockElements(type);
        if (elements % be != 0)
            throw new ArgumentException($"a row of {elements} elements is not a multiple of the {type} block size {be}");
        return checked(elements / be * BlockBytes(type));
    }

    /// <summary>Name as ggml prints it.</summary>
    public static string Name(TensorType type) => IsKnown(type) ? type.ToString() : $"type {(uint)type} (unknown)";
}
