using System.Globalization;
using System.Text;
using System.Text.Json;
using LlavaNative.Kernels.Cuda;
using LlavaNative.TestSupport.Cuda;

namespace LlavaNative.Tools.GpuCheck;

/// <summary>
/// Issue 7's benchmark mode of GpuCheck (tools/device/README.md, "GPU benchmark"):
/// <code>
/// GpuCheck --bench-llava FOLDER [--torch-json F] [--reference DIR] [--out DIR] [--emulator] [--cpu-check]
///          [--text-tokens N] [--decode-tokens N] [--quant q4_0,q4_k_m|none] [--copy-mib N] [--threads N]
///          [--reps-encode N] [--reps-prefill N] [--reps-decode N] [--no-tensor-cores]
/// GpuCheck --write-tiny-llava DIR [--dim N] [--layers N]     # the emulator's tiny folder (transformers 5.x layout)
/// </code>
/// Writes bench.txt (progress and the table) and bench.json (every value, the tokens, failures) to --out.
/// Exit code: 0 measured (targets met or not), 1 a check failed, 2 no GPU / bad arguments.
/// </summary>
internal static class LlavaBenchCommand
{
    public static bool Handles(string[] args) => args.Contains("--bench-llava") || args.Contains("--write-tiny-llava");

    public static int Run(string[] args)
    {
        string? folder = null, tinyRoot = null, outDir = null;
        bool emulate = false, noTensorCores = false;
        int dim = 256, layers = 2;
        var options = new LlavaBenchOptions();
        try
        {
            for (int i = 0; i < args.Length; i++)
            {
                string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
                int NextInt() => int.Parse(Next(), CultureInfo.InvariantCulture);
                switch (args[i])
                {
                    case "--bench-llava": folder = Next(); break;
                    case "--write-tiny-llava": tinyRoot = Next(); break;
                    case "--dim": dim = NextInt(); break;
                    case "--layers": layers = NextInt(); break;
                    case "--torch-json": options = options with { TorchJson = Next() }; break;
                    case "--reference": options = options with { ReferenceFolder = Next() }; break;
                    case "--out": outDir = Next(); break;
                    case "--emulator": emulate = true; break;
                    case "--cpu-check": options = options with { CpuCheck = true }; break;
                    case "--no-tensor-cores": noTensorCores = true; break;
                    case "--text-tokens": options = options with { TextTokens = NextInt() }; break;
                    case "--decode-tokens": options = options with { DecodeTokens = NextInt() }; break;
                    case "--reps-encode": options = options with { EncodeReps = NextInt() }; break;
                    case "--reps-prefill": options = options with { PrefillReps = NextInt() }; break;
                    case "--reps-decode": options = options with { DecodeReps = NextInt() }; break;
                    case "--copy-mib": options = options with { CopyBytes = (long)NextInt() << 20 }; break;
                    case "--threads": options = options with { Threads = NextInt() }; break;
                    case "--quant":
                        string q = Next();
                        options = options with { QuantTypes = q == "none" ? [] : q.Split(',', StringSplitOptions.RemoveEmptyEntries) };
                        break;
                    default: throw new ArgumentException($"unknown argument {args[i]}");
                }
            }
            if (noTensorCores) options = options with { GpuTensorCores = false };
            foreach (string q in options.QuantTypes) LlavaNative.Model.Formats.Conversion.GgufOutputType.Parse(q); // a typo fails here, not after the F16 runs
            if (folder == null && tinyRoot == null) throw new ArgumentException("--bench-llava FOLDER or --write-tiny-llava DIR is required");
        }
        catch (Exception e) when (e is ArgumentException or FormatException or OverflowException)
        {
            Console.Error.WriteLine($"GpuCheck: {e.Message}; usage: GpuCheck --bench-llava FOLDER [--torch-json F] [--reference DIR] [--out DIR] [--emulator] [--cpu-check] " +
                                    "[--text-tokens N] [--decode-tokens N] [--quant q4_0,q4_k_m|none] [--copy-mib N] [--threads N] [--reps-encode N] [--reps-prefill N] [--reps-decode N] [--no-tensor-cores]" +
                                    " | GpuCheck --write-tiny-llava DIR [--dim N] [--layers N]");
            return 2;
        }

        if (tinyRoot != null)
        {
            string written = LlavaBenchmark.WriteTinyFolder(tinyRoot, dim, layers);
            Console.WriteLine(written);
            if (folder == null) return 0;
        }

        var log = new StringBuilder();
        void Say(string line)
        {
            Console.WriteLine(line);
            log.AppendLine(line);
            if (outDir != null) File.WriteAllText(Path.Combine(outDir, "bench.txt"), log.ToString()); // a partial run still leaves its lines
        }
        if (outDir != null) Directory.CreateDirectory(outDir);

        IGpuDevice device;
        if (emulate)
        {
            var emulator = LlavaNative.TestSupport.Cuda.Emulator.CudaEmulator.Shared(out string why);
            if (emulator == null) { Say("no emulator: " + why); return 2; }
            device = new LlavaNative.TestSupport.Cuda.Emulator.EmulatedGpuDevice(emulator);
        }
        else
        {
            try { device = CudaDevice.Open(); }
            catch (Exception e) when (e is CudaUnavailableException or CudaException)
            {
                Say("no GPU: " + e.Message);
                return 2;
            }
        }
        using (device)
        {
            Say($"device   {device.Name}");
            Say($"folder   {folder}; torch JSON {options.TorchJson ?? "-"}; reference {options.ReferenceFolder ?? "-"}");
            LlavaBenchReport report;
            try { report = LlavaBenchmark.Run(device, folder!, options, Say); }
            catch (Exception e)
            {
                Say($"BENCHMARK FAILED: {e.GetType().Name}: {e.Message}");
                Say(e.StackTrace ?? "");
                return 1;
            }
            Say("");
            foreach (var v in report.Values) Say($"  {v.Key,-34} {LlavaBenchmark.Format(v.Value),12} {v.Unit,-6} {v.Label}");
            Say("");
            using var torch = options.TorchJson is { } tj && File.Exists(tj) ? JsonDocument.Parse(File.ReadAllText(tj)) : null;
            foreach (string row in LlavaBenchmark.Table(report, torch?.RootElement)) Say(row);
            foreach (string failure in report.Failures) Say("FAILED: " + failure);
            Say(report.Failures.Count == 0 ? "BENCHMARK DONE" : $"BENCHMARK DONE, {report.Failures.Count} CHECKS FAILED");
            if (outDir != null) File.WriteAllText(Path.Combine(outDir, "bench.json"), report.ToJson());
            return report.Failures.Count == 0 ? 0 : 1;
        }
    }
}
