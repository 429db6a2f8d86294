namespace LlavaNative.Kernels.Tensors;

/// <summary>
/// A 2-D weight in row-major order: <see cref="Rows"/> output features, each a contiguous run of
/// <see cref="Cols"/> input features in <see cref="Type"/> encoding (ggml <c>ne = [Cols, Rows]</c>,
/// PyTorch <c>Linear.weight [Rows, Cols]</c>). The data usually points into a memory-mapped file.
/// </summary>
public readonly unsafe struct WeightMatrix
{
    public byte* Data { get; }
    public TensorType Type { get; }
    public int Rows { get; }
    public int Cols { get; }
    public long RowBytes { get; }

    public WeightMatrix(byte* data, TensorType type, int rows, int cols)
    {
        Data = data;
        Type = type;
        Rows = rows;
        Cols = cols;
        RowBytes = TensorTypeInfo.RowBytes(type, cols);
    }

    /// <summary>Pointer to the start of row <paramref name="row"/>.</summary>
    public byte* Row(int row) => Data + row * RowBytes;
}
