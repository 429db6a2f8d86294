using System.Diagnostics;
using System.Runtime.InteropServices;
using LlavaNative.Kernels.Cpu;
using LlavaNative.Kernels.Cpu.Ops;
using LlavaNative.Kernels.Cpu.Quant;
using LlavaNative.Kernels.Tensors;
using LlavaNative.TestSupport;

namespace LlavaNative.Benchmarks;

/// <summary>
/// Interleaved A/B timing for a shared, busy machine: variants of one operation (our previous kernel, our
/// current kernel, ggml's mul_mat) run one after another in rounds, so that load from other processes hits
/// them alike; the medians of many rounds and their ratios are printed, with the load average.
/// dotnet run -c Release --project benchmarks/LlavaNative.Benchmarks -- ab prefill-q4_0 [rounds]
/// </summary>
public static unsafe class KernelAb
{
    public static void Run(string[] args)
    {
        string what = args.Length > 0 ? args[0] : "prefill-q4_0";
        int rounds = args.Length > 1 ? int.Parse(args[1]) : 21;
        Console.WriteLine($"{what}, {rounds} rounds, load average before: {File.ReadAllText("/proc/loadavg").Trim()}");
        switch (what)
        {
            case "prefill-q4_0":
                foreach (var (rows, cols) in new[] { (896, 4864), (4864, 896), (896, 896) })
                    PrefillQ4_0(rows, cols, 128, rounds);
                break;
            default: throw new ArgumentException($"unknown A/B '{what}'; known: prefill-q4_0");
        }
        Console.WriteLine($"load average after: {File.ReadAllText("/proc/loadavg").Trim()}");
    }

    private static void PrefillQ4_0(int rows, int cols, int tokens, int rounds)
    {
        const TensorType type = TensorType.Q4_0;
        using var weights = new WeightSet(type, rows, cols, 0, new Random(1));
        var current = QuantRegistry.Kernels(type);
        // The tile kernel before the packed GEMM: 4 rows × 4 tokens over the file layout.
        var previous = current with
        {
            MatMulTile = &LegacyTileKernels.TileUnsignedAvx512<LegacyTileKernels.Q4_0Blocks>, TileRows = 4, TileTokens = 4,
        };
        float[] xs = QuantTestData.RandomActivations(cols * tokens, new Random(2));
        float* x = (float*)NativeMemory.AlignedAlloc((nuint)(cols * tokens * 4), 64);
        float* y = (float*)NativeMemory.AlignedAlloc((nuint)(rows * tokens * 4), 64);
        byte* scratch = (byte*)NativeMemory.AlignedAlloc((nuint)Math.Max(64, MatMul.ScratchBytes(type, cols, tokens)), 64);
        for (int i = 0; i < xs.Length; i++) x[i] = xs[i];
        var w = weights.Matrix(0);
        using var pool = new ComputeThreadPool(2);
        using var ggml = new GgmlMulMat(type, w.Data, rows, cols, x, tokens, threads: 2);
        var variants = new (string Name, Action Run)[]
        {
            ("ours old tile", () => MatMul.Compute(pool, w, previous, x, tokens, y, scratch)),
            ("ours packed", () => MatMul.Compute(pool, w, current, x, tokens, y, scratch)),
            ("ggml mul_mat (no repack)", ggml.Compute),
        };
        double[] medians = Interleaved(variants, rounds);
        double gmac = (double)rows * cols * tokens / 1e9;
        Console.WriteLine($"Q4_0 prefill {rows}x{cols}, {tokens} tokens, 2 threads:");
        for (int i = 0; i < variants.Length; i++)
            Console.WriteLine($"  {variants[i].Name,-26} {medians[i] * 1e3,8:F2} ms  {gmac / medians[i],7:F1} GMAC/s");
        Console.WriteLine($"  new/old speedup {medians[0] / medians[1]:F2}x; ours/ggml {medians[2] / medians[1]:F2}x (old: {medians[2] / medians[0]:F2}x)");
        NativeMemory.AlignedFree(x);
        NativeMemory.AlignedFree(y);
        NativeMemory.AlignedFree(scratch);
    }

    /// <summary>Median seconds of each variant over <paramref name="rounds"/> rounds, each round running every variant once.</summary>
    public static double[] Interleaved((string Name, Action Run)[] variants, int rounds)
    {
        foreach (var v in variants) for (int i = 0; i < 3; i++) v.Run(); // warm-up and tier-up
        var times = new double[variants.Length][];
        for (int i = 0; i < variants.Length; i++) times[i] = new double[rounds];
        for (int round = 0; round < rounds; round++)
            for (int k = 0; k < variants.Length; k++)
            {
                int i = (k + round) % variants.Length; // rotate who goes first
                long start = Stopwatch.GetTimestamp();
                variants[i].Run();
                times[i][round] = Stopwatch.GetElapsedTime(start).TotalSeconds;
            }
        return times.Select(t => { Array.Sort(t); return t[t.Length / 2]; }).ToArray();
    }
}
