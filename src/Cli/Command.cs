using LlavaNative.Kernels.Cpu;
using LlavaNative.Kernels.Cpu.Quant;
using LlavaNative.Kernels.Tensors;
using LlavaNative.Model;
using LlavaNative.Model.Generation;
using LlavaNative.Model.Imaging;
using LlavaNative.Model.Language;

namespace LlavaNative.Cli;

/// <summary>One verb of the <c>llava</c> CLI.</summary>
public abstract class Command
{
    public abstract string Name { get; }
    public abstract string Summary { get; }
    /// <summary>Example invocations shown by <c>llava VERB --help</c>.</summary>
    public abstract string[] Examples { get; }
    public abstract IReadOnlyList<OptionSpec> Options { get; }

    /// <summary>Runs the verb; returns the process exit code.</summary>
    public abstract int Execute(ParsedArguments args);

    public static readonly OptionSpec Model = new(["-m", "--model"], "PATH", "model: a GGUF file, or a Hugging Face folder (config.json, safetensors or pytorch_model.bin, tokenizer.json)");
    public static readonly OptionSpec Threads = new(["-t", "--threads"], "N", "compute threads (default: all cores)");
    public static readonly OptionSpec ContextSize = new(["-c", "--ctx-size"], "N", "context window in tokens (default: model's, at most 4096)");
    public static readonly OptionSpec Quantize = new(["--quantize"], "TYPE",
        "quantize F32/F16/BF16 weights while loading: " + string.Join(", ", MatrixQuantizer.Targets.Select(t => TensorTypeInfo.Name(t).ToLowerInvariant())) +
        " (all matrices incl. embedding and LM head, as llama-quantize --pure; K-quants fall back like llama.cpp when rows are not a multiple of 256)");
    public static readonly OptionSpec Backend = new(["--backend"], "auto|cpu|cuda",
        "where the text decoder runs: auto (a CUDA GPU when one is usable, else the CPU with a note on stderr; default), " +
        "cpu, or cuda (fails when there is no usable GPU). Images are encoded on the CPU either way");
    public static readonly OptionSpec CacheType = new(["--cache-type"], "f32|f16",
        "how the KV cache stores keys and values: f32 (default; exact) or f16 (half the memory and the attention's cache traffic, " +
        "llama.cpp's default -ctk/-ctv f16; logits move by the F16 rounding of K and V)");
    public static readonly OptionSpec Help = new(["-h", "--help"], null, "show this help");

    /// <summary>Length, sampling and stop options of the verbs that generate (run, chat).</summary>
    public static readonly OptionSpec[] GenerationOptionSpecs =
    [
        new(["-n", "--n-predict"], "N", "tokens to generate per answer at most (default -1: until end of generation or full context)"),
        new(["--temp"], "T", "temperature (default 0.8; 0 = greedy)"),
        new(["--seed"], "S", "random seed (default -1: random)"),
        new(["--top-k"], "K", "top-k (default 40; 0 = off)"),
        new(["--top-p"], "P", "top-p (default 0.95; 1 = off)"),
        new(["--min-p"], "M", "min-p (default 0.05; 0 = off)"),
        new(["--repeat-penalty"], "R", "repetition penalty (default 1.0 = off)"),
        new(["--repeat-last-n"], "N", "tokens considered by the repetition penalty (default 64)"),
        new(["--stop"], "TEXT", "stop when the output contains TEXT (repeatable; \\n for a newline)", Repeatable: true),
        new(["--ignore-eos"], null, "never sample end-of-generation tokens: generate until -n, a stop string or a full context"),
    ];

    /// <summary>The fit mode named by <c>--image-mode</c> (null when absent).</summary>
    protected static ImageFitMode? ParseImageMode(string? value) => value switch
    {
        null => null,
        "crop" => ImageFitMode.Crop,
        "pad" => ImageFitMode.Pad,
        "resize-pad" => ImageFitMode.ResizeThenPad,
        "stretch" => ImageFitMode.Stretch,
        var other => throw new UsageException($"--image-mode '{other}' is not one of crop, pad, resize-pad, stretch"),
    };

    /// <summary>The <see cref="GenerationOptions"/> of <see cref="GenerationOptionSpecs"/>; invalid values are usage errors.</summary>
    protected static GenerationOptions ParseGenerationOptions(ParsedArguments args)
    {
        var sampling = new SamplingOptions
        {
            Temperature = args.GetFloat("--temp", 0.8f),
            TopK = args.GetInt("--top-k", 40, 0),
            TopP = args.GetFloat("--top-p", 0.95f),
            MinP = args.GetFloat("--min-p", 0.05f),
            RepeatPenalty = args.GetFloat("--repeat-penalty", 1.0f),
            RepeatLastN = args.GetInt("--repeat-last-n", 64, 0),
            Seed = args.GetSeed("--seed"),
        };
        try { sampling.Validate(); }
        catch (ArgumentException e) { throw new UsageException(e.Message); }
        return new GenerationOptions
        {
            MaxTokens = args.GetInt("-n", -1, -1),
            Sampling = sampling,
            StopStrings = args.GetAll("--stop").Select(s => s.Replace("\\n", "\n")).ToArray(),
            IgnoreEndOfGeneration = args.Has("--ignore-eos"),
        };
    }

    /// <summary>The backend named by <c>--backend</c> (default auto).</summary>
    protected static ComputeBackend ParseBackend(ParsedArguments args) => args.Get("--backend") switch
    {
        null or "auto" => ComputeBackend.Auto,
        "cpu" => ComputeBackend.Cpu,
        "cuda" => ComputeBackend.Cuda,
        var other => throw new UsageException($"--backend '{other}' is not one of auto, cpu, cuda"),
    };

    /// <summary>The KV cache type named by <c>--cache-type</c> (F32 when absent).</summary>
    protected static KvCacheType ParseCacheType(ParsedArguments args) => args.Get("--cache-type") switch
    {
        null or "f32" => KvCacheType.F32,
        "f16" => KvCacheType.F16,
        var other => throw new UsageException($"--cache-type '{other}' is not one of f32, f16"),
    };

    /// <summary>Prints the one-line notice of a backend that fell back to the CPU (auto without a usable GPU) to stderr.</summary>
    protected static void ReportBackend(DecoderBackend backend)
    {
        if (backend.Notice is { } notice) Console.Error.WriteLine($"llava: {notice}");
    }

    /// <summary>
    /// The <see cref="ModelLoadOptions"/> of <c>--quantize</c> (quantization runs on <paramref name="pool"/>) and
    /// <c>--backend</c> (used by LlavaModel; a text model's backend is opened with <see cref="DecoderBackend.Open"/>).
    /// </summary>
    protected static ModelLoadOptions LoadOptions(ParsedArguments args, ComputeThreadPool pool)
    {
        var options = new ModelLoadOptions { Backend = ParseBackend(args) };
        string? name = args.Get("--quantize");
        if (name == null) return options;
        foreach (var type in MatrixQuantizer.Targets)
            if (string.Equals(TensorTypeInfo.Name(type), name, StringComparison.OrdinalIgnoreCase))
                return options with { Quantize = type, Pool = pool };
        throw new UsageException($"--quantize: unknown type '{name}'; use one of " +
                                 string.Join(", ", MatrixQuantizer.Targets.Select(t => TensorTypeInfo.Name(t).ToLowerInvariant())));
    }

    public void PrintHelp(TextWriter w)
    {
        w.WriteLine($"llava {Name} — {Summary}");
        w.WriteLine();
        w.WriteLine("Options:");
        int width = Options.Max(o => o.Display.Length) + 2;
        foreach (var o in Options) w.WriteLine($"  {o.Display.PadRight(width)}{o.Help}");
        w.WriteLine();
        w.WriteLine("Examples:");
        foreach (var e in Examples) w.WriteLine($"  {e}");
    }
}
