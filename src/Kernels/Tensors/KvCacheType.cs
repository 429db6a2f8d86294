namespace LlavaNative.Kernels.Tensors;

/// <summary>
/// How the K and V rows of a decoder's cache are stored (llama.cpp's <c>-ctk</c> / <c>-ctv</c>, with the same
/// names). The attention reads the rows back in this type and computes in F32 either way.
/// </summary>
public enum KvCacheType
{
    /// <summary>4 bytes per value: the rows exactly as computed.</summary>
    F32,
    /// <summary>
    /// 2 bytes per value (half the memory and the attention's cache traffic): IEEE binary16, rounded to nearest even
    /// from F32 as ggml's F32 → F16 copy does; |values| above 65504 become ±inf.
    /// </summary>
    F16,
}

public static class KvCacheTypes
{
    /// <summary>Bytes of one cached value.</summary>
    public static int BytesPerValue(KvCacheType type) => type switch
    {
        KvCacheType.F32 => 4,
        KvCacheType.F16 => 2,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "KV cache type must be F32 or F16"),
    };

    /// <summary>"f32" / "f16" (llama.cpp's spelling on the command line).</summary>
    public static string Name(KvCacheType type) => type switch
    {
        KvCacheType.F32 => "f32",
        KvCacheType.F16 => "f16",
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "KV cache type must be F32 or F16"),
    };
}
