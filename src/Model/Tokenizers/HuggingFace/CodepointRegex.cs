using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace LlavaNative.Model.Tokenizers.HuggingFace;

/// <summary>
/// A regular expression from a tokenizer.json (written for Oniguruma, which tokenizers runs on UTF-8 code points)
/// matched by .NET's <see cref="Regex"/>, which works on UTF-16 code units. Two things make the results agree:
/// <list type="bullet">
/// <item>the pattern is translated where the dialects differ (<c>\p{^L}</c>, <c>\pL</c>, long category names,
/// <c>\h</c>, <c>\x{…}</c>, Oniguruma's Unicode <c>\w</c>); constructs .NET cannot express the same way (POSIX
/// brackets, nested classes, possessive quantifiers, scripts) are refused with <see cref="NotSupportedException"/>
/// instead of being matched differently;</item>
/// <item>text holding characters outside the BMP is matched through a stand-in string in which every code point
/// is one UTF-16 unit: each supplementary character is replaced by a BMP character of the same general category
/// (which is all <c>\p{…}</c>, <c>\w</c>, <c>\d</c> and <c>\s</c> look at), so <c>\p{L}+</c> spans 𝓗𝓮 and
/// <c>[^\s\p{L}\p{N}]</c> takes an emoji whole, as on code points. Match positions map back to the real text.</item>
/// </list>
/// Iteration follows the onig crate's <c>find_iter</c>: after a non-empty match, the next empty match is skipped.
/// </summary>
internal sealed class CodepointRegex
{
    private readonly Regex _regex;

    public CodepointRegex(string pattern)
    {
        Pattern = pattern;
        string translated = Translate(pattern);
        try
        {
            _regex = new Regex(translated, RegexOptions.CultureInvariant);
        }
        catch (ArgumentException e)
        {
            throw new NotSupportedException($"regular expression '{pattern}' is not supported: {e.Message}", e);
        }
    }

    /// <summary>The pattern as written in tokenizer.json.</summary>
    public string Pattern { get; }

    /// <summary>A regex matching <paramref name="literal"/> exactly (tokenizers' <c>Pattern::String</c>).</summary>
    public static CodepointRegex ForLiteral(string literal) => new(EscapeLiteral(literal));

    /// <summary>Appends every match as (start, end) offsets in <paramref name="text"/>, in order.</summary>
    public void FindMatches(string text, List<(int Start, int End)> matches)
    {
        bool hasSurrogates = text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') >= 0;
        string subject = text;
        int[]? offsets = null;
        if (hasSurrogates)
            (subject, offsets) = StandInText(text);

        int lastEnd = 0;
        bool skipNextEmpty = false;
        while (lastEnd <= subject.Length)
        {
            Match m = _regex.Match(subject, lastEnd);
            if (!m.Success)
                break;
            int start = m.Index, end = m.Index + m.Length;
            lastEnd = end;
            if (start == end)
            {
                lastEnd++; // one code point: every one is a single unit in the subject
                if (skipNextEmpty)
                {
                    skipNextEmpty = false;
                    continue;
                }
            }
            else
            {
                skipNextEmpty = true;
            }
            matches.Add(offsets is null ? (start, end) : (offsets[start], offsets[end]));
        }
    }

    // ---- supplementary characters ----

    /// <summary>[30]: a BMP character of each <see cref="UnicodeCategory"/>, or '\0' where none is needed.</summary>
    private static readonly char[] s_standIns = BuildStandIns();

    /// <summary>The character that stands for <paramref name="codepoint"/> in matching.</summary>
    internal static char StandInFor(int codepoint)
    {
        char c = s_standIns[(int)CharUnicodeInfo.GetUnicodeCategory(codepoint)];
        return c != '\0' ? c : throw new InvalidOperationException($"no stand-in for U+{codepoint:X} ({CharUnicodeInfo.GetUnicodeCategory(codepoint)})");
    }

    private static char[] BuildStandIns()
    {
        // Characters from blocks patterns do not name (Lisu, Vai, Latin Extended-D, Syloti Nagri, …) first, so
        // no literal or range in a pattern matches a stand-in; their case variants are only each other.
        var standIns = new char[30];
        foreach (var (first, last) in new[] { (0xA4D0, 0xABFF), (0x2C00, 0x2FFF), (0x1D00, 0x2BFF), (0x0370, 0x1CFF), (0xE000, 0xFFFD) })
        {
            for (int c = first; c <= last; c++)
            {
                var category = CharUnicodeInfo.GetUnicodeCategory(c);
                if (standIns[(int)category] == '\0' && category != UnicodeCategory.Surrogate && !char.IsSurrogate((char)c))
                    standIns[(int)category] = (char)c;
            }
        }
        // unassigned: a code point in the Greek block that stays unassigned
        standIns[(int)UnicodeCategory.OtherNotAssigned] = '\u0378';
        return standIns;
    }

    /// <summary>The text with each supplementary character as its stand-in; offsets[i] = UTF-16 offset of code point i.</summary>
    private static (string Subject, int[] Offsets) StandInText(string text)
    {
        var sb = new StringBuilder(text.Length);
        var offsets = new int[text.Length + 1];
        int n = 0;
        for (int i = 0; i < text.Length; i++)
        {
            offsets[n++] = i;
            char c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                sb.Append(StandInFor(char.ConvertToUtf32(c, text[i + 1])));
                i++;
            }
            else
            {
                // a lone surrogate (callers replace them with U+FFFD first) stays as it is
                sb.Append(c);
            }
        }
        offsets[n] = text.Length;
        return (sb.ToString(), offsets);
    }

    // ---- pattern translation ----

    private static string EscapeLiteral(string literal)
    {
        var sb = new StringBuilder(literal.Length * 2);
        foreach (char c in literal)
        {
            if (c is '\\' or '*' or '+' or '?' or '|' or '{' or '}' or '[' or ']' or '(' or ')' or '^' or '$' or '.' or '#' or ' ' or '-')
                sb.Append('\\');
            if (c is '\t' or '\n' or '\r' or '\f' or '\v')
                sb.Append(c switch { '\t' => "\\t", '\n' => "\\n", '\r' => "\\r", '\f' => "\\f", _ => "\\v" });
            else
                sb.Append(c);
        }
        return sb.ToString();
    }

    private const string WordClassBody = @"\p{L}\p{M}\p{Nd}\p{Pc}";

    /// <summary>Oniguruma syntax → .NET syntax with the same meaning, or <see cref="NotSupportedException"/>.</summary>
    internal static string Translate(string pattern)
    {
        var sb = new StringBuilder(pattern.Length + 16);
        bool inClass = false;
        int i = 0;
        NotSupportedException Unsupported(string what) => new($"regular expression '{pattern}': {what} is not supported");

        while (i < pattern.Length)
        {
            char c = pattern[i];
            if (c == '\\')
            {
                if (i + 1 >= pattern.Length)
                    throw Unsupported("a trailing backslash");
                char e = pattern[i + 1];
                switch (e)
                {
                    case 'p':
                    case 'P':
                    {
                        bool negate = e == 'P';
                        string name;
                        if (i + 2 < pattern.Length && pattern[i + 2] == '{')
                        {
                            int close = pattern.IndexOf('}', i + 3);
                            if (close < 0)
                                throw Unsupported("an unterminated \\p{");
                            name = pattern[(i + 3)..close];
                            i = close + 1;
                        }
                        else
                        {
                            // Oniguruma only knows \p{…}: a bare \p is the letter itself
                            sb.Append(e);
                            i += 2;
                            continue;
                        }
                        if (name.StartsWith('^'))
                        {
                            negate = !negate;
                            name = name[1..];
                        }
                        sb.Append(negate ? @"\P{" : @"\p{").Append(CategoryName(name) ?? throw Unsupported($"the property '{name}'")).Append('}');
                        continue;
                    }
                    case 'w':
                        sb.Append(inClass ? WordClassBody : "[" + WordClassBody + "]");
                        i += 2;
                        continue;
                    case 'W':
                        if (inClass)
                            throw Unsupported("\\W inside a character class");
                        sb.Append("[^" + WordClassBody + "]");
                        i += 2;
                        continue;
                    case 'h':
                        sb.Append(inClass ? "0-9a-fA-F" : "[0-9a-fA-F]");
                        i += 2;
                        continue;
                    case 'H':
                        if (inClass)
                            throw Unsupported("\\H inside a character class");
                        sb.Append("[^0-9a-fA-F]");
                        i += 2;
                        continue;
                    case 'x' when i + 2 < pattern.Length && pattern[i + 2] == '{':
                    {
                        int close = pattern.IndexOf('}', i + 3);
                        if (close < 0)
                            throw Unsupported("an unterminated \\x{");
                        int value = Convert.ToInt32(pattern[(i + 3)..close], 16);
                        if (value > 0xFFFF)
                            throw Unsupported($"\\x{{{value:X}}} (a character outside the BMP)");
                        sb.Append(@"\u").Append(value.ToString("X4"));
                        i = close + 1;
                        continue;
                    }
                    case 'K' or 'R' or 'X' or 'G' or 'O' or 'N' or 'y' or 'Y' or 'g' or 'k':
                        throw Unsupported($"\\{e}");
                    default:
                        sb.Append(c).Append(e);
                        i += 2;
                        continue;
                }
            }

            if (inClass)
            {
                if (c == '[')
                    throw Unsupported(i + 1 < pattern.Length && pattern[i + 1] == ':' ? "a POSIX bracket expression" : "a nested character class");
                if (c == '&' && i + 1 < pattern.Length && pattern[i + 1] == '&')
                    throw Unsupported("class intersection (&&)");
                if (c == ']')
                    inClass = false;
                sb.Append(c);
                i++;
                continue;
            }

            if (c == '[')
            {
                inClass = true;
                sb.Append(c);
                i++;
                // a ']' right after '[' or '[^' is a literal in both dialects
                if (i < pattern.Length && pattern[i] == '^')
                    sb.Append(pattern[i++]);
                if (i < pattern.Length && pattern[i] == ']')
                {
                    sb.Append(@"\]");
                    i++;
                }
                continue;
            }
            if ((c is '+' or '*' or '?' or '}') && i + 1 < pattern.Length && pattern[i + 1] == '+')
                throw Unsupported("a possessive quantifier");
            if (c == '(' && i + 1 < pattern.Length && pattern[i + 1] == '?')
            {
                // inline options: Oniguruma's 'm' is .NET's 's' (dot matches newline)
                sb.Append("(?");
                i += 2;
                while (i < pattern.Length && pattern[i] is 'i' or 'm' or 'x' or '-')
                {
                    sb.Append(pattern[i] == 'm' ? 's' : pattern[i]);
                    i++;
                }
                continue;
            }
            sb.Append(c);
            i++;
        }
        if (inClass)
            throw Unsupported("an unterminated character class");
        return sb.ToString();
    }

    /// <summary>A general category name (short or long, any case, '_'/' '/'-' ignored) as .NET's short form.</summary>
    private static string? CategoryName(string name)
    {
        string key = name.Replace("_", "").Replace(" ", "").Replace("-", "").ToLowerInvariant();
        return key switch
        {
            "l" or "letter" => "L",
            "lu" or "uppercaseletter" => "Lu",
            "ll" or "lowercaseletter" => "Ll",
            "lt" or "titlecaseletter" => "Lt",
            "lm" or "modifierletter" => "Lm",
            "lo" or "otherletter" => "Lo",
            "m" or "mark" or "combiningmark" => "M",
            "mn" or "nonspacingmark" => "Mn",
            "mc" or "spacingmark" => "Mc",
            "me" or "enclosingmark" => "Me",
            "n" or "number" => "N",
            "nd" or "decimalnumber" => "Nd",
            "nl" or "letternumber" => "Nl",
            "no" or "othernumber" => "No",
            "p" or "punctuation" => "P",
            "pc" or "connectorpunctuation" => "Pc",
            "pd" or "dashpunctuation" => "Pd",
            "ps" or "openpunctuation" => "Ps",
            "pe" or "closepunctuation" => "Pe",
            "pi" or "initialpunctuation" => "Pi",
            "pf" or "finalpunctuation" => "Pf",
            "po" or "otherpunctuation" => "Po",
            "s" or "symbol" => "S",
            "sm" or "mathsymbol" => "Sm",
            "sc" or "currencysymbol" => "Sc",
            "sk" or "modifiersymbol" => "Sk",
            "so" or "othersymbol" => "So",
            "z" or "separator" => "Z",
            "zs" or "spaceseparator" => "Zs",
            "zl" or "lineseparator" => "Zl",
            "zp" or "paragraphseparator" => "Zp",
            "c" or "other" => "C",
            "cc" or "control" => "Cc",
            "cf" or "format" => "Cf",
            "cs" or "surrogate" => "Cs",
            "co" or "privateuse" => "Co",
            "cn" or "unassigned" => "Cn",
            _ => null,
        };
    }
}
