using LlavaNative.Model.Chat;
using LlavaNative.Model.Generation;
using LlavaNative.Model.Llava;
using LlavaNative.Model.Templates;
using LlavaNative.TestSupport;
using LlavaNative.TestSupport.Llava;
using Xunit;

namespace LlavaNative.Reference.Tests.Chat;

/// <summary>
/// The reference for incremental chat: a two-turn conversation (question with an image, answer, second question)
/// evaluated the long way, without LlavaConversation — the template renders the whole conversation, the test cuts the
/// rendering into the first turn, the answer's tokens as the model generated them and the text after the answer, and a
/// fresh session evaluates all of it in ONE Append. The incremental cache must give the same logits and greedy tokens.
/// </summary>
internal sealed record OnePassChat(
    string FirstRendering, int[] FirstAnswerIds, string FirstAnswer, string FullRendering, string AfterAnswer, LlavaCacheUpdate ExpectedUpdate,
    int[] PromptHistory, float[] FirstTurnLastLogits, float[] SecondTurnLastLogits, int[] SecondAnswerIds, string SecondAnswer)
{
    public const string FirstQuestion = "What is in the picture?";
    public const string SecondQuestion = "And the colours?";

    /// <summary>Tiny llama (synthetic SentencePiece vocabulary, no reference download) + tiny CLIP mmproj.</summary>
    public static (string Text, string Mmproj) Pair => (RandomModels.GetPath(LlavaFixtures.LlamaSynthetic), LlavaFixtures.ClipMmproj());

    public static GenerationOptions Greedy(int tokens) => new() { MaxTokens = tokens, Sampling = SamplingOptions.Greedy };

    public static OnePassChat Compute(LlavaModel model, ChatTemplate template, LlavaImage image, int answerTokens, int contextSize = 512)
    {
        var tokenizer = model.Tokenizer!;
        int vocab = model.Decoder.Config.VocabSize;
        var options = new ChatTemplateOptions { AddGenerationPrompt = true, BosToken = "", EosToken = tokenizer.TokenText(tokenizer.EosId), ImageMarker = "<image>" };

        // Turn 1 as `llava run` builds it.
        string first = model.RenderUserPrompt(template, FirstQuestion, 1);
        var firstPrompt = model.ComposeText(first, [image]);
        using var one = model.CreateSession(new LlavaSessionOptions { ContextSize = contextSize });
        one.Append(firstPrompt);
        float[] firstLogits = one.Logits.ToArray();
        int firstEnd = one.Position;
        var pieces = one.Generate(Greedy(answerTokens)).ToList();
        var ids = one.History[firstEnd..].ToArray(); // (a piece is yielded only when text is released, so not every token has one)
        string raw = string.Concat(pieces.Select(p => p.Text)); // as streamed (random models emit stray bytes: U+FFFD)
        string answer = raw.TrimStart();

        // The whole conversation rendered at once; what follows the answer's text is the new part.
        string full = template.Render(
            [ChatMessage.User(FirstQuestion, 1), ChatMessage.Assistant(answer), ChatMessage.User(SecondQuestion)], options);
        int end = full.IndexOf(answer, first.Length - 1, StringComparison.Ordinal) + answer.Length;
        Assert.True(answer.Length > 0 && end > answer.Length, $"the answer '{answer}' is not in the rendering '{full}'");
        string after = full[end..];
        // The answer renders as generated when it began with the one space the template puts after "ASSISTANT:".
        var update = full.StartsWith(first + raw, StringComparison.Ordinal) ? LlavaCacheUpdate.Suffix : LlavaCacheUpdate.AfterAnswer;

        // Tokens of the text after the answer as a one-pass tokenization of the whole text gives them: after a special
        // token, or after a space that SentencePiece turns into the next word's '▁' (the space prefix restores it).
        int[] afterIds = after.StartsWith(' ') && !after.StartsWith("  ", StringComparison.Ordinal)
            ? tokenizer.Encode(after[1..], addSpecial: false)
            : after.StartsWith(tokenizer.TokenText(tokenizer.EosId), StringComparison.Ordinal)
                ? tokenizer.Encode(after, addSpecial: false)
                : throw new InvalidOperationException($"the reference cannot tokenize a continuation starting '{after[..Math.Min(8, after.Length)]}'");

        var chunks = firstPrompt.Chunks.Append(new TokenChunk(ids)).Append(new TokenChunk(afterIds)).ToList();
        var whole = new LlavaPrompt(chunks);
        int positions = whole.PositionCount(model.ImageTokenCount);
        using var reference = model.CreateSession(new LlavaSessionOptions { ContextSize = contextSize });
        var all = new float[(long)positions * vocab];
        reference.Append(whole, all);
        float[] firstTurnLogits = all.AsSpan((firstEnd - 1) * vocab, vocab).ToArray();
        // Same prompt, two ways (batched in the one-pass session): the first turn's logits agree.
        AssertClose(firstLogits, firstTurnLogits, "turn 1, one session vs the one-pass conversation");
        int[] history = reference.History.ToArray();
        float[] secondLogits = reference.Logits.ToArray();
        var secondPieces = reference.Generate(Greedy(answerTokens)).ToList();
        var second = reference.History[positions..].ToArray();
        return new OnePassChat(first, ids, answer, full, after, update, history, firstLogits, secondLogits, second,
            string.Concat(secondPieces.Select(p => p.Text)).TrimStart());
    }

    public const double Tolerance = 1e-4; // batched vs incremental evaluation of the same positions (F32 weights)

    public static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double max = 0;
        for (int i = 0; i < expected.Length; i++) max = Math.Max(max, Math.Abs(expected[i] - actual[i]));
        Assert.True(max <= Tolerance, $"{what}: logits differ by {max:E2}");
    }
}
