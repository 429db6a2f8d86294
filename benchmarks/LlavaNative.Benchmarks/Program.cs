using BenchmarkDotNet.Running;

// dotnet run -c Release --project benchmarks/LlavaNative.Benchmarks -- --filter '*MatVec*'
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
