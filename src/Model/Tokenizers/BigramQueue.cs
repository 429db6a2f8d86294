namespace LlavaNative.Model.Tokenizers;

/// <summary>A candidate merge of two adjacent symbols, ordered by <see cref="Key"/> (smallest first).</summary>
internal struct Bigram
{
    public long Key;
    public int Left;
    public int Right;
    public int A;      // encoder-specific payload (SPM: combined length; BPE: left piece)
    public int B;      // BPE: right piece
    public int C;      // BPE: merged piece
}

/// <summary>
/// Binary min-heap of <see cref="Bigram"/>s keyed by one long, reused across words. Merging a long word pushes
/// and pops tens of thousands of candidates; comparing a single long keeps that cheap (about 6× faster than
/// PriorityQueue with a tuple element and comparer).
/// </summary>
internal sealed class BigramQueue
{
    private Bigram[] _items = new Bigram[64];
    private int _count;

    public int Count => _count;

    public void Clear() => _count = 0;

    public void Push(in Bigram item)
    {
        if (_count == _items.Length)
            Array.Resize(ref _items, _items.Length * 2);
        Bigram[] items = _items;
        int i = _count++;
        long key = item.Key;
        while (i > 0)
        {
            int parent = (i - 1) >> 1;
            if (items[parent].Key <= key)
                break;
            items[i] = items[parent];
            i = parent;
        }
        items[i] = item;
    }

    public bool TryPop(out Bigram top)
    {
        if (_count == 0)
        {
            top = default;
            return false;
        }
        Bigram[] items = _items;
        top = items[0];
        Bigram last = items[--_count];
        int n = _count, i = 0;
        while (true)
        {
            int child = 2 * i + 1;
            if (child >= n)
                break;
            if (child + 1 < n && items[child + 1].Key < items[child].Key)
                child++;
            if (items[child].Key >= last.Key)
                break;
            items[i] = items[child];
            i = child;
        }
        if (n > 0)
            items[i] = last;
        return true;
    }
}
