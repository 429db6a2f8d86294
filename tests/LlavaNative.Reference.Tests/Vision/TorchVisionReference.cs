using System.Diagnostics;
using System.Text.Json;
using LlavaNative.Model.Formats.Npy;
using LlavaNative.TestSupport;
using LlavaNative.TestSupport.Vision;

namespace LlavaNative.Reference.Tests.Vision;

/// <summary>
/// Runs <c>torch_reference.py</c> (HF forward semantics in float64 PyTorch) on random towers written in HF layout,
/// after it has checked each test's mmproj GGUF against the same weights with llama.cpp's gguf-py reader.
/// Several cases go through one interpreter start (importing torch dominates the run time).
/// A missing interpreter or module is a failure, not a skip: a comparison that did not run must not pass.
/// </summary>
internal static class TorchVisionReference
{
    public const string Python = "/usr/bin/python3";

    public sealed record Result(float[] Features, long[] FeatureShape, float[] Projected, long[] ProjectedShape);

    /// <summary>One tower to compare: its files live in <see cref="WorkDirectory"/>.</summary>
    public sealed record Case(RandomVisionModel Model, float[] Pixels, string WorkDirectory, string GgufPath, MmprojLayout Layout)
    {
        public string HfDirectory => Path.Combine(WorkDirectory, "hf");
        public string PixelsPath => Path.Combine(WorkDirectory, "pixels.npy");
        public string OutDirectory => Path.Combine(WorkDirectory, "torch");
    }

    /// <summary>Writes each case's HF directory and pixels, runs the script once for all, reads the outputs.</summary>
    public static Result[] Run(IReadOnlyList<Case> cases)
    {
        var list = new List<Dictionary<string, string>>();
        foreach (var c in cases)
        {
            c.Model.WriteHfDirectory(c.HfDirectory);
            NpyFile.WriteFloat32(c.PixelsPath, c.Pixels, 3, c.Model.Spec.ImageSize, c.Model.Spec.ImageSize);
            list.Add(new()
            {
                ["hf_dir"] = c.HfDirectory, ["pixels"] = c.PixelsPath, ["out_dir"] = c.OutDirectory, ["gguf"] = c.GgufPath,
                ["layout"] = c.Layout switch { MmprojLayout.Legacy => "legacy", MmprojLayout.ExplicitFeatureLayer => "explicit", _ => "all" },
            });
        }
        RunScript(list, Path.Combine(cases[0].WorkDirectory, ".."));
        return cases.Select(c => ReadResult(c.OutDirectory)).ToArray();
    }

    /// <summary>
    /// A Hugging Face folder the script reads itself (config.json + safetensors; <see cref="TowerFolder"/> for original
    /// LLaVA). With <see cref="GgufPath"/>, the script also checks that GGUF (llama.cpp's gguf-py reader) holds the
    /// folder's weights in the converter layout.
    /// </summary>
    public sealed record FolderCase(string HfFolder, string? TowerFolder, float[] Pixels, int ImageSize, string WorkDirectory, string? GgufPath = null)
    {
        public string PixelsPath => Path.Combine(WorkDirectory, "pixels.npy");
        public string OutDirectory => Path.Combine(WorkDirectory, "torch");
    }

    public static Result[] Run(IReadOnlyList<FolderCase> cases)
    {
        var list = new List<Dictionary<string, string?>>();
        foreach (var c in cases)
        {
            Directory.CreateDirectory(c.WorkDirectory);
            NpyFile.WriteFloat32(c.PixelsPath, c.Pixels, 3, c.ImageSize, c.ImageSize);
            list.Add(new()
            {
                ["hf_folder"] = c.HfFolder, ["tower_folder"] = c.TowerFolder, ["pixels"] = c.PixelsPath, ["out_dir"] = c.OutDirectory,
                ["gguf"] = c.GgufPath, ["layout"] = c.GgufPath is null ? null : "converted",
            });
        }
        RunScript(list, Path.Combine(cases[0].WorkDirectory, ".."));
        return cases.Select(c => ReadResult(c.OutDirectory)).ToArray();
    }

    private static Result ReadResult(string outDirectory)
    {
        var (features, featureShape) = NpyFile.ReadFloat32(Path.Combine(outDirectory, "features.npy"));
        var (projected, projectedShape) = NpyFile.ReadFloat32(Path.Combine(outDirectory, "projected.npy"));
        return new Result(features, featureShape, projected, projectedShape);
    }

    private static void RunScript<T>(List<T> list, string directory)
    {
        string casesPath = Path.Combine(directory, $"cases-{Guid.NewGuid():N}.json");
        File.WriteAllText(casesPath, JsonSerializer.Serialize(list));

        string script = Path.Combine(AppContext.BaseDirectory, "Vision", "torch_reference.py");
        if (!File.Exists(script)) throw new FileNotFoundException($"reference script not copied to the test output: {script}");
        var psi = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in new[] { script, "--cases", casesPath, "--gguf-py", Path.Combine(ReferencePaths.LlamaCppSource, "gguf-py") })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {Python}");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(300_000))
        {
            p.Kill(true);
            throw new TimeoutException("torch_reference.py did not finish within 300 s");
        }
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"torch_reference.py failed (exit {p.ExitCode}); install the references with tools/install-test-deps.sh.\n{stdout.Result}\n{stderr.Result}");
    }
}
