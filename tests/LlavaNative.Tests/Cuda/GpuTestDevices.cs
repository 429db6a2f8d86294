using Xunit;
using LlavaNative.Kernels.Cuda;
using LlavaNative.TestSupport.Cuda.Emulator;

namespace LlavaNative.Tests.Cuda;

/// <summary>A fact that runs on the CUDA host emulator; skipped, with the reason, when g++ is not installed.</summary>
public sealed class EmulatorFactAttribute : FactAttribute
{
    public EmulatorFactAttribute()
    {
        if (CudaEmulator.FindCompiler() == null) Skip = DisplayName = "CUDA emulator test skipped: g++ is not on PATH, so the CUDA kernels cannot be built for the host emulator";
    }
}

/// <summary>A theory that runs on the CUDA host emulator; skipped, with the reason, when g++ is not installed.</summary>
public sealed class EmulatorTheoryAttribute : TheoryAttribute
{
    public EmulatorTheoryAttribute()
    {
        if (CudaEmulator.FindCompiler() == null) Skip = DisplayName = "CUDA emulator test skipped: g++ is not on PATH, so the CUDA kernels cannot be built for the host emulator";
    }
}

/// <summary>A theory that needs a real GPU; skipped with the reason (no driver, no NVRTC, no device) otherwise.</summary>
public sealed class GpuTheoryAttribute : TheoryAttribute
{
    public GpuTheoryAttribute()
    {
        // The reason goes into the display name too: `dotnet test` prints a skipped test's name, not its reason.
        if (GpuTestDevices.GpuUnavailableReason is { } reason) Skip = DisplayName = "CUDA kernels on a GPU skipped, no CUDA GPU: " + reason;
    }
}

public static class GpuTestDevices
{
    private static readonly Lazy<string?> s_gpuReason = new(() =>
    {
        using var device = CudaDevice.TryOpen(out string reason);
        return device == null ? reason : null;
    });

    /// <summary>Null when a GPU with driver and NVRTC is usable, else why not.</summary>
    public static string? GpuUnavailableReason => s_gpuReason.Value;

    public static EmulatedGpuDevice Emulator()
    {
        var emulator = CudaEmulator.Shared(out string reason)
            ?? throw new InvalidOperationException("the CUDA emulator is unavailable: " + reason);
        return new EmulatedGpuDevice(emulator);
    }

    /// <summary>Names of every check in <see cref="TestSupport.Cuda.GpuOpChecks.All"/>, as theory data.</summary>
    public static TheoryData<string> CheckNames()
    {
        var data = new TheoryData<string>();
        foreach (var (name, _) in TestSupport.Cuda.GpuOpChecks.All) data.Add(name);
        return data;
    }
}
