using System.Diagnostics;
using System.Text.Json;

namespace LlavaNative.Reference.Tests.Imaging;

/// <summary>One corpus file and its reference pixels ([Frames, Height, Width, Channels] bytes in <see cref="Pixels"/>).</summary>
public sealed record CorpusEntry(string File, string Format, string Reference, string Why, int Frames, int Width, int Height,
    int Channels, string Pixels);

/// <summary>
/// The image corpus, written once per test run into a temporary folder by make_corpus.py (images made with Pillow,
/// ImageMagick and small writers, and the pixels Pillow decodes from them). The references are required: when
/// Pillow, numpy or ImageMagick is missing the tests fail and say how to install them.
/// </summary>
public sealed class ImageCorpus : IDisposable
{
    public const string Python = "/usr/bin/python3";   // Debian's python3 with python3-pil and python3-numpy
    public const string Convert = "/usr/bin/convert";  // ImageMagick (another `convert` may come first on PATH)

    public string Root { get; } = Directory.CreateTempSubdirectory("llava-image-corpus-").FullName;
    public IReadOnlyList<CorpusEntry> Entries { get; }

    public ImageCorpus()
    {
        RequireReferences();
        string script = Path.Combine(AppContext.BaseDirectory, "Imaging", "make_corpus.py"); // copied by the csproj
        var (code, output) = Run(Python, script, Root);
        if (code != 0) throw new InvalidOperationException($"make_corpus.py failed (exit {code}):\n{output}");
        using var manifest = File.OpenRead(Path.Combine(Root, "manifest.json"));
        var doc = JsonSerializer.Deserialize<Manifest>(manifest, new JsonSerializerOptions { PropertyNameCaseInsensitive = true })!;
        Entries = doc.Entries;
    }

    private sealed record Manifest(List<CorpusEntry> Entries);

    public void Dispose() => Directory.Delete(Root, recursive: true);

    public string PathOf(string relative) => Path.Combine(Root, relative);

    private static void RequireReferences()
    {
        const string install = "run tools/install-test-deps.sh (as root) to install python3-pil, python3-numpy and imagemagick";
        if (!File.Exists(Python)) throw new InvalidOperationException($"reference missing: {Python} not found; {install}");
        var (code, output) = Run(Python, "-c", "import PIL, numpy");
        if (code != 0) throw new InvalidOperationException($"reference missing: {Python} cannot import Pillow and numpy ({output.Trim()}); {install}");
        if (!File.Exists(Convert)) throw new InvalidOperationException($"reference missing: ImageMagick's {Convert} not found; {install}");
    }

    private static (int Code, string Output) Run(string exe, params string[] args)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout + stderr.Result);
    }
}
