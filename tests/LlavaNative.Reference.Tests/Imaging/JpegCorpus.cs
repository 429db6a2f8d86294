using System.Diagnostics;
using Xunit;

namespace LlavaNative.Reference.Tests.Imaging;

/// <summary>One corpus file: the JPEG, the reference decoding (null when the file must be rejected) and how it was made.</summary>
public sealed record JpegCase(string Name, string Group, string JpegPath, string? ReferencePath, int Orientation, string How);

/// <summary>
/// The JPEG corpus, generated once per test run into a temporary folder by make_jpeg_corpus.py (cjpeg, convert and
/// Pillow write the files; djpeg and Pillow decode the references). Missing tools fail the tests, naming the
/// installer: a comparison that did not run must not pass.
/// </summary>
public sealed class JpegCorpus : IDisposable
{
    public const string InstallHint = "run tools/install-test-deps.sh";
    private const string Python = "/usr/bin/python3";

    private readonly Lazy<IReadOnlyList<JpegCase>> _cases;
    private readonly Lazy<IReadOnlyList<JpegCase>> _large;
    private readonly string _root = Directory.CreateTempSubdirectory("llava-jpeg-corpus-").FullName;

    public JpegCorpus()
    {
        _cases = new(() => Generate(Path.Combine(_root, "main"), large: false));
        _large = new(() => Generate(Path.Combine(_root, "large"), large: true));
    }

    public IReadOnlyList<JpegCase> Cases => _cases.Value;

    /// <summary>The 4000×3000 4:2:0 baseline speed case (generated on first use, ~1 s).</summary>
    public JpegCase Large => _large.Value.Single();

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    public static string ScriptPath
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, "tests", "LlavaNative.Reference.Tests", "Imaging", "make_jpeg_corpus.py");
                if (File.Exists(candidate)) return candidate;
            }
            throw new InvalidOperationException($"make_jpeg_corpus.py not found above {AppContext.BaseDirectory}");
        }
    }

    private static IReadOnlyList<JpegCase> Generate(string dir, bool large)
    {
        if (!File.Exists(Python)) throw new InvalidOperationException($"{Python} is missing; {InstallHint}");
        Directory.CreateDirectory(dir);
        var psi = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(ScriptPath);
        psi.ArgumentList.Add(dir);
        if (large) psi.ArgumentList.Add("--large");
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        string stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"make_jpeg_corpus.py failed ({process.ExitCode}): {stderr.Trim()} {stdout.Result.Trim()}");

        var cases = new List<JpegCase>();
        foreach (string line in File.ReadAllLines(Path.Combine(dir, "manifest.tsv")))
        {
            var f = line.Split('\t');
            cases.Add(new JpegCase(f[0], f[1], Path.Combine(dir, f[2]), f[3] == "-" ? null : Path.Combine(dir, f[3]), int.Parse(f[4]), f[5]));
        }
        return cases;
    }
}

[CollectionDefinition(Name)]
public sealed class JpegCorpusCollection : ICollectionFixture<JpegCorpus>
{
    public const string Name = "JPEG corpus";
}

/// <summary>Binary PPM (P6) / PGM (P5) with maxval 255, as djpeg writes them.</summary>
public sealed record PnmImage(int Width, int Height, int Channels, byte[] Pixels)
{
    public static PnmImage Read(string path)
    {
        byte[] d = File.ReadAllBytes(path);
        int pos = 0;
        string Token()
        {
            while (pos < d.Length && (char.IsWhiteSpace((char)d[pos]) || d[pos] == '#'))
            {
                if (d[pos] == '#') while (pos < d.Length && d[pos] != '\n') pos++;
                else pos++;
            }
            int start = pos;
            while (pos < d.Length && !char.IsWhiteSpace((char)d[pos])) pos++;
            return System.Text.Encoding.ASCII.GetString(d, start, pos - start);
        }
        string magic = Token();
        int channels = magic switch { "P6" => 3, "P5" => 1, _ => throw new InvalidDataException($"{path}: not a binary PPM/PGM ({magic})") };
        int width = int.Parse(Token()), height = int.Parse(Token()), max = int.Parse(Token());
        if (max != 255) throw new InvalidDataException($"{path}: maxval {max}");
        pos++; // the single whitespace after maxval
        var pixels = d.AsSpan(pos, width * height * channels).ToArray();
        return new PnmImage(width, height, channels, pixels);
    }
}
