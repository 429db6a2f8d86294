using LlavaNative.Kernels.Cpu.Quant;
using LlavaNative.Kernels.Tensors;

namespace LlavaNative.Model.Formats;

/// <summary>
/// Resolves tensors of an <see cref="ITensorSource"/> by name into what the forward passes use, checking
/// shape and encoding: matrices stay in the mapped file in their stored encoding (F32, F16, BF16 or a quant
/// type; PyTorch <c>[out, in]</c> is exactly <see cref="WeightMatrix"/> rows × cols), vectors (norms, biases)
/// become F32 — used in place when stored as F32, otherwise converted once into a buffer this binder owns
/// until <see cref="TakeOwnedBuffers"/> hands them over.
/// </summary>
public sealed unsafe class WeightBinder(ITensorSource source)
{
    private readonly List<NativeBuffer> _owned = [];

    public ITensorSource Source => source;

    public bool Has(string name) => source.TryGetTensor(name, out _);

    /// <summary>The tensor called <paramref name="name"/>, or an error naming the file and tensor.</summary>
    public TensorView Get(string name) =>
        source.TryGetTensor(name, out var t) ? t : throw source.Error(name, $"required tensor '{name}' is missing");

    /// <summary>A 2-D weight of <paramref name="rows"/> outputs × <paramref name="cols"/> inputs.</summary>
    public WeightMatrix Matrix(string name, int rows, int cols)
    {
        var t = Get(name);
        if (t.Shape.Length != 2 || t.Shape[0] != rows || t.Shape[1] != cols)
            throw source.Error(name, $"tensor '{name}' has shape {source.DescribeShape(t.Shape)}, expected {source.DescribeShape([rows, cols])}");
        var type = WeightType(t);
        return new WeightMatrix(t.Data, type, rows, cols);
    }

    /// <summary>A vector of <paramref name="n"/> values as F32.</summary>
    public float* Vector(string name, int n)
    {
        var t = Get(name);
        // Trailing dimension n and nothing else (a GGUF [n, 1] reads as [1, n] here).
        if (t.Shape.Length == 0 || t.Shape[^1] != n || t.ElementCount != n)
            throw source.Error(name, $"tensor '{name}' has shape {source.DescribeShape(t.Shape)}, expected {source.DescribeShape([n])}");
        var type = WeightType(t);
        if (type == TensorType.F32) return (float*)t.Data;
        var buffer = NativeBuffer.Floats(n);
        _owned.Add(buffer);
        QuantRegistry.Kernels(type).Dequantize(t.Data, buffer.Floats(), n);
        return buffer.Floats();
    }

    /// <summary>
    /// A tensor of exactly <paramref name="shape"/> (outermost first) as F32 in its stored element order: in place
    /// when stored as F32, else converted once (embedding tables and conv kernels that are added, not multiplied).
    /// </summary>
    public float* Floats(string name, params long[] shape)
    {
        var t = Get(name);
        if (!t.Shape.AsSpan().SequenceEqual(shape))
            throw source.Error(name, $"tensor '{name}' has shape {source.DescribeShape(t.Shape)}, expected {source.DescribeShape(shape)}");
        var type = WeightType(t);
        if (type == TensorType.F32) return (float*)t.Data;
        long n = t.ElementCount;
        int row = t.Shape.Length == 0 ? 1 : checked((int)t.Shape[^1]);
        long rowBytes = TensorTypeInfo.RowBytes(type, row);
        var buffer = NativeBuffer.Floats(n);
        _owned.Add(buffer);
        var kernels = QuantRegistry.Kernels(type);
        float* dst = buffer.Floats();
        for (long r = 0; r < n / row; r++) kernels.Dequantize(t.Data + r * rowBytes, dst + r * row, row);
        return dst;
    }

    /// <summary><see cref="Vector"/> when the tensor exists, else null.</summary>
    public float* OptionalVector(string name, int n) => Has(name) ? Vector(name, n) : null;

    /// <summary>Buffers made by <see cref="Vector"/> conversions; the caller disposes them with the weights.</summary>
    public List<NativeBuffer> TakeOwnedBuffers()
    {
        var list = new List<NativeBuffer>(_owned);
        _owned.Clear();
        return list;
    }

    /// <summary>Disposes conversion buffers not yet taken (after a failed bind).</summary>
    public void ReleaseOwnedBuffers()
    {
        foreach (var b in _owned) b.Dispose();
        _owned.Clear();
    }

    private TensorType WeightType(TensorView t)
    {
        if (t.Type is not { } type || !TensorTypeInfo.IsKnown(type))
            throw source.Error(t.Name, $"tensor '{t.Name}' has element type {t.TypeName}, which is not a weight encoding; supported: {TensorTypeInfo.SupportedWeightTypeNames}");
        if (type is TensorType.Q8_1 or TensorType.Q8_K)
            throw source.Error(t.Name, $"tensor '{t.Name}' has type {type}, which is an activation format, not a weight format; supported: {TensorTypeInfo.SupportedWeightTypeNames}");
        return type;
    }
}
