using System.Globalization;
using System.Text;

namespace LlavaNative.Model.Tokenizers.HuggingFace;

/// <summary>
/// One piece of the input on its way through the pipeline (tokenizers' <c>Split</c> of a
/// <c>PreTokenizedString</c>): text still to be tokenized, or an added token already found (<see cref="TokenId"/>).
/// </summary>
/// <param name="AtTextStart">
/// The piece begins at offset 0 of the original input: Metaspace's "first" prepend scheme asks this
/// (<c>offsets_original().0 == 0</c>). Normalizers that drop leading characters clear it.
/// </param>
internal readonly record struct TextSplit(string Text, bool AtTextStart, int TokenId = -1)
{
    public bool IsToken => TokenId >= 0;
}

/// <summary>What a split does with the pieces a pattern matched (tokenizers' <c>SplitDelimiterBehavior</c>).</summary>
internal enum SplitBehavior
{
    /// <summary>Matches are dropped.</summary>
    Removed,
    /// <summary>Matches and the text between them are separate pieces.</summary>
    Isolated,
    /// <summary>A match joins the piece before it.</summary>
    MergedWithPrevious,
    /// <summary>A match joins the piece after it.</summary>
    MergedWithNext,
    /// <summary>Consecutive matches (and consecutive non-matches) form one piece.</summary>
    Contiguous,
}

/// <summary>
/// Splitting a string by a pattern with tokenizers' semantics (<c>NormalizedString::split</c> over a
/// <c>Pattern::find_matches</c> cover of the string), and the character classes Rust's <c>char</c> methods test.
/// </summary>
internal static class TextSplitting
{
    /// <summary>A covering of a string by consecutive ranges, each a match or not.</summary>
    public readonly record struct Segment(int Start, int End, bool IsMatch);

    public static SplitBehavior ParseBehavior(string name) => name switch
    {
        "Removed" => SplitBehavior.Removed,
        "Isolated" => SplitBehavior.Isolated,
        "MergedWithPrevious" => SplitBehavior.MergedWithPrevious,
        "MergedWithNext" => SplitBehavior.MergedWithNext,
        "Contiguous" => SplitBehavior.Contiguous,
        _ => throw new FormatException($"split behavior '{name}' is not one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous"),
    };

    /// <summary>tokenizers' find_matches for a regex: the matches and the gaps between them, covering the text.</summary>
    public static List<Segment> RegexSegments(CodepointRegex regex, string text, bool invert)
    {
        var segments = new List<Segment>();
        if (text.Length == 0)
        {
            segments.Add(new Segment(0, 0, invert));
            return segments;
        }
        var matches = new List<(int Start, int End)>();
        regex.FindMatches(text, matches);
        int previous = 0;
        foreach (var (start, end) in matches)
        {
            if (previous != start)
                segments.Add(new Segment(previous, start, invert));
            segments.Add(new Segment(start, end, !invert));
            previous = end;
        }
        if (previous != text.Length)
            segments.Add(new Segment(previous, text.Length, invert));
        return segments;
    }

    /// <summary>tokenizers' find_matches for a character predicate: every matching code point alone.</summary>
    public static List<Segment> CharSegments(string text, Func<int, bool> isMatch, bool invert = false)
    {
        var segments = new List<Segment>();
        if (text.Length == 0)
        {
            segments.Add(new Segment(0, 0, invert));
            return segments;
        }
        int lastOffset = 0;
        for (int i = 0; i < text.Length;)
        {
            Rune.DecodeFromUtf16(text.AsSpan(i), out Rune rune, out int length);
            if (isMatch(rune.Value))
            {
                if (lastOffset < i)
                    segments.Add(new Segment(lastOffset, i, invert));
                segments.Add(new Segment(i, i + length, !invert));
                lastOffset = i + length;
            }
            i += length;
        }
        if (lastOffset < text.Length)
            segments.Add(new Segment(lastOffset, text.Length, invert));
        return segments;
    }

    /// <summary>Applies <paramref name="behavior"/> to <paramref name="segments"/> and appends the non-empty pieces.</summary>
    public static void Split(string text, bool atTextStart, List<Segment> segments, SplitBehavior behavior, List<TextSplit> output)
    {
        // (start, end, remove) as NormalizedString::split computes them
        var pieces = new List<(int Start, int End, bool Remove)>(segments.Count);
        bool previousMatch = false;
        switch (behavior)
        {
            case SplitBehavior.Isolated:
                foreach (var s in segments)
                    pieces.Add((s.Start, s.End, false));
                break;
            case SplitBehavior.Removed:
                foreach (var s in segments)
                    pieces.Add((s.Start, s.End, s.IsMatch));
                break;
            case SplitBehavior.Contiguous:
                foreach (var s in segments)
                {
                    if (s.IsMatch == previousMatch && pieces.Count > 0)
                        pieces[^1] = (pieces[^1].Start, s.End, false);
                    else
                        pieces.Add((s.Start, s.End, false));
                    previousMatch = s.IsMatch;
                }
                break;
            case SplitBehavior.MergedWithPrevious:
                foreach (var s in segments)
                {
                    if (s.IsMatch && !previousMatch && pieces.Count > 0)
                        pieces[^1] = (pieces[^1].Start, s.End, false);
                    else
                        pieces.Add((s.Start, s.End, false));
                    previousMatch = s.IsMatch;
                }
                break;
            case SplitBehavior.MergedWithNext:
                for (int i = segments.Count - 1; i >= 0; i--)
                {
                    var s = segments[i];
                    if (s.IsMatch && !previousMatch && pieces.Count > 0)
                        pieces[^1] = (s.Start, pieces[^1].End, false);
                    else
                        pieces.Add((s.Start, s.End, false));
                    previousMatch = s.IsMatch;
                }
                pieces.Reverse();
                break;
        }

        foreach (var (start, end, remove) in pieces)
            if (!remove && end > start)
                output.Add(new TextSplit(text[start..end], atTextStart && start == 0));
    }

    // ---- Rust char classes ----

    /// <summary>Rust <c>char::is_whitespace</c>: the Unicode White_Space property.</summary>
    public static bool IsWhitespace(int cp) => UnicodeProperties.IsWhitespace(cp);

    /// <summary>Rust <c>char::is_numeric</c>: general category Nd, Nl or No.</summary>
    public static bool IsNumeric(int cp)
    {
        if (cp < 0x80)
            return cp is >= '0' and <= '9';
        return CharUnicodeInfo.GetUnicodeCategory(cp) is UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber;
    }

    /// <summary>tokenizers' <c>is_punc</c>: ASCII punctuation (symbols included) or Unicode category P*.</summary>
    public static bool IsPunctuation(int cp)
    {
        if (cp < 0x80)
            return cp is (>= 0x21 and <= 0x2F) or (>= 0x3A and <= 0x40) or (>= 0x5B and <= 0x60) or (>= 0x7B and <= 0x7E);
        return CharUnicodeInfo.GetUnicodeCategory(cp) is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
            or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
            or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation;
    }

    /// <summary>
    /// Rust regex <c>\w</c> (Unicode word characters), as the added vocabulary's single_word check uses it:
    /// letters, marks, decimal digits, connector punctuation, letter numbers and the joiners.
    /// The Other_Alphabetic symbols (circled letters) are not covered.
    /// </summary>
    public static bool IsWordCharacter(int cp)
    {
        if (cp < 0x80)
            return cp is (>= '0' and <= '9') or (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or '_';
        if (cp is 0x200C or 0x200D)
            return true;
        return CharUnicodeInfo.GetUnicodeCategory(cp) switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => true,
            UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark => true,
            UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.ConnectorPunctuation => true,
            _ => false,
        };
    }

    /// <summary>
    /// Unicode combining marks (Mn, Mc, Me): what StripAccents removes. tokenizers' table predates Unicode 16, so
    /// marks new in 16.0 (U+0897, …) are kept, as there.
    /// </summary>
    public static bool IsCombiningMark(int cp) =>
        cp >= 0x300 && (UnicodeProperties.Of(cp) & CodepointFlags.CategoryMask) == CodepointFlags.Mark;

    /// <summary>Replaces unpaired surrogates with U+FFFD, as the UTF-8 conversion in front of tokenizers does.</summary>
    public static string ReplaceLoneSurrogates(string text)
    {
        int first = -1;
        for (int i = 0; i < text.Length; i++)
        {
            if (!char.IsSurrogate(text[i]))
                continue;
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
                continue;
            }
            first = i;
            break;
        }
        if (first < 0)
            return text;
        char[] chars = text.ToCharArray();
        for (int i = first; i < chars.Length; i++)
        {
            if (!char.IsSurrogate(chars[i]))
                continue;
            if (char.IsHighSurrogate(chars[i]) && i + 1 < chars.Length && char.IsLowSurrogate(chars[i + 1]))
                i++;
            else
                chars[i] = '\uFFFD';
        }
        return new string(chars);
    }
}
