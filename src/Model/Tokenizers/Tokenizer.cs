using System.Text;
using LlavaNative.Model.Tokenizers.HuggingFace;

namespace LlavaNative.Model.Tokenizers;

/// <summary>
/// Text ↔ token ids for a GGUF vocabulary, with exactly llama.cpp's behaviour: <see cref="Encode(string, bool, bool)"/>
/// is <c>llama_tokenize(vocab, text, add_special, parse_special)</c> and <see cref="TokenBytes"/> is
/// <c>llama_token_to_piece(vocab, id, buf, len, lstrip: 0, special: true)</c>. Supports SentencePiece
/// vocabularies (<c>tokenizer.ggml.model</c> "llama") and byte-level BPE ("gpt2") with the pre-tokenizers
/// listed by <see cref="SupportedPreTokenizers"/>. A Hugging Face tokenizer.json (<see cref="HuggingFaceTokenizerFiles"/>)
/// gets Hugging Face tokenizers' behaviour instead: Encode is <c>encode(text, add_special_tokens)</c> (parseSpecial
/// false reads special added tokens as text, as <c>encode_special_tokens</c>) and Decode is <c>decode(ids)</c>.
/// Instances are immutable and thread-safe.
/// </summary>
public sealed class Tokenizer
{
    private const char SpaceEscape = '\u2581'; // '▁', SentencePiece's visible space

    private readonly bool _isSentencePiece;
    private readonly string[] _texts;
    private readonly TokenAttributes[] _attributes;
    private readonly HashSet<int> _endOfGeneration;
    private readonly int[] _specialTokens;        // control, user-defined and unknown tokens, longest text first
    private readonly byte[] _pieceBytes;          // every token's piece, concatenated
    private readonly int[] _pieceOffsets;         // [VocabSize + 1]
    private readonly TokenLookup _lookup;
    private readonly SentencePieceEncoder? _sentencePiece;
    private readonly BytePairEncoder? _bytePair;
    private readonly PreTokenizer? _preTokenizer;
    private readonly HuggingFaceTokenizer? _huggingFace;

    [ThreadStatic] private static EncodeScratch? t_scratch;

    private Tokenizer(VocabularyData vocabulary)
    {
        string model = vocabulary.Model;
        _isSentencePiece = model switch
        {
            "llama" => true,
            "gpt2" => false,
            _ => throw new NotSupportedException($"tokenizer model '{model}' (tokenizer.ggml.model) is not supported; supported: llama (SentencePiece), gpt2 (byte-level BPE)"),
        };

        int n = vocabulary.Tokens.Length;
        if (n == 0)
            throw new FormatException("vocabulary has no tokens");
        VocabSize = n;

        // llama.cpp renames empty tokens so that every token has a distinct, non-empty text
        _texts = new string[n];
        for (int i = 0; i < n; i++)
            _texts[i] = vocabulary.Tokens[i].Length == 0 ? $"[EMPTY_{i}]" : vocabulary.Tokens[i];
        _lookup = new TokenLookup(_texts);

        _attributes = new TokenAttributes[n];
        int[]? types = vocabulary.TokenTypes;
        if (types is not null && types.Length < n)
            throw new FormatException($"vocabulary has {n} tokens but only {types.Length} token types");
        for (int i = 0; i < n; i++)
            _attributes[i] = types is null ? TokenAttributes.Normal : SpecialTokenRules.FromTokenType(types[i]);

        // llama.cpp's defaults where the file is silent: SPM bos 1, eos 2, unk 0; BPE bos = eos = 11
        int SpecialId(int? fromFile, int fallback) =>
            fromFile is int id && id >= 0 && id < n ? id : fallback >= 0 && fallback < n ? fallback : -1;
        BosId = SpecialId(vocabulary.BosId, _isSentencePiece ? 1 : 11);
        EosId = SpecialId(vocabulary.EosId, _isSentencePiece ? 2 : 11);
        int unknownId = SpecialId(vocabulary.UnknownId, _isSentencePiece ? 0 : -1);

        if (_isSentencePiece)
        {
            float[] scores = vocabulary.Scores ?? new float[n];
            if (scores.Length < n)
                throw new FormatException($"vocabulary has {n} tokens but only {scores.Length} scores");
            _sentencePiece = new SentencePieceEncoder(_lookup, scores, unknownId);
            AddBos = vocabulary.AddBos ?? true;
            AddSpacePrefix = vocabulary.AddSpacePrefix ?? true;
        }
        else
        {
            _preTokenizer = PreTokenizer.ForName(vocabulary.PreTokenizer);
            string[] merges = vocabulary.Merges ?? throw new FormatException("BPE vocabulary has no merges (tokenizer.ggml.merges)");
            _bytePair = new BytePairEncoder(_lookup, n, merges, "vocabulary");
            AddBos = vocabulary.AddBos ?? _preTokenizer.AddBosByDefault;
            AddSpacePrefix = false; // only SentencePiece prefixes a space
        }
        AddEos = vocabulary.AddEos ?? false;

        _endOfGeneration = SpecialTokenRules.Apply(_texts, _attributes, _lookup, EosId, vocabulary.ExtraEndOfGenerationIds);

        const TokenAttributes special = TokenAttributes.Control | TokenAttributes.UserDefined | TokenAttributes.Unknown;
        _specialTokens = Enumerable.Range(0, n)
            .Where(id => (_attributes[id] & special) != 0)
            .OrderByDescending(id => Encoding.UTF8.GetByteCount(_texts[id]))
            .ThenBy(id => id)
            .ToArray();

        (_pieceBytes, _pieceOffsets) = BuildPieces();
        SpecialTokenRules.ApplyStripRules(_attributes, _lookup, _specialTokens, vocabulary.PreTokenizer, vocabulary.Architecture, vocabulary.ModelName);
    }

    /// <summary>A tokenizer.json pipeline: token table, specials and flags as <see cref="HuggingFaceTokenizerFiles"/> read them.</summary>
    private Tokenizer(VocabularyData vocabulary, HuggingFaceTokenizer huggingFace)
    {
        _huggingFace = huggingFace;
        int n = vocabulary.Tokens.Length;
        VocabSize = n;
        _texts = vocabulary.Tokens;
        _lookup = new TokenLookup(_texts);
        _attributes = new TokenAttributes[n];
        for (int i = 0; i < n; i++)
            _attributes[i] = vocabulary.TokenTypes is { } types ? SpecialTokenRules.FromTokenType(types[i]) : TokenAttributes.Normal;
        BosId = vocabulary.BosId ?? -1;
        EosId = vocabulary.EosId ?? -1;
        AddBos = vocabulary.AddBos ?? false;
        AddEos = vocabulary.AddEos ?? false;
        _endOfGeneration = [.. vocabulary.ExtraEndOfGenerationIds];
        if (EosId >= 0)
            _endOfGeneration.Add(EosId);
        _specialTokens = [];
        (_pieceBytes, _pieceOffsets) = BuildPieces();
    }

    /// <summary>Builds a tokenizer; throws <see cref="NotSupportedException"/> for unknown models or pre-tokenizers.</summary>
    public static Tokenizer FromVocabulary(VocabularyData vocabulary)
    {
        ArgumentNullException.ThrowIfNull(vocabulary);
        return vocabulary.HuggingFace is { } huggingFace ? new Tokenizer(vocabulary, huggingFace) : new Tokenizer(vocabulary);
    }

    /// <summary>The <c>tokenizer.ggml.pre</c> names accepted for byte-level BPE vocabularies.</summary>
    public static IEnumerable<string> SupportedPreTokenizers => PreTokenizer.SupportedNames;

    public int VocabSize { get; }

    /// <summary>Beginning-of-sequence token, or -1 when the vocabulary has none.</summary>
    public int BosId { get; }

    /// <summary>End-of-sequence token, or -1 when the vocabulary has none.</summary>
    public int EosId { get; }

    /// <summary>Whether <see cref="Encode(string, bool, bool)"/> with addSpecial starts with <see cref="BosId"/>.</summary>
    public bool AddBos { get; }

    /// <summary>Whether <see cref="Encode(string, bool, bool)"/> with addSpecial ends with <see cref="EosId"/>.</summary>
    public bool AddEos { get; }

    /// <summary>SentencePiece only: text at the start or after a special token gets a leading space.</summary>
    public bool AddSpacePrefix { get; }

    /// <summary>Whether generating <paramref name="id"/> ends a turn: eos, eot, eom and the texts llama.cpp recognises.</summary>
    public bool IsEndOfGeneration(int id)
    {
        CheckId(id);
        return _endOfGeneration.Contains(id);
    }

    /// <summary>Whether <paramref name="id"/> is a control token (as llama.cpp's <c>llama_vocab_is_control</c>).</summary>
    public bool IsControl(int id)
    {
        CheckId(id);
        return (_attributes[id] & TokenAttributes.Control) != 0;
    }

    /// <summary>
    /// Whether <paramref name="id"/> is a special token that text is split around (control, user-defined, unknown):
    /// SentencePiece text after it gets its space prefix again (see <see cref="EncodeContinuation"/>).
    /// </summary>
    public bool IsSpecial(int id)
    {
        CheckId(id);
        return (_attributes[id] & (TokenAttributes.Control | TokenAttributes.UserDefined | TokenAttributes.Unknown)) != 0;
    }

    /// <summary>The token's text as stored in the vocabulary (e.g. "Ġhello" or "▁hello").</summary>
    public string TokenText(int id)
    {
        CheckId(id);
        return _texts[id];
    }

    /// <summary>The id of the token whose vocabulary text is exactly <paramref name="text"/>.</summary>
    public bool TryGetTokenId(string text, out int id) => _lookup.TryGetId(text, out id);

    /// <summary>
    /// The bytes a token prints as, including control tokens' own text: SentencePiece '▁' becomes a space and
    /// <c>&lt;0xNN&gt;</c> the byte NN; BPE characters map back through the GPT-2 byte alphabet. A multi-byte
    /// character may be split across tokens; use <see cref="TextDecoder"/> to print a stream.
    /// </summary>
    public ReadOnlySpan<byte> TokenBytes(int id)
    {
        CheckId(id);
        return _pieceBytes.AsSpan(_pieceOffsets[id], _pieceOffsets[id + 1] - _pieceOffsets[id]);
    }

    /// <summary>
    /// The text of a token sequence; bytes that do not form valid UTF-8 become U+FFFD. A tokenizer.json tokenizer
    /// runs its decoder (Hugging Face's <c>decode(ids, skip_special_tokens=False)</c>).
    /// </summary>
    public string Decode(ReadOnlySpan<int> ids)
    {
        if (_huggingFace is not null)
            return _huggingFace.Decode(ids, skipSpecialTokens: false);
        var bytes = new List<byte>();
        foreach (int id in ids)
            foreach (byte b in TokenBytes(id))
                bytes.Add(b);
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    /// <summary>Tokenizes <paramref name="text"/> as <c>llama_tokenize</c> does.</summary>
    /// <param name="addSpecial">Add BOS/EOS where the vocabulary asks for them.</param>
    /// <param name="parseSpecial">Recognise control tokens written in the text (user-defined ones always are).</param>
    public int[] Encode(string text, bool addSpecial = true, bool parseSpecial = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var output = new List<int>(text.Length / 3 + 4);
        Encode(text.AsSpan(), output, addSpecial, parseSpecial);
        return output.ToArray();
    }

    /// <summary>Tokenizes <paramref name="text"/>, appending the ids to <paramref name="output"/>.</summary>
    public void Encode(ReadOnlySpan<char> text, List<int> output, bool addSpecial = true, bool parseSpecial = true)
        => Encode(text, output, addSpecial, parseSpecial, continuesText: false);

    /// <summary>
    /// Tokenizes text that continues a sequence already in a KV cache (a later chat turn): no BOS/EOS, and for
    /// SentencePiece no space prefix at the start, so " USER: hi" becomes "▁USER" … as it does inside a longer text
    /// (after a special token written in the text the usual prefix applies). A tokenizer.json tokenizer encodes the
    /// text on its own, as <see cref="Encode(string, bool, bool)"/> does without special tokens.
    /// </summary>
    public int[] EncodeContinuation(string text, bool parseSpecial = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var output = new List<int>(text.Length / 3 + 4);
        Encode(text.AsSpan(), output, addSpecial: false, parseSpecial, continuesText: true);
        return output.ToArray();
    }

    private void Encode(ReadOnlySpan<char> text, List<int> output, bool addSpecial, bool parseSpecial, bool continuesText)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (_huggingFace is not null)
        {
            _huggingFace.Encode(text.ToString(), output, addSpecial, specialAsText: !parseSpecial);
            return;
        }
        EncodeScratch scratch = t_scratch ??= new EncodeScratch();

        // llama.cpp sees UTF-8; a lone surrogate arrives there as U+FFFD, which is what encoding it produces
        text = scratch.ReplaceLoneSurrogates(text);

        List<Fragment> fragments = PartitionSpecialTokens(text, parseSpecial, scratch);

        if (addSpecial && AddBos)
            output.Add(BosId >= 0 ? BosId : throw new InvalidOperationException("the vocabulary asks for a BOS token but has none"));

        bool previousWasSpecial = !continuesText; // SentencePiece: the start counts as "after a special token"
        foreach (Fragment fragment in fragments)
        {
            if (fragment.Token >= 0)
            {
                output.Add(fragment.Token);
                previousWasSpecial = true;
                continue;
            }
            ReadOnlySpan<char> piece = text.Slice(fragment.Offset, fragment.Length);
            if (_isSentencePiece)
            {
                _sentencePiece!.EncodeFragment(scratch.EscapeSpaces(piece, AddSpacePrefix && previousWasSpecial), scratch.SentencePiece, output);
                previousWasSpecial = false;
            }
            else
            {
                EncodeBytePairFragment(piece, scratch, output);
            }
        }

        if (addSpecial && AddEos)
            output.Add(EosId >= 0 ? EosId : throw new InvalidOperationException("the vocabulary asks for an EOS token but has none"));
    }

    private void EncodeBytePairFragment(ReadOnlySpan<char> text, EncodeScratch scratch, List<int> output)
    {
        int count = scratch.DecodeCodepoints(text);
        ReadOnlySpan<int> cps = scratch.Codepoints.AsSpan(0, count);
        ReadOnlySpan<CodepointFlags> flags = scratch.Flags.AsSpan(0, count);
        _preTokenizer!.Split(cps, flags, scratch.Words, scratch.WordsScratch);

        int start = 0;
        foreach (int length in scratch.Words)
        {
            ReadOnlySpan<byte> word = scratch.EncodeUtf8(cps.Slice(start, length));
            ReadOnlySpan<char> encodedWord = _preTokenizer.IgnoreMerges ? scratch.ToByteAlphabet(word) : default;
            _bytePair!.EncodeWord(word, encodedWord, _preTokenizer.IgnoreMerges, scratch.BytePair, output);
            start += length;
        }
    }

    private readonly record struct Fragment(int Offset, int Length, int Token);

    /// <summary>
    /// llama.cpp's tokenizer_st_partition: for each special token, longest text first, every occurrence in the
    /// remaining text fragments becomes that token. With parseSpecial false, control and unknown tokens are
    /// left as text; user-defined tokens are always split out.
    /// </summary>
    private List<Fragment> PartitionSpecialTokens(ReadOnlySpan<char> text, bool parseSpecial, EncodeScratch scratch)
    {
        List<Fragment> current = scratch.Fragments, next = scratch.FragmentsScratch;
        current.Clear();
        if (text.Length == 0)
            return current;
        current.Add(new Fragment(0, text.Length, -1));

        foreach (int id in _specialTokens)
        {
            if (!parseSpecial && (_attributes[id] & (TokenAttributes.Control | TokenAttributes.Unknown)) != 0)
                continue;
            string special = _texts[id];
            if (text.IndexOf(special.AsSpan(), StringComparison.Ordinal) < 0)
                continue; // cheap whole-text check first: most special tokens never occur

            next.Clear();
            foreach (Fragment fragment in current)
            {
                if (fragment.Token >= 0)
                {
                    next.Add(fragment);
                    continue;
                }
                int offset = fragment.Offset, end = fragment.Offset + fragment.Length;
                while (true)
                {
                    int match = text[offset..end].IndexOf(special.AsSpan(), StringComparison.Ordinal);
                    if (match < 0)
                    {
                        if (end > offset)
                            next.Add(new Fragment(offset, end - offset, -1));
                        break;
                    }
                    int left = match;
                    if ((_attributes[id] & TokenAttributes.LStrip) != 0)
                        while (left > 0 && IsCSpace(text[offset + left - 1])) left--;
                    if (left > 0)
                        next.Add(new Fragment(offset, left, -1));
                    next.Add(new Fragment(0, 0, id));
                    offset += match + special.Length;
                    if ((_attributes[id] & TokenAttributes.RStrip) != 0)
                        while (offset < end && IsCSpace(text[offset])) offset++;
                }
            }
            (current, next) = (next, current);
        }
        // keep the scratch lists in their slots whichever one holds the result
        scratch.Fragments = current;
        scratch.FragmentsScratch = next;
        return current;
    }

    /// <summary>C's isspace: the white space LSTRIP/RSTRIP remove (ASCII only, as llama.cpp tests bytes).</summary>
    private static bool IsCSpace(char c) => c == ' ' || (c >= '\t' && c <= '\r');

    private (byte[] Bytes, int[] Offsets) BuildPieces()
    {
        var bytes = new List<byte>(VocabSize * 8);
        var offsets = new int[VocabSize + 1];
        for (int id = 0; id < VocabSize; id++)
        {
            offsets[id] = bytes.Count;
            AppendPiece(id, bytes);
        }
        offsets[VocabSize] = bytes.Count;
        return (bytes.ToArray(), offsets);
    }

    /// <summary>llama.cpp's token_to_piece with special = true, for one token.</summary>
    private void AppendPiece(int id, List<byte> output)
    {
        if (_huggingFace is not null)
        {
            output.AddRange(_huggingFace.TokenBytes(id));
            return;
        }
        string text = _texts[id];
        TokenAttributes attributes = _attributes[id];
        if ((attributes & (TokenAttributes.Unknown | TokenAttributes.Control | TokenAttributes.UserDefined)) != 0)
        {
            output.AddRange(Encoding.UTF8.GetBytes(text));
        }
        else if ((attributes & TokenAttributes.Normal) != 0)
        {
            if (_isSentencePiece)
                output.AddRange(Encoding.UTF8.GetBytes(text.Replace(SpaceEscape, ' ')));
            else
                AppendByteLevelDecoded(text, output);
        }
        else if ((attributes & TokenAttributes.Byte) != 0)
        {
            output.Add(ParseByteToken(text));
        }
        // unused and undefined tokens print as nothing
    }

    /// <summary>
    /// Maps each character back to its byte. A character outside the GPT-2 alphabet becomes llama.cpp's
    /// "[UNK_BYTE_0x…" marker: its UTF-8 bytes in hex, then the whole token text, then "]".
    /// </summary>
    private static void AppendByteLevelDecoded(string text, List<byte> output)
    {
        Span<byte> utf8 = stackalloc byte[4];
        foreach (Rune rune in text.EnumerateRunes())
        {
            int b = ByteLevelAlphabet.CharToByte(rune.Value);
            if (b >= 0)
            {
                output.Add((byte)b);
                continue;
            }
            int n = rune.EncodeToUtf8(utf8);
            var marker = new StringBuilder("[UNK_BYTE_0x");
            for (int i = 0; i < n; i++)
                marker.Append(utf8[i].ToString("x2"));
            marker.Append(text).Append(']');
            output.AddRange(Encoding.UTF8.GetBytes(marker.ToString()));
        }
    }

    /// <summary>The byte of a "&lt;0xNN&gt;" token: hex digits from index 3 (at most two), as strtol reads them.</summary>
    private static byte ParseByteToken(string text)
    {
        int value = 0;
        for (int i = 3; i < Math.Min(text.Length, 5); i++)
        {
            int digit = HexDigit(text[i]);
            if (digit < 0)
                break;
            value = value * 16 + digit;
        }
        return (byte)value;

        static int HexDigit(char c) => c switch
        {
            >= '0' and <= '9' => c - '0',
            >= 'a' and <= 'f' => c - 'a' + 10,
            >= 'A' and <= 'F' => c - 'A' + 10,
            _ => -1,
        };
    }

    private void CheckId(int id)
    {
        if ((uint)id >= (uint)VocabSize)
            throw new ArgumentOutOfRangeException(nameof(id), id, $"token id {id} is outside the vocabulary (size {VocabSize})");
    }

    /// <summary>Per-thread working memory for <see cref="Encode(ReadOnlySpan{char}, List{int}, bool, bool)"/>, reused across calls.</summary>
    private sealed class EncodeScratch
    {
        public List<Fragment> Fragments = new();
        public List<Fragment> FragmentsScratch = new();
        public readonly List<int> Words = new();
        public readonly List<int> WordsScratch = new();
        public readonly SentencePieceEncoder.Scratch SentencePiece = new();
        public readonly BytePairEncoder.Scratch BytePair = new();
        public int[] Codepoints = new int[256];
        public CodepointFlags[] Flags = new CodepointFlags[256];
        private char[] _chars = new char[256];
        private char[] _sanitized = new char[256];
        private byte[] _bytes = new byte[256];

        public ReadOnlySpan<char> ReplaceLoneSurrogates(ReadOnlySpan<char> text)
        {
            int i = 0;
            for (; i < text.Length; i++)
            {
                if (char.IsSurrogate(text[i]))
                {
                    if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
                        i++;
                    else
                        break;
                }
            }
            if (i == text.Length)
                return text;

            Grow(ref _sanitized, text.Length);
            text.CopyTo(_sanitized);
            for (; i < text.Length; i++)
            {
                if (!char.IsSurrogate(text[i]))
                    continue;
                if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
                    i++;
                else
                    _sanitized[i] = '\uFFFD';
            }
            return _sanitized.AsSpan(0, text.Length);
        }

        /// <summary>The fragment with ' ' → '▁', optionally after a leading '▁'.</summary>
        public ReadOnlySpan<char> EscapeSpaces(ReadOnlySpan<char> text, bool prefixSpace)
        {
            int n = text.Length + (prefixSpace ? 1 : 0);
            Grow(ref _chars, n);
            Span<char> output = _chars.AsSpan(0, n);
            int o = 0;
            if (prefixSpace)
                output[o++] = SpaceEscape;
            text.Replace(output[o..], ' ', SpaceEscape);
            return output;
        }

        public int DecodeCodepoints(ReadOnlySpan<char> text)
        {
            Grow(ref Codepoints, text.Length);
            Grow(ref Flags, text.Length);
            int count = 0;
            for (int i = 0; i < text.Length; i++)
            {
                int cp = text[i];
                if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
                    cp = char.ConvertToUtf32(text[i], text[++i]);
                Codepoints[count] = cp;
                Flags[count] = UnicodeProperties.Of(cp);
                count++;
            }
            return count;
        }

        public ReadOnlySpan<byte> EncodeUtf8(ReadOnlySpan<int> cps)
        {
            Grow(ref _bytes, cps.Length * 4);
            int n = 0;
            foreach (int cp in cps)
                n += new Rune(cp).EncodeToUtf8(_bytes.AsSpan(n));
            return _bytes.AsSpan(0, n);
        }

        public ReadOnlySpan<char> ToByteAlphabet(ReadOnlySpan<byte> bytes)
        {
            Grow(ref _chars, bytes.Length);
            for (int i = 0; i < bytes.Length; i++)
                _chars[i] = ByteLevelAlphabet.ByteToChar[bytes[i]];
            return _chars.AsSpan(0, bytes.Length);
        }

        private static void Grow<T>(ref T[] buffer, int length)
        {
            if (buffer.Length < length)
                buffer = new T[Math.Max(length, buffer.Length * 2)];
        }
    }
}
