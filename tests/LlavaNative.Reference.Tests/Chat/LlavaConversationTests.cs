using LlavaNative.Model.Chat;
using LlavaNative.Model.Generation;
using LlavaNative.Model.Llava;
using LlavaNative.TestSupport.Llava;
using Xunit;
using Xunit.Abstractions;

namespace LlavaNative.Reference.Tests.Chat;

/// <summary>LlavaConversation's incremental cache against the one-pass evaluation of the whole rendered conversation.</summary>
public sealed class LlavaConversationTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("vicuna-v1")]  // the turn after an answer starts with "</s>" (the end-of-turn text the template adds)
    [InlineData("llava-1.5")]  // the turn after an answer starts with " USER:" (the space becomes the next word's '▁')
    public void TwoTurnsWithAnImage_EachTurn_MatchesTheOnePassEvaluation(string templateName)
    {
        var (text, mmproj) = OnePassChat.Pair;
        using var model = LlavaModel.LoadGguf(text, mmproj);
        var template = model.ChooseChatTemplate(templateName)!;
        var image = LlavaImage.FromBytes(LlavaFixtures.RandomPng(41), "a.png");
        var reference = OnePassChat.Compute(model, template, image, answerTokens: 6);

        using var session = model.CreateSession(new LlavaSessionOptions { ContextSize = 512 });
        var chat = new LlavaConversation(session, template);
        var first = chat.AddUserMessage(OnePassChat.FirstQuestion, [image]);
        Assert.Equal(LlavaCacheUpdate.Full, first.Update);
        OnePassChat.AssertClose(reference.FirstTurnLastLogits, session.Logits, "turn 1");
        int firstEnd = session.Position;
        chat.GenerateReply(OnePassChat.Greedy(6)).ToList();
        Assert.Equal(reference.FirstAnswerIds, session.History[firstEnd..].ToArray());
        Assert.Equal(reference.FirstAnswer, chat.Messages[^1].Text);
        Assert.Equal(StopReason.TokenLimit, chat.Messages[^1].Stop);
        int afterFirst = session.Position;

        var second = chat.AddUserMessage(OnePassChat.SecondQuestion);
        output.WriteLine($"{templateName}: turn 2 {second.Update}, {second.EvaluatedPositions} new positions, {second.ReusedPositions} reused; after the answer: '{reference.AfterAnswer}'");
        Assert.Equal(reference.ExpectedUpdate, second.Update);
        Assert.Equal(afterFirst, second.ReusedPositions);
        // The cache holds exactly the one-pass token sequence (image rows −1).
        Assert.Equal(reference.PromptHistory, session.History.ToArray());
        Assert.Equal(reference.FullRendering, chat.Render());
        if (second.Update == LlavaCacheUpdate.Suffix) Assert.Equal(reference.FullRendering, chat.CachedText);
        OnePassChat.AssertClose(reference.SecondTurnLastLogits, session.Logits, "turn 2");
        int secondEnd = session.Position;
        var secondText = string.Concat(chat.GenerateReply(OnePassChat.Greedy(6)).Select(p => p.Text));
        Assert.Equal(reference.SecondAnswerIds, session.History[secondEnd..].ToArray());
        Assert.Equal(reference.SecondAnswer, secondText);
        Assert.Equal(1, session.Stats.ImagesEncoded);
    }

    [Theory]
    [InlineData("vicuna-v1")]
    [InlineData("llava-1.5")]
    [InlineData("llava-interleave")]
    public void LoadedConversation_NextTurn_EqualsTheOnePassTokenizationOfTheWholeRendering(string templateName)
    {
        // No generated tokens here: every answer is text the template renders, so the cache must hold exactly the
        // tokens (and logits) of the whole rendered conversation tokenized and evaluated at once.
        var (text, mmproj) = OnePassChat.Pair;
        using var model = LlavaModel.LoadGguf(text, mmproj);
        var template = model.ChooseChatTemplate(templateName)!;
        var a = LlavaImage.FromBytes(LlavaFixtures.RandomPng(45), "a.png");
        var b = LlavaImage.FromBytes(LlavaFixtures.RandomPng(46, 33, 21), "b.png");
        using var session = model.CreateSession(new LlavaSessionOptions { ContextSize = 512 });
        var chat = new LlavaConversation(session, template);
        chat.Load([LlavaChatMessage.User("What is this?", a), LlavaChatMessage.Assistant("A small square of noise.")]);
        int loaded = session.Position;
        var next = chat.AddUserMessage("And this one, compared with the first?", [b]);
        Assert.Equal(LlavaCacheUpdate.Suffix, next.Update);
        Assert.Equal(loaded, next.ReusedPositions);

        string full = chat.Render();
        Assert.Equal(full, chat.CachedText);
        var onePass = model.ComposeText(full, [a, b]);
        using var reference = model.CreateSession(new LlavaSessionOptions { ContextSize = 512 });
        reference.Append(onePass);
        output.WriteLine($"{templateName}: {loaded} positions loaded, {next.EvaluatedPositions} appended");
        Assert.Equal(reference.History.ToArray(), session.History.ToArray());
        OnePassChat.AssertClose(reference.Logits, session.Logits, "next turn after a load");
        Assert.Equal(2, session.Stats.ImagesEncoded);
    }

    [Fact]
    public void AnswerRenderedDifferently_AppendsWhatTheTemplateWritesAfterIt()
    {
        // llava-interleave writes "\n" before assistant text, which the model did not generate: the cache keeps the
        // answer as generated and receives "<|im_end|>\n<|im_start|>user\n…" after it.
        var (text, mmproj) = OnePassChat.Pair;
        using var model = LlavaModel.LoadGguf(text, mmproj);
        using var session = model.CreateSession(new LlavaSessionOptions { ContextSize = 512 });
        var chat = new LlavaConversation(session, model.ChooseChatTemplate("llava-interleave")!);
        chat.AddUserMessage("Hi", []);
        string answer = string.Concat(chat.GenerateReply(OnePassChat.Greedy(4)).Select(p => p.Text));
        string before = chat.CachedText;
        int position = session.Position;
        var result = chat.AddUserMessage("Again");
        Assert.Equal(LlavaCacheUpdate.AfterAnswer, result.Update);
        Assert.Equal(position, result.ReusedPositions);
        Assert.Equal(before + "<|im_end|>\n<|im_start|>user\n\nAgain<|im_end|>\n<|im_start|>assistant\n", chat.CachedText);
        Assert.EndsWith("\n" + answer + "<|im_end|>\n<|im_start|>user\n\nAgain<|im_end|>\n<|im_start|>assistant\n", chat.Render());
        var tokenizer = model.Tokenizer!;
        int[] expected = tokenizer.EncodeContinuation("<|im_end|>\n<|im_start|>user\n\nAgain<|im_end|>\n<|im_start|>assistant\n");
        Assert.Equal(expected, session.History[position..].ToArray());
    }

    /// <summary>The one-pass evaluation of the conversation's whole rendering: what the cache must hold.</summary>
    private static void AssertCacheIsTheOnePassRendering(LlavaModel model, LlavaConversation chat, LlavaSession session, IReadOnlyList<LlavaImage> images, string what)
    {
        using var reference = model.CreateSession(new LlavaSessionOptions { ContextSize = 512 });
        reference.Append(model.ComposeText(chat.Render(), images));
        Assert.Equal(reference.History.ToArray(), session.History.ToArray());
        OnePassChat.AssertClose(reference.Logits, session.Logits, what);
    }

    [Theory]
    [InlineData("llava-1.5")]
    [InlineData("llava-interleave")]
    public void RegeneratingAnAnswer_KeepsThePrompt_AndAnswersAsTheFirstTime(string templateName)
    {
        // IChatClient-style: the same history is sent again (to regenerate the answer): only the prompt's last position
        // is evaluated again, and the greedy answer is the first one.
        var (text, mmproj) = OnePassChat.Pair;
        using var model = LlavaModel.LoadGguf(text, mmproj);
        var image = LlavaImage.FromBytes(LlavaFixtures.RandomPng(48), "a.png");
        using var session = model.CreateSession(new LlavaSessionOptions { ContextSize = 512 });
        var chat = new LlavaConversation(session, model.ChooseChatTemplate(templateName)!);
        var question = LlavaChatMessage.User(OnePassChat.FirstQuestion, image);
        chat.Append([question]);
        int prompt = session.Position;
        string first = string.Concat(chat.GenerateReply(OnePassChat.Greedy(6)).Select(p => p.Text));

        var again = chat.Load([question]);
        Assert.Equal(LlavaCacheUpdate.Reevaluated, again.Update);
        Assert.Equal(prompt - 1, again.ReusedPositions);
        Assert.Equal(1, again.EvaluatedPositions);
        AssertCacheIsTheOnePassRendering(model, chat, session, [image], "regenerated prompt");
        Assert.Equal(first, string.Concat(chat.GenerateReply(OnePassChat.Greedy(6)).Select(p => p.Text)));
        Assert.Equal(1, session.Stats.ImagesEncoded);
        Assert.Equal(2, chat.Messages.Count);
    }

    [Fact]
    public void EditingTheLastQuestion_KeepsEverythingBeforeTheEdit()
    {
        var (text, mmproj) = OnePassChat.Pair;
        using var model = LlavaModel.LoadGguf(text, mmproj);
        var image = LlavaImage.FromBytes(LlavaFixtures.RandomPng(49), "a.png");
        using var session = model.CreateSession(new LlavaSessionOptions { ContextSize = 512 });
        var chat = new LlavaConversation(session, model.ChooseChatTemplate("llava-1.5")!);
        chat.Append([LlavaChatMessage.User(OnePassChat.FirstQuestion, image)]);
        int firstPrompt = session.Position;
        chat.GenerateReply(OnePassChat.Greedy(5)).ToList();
        var answer = chat.Messages[^1];
        chat.AddUserMessage("And the colours of the left part?");
        int before = session.Position;

        var edited = chat.Load([LlavaChatMessage.User(OnePassChat.FirstQuestion, image), LlavaChatMessage.Assistant(answer.Text),
            LlavaChatMessage.User("And the colours of the right part?")]);
        output.WriteLine($"edit: {edited.ReusedPositions} positions kept, {edited.EvaluatedPositions} evaluated (cache held {before})");
        Assert.Equal(LlavaCacheUpdate.Reevaluated, edited.Update);
        Assert.True(edited.ReusedPositions >= firstPrompt, "the first turn (image included) is kept");
        Assert.True(edited.EvaluatedPositions < before - firstPrompt + 8);
        AssertCacheIsTheOnePassRendering(model, chat, session, [image], "edited question");
        Assert.Equal(1, session.Stats.ImagesEncoded);
    }

    [Fact]
    public void AnswerCutAtAStopString_TheNextTurnDropsItsTokens_AndEqualsTheOnePassRendering()
    {
        var (text, mmproj) = OnePassChat.Pair;
        using var model = LlavaModel.LoadGguf(text, mmproj);
        var image = LlavaImage.FromBytes(LlavaFixtures.RandomPng(50), "a.png");
        var template = model.ChooseChatTemplate("llava-1.5")!;

        // A stop string the greedy answer is known to contain: two characters from its middle.
        string free;
        using (var probe = model.CreateSession(new LlavaSessionOptions { ContextSize = 512 }))
        {
            var probeChat = new LlavaConversation(probe, template);
            probeChat.AddUserMessage(OnePassChat.FirstQuestion, [image]);
            free = string.Concat(probeChat.GenerateReply(OnePassChat.Greedy(12)).Select(p => p.Text));
        }
        string stopString = free.Substring(free.Length / 2, 2);

        using var session = model.CreateSession(new LlavaSessionOptions { ContextSize = 512 });
        var chat = new LlavaConversation(session, template);
        chat.AddUserMessage(OnePassChat.FirstQuestion, [image]);
        int prompt = session.Position;
        chat.GenerateReply(new GenerationOptions { MaxTokens = 12, Sampling = SamplingOptions.Greedy, StopStrings = [stopString] }).ToList();
        Assert.Equal(StopReason.StopString, chat.Messages[^1].Stop);
        Assert.DoesNotContain(stopString, chat.Messages[^1].Text);

        var next = chat.AddUserMessage(OnePassChat.SecondQuestion);
        output.WriteLine($"stop string '{stopString}' in '{free}': {next.ReusedPositions} kept, {next.EvaluatedPositions} evaluated");
        Assert.Equal(LlavaCacheUpdate.Reevaluated, next.Update);
        Assert.True(next.ReusedPositions >= prompt);
        AssertCacheIsTheOnePassRendering(model, chat, session, [image], "turn after a stop string");
    }

    [Fact]
    public void TemplateChangingEarlierText_ReevaluatesTheWholeConversation_AsOnePass()
    {
        // A header that counts the messages changes with every turn: no cached text can be kept.
        var (text, mmproj) = OnePassChat.Pair;
        using var model = LlavaModel.LoadGguf(text, mmproj);
        var template = Model.Templates.ChatTemplate.FromSource(
            "{{ messages | length }} messages\n{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}" +
            "{% if add_generation_prompt %}assistant:{% endif %}", "counting");
        using var session = model.CreateSession(new LlavaSessionOptions { ContextSize = 512 });
        var chat = new LlavaConversation(session, template);
        chat.AddUserMessage("Look <image> here", [LlavaImage.FromBytes(LlavaFixtures.RandomPng(47), "a.png")]);
        chat.GenerateReply(OnePassChat.Greedy(3)).ToList();
        var next = chat.AddUserMessage("And now?");
        Assert.Equal(LlavaCacheUpdate.Reevaluated, next.Update);
        Assert.InRange(next.ReusedPositions, 1, 2); // BOS (and at most one more token) before "2 messages" / "3 messages" differ
        Assert.StartsWith("3 messages\n", chat.CachedText);

        using var reference = model.CreateSession(new LlavaSessionOptions { ContextSize = 512 });
        reference.Append(model.ComposeText(chat.Render(), [LlavaImage.FromBytes(LlavaFixtures.RandomPng(47), "a.png")]));
        Assert.Equal(reference.History.ToArray(), session.History.ToArray());
        OnePassChat.AssertClose(reference.Logits, session.Logits, "re-evaluated conversation");
        Assert.Equal(1, session.Stats.ImageCacheHits); // the image was not encoded again
    }

    [Fact]
    public void ContextFull_KeepsTheConversation_AndResetStartsOver()
    {
        var (text, mmproj) = OnePassChat.Pair;
        using var model = LlavaModel.LoadGguf(text, mmproj);
        using var session = model.CreateSession(new LlavaSessionOptions { ContextSize = 64 });
        var chat = new LlavaConversation(session, model.ChooseChatTemplate("llava-1.5")!);
        chat.AddUserMessage("Hi", [LlavaImage.FromBytes(LlavaFixtures.RandomPng(42), "a.png")]);
        chat.GenerateReply(OnePassChat.Greedy(2)).ToList();
        int position = session.Position;
        int messages = chat.Messages.Count;
        var e = Assert.Throws<LlavaContextOverflowException>(() => chat.AddUserMessage("tell me a lot more about everything you can see in it, every colour and every shape"));
        Assert.Contains("raise the context size", e.Message);
        Assert.Equal(position, session.Position);
        Assert.Equal(messages, chat.Messages.Count);

        chat.Reset();
        Assert.Empty(chat.Messages);
        Assert.Equal(0, session.Position);
        Assert.Equal(LlavaCacheUpdate.Full, chat.AddUserMessage("Hi").Update);
    }

    [Fact]
    public void BadImage_LeavesTheConversationAsItWas()
    {
        var (text, mmproj) = OnePassChat.Pair;
        using var model = LlavaModel.LoadGguf(text, mmproj);
        using var session = model.CreateSession(new LlavaSessionOptions { ContextSize = 256 });
        var chat = new LlavaConversation(session, model.ChooseChatTemplate()!);
        chat.AddUserMessage("Hi");
        chat.GenerateReply(OnePassChat.Greedy(2)).ToList();
        int position = session.Position;
        var bad = LlavaImage.FromBytes("not an image"u8.ToArray(), "notes.png");
        var e = Assert.ThrowsAny<Exception>(() => chat.AddUserMessage("Look", [bad]));
        Assert.Contains("notes.png", e.Message);
        Assert.Equal(position, session.Position);
        Assert.Equal(2, chat.Messages.Count);
        Assert.Equal(position, chat.AddUserMessage("Look again").ReusedPositions);
    }
}
