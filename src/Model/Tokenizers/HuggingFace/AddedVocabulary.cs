using System.Text;

namespace LlavaNative.Model.Tokenizers.HuggingFace;

/// <summary>One entry of tokenizer.json's <c>added_tokens</c> (or tokenizer_config.json's <c>added_tokens_decoder</c>).</summary>
internal sealed record AddedToken(string Content, bool Special, bool SingleWord = false, bool LeftStrip = false, bool RightStrip = false, bool? Normalized = null)
{
    /// <summary>Whether the token is matched in normalized text; tokenizers' default is "not special".</summary>
    public bool IsNormalized => Normalized ?? !Special;
}

/// <summary>
/// tokenizers' AddedVocabulary: tokens found in the text before the model sees it. Tokens with
/// <c>normalized: false</c> are found in the raw text first; the text between them is normalized; then tokens with
/// <c>normalized: true</c> are found in that normalized text (matching their own normalized content). Matching is
/// leftmost-longest; <c>single_word</c> tokens must not touch word characters, <c>lstrip</c>/<c>rstrip</c> tokens
/// take the white space beside them. When special tokens are to be read as text (<c>encode_special_tokens</c>,
/// our parseSpecial false) their matches are skipped.
/// </summary>
internal sealed class AddedVocabulary
{
    private readonly Dictionary<int, AddedToken> _byId = new();
    private readonly Dictionary<string, int> _idByContent = new(StringComparer.Ordinal);
    private readonly Dictionary<int, string> _normalizedContent = new();
    private readonly HashSet<string> _specialContents = new(StringComparer.Ordinal);
    private Matcher _raw = Matcher.Empty;
    private Matcher _normalized = Matcher.Empty;

    public IReadOnlyDictionary<int, AddedToken> ById => _byId;

    public bool TryGetId(string content, out int id) => _idByContent.TryGetValue(content, out id);

    public bool IsSpecial(int id) => _byId.TryGetValue(id, out var token) && token.Special;

    /// <summary>
    /// Whether decode with skip_special_tokens drops a token of this text: tokenizers compares the decoding text with
    /// the special tokens' contents, so a special token whose normalized form differs is kept, and any token spelled
    /// like a special token is dropped.
    /// </summary>
    public bool IsSpecialContent(string text) => _specialContents.Contains(text);

    /// <summary>The text an added token decodes as: its normalized content when normalization changed it.</summary>
    public string? DecodingText(int id) =>
        _normalizedContent.TryGetValue(id, out string? normalized) ? normalized : _byId.TryGetValue(id, out var t) ? t.Content : null;

    /// <summary>
    /// tokenizers' add_tokens: a token whose content is already an added token or a model token keeps that id;
    /// a new one gets the next id after the model vocabulary (or after the highest added id, when that is larger).
    /// </summary>
    public void Add(IEnumerable<AddedToken> tokens, BpeModel model, int modelVocabularyCount, TextNormalizer? normalizer)
    {
        int nextId = modelVocabularyCount;
        if (_byId.Count > 0)
        {
            int maxId = _byId.Keys.Max();
            if (maxId >= modelVocabularyCount || modelVocabularyCount == 0)
                nextId = maxId + 1;
        }
        foreach (var token in tokens)
        {
            if (token.Content.Length == 0)
                continue;
            if (_idByContent.TryGetValue(token.Content, out int existing) && _byId[existing] == token)
                continue;
            int id = _idByContent.TryGetValue(token.Content, out existing) ? existing
                : model.TryGetId(token.Content, out int modelId) ? modelId
                : nextId++;
            if (token.IsNormalized && normalizer is not null)
            {
                bool atStart = true;
                string normalized = normalizer.Normalize(token.Content, ref atStart);
                if (normalized != token.Content)
                    _normalizedContent[id] = normalized;
            }
            _idByContent[token.Content] = id;
            _byId[id] = token;
            if (token.Special)
                _specialContents.Add(token.Content);
        }
        var raw = new List<(string, int)>();
        var normalizedPatterns = new List<(string, int)>();
        foreach (var (id, token) in _byId)
        {
            if (token.IsNormalized)
                normalizedPatterns.Add((_normalizedContent.TryGetValue(id, out string? n) ? n : token.Content, id));
            else
                raw.Add((token.Content, id));
        }
        _raw = new Matcher(raw);
        _normalized = new Matcher(normalizedPatterns);
    }

    /// <summary>
    /// Steps 1 and 2 of tokenizers' extract_and_normalize: the text as added tokens and normalized text pieces.
    /// </summary>
    public List<TextSplit> ExtractAndNormalize(string text, TextNormalizer? normalizer, bool specialAsText)
    {
        var first = new List<TextSplit>();
        Split(text, atTextStart: true, _raw, specialAsText, first);

        var result = new List<TextSplit>(first.Count * 2);
        foreach (var split in first)
        {
            if (split.IsToken)
            {
                result.Add(split);
                continue;
            }
            bool atStart = split.AtTextStart;
            string normalized = normalizer is null ? split.Text : normalizer.Normalize(split.Text, ref atStart);
            Split(normalized, atStart, _normalized, specialAsText, result);
        }
        return result;
    }

    /// <summary>find_matches + split_with_indices: added tokens and the (non-empty) text between them.</summary>
    private void Split(string text, bool atTextStart, Matcher matcher, bool specialAsText, List<TextSplit> output)
    {
        if (text.Length == 0)
            return;
        int startOffset = 0;
        int position = 0;
        while (matcher.FindLeftmostLongest(text, position, out int matchStart, out int matchEnd, out int id))
        {
            position = matchEnd;
            AddedToken token = _byId[id];
            if (specialAsText && token.Special)
                continue;
            int start = matchStart, stop = matchEnd;
            if (token.SingleWord)
            {
                bool startSpace = start == 0 || !EndsWithWordCharacter(text, start);
                bool stopSpace = stop == text.Length || !StartsWithWordCharacter(text, stop);
                if (!startSpace || !stopSpace)
                    continue;
            }
            if (token.LeftStrip)
            {
                int newStart = start;
                while (newStart > 0 && PreviousIsWhitespace(text, newStart, out int n)) newStart -= n;
                start = Math.Max(newStart, startOffset);
            }
            if (token.RightStrip)
                while (stop < text.Length && NextIsWhitespace(text, stop, out int n)) stop += n;
            if (startOffset < start)
                output.Add(new TextSplit(text[startOffset..start], atTextStart && startOffset == 0));
            output.Add(new TextSplit(text[start..stop], atTextStart && start == 0, id));
            startOffset = stop; // the search itself goes on from the end of the match, as the automaton's does
        }
        if (startOffset < text.Length)
            output.Add(new TextSplit(text[startOffset..], atTextStart && startOffset == 0));
    }

    private static bool EndsWithWordCharacter(string text, int end)
    {
        Rune.DecodeLastFromUtf16(text.AsSpan(0, end), out Rune rune, out _);
        return TextSplitting.IsWordCharacter(rune.Value);
    }

    private static bool StartsWithWordCharacter(string text, int start)
    {
        Rune.DecodeFromUtf16(text.AsSpan(start), out Rune rune, out _);
        return TextSplitting.IsWordCharacter(rune.Value);
    }

    private static bool PreviousIsWhitespace(string text, int end, out int length)
    {
        Rune.DecodeLastFromUtf16(text.AsSpan(0, end), out Rune rune, out length);
        return TextSplitting.IsWhitespace(rune.Value);
    }

    private static bool NextIsWhitespace(string text, int start, out int length)
    {
        Rune.DecodeFromUtf16(text.AsSpan(start), out Rune rune, out length);
        return TextSplitting.IsWhitespace(rune.Value);
    }

    /// <summary>
    /// Leftmost-longest search over a set of strings (what tokenizers' Aho-Corasick automaton with
    /// MatchKind::LeftmostLongest finds): the earliest start position with any match, and there the longest.
    /// Candidates are bucketed by first character and tried longest first.
    /// </summary>
    private sealed class Matcher
    {
        public static readonly Matcher Empty = new([]);

        private readonly Dictionary<char, (string Text, int Id)[]> _byFirstChar;

        public Matcher(List<(string Text, int Id)> patterns)
        {
            _byFirstChar = patterns.Where(p => p.Text.Length > 0)
                .GroupBy(p => p.Text[0])
                .ToDictionary(g => g.Key, g => g.OrderByDescending(p => p.Text.Length).ThenBy(p => p.Id).ToArray());
        }

        public bool FindLeftmostLongest(string text, int from, out int start, out int end, out int id)
        {
            if (_byFirstChar.Count > 0)
            {
                for (int i = from; i < text.Length; i++)
                {
                    if (!_byFirstChar.TryGetValue(text[i], out var candidates))
                        continue;
                    foreach (var (pattern, patternId) in candidates)
                    {
                        if (text.AsSpan(i).StartsWith(pattern, StringComparison.Ordinal))
                        {
                            start = i;
                            end = i + pattern.Length;
                            id = patternId;
                            return true;
                        }
                    }
                }
            }
            start = end = id = -1;
            return false;
        }
    }
}
