using System.Runtime.CompilerServices;
using LlavaNative.Model.Generation;
using LlavaNative.Model.Llava;
using Microsoft.Extensions.AI;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace LlavaNative.Model.Chat;

/// <summary>Settings of a <see cref="LlavaChatClient"/>.</summary>
public sealed record LlavaChatClientOptions
{
    /// <summary>The session's settings (context size, image cache, preprocessing).</summary>
    public LlavaSessionOptions Session { get; init; } = new();

    /// <summary>A built-in template name or a template file; null: the checkpoint's own, else the family's built-in.</summary>
    public string? ChatTemplate { get; init; }

    /// <summary>Reported as the model id; null: the text model's file name.</summary>
    public string? ModelId { get; init; }
}

/// <summary>
/// <see cref="IChatClient"/> (Microsoft.Extensions.AI) over a <see cref="LlavaModel"/>: messages go through the
/// checkpoint's chat template; images arrive as <see cref="DataContent"/> (image/* bytes) or <see cref="UriContent"/>
/// with a file: URI. When a request's messages extend the previous request's conversation (its answer included,
/// as the caller adds it to the history), the KV cache is kept and only the new messages are evaluated
/// (<see cref="UsageDetails.CachedInputTokenCount"/> says how many positions were reused); otherwise (a regenerated
/// answer, an edited message, another conversation) the whole request is tokenized and the cache keeps the prefix it
/// shares with it, token for token, as llama.cpp's server does.
/// <para>
/// ChatOptions used: Temperature, TopP, TopK, Seed, MaxOutputTokens, StopSequences, Instructions (a system message);
/// tools are refused; other options are ignored. Without options, <see cref="SamplingOptions"/>' defaults apply.
/// One request at a time: a concurrent call waits until the running one has finished (its stream disposed).
/// </para>
/// </summary>
public sealed class LlavaChatClient : IChatClient
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly LlavaSession _session;
    private readonly string _modelId;
    private bool _disposed;

    public LlavaChatClient(LlavaModel model, LlavaChatClientOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        options ??= new LlavaChatClientOptions();
        Model = model;
        var template = model.ChooseChatTemplate(options.ChatTemplate)
            ?? throw new ArgumentException("a chat client needs a chat template ('none' is not one)", nameof(options));
        _session = model.CreateSession(options.Session);
        Conversation = new LlavaConversation(_session, template);
        _modelId = options.ModelId ?? Path.GetFileName(model.Decoder.SourcePath) ?? "llava";
        Metadata = new ChatClientMetadata("LlavaNative", null, _modelId);
    }

    public LlavaModel Model { get; }

    /// <summary>The conversation the cache holds (read it between requests, not during one).</summary>
    public LlavaConversation Conversation { get; }

    public ChatClientMetadata Metadata { get; }

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<AiChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
        => await GetStreamingResponseAsync(messages, options, cancellationToken).ToChatResponseAsync(cancellationToken).ConfigureAwait(false);

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<AiChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        ObjectDisposedException.ThrowIf(_disposed, this);
        var request = ToConversation(messages.ToList(), options);
        var generation = ToGenerationOptions(options);
        if (request.Count == 0 || request[^1].Role == "assistant")
            throw new ArgumentException("the last message must be a user (or system) message for the model to answer", nameof(messages));

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var known = Conversation.Messages;
            bool extends = known.Count > 0 && known.Count < request.Count && Enumerable.Range(0, known.Count).All(i => known[i].SameContent(request[i]));
            var appended = await Task.Run(() => extends ? Conversation.Append(request.Skip(known.Count).ToList()) : Conversation.Load(request),
                cancellationToken).ConfigureAwait(false);
            int inputPositions = _session.Position;

            string responseId = Guid.NewGuid().ToString("N");
            var created = DateTimeOffset.UtcNow;
            var stop = StopReason.None;
            int generated = 0;
            await foreach (var piece in Conversation.GenerateReplyAsync(generation, cancellationToken).ConfigureAwait(false))
            {
                if (piece.TokenId >= 0) generated++;
                if (piece.Stop != StopReason.None) stop = piece.Stop;
                if (piece.Text.Length == 0) continue;
                yield return new ChatResponseUpdate(ChatRole.Assistant, piece.Text)
                {
                    ResponseId = responseId, MessageId = responseId, ModelId = _modelId, CreatedAt = created,
                };
            }
            cancellationToken.ThrowIfCancellationRequested(); // the partial answer stays in the conversation
            int output = _session.LastGeneration?.GeneratedTokens ?? generated;
            var usage = new UsageDetails
            {
                InputTokenCount = inputPositions,
                CachedInputTokenCount = appended.ReusedPositions,
                OutputTokenCount = output,
                TotalTokenCount = inputPositions + output,
            };
            yield return new ChatResponseUpdate(ChatRole.Assistant, [new UsageContent(usage)])
            {
                ResponseId = responseId, MessageId = responseId, ModelId = _modelId, CreatedAt = created,
                FinishReason = stop is StopReason.EndOfGeneration or StopReason.StopString ? ChatFinishReason.Stop : ChatFinishReason.Length,
            };
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Metadata (provider "LlavaNative"), the <see cref="LlavaModel"/>, or this client.</summary>
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(ChatClientMetadata)) return Metadata;
        if (serviceType == typeof(LlavaModel)) return Model;
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    /// <summary>Microsoft.Extensions.AI messages → conversation messages: text parts joined, images decoded later.</summary>
    /// <exception cref="NotSupportedException">A role or content this engine cannot take (the message says which).</exception>
    internal static List<LlavaChatMessage> ToConversation(IReadOnlyList<AiChatMessage> messages, ChatOptions? options)
    {
        var result = new List<LlavaChatMessage>(messages.Count + 1);
        if (!string.IsNullOrEmpty(options?.Instructions)) result.Add(LlavaChatMessage.System(options.Instructions));
        for (int i = 0; i < messages.Count; i++)
        {
            var message = messages[i] ?? throw new ArgumentException($"message {i} is null", nameof(messages));
            string role = message.Role.Value.ToLowerInvariant();
            if (role is not ("system" or "user" or "assistant"))
                throw new NotSupportedException($"message {i}: role '{message.Role.Value}' is not supported (system, user and assistant are)");
            var text = new System.Text.StringBuilder();
            var images = new List<LlavaImage>();
            foreach (var content in message.Contents)
            {
                switch (content)
                {
                    case TextContent t:
                        text.Append(t.Text);
                        break;
                    case DataContent d when d.HasTopLevelMediaType("image"):
                        images.Add(LlavaImage.FromBytes(d.Data.ToArray(), d.Name ?? $"message {i} image {images.Count + 1} ({d.MediaType})"));
                        break;
                    case UriContent u when u.HasTopLevelMediaType("image") && u.Uri.IsFile:
                        images.Add(LlavaImage.FromFile(u.Uri.LocalPath));
                        break;
                    case UriContent u when u.HasTopLevelMediaType("image"):
                        throw new NotSupportedException($"message {i}: image URI '{u.Uri}' is not a file: URI; remote images are not fetched (pass the bytes as DataContent)");
                    case UsageContent:
                        break; // bookkeeping from an earlier response, nothing to render
                    case DataContent d:
                        throw new NotSupportedException($"message {i}: {d.MediaType} data is not supported (text, image/* DataContent and file: UriContent images are)");
                    case UriContent u:
                        throw new NotSupportedException($"message {i}: {u.MediaType} URI content is not supported (text, image/* DataContent and file: UriContent images are)");
                    default:
                        throw new NotSupportedException($"message {i}: {content.GetType().Name} is not supported (text, image/* DataContent and file: UriContent images are)");
                }
            }
            if (role == "system" && result.Count == 1 && i == 0 && result[0].Role == "system")
                result[0] = LlavaChatMessage.System(result[0].Text + "\n\n" + text); // Instructions, then the conversation's own system message
            else
                result.Add(new LlavaChatMessage(role, text.ToString(), images));
        }
        return result;
    }

    internal static GenerationOptions ToGenerationOptions(ChatOptions? options)
    {
        if (options is null) return new GenerationOptions();
        if (options.Tools is { Count: > 0 }) throw new NotSupportedException("tools are not supported by LlavaChatClient");
        var defaults = new SamplingOptions();
        var sampling = new SamplingOptions
        {
            Temperature = options.Temperature ?? defaults.Temperature,
            TopP = options.TopP ?? defaults.TopP,
            TopK = options.TopK ?? defaults.TopK,
            Seed = options.Seed is { } s ? unchecked((ulong)s) : null,
        };
        sampling.Validate();
        if (options.MaxOutputTokens is < 0) throw new ArgumentOutOfRangeException(nameof(options), options.MaxOutputTokens, "MaxOutputTokens must be ≥ 0");
        return new GenerationOptions
        {
            Sampling = sampling,
            MaxTokens = options.MaxOutputTokens ?? -1,
            StopStrings = options.StopSequences?.Where(s => !string.IsNullOrEmpty(s)).ToArray() ?? [],
        };
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _session.Dispose();
        _gate.Dispose();
    }
}
