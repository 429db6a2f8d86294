using LlavaNative.Kernels.Tensors;

namespace LlavaNative.Model.Formats.Safetensors;

/// <summary>
/// Element types of the safetensors format (the header's <c>"dtype"</c> strings). All are little-endian and
/// whole bytes; the sub-byte float types of newer files (F4, F6_*) are not supported.
/// </summary>
public enum SafetensorsDType
{
    BOOL,
    U8,
    I8,
    F8_E5M2,
    F8_E4M3,
    F8_E8M0,
    I16,
    U16,
    F16,
    BF16,
    I32,
    U32,
    F32,
    F64,
    I64,
    U64,
}

public static class SafetensorsDTypes
{
    private static readonly Dictionary<string, SafetensorsDType> ByName =
        Enum.GetValues<SafetensorsDType>().ToDictionary(t => t.ToString(), StringComparer.Ordinal);

    /// <summary>The dtype strings this reader knows, for error messages.</summary>
    public static string SupportedNames => string.Join(", ", Enum.GetNames<SafetensorsDType>());

    /// <summary>Parses a header dtype string (case-sensitive, as the format writes them).</summary>
    public static bool TryParse(string name, out SafetensorsDType dtype) => ByName.TryGetValue(name, out dtype);

    public static int ElementBytes(SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.BOOL or SafetensorsDType.U8 or SafetensorsDType.I8 or
        SafetensorsDType.F8_E5M2 or SafetensorsDType.F8_E4M3 or SafetensorsDType.F8_E8M0 => 1,
        SafetensorsDType.I16 or SafetensorsDType.U16 or SafetensorsDType.F16 or SafetensorsDType.BF16 => 2,
        SafetensorsDType.I32 or SafetensorsDType.U32 or SafetensorsDType.F32 => 4,
        SafetensorsDType.F64 or SafetensorsDType.I64 or SafetensorsDType.U64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown safetensors dtype"),
    };

    /// <summary>The engine encoding with the same bytes (F32, F16, BF16), or null for the other dtypes.</summary>
    public static TensorType? ToTensorType(SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.F32 => TensorType.F32,
        SafetensorsDType.F16 => TensorType.F16,
        SafetensorsDType.BF16 => TensorType.BF16,
        _ => null,
    };

    /// <summary>The dtype holding a <see cref="TensorType"/>'s bytes; only plain float types have one.</summary>
    public static SafetensorsDType FromTensorType(TensorType type) => type switch
    {
        TensorType.F32 => SafetensorsDType.F32,
        TensorType.F16 => SafetensorsDType.F16,
        TensorType.BF16 => SafetensorsDType.BF16,
        _ => throw new ArgumentException($"{TensorTypeInfo.Name(type)} has no safetensors dtype (safetensors stores plain element types only)", nameof(type)),
    };
}
