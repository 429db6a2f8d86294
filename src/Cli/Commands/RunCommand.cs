using LlavaNative.Kernels.Cpu;
using LlavaNative.Model;
using LlavaNative.Model.Generation;
using LlavaNative.Model.Language;

namespace LlavaNative.Cli.Commands;

/// <summary><c>llava run</c>: complete a prompt, streaming the generated text.</summary>
public sealed class RunCommand : Command
{
    public override string Name => "run";
    public override string Summary => "generate text from a prompt, streaming it as it is produced";
    public override string[] Examples =>
    [
        "llava run -m qwen2-0.5b-q4_0.gguf -p \"The capital of France is\" -n 32",
        "llava run -m vicuna-7b-q4_k_m.gguf -p \"USER: Write a haiku. ASSISTANT:\" --temp 0.7 --seed 42",
        "llava run -m model.gguf -p \"Once upon a time\" --temp 0 -n 64 --stop \"\\n\\n\"",
        "llava run -m ./llava-interleave-qwen-0.5b-hf -p \"<|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\n\" -n 32",
    ];
    public override IReadOnlyList<OptionSpec> Options =>
    [
        Model,
        new(["-p", "--prompt"], "TEXT", "prompt text (special tokens written in it are recognised)"),
        new(["-n", "--n-predict"], "N", "tokens to generate (default -1: until end of generation or full context)"),
        new(["--temp"], "T", "temperature (default 0.8; 0 = greedy)"),
        new(["--seed"], "S", "random seed (default -1: random)"),
        new(["--top-k"], "K", "top-k (default 40; 0 = off)"),
        new(["--top-p"], "P", "top-p (default 0.95; 1 = off)"),
        new(["--min-p"], "M", "min-p (default 0.05; 0 = off)"),
        new(["--repeat-penalty"], "R", "repetition penalty (default 1.0 = off)"),
        new(["--repeat-last-n"], "N", "tokens considered by the repetition penalty (default 64)"),
        new(["--stop"], "TEXT", "stop when the output contains TEXT (repeatable)", Repeatable: true),
        new(["--timings"], null, "print prompt and generation speed to stderr at the end"),
        ContextSize, Quantize, Threads, Help,
    ];

    public override int Execute(ParsedArguments args)
    {
        string path = args.Require("-m", "the model file");
        string prompt = args.Require("-p", "the prompt");
        int threads = args.GetInt("-t", ComputeThreadPool.DefaultThreadCount(), 1, 1024);
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
        var options = new GenerationOptions
        {
            MaxTokens = args.GetInt("-n", -1, -1),
            Sampling = sampling,
            StopStrings = args.GetAll("--stop").Select(s => s.Replace("\\n", "\n")).ToArray(),
        };

        using var pool = new ComputeThreadPool(threads);
        var loadOptions = LoadOptions(args, pool);
        using var model = ModelLoader.Load(path, loadOptions); // a .gguf file or a Hugging Face folder with tokenizer.json
        int context = args.GetInt("-c", Math.Min(model.Config.ContextLength, 4096), 1, model.Config.ContextLength);
        using var generator = new TextGenerator(model, context, pool);

        using var cancel = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cancel.Cancel(); };
        Console.CancelKeyPress += onCancel;
        try
        {
            var stdout = Console.Out;
            foreach (var piece in generator.Generate(prompt, options, cancel.Token))
            {
                stdout.Write(piece.Text);
                stdout.Flush();
            }
            stdout.WriteLine();
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
        if (args.Has("--timings") && generator.LastStats is { } s)
            Console.Error.WriteLine($"prompt: {s.PromptTokens} tokens, {s.PromptTokensPerSecond:F1} tok/s | generation: {s.GeneratedTokens} tokens, {s.GeneratedTokensPerSecond:F1} tok/s | stop: {s.Stop}");
        return 0;
    }
}
