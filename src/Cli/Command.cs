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

    public static readonly OptionSpec Model = new(["-m", "--model"], "PATH", "model: a GGUF file, or a Hugging Face folder (config.json, safetensors, tokenizer.json)");
    public static readonly OptionSpec Threads = new(["-t", "--threads"], "N", "compute threads (default: all cores)");
    public static readonly OptionSpec ContextSize = new(["-c", "--ctx-size"], "N", "context window in tokens (default: model's, at most 4096)");
    public static readonly OptionSpec Help = new(["-h", "--help"], null, "show this help");

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
