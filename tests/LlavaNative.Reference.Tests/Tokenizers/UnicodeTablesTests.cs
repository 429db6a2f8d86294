using System.Globalization;
using System.Text.RegularExpressions;
using LlavaNative.Model.Tokenizers;
using LlavaNative.TestSupport;
using Xunit;

namespace LlavaNative.Reference.Tests.Tokenizers;

/// <summary>
/// The character classes our pre-tokenizers use against the tables llama.cpp's pre-tokenizers use, read from the
/// reference source (src/unicode-data.cpp: general-category flags per code point range, and the white-space set).
/// </summary>
public class UnicodeTablesTests
{
    [Fact]
    public void CodepointClasses_MatchLlamaCppTables_ForEveryCodepoint()
    {
        string source = File.ReadAllText(Path.Combine(ReferencePaths.LlamaCppSource, "src", "unicode-data.cpp"));

        // "{0x000041, 0x0004}," lines: a range starts at the code point and runs to the next one's start
        var ranges = Regex.Matches(Section(source, "unicode_ranges_flags"), @"\{0x([0-9A-F]+), 0x([0-9A-F]+)\}")
            .Select(m => (Start: int.Parse(m.Groups[1].Value, NumberStyles.HexNumber), Flags: int.Parse(m.Groups[2].Value, NumberStyles.HexNumber)))
            .ToArray();
        var whitespace = Regex.Matches(Section(source, "unicode_set_whitespace"), @"0x([0-9A-F]+)")
            .Select(m => int.Parse(m.Groups[1].Value, NumberStyles.HexNumber))
            .ToHashSet();
        Assert.True(ranges.Length > 1000, $"read only {ranges.Length} ranges from unicode-data.cpp");
        Assert.Equal(0x110000, ranges[^1].Start);
        Assert.True(whitespace.Count >= 20, $"read only {whitespace.Count} white-space code points");

        var failures = new List<string>();
        int checkedCount = 0;
        for (int r = 0; r + 1 < ranges.Length; r++)
        {
            for (int cp = ranges[r].Start; cp < ranges[r + 1].Start; cp++)
            {
                CodepointFlags ours = UnicodeProperties.Of(cp);
                var expected = (CodepointFlags)ranges[r].Flags | (whitespace.Contains(cp) ? CodepointFlags.Whitespace : 0);
                if (ours != expected && failures.Count < 20)
                    failures.Add($"U+{cp:X4}: ours {ours}, llama.cpp {expected}");
                checkedCount++;
            }
        }
        Assert.Equal(0x110000, checkedCount);
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    private static string Section(string source, string name)
    {
        int start = source.IndexOf(name, StringComparison.Ordinal);
        Assert.True(start >= 0, $"unicode-data.cpp has no {name}");
        int end = source.IndexOf("};", start, StringComparison.Ordinal);
        return source[start..end];
    }
}
