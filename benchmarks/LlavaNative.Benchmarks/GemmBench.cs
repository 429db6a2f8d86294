using System.Runtime.InteropServices;
using LlavaNative.Kernels.Cpu;
using LlavaNative.Kernels.Cpu.Ops;
using LlavaNative.Kernels.Cpu.Quant;
using LlavaNative.Kernels.Tensors;
using LlavaNative.TestSupport;

namespace LlavaNative.Benchmarks;

/// <summary>
/// The packed GEMM at vision-tower shapes, in GFLOP/s: the microkernel alone on operands that stay in cache (one
/// thread, thread CPU time, against the 2 × 16 × 2 flops/cycle peak of an AVX-512 core), then whole products of 577
/// tokens, packed GEMM vs the previous path (<see cref="MatMul"/> with the packed GEMM switched off), interleaved.
/// dotnet run -c Release --project benchmarks/LlavaNative.Benchmarks -- gemm [rounds] [GHz]
/// </summary>
public static unsafe class GemmBench
{
    public static void Run(string[] args)
    {
        int rounds = args.Length > 0 ? int.Parse(args[0]) : 7;
        double ghz = args.Length > 1 ? double.Parse(args[1]) : 2.5;
        Console.WriteLine($"packed GEMM, tile {PackedGemm.TileTokens}x{PackedGemm.TileRows}, load average before: {File.ReadAllText("/proc/loadavg").Trim()}");
        Microkernel(rounds, ghz);
        using var one = new ComputeThreadPool(1);
        using var two = new ComputeThreadPool(2);
        foreach (var type in new[] { TensorType.F32, TensorType.F16 })
            foreach (var (rows, cols) in new[] { (1024, 1024), (4096, 1024), (1024, 4096), (4304, 1152), (1152, 4304), (1040, 1024) })
                if (args.Length < 3 || args[2] == $"{rows}x{cols}")
                    Product(type, rows, cols, args.Length > 3 ? int.Parse(args[3]) : 577, rounds, one, two);
        foreach (var (tokens, headDim) in new[] { (577, 64), (729, 72) })
            if (args.Length < 3 || args[2] == $"attention{tokens}")
                AttentionSpeed(tokens, 16, headDim, rounds, one);
        Console.WriteLine($"load average after: {File.ReadAllText("/proc/loadavg").Trim()}");
    }

    /// <summary>Vision attention (all tokens see all tokens): <see cref="GemmAttention"/> vs <see cref="Attention"/>, one thread.</summary>
    private static void AttentionSpeed(int tokens, int heads, int headDim, int rounds, ComputeThreadPool one)
    {
        var rng = new Random(tokens);
        int d = heads * headDim;
        float* q = Floats((long)tokens * d, rng), k = Floats((long)tokens * d, rng), v = Floats((long)tokens * d, rng), o = Floats((long)tokens * d, rng);
        float* scratch = Floats(GemmAttention.ScratchFloats(tokens, heads, headDim, one.ThreadCount), rng);
        var problem = new Attention.Problem
        {
            Q = q, K = k, V = v, Output = o, Tokens = tokens, Heads = heads, KvHeads = heads, HeadDim = headDim,
            KvStride = d, KeyCount = tokens, Causal = false, Scale = 1f / MathF.Sqrt(headDim),
        };
        double[] t = KernelAb.Interleaved([
            ("previous", () => Attention.Compute(one, problem)),
            ("gemm", () => GemmAttention.Compute(one, problem, scratch))], rounds, threadCpuTime: true);
        double flops = 4.0 * tokens * tokens * d;
        Console.WriteLine($"attention {tokens} tokens × {heads} heads × {headDim}, 1 thread, CPU time: previous {flops / t[0] / 1e9,6:F1} GFLOP/s, GEMM {flops / t[1] / 1e9,6:F1} GFLOP/s ({t[0] / t[1]:F2}x)");
    }

    private static void Microkernel(int rounds, double ghz)
    {
        // 24 tokens × 32 rows × K 128: 12 KB + 16 KB of packed operands, both in L1.
        const int tokens = 24, rows = 32, k = 128, repeats = 6400;
        var rng = new Random(1);
        float* x = Floats(PackedGemm.PackedActivationFloats(tokens, k), rng);
        float* w = Floats(PackedGemm.PackedWeightFloats(rows, k), rng);
        float* y = Floats((long)tokens * rows, rng);
        double[] t = KernelAb.Interleaved([("microkernel", () => { for (int i = 0; i < repeats; i++) PackedGemm.MultiplyPacked(x, tokens, w, rows, k, y, rows); })], rounds, threadCpuTime: true);
        double gflops = 2.0 * tokens * rows * k * repeats / t[0] / 1e9;
        int lanes = PackedGemm.TileRows == 32 ? 16 : PackedGemm.TileRows == 16 ? 8 : 1;
        double peak = ghz * lanes * 2 * 2; // 2 FMA ports × lanes × (multiply + add)
        Console.WriteLine($"microkernel in cache, 1 thread: {gflops:F1} GFLOP/s = {100 * gflops / peak:F0}% of {peak:F0} (2 FMA ports at {ghz} GHz)");

        // The same loops on full-size operands packed beforehand: what the memory hierarchy costs without the packing.
        const int bigTokens = 577, bigRows = 1024, bigK = 1024;
        float* bx = Floats(PackedGemm.PackedActivationFloats(bigTokens, bigK), rng);
        float* bw = Floats(PackedGemm.PackedWeightFloats(bigRows, bigK), rng);
        float* by = Floats((long)bigTokens * bigRows, rng);
        double[] tb = KernelAb.Interleaved([("prepacked", () => PackedGemm.MultiplyPacked(bx, bigTokens, bw, bigRows, bigK, by, bigRows))], rounds, threadCpuTime: true);
        Console.WriteLine($"prepacked {bigTokens}x{bigRows}x{bigK}, 1 thread: {2.0 * bigTokens * bigRows * bigK / tb[0] / 1e9:F1} GFLOP/s");
    }

    private static void Product(TensorType type, int rows, int cols, int tokens, int rounds, ComputeThreadPool one, ComputeThreadPool two)
    {
        var rng = new Random(rows + cols);
        long rowBytes = TensorTypeInfo.RowBytes(type, cols);
        byte* w = (byte*)NativeMemory.AlignedAlloc((nuint)(rowBytes * rows), 64);
        var row = new float[cols];
        for (int r = 0; r < rows; r++)
        {
            for (int i = 0; i < cols; i++) row[i] = (float)(rng.NextDouble() - 0.5) * 0.1f;
            fixed (float* pr = row)
                if (type == TensorType.F32) Buffer.MemoryCopy(pr, w + r * rowBytes, rowBytes, rowBytes);
                else Fp16.FromFloatRow(pr, (ushort*)(w + r * rowBytes), cols);
        }
        var matrix = new WeightMatrix(w, type, rows, cols);
        float* x = Floats((long)tokens * cols, rng);
        float* y = Floats((long)tokens * rows, rng);
        byte* scratch = (byte*)NativeMemory.AlignedAlloc((nuint)Math.Max(64, MatMul.ScratchBytes(type, cols, tokens)), 64);
        var packed = QuantRegistry.Kernels(type);
        var previous = packed with { UsePackedGemm = false };
        double flops = 2.0 * tokens * rows * cols;
        foreach (var (pool, label) in new[] { (one, "1 thread, CPU time"), (two, "2 threads, wall") })
        {
            var p = pool;
            double[] t = KernelAb.Interleaved([
                ("previous", () => MatMul.Compute(p, matrix, previous, x, tokens, y, scratch)),
                ("packed", () => MatMul.Compute(p, matrix, packed, x, tokens, y, scratch))], rounds, threadCpuTime: pool.ThreadCount == 1);
            Console.WriteLine($"{type} {rows}x{cols} · {tokens} tokens, {label}: previous {flops / t[0] / 1e9,6:F1} GFLOP/s, packed {flops / t[1] / 1e9,6:F1} GFLOP/s ({t[0] / t[1]:F2}x)");
        }
        NativeMemory.AlignedFree(w);
        NativeMemory.AlignedFree(x);
        NativeMemory.AlignedFree(y);
        NativeMemory.AlignedFree(scratch);
    }

    private static float* Floats(long n, Random rng)
    {
        float* p = (float*)NativeMemory.AlignedAlloc((nuint)(n * 4), 64);
        for (long i = 0; i < n; i++) p[i] = (float)(rng.NextDouble() - 0.5);
        return p;
    }
}
