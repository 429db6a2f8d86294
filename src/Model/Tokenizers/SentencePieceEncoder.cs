using System.Text;

namespace LlavaNative.Model.Tokenizers;

/// <summary>
/// SentencePiece-style encoding of one text fragment with llama.cpp's semantics (llm_tokenizer_spm_session):
/// every character starts as a symbol; the adjacent pair whose concatenation is a token with the highest score
/// (ties: leftmost) merges, until no pair forms a token; a final symbol that is not a token (always a single
/// character) becomes its UTF-8 bytes as <c>&lt;0xNN&gt;</c> byte tokens.
/// </summary>
internal sealed class SentencePieceEncoder
{
    private readonly TokenLookup _tokens;
    private readonly float[] _scores;
    private readonly int[] _byteTokens;   // [256] token of each byte, or -1
    private readonly int _unknownId;

    public SentencePieceEncoder(TokenLookup tokens, float[] scores, int unknownId)
    {
        _tokens = tokens;
        _scores = scores;
        _unknownId = unknownId;
        _byteTokens = new int[256];
        for (int b = 0; b < 256; b++)
        {
            // llama.cpp's byte_to_token: "<0xNN>" (upper-case hex), else the byte itself as a one-character text
            if (tokens.TryGetId($"<0x{b:X2}>", out int id) || (b < 0x80 && tokens.TryGetId(((char)b).ToString(), out id)))
                _byteTokens[b] = id;
            else
                _byteTokens[b] = -1;
        }
    }

    internal struct Symbol
    {
        public int Start;   // in chars of the fragment
        public int Length;  // in chars; 0 once merged into its left neighbour
        public int Prev;
        public int Next;
    }

    /// <summary>
    /// Queue order: highest score first, then leftmost. The score's bits are mapped to an int that orders as the
    /// floats do (−0 counted as +0, as float comparison does), negated so the smallest key is the best pair.
    /// </summary>
    private static long BigramKey(float score, int left)
    {
        int bits = score == 0 ? 0 : BitConverter.SingleToInt32Bits(score);
        int ordered = bits >= 0 ? bits : bits ^ int.MaxValue;
        return ((long)~ordered << 32) | (uint)left;
    }

    /// <summary>Reusable per-thread working memory.</summary>
    public sealed class Scratch
    {
        internal Symbol[] Symbols = new Symbol[64];
        internal readonly BigramQueue Queue = new();
    }

    /// <summary>Appends the tokens of <paramref name="text"/>, whose spaces are already escaped to U+2581.</summary>
    public void EncodeFragment(ReadOnlySpan<char> text, Scratch scratch, List<int> output)
    {
        if (text.Length == 0)
            return;
        if (scratch.Symbols.Length < text.Length)
            scratch.Symbols = new Symbol[Math.Max(text.Length, scratch.Symbols.Length * 2)];
        Span<Symbol> symbols = scratch.Symbols;

        int count = 0;
        for (int offset = 0; offset < text.Length;)
        {
            int length = char.IsHighSurrogate(text[offset]) && offset + 1 < text.Length && char.IsLowSurrogate(text[offset + 1]) ? 2 : 1;
            symbols[count] = new Symbol { Start = offset, Length = length, Prev = count - 1, Next = count + 1 };
            offset += length;
            count++;
        }
        symbols[count - 1].Next = -1;

        var queue = scratch.Queue;
        queue.Clear();
        for (int i = 1; i < count; i++)
            TryQueue(text, symbols, queue, i - 1, i);

        while (queue.TryPop(out Bigram bigram))
        {
            ref Symbol left = ref symbols[bigram.Left];
            ref Symbol right = ref symbols[bigram.Right];
            // stale: a side was merged away or grew since the pair was queued
            if (left.Length == 0 || right.Length == 0 || left.Length + right.Length != bigram.A)
                continue;

            left.Length += right.Length;
            right.Length = 0;
            left.Next = right.Next;
            if (right.Next >= 0)
                symbols[right.Next].Prev = bigram.Left;

            TryQueue(text, symbols, queue, left.Prev, bigram.Left);
            TryQueue(text, symbols, queue, bigram.Left, left.Next);
        }

        for (int i = 0; i != -1; i = symbols[i].Next)
        {
            ReadOnlySpan<char> piece = text.Slice(symbols[i].Start, symbols[i].Length);
            if (_tokens.TryGetId(piece, out int id))
            {
                output.Add(id);
                continue;
            }
            // merged symbols are always tokens, so this is one character: byte fallback
            AppendByteTokens(piece, output);
        }
    }

    private void AppendByteTokens(ReadOnlySpan<char> character, List<int> output)
    {
        Span<byte> utf8 = stackalloc byte[4];
        int n = Encoding.UTF8.GetBytes(character, utf8);
        int before = output.Count;
        for (int j = 0; j < n; j++)
        {
            int id = _byteTokens[utf8[j]];
            if (id < 0)
            {
                // llama.cpp throws here (std::out_of_range); a vocabulary without byte tokens gets <unk>
                if (_unknownId < 0)
                {
                    Rune.DecodeFromUtf16(character, out Rune rune, out _);
                    throw new InvalidOperationException(
                        $"character U+{rune.Value:X4} is not in the vocabulary, which has neither byte tokens nor an unknown token");
                }
                output.RemoveRange(before, output.Count - before);
                output.Add(_unknownId);
                return;
            }
            output.Add(id);
        }
    }

    private void TryQueue(ReadOnlySpan<char> text, Span<Symbol> symbols, BigramQueue queue, int left, int right)
    {
        if (left == -1 || right == -1)
            return;
        int size = symbols[left].Length + symbols[right].Length;
        if (!_tokens.TryGetId(text.Slice(symbols[left].Start, size), out int id))
            return;
        queue.Push(new Bigram { Key = BigramKey(_scores[id], left), Left = left, Right = right, A = size });
    }
}
