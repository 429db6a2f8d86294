namespace LlavaNative.Model.Formats.Gguf;

/// <summary>Metadata value types of the GGUF container (gguf.h <c>gguf_type</c>).</summary>
public enum GgufValueType : uint
{
    UInt8 = 0,
    Int8 = 1,
    UInt16 = 2,
    Int16 = 3,
    UInt32 = 4,
    Int32 = 5,
    Float32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    UInt64 = 10,
    Int64 = 11,
    Float64 = 12,
}

/// <summary>
/// A GGUF metadata value. Scalars are boxed CLR primitives (byte, sbyte, ushort, short, uint, int, float,
/// bool, string, ulong, long, double); arrays are <see cref="GgufArray"/>.
/// </summary>
public sealed record GgufValue(GgufValueType Type, object Value)
{
    public override string ToString() => Value switch
    {
        string s => s.Length > 80 ? $"\"{s[..77]}...\"" : $"\"{s}\"",
        GgufArray a => a.ToString(),
        _ => Convert.ToString(Value, System.Globalization.CultureInfo.InvariantCulture) ?? "",
    };
}

/// <summary>
/// A GGUF array: <see cref="Items"/> is a typed CLR array (<c>string[]</c>, <c>int[]</c>, <c>float[]</c>, …) or,
/// for nested arrays, <c>GgufArray[]</c>.
/// </summary>
public sealed record GgufArray(GgufValueType ElementType, Array Items)
{
    public int Length => Items.Length;

    public override string ToString()
    {
        const int shown = 6;
        var parts = new List<string>();
        for (int i = 0; i < Math.Min(shown, Items.Length); i++)
        {
            object? item = Items.GetValue(i);
            parts.Add(item is string s ? $"\"{s}\"" : Convert.ToString(item, System.Globalization.CultureInfo.InvariantCulture) ?? "");
        }
        string more = Items.Length > shown ? $", … ({Items.Length} items)" : "";
        return $"[{string.Join(", ", parts)}{more}]";
    }
}
