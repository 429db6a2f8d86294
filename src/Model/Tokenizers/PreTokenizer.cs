namespace LlavaNative.Model.Tokenizers;

/// <summary>
/// Splits text into the words byte-level BPE merges within, as llama.cpp does for a <c>tokenizer.ggml.pre</c>
/// name: a fixed sequence of split steps (llama.cpp's <c>regex_exprs</c> for the pre-type), each applied inside
/// the segments the previous step produced. The steps are hand-written scanners with exactly the behaviour of
/// llama.cpp's own splitters (src/unicode.cpp: its gpt2/llama3/qwen2/qwen35 scanners, and std::regex over its
/// category-collapsed text for the simple class regexes), including their quirks; .NET Regex would differ on
/// category tables, <c>\s</c> and surrogate pairs.
/// </summary>
internal sealed class PreTokenizer
{
    private readonly SplitStep[] _steps;

    private PreTokenizer(string name, SplitStep[] steps, bool ignoreMerges, bool addBosByDefault)
    {
        Name = name;
        _steps = steps;
        IgnoreMerges = ignoreMerges;
        AddBosByDefault = addBosByDefault;
    }

    /// <summary>The pre-tokenizer family, e.g. "qwen2" for "deepseek-r1-qwen".</summary>
    public string Name { get; }

    /// <summary>A word that is itself a token is emitted whole, without merging (llama.cpp <c>ignore_merges</c>).</summary>
    public bool IgnoreMerges { get; }

    /// <summary>llama.cpp's default for <c>add_bos</c> when the file does not say.</summary>
    public bool AddBosByDefault { get; }

    private enum SplitStep
    {
        /// <summary>'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+</summary>
        Gpt2,
        /// <summary>(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+</summary>
        Llama3,
        /// <summary>As <see cref="Llama3"/> with single digits: \p{N} instead of \p{N}{1,3}.</summary>
        Qwen2,
        /// <summary>As <see cref="Qwen2"/> with marks joining letters: [\p{L}\p{M}]+ and [^\s\p{L}\p{M}\p{N}]+.</summary>
        Qwen35,
        /// <summary>[\p{P}\$\+&lt;=&gt;\^~\|]+ (runs of punctuation; matches and the gaps between them become segments).</summary>
        PunctuationRuns,
        /// <summary>[\p{P}\$\+&lt;=&gt;\^~\|`]+ (Falcon adds the backtick).</summary>
        PunctuationRunsWithBacktick,
        /// <summary>\p{N}+</summary>
        NumberRuns,
        /// <summary>\p{N} (every number character alone).</summary>
        SingleNumbers,
        /// <summary>[0-9][0-9][0-9] (ASCII digit triples, left to right).</summary>
        AsciiDigitTriples,
    }

    private static readonly (string[] Names, string Family, SplitStep[] Steps, bool IgnoreMerges, bool AddBos)[] s_families =
    [
        (["default"], "default",
            [SplitStep.PunctuationRuns, SplitStep.Gpt2, SplitStep.NumberRuns, SplitStep.AsciiDigitTriples], false, false),
        (["gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum",
          "modern-bert", "jina-v1-en", "jina-v2-code", "roberta-bpe", "exaone4", "mpt", "olmo", "jais", "trillion",
          "granite-docling"], "gpt-2",
            [SplitStep.Gpt2], false, false),
        (["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"], "llama3",
            [SplitStep.Llama3], true, true),
        (["dbrx", "smaug-bpe"], "dbrx",
            [SplitStep.Llama3], false, false),
        (["qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez", "stablelm2", "hunyuan", "solar-open", "grok-2"], "qwen2",
            [SplitStep.Qwen2], false, false),
        (["qwen35"], "qwen35",
            [SplitStep.Qwen35], false, false),
        (["starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b", "mellum2"], "starcoder",
            [SplitStep.SingleNumbers, SplitStep.Gpt2], false, false),
        (["falcon"], "falcon",
            [SplitStep.PunctuationRunsWithBacktick, SplitStep.Gpt2, SplitStep.AsciiDigitTriples], false, false),
    ];

    /// <summary>Every <c>tokenizer.ggml.pre</c> name this implementation supports.</summary>
    public static IEnumerable<string> SupportedNames => s_families.SelectMany(f => f.Names);

    /// <summary>The pre-tokenizer for a <c>tokenizer.ggml.pre</c> value; null or empty means "default", as in llama.cpp.</summary>
    public static PreTokenizer ForName(string? name)
    {
        string key = string.IsNullOrEmpty(name) ? "default" : name;
        foreach (var family in s_families)
        {
            if (Array.IndexOf(family.Names, key) >= 0)
                return new PreTokenizer(family.Family, family.Steps, family.IgnoreMerges, family.AddBos);
        }
        throw new NotSupportedException(
            $"BPE pre-tokenizer '{name}' (tokenizer.ggml.pre) is not supported; supported: {string.Join(", ", SupportedNames)}");
    }

    /// <summary>
    /// Splits <paramref name="cps"/> into words. <paramref name="segments"/> receives the word lengths in code
    /// points, in order; <paramref name="scratch"/> is working space.
    /// </summary>
    public void Split(ReadOnlySpan<int> cps, ReadOnlySpan<CodepointFlags> flags, List<int> segments, List<int> scratch)
    {
        segments.Clear();
        if (cps.Length == 0)
            return;
        segments.Add(cps.Length);
        foreach (SplitStep step in _steps)
        {
            scratch.Clear();
            int start = 0;
            foreach (int length in segments)
            {
                var scanner = new Scanner(cps, flags, start, start + length, scratch);
                switch (step)
                {
                    case SplitStep.Gpt2: scanner.SplitGpt2(); break;
                    case SplitStep.Llama3: scanner.SplitLlama3Family(maxDigits: 3, marksJoinLetters: false); break;
                    case SplitStep.Qwen2: scanner.SplitLlama3Family(maxDigits: 1, marksJoinLetters: false); break;
                    case SplitStep.Qwen35: scanner.SplitLlama3Family(maxDigits: 1, marksJoinLetters: true); break;
                    case SplitStep.PunctuationRuns: scanner.SplitClassRuns(IsDefaultPunctuation, single: false); break;
                    case SplitStep.PunctuationRunsWithBacktick: scanner.SplitClassRuns(IsFalconPunctuation, single: false); break;
                    case SplitStep.NumberRuns: scanner.SplitClassRuns(IsNumber, single: false); break;
                    case SplitStep.SingleNumbers: scanner.SplitClassRuns(IsNumber, single: true); break;
                    case SplitStep.AsciiDigitTriples: scanner.SplitAsciiDigitTriples(); break;
                }
                start += length;
            }
            segments.Clear();
            segments.AddRange(scratch);
        }
    }

    // llama.cpp runs these class regexes with std::regex over a "collapsed" text: ASCII stays itself, other white
    // space becomes '\v', other characters a byte per category. So \p{P} is ASCII punctuation plus non-white-space
    // punctuation, \p{N} is 0-9 plus non-white-space numbers.
    private static bool HasCategory(int cp, CodepointFlags f, CodepointFlags category) =>
        (f & CodepointFlags.Whitespace) == 0 && (f & CodepointFlags.CategoryMask) == category;

    private static bool IsNumber(int cp, CodepointFlags f) => HasCategory(cp, f, CodepointFlags.Number);

    private static bool IsDefaultPunctuation(int cp, CodepointFlags f) =>
        HasCategory(cp, f, CodepointFlags.Punctuation) || cp is '$' or '+' or '<' or '=' or '>' or '^' or '~' or '|';

    private static bool IsFalconPunctuation(int cp, CodepointFlags f) => IsDefaultPunctuation(cp, f) || cp == '`';

    /// <summary>One segment [start, end) being split; positions outside it read as "out of range" (cp -1, no flags).</summary>
    private ref struct Scanner
    {
        private const int OutOfRange = -1;
        private readonly ReadOnlySpan<int> _cps;
        private readonly ReadOnlySpan<CodepointFlags> _flags;
        private readonly int _start;
        private readonly int _end;
        private readonly List<int> _output;
        private int _previousEnd;

        public Scanner(ReadOnlySpan<int> cps, ReadOnlySpan<CodepointFlags> flags, int start, int end, List<int> output)
        {
            _cps = cps;
            _flags = flags;
            _start = start;
            _end = end;
            _output = output;
            _previousEnd = start;
        }

        private readonly int Cp(int pos) => pos < _end ? _cps[pos] : OutOfRange;
        private readonly CodepointFlags Flags(int pos) => pos < _end ? _flags[pos] : CodepointFlags.None;

        /// <summary>Ends the current word at <paramref name="end"/>; returns its length (0 adds nothing).</summary>
        private int AddWord(int end)
        {
            int length = end - _previousEnd;
            if (length > 0)
                _output.Add(length);
            _previousEnd = end;
            return length;
        }

        private static bool IsLetter(CodepointFlags f) => (f & CodepointFlags.Letter) != 0;
        private static bool IsNumber(CodepointFlags f) => (f & CodepointFlags.Number) != 0;
        private static bool IsSpace(CodepointFlags f) => (f & CodepointFlags.Whitespace) != 0;
        private static bool IsMark(CodepointFlags f) => (f & CodepointFlags.Mark) != 0;
        private static int AsciiLower(int cp) => cp is >= 'A' and <= 'Z' ? cp + 32 : cp;

        /// <summary>Length of the contraction 's 't 'm 'd 're 've 'll at <paramref name="pos"/>, or 0.</summary>
        private readonly int Contraction(int pos, bool ignoreCase)
        {
            if (Cp(pos) != '\'' || pos + 1 >= _end)
                return 0;
            int next = ignoreCase ? AsciiLower(Cp(pos + 1)) : Cp(pos + 1);
            if (next is 's' or 't' or 'm' or 'd')
                return 2;
            if (pos + 2 < _end)
            {
                int nextNext = ignoreCase ? AsciiLower(Cp(pos + 2)) : Cp(pos + 2);
                if ((next == 'r' && nextNext == 'e') || (next == 'v' && nextNext == 'e') || (next == 'l' && nextNext == 'l'))
                    return 3;
            }
            return 0;
        }

        public void SplitGpt2()
        {
            int pos = _start;
            while (pos < _end)
            {
                int cp = Cp(pos);
                CodepointFlags f = Flags(pos);

                int contraction = Contraction(pos, ignoreCase: false);
                if (contraction > 0)
                {
                    pos += AddWord(pos + contraction);
                    continue;
                }

                // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+': an optional leading space, then a run of one class
                CodepointFlags f2 = cp == ' ' ? Flags(pos + 1) : f;
                if (IsLetter(f2))
                {
                    if (cp == ' ') pos++;
                    while (IsLetter(Flags(pos))) pos++;
                    AddWord(pos);
                    continue;
                }
                if (IsNumber(f2))
                {
                    if (cp == ' ') pos++;
                    while (IsNumber(Flags(pos))) pos++;
                    AddWord(pos);
                    continue;
                }
                if (IsOther(f2))
                {
                    if (cp == ' ') pos++;
                    while (IsOther(Flags(pos))) pos++;
                    AddWord(pos);
                    continue;
                }

                int spaces = CountWhitespace(pos, out _);
                // '\s+(?!\S)': a white-space run followed by more text leaves its last character to the next word
                if (spaces > 1 && Cp(pos + spaces) != OutOfRange)
                {
                    pos += spaces - 1;
                    AddWord(pos);
                    continue;
                }
                if (spaces > 0)
                {
                    pos += spaces;
                    AddWord(pos);
                    continue;
                }
                AddWord(++pos);
            }

            static bool IsOther(CodepointFlags f) =>
                (f & (CodepointFlags.Whitespace | CodepointFlags.Letter | CodepointFlags.Number)) == 0 && f != CodepointFlags.None;
        }

        /// <summary>llama3 (<paramref name="maxDigits"/> 3), qwen2 (1) and qwen35 (1, marks join letters).</summary>
        public void SplitLlama3Family(int maxDigits, bool marksJoinLetters)
        {
            int pos = _start;
            while (pos < _end)
            {
                int cp = Cp(pos);
                CodepointFlags f = Flags(pos);

                int contraction = Contraction(pos, ignoreCase: true);
                if (contraction > 0)
                {
                    pos += AddWord(pos + contraction);
                    continue;
                }

                // '[^\r\n\p{L}\p{N}]?\p{L}+': one optional non-letter, non-digit, non-newline, then letters
                if (!(cp == '\r' || cp == '\n' || IsNumber(f)))
                {
                    if (IsWordChar(f) || IsWordChar(Flags(pos + 1)))
                    {
                        pos++;
                        while (IsWordChar(Flags(pos))) pos++;
                        AddWord(pos);
                        continue;
                    }
                }

                // '\p{N}{1,maxDigits}'
                if (IsNumber(f))
                {
                    int groupStart = pos;
                    while (IsNumber(Flags(pos)))
                    {
                        if (++pos - groupStart >= maxDigits)
                        {
                            AddWord(pos);
                            groupStart = pos;
                        }
                    }
                    AddWord(pos);
                    continue;
                }

                // ' ?[^\s\p{L}\p{N}]+[\r\n]*'. llama.cpp tests the flags of this position, not the one after the
                // space, for "in range", so a lone trailing space also ends up here as a word of its own.
                CodepointFlags f2 = cp == ' ' ? Flags(pos + 1) : f;
                if (IsOther(f2) && f != CodepointFlags.None)
                {
                    if (cp == ' ') pos++;
                    while (IsOther(f2) && f2 != CodepointFlags.None)
                        f2 = Flags(++pos);
                    while (Cp(pos) is '\r' or '\n')
                        pos++;
                    AddWord(pos);
                    continue;
                }

                int spaces = CountWhitespace(pos, out int endOfLastNewline);
                // '\s*[\r\n]+': white space up to and including its last newline
                if (endOfLastNewline > 0)
                {
                    pos = endOfLastNewline;
                    AddWord(pos);
                    continue;
                }
                if (spaces > 1 && Cp(pos + spaces) != OutOfRange)
                {
                    pos += spaces - 1;
                    AddWord(pos);
                    continue;
                }
                if (spaces > 0)
                {
                    pos += spaces;
                    AddWord(pos);
                    continue;
                }
                AddWord(++pos);
            }

            bool IsWordChar(CodepointFlags f) => IsLetter(f) || (marksJoinLetters && IsMark(f));

            bool IsOther(CodepointFlags f)
            {
                CodepointFlags excluded = CodepointFlags.Whitespace | CodepointFlags.Letter | CodepointFlags.Number;
                if (marksJoinLetters) excluded |= CodepointFlags.Mark;
                return (f & excluded) == 0;
            }
        }

        /// <summary>Number of white-space characters from <paramref name="pos"/>; also where the last \r or \n among them ends (0 if none).</summary>
        private readonly int CountWhitespace(int pos, out int endOfLastNewline)
        {
            endOfLastNewline = 0;
            int n = 0;
            while (IsSpace(Flags(pos + n)))
            {
                if (Cp(pos + n) is '\r' or '\n')
                    endOfLastNewline = pos + n + 1;
                n++;
            }
            return n;
        }

        /// <summary>A regex of one character class, "[class]+" (maximal runs) or "[class]" (single characters): matches and the gaps between them.</summary>
        public void SplitClassRuns(Func<int, CodepointFlags, bool> inClass, bool single)
        {
            int pos = _start;
            while (pos < _end)
            {
                if (inClass(_cps[pos], _flags[pos]))
                {
                    AddWord(pos); // the gap before the match
                    pos++;
                    if (!single)
                        while (pos < _end && inClass(_cps[pos], _flags[pos])) pos++;
                    AddWord(pos);
                }
                else
                {
                    pos++;
                }
            }
            AddWord(_end);
        }

        public void SplitAsciiDigitTriples()
        {
            int pos = _start;
            while (pos < _end)
            {
                if (pos + 3 <= _end && IsAsciiDigit(_cps[pos]) && IsAsciiDigit(_cps[pos + 1]) && IsAsciiDigit(_cps[pos + 2]))
                {
                    AddWord(pos);
                    pos += 3;
                    AddWord(pos);
                }
                else
                {
                    pos++;
                }
            }
            AddWord(_end);

            static bool IsAsciiDigit(int cp) => cp is >= '0' and <= '9';
        }
    }
}
