using System.Diagnostics;
using System.Runtime.InteropServices;
using LlavaNative.Kernels.Cpu;
using LlavaNative.Kernels.Cpu.Ops;
using LlavaNative.Kernels.Cpu.Quant;
using LlavaNative.Kernels.Tensors;
using LlavaNative.TestSupport;

namespace LlavaNative.Benchmarks;

/// <summary>
/// A quick side-by-side (seconds, not minutes): our mat-vec vs ggml's own <c>ggml_vec_dot_*</c> looped over
/// the same rows (one thread each, weights streaming from DRAM), then our 2-thread decode mat-vec and
/// 128-token prefill through <see cref="MatMul"/>. Not a BenchmarkDotNet run: medians of a few repetitions.
/// dotnet run -c Release --project benchmarks/LlavaNative.Benchmarks -- quick [types…]
/// </summary>
public static unsafe class KernelSpeedComparison
{
    public static void Run(string[] typeNames)
    {
        TensorType[] types = typeNames.Length > 0
            ? typeNames.Select(n => Enum.Parse<TensorType>(n, ignoreCase: true)).ToArray()
            : [TensorType.Q4_0, TensorType.Q8_0, TensorType.Q4_K, TensorType.Q6_K, TensorType.Q5_0, TensorType.F16];
        Console.WriteLine($"ggml reference: {GgmlReference.CpuVariant}; shape 896x4864 (rows x cols, Qwen2-0.5B ffn_down), weights cycled over ~160 MB");
        Console.WriteLine("decode: one token, GB/s of weights streamed; prefill: 128 tokens through one matrix, GMAC/s (ggml: its mul_mat graph, no repack)");
        Console.WriteLine($"{"type",-7} {"ours 1T",8} {"ggml 1T",8} {"ratio",6} {"ours 2T",8} | {"pp ours 1T",11} {"pp ggml 1T",11} {"ratio",6} {"pp ours 2T",11} {"pp ggml 2T",11} {"ratio",6}");
        foreach (var type in types) Compare(type, 896, 4864);
    }

    private static void Compare(TensorType type, int rows, int cols)
    {
        using var weights = new WeightSet(type, rows, cols, 160L << 20, new Random(1));
        var kernels = QuantRegistry.Kernels(type);
        const int tokens = 128;
        float[] xs = QuantTestData.RandomActivations(cols * tokens, new Random(2));
        float* x = (float*)NativeMemory.AlignedAlloc((nuint)(cols * tokens * 4), 64);
        float* y = (float*)NativeMemory.AlignedAlloc((nuint)(rows * tokens * 4), 64);
        long scratchBytes = Math.Max(64, MatMul.ScratchBytes(type, cols, tokens));
        byte* scratch = (byte*)NativeMemory.AlignedAlloc((nuint)scratchBytes, 64);
        for (int i = 0; i < xs.Length; i++) x[i] = xs[i];
        long rowBytes = TensorTypeInfo.RowBytes(type, cols);
        // ours reads the kernels' activation layout; ggml reads the DotType encoding (same values).
        byte* xq = (byte*)NativeMemory.AlignedAlloc((nuint)QuantRegistry.ActivationRowBytes(kernels, cols), 64);
        byte* xg = (byte*)NativeMemory.AlignedAlloc((nuint)(cols * 4), 64);
        QuantRegistry.ActivationQuantizerFor(kernels).QuantizeRow(x, xq, cols);
        QuantRegistry.Activation(kernels.DotType).QuantizeRow(x, xg, cols);
        var ggml = GgmlReference.VecDotFunction(QuantTestData.GgmlName(type), QuantTestData.GgmlName(kernels.DotType));
        int next = 0;

        double oursSeconds = Median(() =>
        {
            var w = weights.Matrix(next++);
            for (int r = 0; r < rows; r++) y[r] = kernels.VecDot(cols, w.Row(r), xq);
        });
        double ggmlSeconds = Median(() =>
        {
            var w = weights.Matrix(next++);
            for (int r = 0; r < rows; r++) ggml(cols, y + r, 0, w.Row(r), 0, xg, 0, 1);
        });
        double prefill1Seconds;
        using (var single = new ComputeThreadPool(1))
            prefill1Seconds = Median(() => MatMul.Compute(single, weights.Matrix(next++), x, tokens, y, scratch), repetitions: 5);
        using var pool = new ComputeThreadPool(2);
        double pool2Seconds = Median(() => MatMul.Compute(pool, weights.Matrix(next++), x, 1, y, scratch));
        double prefillSeconds = Median(() => MatMul.Compute(pool, weights.Matrix(next++), x, tokens, y, scratch), repetitions: 5);
        double ggmlPrefill1, ggmlPrefill2;
        using (var g1 = new GgmlMulMat(type, weights.Matrix(0).Data, rows, cols, x, tokens, threads: 1)) ggmlPrefill1 = Median(g1.Compute, repetitions: 5);
        using (var g2 = new GgmlMulMat(type, weights.Matrix(0).Data, rows, cols, x, tokens, threads: 2)) ggmlPrefill2 = Median(g2.Compute, repetitions: 5);
        double gb = weights.MatrixBytes / 1e9;
        double gmac = (double)rows * cols * tokens / 1e9;
        Console.WriteLine($"{type,-7} {gb / oursSeconds,8:F1} {gb / ggmlSeconds,8:F1} {ggmlSeconds / oursSeconds,6:F2} {gb / pool2Seconds,8:F1} | " +
            $"{gmac / prefill1Seconds,11:F1} {gmac / ggmlPrefill1,11:F1} {ggmlPrefill1 / prefill1Seconds,6:F2} {gmac / prefillSeconds,11:F1} {gmac / ggmlPrefill2,11:F1} {ggmlPrefill2 / prefillSeconds,6:F2}");
        NativeMemory.AlignedFree(x);
        NativeMemory.AlignedFree(y);
        NativeMemory.AlignedFree(scratch);
        NativeMemory.AlignedFree(xq);
        NativeMemory.AlignedFree(xg);
    }

    private static double Median(Action action, int repetitions = 31)
    {
        for (int i = 0; i < 3; i++) action(); // warm-up and tier-up
        var times = new double[repetitions];
        for (int i = 0; i < repetitions; i++)
        {
            long start = Stopwatch.GetTimestamp();
            action();
            times[i] = Stopwatch.GetElapsedTime(start).TotalSeconds;
        }
        Array.Sort(times);
        return times[repetitions / 2];
    }
}
