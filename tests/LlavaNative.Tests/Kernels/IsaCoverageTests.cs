using System.Diagnostics;
using Xunit;
using Xunit.Abstractions;

namespace LlavaNative.Tests.Kernels;

/// <summary>
/// Every ISA path on this one machine: LlavaNative.IsaCheck (all dispatched kernels vs their scalar
/// references) runs in a child process per runtime setting, and must both pass and report that it ran
/// on the instruction set the setting asked for.
/// </summary>
public class IsaCoverageTests(ITestOutputHelper output)
{
    public static TheoryData<string, string, string> Settings() => new()
    {
        // variable, value, the flag that must read False in the child (empty: nothing is switched off)
        { "", "", "" },
        // .NET 10 reads DOTNET_EnableAVX512 (one switch for the AVX-512 family) and ignores the older
        // per-subset DOTNET_EnableAVX512F; both are set so the case means the same on either runtime.
        { "DOTNET_EnableAVX512F", "0", "Avx512F.IsSupported" },
        { "DOTNET_EnableAVX2", "0", "Avx2.IsSupported" },
        { "DOTNET_EnableHWIntrinsic", "0", "Vector256.IsHardwareAccelerated" },
    };

    [Theory]
    [MemberData(nameof(Settings))]
    public void KernelsAgreeWithScalarReferences(string variable, string value, string disabledFlag)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "LlavaNative.IsaCheck.dll");
        Assert.True(File.Exists(dll), $"{dll} is missing (LlavaNative.Tests references the IsaCheck project to build it)");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(dll);
        // The child must not inherit a switch from the parent environment that this case does not ask for.
        foreach (string v in new[] { "DOTNET_EnableAVX512F", "DOTNET_EnableAVX512", "DOTNET_EnableAVX2", "DOTNET_EnableHWIntrinsic" }) start.Environment.Remove(v);
        if (variable.Length > 0) start.Environment[variable] = value;
        if (variable == "DOTNET_EnableAVX512F") start.Environment["DOTNET_EnableAVX512"] = value;
        using var child = Process.Start(start)!;
        string stdout = child.StandardOutput.ReadToEnd();
        string stderr = child.StandardError.ReadToEnd();
        Assert.True(child.WaitForExit(120_000), "isa-check did not finish in 2 minutes");
        output.WriteLine($"{(variable.Length > 0 ? $"{variable}={value}" : "default ISA")}:\n{stdout}{stderr}");
        Assert.True(child.ExitCode == 0, $"isa-check exited {child.ExitCode} with {variable}={value}:\n{stdout}{stderr}");
        if (disabledFlag.Length > 0)
            Assert.Contains($"{disabledFlag}=False", stdout);
        if (variable == "DOTNET_EnableHWIntrinsic")
            Assert.Contains("Avx2.IsSupported=False", stdout);
        Assert.Contains("isa-check: all kernels agree", stdout);
    }
}
