using System.Globalization;
using LlavaNative.Kernels.Cpu;
using LlavaNative.Model;
using LlavaNative.Model.Formats.Npy;
using LlavaNative.Model.Language;

namespace LlavaNative.Cli.Commands;

/// <summary><c>llava eval</c>: logits of every position for a given token sequence, as .npy.</summary>
public sealed class EvalCommand : Command
{
    public override string Name => "eval";
    public override string Summary => "run token ids through the model and save every position's logits (.npy)";
    public override string[] Examples =>
    [
        "llava eval -m model.gguf --tokens 1,450,4996 --logits-out logits.npy",
        "llava eval -m ./llava-v1-folder --quantize q8_0 --tokens 1,450,4996 --logits-out logits.npy",
    ];
    public override IReadOnlyList<OptionSpec> Options =>
    [
        Model,
        new(["--tokens"], "IDS", "comma-separated token ids"),
        new(["--logits-out"], "FILE", "output .npy, float32 [n_tokens, n_vocab]"),
        Quantize, Threads, Help,
    ];

    public override int Execute(ParsedArguments args)
    {
        string path = args.Require("-m", "the model file");
        string tokensText = args.Require("--tokens", "comma-separated token ids");
        string output = args.Require("--logits-out", "the .npy file to write");
        int[] tokens = ParseTokens(tokensText);
        int threads = args.GetInt("-t", ComputeThreadPool.DefaultThreadCount(), 1, 1024);

        using var pool = new ComputeThreadPool(threads);
        var options = LoadOptions(args, pool);
        using var model = ModelLoader.Load(path, options); // a .gguf file or a Hugging Face folder
        using var state = model.CreateState(tokens.Length, pool: pool);
        var logits = new float[(long)tokens.Length * model.Config.VocabSize];
        model.Forward(state, tokens, LogitsMode.All, logits);
        NpyFile.WriteFloat32(output, logits, tokens.Length, model.Config.VocabSize);
        Console.Error.WriteLine($"wrote logits [{tokens.Length}, {model.Config.VocabSize}] to {output}");
        return 0;
    }

    internal static int[] ParseTokens(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0) throw new UsageException("--tokens is empty");
        var ids = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out ids[i]) || ids[i] < 0)
                throw new UsageException($"--tokens: '{parts[i]}' is not a token id");
        return ids;
    }
}
