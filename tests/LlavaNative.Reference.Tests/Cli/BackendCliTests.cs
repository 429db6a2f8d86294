using System.Text.Json;
using LlavaNative.Kernels.Cuda;
using LlavaNative.TestSupport;
using LlavaNative.TestSupport.Llava;
using Xunit;
using Xunit.Abstractions;
using static LlavaNative.Reference.Tests.Cli.CliContractTests;

namespace LlavaNative.Reference.Tests.Cli;

/// <summary>
/// <c>--backend auto|cpu|cuda</c> as the `llava` child process sees it. On a machine without a CUDA GPU: cuda is one
/// error line and exit 1, auto prints a one-line notice to stderr and gives the CPU's output. With a GPU, both run on it.
/// </summary>
public sealed class BackendCliTests(ITestOutputHelper output)
{
    private static readonly Lazy<string?> s_noGpu = new(() =>
    {
        using var device = CudaDevice.TryOpen(out string reason);
        return device is null ? reason.TrimEnd('.') : null;
    });

    private static string Text => RandomModels.GetPath(LlavaFixtures.LlamaSynthetic);

    private static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    [Fact]
    public void RunWithCuda_WithoutAGpu_IsOneErrorLine_AndExit1()
    {
        string image = LlavaFixtures.RandomPngFile(31);
        string[][] invocations =
        [
            ["run", "-m", Text, "-p", "hello", "-n", "3", "--temp", "0", "-t", "1", "--backend", "cuda"],
            ["run", "-m", Text, "--mmproj", LlavaFixtures.ClipMmproj(), "--image", image, "-p", "what is it?", "-n", "3", "--temp", "0", "-t", "1", "--backend", "cuda"],
            ["eval", "-m", Text, "--tokens", "1,20,30", "--logits-out", Path.Combine(LlavaFixtures.TempFolder, "backend-eval.npy"), "-t", "1", "--backend", "cuda"],
        ];
        foreach (var args in invocations)
        {
            var (exit, stdout, err) = RunCli(args);
            output.WriteLine($"llava {string.Join(' ', args[..2])} … → {exit}: {err.Trim()}");
            if (s_noGpu.Value is { } reason)
            {
                Assert.Equal(1, exit);
                string line = Assert.Single(Lines(err));
                Assert.StartsWith($"llava {args[0]}: error: the CUDA backend was requested but no CUDA GPU (", line);
                Assert.Contains(reason, line);
                Assert.Equal("", stdout.Trim());
            }
            else
            {
                Assert.True(exit == 0, err);
            }
        }
    }

    [Fact]
    public void RunWithAuto_PrintsTheNotice_AndTheCpuOutput()
    {
        string image = LlavaFixtures.RandomPngFile(32);
        string[] common = ["run", "-m", Text, "--mmproj", LlavaFixtures.ClipMmproj(), "--image", image, "-p", "what is it?", "-n", "6", "--temp", "0", "-t", "1"];
        var (cpuExit, cpuOut, cpuErr) = RunCli([.. common, "--backend", "cpu"]);
        Assert.True(cpuExit == 0, cpuErr);
        Assert.Equal("", cpuErr.Trim());
        var (exit, stdout, err) = RunCli([.. common, "--backend", "auto"]);
        Assert.True(exit == 0, err);
        var (defaultExit, defaultOut, defaultErr) = RunCli(common); // auto is the default
        Assert.True(defaultExit == 0, defaultErr);
        output.WriteLine($"auto stderr: {err.Trim()}");
        if (s_noGpu.Value is { } reason)
        {
            string line = Assert.Single(Lines(err));
            Assert.Equal($"llava: no CUDA GPU ({reason}); running on the CPU", line);
            Assert.Equal(line, Assert.Single(Lines(defaultErr)));
            Assert.Equal(cpuOut, stdout);
            Assert.Equal(cpuOut, defaultOut);
        }
        else
        {
            Assert.Equal("", err.Trim());
        }
    }

    [Fact]
    public void EveryInferenceVerbTakesBackend_AndBenchReportsIt()
    {
        var (exit, stdout, err) = RunCli("bench", "-m", Text, "-p", "4", "-n", "2", "--reps", "1", "-t", "1", "--json", "--backend", "cpu");
        Assert.True(exit == 0, err);
        var json = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal("cpu", json.GetProperty("backend").GetString());
        Assert.Equal("CPU", json.GetProperty("device").GetString());

        foreach (string verb in new[] { "run", "chat", "eval", "bench" })
        {
            (exit, stdout, _) = RunCli(verb, "--help");
            Assert.Equal(0, exit);
            Assert.Contains("--backend auto|cpu|cuda", stdout);
        }
        (exit, _, err) = RunCli("run", "-m", Text, "-p", "x", "--backend", "gpu");
        Assert.Equal(2, exit);
        Assert.Contains("--backend 'gpu' is not one of auto, cpu, cuda", err);

        (exit, stdout, err) = RunCli("run", "-m", Text, "-p", "hi", "-n", "2", "-t", "1", "--json", "--backend", "cpu");
        Assert.True(exit == 0, err);
        Assert.Equal("cpu", JsonDocument.Parse(stdout).RootElement.GetProperty("backend").GetString());

        (exit, stdout, err) = RunCli("info", "-m", Text);
        Assert.True(exit == 0, err);
        string backendLine = Assert.Single(Lines(stdout), l => l.StartsWith("backend:", StringComparison.Ordinal));
        output.WriteLine(backendLine);
        Assert.Contains(s_noGpu.Value is null ? "CUDA GPU 0" : "no CUDA GPU", backendLine);
        (_, stdout, _) = RunCli("--help");
        Assert.Contains("--backend auto|cpu|cuda", stdout);
    }
}
