using LlavaNative.Model.Generation;
using LlavaNative.Model.Llava;
using LlavaNative.TestSupport;
using LlavaNative.TestSupport.LlamaCpp;
using LlavaNative.TestSupport.Llava;
using Xunit;
using Xunit.Abstractions;

namespace LlavaNative.Reference.Tests.Llava;

/// <summary>
/// LLaVA end to end on the GGUF path against llama.cpp: our image embeddings are injected into llama.cpp through
/// <c>batch.embd</c> at the positions our composition gave them, with the text tokens around them; llama.cpp's logits
/// of every position (text and image rows) must match ours. The encoder itself is checked against PyTorch in
/// VisionReferenceTests; here the composition and the decoder over image rows are on trial.
/// </summary>
public sealed class LlavaLlamaCppAgreementTests(ITestOutputHelper output)
{
    private const double Tolerance = 1e-4; // F32 weights: the text-core tolerance

    public static TheoryData<string> Pairs => new() { "llama+clip", "qwen2+siglip" };

    internal static (string Text, string Mmproj) Pair(string name) => name switch
    {
        "llama+clip" => (RandomModels.GetPath(LlavaFixtures.LlamaText), LlavaFixtures.ClipMmproj()),
        "qwen2+siglip" => (RandomModels.GetPath(LlavaFixtures.Qwen2Synthetic), LlavaFixtures.SigLipMmproj()),
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };

    /// <summary>The reference's inputs for a composed prompt: token chunks as tokens, image chunks as our embedding rows.</summary>
    internal static LlamaInput[] ReferenceInputs(LlavaSession session, LlavaPrompt prompt)
    {
        int dim = session.Model.Decoder.Config.Dim;
        return prompt.Chunks.Select(c => c switch
        {
            TokenChunk t => LlamaInput.Tokens(t.Ids),
            ImageChunk i => LlamaInput.Embeddings(session.EncodeImage(i.Image).AsSpan(i.FirstRow * dim, i.Rows(session.Model.ImageTokenCount) * dim).ToArray(), dim),
            _ => throw new InvalidOperationException(),
        }).ToArray();
    }

    internal static double MaxAbs(float[] ours, float[][] reference, int vocab)
    {
        double max = 0;
        for (int t = 0; t < reference.Length; t++)
            for (int v = 0; v < vocab; v++)
                max = Math.Max(max, Math.Abs(ours[(long)t * vocab + v] - reference[t][v]));
        return max;
    }

    private static float[] EvalAll(LlavaSession session, LlavaPrompt prompt)
    {
        var logits = new float[(long)prompt.PositionCount(session.Model.ImageTokenCount) * session.Model.Decoder.Config.VocabSize];
        session.Append(prompt, logits);
        return logits;
    }

    [Theory]
    [MemberData(nameof(Pairs))]
    public void MarkerComposition_EveryPosition_MatchesLlamaCppWithInjectedEmbeddings(string pair)
    {
        var (text, mmproj) = Pair(pair);
        using var model = LlavaModel.LoadGguf(text, mmproj);
        Assert.Equal(ImagePlacement.Embeddings, model.PromptFormat.Placement);
        using var session = model.CreateSession(new LlavaSessionOptions { ContextSize = 256 });
        var a = LlavaImage.FromBytes(LlavaFixtures.RandomPng(1), "a.png");
        var b = LlavaImage.FromBytes(LlavaFixtures.RandomPng(2, 25, 47), "b.png");
        var prompt = model.ComposeText("Look at <image> and then at <image>, what differs?", [a, b]);
        Assert.Equal(2 * model.ImageTokenCount, prompt.ImageRowCount(model.ImageTokenCount));
        float[] ours = EvalAll(session, prompt);

        using var reference = LlamaCppModel.Load(text);
        float[][] expected = reference.EvalLogits(ReferenceInputs(session, prompt));
        Assert.Equal(prompt.PositionCount(model.ImageTokenCount), expected.Length);
        double maxAbs = MaxAbs(ours, expected, reference.VocabSize);
        output.WriteLine($"{pair}: {expected.Length} positions ({2 * model.ImageTokenCount} image rows), max abs {maxAbs:E2}");
        Assert.True(maxAbs <= Tolerance, $"max abs {maxAbs:E3}");
    }

    [Fact]
    public void SwappingImages_ChangesTheLogits_AndTheKthMarkerReceivesTheKthImage()
    {
        var (text, mmproj) = Pair("llama+clip");
        using var model = LlavaModel.LoadGguf(text, mmproj);
        using var session = model.CreateSession(new LlavaSessionOptions { ContextSize = 256 });
        var a = LlavaImage.FromBytes(LlavaFixtures.RandomPng(3), "a.png");
        var b = LlavaImage.FromBytes(LlavaFixtures.RandomPng(4), "b.png");
        const string Text = "first <image> second <image> end";
        var ab = model.ComposeText(Text, [a, b]);
        var ba = model.ComposeText(Text, [b, a]);
        float[] oursAb = EvalAll(session, ab);
        session.Reset();
        float[] oursBa = EvalAll(session, ba);

        // Which image sits at which marker, as the reference sees it: a at the first marker for [a, b], b for [b, a].
        var firstImage = ab.Chunks.OfType<ImageChunk>().First();
        Assert.Same(a, firstImage.Image);
        using var reference = LlamaCppModel.Load(text);
        int vocab = reference.VocabSize;
        Assert.True(MaxAbs(oursAb, reference.EvalLogits(ReferenceInputs(session, ab)), vocab) <= Tolerance);
        Assert.True(MaxAbs(oursBa, reference.EvalLogits(ReferenceInputs(session, ba)), vocab) <= Tolerance);

        // The text before the first image is the same; everything from the first image row on differs.
        int firstRow = ab.Chunks.TakeWhile(c => c is TokenChunk).Sum(c => ((TokenChunk)c).Ids.Length);
        double before = 0, after = 0;
        for (long i = 0; i < (long)firstRow * vocab; i++) before = Math.Max(before, Math.Abs(oursAb[i] - oursBa[i]));
        int last = ab.PositionCount(model.ImageTokenCount) - 1;
        for (int v = 0; v < vocab; v++) after = Math.Max(after, Math.Abs(oursAb[(long)last * vocab + v] - oursBa[(long)last * vocab + v]));
        Assert.True(before == 0, $"text before the images changed by {before}");
        Assert.True(after > 1e-2, $"swapping the images changed the last logits by only {after:E2}");
    }

    [Fact]
    public void IncrementalSession_TextImageTextGenerate_MatchesOnePassAndLlamaCpp()
    {
        var (text, mmproj) = Pair("llama+clip");
        using var model = LlavaModel.LoadGguf(text, mmproj);
        var image = LlavaImage.FromBytes(LlavaFixtures.RandomPng(5), "c.png");

        using var onePass = model.CreateSession(new LlavaSessionOptions { ContextSize = 256 });
        var prompt = model.ComposeText("USER: <image>\nWhat is shown? ASSISTANT:", [image]);
        float[] all = EvalAll(onePass, prompt);
        int vocab = model.Decoder.Config.VocabSize;
        int positions = prompt.PositionCount(model.ImageTokenCount);

        using var session = model.CreateSession(new LlavaSessionOptions { ContextSize = 256 });
        session.AppendText("USER: ");
        session.AppendImage(image);
        session.AppendTokens(model.Tokenizer!.Encode("\nWhat is shown? ASSISTANT:", addSpecial: false));
        Assert.Equal(positions, session.Position);
        double diff = 0;
        for (int v = 0; v < vocab; v++) diff = Math.Max(diff, Math.Abs(session.Logits[v] - all[(long)(positions - 1) * vocab + v]));
        Assert.True(diff <= 1e-5, $"incremental vs one-pass last logits differ by {diff:E2}");

        // Generate greedily, then let llama.cpp evaluate prompt + generated tokens: every generated token must be its
        // arg-max where its top-2 margin is clear, and the session's history must be what was evaluated.
        var generated = new List<int>();
        foreach (var piece in session.Generate(new GenerationOptions { MaxTokens = 8, Sampling = SamplingOptions.Greedy }))
            if (piece.TokenId >= 0) generated.Add(piece.TokenId);
        Assert.Equal(StopReason.TokenLimit, session.LastGeneration!.Stop);
        Assert.Equal(8, session.LastGeneration.GeneratedTokens);
        Assert.Equal(positions + 8, session.Position);
        int[] history = session.History.ToArray();
        int[] tail = history[positions..];
        Assert.Equal(8, tail.Length);

        using var reference = LlamaCppModel.Load(text);
        var inputs = ReferenceInputs(onePass, prompt).Append(LlamaInput.Tokens(tail[..^1])).ToArray();
        float[][] rows = reference.EvalLogits(inputs);
        int checkedSteps = 0;
        for (int step = 0; step < 8; step++)
        {
            float[] row = rows[positions - 1 + step];
            int best = Sampler.ArgMax(row);
            float second = row.Where((_, i) => i != best).Max();
            if (row[best] - second < 1e-3) break; // a near tie: either continuation is legitimate
            Assert.True(best == tail[step], $"step {step}: llama.cpp arg-max {best} (margin {row[best] - second}), ours {tail[step]} (logit {row[tail[step]]} vs {row[best]}); tail {string.Join(",", tail)}");
            checkedSteps++;
        }
        output.WriteLine($"greedy tokens agreeing with llama.cpp: {checkedSteps} of 8");
        Assert.True(checkedSteps >= 1);

        // Continuing the conversation evaluates the last sampled token first, then the new text.
        session.AppendText(" USER: again?");
        Assert.Equal(tail[^1], session.History[positions + 7]);
    }
}
