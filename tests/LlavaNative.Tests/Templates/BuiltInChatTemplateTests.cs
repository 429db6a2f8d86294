using LlavaNative.Model.Templates;
using Xunit;

namespace LlavaNative.Tests.Templates;

/// <summary>The built-in templates produce the prompts of llava-reference.md §3d (agreement with the references is in Reference.Tests).</summary>
public sealed class BuiltInChatTemplateTests
{
    private static readonly ChatTemplateOptions Generate = new() { AddGenerationPrompt = true };

    [Fact]
    public void Llava15SingleTurn() =>
        Assert.Equal("USER: <image>\nWhat is this? ASSISTANT:",
            ChatTemplate.BuiltIn("llava-1.5").Render([ChatMessage.User("What is this?", images: 1)], Generate));

    [Fact]
    public void Llava15MultiTurnHasNoSystemPromptAndNoEndOfSequence() =>
        Assert.Equal("USER: <image>\nQ1 ASSISTANT: A1 USER: Q2 ASSISTANT:",
            ChatTemplate.BuiltIn("llava-1.5").Render([ChatMessage.User("Q1", 1), ChatMessage.Assistant("A1"), ChatMessage.User("Q2")], Generate));

    [Fact]
    public void Llava15RendersImagesFirstAndSystemTextWithoutRole() =>
        Assert.Equal("Be brief. USER: <image>\n<image>\nLook: ASSISTANT:",
            ChatTemplate.BuiltIn("llava-1.5").Render(
                [ChatMessage.System("Be brief."), ChatMessage.FromParts("user", [ChatContentPart.FromText("Look:"), ChatContentPart.Image, ChatContentPart.Image])],
                Generate));

    [Fact]
    public void InterleaveImagesFirstWithoutNewlineBetween() =>
        Assert.Equal("<|im_start|>user\n<image><image>\nCompare these.<|im_end|>\n<|im_start|>assistant\n",
            ChatTemplate.BuiltIn("llava-interleave").Render([ChatMessage.User("Compare these.", 2)], Generate));

    [Fact]
    public void InterleaveAssistantHistoryHasDoubleNewline() =>
        Assert.Equal("<|im_start|>user\n<image>\nQ<|im_end|>\n<|im_start|>assistant\n\nAnswer<|im_end|>\n",
            ChatTemplate.BuiltIn("llava-interleave").Render([ChatMessage.User("Q", 1), ChatMessage.Assistant("Answer")]));

    [Fact]
    public void ChatmlIsTheInterleaveTemplate()
    {
        ChatTemplate chatml = ChatTemplate.BuiltIn("chatml");
        Assert.Equal("llava-interleave", chatml.Name);
        Assert.Equal(ChatTemplate.BuiltIn("llava-interleave").Source, chatml.Source);
    }

    [Fact]
    public void VicunaV1HasSystemPromptAndEndsAnswersWithEndOfSequence()
    {
        const string system = "A chat between a curious human and an artificial intelligence assistant. " +
                              "The assistant gives helpful, detailed, and polite answers to the human's questions.";
        ChatTemplate vicuna = ChatTemplate.BuiltIn("vicuna-v1");
        Assert.Equal(system + " USER: <image>\nWhat is this? ASSISTANT:", vicuna.Render([ChatMessage.User("What is this?", 1)], Generate));
        Assert.Equal(system + " USER: <image>\nQ1 ASSISTANT: A1</s>USER: Q2 ASSISTANT:",
            vicuna.Render([ChatMessage.User(" Q1 ", 1), ChatMessage.Assistant("A1"), ChatMessage.User("Q2")], Generate));
        Assert.Equal("Custom. USER: hi ASSISTANT:", vicuna.Render([ChatMessage.System("Custom."), ChatMessage.FromText("user", "hi")], Generate));
    }

    [Fact]
    public void Llama2PutsImageAfterQuestionInsideTheSystemTurn()
    {
        const string system = "You are a helpful language and vision assistant. You are able to understand the visual content " +
                              "that the user provides, and assist the user with a variety of tasks using natural language.";
        ChatTemplate llama2 = ChatTemplate.BuiltIn("llama-2");
        Assert.Equal($"[INST] <<SYS>>\n{system}\n<</SYS>>\n\nWhat is this?\n<image> [/INST] ",
            llama2.Render([ChatMessage.User("What is this?", 1)], Generate));
        Assert.Equal($"[INST] <<SYS>>\n{system}\n<</SYS>>\n\nQ1\n<image> [/INST] A1 </s><s>[INST] Q2 [/INST] ",
            llama2.Render([ChatMessage.User("Q1", 1), ChatMessage.Assistant("A1"), ChatMessage.User("Q2")]));
    }

    [Fact]
    public void Llama2RejectsRolesThatDoNotAlternate()
    {
        var e = Assert.Throws<TemplateException>(() =>
            ChatTemplate.BuiltIn("llama-2").Render([ChatMessage.User("a"), ChatMessage.User("b")]));
        Assert.True(e.RaisedByTemplate);
        Assert.Equal("Conversation roles must alternate user/assistant/user/assistant/...", e.Problem);
        Assert.Equal("llama-2", e.TemplateName);
        Assert.True(e.Line > 1);
    }

    [Fact]
    public void BuiltInsAcceptStringContentAndParts()
    {
        foreach (string name in BuiltInChatTemplates.Names)
        {
            ChatTemplate t = ChatTemplate.BuiltIn(name);
            Assert.Equal(ChatContentStyle.Either, t.ContentStyle);
            Assert.Equal(t.Render([ChatMessage.User("Hello")], Generate), t.Render([ChatMessage.FromText("user", "Hello")], Generate));
        }
    }

    [Fact]
    public void UnknownBuiltInListsTheKnownOnes()
    {
        var e = Assert.Throws<ArgumentException>(() => ChatTemplate.BuiltIn("alpaca"));
        Assert.Contains("llava-1.5, llava-interleave, chatml, vicuna-v1, llama-2", e.Message);
    }
}
