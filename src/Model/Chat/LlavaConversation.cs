using System.Runtime.CompilerServices;
using System.Text;
using LlavaNative.Model.Generation;
using LlavaNative.Model.Llava;
using LlavaNative.Model.Templates;

namespace LlavaNative.Model.Chat;

/// <summary>One message of a <see cref="LlavaConversation"/>: a role ("system", "user", "assistant"), text and images.</summary>
public sealed class LlavaChatMessage
{
    public LlavaChatMessage(string role, string text, IReadOnlyList<LlavaImage>? images = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(role);
        ArgumentNullException.ThrowIfNull(text);
        Role = role;
        Text = text;
        Images = images?.ToArray() ?? [];
    }

    public string Role { get; }
    public string Text { get; }

    /// <summary>
    /// Images of the message. Unless <see cref="Text"/> has image markers of its own (which then receive the images in
    /// order), the template places them, first for the built-in templates.
    /// </summary>
    public IReadOnlyList<LlavaImage> Images { get; }

    /// <summary>For a generated answer: why it ended (null for messages given to the conversation).</summary>
    public StopReason? Stop { get; init; }

    /// <summary>A generated answer cut short: cancelled, at the token limit, or at a full context.</summary>
    public bool IsIncomplete => Stop is StopReason.Cancelled or StopReason.TokenLimit or StopReason.ContextFull;

    public static LlavaChatMessage System(string text) => new("system", text);
    public static LlavaChatMessage User(string text, params IReadOnlyList<LlavaImage> images) => new("user", text, images);
    public static LlavaChatMessage Assistant(string text) => new("assistant", text);

    /// <summary>Same role, text and image contents (by <see cref="LlavaImage.ContentHash"/>).</summary>
    public bool SameContent(LlavaChatMessage other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (Role != other.Role || Text != other.Text || Images.Count != other.Images.Count) return false;
        for (int i = 0; i < Images.Count; i++)
            if (!ReferenceEquals(Images[i], other.Images[i]) && Images[i].ContentHash != other.Images[i].ContentHash) return false;
        return true;
    }

    public override string ToString() => $"{Role}: {Text}" + (Images.Count > 0 ? $" (+{Images.Count} image(s))" : "");
}

/// <summary>How <see cref="LlavaConversation.Append"/> brought the KV cache up to date.</summary>
public enum LlavaCacheUpdate
{
    /// <summary>The cache was empty: the whole rendered conversation was evaluated.</summary>
    Full,

    /// <summary>
    /// The new rendering starts with the text in the cache; only the rest was evaluated (the usual case: earlier turns
    /// are never recomputed).
    /// </summary>
    Suffix,

    /// <summary>
    /// The template renders the last answer differently from how it was generated (e.g. llava-interleave writes "\n"
    /// before assistant text): the cache keeps the answer as the model produced it and receives what the template
    /// writes after the answer's text.
    /// </summary>
    AfterAnswer,

    /// <summary>
    /// Neither rule applies (the template changed text before the last answer, e.g. a date or a message count in the
    /// system prompt; a loaded or edited conversation; an answer cut at a stop string): the whole conversation was
    /// tokenized again and the cache cut back to the longest prefix it shares with it (same tokens, same image rows);
    /// the rest was evaluated. <see cref="LlavaAppendResult.ReusedPositions"/> says how much was kept.
    /// </summary>
    Reevaluated,
}

/// <summary>What one <see cref="LlavaConversation.Append"/> did: the rule, positions evaluated and positions kept from the cache.</summary>
public readonly record struct LlavaAppendResult(LlavaCacheUpdate Update, int EvaluatedPositions, int ReusedPositions);

/// <summary>
/// A chat on a <see cref="LlavaSession"/>: messages rendered through a <see cref="ChatTemplate"/>, evaluated
/// incrementally. Each <see cref="Append"/> renders the whole conversation and evaluates only what the cache lacks;
/// <see cref="GenerateReply"/> streams an answer whose tokens stay in the cache and which becomes an assistant message.
/// <para>
/// Cache rules (see <see cref="LlavaCacheUpdate"/>): the text in the cache is the rendering of the earlier turns with
/// the answers as generated. When the new rendering starts with it, the rest is appended (tokenized as a continuation:
/// <see cref="Tokenizer.EncodeContinuation"/>) — this covers the end-of-turn text a template adds after an answer (e.g.
/// "&lt;/s&gt;"), since the end-of-generation token itself is not kept. When the template writes the last answer
/// differently, what it writes after the answer is appended. Otherwise (and after an answer cut at a stop string, whose
/// tokens the rendering does not hold) the whole rendering is tokenized again and the cache keeps only the prefix it
/// shares with it, token for token (<see cref="LlavaSession.ReplaceWith"/>). An answer's leading whitespace (the space a
/// SentencePiece model puts before its first word) is not part of its text but stays in the cache. When the appended messages
/// end with an answer (a loaded conversation, a history given to <see cref="LlavaChatClient"/>), trailing white space
/// waits for the next turn, so that it is tokenized with the word that follows as in a one-pass tokenization.
/// </para>
/// Not thread-safe: one call at a time.
/// </summary>
public sealed class LlavaConversation
{
    private const string Sentinel = "\u0001LlavaNativeAnswer\u0001";
    private readonly List<LlavaChatMessage> _messages = [];
    private readonly string? _systemPrompt;
    private int _cachedMessages;                 // messages whose rendering is in the cache
    private readonly StringBuilder _cachedText = new(); // the text the cache holds (answers as generated)
    private bool _cachedTextExact = true;        // false after a stop string: its tokens are in the cache, not in the text
    private int _answerStart = -1;               // length of _cachedText before the last generated answer (−1: none)

    public LlavaConversation(LlavaSession session, ChatTemplate template, string? systemPrompt = null)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(template);
        Session = session;
        Template = template;
        _systemPrompt = systemPrompt;
        if (systemPrompt is not null) _messages.Add(LlavaChatMessage.System(systemPrompt));
    }

    public LlavaSession Session { get; }
    public LlavaModel Model => Session.Model;
    public ChatTemplate Template { get; }

    /// <summary>The messages so far (a system prompt first when one was given), answers included.</summary>
    public IReadOnlyList<LlavaChatMessage> Messages => _messages;

    /// <summary>The text the KV cache holds: the rendered conversation with the answers as generated.</summary>
    public string CachedText => _cachedText.ToString();

    /// <summary>The whole conversation as the template writes it (the opening of an answer when the last message is not one).</summary>
    public string Render() => Render(_messages, _messages.Count > 0 && _messages[^1].Role != "assistant");

    /// <summary>
    /// Adds messages and evaluates what the cache lacks, ending with the opening of the assistant turn unless the last
    /// message is an answer. On an error (a bad image, a full context) the messages are not added and the cache is
    /// unchanged (images are encoded and sizes checked before it is touched).
    /// </summary>
    /// <exception cref="LlavaContextOverflowException">The new part does not fit; <c>/reset</c> or a larger context helps.</exception>
    /// <exception cref="Imaging.ImageFormatException">An image cannot be decoded.</exception>
    /// <exception cref="LlavaPromptException">Image markers in the text and images do not pair up.</exception>
    public LlavaAppendResult Append(IReadOnlyList<LlavaChatMessage> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        if (messages.Count == 0) throw new ArgumentException("no messages to append", nameof(messages));
        var all = _messages.Concat(messages).ToList();
        bool generationPrompt = all[^1].Role != "assistant";
        string full = Render(all, generationPrompt);
        var newImages = messages.SelectMany(m => m.Images).ToList();
        string marker = Model.PromptFormat.ImageMarker;

        string? delta = null;
        var update = LlavaCacheUpdate.Full;
        if (_cachedMessages == _messages.Count && Session.Position > 0)
        {
            string cached = _cachedText.ToString();
            if (_cachedTextExact && full.StartsWith(cached, StringComparison.Ordinal))
            {
                delta = full[cached.Length..];
                update = LlavaCacheUpdate.Suffix;
            }
            else if (_cachedTextExact && _messages.Count > 0 && _messages[^1].Role == "assistant" && _answerStart >= 0)
            {
                // Render with the answer replaced by a sentinel: what follows it is what the template adds after the answer.
                var probe = all.ToList();
                int last = _messages.Count - 1;
                probe[last] = new LlavaChatMessage("assistant", Sentinel);
                string rendered = Render(probe, generationPrompt);
                int at = rendered.IndexOf(Sentinel, StringComparison.Ordinal);
                // Only the answer may differ: the text before it must still be what the cache holds before it.
                if (at >= 0 && rendered.IndexOf(Sentinel, at + 1, StringComparison.Ordinal) < 0
                    && rendered.AsSpan(0, at).StartsWith(cached.AsSpan(0, _answerStart), StringComparison.Ordinal))
                {
                    delta = rendered[(at + Sentinel.Length)..];
                    update = LlavaCacheUpdate.AfterAnswer;
                }
            }
            if (delta is not null && CountMarkers(delta, marker) != newImages.Count && CountMarkers(full, marker) == all.Sum(m => m.Images.Count))
                delta = null; // the template placed images outside the new messages' text: start over
            if (delta is null) update = LlavaCacheUpdate.Reevaluated;
        }
        else if (Session.Position > 0)
        {
            update = LlavaCacheUpdate.Reevaluated; // a loaded conversation, or one whose cached text is not known
        }

        // Without an answer opening to generate from, trailing white space stays out of the cache: a one-pass
        // tokenization joins it to the next word ("noise. USER" → "▁USER"), and the next turn's text starts with it.
        if (!generationPrompt)
        {
            if (delta is not null) delta = delta.TrimEnd();
            else full = full.TrimEnd();
        }

        int reused = update is LlavaCacheUpdate.Suffix or LlavaCacheUpdate.AfterAnswer ? Session.Position : 0;
        // The new text continues the cache's text unless the cache ends with a special token or an image row, after
        // which a one-pass tokenization also starts a new piece (SentencePiece: with its space prefix).
        int lastToken = Session.Position > 0 ? Session.History[^1] : -1;
        bool continuesText = lastToken >= 0 && Model.Tokenizer is { } tokenizer && !tokenizer.IsSpecial(lastToken);
        LlavaPrompt prompt = delta is not null
            ? Model.ComposeText(delta, newImages, addSpecial: false, continuesText)
            : Model.ComposeText(full, all.SelectMany(m => m.Images).ToList(), addSpecial: true);
        int positions = prompt.PositionCount(Model.ImageTokenCount);
        if (delta is null)
        {
            // The whole conversation: keep what the cache shares with it (checked and encoded before the cache changes).
            reused = Session.ReplaceWith(prompt);
            positions -= reused;
        }
        else
        {
            Session.Append(prompt);
        }

        if (delta is null)
        {
            _cachedText.Clear();
            _cachedTextExact = true;
        }
        _cachedText.Append(delta ?? full);
        _answerStart = -1;
        _messages.AddRange(messages);
        _cachedMessages = _messages.Count;
        return new LlavaAppendResult(update, positions, reused);
    }

    /// <summary>Adds a user message (see <see cref="Append"/>).</summary>
    public LlavaAppendResult AddUserMessage(string text, IReadOnlyList<LlavaImage>? images = null)
        => Append([new LlavaChatMessage("user", text, images)]);

    /// <summary>
    /// Streams the assistant's answer to the conversation so far (its leading whitespace left out), then adds it as an
    /// assistant message with <see cref="LlavaChatMessage.Stop"/> set — also when the caller stops early or cancels,
    /// so a partial answer stays in the conversation, marked incomplete.
    /// </summary>
    /// <exception cref="InvalidOperationException">No user message is waiting for an answer.</exception>
    public IEnumerable<GeneratedPiece> GenerateReply(GenerationOptions options, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (_messages.Count == 0 || _messages[^1].Role == "assistant" || _cachedMessages != _messages.Count)
            throw new InvalidOperationException("nothing to answer: append a user message first");
        return GenerateCore(Session.Generate(options, cancellation));
    }

    /// <summary><see cref="GenerateReply"/> as an async stream (each step on the thread pool).</summary>
    public async IAsyncEnumerable<GeneratedPiece> GenerateReplyAsync(GenerationOptions options, [EnumeratorCancellation] CancellationToken cancellation = default)
    {
        using var steps = GenerateReply(options, cancellation).GetEnumerator();
        while (await Task.Run(steps.MoveNext, CancellationToken.None).ConfigureAwait(false))
            yield return steps.Current;
    }

    private IEnumerable<GeneratedPiece> GenerateCore(IEnumerable<GeneratedPiece> pieces)
    {
        var raw = new StringBuilder();
        var stop = StopReason.Cancelled; // if the caller abandons the stream, the answer counts as cancelled
        bool started = false;
        try
        {
            foreach (var piece in pieces)
            {
                raw.Append(piece.Text);
                if (piece.Stop != StopReason.None) stop = piece.Stop;
                string text = piece.Text;
                if (!started)
                {
                    text = text.TrimStart();
                    started = text.Length > 0;
                }
                yield return piece with { Text = text };
            }
        }
        finally
        {
            string answer = raw.ToString();
            _answerStart = _cachedText.Length;
            _messages.Add(new LlavaChatMessage("assistant", answer.TrimStart()) { Stop = stop });
            _cachedMessages = _messages.Count;
            _cachedText.Append(answer);
            if (stop == StopReason.StopString) _cachedTextExact = false;
        }
    }

    /// <summary>Forgets the messages (the system prompt stays) and clears the cache; encoded images stay cached.</summary>
    public void Reset()
    {
        _messages.Clear();
        if (_systemPrompt is not null) _messages.Add(LlavaChatMessage.System(_systemPrompt));
        ClearCache();
    }

    /// <summary>
    /// Replaces the conversation with <paramref name="messages"/> (e.g. a saved one, or a history whose last answer is to
    /// be regenerated or whose last question was edited). The whole rendering is tokenized as one text; the cache keeps
    /// the prefix it shares with it (see <see cref="LlavaSession.ReplaceWith"/>) and evaluates the rest.
    /// </summary>
    public LlavaAppendResult Load(IReadOnlyList<LlavaChatMessage> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        if (messages.Count == 0) throw new ArgumentException("no messages to load", nameof(messages));
        var previous = _messages.ToList();
        int previousCached = _cachedMessages, previousAnswerStart = _answerStart;
        _messages.Clear();
        _cachedMessages = -1; // the cached text no longer describes a prefix of the messages: match on tokens instead
        _answerStart = -1;
        try
        {
            return Append(messages);
        }
        catch
        {
            // Nothing was evaluated (errors come before the cache changes): the old conversation stands.
            _messages.AddRange(previous);
            _cachedMessages = previousCached;
            _answerStart = previousAnswerStart;
            throw;
        }
    }

    private void ClearCache()
    {
        Session.Reset();
        _cachedMessages = 0;
        _cachedText.Clear();
        _cachedTextExact = true;
        _answerStart = -1;
    }

    private string Render(IReadOnlyList<LlavaChatMessage> messages, bool addGenerationPrompt)
    {
        string marker = Model.PromptFormat.ImageMarker;
        var rendered = messages.Select(m =>
        {
            if (m.Images.Count == 0 || m.Text.Contains(marker, StringComparison.Ordinal)) return Templates.ChatMessage.FromText(m.Role, m.Text);
            var parts = new List<ChatContentPart>();
            for (int i = 0; i < m.Images.Count; i++) parts.Add(ChatContentPart.Image);
            parts.Add(ChatContentPart.FromText(m.Text));
            return Templates.ChatMessage.FromParts(m.Role, parts);
        }).ToList();
        return Model.RenderChat(Template, rendered, addGenerationPrompt);
    }

    private static int CountMarkers(string text, string marker)
    {
        int count = 0;
        for (int at = text.IndexOf(marker, StringComparison.Ordinal); at >= 0; at = text.IndexOf(marker, at + marker.Length, StringComparison.Ordinal)) count++;
        return count;
    }
}
