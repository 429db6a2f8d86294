namespace LlavaNative.Cli;

/// <summary>
/// The model <c>llava run</c> and <c>llava chat</c> use when no <c>-m</c> is given: the repository's own tiny LLaVA,
/// <c>models/tiny-llava/hf</c> (a llava-hf folder that carries its vision tower), found by walking up from the current
/// directory and from the folder the CLI runs from — so it works from anywhere in a clone and from a build output.
/// </summary>
public static class DefaultModel
{
    /// <summary>Where the shipped model lives, relative to the repository root.</summary>
    public const string RelativePath = "models/tiny-llava/hf";

    /// <summary>The <c>-m</c> option of the verbs that fall back to the shipped model.</summary>
    public static readonly OptionSpec Option = new(["-m", "--model"], "PATH",
        "model: a GGUF file, or a Hugging Face folder (config.json, safetensors or pytorch_model.bin, tokenizer.json or tokenizer.model); " +
        $"default: the repository's tiny LLaVA, {RelativePath}, found in the current directory or a parent, or beside the CLI");

    /// <summary>
    /// <c>-m</c> when given; otherwise the shipped model folder, announced on stderr (stdout carries only answers).
    /// </summary>
    /// <exception cref="UsageException">No <c>-m</c> and no shipped model found; the message names the folders searched.</exception>
    public static string Resolve(ParsedArguments args)
    {
        if (args.Get("-m") is { } given) return given;
        var starts = new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory }.Distinct().ToArray();
        foreach (string start in starts)
        {
            if (Find(start) is not { } found) continue;
            Console.Error.WriteLine($"llava: no -m given, using the shipped tiny LLaVA: {found}");
            return found;
        }
        throw new UsageException(
            $"missing -m (the model file): no -m given and the shipped model {RelativePath} was not found in " +
            string.Join(" or ", starts.Select(s => $"'{s}'")) + " or any of their parents");
    }

    /// <summary>The first <c>DIR/models/tiny-llava/hf</c> with a config.json, DIR going from <paramref name="start"/> up to the root.</summary>
    public static string? Find(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "models", "tiny-llava", "hf");
            if (File.Exists(Path.Combine(candidate, "config.json"))) return candidate;
        }
        return null;
    }
}
