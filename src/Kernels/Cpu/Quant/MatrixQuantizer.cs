using System.Runtime.InteropServices;
using LlavaNative.Kernels.Tensors;

namespace LlavaNative.Kernels.Cpu.Quant;

/// <summary>
/// Re-encodes a float weight matrix (F32, F16 or BF16) into a quant type at load time, row by row, in parallel on
/// the compute pool. Each row is widened to F32 exactly and encoded by <see cref="WeightQuantizer"/>, so the
/// bytes are those <c>llama_model_quantize</c> writes (no importance matrix) for the same F32 values.
/// </summary>
public static unsafe class MatrixQuantizer
{
    /// <summary>Targets with a defined row-length fallback (<see cref="TypeForRowLength"/>).</summary>
    public static readonly TensorType[] Targets =
    [
        TensorType.Q8_0, TensorType.Q4_0, TensorType.Q4_1, TensorType.Q5_0, TensorType.Q5_1,
        TensorType.Q4_K, TensorType.Q5_K, TensorType.Q6_K,
    ];

    public static bool IsTarget(TensorType type) => Array.IndexOf(Targets, type) >= 0;

    /// <summary>
    /// The type a matrix with rows of <paramref name="cols"/> elements gets when <paramref name="target"/> is asked
    /// for — llama.cpp's <c>tensor_type_fallback</c>: a 256-element K-quant whose block does not divide the row falls
    /// back to a 32-element type of about the same size (Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0); if that block
    /// does not divide the row either (rows not a multiple of 32), the matrix is stored as F16.
    /// </summary>
    public static TensorType TypeForRowLength(TensorType target, int cols)
    {
        if (!IsTarget(target)) throw new ArgumentException($"{TensorTypeInfo.Name(target)} is not an on-load quantization target; supported: {string.Join(", ", Targets.Select(TensorTypeInfo.Name))}", nameof(target));
        if (cols % TensorTypeInfo.BlockElements(target) == 0) return target;
        var fallback = target switch
        {
            TensorType.Q4_K => TensorType.Q5_0,
            TensorType.Q5_K => TensorType.Q5_1,
            TensorType.Q6_K => TensorType.Q8_0,
            _ => target,
        };
        return cols % TensorTypeInfo.BlockElements(fallback) == 0 ? fallback : TensorType.F16;
    }

    /// <summary>True when <paramref name="type"/> is a float encoding this quantizer reads.</summary>
    public static bool IsFloatSource(TensorType type) => type is TensorType.F32 or TensorType.F16 or TensorType.BF16;

    /// <summary>
    /// <paramref name="source"/> encoded as <paramref name="type"/> in a new buffer (returned in
    /// <paramref name="buffer"/>, owned by the caller); <paramref name="pool"/> may be null (single thread).
    /// </summary>
    public static WeightMatrix Quantize(WeightMatrix source, TensorType type, ComputeThreadPool? pool, out NativeBuffer buffer)
    {
        if (!IsFloatSource(source.Type))
            throw new ArgumentException($"source matrix is {TensorTypeInfo.Name(source.Type)}; only F32, F16 and BF16 matrices are quantized", nameof(source));
        if (source.Cols % TensorTypeInfo.BlockElements(type) != 0)
            throw new ArgumentException($"rows of {source.Cols} elements are not a whole number of {TensorTypeInfo.Name(type)} blocks", nameof(type));
        long rowBytes = TensorTypeInfo.RowBytes(type, source.Cols);
        buffer = new NativeBuffer(checked(rowBytes * source.Rows));
        var job = new RowJob { Source = source, Target = type, Destination = buffer.Pointer, DestinationRowBytes = rowBytes };
        if (pool != null) pool.Run(ref job, source.Rows);
        else job.Execute(0, source.Rows);
        return new WeightMatrix(buffer.Pointer, type, source.Rows, source.Cols);
    }

    private struct RowJob : IRangeJob
    {
        public WeightMatrix Source;
        public TensorType Target;
        public byte* Destination;
        public long DestinationRowBytes;

        public void Execute(int start, int end)
        {
            int cols = Source.Cols;
            bool f32 = Source.Type == TensorType.F32;
            // One F32 row for F16/BF16 sources (load time, not the decode path).
            float* row = f32 ? null : (float*)NativeMemory.Alloc((nuint)cols, sizeof(float));
            try
            {
                var widen = QuantRegistry.Kernels(Source.Type);
                for (int r = start; r < end; r++)
                {
                    float* values = f32 ? (float*)Source.Row(r) : row;
                    if (!f32) widen.Dequantize(Source.Row(r), row, cols);
                    WeightQuantizer.QuantizeRow(Target, values, Destination + r * DestinationRowBytes, cols);
                }
            }
            finally
            {
                if (row != null) NativeMemory.Free(row);
            }
        }
    }
}
