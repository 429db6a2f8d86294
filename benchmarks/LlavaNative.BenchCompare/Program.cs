using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using LlavaNative.Kernels.Tensors;
using LlavaNative.TestSupport;
using LlavaNative.TestSupport.LlamaCpp;

// Compares `llava bench` with llama.cpp (through the TestSupport P/Invoke binding, llama-bench definitions and
// llama.cpp's default speed settings) on a random-weight Qwen2-0.5B-shape model at several weight types.
//
//   prepare  --dir D                      write the F16 model (reused if present) and its llama.cpp quantizations
//   llamacpp -m FILE [-p P -n N -t T --reps R]   measure llama.cpp once, print one JSON object
//   compare  --dir D --llava LLAVA.DLL [-p 128 -n 64 -t 2 --reps 3 --types F16,Q8_0,Q4_0,Q4_K_M]
//            prepare, then for each type run ours and llama.cpp alternately, each in a fresh process;
//            print a markdown table
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
try
{
    if (args.Length == 0)
        throw new ArgumentException("usage: BenchCompare prepare|llamacpp|compare|vision-prepare|vision-ours|vision [options] (see Program.cs, VisionBench.cs)");
    var options = Options.Parse(args.AsSpan(1));
    return args[0] switch
    {
        "prepare" => Commands.Prepare(options),
        "llamacpp" => Commands.LlamaCpp(options),
        "compare" => Commands.Compare(options),
        "vision-prepare" => VisionBench.Prepare(options),
        "vision-ours" => VisionBench.Ours(options),
        "vision" => VisionBench.Compare(options),
        _ => throw new ArgumentException($"unknown command '{args[0]}'"),
    };
}
catch (Exception e) when (e is ArgumentException or InvalidOperationException or FileNotFoundException)
{
    Console.Error.WriteLine($"BenchCompare: {e.Message}");
    return 1;
}

sealed class Options
{
    private readonly Dictionary<string, string> _values = new();

    public static Options Parse(ReadOnlySpan<string> args)
    {
        var o = new Options();
        for (int i = 0; i < args.Length; i++)
        {
            if (!args[i].StartsWith('-') || i + 1 >= args.Length)
                throw new ArgumentException($"expected '-option value', got '{args[i]}'");
            o._values[args[i]] = args[++i];
        }
        return o;
    }

    public string Get(string key, string fallback) => _values.GetValueOrDefault(key, fallback);
    public string Require(string key) => _values.TryGetValue(key, out var v) ? v : throw new ArgumentException($"{key} is required");
    public int Int(string key, int fallback) => _values.TryGetValue(key, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
}

static class Commands
{
    /// <summary>Qwen2-0.5B's shape with random weights: 24 layers, dim 896, 14/2 heads (head_dim 64), ffn 4864, real qwen2 vocabulary, tied, q/k/v bias.</summary>
    private static readonly RandomModelSpec Spec = RandomModelSpec.Tiny(RandomModelArchitecture.Qwen2) with
    {
        EmbeddingLength = 896,
        BlockCount = 24,
        HeadCount = 14,
        KvHeadCount = 2,
        FeedForwardLength = 4864,
        ContextLength = 32768,
        WeightType = TensorType.F16,
    };

    private static readonly (string Name, LlamaFtype? Ftype)[] AllTypes =
    [
        ("F16", null), ("Q8_0", LlamaFtype.MOSTLY_Q8_0), ("Q4_0", LlamaFtype.MOSTLY_Q4_0), ("Q4_K_M", LlamaFtype.MOSTLY_Q4_K_M),
    ];

    public static int Prepare(Options o)
    {
        foreach (var (type, path) in PrepareFiles(o.Get("--dir", DefaultDirectory), AllTypes.Select(t => t.Name).ToArray()))
            Console.WriteLine($"{type}\t{new FileInfo(path).Length / 1e6:F1} MB\t{path}");
        return 0;
    }

    public static int LlamaCpp(Options o)
    {
        LlamaCppSpeedResult r = LlamaCppSpeed.Measure(o.Require("-m"), o.Int("-t", 2), o.Int("-p", 128), o.Int("-n", 64), o.Int("--reps", 3));
        Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["pp_tok_s"] = r.PromptTokensPerSecond,
            ["tg_tok_s"] = r.GenerationTokensPerSecond,
            ["pp_runs"] = r.PromptRuns,
            ["tg_runs"] = r.GenerationRuns,
            ["threads"] = r.Threads,
            ["flash_attn"] = r.FlashAttention,
            ["cpu_backend"] = Path.GetFileName(LlamaCppModel.CpuBackend),
        }));
        return 0;
    }

    public static int Compare(Options o)
    {
        string llava = Path.GetFullPath(o.Require("--llava"));
        if (!File.Exists(llava))
            throw new FileNotFoundException($"{llava} does not exist (build src/Cli in Release first)", llava);
        int p = o.Int("-p", 128), n = o.Int("-n", 64), t = o.Int("-t", 2), reps = o.Int("--reps", 3);
        string[] types = o.Get("--types", string.Join(',', AllTypes.Select(x => x.Name))).Split(',', StringSplitOptions.RemoveEmptyEntries);
        var files = PrepareFiles(o.Get("--dir", DefaultDirectory), types);

        string common = $"-p {p} -n {n} -t {t} --reps {reps}";
        var rows = new List<string>();
        var notes = new List<string>();
        int index = 0;
        foreach (var (type, path) in files)
        {
            // Alternate which engine goes first so slow drift (thermal, page cache, a neighbour) hits both.
            bool oursFirst = index++ % 2 == 0;
            JsonElement ours = default, reference = default;
            string loadOurs = "", loadRef = "";
            for (int k = 0; k < 2; k++)
            {
                if ((k == 0) == oursFirst)
                {
                    loadOurs = LoadAverage();
                    ours = RunJson("dotnet", $"\"{llava}\" bench -m \"{path}\" {common} --json", $"ours {type}");
                }
                else
                {
                    loadRef = LoadAverage();
                    reference = RunJson(SelfCommand.FileName, $"{SelfCommand.Prefix}llamacpp -m \"{path}\" {common}", $"llama.cpp {type}");
                }
            }
            double? oPp = Number(ours, "pp_tok_s"), rPp = Number(reference, "pp_tok_s");
            double? oTg = Number(ours, "tg_tok_s"), rTg = Number(reference, "tg_tok_s");
            double mb = new FileInfo(path).Length / 1e6;
            rows.Add($"| {type} | {mb:F0} | {F(oPp)} | {F(rPp)} | {Ratio(oPp, rPp)} | {F(oTg)} | {F(rTg)} | {Ratio(oTg, rTg)} |");
            notes.Add($"{type}: ours pp runs [{Runs(ours, "pp_runs")}] tg runs [{Runs(ours, "tg_runs")}] (load before: {loadOurs}); " +
                      $"llama.cpp pp runs [{Runs(reference, "pp_runs")}] tg runs [{Runs(reference, "tg_runs")}] " +
                      $"(load before: {loadRef}; {Text(reference, "cpu_backend")}, flash_attn {Text(reference, "flash_attn")})");
            Console.Error.WriteLine($"[bench-compare] {rows[^1]}");
        }

        Console.WriteLine($"| type | file MB | ours pp{p} | llama.cpp pp{p} | ratio | ours tg{n} | llama.cpp tg{n} | ratio |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|");
        foreach (string row in rows)
            Console.WriteLine(row);
        Console.WriteLine();
        Console.WriteLine($"tok/s, median of {reps} after one warm-up, {t} threads; ratio = ours / llama.cpp. Individual runs:");
        foreach (string note in notes)
            Console.WriteLine($"- {note}");
        return 0;
    }

    private static string DefaultDirectory =>
        Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "llavanative", "bench");

    /// <summary>
    /// The F16 model (written once; a sidecar file records the spec so a changed spec rewrites it) and each
    /// quantization (made once from it with llama_model_quantize, 2 threads).
    /// </summary>
    private static List<(string Type, string Path)> PrepareFiles(string dir, string[] types)
    {
        Directory.CreateDirectory(dir);
        string f16 = Path.Combine(dir, "qwen2-0.5b-shape-random-F16.gguf");
        string specFile = f16 + ".spec";
        string specText = Spec.ToString();
        bool fresh = !File.Exists(f16) || !File.Exists(specFile) || File.ReadAllText(specFile) != specText;
        if (fresh)
        {
            var sw = Stopwatch.StartNew();
            Console.Error.WriteLine($"[bench-compare] writing {f16} ({RandomModels.VocabularySize(Spec)} vocabulary rows)");
            foreach (string stale in Directory.EnumerateFiles(dir, "qwen2-0.5b-shape-random-*"))
                File.Delete(stale);
            RandomModels.Write(Spec, f16 + ".partial");
            File.Move(f16 + ".partial", f16, overwrite: true);
            File.WriteAllText(specFile, specText);
            Console.Error.WriteLine($"[bench-compare] wrote {new FileInfo(f16).Length / 1e6:F0} MB in {sw.Elapsed.TotalSeconds:F0} s, " +
                                    $"peak working set {Process.GetCurrentProcess().PeakWorkingSet64 / 1e6:F0} MB");
        }
        var result = new List<(string, string)>();
        foreach (string type in types)
        {
            var entry = AllTypes.FirstOrDefault(t => t.Name.Equals(type, StringComparison.OrdinalIgnoreCase));
            if (entry.Name is null)
                throw new ArgumentException($"unknown type '{type}' (known: {string.Join(", ", AllTypes.Select(t => t.Name))})");
            if (entry.Ftype is not LlamaFtype ftype)
            {
                result.Add((entry.Name, f16));
                continue;
            }
            string path = Path.Combine(dir, $"qwen2-0.5b-shape-random-{entry.Name}.gguf");
            if (!File.Exists(path))
            {
                var sw = Stopwatch.StartNew();
                LlamaCppModel.Quantize(f16, path + ".partial", ftype, threads: 2);
                File.Move(path + ".partial", path);
                Console.Error.WriteLine($"[bench-compare] quantized {entry.Name} in {sw.Elapsed.TotalSeconds:F0} s");
            }
            result.Add((entry.Name, path));
        }
        return result;
    }

    /// <summary>How to start this program again as a child process (apphost, or dotnet + dll).</summary>
    internal static (string FileName, string Prefix) SelfCommand
    {
        get
        {
            string host = Environment.ProcessPath!;
            string dll = typeof(Commands).Assembly.Location;
            return Path.GetFileNameWithoutExtension(host) == "dotnet" ? (host, $"\"{dll}\" ") : (host, "");
        }
    }

    internal static JsonElement RunJson(string fileName, string arguments, string what, Dictionary<string, string>? environment = null)
    {
        var psi = new ProcessStartInfo(fileName, arguments) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (key, value) in environment ?? []) psi.Environment[key] = value;
        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {fileName}");
        var stderr = new StringBuilder();
        process.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (stderr) stderr.AppendLine(e.Data); };
        process.BeginErrorReadLine();
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        string? last = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault();
        if (process.ExitCode != 0 || last is null || !last.TrimStart().StartsWith('{'))
        {
            Console.Error.WriteLine($"[bench-compare] {what} FAILED (exit {process.ExitCode}): {fileName} {arguments}\n{stdout}\n{stderr}");
            return default;
        }
        return JsonDocument.Parse(last).RootElement.Clone();
    }

    internal static string LoadAverage()
    {
        try { return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)); }
        catch (IOException) { return "?"; }
    }

    internal static double? Number(JsonElement e, string key) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;

    internal static string Text(JsonElement e, string key) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(key, out var v) ? v.ToString() : "?";

    internal static string Runs(JsonElement e, string key) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Array
            ? string.Join(", ", v.EnumerateArray().Select(x => x.GetDouble().ToString("F1", CultureInfo.InvariantCulture)))
            : "failed";

    internal static string F(double? v) => v is double d ? d.ToString("F1", CultureInfo.InvariantCulture) : "failed";

    internal static string Ratio(double? ours, double? reference) =>
        ours is double a && reference is double b && b > 0 ? (a / b).ToString("F2", CultureInfo.InvariantCulture) : "–";
}
