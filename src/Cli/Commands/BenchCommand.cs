using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using LlavaNative.Kernels.Cpu;
using LlavaNative.Kernels.Tensors;
using LlavaNative.Model;
using LlavaNative.Model.Generation;
using LlavaNative.Model.Language;

namespace LlavaNative.Cli.Commands;

/// <summary>
/// <c>llava bench</c>: prompt-processing and generation speed with llama-bench's definitions —
/// pp = one batch of P tokens into an empty cache, tg = N single-token decodes from an empty cache —
/// after one warm-up of each, reporting the median over repetitions.
/// </summary>
public sealed class BenchCommand : Command
{
    public override string Name => "bench";
    public override string Summary => "measure prompt processing (pp) and generation (tg) speed like llama-bench";
    public override string[] Examples =>
    [
        "llava bench -m qwen2-0.5b-q4_0.gguf -p 128 -n 64 -t 2",
        "llava bench -m model.gguf -p 512 -n 128 --reps 5 --json",
        "llava bench -m ./qwen2-hf-folder --quantize q4_k -p 128 -n 64",
    ];
    public override IReadOnlyList<OptionSpec> Options =>
    [
        Model,
        new(["-p", "--n-prompt"], "P", "prompt tokens for pp (default 128; 0 skips)"),
        new(["-n", "--n-gen"], "N", "generated tokens for tg (default 64; 0 skips)"),
        new(["--reps"], "R", "repetitions, median reported (default 3)"),
        new(["--json"], null, "print one JSON object instead of a table"),
        CacheType, Quantize, Backend, Threads, Help,
    ];

    public override int Execute(ParsedArguments args)
    {
        string path = args.Require("-m", "the model file");
        int p = args.GetInt("-p", 128, 0, 1 << 20);
        int n = args.GetInt("-n", 64, 0, 1 << 20);
        int reps = args.GetInt("--reps", 3, 1, 1000);
        int threads = args.GetInt("-t", ComputeThreadPool.DefaultThreadCount(), 1, 1024);
        bool json = args.Has("--json");
        if (p == 0 && n == 0) throw new UsageException("nothing to measure: -p and -n are both 0");

        using var pool = new ComputeThreadPool(threads);
        var options = LoadOptions(args, pool);
        var load = Stopwatch.StartNew();
        using var model = ModelLoader.Load(path, options); // a .gguf file or a Hugging Face folder
        load.Stop();
        using var backend = DecoderBackend.Open(model, ParseBackend(args));
        ReportBackend(backend);
        using var state = backend.CreateSession(Math.Max(p, n) + 1, maxBatch: Math.Max(p, 1), pool: pool, cacheType: ParseCacheType(args));
        var random = new Random(1234);
        var vocab = model.Config.VocabSize;
        int[] prompt = Enumerable.Range(0, p).Select(_ => random.Next(vocab)).ToArray();

        double RunPrompt()
        {
            state.Reset();
            var sw = Stopwatch.StartNew();
            state.Forward(prompt);
            return p / sw.Elapsed.TotalSeconds;
        }
        double RunGeneration()
        {
            state.Reset();
            int token = random.Next(vocab);
            Span<int> one = stackalloc int[1];
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < n; i++)
            {
                one[0] = token;
                token = state.ForwardGreedy(one); // CPU: logits then Sampler.ArgMax; GPU: device argmax, one int back
            }
            return n / sw.Elapsed.TotalSeconds;
        }

        double? pp = null, tg = null;
        double[] ppRuns = [], tgRuns = [];
        if (p > 0)
        {
            RunPrompt(); // warm-up: page in the weights, tier up the JIT
            ppRuns = Enumerable.Range(0, reps).Select(_ => RunPrompt()).ToArray();
            pp = Median(ppRuns);
        }
        if (n > 0)
        {
            RunGeneration();
            tgRuns = Enumerable.Range(0, reps).Select(_ => RunGeneration()).ToArray();
            tg = Median(tgRuns);
        }

        long bytes = Directory.Exists(path)
            ? new DirectoryInfo(path).EnumerateFiles().Sum(f => f.Length)
            : new FileInfo(path).Length;
        if (json)
        {
            var result = new Dictionary<string, object?>
            {
                ["model"] = Path.GetFileName(path),
                ["model_bytes"] = bytes,
                ["architecture"] = model.Config.Architecture,
                ["threads"] = threads,
                ["backend"] = backend.Kind.ToString().ToLowerInvariant(),
                ["device"] = backend.DeviceName,
                ["n_prompt"] = p,
                ["n_gen"] = n,
                ["reps"] = reps,
                ["pp_tok_s"] = pp,
                ["tg_tok_s"] = tg,
                ["pp_runs"] = ppRuns,
                ["tg_runs"] = tgRuns,
                ["load_ms"] = load.Elapsed.TotalMilliseconds,
                ["quantize"] = options.Quantize is { } q ? TensorTypeInfo.Name(q) : null,
                ["cache_type"] = KvCacheTypes.Name(state.CacheType),
                ["kv_cache_bytes"] = state.KvCacheBytes,
            };
            Console.WriteLine(JsonSerializer.Serialize(result));
        }
        else
        {
            // llama-bench's columns, with its backend names (CPU, CUDA).
            string backendName = backend.Kind.ToString().ToUpperInvariant();
            Console.WriteLine($"| {"model",-32} | {"size",10} | {"backend",7} | {"threads",7} | {"test",6} | {"t/s",18} |");
            Console.WriteLine($"| {new string('-', 32)} | {new string('-', 10)} | {new string('-', 7)} | {new string('-', 7)} | {new string('-', 6)} | {new string('-', 18)} |");
            string name = Path.GetFileName(path);
            string size = $"{bytes / 1048576.0:F1} MiB";
            if (pp != null) Console.WriteLine($"| {name,-32} | {size,10} | {backendName,7} | {threads,7} | {"pp" + p,6} | {Describe(ppRuns),18} |");
            if (tg != null) Console.WriteLine($"| {name,-32} | {size,10} | {backendName,7} | {threads,7} | {"tg" + n,6} | {Describe(tgRuns),18} |");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"KV cache: {KvCacheTypes.Name(state.CacheType)}, {state.KvCacheBytes / 1048576.0:F2} MiB for {state.ContextSize} positions"));
        }
        return 0;
    }

    private static double Median(double[] values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    private static string Describe(double[] runs)
    {
        double median = Median(runs);
        double spread = runs.Max() - runs.Min();
        return string.Create(CultureInfo.InvariantCulture, $"{median:F2} ± {spread / 2:F2}");
    }
}
