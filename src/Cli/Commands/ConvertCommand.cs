using LlavaNative.Kernels.Tensors;
using LlavaNative.Model.Formats.Conversion;
using LlavaNative.Model.Vision;

namespace LlavaNative.Cli.Commands;

/// <summary><c>llava convert</c>: a Hugging Face folder's text model → a GGUF file llama.cpp loads.</summary>
public sealed class ConvertCommand : Command
{
    public override string Name => "convert";
    public override string Summary => "convert a Hugging Face folder (llama, qwen2, llava) to a GGUF text model (and an mmproj GGUF)";
    public override string[] Examples =>
    [
        "llava convert -m llava-1.5-7b-hf -o llava-1.5-7b-f16.gguf",
        "llava convert -m Qwen2-0.5B --type q8_0 -o qwen2-0.5b-q8_0.gguf",
        "llava convert -m llava-interleave-qwen-0.5b-hf -o text-f16.gguf --mmproj-out mmproj-f16.gguf",
    ];
    public override IReadOnlyList<OptionSpec> Options =>
    [
        new(["-m", "--model"], "FOLDER", "Hugging Face folder: config.json, safetensors or pytorch_model.bin weights, tokenizer.json or tokenizer.model"),
        new(["-o", "--outfile"], "FILE", "the GGUF file to write"),
        new(["--type"], "TYPE", $"tensor type: {GgufOutputType.SupportedNames} (default f16; quantized types choose per tensor as llama.cpp's quantizer does)"),
        new(["--name"], "NAME", "general.name (default: the folder's name)"),
        new(["--mmproj-out"], "FILE", "also write the vision tower and projector as an mmproj GGUF (llama.cpp clip layout; F32 for --type f32, BF16 for bf16, Q8_0 for q8_0, else F16)"),
        new(["--vision-tower"], "DIR", "the CLIP folder of an original LLaVA checkpoint (for --mmproj-out)"),
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

        }

        var summary = HuggingFaceToGguf.Convert(folder, output, type, args.Get("--name"));
        if (args.Get("--mmproj-out") is { } mmprojPath)
        {
            var mmprojType = type.DefaultType is TensorType.F32 or TensorType.BF16 or TensorType.Q8_0 ? type.DefaultType : TensorType.F16;
            MmprojConverter.Convert(folder, mmprojPath, mmprojType, args.Get("--vision-tower"));
            Console.Error.WriteLine($"vision tower + projector → {mmprojPath} ({TensorTypeInfo.Name(mmprojType)} matrices)");
        }
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
