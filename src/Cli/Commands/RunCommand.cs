using System.Diagnostics;
using System.Text.Json;
using LlavaNative.Kernels.Cpu;
using LlavaNative.Model;
using LlavaNative.Model.Generation;
using LlavaNative.Model.Imaging;
using LlavaNative.Model.Language;
using LlavaNative.Model.Llava;
using LlavaNative.Model.Templates;

namespace LlavaNative.Cli.Commands;

/// <summary><c>llava run</c>: complete a prompt — with images when given an mmproj — streaming the generated text.</summary>
public sealed class RunCommand : Command
{
    public override string Name => "run";
    public override string Summary => "generate text from a prompt (and images), streaming it as it is produced";
    public override string[] Examples =>
    [
        "llava run --image samples/tiny-llava-0.png -p \"What color is the circle?\" --temp 0   # no -m: the shipped tiny LLaVA (models/tiny-llava/hf)",
        "llava run -m qwen2-0.5b-q4_0.gguf -p \"The capital of France is\" -n 32",
        "llava run -m vicuna-7b-q4_k_m.gguf -p \"USER: Write a haiku. ASSISTANT:\" --temp 0.7 --seed 42",
        "llava run -m model.gguf -p \"Once upon a time\" --temp 0 -n 64 --stop \"\\n\\n\"",
        "llava run -m ./llava-interleave-qwen-0.5b-hf -p \"<|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\n\" -n 32",
        "llava run -m llava-v1.5-7b-q4_k.gguf --mmproj mmproj-f16.gguf --image cat.jpg -p \"What is in the picture?\" --timings",
        "llava run -m llava.gguf --mmproj mmproj.gguf --image a.png --image b.png -p \"Compare <image> with <image>.\"",
        "llava run -m llava.gguf --mmproj mmproj.gguf --image cat.jpg -p \"USER: <image>\\nDescribe it. ASSISTANT:\" --chat-template none",
        "llava run -m interleave.gguf --mmproj mmproj.gguf --video clip.gif --frames 8 -p \"What happens?\" --json",
    ];
    public override IReadOnlyList<OptionSpec> Options =>
    [
        DefaultModel.Option,
        new(["-p", "--prompt"], "TEXT", "prompt text (special tokens written in it are recognised; <image> marks where the next image goes)"),
        new(["--mmproj"], "FILE", "vision tower + projector GGUF (llama.cpp mmproj layout), needed for images unless MODEL is a llava Hugging Face folder"),
        new(["--vision-tower"], "DIR", "CLIP checkpoint folder for an original LLaVA checkpoint (its tower is not in the checkpoint)"),
        new(["--image"], "FILE", "image file: PNG, JPEG, GIF (first frame), BMP, PPM/PGM (repeatable; the k-th goes to the k-th <image>, or all first)", Repeatable: true),
        new(["--video"], "PATH", "a folder of frame images (sorted by name) or an animated GIF; sampled frames follow the --image images"),
        new(["--frames"], "N", "frames sampled uniformly from --video (numpy linspace rule, default 8)"),
        new(["--image-mode"], "MODE", "crop (HF CLIP processor), pad (original LLaVA, default for CLIP), resize-pad (llama.cpp), stretch (SigLIP default)"),
        new(["--chat-template"], "NAME|FILE|none", "template for the user turn: llava-1.5, llava-interleave/chatml, vicuna-v1, llama-2, a Jinja file, or none (raw prompt). " +
                                                   "Default with images: the model's own, else by model family; without images: none"),
        .. GenerationOptionSpecs,
        new(["--timings"], null, "print load, image encoding, prompt and generation speed to stderr at the end"),
        new(["--json"], null, "print one JSON object (text, token counts, stop reason, timings) instead of streaming text"),
        ContextSize, CacheType, Quantize, Backend, Threads, Help,
    ];

    public override int Execute(ParsedArguments args)
    {
        string path = DefaultModel.Resolve(args);
        string prompt = args.Require("-p", "the prompt");
        int threads = args.GetInt("-t", ComputeThreadPool.DefaultThreadCount(), 1, 1024);
        var options = ParseGenerationOptions(args);
        var imageMode = ParseImageMode(args.Get("--image-mode"));
        int frames = args.GetInt("--frames", 8, 1, 10_000);
        if (args.Has("--frames") && !args.Has("--video")) throw new UsageException("--frames needs --video");
        bool json = args.Has("--json");
        bool vision = args.Has("--mmproj") || args.Has("--image") || args.Has("--video");
        if (vision && !args.Has("--mmproj") && !Directory.Exists(path))
            throw new UsageException("images (--image, --video) need --mmproj, the vision tower of the model (a llava Hugging Face folder carries its own)");

        using var cancel = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cancel.Cancel(); };
        Console.CancelKeyPress += onCancel;
        try
        {
            return vision
                ? RunLlava(args, path, prompt, threads, options, imageMode, frames, json, cancel.Token)
                : RunText(args, path, prompt, threads, options, json, cancel.Token);
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }

    private static int RunText(ParsedArguments args, string path, string prompt, int threads, GenerationOptions options, bool json, CancellationToken cancel)
    {
        using var pool = new ComputeThreadPool(threads);
        var loadClock = Stopwatch.StartNew();
        using var model = ModelLoader.Load(path, LoadOptions(args, pool)); // a .gguf file or a Hugging Face folder with tokenizer.json
        loadClock.Stop();
        int context = args.GetInt("-c", Math.Min(model.Config.ContextLength, 4096), 1, model.Config.ContextLength);
        using var backend = DecoderBackend.Open(model, ParseBackend(args));
        ReportBackend(backend);
        using var generator = new TextGenerator(backend, context, pool, ParseCacheType(args));
        if (args.Get("--chat-template") is { } requested && !requested.Equals("none", StringComparison.OrdinalIgnoreCase))
        {
            var template = ChatTemplate.Resolve(requested);
            prompt = template.Render([ChatMessage.FromText("user", prompt)], new ChatTemplateOptions { AddGenerationPrompt = true, BosToken = "", EosToken = "" });
        }
        string text = Stream(generator.Generate(prompt, options, cancel), json);
        var s = generator.LastStats;
        if (s is null) return 0;
        var timings = new Timings(loadClock.Elapsed.TotalMilliseconds, 0, 0, s.PromptTokens, s.PromptTokensPerSecond, s.GeneratedTokens, s.GeneratedTokensPerSecond)
        { Backend = backend.Kind };
        Report(args, json, text, timings, s.Stop);
        return 0;
    }

    private static int RunLlava(ParsedArguments args, string path, string prompt, int threads, GenerationOptions options,
        ImageFitMode? imageMode, int frames, bool json, CancellationToken cancel)
    {
        var progress = Progress.ToStderr();
        var images = args.GetAll("--image").Select(LlavaImage.FromFile).ToList();
        if (args.Get("--video") is { } video) images.AddRange(VideoFrames.Load(video, frames));

        using var pool = new ComputeThreadPool(threads);
        progress?.Show("loading model…");
        using var model = LlavaModel.Load(path, args.Get("--mmproj"), pool, LoadOptions(args, pool), args.Get("--vision-tower"));
        progress?.Clear();
        ReportBackend(model.Backend);
        int context = args.GetInt("-c", Math.Min(model.Decoder.Config.ContextLength, 4096), 1, model.Decoder.Config.ContextLength);
        var template = model.ChooseChatTemplate(args.Get("--chat-template"));
        string rendered = model.RenderUserPrompt(template, prompt, images.Count);

        using var session = model.CreateSession(new LlavaSessionOptions
        {
            ContextSize = context,
            CacheType = ParseCacheType(args),
            Preprocessing = imageMode is { } m ? model.Preprocessing with { Mode = m } : null,
            Progress = progress,
        });
        LlavaPrompt composed;
        try { composed = model.ComposeText(rendered, images, addSpecial: true); }
        catch (LlavaPromptException e) { throw new UsageException(e.Message); }
        session.Append(composed);
        progress?.Clear();

        string text = Stream(session.Generate(options, cancel), json);
        var st = session.Stats;
        var timings = new Timings(st.ModelLoadTime.TotalMilliseconds, st.ImageEncodeTime.TotalMilliseconds, st.ImagesEncoded,
            st.PromptPositions, st.PromptTokensPerSecond, st.GeneratedTokens, st.GeneratedTokensPerSecond)
        { ImagePositions = st.PromptImagePositions, Images = images.Count, ChatTemplate = template?.Name ?? "none", Backend = session.Backend };
        Report(args, json, text, timings, session.LastGeneration?.Stop ?? StopReason.None);
        return 0;
    }

    /// <summary>Writes pieces to stdout as they come (unless <paramref name="json"/>); returns the whole text.</summary>
    private static string Stream(IEnumerable<GeneratedPiece> pieces, bool json)
    {
        var all = new System.Text.StringBuilder();
        var stdout = Console.Out;
        foreach (var piece in pieces)
        {
            all.Append(piece.Text);
            if (json) continue;
            stdout.Write(piece.Text);
            stdout.Flush();
        }
        if (!json) stdout.WriteLine();
        return all.ToString();
    }

    private sealed record Timings(double LoadMs, double ImageEncodeMs, int ImagesEncoded, int PromptPositions, double PromptTokensPerSecond,
        int GeneratedTokens, double GeneratedTokensPerSecond)
    {
        public int ImagePositions { get; init; }
        public int Images { get; init; }
        public string? ChatTemplate { get; init; }
        public ComputeBackend Backend { get; init; }
    }

    private static void Report(ParsedArguments args, bool json, string text, Timings t, StopReason stop)
    {
        if (args.Has("--timings"))
            Console.Error.WriteLine($"load: {t.LoadMs:F0} ms | image encode: {t.ImageEncodeMs:F0} ms ({t.ImagesEncoded} encoded) | " +
                                    $"prompt: {t.PromptPositions} positions ({t.ImagePositions} image), {t.PromptTokensPerSecond:F1} tok/s | " +
                                    $"generation: {t.GeneratedTokens} tokens, {t.GeneratedTokensPerSecond:F1} tok/s | stop: {stop}");
        if (!json) return;
        using var stdout = Console.OpenStandardOutput();
        using (var w = new Utf8JsonWriter(stdout, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("text", text);
            w.WriteString("stop", stop.ToString());
            w.WriteNumber("prompt_tokens", t.PromptPositions - t.ImagePositions);
            w.WriteNumber("image_tokens", t.ImagePositions);
            w.WriteNumber("images", t.Images);
            w.WriteNumber("generated_tokens", t.GeneratedTokens);
            if (t.ChatTemplate is not null) w.WriteString("chat_template", t.ChatTemplate);
            w.WriteString("backend", t.Backend.ToString().ToLowerInvariant());
            w.WriteStartObject("timings");
            w.WriteNumber("load_ms", Math.Round(t.LoadMs, 3));
            w.WriteNumber("image_encode_ms", Math.Round(t.ImageEncodeMs, 3));
            w.WriteNumber("prompt_tokens_per_second", Math.Round(t.PromptTokensPerSecond, 3));
            w.WriteNumber("generation_tokens_per_second", Math.Round(t.GeneratedTokensPerSecond, 3));
            w.WriteEndObject();
            w.WriteEndObject();
        }
        stdout.WriteByte((byte)'\n');
    }

    /// <summary>
    /// A one-line status on stderr, only when stderr is a terminal and a phase (loading, encoding images, prompt) has
    /// lasted more than a moment: a phase's first message appears after 300 ms, later ones at once.
    /// </summary>
    private sealed class Progress : IProgress<LlavaProgress>
    {
        private readonly object _gate = new();
        private Timer? _timer;
        private string? _text;
        private bool _shown;

        public static Progress? ToStderr() => Console.IsErrorRedirected ? null : new Progress();

        public void Show(string text)
        {
            lock (_gate)
            {
                _text = text;
                if (_shown) Write(text);
                else _timer ??= new Timer(_ => ShowPending(), null, 300, Timeout.Infinite);
            }
        }

        private void ShowPending()
        {
            lock (_gate)
            {
                if (_text is null) return;
                _shown = true;
                Write(_text);
            }
        }

        public void Report(LlavaProgress p) => Show(p.Stage == LlavaStage.EncodingImage
            ? $"encoding image {p.Done + 1}/{p.Total} ({Path.GetFileName(p.Item)})…"
            : $"prompt {p.Done}/{p.Total} positions…");

        public void Clear()
        {
            lock (_gate)
            {
                _timer?.Dispose();
                _timer = null;
                _text = null;
                if (_shown) Console.Error.Write("\r\u001b[K");
                _shown = false;
            }
        }

        private static void Write(string text) => Console.Error.Write("\r\u001b[K" + text);
    }
}
