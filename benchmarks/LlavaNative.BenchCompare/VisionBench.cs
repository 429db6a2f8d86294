using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using LlavaNative.Kernels.Cpu;
using LlavaNative.Kernels.Tensors;
using LlavaNative.Model.Formats.Npy;
using LlavaNative.Model.Llava;
using LlavaNative.Model.Vision;
using LlavaNative.TestSupport.Vision;

// Vision tower speed: ours (ImageEncoder.LoadGguf + EncodeAndProject) vs PyTorch CPU (torch_vision_bench.py, the
// float32 run of the tests' HF-semantics reference forward) on random-weight mmproj GGUFs with real LLaVA shapes.
//
//   vision-prepare --dir D                       write the GGUFs, their HF-layout .npy twins and one image (reused)
//   vision-ours -m GGUF --pixels NPY [-t 2 --reps 3 --out NPY]   time ours once, print one JSON object
//   vision --dir D --script torch_vision_bench.py [--python /usr/bin/python3-t 2 --reps 3 --shapes clip-vit-l-336,siglip-so400m-384 --types F32,F16
//          --torch-blas openblas=LIBDIR,generic]  prepare, then per shape/type run ours and torch (each BLAS), each in
//          a fresh process; check agreement on the warm-up outputs; print a markdown table
static class VisionBench
{
    /// <summary>The towers LLaVA uses, random weights. CLIP as LLaVA-1.5 (feature layer −2: the legacy converter keeps 23 of 24 blocks).</summary>
    private static readonly (string Name, RandomVisionSpec Spec, MmprojLayout Layout)[] Shapes =
    [
        ("clip-vit-l-336", new RandomVisionSpec
        {
            Kind = VisionTowerKind.Clip, ImageSize = 336, PatchSize = 14, HiddenSize = 1024, Heads = 16, FeedForward = 4096,
            Layers = 24, VisionFeatureLayer = -2, SelectStrategy = "default", HiddenAct = "quick_gelu", LayerNormEps = 1e-5f,
            Projector = ProjectorKind.Mlp2xGelu, TextHiddenSize = 4096,
        }, MmprojLayout.Legacy),
        // SigLIP-so400m/14-384 as llava-onevision-qwen2-0.5b configures it: 26 layers, last hidden state, all 729 tokens, projector to 896.
        ("siglip-so400m-384", new RandomVisionSpec
        {
            Kind = VisionTowerKind.SigLip, ImageSize = 384, PatchSize = 14, HiddenSize = 1152, Heads = 16, FeedForward = 4304,
            Layers = 26, VisionFeatureLayer = -1, SelectStrategy = "full", HiddenAct = "gelu_pytorch_tanh", LayerNormEps = 1e-6f,
            Projector = ProjectorKind.Mlp2xGelu, TextHiddenSize = 896,
        }, MmprojLayout.AllBlocks),
    ];

    private static readonly TensorType[] Types = [TensorType.F32, TensorType.F16];

    private sealed record Prepared(string Shape, TensorType Type, string Gguf, string HfDirectory, string Pixels, int Blocks);

    public static int Prepare(Options o)
    {
        foreach (var p in PrepareFiles(o.Get("--dir", DefaultDirectory), Shapes.Select(s => s.Name).ToArray(), Types))
            Console.WriteLine($"{p.Shape}\t{p.Type}\t{new FileInfo(p.Gguf).Length / 1e6:F0} MB\t{p.Gguf}");
        return 0;
    }

    public static int Ours(Options o)
    {
        int threads = o.Int("-t", 2), reps = o.Int("--reps", 3);
        float[] pixels = NpyFile.ReadFloat32(o.Require("--pixels")).Data;
        var sw = Stopwatch.StartNew();
        using var pool = new ComputeThreadPool(threads);
        using var encoder = ImageEncoder.LoadGguf(o.Require("-m"), pool);
        double loadMs = sw.Elapsed.TotalMilliseconds;
        var output = new float[encoder.ImageTokenCount * encoder.EmbeddingLength];
        var runs = new List<double>();
        for (int i = 0; i <= reps; i++)
        {
            sw.Restart();
            encoder.EncodeAndProject(pixels, output);
            double ms = sw.Elapsed.TotalMilliseconds;
            if (i == 0)
            {
                if (o.Get("--out", "") is { Length: > 0 } outPath)
                    NpyFile.WriteFloat32(outPath, output, encoder.ImageTokenCount, encoder.EmbeddingLength);
            }
            else runs.Add(ms);
        }
        Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["median_ms"] = Median(runs), ["runs_ms"] = runs, ["load_ms"] = loadMs, ["threads"] = threads,
            ["shape"] = new[] { encoder.ImageTokenCount, encoder.EmbeddingLength },
        }));
        return 0;
    }

    public static int Compare(Options o)
    {
        string python = o.Get("--python", "/usr/bin/python3");
        string script = Path.GetFullPath(o.Require("--script")); // benchmarks/LlavaNative.BenchCompare/torch_vision_bench.py, in place (it imports the tests' reference)
        int t = o.Int("-t", 2), reps = o.Int("--reps", 3);
        string[] shapes = o.Get("--shapes", string.Join(',', Shapes.Select(s => s.Name))).Split(',', StringSplitOptions.RemoveEmptyEntries);
        TensorType[] types = o.Get("--types", "F32,F16").Split(',', StringSplitOptions.RemoveEmptyEntries)
            .Select(x => Enum.Parse<TensorType>(x, ignoreCase: true)).ToArray();
        // name=LD_LIBRARY_PATH directory, or a bare name for torch's own link (Debian: the reference BLAS).
        var blases = o.Get("--torch-blas", "generic").Split(',', StringSplitOptions.RemoveEmptyEntries)
            .Select(b => b.Split('=', 2)).Select(b => (Name: b[0], LibraryPath: b.Length > 1 ? b[1] : null)).ToArray();
        string dir = o.Get("--dir", DefaultDirectory);
        var files = PrepareFiles(dir, shapes, types);
        string scratch = Path.Combine(dir, "vision-out");
        Directory.CreateDirectory(scratch);

        var rows = new List<string>();
        var notes = new List<string>();
        int rounds = o.Int("--rounds", 1);
        foreach (var p in files)
        {
            // --rounds N: ours and torch alternate N times (fresh processes each), so a slow spell of the host falls on
            // both; the ratio is the median of the per-round ratios, the ms the medians of all runs.
            var oursRuns = new List<double>();
            var torchRuns = new Dictionary<string, List<double>>();
            var roundRatios = new Dictionary<string, List<double>>();
            string firstLoad = "", agreement = "";
            var firstLoadRef = new Dictionary<string, string>();
            for (int round = 0; round < rounds; round++)
            {
                string oursOut = Path.Combine(scratch, "ours.npy");
                string load = Commands.LoadAverage();
                if (round == 0) firstLoad = load;
                var ours = Commands.RunJson(Commands.SelfCommand.FileName,
                    $"{Commands.SelfCommand.Prefix}vision-ours -m \"{p.Gguf}\" --pixels \"{p.Pixels}\" -t {t} --reps {reps} --out \"{oursOut}\"", $"ours {p.Shape} {p.Type}");
                double? oursMs = Commands.Number(ours, "median_ms");
                if (oursMs is double om) oursRuns.Add(om);
                notes.Add($"{p.Shape} {p.Type}{(rounds > 1 ? $" round {round + 1}" : "")}: ours runs [{Commands.Runs(ours, "runs_ms")}] ms, load {Commands.F(Commands.Number(ours, "load_ms"))} ms (load average before: {load})");
                foreach (var (blas, libraryPath) in blases)
                {
                    string torchOut = Path.Combine(scratch, "torch.npy");
                    string loadRef = Commands.LoadAverage();
                    if (round == 0) firstLoadRef[blas] = loadRef;
                    var env = new Dictionary<string, string>();
                    if (libraryPath != null)
                    {
                        env["LD_LIBRARY_PATH"] = libraryPath;
                        env["OPENBLAS_NUM_THREADS"] = t.ToString(CultureInfo.InvariantCulture);
                    }
                    var torch = Commands.RunJson(python,
                        $"\"{script}\" --hf-dir \"{p.HfDirectory}\" --pixels \"{p.Pixels}\" --blocks {p.Blocks} --threads {t} --reps {reps} --out \"{torchOut}\"",
                        $"torch {p.Shape} {p.Type} {blas}", env);
                    double? torchMs = Commands.Number(torch, "median_ms");
                    if (round == 0) agreement = Agreement(oursOut, torchOut);
                    if (torchMs is double tm)
                    {
                        (torchRuns.TryGetValue(blas, out var list) ? list : torchRuns[blas] = []).Add(tm);
                        if (oursMs is double om2) (roundRatios.TryGetValue(blas, out var r) ? r : roundRatios[blas] = []).Add(om2 / tm);
                    }
                    notes.Add($"{p.Shape} {p.Type}{(rounds > 1 ? $" round {round + 1}" : "")} torch ({blas}): runs [{Commands.Runs(torch, "runs_ms")}] ms, torch {Commands.Text(torch, "torch")}, " +
                              $"{Commands.Text(torch, "blas_built")}, mapped: {Commands.Text(torch, "blas_mapped")}, {Commands.Text(torch, "threads")} threads (load average before: {loadRef})");
                    File.Delete(torchOut);
                }
                File.Delete(oursOut);
            }
            foreach (var (blas, _) in blases)
            {
                double? oursMs = oursRuns.Count > 0 ? Median(oursRuns) : null;
                double? torchMs = torchRuns.TryGetValue(blas, out var tr) ? Median(tr) : null;
                string ratio = roundRatios.TryGetValue(blas, out var rr)
                    ? Median(rr).ToString("F2", CultureInfo.InvariantCulture) + (rounds > 1 ? $" ({string.Join(" ", rr.Select(x => x.ToString("F2", CultureInfo.InvariantCulture)))})" : "")
                    : Commands.Ratio(oursMs, torchMs);
                rows.Add($"| {p.Shape} | {p.Type} | {Commands.F(oursMs)} | {blas} | {Commands.F(torchMs)} | {ratio} | {agreement} | {firstLoad} / {firstLoadRef.GetValueOrDefault(blas, "")} |");
                Console.Error.WriteLine($"[bench-vision] {rows[^1]}");
            }
        }

        Console.WriteLine("| shape | weights | ours ms/image | torch BLAS | torch ms/image | ratio | agreement (max abs, cosine) | load avg before ours / torch |");
        Console.WriteLine("|---|---|---:|---|---:|---:|---|---|");
        foreach (string row in rows) Console.WriteLine(row);
        Console.WriteLine();
        Console.WriteLine($"ms per image (EncodeAndProject of one preprocessed image, tower + projector), median of {reps} after one warm-up" +
                          (rounds > 1 ? $" per process, {rounds} rounds of ours and torch alternating (ms: median over the rounds; ratio: median of the per-round ratios, each listed), " : ", ") +
                          $"{t} threads, each engine in a fresh process; ratio = ours / torch (below 1 = ours faster). torch runs float32 " +
                          "(for F16 weights: float32 compute on the F16-rounded weights). Agreement compares the warm-up outputs. Individual runs:");
        foreach (string note in notes) Console.WriteLine($"- {note}");
        return 0;
    }

    private static string Agreement(string oursPath, string torchPath)
    {
        if (!File.Exists(oursPath) || !File.Exists(torchPath)) return "–";
        float[] a = NpyFile.ReadFloat32(oursPath).Data, b = NpyFile.ReadFloat32(torchPath).Data;
        if (a.Length != b.Length) return $"length {a.Length} vs {b.Length}";
        double maxAbs = 0, dot = 0, na = 0, nb = 0, maxRef = 0;
        for (int i = 0; i < a.Length; i++)
        {
            maxAbs = Math.Max(maxAbs, Math.Abs(a[i] - b[i]));
            maxRef = Math.Max(maxRef, Math.Abs(b[i]));
            dot += (double)a[i] * b[i]; na += (double)a[i] * a[i]; nb += (double)b[i] * b[i];
        }
        return $"{maxAbs:G2} of max {maxRef:G2}, {dot / Math.Sqrt(na * nb):F7}";
    }

    private static double Median(List<double> values)
    {
        var s = values.Order().ToArray();
        return s.Length == 0 ? double.NaN : s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }

    private static string DefaultDirectory =>
        Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "llavanative", "bench");

    /// <summary>
    /// Per shape and type: the mmproj GGUF, the HF-layout .npy directory torch reads (same values) and one image of
    /// N(0, 1) normalized pixels. Written once; a sidecar records the spec, so a changed spec rewrites them.
    /// </summary>
    private static List<Prepared> PrepareFiles(string dir, string[] shapes, TensorType[] types)
    {
        Directory.CreateDirectory(dir);
        var result = new List<Prepared>();
        foreach (string shapeName in shapes)
        {
            var entry = Shapes.FirstOrDefault(s => s.Name == shapeName);
            if (entry.Name is null)
                throw new ArgumentException($"unknown shape '{shapeName}' (known: {string.Join(", ", Shapes.Select(s => s.Name))})");
            foreach (var type in types)
            {
                if (type is not (TensorType.F32 or TensorType.F16)) throw new ArgumentException($"type {type}: only F32 and F16");
                var spec = entry.Spec with { MatrixType = type };
                string stem = Path.Combine(dir, $"{entry.Name}-random-{type}");
                string gguf = stem + ".mmproj.gguf", hf = stem + "-hf", pixels = stem + ".pixels.npy", specFile = stem + ".spec";
                string specText = $"{spec} {entry.Layout}";
                if (!File.Exists(specFile) || File.ReadAllText(specFile) != specText)
                {
                    var sw = Stopwatch.StartNew();
                    Console.Error.WriteLine($"[bench-vision] writing {gguf} and {hf}/");
                    if (Directory.Exists(hf)) Directory.Delete(hf, recursive: true);
                    var model = RandomVisionModel.Create(spec);
                    double created = sw.Elapsed.TotalSeconds;
                    model.WriteGguf(gguf, entry.Layout);
                    model.WriteHfDirectory(hf);
                    float[] image = model.RandomPixels(seed: 42);
                    NpyFile.WriteFloat32(pixels, image, 3, spec.ImageSize, spec.ImageSize);
                    File.WriteAllText(specFile, specText);
                    Console.Error.WriteLine($"[bench-vision] random weights in {created:F0} s, written in {sw.Elapsed.TotalSeconds - created:F0} s " +
                                            $"({new FileInfo(gguf).Length / 1e6:F0} MB GGUF), peak working set {Process.GetCurrentProcess().PeakWorkingSet64 / 1e6:F0} MB");
                }
                int blocks = entry.Layout == MmprojLayout.Legacy ? spec.Layers - 1 : spec.Layers;
                result.Add(new Prepared(entry.Name, type, gguf, hf, pixels, blocks));
            }
        }
        return result;
    }
}
