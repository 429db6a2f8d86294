using System.Diagnostics;
using System.Text.Json;
using Xunit;
using Xunit.Abstractions;
using LlavaNative.Model.Formats.Npy;
using LlavaNative.TestSupport.Cuda;
using LlavaNative.TestSupport.Llava;

namespace LlavaNative.Tests.Cuda;

/// <summary>
/// Issue 7's GPU benchmark (GpuCheck --bench-llava, tools/device/gpu-check.sh bench) on the host emulator, so the code
/// path a device run takes is exercised before a GPU sees it: a tiny folder in transformers 5.x's llava-hf layout
/// loaded through LlavaModel on the Cuda backend, image encode, prefill, greedy decode at F16 and a Q4_K_M decoder
/// quantized from it, each against the CPU backend; and bench_torch.py's argument handling and harness.
/// </summary>
public class LlavaBenchmarkTests(ITestOutputHelper output)
{
    private static readonly string RepositoryRoot = FindRepositoryRoot();

    [EmulatorFact]
    public void BenchmarkRunsOnTinyTransformers5FolderAndAgreesWithCpu()
    {
        string root = Path.Combine(LlavaFixtures.TempFolder, "bench-tiny");
        string folder = LlavaBenchmark.WriteTinyFolder(root, dim: 256, layers: 2);
        Assert.Contains("\"rope_parameters\"", File.ReadAllText(Path.Combine(folder, "config.json")));

        using var device = GpuTestDevices.Emulator();
        var options = new LlavaBenchOptions
        {
            TextTokens = 5, DecodeTokens = 3, EncodeReps = 1, PrefillReps = 1, DecodeReps = 1, CopyBytes = 1 << 20,
            QuantTypes = ["q4_k_m"], CpuCheck = true, GpuTensorCores = false, Threads = 2,
        };
        var report = LlavaBenchmark.Run(device, folder, options, output.WriteLine);
        foreach (var v in report.Values) output.WriteLine($"{v.Key} = {v.Value:g6} {v.Unit}");

        Assert.Empty(report.Failures);
        // F32 activations on both sides (tensor cores off): the GPU's image rows and logits within 1e-4 of the
        // CPU's scale; greedy tokens identical (3 decode steps + the prefill's token).
        Assert.True(report["cpu_check_rows_max_abs"] <= 1e-4 * Math.Max(1, report["cpu_check_rows_max"]!.Value), $"image rows differ by {report["cpu_check_rows_max_abs"]}");
        foreach (string type in new[] { "f16", "q4_k_m" })
        {
            double scale = Math.Max(1, report[$"cpu_check_{type}_logits_max"]!.Value);
            Assert.True(report[$"cpu_check_{type}_logits_max_abs"] <= 1e-4 * scale, $"{type}: logits differ by {report[$"cpu_check_{type}_logits_max_abs"]}");
            Assert.Equal(options.DecodeTokens + 1, report[$"cpu_check_{type}_tokens_agree"]);
            Assert.Equal(options.DecodeTokens + 1, report.Tokens[type].Length);
            Assert.True(report[$"decode_{type}_tok_s"] > 0);
            Assert.True(report[$"prefill_{type}_tok_s"] > 0);
        }

        // Bytes a decode step reads, counted independently from the shapes: F16 = 2 bytes per weight of 2 layers
        // (q, k, v, o: 256 × 256; gate, up, down: 512 × 256) and the LM head (512 × 256), plus one embedding row.
        const long dim = 256, ffn = 512, vocab = 512;
        long f16 = 2 * (2 * (4 * dim * dim + 3 * ffn * dim) + vocab * dim + dim);
        Assert.Equal(f16, report["decode_f16_weight_bytes"]);
        // Q4_K_M at 2 layers: use_more_bits picks layer 1 only (the last eighth: layer ≥ 7·2/8), so its attn_v and
        // ffn_down are Q6_K (210 bytes per 256 weights), everything else Q4_K (144 per 256); the LM head is Q6_K.
        long q4k = 144, q6k = 210;
        long layer0 = (4 * dim * dim + 3 * ffn * dim) / 256 * q4k;
        long layer1 = (3 * dim * dim + 2 * ffn * dim) / 256 * q4k + (dim * dim + ffn * dim) / 256 * q6k;
        Assert.Equal(layer0 + layer1 + vocab * dim / 256 * q6k + dim / 256 * q4k, report["decode_q4_k_m_weight_bytes"]);
        Assert.True(report["copy_gb_s"] > 0);

        var table = LlavaBenchmark.Table(report, null);
        foreach (string row in table) output.WriteLine(row);
        Assert.Contains(table, r => r.StartsWith("decode Q4_K_M, tok/s", StringComparison.Ordinal));
        // The same upload timed again on the integer (dp4a) path.
        Assert.True(report["decode_q4_k_m_dp4a_tok_s"] > 0);
        Assert.Equal(options.DecodeTokens + 1, report.Tokens["q4_k_m_dp4a"].Length);
        Assert.Contains(table, r => r.StartsWith("decode Q4_K_M dp4a path, tok/s", StringComparison.Ordinal));
        using var json = JsonDocument.Parse(report.ToJson());
        Assert.Equal(options.DecodeTokens + 1, json.RootElement.GetProperty("tokens").GetProperty("f16").GetArrayLength());
    }

    /// <summary>bench_torch.py compiles; with Debian's torch (no transformers) its --dry-run writes what our side reads.</summary>
    [Fact]
    public void TorchScriptCompilesAndDryRunWritesWhatGpuCheckReads()
    {
        string script = Path.Combine(RepositoryRoot, "tools", "device", "bench_torch.py");
        string python = File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
        string compiled = Path.Combine(LlavaFixtures.TempFolder, "bench_torch.pyc");
        var (code, text) = Run(python, ["-c", "import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)", script, compiled]);
        Assert.True(code == 0, "py_compile failed: " + text);

        var (hasTorch, _) = Run(python, ["-c", "import torch, numpy"]);
        if (hasTorch != 0)
        {
            output.WriteLine($"{python} has no torch/numpy: the dry run is not exercised (tools/install-test-deps.sh installs them)");
            return;
        }
        string dir = Path.Combine(LlavaFixtures.TempFolder, "bench-torch-dry");
        string jsonPath = Path.Combine(dir, "torch.json");
        (code, text) = Run(python, [script, "--dry-run", "--model-dir", Path.Combine(dir, "model"), "--json", jsonPath, "--text-tokens", "7"]);
        output.WriteLine(text);
        Assert.True(code == 0, "dry run failed: " + text);

        using var json = JsonDocument.Parse(File.ReadAllText(jsonPath));
        var root = json.RootElement;
        Assert.True(root.GetProperty("dry_run").GetBoolean());
        Assert.True(root.GetProperty("copy_gb_s").GetDouble() > 0);
        var ids = root.GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        Assert.Equal(7, ids.Length);
        Assert.All(ids, id => Assert.InRange(id, 0, 511)); // the tiny folder's vocabulary
        var (pixels, _) = NpyFile.ReadFloat32(Path.Combine(dir, "model-reference", "pixels.npy"));
        Assert.Equal(3 * 56 * 56, pixels.Length); // the tiny CLIP's 56 px input, as LlavaBenchmark.WriteTinyFolder's tower

        // The table takes the torch JSON's numbers where they exist and leaves the rest empty.
        var table = LlavaBenchmark.Table(new LlavaBenchReport(), root);
        Assert.Contains(table, r => r.StartsWith("device-to-device copy", StringComparison.Ordinal) && !r.Contains("—          —", StringComparison.Ordinal));

        // Bad arguments are refused with exit 2 and a message.
        (code, text) = Run(python, [script, "--dry-run", "--reps", "0"]);
        Assert.Equal(2, code);
        Assert.Contains("must be positive", text);
    }

    private static (int Code, string Output) Run(string file, string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout + stderr.Result);
    }

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "LlavaNative.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException("LlavaNative.sln not found above " + AppContext.BaseDirectory);
    }
}
