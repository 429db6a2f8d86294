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
/// Each comparison runs twice: on a 2-thread pool in wall time, and on one thread in that thread's CPU time
/// (<c>CLOCK_THREAD_CPUTIME_ID</c>), which time-slicing by other processes does not inflate — on a machine with
/// a load average far above its core count, the CPU-time ratios are the ones to read.
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
                    if (args.Length < 3 || args[2] == $"{rows}x{cols}") PrefillQ4_0(rows, cols, 128, rounds);
                break;
            case "decode":
                foreach (var type in new[] { TensorType.F16, TensorType.Q8_0, TensorType.Q4_0, TensorType.Q4_K, TensorType.Q5_0, TensorType.Q6_K })
                    if (args.Length < 3 || string.Equals(args[2], type.ToString(), StringComparison.OrdinalIgnoreCase))
                    {
                        // optional 4th argument: ROWSxCOLS (default 896x4864, ffn_down of Qwen2-0.5B)
                        int[] shape = args.Length > 3 ? args[3].Split('x').Select(int.Parse).ToArray() : [896, 4864];
                        Decode(type, shape[0], shape[1], rounds);
                    }
                break;
            default: throw new ArgumentException($"unknown A/B '{what}'; known: prefill-q4_0, decode");
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
        double gmac = (double)rows * cols * tokens / 1e9;
        foreach (int threads in new[] { 2, 1 })
        {
            using var pool = new ComputeThreadPool(threads);
            using var ggml = new GgmlMulMat(type, w.Data, rows, cols, x, tokens, threads);
            var variants = new (string Name, Action Run)[]
            {
                ("ours old tile", () => MatMul.Compute(pool, w, previous, x, tokens, y, scratch)),
                ("ours packed", () => MatMul.Compute(pool, w, current, x, tokens, y, scratch)),
                ("ggml mul_mat (no repack)", ggml.Compute),
            };
            bool cpuTime = threads == 1;
            double[] medians = Interleaved(variants, rounds, cpuTime);
            Console.WriteLine($"Q4_0 prefill {rows}x{cols}, {tokens} tokens, {threads} thread(s), {(cpuTime ? "thread CPU time" : "wall time")}:");
            for (int i = 0; i < variants.Length; i++)
                Console.WriteLine($"  {variants[i].Name,-26} {medians[i] * 1e3,8:F2} ms  {gmac / medians[i],7:F1} GMAC/s");
            Console.WriteLine($"  new/old speedup {medians[0] / medians[1]:F2}x; ours/ggml {medians[2] / medians[1]:F2}x (old: {medians[2] / medians[0]:F2}x)");
        }
        NativeMemory.AlignedFree(x);
        NativeMemory.AlignedFree(y);
        NativeMemory.AlignedFree(scratch);
    }

    /// <summary>
    /// Decode mat-vec: our VecDot loop vs ggml's vec_dot loop over the same rows on one thread (thread CPU time),
    /// weights hot (the first <see cref="HotRows"/> rows over and over: at most 0.6 MB, in L2) and streaming (cycled over ~160 MB, so from DRAM); then our 2-thread
    /// MatMul in wall time. Hot GB/s far above streaming GB/s means the kernel is memory-bound.
    /// </summary>
    private const int HotRows = 64;

    private static void Decode(TensorType type, int rows, int cols, int rounds)
    {
        using var cold = new WeightSet(type, rows, cols, 160L << 20, new Random(1));
        var kernels = QuantRegistry.Kernels(type);
        float[] xs = QuantTestData.RandomActivations(cols, new Random(2));
        float* x = (float*)NativeMemory.AlignedAlloc((nuint)(cols * 4), 64);
        float* y = (float*)NativeMemory.AlignedAlloc((nuint)(rows * 4), 64);
        byte* scratch = (byte*)NativeMemory.AlignedAlloc((nuint)Math.Max(64, MatMul.ScratchBytes(type, cols, 1)), 64);
        for (int i = 0; i < cols; i++) x[i] = xs[i];
        byte* xq = (byte*)NativeMemory.AlignedAlloc((nuint)QuantRegistry.ActivationRowBytes(kernels, cols), 64);
        byte* xg = (byte*)NativeMemory.AlignedAlloc((nuint)(cols * 4), 64);
        QuantRegistry.ActivationQuantizerFor(kernels).QuantizeRow(x, xq, cols);
        QuantRegistry.Activation(kernels.DotType).QuantizeRow(x, xg, cols);
        var ggml = GgmlReference.VecDotFunction(QuantTestData.GgmlName(type), QuantTestData.GgmlName(kernels.DotType));
        int next = 0;
        var hot = cold.Matrix(0);
        var variants = new List<(string Name, Action Run)>
        {
            ("ours hot", () => { for (int r = 0; r < rows; r++) y[r] = kernels.VecDot(cols, hot.Row(r % HotRows), xq); }),
            ("ggml hot", () => { for (int r = 0; r < rows; r++) ggml(cols, y + r, 0, hot.Row(r % HotRows), 0, xg, 0, 1); }),
            ("ours streaming", () => { var w = cold.Matrix(next++); for (int r = 0; r < rows; r++) y[r] = kernels.VecDot(cols, w.Row(r), xq); }),
            ("ggml streaming", () => { var w = cold.Matrix(next++); for (int r = 0; r < rows; r++) ggml(cols, y + r, 0, w.Row(r), 0, xg, 0, 1); }),
        };
        if (kernels.MatVec != null)
        {
            // The whole decode mat-vec on one thread: the multi-row kernel against one VecDot per row.
            var perRow = kernels with { MatVec = null };
            var single = new ComputeThreadPool(1);
            var hot64 = new WeightMatrix(hot.Data, type, HotRows, cols);
            variants.Add(("ours MatVec hot", () => { for (int r = 0; r < rows; r += HotRows) MatMul.Compute(single, hot64, kernels, x, 1, y, scratch); }));
            variants.Add(("ours VecDot hot", () => { for (int r = 0; r < rows; r += HotRows) MatMul.Compute(single, hot64, perRow, x, 1, y, scratch); }));
            variants.Add(("ours MatVec stream", () => MatMul.Compute(single, cold.Matrix(next++), kernels, x, 1, y, scratch)));
            variants.Add(("ours VecDot stream", () => MatMul.Compute(single, cold.Matrix(next++), perRow, x, 1, y, scratch)));
        }
        if (type == TensorType.F16)
        {
            // The same rows without zero/subnormal halves (exponent 0 → 1): the cost of the exact path for them.
            long hotBytes = hot.RowBytes * HotRows;
            byte* normal = (byte*)NativeMemory.AlignedAlloc((nuint)hotBytes, 64);
            Buffer.MemoryCopy(hot.Data, normal, hotBytes, hotBytes);
            for (long i = 0; i < hotBytes / 2; i++) if ((((ushort*)normal)[i] & 0x7C00) == 0) ((ushort*)normal)[i] |= 0x0400;
            long rb = hot.RowBytes;
            variants.Add(("ours hot, normal", () => { for (int r = 0; r < rows; r++) y[r] = kernels.VecDot(cols, normal + (r % HotRows) * rb, xq); }));
        }
        double[] m = Interleaved(variants.ToArray(), rounds * 3, threadCpuTime: true);
        double gb = cold.MatrixBytes / 1e9;
        Console.WriteLine($"{type} decode {rows}x{cols}, 1 thread, thread CPU time, GB/s of weights:");
        for (int i = 0; i < variants.Count; i++) Console.WriteLine($"  {variants[i].Name,-18} {gb / m[i],7:F1}");
        Console.WriteLine($"  ours/ggml hot {m[1] / m[0]:F2}x, streaming {m[3] / m[2]:F2}x");
        using var pool = new ComputeThreadPool(2);
        double[] p = Interleaved([("ours 2T", () => MatMul.Compute(pool, cold.Matrix(next++), x, 1, y, scratch))], rounds * 3);
        Console.WriteLine($"  ours 2 threads streaming, wall time: {gb / p[0]:F1} GB/s");
        NativeMemory.AlignedFree(x);
        NativeMemory.AlignedFree(y);
        NativeMemory.AlignedFree(scratch);
        NativeMemory.AlignedFree(xq);
        NativeMemory.AlignedFree(xg);
    }

    /// <summary>Median seconds of each variant over <paramref name="rounds"/> rounds, each round running every variant once.</summary>
    public static double[] Interleaved((string Name, Action Run)[] variants, int rounds, bool threadCpuTime = false)
    {
        foreach (var v in variants) for (int i = 0; i < 3; i++) v.Run(); // warm-up and tier-up
        var times = new double[variants.Length][];
        for (int i = 0; i < variants.Length; i++) times[i] = new double[rounds];
        for (int round = 0; round < rounds; round++)
            for (int k = 0; k < variants.Length; k++)
            {
                int i = (k + round) % variants.Length; // rotate who goes first
                if (threadCpuTime)
                {
                    double before = ThreadCpuSeconds();
                    variants[i].Run();
                    times[i][round] = ThreadCpuSeconds() - before;
                }
                else
                {
                    long start = Stopwatch.GetTimestamp();
                    variants[i].Run();
                    times[i][round] = Stopwatch.GetElapsedTime(start).TotalSeconds;
                }
            }
        return times.Select(t => { Array.Sort(t); return t[t.Length / 2]; }).ToArray();
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec { public long Seconds, Nanoseconds; }

    [DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, out TimeSpec time);

    /// <summary>CPU time consumed by the calling thread (Linux <c>CLOCK_THREAD_CPUTIME_ID</c> = 3).</summary>
    public static double ThreadCpuSeconds()
    {
        if (ClockGetTime(3, out var t) != 0) throw new InvalidOperationException("clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
        return t.Seconds + t.Nanoseconds * 1e-9;
    }
}
