using LlavaNative.Model.Chat;
using LlavaNative.Model.Generation;
using LlavaNative.Model.Llava;
using LlavaNative.TestSupport.Llava;
using Microsoft.Extensions.AI;
using Xunit;

namespace LlavaNative.Reference.Tests.Chat;

/// <summary>
/// The README's library sample, compiled and run on a tiny model so it cannot rot. The two methods below are the
/// sample's text (only `Console.Out` became a parameter); keep the README in step with them.
/// </summary>
public sealed class ReadmeSampleTests
{
    // ---- README sample: LlavaSession -------------------------------------------------------------------------
    internal static async Task SessionSample(string modelPath, string mmprojPath, string imagePath, TextWriter console)
    {
        using var model = LlavaModel.Load(modelPath, mmprojPath);
        using var session = model.CreateSession(new LlavaSessionOptions { ContextSize = 2048 });

        // The checkpoint's chat template places the image; the session encodes it and evaluates the prompt.
        string prompt = model.RenderUserPrompt(model.ChooseChatTemplate(), "What is in the picture?", imageCount: 1);
        session.AppendPrompt(prompt, [LlavaImage.FromFile(imagePath)]);

        var options = new GenerationOptions { MaxTokens = 64, Sampling = SamplingOptions.Greedy };
        await foreach (GeneratedPiece piece in session.GenerateAsync(options))
            console.Write(piece.Text);
        console.WriteLine();
    }

    // ---- README sample: IChatClient (Microsoft.Extensions.AI) --------------------------------------------------
    internal static async Task ChatClientSample(string modelPath, string mmprojPath, string imagePath, TextWriter console)
    {
        using var model = LlavaModel.Load(modelPath, mmprojPath);
        using IChatClient client = new LlavaChatClient(model);

        List<ChatMessage> history =
        [
            new(ChatRole.User, [new TextContent("What is in the picture?"), new DataContent(File.ReadAllBytes(imagePath), "image/png")]),
        ];
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 64 };
        var updates = new List<ChatResponseUpdate>();
        await foreach (ChatResponseUpdate update in client.GetStreamingResponseAsync(history, options))
        {
            console.Write(update.Text);
            updates.Add(update);
        }
        console.WriteLine();

        // Keep the answer in the history: the next request reuses the KV cache for everything before the new message.
        history.AddMessages(updates);
        history.Add(new ChatMessage(ChatRole.User, "Describe the colours."));
        ChatResponse response = await client.GetResponseAsync(history, options);
        console.WriteLine(response.Text);
    }

    [Fact]
    public async Task BothSamplesRun_AndAnswerTheSameOnTheSameGreedyPrompt()
    {
        var (text, mmproj) = OnePassChat.Pair;
        string image = LlavaFixtures.RandomPngFile(44);
        var sessionOut = new StringWriter();
        await SessionSample(text, mmproj, image, sessionOut);
        var clientOut = new StringWriter();
        await ChatClientSample(text, mmproj, image, clientOut);

        string[] sessionLines = sessionOut.ToString().Split('\n');
        string firstAnswer = sessionLines[0].TrimStart();
        Assert.True(firstAnswer.Length > 0);
        // The chat client leaves out the answer's leading space; otherwise the same greedy text.
        Assert.StartsWith(firstAnswer + "\n", clientOut.ToString());
        Assert.True(clientOut.ToString().Length > firstAnswer.Length + 2, "the second answer is missing");
    }
}
