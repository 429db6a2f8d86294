using LlavaNative.Model.Chat;
using LlavaNative.Model.Llava;
using LlavaNative.TestSupport.Llava;
using Microsoft.Extensions.AI;
using Xunit;

namespace LlavaNative.Reference.Tests.Chat;

/// <summary>LlavaChatClient (IChatClient) against LlavaSession and the one-pass conversation.</summary>
public sealed class LlavaChatClientTests
{
    private static readonly ChatOptions Greedy6 = new() { Temperature = 0, MaxOutputTokens = 6 };

    private static ChatMessage UserWithImage(string text, byte[] png) =>
        new(ChatRole.User, [new TextContent(text), new DataContent(png, "image/png")]);

    private static async Task<(string Text, List<ChatResponseUpdate> Updates)> Stream(IChatClient client, IEnumerable<ChatMessage> messages, ChatOptions options,
        CancellationToken cancellation = default)
    {
        var updates = new List<ChatResponseUpdate>();
        await foreach (var update in client.GetStreamingResponseAsync(messages, options, cancellation)) updates.Add(update);
        return (string.Concat(updates.Select(u => u.Text)), updates);
    }

    [Fact]
    public async Task GreedyStream_EqualsSessionGeneration_AndTheNextRequestReusesTheCache()
    {
        var (text, mmproj) = OnePassChat.Pair;
        using var model = LlavaModel.LoadGguf(text, mmproj);
        string imagePath = LlavaFixtures.RandomPngFile(41);
        byte[] png = File.ReadAllBytes(imagePath);
        using var client = new LlavaChatClient(model, new LlavaChatClientOptions { Session = new LlavaSessionOptions { ContextSize = 512 } });

        // Turn 1: the same as `llava run` does with AppendImage-equivalent composition of the same file.
        var history = new List<ChatMessage> { UserWithImage(OnePassChat.FirstQuestion, png) };
        var (first, updates) = await Stream(client, history, Greedy6);
        using (var session = model.CreateSession(new LlavaSessionOptions { ContextSize = 512 }))
        {
            session.AppendPrompt(model.RenderUserPrompt(model.ChooseChatTemplate(), OnePassChat.FirstQuestion, 1), [LlavaImage.FromFile(imagePath)]);
            string expected = string.Concat(session.Generate(OnePassChat.Greedy(6)).Select(p => p.Text)).TrimStart();
            Assert.Equal(expected, first);
            var usage = updates.SelectMany(u => u.Contents).OfType<UsageContent>().Single().Details;
            Assert.Equal(6, usage.OutputTokenCount);
            Assert.Equal(session.Position - 6, usage.InputTokenCount);
            Assert.Equal(0, usage.CachedInputTokenCount);
        }
        Assert.Equal(ChatFinishReason.Length, updates[^1].FinishReason);
        Assert.All(updates, u => Assert.Equal(ChatRole.Assistant, u.Role));

        // Turn 2 extends the conversation (the answer as the caller keeps it): the cache is reused, the image is not
        // encoded again, and the answer is the one-pass evaluation's.
        int positions = client.Conversation.Session.Position;
        history.Add(new ChatMessage(ChatRole.Assistant, first));
        history.Add(new ChatMessage(ChatRole.User, OnePassChat.SecondQuestion));
        var response = await client.GetResponseAsync(history, Greedy6);
        var reference = OnePassChat.Compute(model, model.ChooseChatTemplate()!, LlavaImage.FromFile(imagePath), answerTokens: 6);
        Assert.Equal(reference.FirstAnswer, first);
        Assert.Equal(reference.SecondAnswer, response.Text);
        Assert.Equal(positions, response.Usage!.CachedInputTokenCount);
        Assert.Equal(1, client.Conversation.Session.Stats.ImagesEncoded);
        Assert.Equal(reference.PromptHistory, client.Conversation.Session.History[..reference.PromptHistory.Length].ToArray());

        // A request that does not extend the conversation (the first question again: regenerate) keeps the prefix the
        // cache shares with it — the whole prompt but its last position — and answers as the first time.
        var fresh = await client.GetResponseAsync([UserWithImage(OnePassChat.FirstQuestion, png)], Greedy6);
        Assert.Equal(first, fresh.Text);
        Assert.Equal(fresh.Usage!.InputTokenCount - 1, fresh.Usage!.CachedInputTokenCount);
        Assert.Equal(1, client.Conversation.Session.Stats.ImagesEncoded);
    }

    [Fact]
    public async Task StopSequences_EndTheAnswerWithFinishReasonStop_AndASeedRepeatsASample()
    {
        var (text, mmproj) = OnePassChat.Pair;
        using var model = LlavaModel.LoadGguf(text, mmproj);
        using var client = new LlavaChatClient(model, new LlavaChatClientOptions { Session = new LlavaSessionOptions { ContextSize = 256 } });
        ChatMessage[] question = [new(ChatRole.User, "Say something.")];
        var whole = await client.GetResponseAsync(question, new ChatOptions { Temperature = 0, MaxOutputTokens = 12 });
        string answer = whole.Text;
        Assert.True(answer.Length >= 4, $"answer '{answer}' too short to cut");
        string stop = answer.Substring(answer.Length / 2, 2);
        var cut = await client.GetResponseAsync(question, new ChatOptions { Temperature = 0, MaxOutputTokens = 12, StopSequences = [stop] });
        Assert.Equal(answer[..answer.IndexOf(stop, StringComparison.Ordinal)], cut.Text);
        Assert.Equal(ChatFinishReason.Stop, cut.FinishReason);

        var sampled = new ChatOptions { Temperature = 1.5f, TopK = 0, TopP = 1, Seed = 7, MaxOutputTokens = 8 };
        var a = await client.GetResponseAsync(question, sampled);
        var b = await client.GetResponseAsync(question, sampled);
        Assert.Equal(a.Text, b.Text);
        Assert.Equal(ChatFinishReason.Length, a.FinishReason);
    }

    [Fact]
    public async Task FileUri_EqualsDataContent_AndMetadataNamesTheModel()
    {
        var (text, mmproj) = OnePassChat.Pair;
        using var model = LlavaModel.LoadGguf(text, mmproj);
        string imagePath = LlavaFixtures.RandomPngFile(43);
        using var client = new LlavaChatClient(model, new LlavaChatClientOptions { Session = new LlavaSessionOptions { ContextSize = 256 } });
        var (fromBytes, _) = await Stream(client, [UserWithImage("Describe it.", File.ReadAllBytes(imagePath))], Greedy6);
        var (fromFile, _) = await Stream(client, [new ChatMessage(ChatRole.User, [new TextContent("Describe it."), new UriContent(new Uri(imagePath), "image/png")])], Greedy6);
        Assert.Equal(fromBytes, fromFile);
        Assert.True(fromBytes.Length > 0);

        var metadata = client.GetService<ChatClientMetadata>()!;
        Assert.Equal("LlavaNative", metadata.ProviderName);
        Assert.Equal(Path.GetFileName(text), metadata.DefaultModelId);
        Assert.Same(model, client.GetService<LlavaModel>());
    }

    [Fact]
    public async Task Cancellation_StopsTheStream_AndUnsupportedContentIsRefused()
    {
        var (text, mmproj) = OnePassChat.Pair;
        using var model = LlavaModel.LoadGguf(text, mmproj);
        using var client = new LlavaChatClient(model, new LlavaChatClientOptions { Session = new LlavaSessionOptions { ContextSize = 256 } });
        using var cancel = new CancellationTokenSource();
        int received = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var update in client.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, "Tell me a story.")],
                               new ChatOptions { Temperature = 0, MaxOutputTokens = 150 }, cancel.Token))
            {
                received++;
                cancel.Cancel();
            }
        });
        Assert.True(received is >= 1 and < 150);
        var last = client.Conversation.Messages[^1];
        Assert.Equal("assistant", last.Role);
        Assert.True(last.IsIncomplete);
        Assert.True(client.Conversation.Session.LastGeneration!.GeneratedTokens < 150);

        var audio = new ChatMessage(ChatRole.User, [new TextContent("Listen."), new DataContent(new byte[] { 1, 2, 3 }, "audio/wav")]);
        var e = await Assert.ThrowsAsync<NotSupportedException>(() => client.GetResponseAsync([audio]));
        Assert.Contains("audio/wav", e.Message);
        var remote = new ChatMessage(ChatRole.User, [new UriContent(new Uri("https://example.com/cat.png"), "image/png")]);
        e = await Assert.ThrowsAsync<NotSupportedException>(() => client.GetResponseAsync([remote]));
        Assert.Contains("https://example.com/cat.png", e.Message);
        var tool = new ChatMessage(ChatRole.Tool, "42");
        e = await Assert.ThrowsAsync<NotSupportedException>(() => client.GetResponseAsync([tool]));
        Assert.Contains("tool", e.Message);
    }
}
