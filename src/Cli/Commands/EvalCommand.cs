using System.Globalization;
using LlavaNative.Kernels.Cpu;
using LlavaNative.Model;
using LlavaNative.Model.Formats.Npy;
using LlavaNative.Model.Language;
using LlavaNative.Model.Llava;

namespace LlavaNative.Cli.Commands;

/// <summary>
/// <c>llava eval</c>: logits of every position for a given token sequence, as .npy. With <c>--mmproj</c> and
/// <c>--image</c>s, <c>img</c> in <c>--tokens</c> puts the k-th image's rows (all of them, consecutive positions) there.
/// </summary>
public sealed class EvalCommand : Command
{
    /// <summary>The word in <c>--tokens</c> that stands for the next image.</summary>
    public const string ImageWord = "img";

    public override string Name => "eval";
    public override string Summary => "run token ids (and images) through the model and save every position's logits (.npy)";
    public override string[] Examples =>
    [
        "llava eval -m model.gguf --tokens 1,450,4996 --logits-out logits.npy",
        "llava eval -m llava-7b.gguf --mmproj mmproj.gguf --image a.jpg --image b.png --tokens 1,325,img,77,img,5 --logits-out logits.npy",
        "llava eval -m ./llava-hf-folder --image a.jpg --tokens 1,3148,img,29871,13 --logits-out logits.npy",
        "llava eval -m ./llava-v1-folder --quantize q8_0 --tokens 1,450,4996 --logits-out logits.npy",
    ];
    public override IReadOnlyList<OptionSpec> Options =>
    [
        Model,
        new(["--mmproj"], "FILE", "vision tower + projector GGUF, needed for images"),
        new(["--image"], "FILE", "image for the next 'img' in --tokens (repeatable, in order)", Repeatable: true),
        new(["--tokens"], "IDS", "comma-separated token ids; 'img' = all rows of the next image"),
        new(["--logits-out"], "FILE", "output .npy, float32 [n_positions, n_vocab] (text tokens and image rows)"),
        new(["--image-mode"], "MODE", "crop, pad, resize-pad or stretch (default: pad for CLIP, stretch for SigLIP)"),
        new(["--vision-tower"], "DIR", "CLIP checkpoint folder for an original LLaVA checkpoint"),
        CacheType, Quantize, Backend, Threads, Help,
    ];

    public override int Execute(ParsedArguments args)
    {
        string path = args.Require("-m", "the model file");
        string tokensText = args.Require("--tokens", "comma-separated token ids");
        string output = args.Require("--logits-out", "the .npy file to write");
        var items = ParseItems(tokensText);
        int threads = args.GetInt("-t", ComputeThreadPool.DefaultThreadCount(), 1, 1024);
        var imagePaths = args.GetAll("--image");
        int marks = items.Count(i => i < 0);
        string? mmproj = args.Get("--mmproj");

        if (marks == 0 && imagePaths.Count == 0 && mmproj is null)
        {
            int[] tokens = items.ToArray();
            using var pool = new ComputeThreadPool(threads);
            using var model = ModelLoader.Load(path, LoadOptions(args, pool)); // a .gguf file or a Hugging Face folder
            using var backend = DecoderBackend.Open(model, ParseBackend(args));
            ReportBackend(backend);
            using var session = backend.CreateSession(tokens.Length, pool: pool, cacheType: ParseCacheType(args));
            var logits = new float[(long)tokens.Length * model.Config.VocabSize];
            session.Forward(tokens, LogitsMode.All, logits);
            NpyFile.WriteFloat32(output, logits, tokens.Length, model.Config.VocabSize);
            Console.Error.WriteLine($"wrote logits [{tokens.Length}, {model.Config.VocabSize}] to {output}");
            return 0;
        }

        if (mmproj is null && !Directory.Exists(path))
            throw new UsageException("images ('img' in --tokens, --image) need --mmproj (a llava Hugging Face folder carries its own tower)");
        if (marks != imagePaths.Count)
            throw new UsageException($"--tokens has {marks} '{ImageWord}' mark(s) but {imagePaths.Count} --image given; give one image per mark");
        var mode = ParseImageMode(args.Get("--image-mode"));
        var images = imagePaths.Select(LlavaImage.FromFile).ToArray();
        using (var pool = new ComputeThreadPool(threads))
        using (var llava = LlavaModel.Load(path, mmproj, pool, LoadOptions(args, pool), args.Get("--vision-tower")))
        {
            ReportBackend(llava.Backend);
            var chunks = new List<LlavaPromptChunk>();
            var run = new List<int>();
            int k = 0;
            foreach (int item in items)
            {
                if (item >= 0) { run.Add(item); continue; }
                if (run.Count > 0) chunks.Add(new TokenChunk(run.ToArray()));
                run.Clear();
                chunks.Add(new ImageChunk(images[k++]));
            }
            if (run.Count > 0) chunks.Add(new TokenChunk(run.ToArray()));
            var prompt = new LlavaPrompt(chunks);
            int positions = prompt.PositionCount(llava.ImageTokenCount);
            if (positions > llava.Decoder.Config.ContextLength)
                throw new LlavaContextOverflowException(positions, llava.Decoder.Config.ContextLength, llava.Decoder.Config.ContextLength,
                    prompt.TextTokenCount, prompt.ImageRowCount(llava.ImageTokenCount), images.Length);
            using var session = llava.CreateSession(new LlavaSessionOptions
            {
                ContextSize = positions,
                CacheType = ParseCacheType(args),
                Preprocessing = mode is { } m ? llava.Preprocessing with { Mode = m } : null,
            });
            int vocab = llava.Decoder.Config.VocabSize;
            var logits = new float[(long)positions * vocab];
            session.Append(prompt, logits);
            NpyFile.WriteFloat32(output, logits, positions, vocab);
            Console.Error.WriteLine($"wrote logits [{positions}, {vocab}] to {output} ({prompt.TextTokenCount} text tokens, {images.Length} image(s) × {llava.ImageTokenCount} rows)");
        }
        return 0;
    }

    /// <summary>Token ids, with −1 for each <see cref="ImageWord"/>.</summary>
    private static List<int> ParseItems(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0) throw new UsageException("--tokens is empty");
        var items = new List<int>(parts.Length);
        foreach (var part in parts)
        {
            if (part.Equals(ImageWord, StringComparison.OrdinalIgnoreCase)) { items.Add(-1); continue; }
            if (!int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out int id) || id < 0)
                throw new UsageException($"--tokens: '{part}' is not a token id (or '{ImageWord}')");
            items.Add(id);
        }
        return items;
    }
}
