namespace LlavaNative.Model.Llava;

/// <summary>One piece of a composed prompt: token ids, or rows of one image's embeddings.</summary>
public abstract record LlavaPromptChunk;

/// <summary>Token ids, evaluated through the embedding table.</summary>
public sealed record TokenChunk(int[] Ids) : LlavaPromptChunk;

/// <summary>
/// Rows <see cref="FirstRow"/> … FirstRow + RowCount − 1 of <see cref="Image"/>'s embeddings [ImageTokenCount, dim]
/// at consecutive positions (RowCount −1: every row from FirstRow on).
/// </summary>
public sealed record ImageChunk(LlavaImage Image, int FirstRow = 0, int RowCount = -1) : LlavaPromptChunk
{
    public int Rows(int imageTokenCount) => RowCount < 0 ? imageTokenCount - FirstRow : RowCount;
}

/// <summary>A prompt resolved into chunks, ready for <see cref="LlavaSession.Append(LlavaPrompt, Span{float})"/>.</summary>
public sealed class LlavaPrompt
{
    public LlavaPrompt(IReadOnlyList<LlavaPromptChunk> chunks)
    {
        ArgumentNullException.ThrowIfNull(chunks);
        foreach (var c in chunks) ArgumentNullException.ThrowIfNull(c, nameof(chunks));
        Chunks = chunks;
    }

    public IReadOnlyList<LlavaPromptChunk> Chunks { get; }

    /// <summary>Distinct images the prompt references (by reference).</summary>
    public IEnumerable<LlavaImage> Images => Chunks.OfType<ImageChunk>().Select(c => c.Image).Distinct();

    public int TextTokenCount => Chunks.OfType<TokenChunk>().Sum(c => c.Ids.Length);

    /// <summary>Positions the prompt occupies when each image has <paramref name="imageTokenCount"/> rows.</summary>
    public int PositionCount(int imageTokenCount) => TextTokenCount + ImageRowCount(imageTokenCount);

    public int ImageRowCount(int imageTokenCount) => Chunks.OfType<ImageChunk>().Sum(c => c.Rows(imageTokenCount));

    /// <summary>The prompt without its first <paramref name="count"/> positions (a chunk cut in the middle keeps its tail).</summary>
    public LlavaPrompt SkipPositions(int count, int imageTokenCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (count == 0) return this;
        var rest = new List<LlavaPromptChunk>();
        int skip = count;
        foreach (var chunk in Chunks)
        {
            int length = chunk switch { TokenChunk t => t.Ids.Length, ImageChunk ic => ic.Rows(imageTokenCount), _ => 0 };
            if (skip >= length) { skip -= length; continue; }
            rest.Add(skip == 0 ? chunk : chunk switch
            {
                TokenChunk t => new TokenChunk(t.Ids[skip..]),
                ImageChunk ic => ic with { FirstRow = ic.FirstRow + skip, RowCount = length - skip },
                _ => chunk,
            });
            skip = 0;
        }
        if (skip > 0) throw new ArgumentOutOfRangeException(nameof(count), count, $"the prompt has only {PositionCount(imageTokenCount)} positions");
        return new LlavaPrompt(rest);
    }
}

/// <summary>Images and a prompt that do not fit together (marker count, placeholder count): the message says what was expected.</summary>
public sealed class LlavaPromptException(string message) : ArgumentException(message);

/// <summary>
/// A prompt with images needs more positions than the session has left. The message says how many are needed, how
/// they split between text and images, and how many fit.
/// </summary>
public sealed class LlavaContextOverflowException(int needed, int free, int contextSize, int textTokens, int imageRows, int images)
    : InvalidOperationException(
        $"the prompt needs {needed} positions ({textTokens} text tokens + {imageRows} image positions for {images} image(s)) " +
        $"but only {free} of the {contextSize}-position context are free; raise the context size (-c) or use fewer images")
{
    public int Needed { get; } = needed;
    public int Free { get; } = free;
    public int ContextSize { get; } = contextSize;
}
