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
/// </summary>
[MemoryDiagnoser]
public unsafe class MatVecBenchmarks
{
    [Params(TensorType.Q4_0, TensorType.Q8_0, TensorType.Q4_K, TensorType.Q6_K, TensorType.Q5_0, TensorType.F16)]
    public TensorType Type { get; set; }

    [Params("4864x896", "896x4864")]
    public string Shape { get; set; } = "4864x896";

    [Params(1, 2)]
    public int Threads { get; set; }

    private WeightSet _weights = null!;
    private ComputeThreadPool _pool = null!;
    private float* _x, _y;
    private byte* _scratch;
    private int _next;

    [GlobalSetup]
    public void Setup()
    {
        var parts = Shape.Split('x');
        _weights = new WeightSet(Type, int.Parse(parts[0]), int.Parse(parts[1]), 160L << 20, new Random(1));
        _pool = new ComputeThreadPool(Threads);
        _x = (float*)NativeMemory.AlignedAlloc((nuint)_weights.Cols * 4, 64);
        _y = (float*)NativeMemory.AlignedAlloc((nuint)_weights.Rows * 4, 64);
        _scratch = (byte*)NativeMemory.AlignedAlloc((nuint)Math.Max(64, MatMul.ScratchBytes(Type, _weights.Cols, 1)), 64);
        float[] x = QuantTestData.RandomActivations(_weights.Cols, new Random(2));
        for (int i = 0; i < x.Length; i++) _x[i] = x[i];
    }

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
