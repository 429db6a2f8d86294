using System.Diagnostics;

namespace LlavaNative.Reference.Tests.PyTorch;

/// <summary>
/// Runs <c>torch_save_cases.py</c> with /usr/bin/python3 (PyTorch writes the checkpoints: the reference for the
/// .bin format). A missing interpreter or module is a failure, not a skip: a comparison that did not run must not pass.
/// </summary>
internal static class TorchSave
{
    public const string Python = "/usr/bin/python3";

    public static void Run(params string[] arguments)
    {
        string script = Path.Combine(AppContext.BaseDirectory, "PyTorch", "torch_save_cases.py");
        if (!File.Exists(script)) throw new FileNotFoundException($"reference script not copied to the test output: {script}");
        var psi = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(script);
        foreach (string a in arguments) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {Python}");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(120_000))
        {
            p.Kill(true);
            throw new TimeoutException($"torch_save_cases.py {string.Join(' ', arguments)} did not finish within 120 s");
        }
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"torch_save_cases.py {arguments[0]} failed (exit {p.ExitCode}); install the references with tools/install-test-deps.sh.\n{stdout.Result}\n{stderr.Result}");
    }
}
