using System.Text;

namespace LlavaNative.Model.Tokenizers.HuggingFace;

/// <summary>
/// A tokenizer.json <c>normalizer</c>: rewrites each piece of text between added tokens before pre-tokenization.
/// Offsets are not tracked; the one thing downstream needs from them — whether the piece still starts at the
/// beginning of the input — is passed along in <c>atTextStart</c> and cleared when leading characters are dropped.
/// </summary>
internal abstract class TextNormalizer
{
    public abstract string Normalize(string text, ref bool atTextStart);

    public static TextNormalizer? Parse(TokenizerJsonReader json)
    {
        if (json.IsNull)
            return null;
        string type = json.Type();
        return type switch
        {
            "NFC" => new UnicodeFormNormalizer(UnicodeForm.Nfc),
            "NFD" => new UnicodeFormNormalizer(UnicodeForm.Nfd),
            "NFKC" => new UnicodeFormNormalizer(UnicodeForm.Nfkc),
            "NFKD" => new UnicodeFormNormalizer(UnicodeForm.Nfkd),
            "Lowercase" => new LowercaseNormalizer(),
            "Strip" => new StripNormalizer(json["strip_left"].Bool(true), json["strip_right"].Bool(true)),
            "StripAccents" => new StripAccentsNormalizer(),
            "Replace" => new ReplaceNormalizer(PatternOf(json["pattern"]), json["content"].String()),
            "Prepend" => new PrependNormalizer(json["prepend"].String()),
            "Nmt" => new NmtNormalizer(),
            "ByteLevel" => new ByteLevelNormalizer(),
            "Sequence" => new SequenceNormalizer(json["normalizers"].Items().Select(n => Parse(n) ?? throw n.Error("is null, expected a normalizer")).ToArray()),
            _ => throw new NotSupportedException($"{json.File}: {json.Path}: normalizer type '{type}' is not supported; supported: NFC, NFD, NFKC, NFKD, Lowercase, Strip, StripAccents, Replace, Prepend, Nmt, ByteLevel, Sequence"),
        };
    }

    /// <summary>A <c>{"String": …}</c> or <c>{"Regex": …}</c> pattern.</summary>
    public static CodepointRegex PatternOf(TokenizerJsonReader json)
    {
        if (json.Has("String"))
            return CodepointRegex.ForLiteral(json["String"].String());
        if (json.Has("Regex"))
        {
            string pattern = json["Regex"].String();
            try
            {
                return new CodepointRegex(pattern);
            }
            catch (NotSupportedException e)
            {
                throw new NotSupportedException($"{json.File}: {json.Path}: {e.Message}", e);
            }
        }
        throw json.Error("is not a {\"String\": …} or {\"Regex\": …} pattern");
    }

    /// <summary>Replaces every match of <paramref name="pattern"/> with <paramref name="content"/>; reports whether offset 0 was replaced by nothing.</summary>
    public static string ReplaceAll(string text, CodepointRegex pattern, string content, out bool removedStart)
    {
        removedStart = false;
        var matches = new List<(int Start, int End)>();
        pattern.FindMatches(text, matches);
        if (matches.Count == 0)
            return text;
        var sb = new StringBuilder(text.Length + matches.Count * content.Length);
        int last = 0;
        foreach (var (start, end) in matches)
        {
            sb.Append(text, last, start - last).Append(content);
            if (start == 0 && end > 0 && content.Length == 0)
                removedStart = true;
            last = end;
        }
        sb.Append(text, last, text.Length - last);
        return sb.ToString();
    }
}

internal sealed class UnicodeFormNormalizer(UnicodeForm form) : TextNormalizer
{
    public override string Normalize(string text, ref bool atTextStart) => UnicodeNormalization.Normalize(text, form);
}

/// <summary>Rust's <c>char::to_lowercase</c> per code point: full mappings, so 'İ' becomes "i̇" (two characters).</summary>
internal sealed class LowercaseNormalizer : TextNormalizer
{
    public override string Normalize(string text, ref bool atTextStart)
    {
        var sb = new StringBuilder(text.Length);
        foreach (Rune rune in text.EnumerateRunes())
        {
            if (rune.Value == 0x130)
                sb.Append("i\u0307"); // the one unconditional multi-character lowercase mapping (SpecialCasing.txt)
            else
                sb.Append(Rune.ToLowerInvariant(rune).ToString());
        }
        return sb.ToString();
    }
}

/// <summary>Removes white space (Rust <c>char::is_whitespace</c>) at either end.</summary>
internal sealed class StripNormalizer(bool left, bool right) : TextNormalizer
{
    public override string Normalize(string text, ref bool atTextStart)
    {
        int start = 0, end = text.Length;
        if (left)
            while (start < end && NextIsWhitespace(text, start, out int n)) start += n;
        if (right)
            while (end > start && PreviousIsWhitespace(text, end, out int n)) end -= n;
        if (start > 0)
            atTextStart = false;
        return start == 0 && end == text.Length ? text : text[start..end];
    }

    private static bool NextIsWhitespace(string text, int i, out int length)
    {
        Rune.DecodeFromUtf16(text.AsSpan(i), out Rune rune, out length);
        return TextSplitting.IsWhitespace(rune.Value);
    }

    private static bool PreviousIsWhitespace(string text, int end, out int length)
    {
        Rune.DecodeLastFromUtf16(text.AsSpan(0, end), out Rune rune, out length);
        return TextSplitting.IsWhitespace(rune.Value);
    }
}

/// <summary>Removes combining marks (Mn, Mc, Me).</summary>
internal sealed class StripAccentsNormalizer : TextNormalizer
{
    public override string Normalize(string text, ref bool atTextStart)
    {
        var sb = new StringBuilder(text.Length);
        bool first = true;
        foreach (Rune rune in text.EnumerateRunes())
        {
            if (TextSplitting.IsCombiningMark(rune.Value))
            {
                if (first)
                    atTextStart = false;
                continue;
            }
            first = false;
            sb.Append(rune.ToString());
        }
        return sb.ToString();
    }
}

internal sealed class ReplaceNormalizer(CodepointRegex pattern, string content) : TextNormalizer
{
    public override string Normalize(string text, ref bool atTextStart)
    {
        string result = ReplaceAll(text, pattern, content, out bool removedStart);
        if (removedStart)
            atTextStart = false;
        return result;
    }
}

/// <summary>Puts a prefix in front of non-empty text.</summary>
internal sealed class PrependNormalizer(string prefix) : TextNormalizer
{
    public override string Normalize(string text, ref bool atTextStart) => text.Length == 0 ? text : prefix + text;
}

/// <summary>
/// tokenizers' Nmt normalizer: drops ASCII control characters (except tab, newlines, form feed) and a few C1
/// ones, and turns other white-space-like characters into a space.
/// </summary>
internal sealed class NmtNormalizer : TextNormalizer
{
    public override string Normalize(string text, ref bool atTextStart)
    {
        var sb = new StringBuilder(text.Length);
        bool first = true;
        foreach (Rune rune in text.EnumerateRunes())
        {
            int c = rune.Value;
            if (c is (>= 0x01 and <= 0x08) or 0x0B or (>= 0x0E and <= 0x1F) or 0x7F or 0x8F or 0x9F)
            {
                if (first)
                    atTextStart = false;
                continue;
            }
            first = false;
            bool space = c is 0x09 or 0x0A or 0x0C or 0x0D or 0x1680 or (>= 0x200B and <= 0x200F) or 0x2028 or 0x2029 or 0x2581 or 0xFEFF or 0xFFFD;
            sb.Append(space ? " " : rune.ToString());
        }
        return sb.ToString();
    }
}

/// <summary>Spells every UTF-8 byte as its GPT-2 alphabet character.</summary>
internal sealed class ByteLevelNormalizer : TextNormalizer
{
    public override string Normalize(string text, ref bool atTextStart) => ByteLevelText(text);

    public static string ByteLevelText(string text)
    {
        int n = Encoding.UTF8.GetByteCount(text);
        Span<byte> bytes = n <= 512 ? stackalloc byte[n] : new byte[n];
        Encoding.UTF8.GetBytes(text, bytes);
        return string.Create(n, bytes.ToArray(), static (chars, b) =>
        {
            for (int i = 0; i < b.Length; i++)
                chars[i] = ByteLevelAlphabet.ByteToChar[b[i]];
        });
    }
}

internal sealed class SequenceNormalizer(TextNormalizer[] normalizers) : TextNormalizer
{
    public override string Normalize(string text, ref bool atTextStart)
    {
        foreach (var normalizer in normalizers)
            text = normalizer.Normalize(text, ref atTextStart);
        return text;
    }
}
