using LlavaNative.Kernels.Tensors;

namespace LlavaNative.Model.Formats;

/// <summary>
/// One stored tensor as a weight binder sees it, whatever the file format: shape in PyTorch order
/// (<c>Shape[0]</c> outermost, the last dimension contiguous; GGUF's reversed <c>ne</c> is turned around),
/// encoding and a pointer to the bytes in the mapped file.
/// </summary>
public readonly unsafe struct TensorView
{
    public required string Name { get; init; }

    /// <summary>The engine's encoding of the data, or null when the file's element type has none (e.g. I64).</summary>
    public required TensorType? Type { get; init; }

    /// <summary>The file's own name of the element type ("BF16", "I64", "Q4_K", ...), for messages.</summary>
    public required string TypeName { get; init; }

    /// <summary>Dimensions, outermost first: a Linear weight is <c>[out, in]</c>.</summary>
    public required long[] Shape { get; init; }

    public required byte* Data { get; init; }
    public required long ByteSize { get; init; }

    public long ElementCount
    {
        get
        {
            long n = 1;
            foreach (long d in Shape) n *= d;
            return n;
        }
    }

    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}

/// <summary>
/// A set of named tensors (one GGUF file, a safetensors checkpoint of one or more shards). Errors it creates
/// name the file that holds (or should hold) a tensor, in the format's own exception type.
/// </summary>
public interface ITensorSource
{
    bool TryGetTensor(string name, out TensorView tensor);

    /// <summary>
    /// An exception for a problem with <paramref name="tensorName"/> (null: with the source as a whole), whose
    /// message names the file concerned.
    /// </summary>
    ModelFormatException Error(string? tensorName, string problem);

    /// <summary>A shape given outermost first, written the way this format's tools print it.</summary>
    string DescribeShape(ReadOnlySpan<long> shape) => "[" + string.Join(", ", shape.ToArray()) + "]";
}

/// <summary>A tensor source that owns open (mapped) files: a whole checkpoint, disposed with the model.</summary>
public interface ITensorCheckpoint : ITensorSource, IDisposable
{
    /// <summary>The checkpoint's file (the index for a sharded one), for messages.</summary>
    string Path { get; }

    /// <summary>Every tensor name in the checkpoint.</summary>
    IReadOnlyCollection<string> TensorNames { get; }
}
