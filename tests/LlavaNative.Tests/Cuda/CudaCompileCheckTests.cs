using Xunit;
using LlavaNative.Kernels.Cuda;
using LlavaNative.TestSupport.Cuda.CompileCheck;

namespace LlavaNative.Tests.Cuda;

/// <summary>A fact that needs clang with CUDA support; skipped, with the reason, without it.</summary>
public sealed class ClangFactAttribute : FactAttribute
{
    public ClangFactAttribute()
    {
        if (ClangCudaCheck.FindClang() == null)
            Skip = DisplayName = "CUDA compile check skipped: no clang on PATH (the device-side compile check needs clang-14 or newer)";
    }
}

/// <summary>
/// The kernel sources as a GPU compiler sees them (clang's CUDA front end, PTX for sm_80): they compile, every
/// kernel the launchers know is a PTX entry, and no kernel keeps a register array in local memory.
/// </summary>
public class CudaCompileCheckTests
{
    private static readonly Lazy<IReadOnlyList<ClangCudaCheck.UnitResult>> s_results = new(() => ClangCudaCheck.CompileAll(ClangCudaCheck.FindClang()!));

    [ClangFact]
    public void EveryUnitCompilesToPtxWithEveryKernelAsAnEntry()
    {
        var results = s_results.Value;
        foreach (var unit in results) Assert.True(unit.Compiled, $"{unit.Unit} does not compile for {ClangCudaCheck.Arch}:\n{unit.Errors}");
        var entries = results.SelectMany(r => ClangCudaCheck.Entries(r.Ptx)).ToHashSet();
        foreach (string kernel in KernelSources.Kernels.Keys) Assert.Contains(kernel, entries);
    }

    [ClangFact]
    public void NoKernelUsesLocalMemory()
    {
        foreach (var unit in s_results.Value.Where(u => u.Compiled))
            Assert.False(unit.Ptx.Contains("ld.local", StringComparison.Ordinal) || unit.Ptx.Contains("st.local", StringComparison.Ordinal),
                $"{unit.Unit}: a kernel reads or writes local memory (a register array indexed at run time, or a spill)");
    }
}
