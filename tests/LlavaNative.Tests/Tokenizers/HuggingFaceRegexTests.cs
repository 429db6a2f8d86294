using System.Globalization;
using LlavaNative.Model.Tokenizers.HuggingFace;
using Xunit;

namespace LlavaNative.Tests.Tokenizers;

/// <summary>
/// The Oniguruma → .NET regex translation and the code-point matching through stand-in characters. The match
/// results themselves are compared with Hugging Face tokenizers in the reference tests; these pin the mechanics.
/// </summary>
public class HuggingFaceRegexTests
{
    [Theory]
    [InlineData(@"\p{L}+", @"\p{L}+")]
    [InlineData(@"\p{^N}", @"\P{N}")]
    [InlineData(@"\P{^N}", @"\p{N}")]
    [InlineData(@"\p{Letter}\p{decimal_number}", @"\p{L}\p{Nd}")]
    [InlineData(@"\pL", @"pL")]
    [InlineData(@"[\w-]", @"[\p{L}\p{M}\p{Nd}\p{Pc}-]")]
    [InlineData(@"\w+", @"[\p{L}\p{M}\p{Nd}\p{Pc}]+")]
    [InlineData(@"\h+", @"[0-9a-fA-F]+")]
    [InlineData(@"[\x{4E00}-\x{9FFF}]", @"[\u4E00-\u9FFF]")]
    [InlineData(@"(?m:.)", @"(?s:.)")]
    [InlineData(@"[]a]", @"[\]a]")]
    [InlineData(@"(?i:'s|'t)", @"(?i:'s|'t)")]
    public void Translate(string oniguruma, string dotnet) => Assert.Equal(dotnet, CodepointRegex.Translate(oniguruma));

    [Fact]
    public void EverySupplementaryCategory_HasABmpStandIn_OfTheSameCategory()
    {
        var seen = new HashSet<UnicodeCategory>();
        for (int cp = 0x10000; cp <= 0x10FFFF; cp++)
        {
            var category = CharUnicodeInfo.GetUnicodeCategory(cp);
            if (!seen.Add(category))
                continue;
            char standIn = CodepointRegex.StandInFor(cp);
            Assert.False(char.IsSurrogate(standIn));
            Assert.Equal(category, CharUnicodeInfo.GetUnicodeCategory(standIn));
            Assert.True(standIn >= 0x370, $"stand-in U+{(int)standIn:X4} for {category} is in a block patterns name");
        }
        Assert.True(seen.Count >= 15, $"only {seen.Count} categories outside the BMP");
    }

    [Fact]
    public void SupplementaryCharacters_MatchAsOneCodepoint()
    {
        var matches = new List<(int, int)>();
        new CodepointRegex(@"\p{L}+|.").FindMatches("a𝓗𝓮b😀!", matches);
        // "a𝓗𝓮b" is one run of letters (the math letters are two UTF-16 units each), then the emoji, then "!"
        Assert.Equal([(0, 6), (6, 8), (8, 9)], matches);

        matches.Clear();
        new CodepointRegex(@".{2}").FindMatches("😀x😀😀", matches);
        Assert.Equal([(0, 3), (3, 7)], matches);
    }

    [Fact]
    public void EmptyMatches_FollowOnigFindIter()
    {
        // after a non-empty match the next empty match is skipped: x* on "axxb" gives (0,0), (1,3), (4,4)
        var matches = new List<(int, int)>();
        new CodepointRegex("x*").FindMatches("axxb", matches);
        Assert.Equal([(0, 0), (1, 3), (4, 4)], matches);
    }

    [Fact]
    public void LiteralPatterns_AreEscaped()
    {
        var matches = new List<(int, int)>();
        CodepointRegex.ForLiteral("a.b (c)").FindMatches("a.b (c)axb (c)a.b (c)", matches);
        Assert.Equal([(0, 7), (14, 21)], matches);
    }
}
