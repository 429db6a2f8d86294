using BenchmarkDotNet.Running;
using LlavaNative.Benchmarks;

// dotnet run -c Release --project benchmarks/LlavaNative.Benchmarks -- --filter '*MatVec*'
// dotnet run -c Release --project benchmarks/LlavaNative.Benchmarks -- quick [Q4_0 Q8_0 …]   (seconds; vs ggml's vec_dot)
// dotnet run -c Release --project benchmarks/LlavaNative.Benchmarks -- ab prefill-q4_0 [rounds]  (interleaved old/new/ggml medians)
// dotnet run -c Release --project benchmarks/LlavaNative.Benchmarks -- gemm [rounds] [GHz]  (packed F32 GEMM, GFLOP/s)
if (args.Length > 0 && args[0] == "ab")
{
    KernelAb.Run(args[1..]);
    return;
}
if (args.Length > 0 && args[0] == "gemm")
{
    GemmBench.Run(args[1..]);
    return;
}
if (args.Length > 0 && args[0] == "quick")
{
    KernelSpeedComparison.Run(args[1..]);
    return;
}
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
