using System.Diagnostics;
using LlavaNative.Model.Formats.Npy;
using LlavaNative.TestSupport;
using LlavaNative.TestSupport.Vision;

namespace LlavaNative.Reference.Tests.Vision;

/// <summary>
/// Runs <c>torch_reference.py</c> (HF forward semantics in float64 PyTorch) on a random tower written in HF layout,
/// after it has checked the test's mmproj GGUF against the same weights with llama.cpp's gguf-py reader.
/// A missing interpreter or module is a failure, not a skip: a comparison that did not run must not pass.
/// </summary>
internal static class TorchVisionReference
{
    public const string Python = "/usr/bin/python3";

    public sealed record Result(float[] Features, long[] FeatureShape, float[] Projected, long[] ProjectedShape);

    /// <summary>Writes the HF directory and pixels under <paramref name="workDirectory"/>, runs the script, reads its outputs.</summary>
    public static Result Run(RandomVisionModel model, float[] pixels, string workDirectory, string ggufPath, MmprojLayout layout)
    {
        string hf = Path.Combine(workDirectory, "hf");
        model.WriteHfDirectory(hf);
        string pixelsPath = Path.Combine(workDirectory, "pixels.npy");
        NpyFile.WriteFloat32(pixelsPath, pixels, 3, model.Spec.ImageSize, model.Spec.ImageSize);
        string outDir = Path.Combine(workDirectory, "torch");
        string script = Path.Combine(AppContext.BaseDirectory, "Vision", "torch_reference.py");
        if (!File.Exists(script)) throw new FileNotFoundException($"reference script not copied to the test output: {script}");

        var psi = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in new[]
        {
            script, "--hf-dir", hf, "--pixels", pixelsPath, "--out-dir", outDir, "--gguf", ggufPath,
            "--layout", layout switch { MmprojLayout.Legacy => "legacy", MmprojLayout.ExplicitFeatureLayer => "explicit", _ => "all" },
            "--gguf-py", Path.Combine(ReferencePaths.LlamaCppSource, "gguf-py"),
        })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {Python}");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(180_000))
        {
            p.Kill(true);
            throw new TimeoutException("torch_reference.py did not finish within 180 s");
        }
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"torch_reference.py failed (exit {p.ExitCode}); install the references with tools/install-test-deps.sh.\n{stdout.Result}\n{stderr.Result}");
        var (features, featureShape) = NpyFile.ReadFloat32(Path.Combine(outDir, "features.npy"));
        var (projected, projectedShape) = NpyFile.ReadFloat32(Path.Combine(outDir, "projected.npy"));
        return new Result(features, featureShape, projected, projectedShape);
    }
}
