using LlavaNative.Kernels.Cpu.Quant;
using LlavaNative.Kernels.Tensors;
using LlavaNative.Model.Formats.Gguf;

namespace LlavaNative.Model.Vision;

/// <summary>
/// Resolves mmproj GGUF tensors by name with shape and type checks. Matrices stay in the mapped file in their
/// stored type; vectors and tables that are added rather than multiplied (norms, biases, embeddings) are
/// returned as F32, converted once into buffers this binder records in <c>owned</c>. Every problem is a
/// <see cref="GgufFormatException"/> naming the file, the tensor, its shape and what was expected.
/// </summary>
internal sealed unsafe class MmprojTensorBinder(GgufFile file, List<NativeBuffer> owned)
{
    public GgufFile File => file;

    public bool Has(string name) => file.HasTensor(name);

    public GgufTensorInfo Get(string name) => file.GetTensor(name);

    public GgufFormatException Error(string problem) => new(file.Path, problem);

    /// <summary>A weight <c>ne = [cols, rows]</c> (PyTorch Linear [rows, cols]) of any supported weight type.</summary>
    public WeightMatrix Matrix(string name, int rows, int cols)
    {
        var t = file.GetTensor(name);
        CheckWeightType(t);
        if (t.Dimensions.Length != 2 || t.Dimensions[0] != cols || t.Dimensions[1] != rows)
            throw Error($"tensor '{name}' has shape {t.ShapeText}, expected [{cols}, {rows}]");
        return new WeightMatrix(t.Data, t.Type, rows, cols);
    }

    /// <summary>A vector of <paramref name="n"/> values, as F32.</summary>
    public float* Vector(string name, int n)
    {
        var t = file.GetTensor(name);
        if (t.Dimensions[0] != n || t.ElementCount != n)
            throw Error($"tensor '{name}' has shape {t.ShapeText}, expected [{n}]");
        return AsFloats(t);
    }

    public float* OptionalVector(string name, int n) => file.HasTensor(name) ? Vector(name, n) : null;

    /// <summary>
    /// A tensor with exactly the ggml dimensions <paramref name="ne"/>, as F32 in its stored element order
    /// (row-major with <c>ne[0]</c> contiguous).
    /// </summary>
    public float* Floats(string name, params long[] ne)
    {
        var t = file.GetTensor(name);
        if (!t.Dimensions.AsSpan().SequenceEqual(ne))
            throw Error($"tensor '{name}' has shape {t.ShapeText}, expected [{string.Join(", ", ne)}]");
        return AsFloats(t);
    }

    private void CheckWeightType(GgufTensorInfo t)
    {
        if (t.Type is TensorType.Q8_1 or TensorType.Q8_K)
            throw Error($"tensor '{t.Name}' has type {t.Type}, which is an activation format, not a weight format; supported: {TensorTypeInfo.SupportedWeightTypeNames}");
    }

    /// <summary>The tensor's values as F32: in place when stored as F32, else converted row by row (rows of ne[0]).</summary>
    private float* AsFloats(GgufTensorInfo t)
    {
        if (t.Type == TensorType.F32) return (float*)t.Data;
        CheckWeightType(t);
        var buffer = NativeBuffer.Floats(t.ElementCount);
        owned.Add(buffer);
        var kernels = QuantRegistry.Kernels(t.Type);
        int rowElements = checked((int)t.Dimensions[0]);
        long rowBytes = TensorTypeInfo.RowBytes(t.Type, rowElements);
        long rows = t.ElementCount / rowElements;
        float* dst = buffer.Floats();
        for (long r = 0; r < rows; r++)
            kernels.Dequantize(t.Data + r * rowBytes, dst + r * rowElements, rowElements);
        return dst;
    }
}
