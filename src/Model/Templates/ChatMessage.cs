namespace LlavaNative.Model.Templates;

/// <summary>
/// One part of a message's content as llava-hf templates expect it: <c>{"type": "image"}</c> or
/// <c>{"type": "text", "text": "…"}</c>.
/// </summary>
public sealed record ChatContentPart(string Type, string? Text = null)
{
    public static ChatContentPart Image { get; } = new("image");

    public static ChatContentPart FromText(string text) => new("text", text);

    public bool IsImage => Type == "image";

    internal TemplateValue ToTemplateValue()
    {
        var entries = new List<KeyValuePair<string, TemplateValue>> { new("type", new StringValue(Type)) };
        if (Text is not null) entries.Add(new("text", new StringValue(Text)));
        return new DictValue(entries);
    }
}

/// <summary>
/// A chat message: a role and either plain text content (<c>"content": "…"</c>) or a list of parts
/// (<c>"content": [{"type": "image"}, {"type": "text", "text": "…"}]</c>), plus any other keys a template reads
/// (<c>tool_calls</c>, <c>name</c>, …) in <see cref="Extra"/>.
/// </summary>
public sealed class ChatMessage
{
    private ChatMessage(string role, string? text, IReadOnlyList<ChatContentPart>? parts, IReadOnlyDictionary<string, object?>? extra)
    {
        ArgumentException.ThrowIfNullOrEmpty(role);
        Role = role;
        Text = text;
        Parts = parts;
        Extra = extra ?? new Dictionary<string, object?>();
    }

    public string Role { get; }

    /// <summary>Content as a plain string, or null when the content is <see cref="Parts"/>.</summary>
    public string? Text { get; }

    /// <summary>Content as typed parts, or null when the content is <see cref="Text"/>.</summary>
    public IReadOnlyList<ChatContentPart>? Parts { get; }

    /// <summary>Further keys of the message dict, converted by <see cref="TemplateValue.From(object?)"/>.</summary>
    public IReadOnlyDictionary<string, object?> Extra { get; }

    public int ImageCount => Parts?.Count(p => p.IsImage) ?? 0;

    public static ChatMessage FromText(string role, string text, IReadOnlyDictionary<string, object?>? extra = null) =>
        new(role, text ?? throw new ArgumentNullException(nameof(text)), null, extra);

    public static ChatMessage FromParts(string role, IReadOnlyList<ChatContentPart> parts, IReadOnlyDictionary<string, object?>? extra = null) =>
        new(role, null, parts ?? throw new ArgumentNullException(nameof(parts)), extra);

    /// <summary>A user turn with <paramref name="images"/> image parts first, then the text, as llava-hf processors build it.</summary>
    public static ChatMessage User(string text, int images = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(images);
        var parts = new List<ChatContentPart>();
        for (int i = 0; i < images; i++) parts.Add(ChatContentPart.Image);
        parts.Add(ChatContentPart.FromText(text));
        return FromParts("user", parts);
    }

    public static ChatMessage Assistant(string text) => FromParts("assistant", [ChatContentPart.FromText(text)]);

    public static ChatMessage System(string text) => FromParts("system", [ChatContentPart.FromText(text)]);

    /// <summary>The same message with its content as one text part (for templates that only read typed parts).</summary>
    public ChatMessage WithTextAsPart() => Text is null ? this : new ChatMessage(Role, null, [ChatContentPart.FromText(Text)], Extra);

    /// <summary>
    /// The same message with its parts flattened into a string (for templates that only read string content):
    /// each image becomes <paramref name="imageMarker"/> followed by a newline, text parts are appended as they are.
    /// </summary>
    public ChatMessage WithPartsAsText(string imageMarker) => Parts is null ? this
        : new ChatMessage(Role, string.Concat(Parts.Select(p => p.IsImage ? imageMarker + "\n" : p.Text ?? "")), null, Extra);

    internal TemplateValue ToTemplateValue()
    {
        var entries = new List<KeyValuePair<string, TemplateValue>>
        {
            new("role", new StringValue(Role)),
            new("content", Text is not null ? new StringValue(Text) : new ListValue(Parts!.Select(p => p.ToTemplateValue()).ToList())),
        };
        foreach (var (k, v) in Extra)
        {
            if (k is "role" or "content") throw new ArgumentException($"ChatMessage.Extra cannot redefine '{k}'");
            entries.Add(new(k, TemplateValue.From(v)));
        }
        return new DictValue(entries);
    }
}
