using System.Diagnostics;
using System.Text;
using System.Text.Json;
using LlavaNative.Model.Tokenizers.HuggingFace;
using Xunit;

namespace LlavaNative.Reference.Tests.Tokenizers.HuggingFace;

/// <summary>
/// Our NFC/NFD/NFKC/NFKD against Python's unicodedata.normalize (the system Python, whose Unicode version the
/// table was generated from): every code point that decomposes or has a combining class, and random strings
/// built to exercise canonical reordering, blocked and unblocked composition, Hangul and composition exclusions.
/// </summary>
public class UnicodeNormalizationTests
{
    private const string Python = "/usr/bin/python3";

    private static readonly UnicodeForm[] s_forms = [UnicodeForm.Nfc, UnicodeForm.Nfd, UnicodeForm.Nfkc, UnicodeForm.Nfkd];

    /// <summary>Code points every normalization form touches: pieces for the random strings.</summary>
    private static readonly string[] s_pieces =
    [
        "a", "e", "o", "u", "A", "E", "O", "n", "c", "s", "i", "ı", "ω", "α", "Ω", "ʒ", "ü", "é", "ǖ", "Å", "ṩ", "ệ",
        "\u0300", "\u0301", "\u0302", "\u0303", "\u0308", "\u0327", "\u0328", "\u0316", "\u0323", "\u0345", "\u031B", "\u0338",
        "\u0344", "\u0340", "\u0F73", "\u0F71", "\u0F72", "\u0F80", "\u1DCE", "\u05B0", "\u0651", "\u064B", "\u093C", "\u0954",
        "\u1100", "\u1161", "\u11A8", "\u11C2", "\u1175", "가", "각", "힣", "\u1112", "\u11A7",
        "\u0B47", "\u0B3E", "\u0B56", "\u0BC6", "\u0BBE", "\u0CC6", "\u0CD5", "\u0CC2", "\u0DD9", "\u0DCF", "\u0DDF", "\u1025", "\u102E",
        "\u0958", "\u0915", "\u212B", "\u2126", "\u212A", "\u1E9B", "\u00C5", "\uFB01", "\u33CF", "\u00BD", "\u2460", "\uFF21",
        "\u3131", "\u1D40", "\uFE45", "\u2F00", "\uF900", "\u00A0", "\u2002", "\u01C4", "\u0132", "\u1F80", "\u1FB3", "\u0390",
        "\U0001D15E", "\U0001D165", "\U0001D16E", "\U0001D15F", "\U00011099", "\U000110BA", "\U0002F800", "\U0001D400",
        "\U00011131", "\U00011127", "\U0001F600", " ", "中", "\u05D0\u05B7",
    ];

    private static IEnumerable<string> RandomStrings(int seed, int count)
    {
        var random = new Random(seed);
        var sb = new StringBuilder();
        for (int i = 0; i < count; i++)
        {
            sb.Clear();
            int n = random.Next(1, 9);
            for (int j = 0; j < n; j++)
                sb.Append(s_pieces[random.Next(s_pieces.Length)]);
            yield return sb.ToString();
        }
    }

    /// <summary>Every code point with a decomposition or a non-zero combining class, and a sample of Hangul syllables.</summary>
    private static IEnumerable<string> InterestingCodepoints()
    {
        for (int cp = 0xA0; cp <= 0x10FFFF; cp++)
        {
            if (cp is >= 0xD800 and <= 0xDFFF)
                continue;
            string s = char.ConvertFromUtf32(cp);
            bool hangul = cp is >= 0xAC00 and <= 0xD7A3;
            if ((hangul && cp % 7 == 0) || UnicodeNormalization.CombiningClass(cp) != 0
                || UnicodeNormalization.Normalize(s, UnicodeForm.Nfkd) != s)
                yield return s;
        }
    }

    [Fact]
    public void Table_IsFromTheSamePythonUnicodeVersion()
    {
        string version = RunPython("import unicodedata, sys; sys.stdout.write(unicodedata.unidata_version)", "[]");
        Assert.Equal(version, UnicodeNormalization.UnicodeVersion);
    }

    [Fact]
    public void AllForms_MatchPython_OnEveryDecomposableCodepoint_AndRandomStrings()
    {
        string[] inputs = [.. InterestingCodepoints(), .. RandomStrings(seed: 7, count: 6000), .. HuggingFaceTokenizerAgreementTests.Corpus];
        Assert.True(inputs.Length > 15000, $"only {inputs.Length} inputs");
        string script = """
            import json, sys, unicodedata
            texts = json.load(open(sys.argv[1], encoding="utf-8"))
            out = [[unicodedata.normalize(f, t) for f in ("NFC", "NFD", "NFKC", "NFKD")] for t in texts]
            sys.stdout.write(json.dumps(out, ensure_ascii=True))
            """;
        var expected = JsonSerializer.Deserialize<string[][]>(RunPython(script, JsonSerializer.Serialize(inputs)))!;

        var failures = new List<string>();
        for (int i = 0; i < inputs.Length; i++)
        {
            for (int f = 0; f < s_forms.Length; f++)
            {
                string ours = UnicodeNormalization.Normalize(inputs[i], s_forms[f]);
                if (ours != expected[i][f])
                    failures.Add($"{s_forms[f]}({Hex(inputs[i])}): python {Hex(expected[i][f])}, ours {Hex(ours)}");
            }
        }
        Assert.True(failures.Count == 0, $"{failures.Count} of {inputs.Length * 4} differ:\n" + string.Join("\n", failures.Take(20)));
    }

    private static string Hex(string s) => string.Join(" ", s.EnumerateRunes().Select(r => $"U+{r.Value:X4}"));

    /// <summary>Runs <paramref name="script"/> with a JSON file of <paramref name="input"/> as argv[1]; returns stdout.</summary>
    private static string RunPython(string script, string input)
    {
        if (!File.Exists(Python))
            throw new InvalidOperationException($"{Python} is missing: the system Python is the reference for Unicode normalization (apt-get install python3)");
        string inputPath = Path.Combine(Path.GetTempPath(), $"llavanative-unicode-{Environment.ProcessId}-{Guid.NewGuid():N}.json");
        File.WriteAllText(inputPath, input, new UTF8Encoding(false));
        try
        {
            var start = new ProcessStartInfo(Python, ["-c", script, inputPath]) { RedirectStandardOutput = true, RedirectStandardError = true };
            using var process = Process.Start(start)!;
            var stderr = process.StandardError.ReadToEndAsync();
            string stdout = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            Assert.True(process.ExitCode == 0, $"python failed: {stderr.Result}");
            return stdout;
        }
        finally
        {
            File.Delete(inputPath);
        }
    }
}
