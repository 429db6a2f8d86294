using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using LlavaNative.Kernels.Cpu;
using LlavaNative.Kernels.Cpu.Ops;
using LlavaNative.Kernels.Cpu.Quant;
using LlavaNative.Kernels.Tensors;
using LlavaNative.TestSupport;

namespace LlavaNative.Benchmarks;

/// <summary>
/// Decode mat-vec (one token) per weight type at the Qwen2-0.5B FFN shapes: ffn_up/gate [4864 × 896] and
/// ffn_down [896 × 4864]. The weights cycle through enough copies (≈ 160 MB) that every call streams from
/// DRAM as in real decoding; the reported bytes/op give GB/s.
/// dotnet run -c Release --project benchmarks/LlavaNative.Benchmarks -- --filter '*MatVec*' --job short
/// Narrow the grid with LLAVA_BENCH_TYPES=Q4_0,Q8_0 LLAVA_BENCH_SHAPES=896x4864 LLAVA_BENCH_THREADS=1.
/// A shape whose column count is not a whole number of the type's blocks (896 for K-quants) is run transposed.
/// </summary>
[MemoryDiagnoser]
public unsafe class MatVecBenchmarks
{
    [ParamsSource(nameof(TypeValues))]
    public TensorType Type { get; set; }

    [ParamsSource(nameof(ShapeValues))]
    public string Shape { get; set; } = "896x4864";

    [ParamsSource(nameof(ThreadValues))]
    public int Threads { get; set; }

    public static IEnumerable<TensorType> TypeValues => FromEnvironment("LLAVA_BENCH_TYPES",
        [TensorType.Q4_0, TensorType.Q8_0, TensorType.Q4_K, TensorType.Q6_K, TensorType.Q5_0, TensorType.F16], s => Enum.Parse<TensorType>(s, true));

    public static IEnumerable<string> ShapeValues => FromEnvironment("LLAVA_BENCH_SHAPES", ["4864x896", "896x4864"], s => s);

    public static IEnumerable<int> ThreadValues => FromEnvironment("LLAVA_BENCH_THREADS", [1, 2], int.Parse);

    private static IEnumerable<T> FromEnvironment<T>(string variable, T[] defaults, Func<string, T> parse)
    {
        string? value = Environment.GetEnvironmentVariable(variable);
        return string.IsNullOrWhiteSpace(value) ? defaults : value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(parse).ToArray();
    }

    private WeightSet _weights = null!;
    private ComputeThreadPool _pool = null!;
    private float* _x, _y;
    private byte* _scratch;
    private int _next;

    [GlobalSetup]
    public void Setup()
    {
        var parts = Shape.Split('x');
        int rows = int.Parse(parts[0]), cols = int.Parse(parts[1]);
        if (cols % TensorTypeInfo.BlockElements(Type) != 0) (rows, cols) = (cols, rows); // K-quants need cols % 256 == 0
        _weights = new WeightSet(Type, rows, cols, 160L << 20, new Random(1));
        _pool = new ComputeThreadPool(Threads);
        _x = (float*)NativeMemory.AlignedAlloc((nuint)_weights.Cols * 4, 64);
        _y = (float*)NativeMemory.AlignedAlloc((nuint)_weights.Rows * 4, 64);
        _scratch = (byte*)NativeMemory.AlignedAlloc((nuint)Math.Max(64, MatMul.ScratchBytes(Type, _weights.Cols, 1)), 64);
        float[] x = QuantTestData.RandomActivations(_weights.Cols, new Random(2));
        for (int i = 0; i < x.Length; i++) _x[i] = x[i];
    }

    /// <summary>Weight bytes streamed per call (for GB/s: this ÷ the mean time).</summary>
    public long WeightBytes => _weights.MatrixBytes;

    [Benchmark]
    public void MatVec()
    {
        var w = _weights.Matrix(_next++);
        MatMul.Compute(_pool, w, _x, 1, _y, _scratch);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _pool.Dispose();
        _weights.Dispose();
        NativeMemory.AlignedFree(_x);
        NativeMemory.AlignedFree(_y);
        NativeMemory.AlignedFree(_scratch);
    }
}

/// <summary>Copies of one random weight matrix, enough to exceed the last-level cache when cycled.</summary>
public sealed unsafe class WeightSet : IDisposable
{
    public TensorType Type { get; }
    public int Rows { get; }
    public int Cols { get; }
    public long MatrixBytes { get; }
    public int Copies { get; }
    private readonly byte* _data;

    public WeightSet(TensorType type, int rows, int cols, long targetBytes, Random rng)
    {
        Type = type; Rows = rows; Cols = cols;
        MatrixBytes = TensorTypeInfo.RowBytes(type, cols) * rows;
        Copies = (int)Math.Max(1, (targetBytes + MatrixBytes - 1) / MatrixBytes);
        _data = (byte*)NativeMemory.AlignedAlloc((nuint)(MatrixBytes * Copies), 64);
        long rowBytes = TensorTypeInfo.RowBytes(type, cols);
        for (int r = 0; r < rows; r++)
        {
            byte[] row = QuantTestData.RandomRow(type, cols, rng, realistic: true);
            fixed (byte* p = row) Buffer.MemoryCopy(p, _data + r * rowBytes, rowBytes, rowBytes);
        }
        for (int c = 1; c < Copies; c++) Buffer.MemoryCopy(_data, _data + c * MatrixBytes, MatrixBytes, MatrixBytes);
    }

    public WeightMatrix Matrix(int index) => new(_data + (long)(index % Copies) * MatrixBytes, Type, Rows, Cols);

    public void Dispose() => NativeMemory.AlignedFree(_data);
}
