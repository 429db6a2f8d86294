namespace LlavaNative.Model.Tokenizers.HuggingFace;

/// <summary>
/// A tokenizer.json <c>pre_tokenizer</c>: cuts each text piece into the words the model tokenizes separately
/// (pieces that are already added tokens pass through untouched). Each kind mirrors one of tokenizers'
/// pre-tokenizers (pre_tokenizers/*.rs), splitting on code points.
/// </summary>
internal abstract class PreTokenizerStep
{
    /// <summary>Replaces every text piece of <paramref name="splits"/> by its sub-pieces, in order.</summary>
    public virtual void Apply(List<TextSplit> splits)
    {
        var output = new List<TextSplit>(splits.Count * 2);
        foreach (var split in splits)
        {
            if (split.IsToken)
                output.Add(split);
            else
                SplitOne(split.Text, split.AtTextStart, output);
        }
        splits.Clear();
        splits.AddRange(output);
    }

    protected abstract void SplitOne(string text, bool atTextStart, List<TextSplit> output);

    public static PreTokenizerStep? Parse(TokenizerJsonReader json)
    {
        if (json.IsNull)
            return null;
        string type = json.Type();
        return type switch
        {
            "ByteLevel" => new ByteLevelPreTokenizer(json["add_prefix_space"].Bool(true), json["use_regex"].Bool(true)),
            "Split" => new SplitPreTokenizer(TextNormalizer.PatternOf(json["pattern"]),
                TextSplitting.ParseBehavior(json["behavior"].String()), json["invert"].Bool(false)),
            "Metaspace" => MetaspacePreTokenizer.FromJson(json),
            "Digits" => new CharClassPreTokenizer(TextSplitting.IsNumeric,
                json["individual_digits"].Bool(false) ? SplitBehavior.Isolated : SplitBehavior.Contiguous),
            "WhitespaceSplit" => new CharClassPreTokenizer(TextSplitting.IsWhitespace, SplitBehavior.Removed),
            "Punctuation" => new CharClassPreTokenizer(TextSplitting.IsPunctuation,
                json.Has("behavior") ? TextSplitting.ParseBehavior(json["behavior"].String()) : SplitBehavior.Isolated),
            "CharDelimiterSplit" => DelimiterOf(json),
            "Whitespace" => new SplitPreTokenizer(new CodepointRegex(@"\w+|[^\w\s]+"), SplitBehavior.Removed, invert: true),
            "BertPreTokenizer" => new SequencePreTokenizer([
                new CharClassPreTokenizer(TextSplitting.IsWhitespace, SplitBehavior.Removed),
                new CharClassPreTokenizer(TextSplitting.IsPunctuation, SplitBehavior.Isolated)]),
            "Sequence" => new SequencePreTokenizer(json["pretokenizers"].Items()
                .Select(p => Parse(p) ?? throw p.Error("is null, expected a pre-tokenizer")).ToArray()),
            _ => throw new NotSupportedException($"{json.File}: {json.Path}: pre-tokenizer type '{type}' is not supported; supported: ByteLevel, Split, Metaspace, Digits, Whitespace, WhitespaceSplit, Punctuation, CharDelimiterSplit, BertPreTokenizer, Sequence"),
        };
    }

    private static CharClassPreTokenizer DelimiterOf(TokenizerJsonReader json)
    {
        int delimiter = char.ConvertToUtf32(json["delimiter"].Char(), 0);
        return new CharClassPreTokenizer(cp => cp == delimiter, SplitBehavior.Removed);
    }
}

/// <summary>
/// GPT-2's byte-level step: optionally a leading space, optionally the GPT-2 word regex, then every UTF-8 byte
/// spelled as its alphabet character.
/// </summary>
internal sealed class ByteLevelPreTokenizer(bool addPrefixSpace, bool useRegex) : PreTokenizerStep
{
    /// <summary>tokenizers' fixed GPT-2 regex (pre_tokenizers/byte_level.rs).</summary>
    private static readonly CodepointRegex s_gpt2 = new(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+");

    protected override void SplitOne(string text, bool atTextStart, List<TextSplit> output)
    {
        if (addPrefixSpace && !text.StartsWith(' '))
            text = " " + text;
        int first = output.Count;
        if (useRegex)
            TextSplitting.Split(text, atTextStart, TextSplitting.RegexSegments(s_gpt2, text, invert: false), SplitBehavior.Isolated, output);
        else if (text.Length > 0)
            output.Add(new TextSplit(text, atTextStart));
        for (int i = first; i < output.Count; i++)
            output[i] = output[i] with { Text = ByteLevelNormalizer.ByteLevelText(output[i].Text) };
    }
}

/// <summary>Splits on a regex (or literal) pattern with a <see cref="SplitBehavior"/>, optionally inverted.</summary>
internal sealed class SplitPreTokenizer(CodepointRegex pattern, SplitBehavior behavior, bool invert) : PreTokenizerStep
{
    protected override void SplitOne(string text, bool atTextStart, List<TextSplit> output) =>
        TextSplitting.Split(text, atTextStart, TextSplitting.RegexSegments(pattern, text, invert), behavior, output);
}

/// <summary>Splits around code points of one class (digits, white space, punctuation, a delimiter).</summary>
internal sealed class CharClassPreTokenizer(Func<int, bool> isMatch, SplitBehavior behavior) : PreTokenizerStep
{
    protected override void SplitOne(string text, bool atTextStart, List<TextSplit> output) =>
        TextSplitting.Split(text, atTextStart, TextSplitting.CharSegments(text, isMatch), behavior, output);
}

/// <summary>How Metaspace puts its replacement in front of a piece.</summary>
internal enum PrependScheme
{
    /// <summary>Every piece that does not start with the replacement.</summary>
    Always,
    /// <summary>Only a piece that starts the input.</summary>
    First,
    Never,
}

/// <summary>
/// SentencePiece's visible spaces: ' ' becomes the replacement ('▁'), which is prepended per
/// <see cref="PrependScheme"/>, and the text is optionally split before each replacement.
/// </summary>
internal sealed class MetaspacePreTokenizer(string replacement, PrependScheme scheme, bool split) : PreTokenizerStep
{
    public string Replacement => replacement;
    public PrependScheme Scheme => scheme;

    public static MetaspacePreTokenizer FromJson(TokenizerJsonReader json)
    {
        string replacement = json["replacement"].Char();
        PrependScheme scheme = ParseScheme(json);
        return new MetaspacePreTokenizer(replacement, scheme, json["split"].Bool(true));
    }

    /// <summary>prepend_scheme (default "always"); the legacy add_prefix_space false means "never".</summary>
    public static PrependScheme ParseScheme(TokenizerJsonReader json)
    {
        PrependScheme scheme = json.Has("prepend_scheme")
            ? json["prepend_scheme"].String() switch
            {
                "always" => PrependScheme.Always,
                "first" => PrependScheme.First,
                "never" => PrependScheme.Never,
                string other => throw json["prepend_scheme"].Error($"is \"{other}\", expected always, first or never"),
            }
            : PrependScheme.Always;
        if (json["add_prefix_space"].BoolOrNull() == false)
        {
            if (scheme != PrependScheme.Never)
                throw json.Error("has add_prefix_space false but prepend_scheme is not \"never\"");
            scheme = PrependScheme.Never;
        }
        return scheme;
    }

    protected override void SplitOne(string text, bool atTextStart, List<TextSplit> output)
    {
        text = text.Replace(" ", replacement, StringComparison.Ordinal);
        bool prepend = scheme switch
        {
            PrependScheme.Always => !text.StartsWith(replacement, StringComparison.Ordinal),
            PrependScheme.First => !text.StartsWith(replacement, StringComparison.Ordinal) && atTextStart,
            _ => false,
        };
        if (prepend)
            text = replacement + text;
        if (!split)
        {
            if (text.Length > 0)
                output.Add(new TextSplit(text, atTextStart));
            return;
        }
        int replacementCodepoint = char.ConvertToUtf32(replacement, 0);
        TextSplitting.Split(text, atTextStart, TextSplitting.CharSegments(text, cp => cp == replacementCodepoint), SplitBehavior.MergedWithNext, output);
    }
}

internal sealed class SequencePreTokenizer(PreTokenizerStep[] steps) : PreTokenizerStep
{
    public override void Apply(List<TextSplit> splits)
    {
        foreach (var step in steps)
            step.Apply(splits);
    }

    protected override void SplitOne(string text, bool atTextStart, List<TextSplit> output) =>
        throw new InvalidOperationException("a sequence applies its steps to the whole list");
}
