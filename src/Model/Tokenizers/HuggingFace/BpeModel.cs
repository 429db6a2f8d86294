using System.Text;

namespace LlavaNative.Model.Tokenizers.HuggingFace;

/// <summary>
/// tokenizers' BPE model (models/bpe): a word starts as one symbol per code point (looked up in the vocabulary,
/// with <c>continuing_subword_prefix</c> / <c>end_of_word_suffix</c> where set); a code point that is not a token
/// becomes its <c>&lt;0xNN&gt;</c> byte tokens (<c>byte_fallback</c>) or the unknown token (consecutive ones fused
/// into one with <c>fuse_unk</c>), or is dropped when there is neither. Then the adjacent pair with the lowest
/// merge rank merges (ties: leftmost) until none is left. With <c>ignore_merges</c>, a word that is itself a
/// token is emitted whole.
/// </summary>
internal sealed class BpeModel
{
    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _vocabSpans;
    private readonly Dictionary<long, long> _merges;   // (left id, right id) → (rank << 32) | merged id
    private readonly int[] _byteTokens;                // [256] id of "<0xNN>", or -1
    private readonly int _unknownId;                   // -1: no unk_token
    private readonly string? _continuingSubwordPrefix;
    private readonly string? _endOfWordSuffix;
    private readonly bool _fuseUnknown;
    private readonly bool _byteFallback;
    private readonly bool _ignoreMerges;

    [ThreadStatic] private static Scratch? t_scratch;

    public BpeModel(Dictionary<string, int> vocab, IReadOnlyList<(string Left, string Right)> merges, string? unknownToken,
        string? continuingSubwordPrefix, string? endOfWordSuffix, bool fuseUnknown, bool byteFallback, bool ignoreMerges, string file)
    {
        _vocab = vocab;
        _vocabSpans = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        _continuingSubwordPrefix = string.IsNullOrEmpty(continuingSubwordPrefix) ? null : continuingSubwordPrefix;
        _endOfWordSuffix = string.IsNullOrEmpty(endOfWordSuffix) ? null : endOfWordSuffix;
        _fuseUnknown = fuseUnknown;
        _byteFallback = byteFallback;
        _ignoreMerges = ignoreMerges;

        UnknownToken = unknownToken;
        _unknownId = -1;
        if (unknownToken is not null && !vocab.TryGetValue(unknownToken, out _unknownId))
            throw new HuggingFaceTokenizerException(file, $"model.unk_token '{unknownToken}' is not in model.vocab");

        int maxId = -1;
        foreach (int id in vocab.Values)
            maxId = Math.Max(maxId, id);
        IdToToken = new string?[maxId + 1];
        foreach (var (token, id) in vocab)
            IdToToken[id] = token;

        // a later merge of the same pair replaces an earlier one, as collecting into tokenizers' hash map does
        int prefixLength = continuingSubwordPrefix?.Length ?? 0;
        _merges = new Dictionary<long, long>(merges.Count, PairComparer.Instance);
        for (int rank = 0; rank < merges.Count; rank++)
        {
            var (left, right) = merges[rank];
            int a = IdOf(left), b = IdOf(right);
            string merged = left + (prefixLength > 0 && right.StartsWith(continuingSubwordPrefix!, StringComparison.Ordinal) ? right[prefixLength..] : right);
            int c = IdOf(merged);
            _merges[((long)a << 32) | (uint)b] = ((long)rank << 32) | (uint)c;
        }

        int IdOf(string token) => vocab.TryGetValue(token, out int id) ? id
            : throw new HuggingFaceTokenizerException(file, $"model.merges: '{token}' is not in model.vocab");

        _byteTokens = new int[256];
        for (int b = 0; b < 256; b++)
            _byteTokens[b] = vocab.TryGetValue($"<0x{b:X2}>", out int id) ? id : -1;
    }

    /// <summary>long's own hash XORs the halves, so most (left, right) id pairs would collide; this mixes them.</summary>
    private sealed class PairComparer : IEqualityComparer<long>
    {
        public static readonly PairComparer Instance = new();
        public bool Equals(long x, long y) => x == y;
        public int GetHashCode(long key) => (int)(((ulong)key * 0x9E3779B97F4A7C15UL) >> 32);
    }

    /// <summary>id → token text; null where the vocabulary has no token with that id.</summary>
    public string?[] IdToToken { get; }

    public string? UnknownToken { get; }
    public bool ByteFallback => _byteFallback;

    public bool TryGetId(string token, out int id) => _vocab.TryGetValue(token, out id);

    /// <summary>The ids of the byte tokens "&lt;0x00&gt;" … "&lt;0xFF&gt;" present in the vocabulary.</summary>
    public IEnumerable<int> ByteTokenIds => _byteTokens.Where(id => id >= 0);

    private struct Symbol
    {
        public int Id;
        public int Prev;
        public int Next;
        public bool Alive;
    }

    private sealed class Scratch
    {
        public Symbol[] Symbols = new Symbol[64];
        public int Count;
        public readonly BigramQueue Queue = new();
        public readonly StringBuilder Piece = new();

        public void Add(int id)
        {
            if (Count == Symbols.Length)
                Array.Resize(ref Symbols, Symbols.Length * 2);
            Symbols[Count] = new Symbol { Id = id, Prev = Count - 1, Next = Count + 1, Alive = true };
            Count++;
        }
    }

    /// <summary>Appends the tokens of one pre-tokenized word.</summary>
    public void Tokenize(string word, List<int> output)
    {
        if (word.Length == 0)
            return;
        if (_ignoreMerges && _vocab.TryGetValue(word, out int whole))
        {
            output.Add(whole);
            return;
        }

        Scratch scratch = t_scratch ??= new Scratch();
        scratch.Count = 0;
        int pendingUnknown = -1; // an unknown token not yet emitted (it may still fuse with the next one)

        for (int i = 0; i < word.Length;)
        {
            int length = char.IsHighSurrogate(word[i]) && i + 1 < word.Length && char.IsLowSurrogate(word[i + 1]) ? 2 : 1;
            bool isFirst = i == 0, isLast = i + length == word.Length;
            ReadOnlySpan<char> piece = word.AsSpan(i, length);
            if ((!isFirst && _continuingSubwordPrefix is not null) || (isLast && _endOfWordSuffix is not null))
            {
                StringBuilder sb = scratch.Piece.Clear();
                if (!isFirst && _continuingSubwordPrefix is not null)
                    sb.Append(_continuingSubwordPrefix);
                sb.Append(piece);
                if (isLast && _endOfWordSuffix is not null)
                    sb.Append(_endOfWordSuffix);
                piece = sb.ToString();
            }
            i += length;

            if (_vocabSpans.TryGetValue(piece, out int id))
            {
                if (pendingUnknown >= 0)
                {
                    scratch.Add(pendingUnknown);
                    pendingUnknown = -1;
                }
                scratch.Add(id);
                continue;
            }
            if (_byteFallback && TryAddByteTokens(piece, scratch))
                continue;
            if (_unknownId >= 0)
            {
                if (pendingUnknown >= 0 && !_fuseUnknown)
                    scratch.Add(pendingUnknown);
                pendingUnknown = _unknownId;
            }
        }
        if (pendingUnknown >= 0)
            scratch.Add(pendingUnknown);
        int count = scratch.Count;
        if (count == 0)
            return;
        Symbol[] symbols = scratch.Symbols;
        symbols[count - 1].Next = -1;

        MergeAll(symbols, count, scratch.Queue);

        for (int s = 0; s >= 0; s = symbols[s].Next)
            output.Add(symbols[s].Id);
    }

    /// <summary>Byte fallback succeeds only when every UTF-8 byte of the piece has its token.</summary>
    private bool TryAddByteTokens(ReadOnlySpan<char> piece, Scratch scratch)
    {
        Span<byte> utf8 = stackalloc byte[Encoding.UTF8.GetMaxByteCount(piece.Length)];
        int n = Encoding.UTF8.GetBytes(piece, utf8);
        for (int j = 0; j < n; j++)
            if (_byteTokens[utf8[j]] < 0)
                return false;
        for (int j = 0; j < n; j++)
            scratch.Add(_byteTokens[utf8[j]]);
        return true;
    }

    /// <summary>
    /// tokenizers' Word::merge_all: a min-queue of (rank, position); an entry is stale when the pair now at its
    /// position no longer merges into the same token.
    /// </summary>
    private void MergeAll(Symbol[] symbols, int count, BigramQueue queue)
    {
        queue.Clear();
        for (int i = 0; i + 1 < count; i++)
            TryQueue(symbols, queue, i, i + 1);

        while (queue.TryPop(out Bigram top))
        {
            ref Symbol left = ref symbols[top.Left];
            if (!left.Alive || left.Next < 0)
                continue;
            int rightIndex = left.Next;
            ref Symbol right = ref symbols[rightIndex];
            if (!_merges.TryGetValue(((long)left.Id << 32) | (uint)right.Id, out long rankAndId) || (int)rankAndId != top.C)
                continue;

            left.Id = top.C;
            left.Next = right.Next;
            right.Alive = false;
            if (right.Next >= 0)
                symbols[right.Next].Prev = top.Left;

            if (left.Prev >= 0)
                TryQueue(symbols, queue, left.Prev, top.Left);
            if (left.Next >= 0)
                TryQueue(symbols, queue, top.Left, left.Next);
        }
    }

    private void TryQueue(Symbol[] symbols, BigramQueue queue, int left, int right)
    {
        if (!_merges.TryGetValue(((long)symbols[left].Id << 32) | (uint)symbols[right].Id, out long rankAndId))
            return;
        long rank = rankAndId >> 32;
        queue.Push(new Bigram { Key = (rank << 32) | (uint)left, Left = left, Right = right, C = (int)rankAndId });
    }
}
