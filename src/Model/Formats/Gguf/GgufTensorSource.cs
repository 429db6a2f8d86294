namespace LlavaNative.Model.Formats.Gguf;

/// <summary>
/// A GGUF file as an <see cref="ITensorSource"/>: ggml's <c>ne</c> (innermost first) is reversed into the
/// PyTorch order binders check, so <c>ne [in, out]</c> reads as <c>[out, in]</c>.
/// </summary>
public sealed class GgufTensorSource(GgufFile file) : ITensorSource
{
    public GgufFile File => file;

    public unsafe bool TryGetTensor(string name, out TensorView tensor)
    {
        var t = file.FindTensor(name);
        if (t is null)
        {
            tensor = default;
            return false;
        }
        var shape = new long[t.Dimensions.Length];
        for (int d = 0; d < shape.Length; d++) shape[d] = t.Dimensions[^(d + 1)];
        tensor = new TensorView
        {
            Name = t.Name, Type = t.Type, TypeName = Kernels.Tensors.TensorTypeInfo.Name(t.Type), Shape = shape,
            Data = t.Data, ByteSize = t.ByteSize,
        };
        return true;
    }

    public ModelFormatException Error(string? tensorName, string problem) => new GgufFormatException(file.Path, problem);

    /// <summary>ggml order, as gguf tools print it: <c>ne [in, out]</c>.</summary>
    public string DescribeShape(ReadOnlySpan<long> shape)
    {
        var ne = shape.ToArray();
        Array.Reverse(ne);
        return "ne [" + string.Join(", ", ne) + "]";
    }
}
