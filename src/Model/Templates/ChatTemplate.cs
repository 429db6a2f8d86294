using System.Text.Json;

namespace LlavaNative.Model.Templates;

/// <summary>What to render besides the messages.</summary>
public sealed class ChatTemplateOptions
{
    /// <summary>Append the opening of an assistant turn (<c>add_generation_prompt</c>; false by default, as in transformers).</summary>
    public bool AddGenerationPrompt { get; init; }

    /// <summary><c>bos_token</c> / <c>eos_token</c> as text (e.g. "&lt;s&gt;"); left undefined when null.</summary>
    public string? BosToken { get; init; }

    public string? EosToken { get; init; }

    /// <summary>Further variables (<c>tools</c>, <c>documents</c>, <c>enable_thinking</c>, …), converted by <see cref="TemplateValue.From(object?)"/>.</summary>
    public IReadOnlyDictionary<string, object?>? Variables { get; init; }

    /// <summary>
    /// When a template reads only string content and a message has parts, each image part becomes this marker
    /// followed by "\n" (see <see cref="ChatMessage.WithPartsAsText"/>).
    /// </summary>
    public string ImageMarker { get; init; } = "<image>";

    /// <summary>Local time for <c>strftime_now</c>; <see cref="DateTime.Now"/> when null.</summary>
    public Func<DateTime>? Clock { get; init; }
}

/// <summary>How a template wants message content: found by rendering a probe conversation both ways.</summary>
public enum ChatContentStyle
{
    /// <summary>Prints string content and parts alike (or the probe could not tell): messages are passed as given.</summary>
    Either,
    /// <summary>Prints <c>content</c> only when it is a string (most text-only templates).</summary>
    String,
    /// <summary>Prints content only when it is a list of typed parts (llava-hf templates).</summary>
    Parts,
}

/// <summary>
/// A chat template: renders a conversation into the prompt text the model was trained on. Built from a
/// checkpoint's <c>chat_template</c> (GGUF <c>tokenizer.chat_template</c>, chat_template.json,
/// tokenizer_config.json), one of <see cref="BuiltInChatTemplates"/>, or a template file.
/// </summary>
public sealed class ChatTemplate
{
    private const string ProbeText = "LlavaNativeProbe7f3a";
    private ChatContentStyle? _contentStyle;

    private ChatTemplate(string name, string source)
    {
        Name = name;
        Source = source;
        Template = JinjaTemplate.Parse(source, name);
    }

    public string Name { get; }

    /// <summary>The Jinja source text.</summary>
    public string Source { get; }

    public JinjaTemplate Template { get; }

    /// <exception cref="TemplateException">The template has a syntax error.</exception>
    public static ChatTemplate FromSource(string source, string name = "chat_template") => new(name, source);

    /// <summary>A built-in template by name: llava-1.5, llava-interleave (alias chatml), vicuna-v1, llama-2.</summary>
    public static ChatTemplate BuiltIn(string name)
    {
        if (!BuiltInChatTemplates.TryGetSource(name, out string canonical, out string source))
            throw new ArgumentException($"no built-in chat template '{name}'; built-in: {string.Join(", ", BuiltInChatTemplates.Names)}", nameof(name));
        return new ChatTemplate(canonical, source);
    }

    /// <summary>
    /// For <c>--chat-template NAME|FILE</c>: a built-in name, else a file holding either the Jinja text or JSON with
    /// a "chat_template" string (chat_template.json, tokenizer_config.json).
    /// </summary>
    public static ChatTemplate Resolve(string nameOrPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(nameOrPath);
        if (BuiltInChatTemplates.TryGetSource(nameOrPath, out _, out _)) return BuiltIn(nameOrPath);
        if (!File.Exists(nameOrPath))
            throw new FileNotFoundException(
                $"chat template '{nameOrPath}' is neither a built-in ({string.Join(", ", BuiltInChatTemplates.Names)}) nor an existing file", nameOrPath);
        string text = File.ReadAllText(nameOrPath);
        if (nameOrPath.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
        {
            try
            {
                using JsonDocument json = JsonDocument.Parse(text);
                if (json.RootElement.ValueKind == JsonValueKind.Object
                    && json.RootElement.TryGetProperty("chat_template", out JsonElement template)
                    && template.ValueKind == JsonValueKind.String)
                    return FromSource(template.GetString()!, nameOrPath);
            }
            catch (JsonException e)
            {
                throw new FormatException($"{nameOrPath}: not valid JSON ({e.Message})", e);
            }
            throw new FormatException($"{nameOrPath}: no string \"chat_template\" in this JSON file " +
                                      "(a list of named templates is not supported; pass the template text)");
        }
        return FromSource(text, nameOrPath);
    }

    /// <summary>
    /// The template to use for a checkpoint: <paramref name="requested"/> (a built-in name or file, from
    /// <c>--chat-template</c>) if given, else the checkpoint's own <paramref name="embedded"/> text (GGUF
    /// <c>tokenizer.chat_template</c>, <see cref="Tokenizers.VocabularyData.ChatTemplate"/>), else the built-in
    /// <paramref name="fallbackBuiltIn"/> for the model family.
    /// </summary>
    public static ChatTemplate Choose(string? requested, string? embedded, string fallbackBuiltIn)
    {
        if (!string.IsNullOrEmpty(requested)) return Resolve(requested);
        if (!string.IsNullOrWhiteSpace(embedded)) return FromSource(embedded, "tokenizer.chat_template");
        return BuiltIn(fallbackBuiltIn);
    }

    /// <summary>Whether the template prints string content, typed parts, or both (probed once, then cached).</summary>
    public ChatContentStyle ContentStyle => _contentStyle ??= ProbeContentStyle();

    /// <summary>
    /// Renders <paramref name="messages"/>. Content is adapted to <see cref="ContentStyle"/>: string content becomes one
    /// text part for a parts-only template, parts are flattened for a string-only template (images as
    /// <see cref="ChatTemplateOptions.ImageMarker"/> + "\n").
    /// </summary>
    /// <exception cref="TemplateException">Rendering failed or the template raised an exception (e.g. roles not alternating).</exception>
    public string Render(IReadOnlyList<ChatMessage> messages, ChatTemplateOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(messages);
        options ??= new ChatTemplateOptions();
        ChatContentStyle style = ContentStyle;
        var adapted = messages.Select(m => style switch
        {
            ChatContentStyle.Parts => m.WithTextAsPart(),
            ChatContentStyle.String => m.WithPartsAsText(options.ImageMarker),
            _ => m,
        }).ToList();
        return RenderExactly(adapted, options);
    }

    /// <summary>Renders the messages exactly as given, without adapting their content.</summary>
    public string RenderExactly(IReadOnlyList<ChatMessage> messages, ChatTemplateOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(messages);
        options ??= new ChatTemplateOptions();
        var variables = new Dictionary<string, object?>(StringComparer.Ordinal);
        if (options.Variables is not null)
            foreach (var (k, v) in options.Variables) variables[k] = v;
        variables["messages"] = new ListValue(messages.Select(m => m.ToTemplateValue()).ToList());
        variables["add_generation_prompt"] = options.AddGenerationPrompt;
        if (options.BosToken is not null) variables["bos_token"] = options.BosToken;
        if (options.EosToken is not null) variables["eos_token"] = options.EosToken;
        return Template.Render(variables, options.Clock);
    }

    private ChatContentStyle ProbeContentStyle()
    {
        // A string-only template given parts prints the list's repr, "[{'type': 'text', 'text': '…'}]": that is
        // not reading parts, so the probe must appear without the repr around it.
        bool PrintsProbe(ChatMessage message)
        {
            try
            {
                string text = RenderExactly([message], new ChatTemplateOptions { BosToken = "", EosToken = "" });
                return text.Contains(ProbeText, StringComparison.Ordinal) && !text.Contains("'type'", StringComparison.Ordinal);
            }
            catch (TemplateException)
            {
                return false;
            }
        }

        bool strings = PrintsProbe(ChatMessage.FromText("user", ProbeText));
        bool parts = PrintsProbe(ChatMessage.FromParts("user", [ChatContentPart.FromText(ProbeText)]));
        return (strings, parts) switch
        {
            (true, false) => ChatContentStyle.String,
            (false, true) => ChatContentStyle.Parts,
            _ => ChatContentStyle.Either,
        };
    }
}
