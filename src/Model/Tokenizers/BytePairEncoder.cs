namespace LlavaNative.Model.Tokenizers;

/// <summary>
/// Byte-level BPE over one pre-tokenized word, with llama.cpp's semantics (llm_tokenizer_bpe_session): the
/// word's bytes, spelled in the GPT-2 alphabet, start as one symbol each; the adjacent pair with the lowest
/// merge rank (ties: leftmost) merges until no pair has a rank; each final symbol is its token, or — when a
/// merge produced a string that is not a token — the tokens of its single ASCII characters.
/// </summary>
/// <remarks>
/// Strings are interned as "pieces": a piece id is the token id for a token string, and ids from the vocabulary
/// size upwards name strings that occur only in merges. A merge is then a dictionary lookup on two ints, and a
/// symbol's validity check is an int compare. The priority queue holds at most one entry per adjacent pair, so
/// a word of n bytes costs O(n log n).
/// </remarks>
internal sealed class BytePairEncoder
{
    private readonly int _vocabSize;
    private readonly Dictionary<long, long> _merges;      // (left piece, right piece) → (rank << 32) | merged piece
    private readonly int[] _bytePiece;                     // [256] piece of each byte's alphabet character, or -1
    private readonly string[] _mergeOnlyPieces;            // text of pieces ≥ vocab size
    private readonly TokenLookup _tokens;

    public BytePairEncoder(TokenLookup tokens, int vocabSize, string[] merges, string vocabularyName)
    {
        _tokens = tokens;
        _vocabSize = vocabSize;

        var extraPieces = new Dictionary<string, int>(StringComparer.Ordinal);
        var extraList = new List<string>();
        int PieceOf(string text)
        {
            if (tokens.TryGetId(text, out int id))
                return id;
            if (!extraPieces.TryGetValue(text, out id))
            {
                id = vocabSize + extraList.Count;
                extraPieces.Add(text, id);
                extraList.Add(text);
            }
            return id;
        }

        _merges = new Dictionary<long, long>(merges.Length, PairKeyComparer.Instance);
        for (int rank = 0; rank < merges.Length; rank++)
        {
            string merge = merges[rank];
            // llama.cpp splits at the first space after the first character; a line without one is ignored
            int space = merge.Length > 1 ? merge.IndexOf(' ', 1) : -1;
            if (space < 0)
                continue;
            string left = merge[..space];
            string right = merge[(space + 1)..];
            if (left.Length == 0 || right.Length == 0)
                throw new FormatException($"{vocabularyName}: BPE merge {rank} '{merge}' has an empty side");
            long key = PairKey(PieceOf(left), PieceOf(right));
            // the first occurrence of a pair wins, as with std::map::emplace
            _merges.TryAdd(key, ((long)rank << 32) | (uint)PieceOf(left + right));
        }
        _mergeOnlyPieces = extraList.ToArray();

        _bytePiece = new int[256];
        for (int b = 0; b < 256; b++)
            _bytePiece[b] = tokens.TryGetId(ByteLevelAlphabet.ByteToChar[b].ToString(), out int id) ? id
                : extraPieces.TryGetValue(ByteLevelAlphabet.ByteToChar[b].ToString(), out id) ? id : -1;
    }

    private static long PairKey(int left, int right) => ((long)left << 32) | (uint)right;

    /// <summary>long's own hash XORs the halves, so (a, b) and (b, a) — and many more pairs — collide.</summary>
    private sealed class PairKeyComparer : IEqualityComparer<long>
    {
        public static readonly PairKeyComparer Instance = new();
        public bool Equals(long x, long y) => x == y;
        public int GetHashCode(long key) => (int)(((ulong)key * 0x9E3779B97F4A7C15UL) >> 32);
    }

    internal struct Symbol
    {
        public int Piece;   // -1: a byte whose character is neither a token nor part of any merge
        public int Prev;
        public int Next;
        public bool Alive;
    }

    /// <summary>Reusable per-thread working memory.</summary>
    public sealed class Scratch
    {
        internal Symbol[] Symbols = new Symbol[64];
        internal readonly BigramQueue Queue = new();
    }

    /// <summary>
    /// Appends the tokens of one word given as UTF-8 bytes. <paramref name="encodedWord"/> is the same word in the
    /// GPT-2 alphabet (one char per byte), used for the whole-word lookup when <paramref name="ignoreMerges"/>.
    /// </summary>
    public void EncodeWord(ReadOnlySpan<byte> word, ReadOnlySpan<char> encodedWord, bool ignoreMerges, Scratch scratch, List<int> output)
    {
        if (word.Length == 0)
            return;
        if (ignoreMerges && _tokens.TryGetId(encodedWord, out int wholeWord))
        {
            output.Add(wholeWord);
            return;
        }

        if (scratch.Symbols.Length < word.Length)
            scratch.Symbols = new Symbol[Math.Max(word.Length, scratch.Symbols.Length * 2)];
        Span<Symbol> symbols = scratch.Symbols.AsSpan(0, word.Length);
        for (int i = 0; i < word.Length; i++)
            symbols[i] = new Symbol { Piece = _bytePiece[word[i]], Prev = i - 1, Next = i + 1 < word.Length ? i + 1 : -1, Alive = true };

        var queue = scratch.Queue;
        queue.Clear();
        for (int i = 1; i < word.Length; i++)
            TryQueue(symbols, queue, i - 1, i);

        while (queue.TryPop(out Bigram pair))
        {
            ref Symbol left = ref symbols[pair.Left];
            ref Symbol right = ref symbols[pair.Right];
            // stale: one side already merged elsewhere (a symbol's piece changes whenever it grows)
            if (!left.Alive || !right.Alive || left.Piece != pair.A || right.Piece != pair.B)
                continue;

            left.Piece = pair.C;
            left.Next = right.Next;
            right.Alive = false;
            if (right.Next >= 0)
                symbols[right.Next].Prev = pair.Left;

            if (left.Prev >= 0)
                TryQueue(symbols, queue, left.Prev, pair.Left);
            if (left.Next >= 0)
                TryQueue(symbols, queue, pair.Left, left.Next);
        }

        for (int i = 0; i >= 0; i = symbols[i].Next)
        {
            int piece = symbols[i].Piece;
            if (piece < 0)
                continue; // llama.cpp finds no token for this byte's character and emits nothing
            if (piece < _vocabSize)
            {
                output.Add(piece);
                continue;
            }
            // a merge produced a string that is not a token: llama.cpp looks up each byte of its UTF-8 form
            // as a one-byte string, which only ASCII characters can match
            foreach (char c in _mergeOnlyPieces[piece - _vocabSize])
            {
                if (c < 0x80 && _tokens.TryGetId(new ReadOnlySpan<char>(in c), out int id))
                    output.Add(id);
            }
        }
    }

    private void TryQueue(Span<Symbol> symbols, BigramQueue queue, int left, int right)
    {
        int leftPiece = symbols[left].Piece, rightPiece = symbols[right].Piece;
        if (leftPiece < 0 || rightPiece < 0)
            return;
        if (!_merges.TryGetValue(PairKey(leftPiece, rightPiece), out long rankAndMerged))
            return;
        int rank = (int)(rankAndMerged >> 32);
        // lowest rank first, then leftmost
        queue.Push(new Bigram { Key = ((long)rank << 32) | (uint)left, Left = left, Right = right, A = leftPiece, B = rightPiece, C = (int)rankAndMerged });
    }
}
