namespace LlavaNative.Model.Tokenizers;

/// <summary>
/// Token text → id, as llama.cpp's <c>token_to_id</c>: every token of every type, the last id winning when a
/// text repeats. Lookups by span allocate nothing.
/// </summary>
internal sealed class TokenLookup
{
    private readonly Dictionary<string, int> _ids;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _spanIds;

    public TokenLookup(IReadOnlyList<string> texts)
    {
        _ids = new Dictionary<string, int>(texts.Count, StringComparer.Ordinal);
        for (int id = 0; id < texts.Count; id++)
            _ids[texts[id]] = id;
        _spanIds = _ids.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    public bool TryGetId(string text, out int id) => _ids.TryGetValue(text, out id);

    public bool TryGetId(ReadOnlySpan<char> text, out int id) => _spanIds.TryGetValue(text, out id);
}
