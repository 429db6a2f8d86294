using LlavaNative.Model.Formats.HuggingFace;
using LlavaNative.Model.Tokenizers;

namespace LlavaNative.Model.Llava;

/// <summary>How a checkpoint expects an image's embedding rows to sit among the text tokens (llava-reference §3d).</summary>
public enum ImagePlacement
{
    /// <summary>
    /// GGUF / llama.cpp mtmd: no placeholder id exists; the image's N rows are inserted where the marker was, at N
    /// consecutive positions.
    /// </summary>
    Embeddings,

    /// <summary>
    /// llava-hf: the text holds <c>image_token_index</c> ids, N per image (one per image is expanded to N); the rows
    /// replace them one for one (transformers' <c>masked_scatter</c>).
    /// </summary>
    PlaceholderToken,

    /// <summary>
    /// LLaVA v1 / Chinese-LLaVA: <c>&lt;im_start&gt;</c> + N × <c>&lt;im_patch&gt;</c> + <c>&lt;im_end&gt;</c>; the rows replace the
    /// <c>&lt;im_patch&gt;</c> embeddings, the start and end tokens keep their learned rows.
    /// </summary>
    PatchTokens,
}

/// <summary>The image side of a checkpoint's prompt format: where images go and which ids stand for them.</summary>
public sealed record LlavaPromptFormat
{
    /// <summary>The text marker that stands for the next image in a prompt (and in every built-in chat template).</summary>
    public const string DefaultImageMarker = "<image>";

    public required ImagePlacement Placement { get; init; }

    /// <summary>Text that marks an image in prompt text.</summary>
    public string ImageMarker { get; init; } = DefaultImageMarker;

    /// <summary><see cref="ImagePlacement.PlaceholderToken"/>: HF <c>image_token_index</c>; otherwise −1.</summary>
    public int PlaceholderTokenId { get; init; } = -1;

    /// <summary><see cref="ImagePlacement.PatchTokens"/>: the ids of <c>&lt;im_patch&gt;</c>, <c>&lt;im_start&gt;</c>, <c>&lt;im_end&gt;</c>; otherwise −1.</summary>
    public int PatchTokenId { get; init; } = -1;
    public int StartTokenId { get; init; } = -1;
    public int EndTokenId { get; init; } = -1;

    public static LlavaPromptFormat Embeddings { get; } = new() { Placement = ImagePlacement.Embeddings };

    public static LlavaPromptFormat Placeholder(int imageTokenIndex)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(imageTokenIndex);
        return new() { Placement = ImagePlacement.PlaceholderToken, PlaceholderTokenId = imageTokenIndex };
    }

    public static LlavaPromptFormat PatchTokens(int patch, int start, int end)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(patch);
        ArgumentOutOfRangeException.ThrowIfNegative(start);
        ArgumentOutOfRangeException.ThrowIfNegative(end);
        return new() { Placement = ImagePlacement.PatchTokens, PatchTokenId = patch, StartTokenId = start, EndTokenId = end };
    }

    /// <summary>
    /// The format a checkpoint implies: a vocabulary with <c>&lt;im_patch&gt;</c>, <c>&lt;im_start&gt;</c> and <c>&lt;im_end&gt;</c>
    /// is LLaVA v1 style; a llava-hf config.json (<paramref name="huggingFace"/> with <c>model_type: llava</c>) uses its
    /// <c>image_token_index</c>; anything else (a GGUF text model) takes embedding rows at the marker.
    /// </summary>
    public static LlavaPromptFormat Detect(VocabularyData? vocabulary, HfModelConfig? huggingFace)
    {
        if (vocabulary is not null)
        {
            int patch = Array.IndexOf(vocabulary.Tokens, "<im_patch>");
            int start = Array.IndexOf(vocabulary.Tokens, "<im_start>");
            int end = Array.IndexOf(vocabulary.Tokens, "<im_end>");
            if (patch >= 0 && start >= 0 && end >= 0) return PatchTokens(patch, start, end);
        }
        if (huggingFace?.Llava is { } llava) return Placeholder(llava.ImageTokenIndex);
        return Embeddings;
    }

    public override string ToString() => Placement switch
    {
        ImagePlacement.PlaceholderToken => $"placeholder id {PlaceholderTokenId} per image row",
        ImagePlacement.PatchTokens => $"<im_start> ({StartTokenId}) + rows in place of <im_patch> ({PatchTokenId}) + <im_end> ({EndTokenId})",
        _ => "embedding rows at the marker",
    };
}
