using LlavaNative.Cli;
using LlavaNative.Cli.Commands;
using LlavaNative.Model.Formats;
using LlavaNative.Model.Language;

// Exit codes: 0 success, 1 the work failed (bad model file, bad input, I/O), 2 command-line mistake.
Command[] commands =
[
    new RunCommand(), new ChatCommand(), new EvalCommand(), new TokenizeCommand(), new InfoCommand(), new BenchCommand(),
    new ImageInfoCommand(), new EncodeImageCommand(), new ConvertCommand(),
];

if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
{
    PrintOverview();
    return args.Length == 0 ? 2 : 0;
}
var command = commands.FirstOrDefault(c => c.Name == args[0]);
if (command == null)
{
    Console.Error.WriteLine($"llava: unknown command '{args[0]}'");
    PrintOverview(Console.Error);
    return 2;
}
var rest = args.Skip(1).ToArray();
if (rest.Contains("-h") || rest.Contains("--help"))
{
    command.PrintHelp(Console.Out);
    return 0;
}
try
{
    return command.Execute(new ParsedArguments(rest, command.Options));
}
catch (UsageException e)
{
    Console.Error.WriteLine($"llava {command.Name}: {e.Message}");
    Console.Error.WriteLine($"run 'llava {command.Name} --help' for usage");
    return 2;
}
catch (Exception e) when (e is ModelFormatException or FileNotFoundException or DirectoryNotFoundException
                              or ContextOverflowException or ComputeBackendUnavailableException or IOException or ArgumentException
                              or NotSupportedException or UnauthorizedAccessException
                              or LlavaNative.Model.Llava.LlavaContextOverflowException
                              or LlavaNative.Model.Templates.TemplateException or FormatException)
{
    Console.Error.WriteLine($"llava {command.Name}: error: {e.Message}");
    return 1;
}

void PrintOverview(TextWriter? w = null)
{
    w ??= Console.Out;
    w.WriteLine("llava — LLaVA-family inference in C#");
    w.WriteLine();
    w.WriteLine("Usage: llava <command> [options]      (llava <command> --help for details)");
    w.WriteLine();
    foreach (var c in commands) w.WriteLine($"  {c.Name,-10}{c.Summary}");
    w.WriteLine();
    w.WriteLine("run, chat, eval and bench take --backend auto|cpu|cuda: where the text decoder runs (default auto: a CUDA GPU");
    w.WriteLine("when one is usable, else the CPU with a note on stderr; 'llava info' says which). Images are encoded on the CPU.");
}
