using LlavaNative.Kernels.Tensors;
using LlavaNative.Model.Formats;
using LlavaNative.Model.Generation;
using LlavaNative.Model.Imaging;
using LlavaNative.Model.Language;
using LlavaNative.Model.Llava;
using LlavaNative.Model.Vision;
using LlavaNative.TestSupport;
using LlavaNative.TestSupport.Llava;
using Xunit;

namespace LlavaNative.Tests.Llava;

/// <summary>
/// The session's bookkeeping and its bad-input behaviour on tiny random models (synthetic vocabulary, no reference
/// needed). Numerical agreement with llama.cpp is in LlavaNative.Reference.Tests/Llava.
/// </summary>
public sealed class LlavaSessionTests
{
    private static LlavaModel Open() => LlavaModel.LoadGguf(RandomModels.GetPath(LlavaFixtures.LlamaSynthetic), LlavaFixtures.ClipMmproj());

    private static LlavaImage Png(int seed) => LlavaImage.FromBytes(LlavaFixtures.RandomPng(seed), $"image{seed}.png");

    [Fact]
    public void SameImageBytesTwice_AreEncodedOnce()
    {
        using var model = Open();
        using var session = model.CreateSession(new LlavaSessionOptions { ContextSize = 128 });
        session.AppendPrompt("<image> and <image>", [Png(1), Png(1)]);
        Assert.Equal(1, session.Stats.ImagesEncoded);
        Assert.Equal(1, session.Stats.ImageCacheHits);
        Assert.Equal(32, session.Stats.PromptImagePositions);
        Assert.Same(session.EncodeImage(Png(1)), session.EncodeImage(Png(1)));
        Assert.Equal(1, session.Stats.ImagesEncoded);

        // The cache survives Reset; a different picture is a miss.
        session.Reset();
        session.AppendPrompt("<image>", [Png(2)]);
        Assert.Equal(1, session.Stats.ImagesEncoded);
        Assert.Equal(0, session.Stats.ImageCacheHits);
    }

    /// <summary>
    /// Two sessions of one model used from two threads at once (a server with two conversations): each gets exactly the
    /// logits it gets alone. They share the model's weights, image encoder and compute pool; the pool serializes their
    /// dispatches, and nothing else may be shared scratch.
    /// </summary>
    [Fact]
    public void TwoSessionsOnTwoThreads_GetTheirSequentialResults()
    {
        using var model = Open();
        string[] prompts = ["describe <image> now", "what is in <image>? and <image>?"];
        LlavaImage[][] images = [[Png(11)], [Png(12), Png(13)]];
        float[][] Run(int which, int repeats)
        {
            using var session = model.CreateSession(new LlavaSessionOptions { ContextSize = 160 });
            var results = new List<float[]>();
            for (int r = 0; r < repeats; r++)
            {
                session.Reset();
                session.AppendPrompt(prompts[which], images[which]);
                results.Add(session.Logits.ToArray());
                session.AppendText(" and then some more words");
                results.Add(session.Logits.ToArray());
            }
            return results.ToArray();
        }
        float[][][] alone = [Run(0, 1), Run(1, 1)];
        var together = new float[2][][];
        var threads = Enumerable.Range(0, 2).Select(i => new Thread(() => together[i] = Run(i, 3)) { IsBackground = true }).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) Assert.True(t.Join(TimeSpan.FromMinutes(3)), "a session hung");
        for (int i = 0; i < 2; i++)
            for (int k = 0; k < together[i].Length; k++)
                Assert.Equal(alone[i][k % 2], together[i][k]);
    }

    [Fact]
    public void ResetThenTheSamePrompt_GivesTheSameLogitsAsAFreshSession()
    {
        using var model = Open();
        using var session = model.CreateSession(new LlavaSessionOptions { ContextSize = 128 });
        session.AppendPrompt("tell me about <image> please", [Png(3)]);
        float[] first = session.Logits.ToArray();
        session.AppendText(" more text");
        session.Reset();
        Assert.Equal(0, session.Position);
        session.AppendPrompt("tell me about <image> please", [Png(3)]);
        Assert.Equal(first, session.Logits.ToArray());
    }

    /// <summary>
    /// <see cref="LlavaSessionOptions.CacheType"/> reaches the decoder session: an F16 cache holds half the bytes, and an
    /// image + text prompt gives logits near the F32 cache's (the F16 rounding of K and V, 2 layers; measured ≈ 4e-3).
    /// </summary>
    [Fact]
    public void F16CacheType_HalvesTheCache_AndStaysNearF32()
    {
        using var model = Open();
        using var f32 = model.CreateSession(new LlavaSessionOptions { ContextSize = 64 });
        using var f16 = model.CreateSession(new LlavaSessionOptions { ContextSize = 64, CacheType = KvCacheType.F16 });
        Assert.Equal(KvCacheType.F32, f32.Decoder.CacheType);
        Assert.Equal(KvCacheType.F16, f16.Decoder.CacheType);
        Assert.Equal(f32.Decoder.KvCacheBytes, 2 * f16.Decoder.KvCacheBytes);
        f32.AppendPrompt("what is <image> here", [Png(6)]);
        f16.AppendPrompt("what is <image> here", [Png(6)]);
        float[] a = f32.Logits.ToArray(), b = f16.Logits.ToArray();
        double maxAbs = a.Zip(b, (x, y) => Math.Abs(x - y)).Max();
        Assert.True(maxAbs > 0 && maxAbs < 2e-2, $"max abs {maxAbs}");
    }

    [Fact]
    public void WithoutMarkers_ImagesGoFirstAfterBos()
    {
        using var model = Open();
        var prompt = model.ComposeText("what is this?", [Png(4), Png(5)]);
        Assert.Equal([model.Tokenizer!.BosId], Assert.IsType<TokenChunk>(prompt.Chunks[0]).Ids);
        Assert.Equal("image4.png", Assert.IsType<ImageChunk>(prompt.Chunks[1]).Image.Name);
        Assert.Equal("image5.png", Assert.IsType<ImageChunk>(prompt.Chunks[2]).Image.Name);
        Assert.Equal(model.Tokenizer.Encode("what is this?", addSpecial: false), Assert.IsType<TokenChunk>(prompt.Chunks[3]).Ids);
    }

    [Fact]
    public void MarkerAndImageCountMismatch_IsAClearError()
    {
        using var model = Open();
        var e = Assert.Throws<LlavaPromptException>(() => model.ComposeText("<image> vs <image>", [Png(1)]));
        Assert.Contains("2 image marker(s) '<image>' but 1 image(s)", e.Message);
        e = Assert.Throws<LlavaPromptException>(() => model.ComposeText("just <image>", [Png(1), Png(2), Png(3)]));
        Assert.Contains("1 image marker(s) '<image>' but 3 image(s)", e.Message);
        using var session = model.CreateSession(new LlavaSessionOptions { ContextSize = 64 });
        Assert.Throws<LlavaPromptException>(() => session.AppendPrompt("<image>", []));
        Assert.Equal(0, session.Position);
    }

    [Fact]
    public void ContextOverflowWithImages_SaysWhatIsNeededAndWhatFits_BeforeAnyWork()
    {
        using var model = Open();
        using var session = model.CreateSession(new LlavaSessionOptions { ContextSize = 50 });
        session.AppendText("hello");
        int used = session.Position;
        var e = Assert.Throws<LlavaContextOverflowException>(() => session.AppendPrompt("<image><image><image>", [Png(1), Png(2), Png(3)]));
        Assert.Contains("48 image positions for 3 image(s)", e.Message);
        Assert.Contains($"only {50 - used} of the 50-position context are free", e.Message);
        Assert.Equal(48 + e.Needed - 48, e.Needed);
        Assert.Equal(used, session.Position);
        Assert.Equal(0, session.Stats.ImagesEncoded); // checked before encoding anything
    }

    [Fact]
    public void MissingUnsupportedOrCorruptImages_AreClearErrors_AndLeaveTheSessionAsItWas()
    {
        string missing = Path.Combine(LlavaFixtures.TempFolder, "missing.jpg");
        Assert.Contains("missing.jpg: image file not found", Assert.Throws<FileNotFoundException>(() => LlavaImage.FromFile(missing)).Message);

        using var model = Open();
        using var session = model.CreateSession(new LlavaSessionOptions { ContextSize = 64 });
        session.AppendText("before");
        int position = session.Position;
        var text = LlavaImage.FromBytes("GIF? no, plain text"u8.ToArray(), "story.txt");
        var e = Assert.Throws<ImageFormatException>(() => session.AppendPrompt("look: <image>", [text]));
        Assert.Contains("story.txt", e.Message);
        Assert.Contains("unrecognised image format", e.Message);

        byte[] png = LlavaFixtures.RandomPng(7);
        var truncated = LlavaImage.FromBytes(png[..(png.Length / 2)], "half.png");
        e = Assert.Throws<ImageFormatException>(() => session.AppendImage(truncated));
        Assert.Contains("half.png", e.Message);
        Assert.Equal(position, session.Position);
    }

    [Fact]
    public void ProjectorWidthDifferentFromTheTextDimension_NamesBothFiles()
    {
        string text = RandomModels.GetPath(LlavaFixtures.LlamaSynthetic);
        string mmproj = LlavaFixtures.ClipMmproj(textDim: 96);
        var e = Assert.Throws<ModelFormatException>(() => LlavaModel.LoadGguf(text, mmproj));
        Assert.Contains(mmproj, e.Message);
        Assert.Contains(text, e.Message);
        Assert.Contains("96-wide", e.Message);
        Assert.Contains("dimension 64", e.Message);
    }

    /// <summary>A fresh session's evaluation of the prompt: the reference for <see cref="LlavaSession.ReplaceWith"/>.</summary>
    private static (int[] History, float[] Logits) FreshEvaluation(LlavaModel model, LlavaPrompt prompt)
    {
        using var fresh = model.CreateSession(new LlavaSessionOptions { ContextSize = 160 });
        fresh.Append(prompt);
        return (fresh.History.ToArray(), fresh.Logits.ToArray());
    }

    private static void AssertSameCache(LlavaModel model, LlavaPrompt prompt, LlavaSession session)
    {
        var (history, logits) = FreshEvaluation(model, prompt);
        Assert.Equal(history, session.History.ToArray());
        // Kept positions were computed in other batch splits: equal up to float summation order.
        AssertLogitsClose(logits, session.Logits, "a fresh evaluation");
    }

    private static void AssertLogitsClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        float max = 0;
        for (int i = 0; i < expected.Length; i++) max = Math.Max(max, Math.Abs(expected[i] - actual[i]));
        Assert.True(max <= 1e-4f, $"logits differ from {what} by {max:E2}");
    }

    private static int SharedPrefix(int[] a, int[] b)
    {
        int n = 0;
        while (n < a.Length && n < b.Length && a[n] == b[n]) n++;
        return n;
    }

    [Fact]
    public void ReplaceWith_KeepsTheSharedPrefix_AndLeavesWhatAFreshEvaluationLeaves()
    {
        using var model = Open();
        int rows = model.ImageTokenCount;
        using var session = model.CreateSession(new LlavaSessionOptions { ContextSize = 160 });
        var question = model.ComposeText("look at <image> and tell me what you see", [Png(6)]);
        session.Append(question);
        session.Generate(new GenerationOptions { MaxTokens = 5, Sampling = SamplingOptions.Greedy }).ToList();
        int positions = question.PositionCount(rows);
        Assert.True(session.Position > positions);

        // The same prompt again (regenerating the answer): everything but its last position is kept.
        Assert.Equal(positions, session.CommonPrefixLength(question));
        Assert.Equal(positions - 1, session.ReplaceWith(question));
        Assert.Equal(positions, session.Position);
        AssertSameCache(model, question, session);
        Assert.Equal(1, session.Stats.ImagesEncoded);

        // Another question about the same image: the text before the image and its rows are kept.
        var other = model.ComposeText("look at <image> and count the colours", [Png(6)]);
        int expected = SharedPrefix(FreshEvaluation(model, question).History, FreshEvaluation(model, other).History);
        Assert.True(expected > rows, "the shared prefix covers the image");
        Assert.Equal(expected, session.CommonPrefixLength(other));
        Assert.Equal(expected, session.ReplaceWith(other));
        AssertSameCache(model, other, session);

        // A different picture in the same place: only the text before it is kept (rows match by content, not position).
        var swapped = model.ComposeText("look at <image> and count the colours", [Png(7)]);
        int beforeImage = FreshEvaluation(model, swapped).History.AsSpan().IndexOf(-1);
        Assert.Equal(beforeImage, session.ReplaceWith(swapped));
        AssertSameCache(model, swapped, session);

        // A cache holding half of an image, then the whole image: the rest of its rows are evaluated from the middle.
        var bos = new TokenChunk([model.Tokenizer!.BosId]);
        var half = new LlavaPrompt([bos, new ImageChunk(Png(8), 0, rows / 2), new TokenChunk([5, 6, 7])]);
        var whole = new LlavaPrompt([bos, new ImageChunk(Png(8)), new TokenChunk([5, 6, 7])]);
        session.ReplaceWith(half);
        Assert.Equal(1 + rows / 2, session.ReplaceWith(whole));
        AssertSameCache(model, whole, session);

        // Nothing shared: the cache is evaluated from scratch.
        var unrelated = new LlavaPrompt([new TokenChunk([9, 10, 11])]);
        Assert.Equal(0, session.ReplaceWith(unrelated));
        AssertSameCache(model, unrelated, session);
    }

    [Fact]
    public void ReplaceWith_ABadImageOrAnOverflow_LeavesTheCacheAsItWas()
    {
        using var model = Open();
        using var session = model.CreateSession(new LlavaSessionOptions { ContextSize = 48 });
        session.AppendPrompt("first <image> text", [Png(9)]);
        int[] history = session.History.ToArray();
        float[] logits = session.Logits.ToArray();
        var broken = LlavaImage.FromBytes([0x89, 0x50, 0x4E, 0x47, 1, 2, 3], "broken.png");
        Assert.ThrowsAny<Exception>(() => session.ReplaceWith(model.ComposeText("first <image> other", [broken])));
        Assert.Throws<LlavaContextOverflowException>(() => session.ReplaceWith(model.ComposeText("first <image> <image> <image>", [Png(9), Png(9), Png(9)])));
        Assert.Equal(history, session.History.ToArray());
        Assert.Equal(logits, session.Logits.ToArray());
    }

    [Fact]
    public void Truncate_DropsPositions_AndLogitsWaitForTheNextAppend()
    {
        using var model = Open();
        using var session = model.CreateSession(new LlavaSessionOptions { ContextSize = 128 });
        session.AppendPrompt("<image> describe", [Png(10)]);
        int prompt = session.Position;
        float[] logits = session.Logits.ToArray();
        session.Generate(new GenerationOptions { MaxTokens = 4, Sampling = SamplingOptions.Greedy }).ToList();
        Assert.Throws<ArgumentOutOfRangeException>(() => session.Truncate(session.Position + 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => session.Truncate(-1));

        session.Truncate(prompt - 1);
        Assert.Equal(prompt - 1, session.Position);
        Assert.True(session.Logits.IsEmpty);
        Assert.Throws<InvalidOperationException>(() => session.Generate(new GenerationOptions { MaxTokens = 1 }));
        int last = model.ComposeText("<image> describe", [Png(10)]).Chunks.OfType<TokenChunk>().Last().Ids[^1];
        session.AppendTokens([last]);
        Assert.Equal(prompt, session.Position);
        AssertLogitsClose(logits, session.Logits, "the logits before the truncation");
    }

    [Fact]
    public void IgnoreEndOfGeneration_BansTheEndTokens_SoGenerationRunsToTheLimit()
    {
        using var model = Open();
        var tokenizer = model.Tokenizer!;
        var greedy = new GenerationOptions { MaxTokens = 200, Sampling = SamplingOptions.Greedy };
        // A prompt whose greedy answer ends with an end-of-generation token (the random model does end some answers).
        string? ending = null;
        int endsAt = -1;
        foreach (string text in (string[])["Tell me a long story.", "Hello", "What is this?", "Describe it", "a b c"])
        {
            using var probe = model.CreateSession(new LlavaSessionOptions { ContextSize = 320 });
            probe.AppendText(text);
            int start = probe.Position;
            probe.Generate(greedy).ToList();
            if (probe.LastGeneration!.Stop == StopReason.EndOfGeneration) { ending = text; endsAt = probe.Position - start; break; }
        }
        Assert.True(ending != null, "no probe prompt ends with an end-of-generation token");

        using var session = model.CreateSession(new LlavaSessionOptions { ContextSize = 320 });
        session.AppendText(ending!);
        int first = session.Position;
        var pieces = session.Generate(greedy with { IgnoreEndOfGeneration = true, MaxTokens = endsAt + 10 }).ToList();
        Assert.Equal(StopReason.TokenLimit, pieces[^1].Stop);
        Assert.Equal(endsAt + 10, session.LastGeneration!.GeneratedTokens);
        foreach (int token in session.History[first..]) Assert.False(tokenizer.IsEndOfGeneration(token));

        // Up to where the plain run ended, both runs chose the same tokens.
        using var plain = model.CreateSession(new LlavaSessionOptions { ContextSize = 320 });
        plain.AppendText(ending!);
        plain.Generate(greedy).ToList();
        Assert.Equal(plain.History[first..].ToArray(), session.History[first..(first + endsAt)].ToArray());
    }

    [Fact]
    public void SamplerBan_PicksTheBestAllowedToken()
    {
        float[] logits = [0.5f, 3f, 2f, -1f];
        var sampler = new Sampler(4, SamplingOptions.Greedy);
        Assert.Equal(1, sampler.Sample(logits));
        sampler.Ban([1, 7]); // 7 is outside the vocabulary: ignored
        Assert.Equal(2, sampler.Sample(logits));
        Assert.Equal(3f, logits[1]); // the caller's logits are not modified
        var sampling = new Sampler(4, new SamplingOptions { Temperature = 1f, TopK = 0, TopP = 1f, MinP = 0f, Seed = 5 });
        sampling.Ban([1, 2]);
        for (int i = 0; i < 200; i++) Assert.DoesNotContain(sampling.Sample(logits), (int[])[1, 2]);
        Assert.Throws<ArgumentException>(() => sampler.Ban([0, 1, 2, 3]));
    }

    [Fact]
    public void GeneratingBeforeAnyPrompt_IsAClearError()
    {
        using var model = Open();
        using var session = model.CreateSession(new LlavaSessionOptions { ContextSize = 64 });
        Assert.Throws<InvalidOperationException>(() => session.Generate(new GenerationOptions { MaxTokens = 1 }));
    }

    [Fact]
    public async Task AsyncGeneration_StreamsWhatSyncGenerationStreams_AndCancels()
    {
        using var model = Open();
        var options = new GenerationOptions { MaxTokens = 10, Sampling = SamplingOptions.Greedy };
        using var sync = model.CreateSession(new LlavaSessionOptions { ContextSize = 128 });
        sync.AppendPrompt("<image> describe", [Png(8)]);
        var expected = sync.Generate(options).ToList();

        using var session = model.CreateSession(new LlavaSessionOptions { ContextSize = 128 });
        session.AppendPrompt("<image> describe", [Png(8)]);
        var pieces = new List<GeneratedPiece>();
        await foreach (var piece in session.GenerateAsync(options)) pieces.Add(piece);
        Assert.Equal(expected, pieces);
        Assert.NotEqual(StopReason.None, pieces[^1].Stop);

        using var cancel = new CancellationTokenSource();
        var afterCancel = new List<GeneratedPiece>();
        await foreach (var piece in session.GenerateAsync(new GenerationOptions { MaxTokens = 50, Sampling = SamplingOptions.Greedy }, cancel.Token))
        {
            afterCancel.Add(piece);
            cancel.Cancel();
        }
        Assert.Equal(StopReason.Cancelled, afterCancel[^1].Stop);
        Assert.True(afterCancel.Count <= 3);
    }

    [Fact]
    public void DecodeSteps_AllocateOnlyTheStreamedText()
    {
        using var model = Open();
        using var session = model.CreateSession(new LlavaSessionOptions { ContextSize = 256 });
        session.AppendPrompt("<image> go", [Png(9)]);
        var options = new GenerationOptions { MaxTokens = 100, Sampling = new SamplingOptions { Temperature = 0.7f, Seed = 3, RepeatPenalty = 1.1f } };
        using var steps = session.Generate(options).GetEnumerator();
        for (int i = 0; i < 8; i++) Assert.True(steps.MoveNext()); // warm-up
        // Each MoveNext runs forward + sample + detokenize until a piece is released; only the piece's string is new.
        long start = GC.GetAllocatedBytesForCurrentThread();
        long textBytes = 0;
        int count = 0;
        while (count < 20 && steps.MoveNext() && steps.Current.Stop == StopReason.None)
        {
            textBytes += 2L * steps.Current.Text.Length + 32;
            count++;
        }
        long total = GC.GetAllocatedBytesForCurrentThread() - start;
        Assert.True(count > 0);
        Assert.True(total <= textBytes, $"{count} decode steps allocated {total} bytes; their text accounts for at most {textBytes}");
    }

    [Fact]
    public void PatchTokenFormat_KeepsStartAndEndTokensAroundTheRows()
    {
        string text = RandomModels.GetPath(LlavaFixtures.LlamaSynthetic);
        using var decoder = DecoderModel.LoadGguf(text);
        using var encoder = ImageEncoder.LoadGguf(LlavaFixtures.ClipMmproj());
        using var model = LlavaModel.Compose(decoder, encoder, LlavaPromptFormat.PatchTokens(patch: 300, start: 301, end: 302),
            LlavaModel.DefaultPreprocessing(encoder.VisionConfig));
        Assert.Equal("llama-2", model.DefaultChatTemplateName);
        var image = Png(10);

        var fromText = model.ComposeText("q <image> a", [image]);
        var kinds = fromText.Chunks.Select(c => c is TokenChunk t ? string.Join(",", t.Ids.TakeLast(1)) : "img").ToArray();
        Assert.Equal("301", kinds[1]);
        Assert.Equal("img", kinds[2]);
        Assert.Equal(302, Assert.IsType<TokenChunk>(fromText.Chunks[3]).Ids[0]);

        int n = model.ImageTokenCount;
        int[] ids = [1, 301, .. Enumerable.Repeat(300, n), 302, 5];
        var fromIds = model.ComposeTokens(ids, [image]);
        Assert.Equal(ids.Length, fromIds.PositionCount(n));
        Assert.Equal([1, 301], Assert.IsType<TokenChunk>(fromIds.Chunks[0]).Ids);
        Assert.Equal(n, Assert.IsType<ImageChunk>(fromIds.Chunks[1]).Rows(n));
        Assert.Equal([302, 5], Assert.IsType<TokenChunk>(fromIds.Chunks[2]).Ids);
        Assert.Throws<LlavaPromptException>(() => model.ComposeTokens([1, 301, 300, 300, 302], [image]));
    }
}
