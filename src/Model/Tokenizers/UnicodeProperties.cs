using System.Globalization;

namespace LlavaNative.Model.Tokenizers;

/// <summary>
/// The character classes llama.cpp's pre-tokenizers test (<c>unicode_cpt_flags</c> in its src/unicode.h): one
/// general-category bit per code point plus a separate white-space bit. <see cref="None"/> is what llama.cpp
/// reports for a position outside the text being split.
/// </summary>
[Flags]
internal enum CodepointFlags : ushort
{
    None = 0,
    Unassigned = 0x0001,   // Cn
    Number = 0x0002,       // \p{N}
    Letter = 0x0004,       // \p{L}
    Separator = 0x0008,    // \p{Z}
    Mark = 0x0010,         // \p{M}
    Punctuation = 0x0020,  // \p{P}
    Symbol = 0x0040,       // \p{S}
    Control = 0x0080,      // \p{C} except Cn
    CategoryMask = 0x00FF,
    Whitespace = 0x0100,   // \s as llama.cpp defines it: the Unicode White_Space property
}

/// <summary>
/// Code point classification identical to llama.cpp's generated tables (src/unicode-data.cpp). Those tables
/// were generated from UnicodeData.txt of Unicode 15.1; .NET 10 knows Unicode 16.0, so the 5185 code points
/// Unicode 16.0 assigned are reported as unassigned here, as llama.cpp does. A reference test compares every
/// code point 0..0x10FFFF against llama.cpp's table.
/// </summary>
internal static class UnicodeProperties
{
    private static readonly CodepointFlags[] s_ascii = BuildAscii();

    /// <summary>Inclusive ranges assigned in Unicode 16.0, unknown to llama.cpp's Unicode 15.1 tables.</summary>
    private static readonly (int First, int Last)[] s_assignedInUnicode16 =
    [
        (0x0897, 0x0897), (0x1B4E, 0x1B4F), (0x1B7F, 0x1B7F), (0x1C89, 0x1C8A), (0x2427, 0x2429),
        (0x31E4, 0x31E5), (0xA7CB, 0xA7CD), (0xA7DA, 0xA7DC), (0x105C0, 0x105F3), (0x10D40, 0x10D65),
        (0x10D69, 0x10D85), (0x10D8E, 0x10D8F), (0x10EC2, 0x10EC4), (0x10EFC, 0x10EFC), (0x11380, 0x11389),
        (0x1138B, 0x1138B), (0x1138E, 0x1138E), (0x11390, 0x113B5), (0x113B7, 0x113C0), (0x113C2, 0x113C2),
        (0x113C5, 0x113C5), (0x113C7, 0x113CA), (0x113CC, 0x113D5), (0x113D7, 0x113D8), (0x113E1, 0x113E2),
        (0x116D0, 0x116E3), (0x11BC0, 0x11BE1), (0x11BF0, 0x11BF9), (0x11F5A, 0x11F5A), (0x13460, 0x143FA),
        (0x16100, 0x16139), (0x16D40, 0x16D79), (0x18CFF, 0x18CFF), (0x1CC00, 0x1CCF9), (0x1CD00, 0x1CEB3),
        (0x1E5D0, 0x1E5FA), (0x1E5FF, 0x1E5FF), (0x1F8B2, 0x1F8BB), (0x1F8C0, 0x1F8C1), (0x1FA89, 0x1FA89),
        (0x1FA8F, 0x1FA8F), (0x1FABE, 0x1FABE), (0x1FAC6, 0x1FAC6), (0x1FADC, 0x1FADC), (0x1FADF, 0x1FADF),
        (0x1FAE9, 0x1FAE9), (0x1FBCB, 0x1FBEF),
    ];

    public static CodepointFlags Of(int codepoint)
    {
        if ((uint)codepoint < 128)
            return s_ascii[codepoint];
        if ((uint)codepoint > 0x10FFFF)
            return CodepointFlags.Unassigned;

        CodepointFlags flags = FromCategory(CharUnicodeInfo.GetUnicodeCategory(codepoint));
        if (flags != CodepointFlags.Unassigned && codepoint >= 0x0897 && IsAssignedInUnicode16(codepoint))
            flags = CodepointFlags.Unassigned;
        if (IsWhitespace(codepoint))
            flags |= CodepointFlags.Whitespace;
        return flags;
    }

    /// <summary>The Unicode White_Space property (PropList.txt), the set llama.cpp uses for <c>\s</c>.</summary>
    public static bool IsWhitespace(int codepoint) => codepoint switch
    {
        >= 0x09 and <= 0x0D => true,
        0x20 or 0x85 or 0xA0 or 0x1680 => true,
        >= 0x2000 and <= 0x200A => true,
        0x2028 or 0x2029 or 0x202F or 0x205F or 0x3000 => true,
        _ => false,
    };

    private static bool IsAssignedInUnicode16(int codepoint)
    {
        var ranges = s_assignedInUnicode16;
        int lo = 0, hi = ranges.Length - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >> 1;
            if (codepoint < ranges[mid].First) hi = mid - 1;
            else if (codepoint > ranges[mid].Last) lo = mid + 1;
            else return true;
        }
        return false;
    }

    private static CodepointFlags FromCategory(UnicodeCategory category) => category switch
    {
        UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
            or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => CodepointFlags.Letter,
        UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark
            => CodepointFlags.Mark,
        UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber
            => CodepointFlags.Number,
        UnicodeCategory.SpaceSeparator or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator
            => CodepointFlags.Separator,
        UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation or UnicodeCategory.OpenPunctuation
            or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
            or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation => CodepointFlags.Punctuation,
        UnicodeCategory.MathSymbol or UnicodeCategory.CurrencySymbol or UnicodeCategory.ModifierSymbol
            or UnicodeCategory.OtherSymbol => CodepointFlags.Symbol,
        UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate
            or UnicodeCategory.PrivateUse => CodepointFlags.Control,
        _ => CodepointFlags.Unassigned,
    };

    private static CodepointFlags[] BuildAscii()
    {
        var table = new CodepointFlags[128];
        for (int c = 0; c < 128; c++)
        {
            CodepointFlags flags = FromCategory(CharUnicodeInfo.GetUnicodeCategory(c));
            if (IsWhitespace(c))
                flags |= CodepointFlags.Whitespace;
            table[c] = flags;
        }
        return table;
    }
}
