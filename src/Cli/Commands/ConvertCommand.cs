using LlavaNative.Model.Formats.Conversion;

namespace LlavaNative.Cli.Commands;

/// <summary><c>llava convert</c>: a Hugging Face folder's text model → a GGUF file llama.cpp loads.</summary>
public sealed class ConvertCommand : Command
{
    public override string Name => "convert";
    public override string Summary => "convert a Hugging Face folder (llama, qwen2, llava) to a GGUF text model";
    public override string[] Examples =>
    [
        "llava convert -m llava-1.5-7b-hf -o llava-1.5-7b-f16.gguf",
        "llava convert -m Qwen2-0.5B --type q8_0 -o qwen2-0.5b-q8_0.gguf",
    ];
    public override IReadOnlyList<OptionSpec> Options =>
    [
        new(["-m", "--model"], "FOLDER", "Hugging Face folder: config.json, safetensors weights, tokenizer.json or tokenizer.model"),
        new(["-o", "--outfile"], "FILE", "the GGUF file to write"),
        new(["--type"], "TYPE", $"tensor type: {GgufOutputType.SupportedNames} (default f16; quantized types choose per tensor as llama.cpp's quantizer does)"),
        new(["--name"], "NAME", "general.name (default: the folder's name)"),
        new(["--mmproj-out"], "FILE", "also write the vision tower and projector as an mmproj GGUF (not supported in this build)"),
        Help,
    ];

    public override int Execute(ParsedArguments args)
    {
        string folder = args.Require("-m", "the Hugging Face model folder");
        string output = args.Require("-o", "the GGUF file to write");
        GgufOutputType type;
        try
        {
            type = GgufOutputType.Parse(args.Get("--type") ?? "f16");
        }
        catch (ArgumentException e)
        {
            throw new UsageException($"--type: {e.Message}");
        }
        if (args.Get("--mmproj-out") is { } mmprojOut)
        {
            if (Path.GetFullPath(mmprojOut) == Path.GetFullPath(output))
                throw new UsageException("--mmproj-out must differ from -o");
            // MERGE POINT (issue #3, branch hfvision): when MmprojConverter is in the build, replace this throw with
            //     MmprojConverter.Convert(folder, mmprojOut, type.IsQuantized ? TensorType.F16 : type.DefaultType);
            // and run it after the text model below.
            throw new UsageException("--mmproj-out is not supported in this build: the vision-tower converter is not part of it yet; convert the text model alone");
        }

        var summary = HuggingFaceToGguf.Convert(folder, output, type, args.Get("--name"));
        var t = summary.Tokenizer;
        Console.Error.WriteLine($"{summary.Layout} {summary.Architecture} → {output}: {summary.TensorCount} tensors (" +
                                string.Join(", ", summary.TensorTypes.OrderBy(kv => kv.Key).Select(kv => $"{kv.Value} {kv.Key}")) + ")");
        Console.Error.WriteLine($"tokenizer: {t.Source} → {t.Model}{(t.PreTokenizer is null ? "" : $" (pre {t.PreTokenizer})")}, {t.TokenCount} tokens" +
                                (t.PaddedTokens > 0 ? $" + {t.PaddedTokens} [PAD] tokens to fill the embedding" : ""));
        foreach (string note in t.Notes) Console.Error.WriteLine($"note: {note}");
        if (summary.IgnoredTensors > 0)
            Console.Error.WriteLine($"{summary.IgnoredTensors} tensors of the folder (vision tower, projector) are not part of a text GGUF");
        return 0;
    }
}
