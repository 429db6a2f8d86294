using LlavaNative.Model.Llava;
using LlavaNative.TestSupport;
using LlavaNative.TestSupport.HuggingFace;
using LlavaNative.TestSupport.LlamaCpp;
using LlavaNative.TestSupport.Llava;
using Xunit;
using Xunit.Abstractions;

namespace LlavaNative.Reference.Tests.Llava;

/// <summary>
/// llava-hf placeholder composition: a decoder from a Hugging Face llava folder (written from the GGUF by
/// GgufToHuggingFace, image_token_index = vocab − 1) with the mmproj's tower. Placeholder ids expanded to the image
/// rows must give the logits of the GGUF marker composition, and of llama.cpp with the rows injected.
/// </summary>
public sealed class HuggingFacePlaceholderTests(ITestOutputHelper output)
{
    private static readonly Lazy<string> Folder = new(() =>
    {
        string folder = Path.Combine(LlavaFixtures.TempFolder, "hf-llava-llama");
        GgufToHuggingFace.Export(RandomModels.GetPath(LlavaFixtures.LlamaText), folder, new HfExportOptions { Layout = HfCheckpointLayout.LlavaNew });
        return folder;
    });

    [Fact]
    public void PlaceholderIds_GiveTheLogitsOfTheGgufMarkerComposition_AndOfLlamaCpp()
    {
        string gguf = RandomModels.GetPath(LlavaFixtures.LlamaText);
        string mmproj = LlavaFixtures.ClipMmproj();
        using var hf = LlavaModel.Load(Folder.Value, mmproj);
        Assert.Equal(ImagePlacement.PlaceholderToken, hf.PromptFormat.Placement);
        int placeholder = hf.PromptFormat.PlaceholderTokenId;
        Assert.Equal(31999, placeholder);
        using var ggufModel = LlavaModel.LoadGguf(gguf, mmproj);

        var a = LlavaImage.FromBytes(LlavaFixtures.RandomPng(11), "a.png");
        var b = LlavaImage.FromBytes(LlavaFixtures.RandomPng(12), "b.png");
        int[] before = [1, 3148, 1001], middle = [322, 29871], after = [1724, 29973];
        int n = hf.ImageTokenCount, vocab = hf.Decoder.Config.VocabSize;

        // GGUF/mtmd: rows at the marks.
        var marked = new LlavaPrompt([new TokenChunk(before), new ImageChunk(a), new TokenChunk(middle), new ImageChunk(b), new TokenChunk(after)]);
        using var ggufSession = ggufModel.CreateSession(new LlavaSessionOptions { ContextSize = 128 });
        var ggufLogits = new float[(long)marked.PositionCount(n) * vocab];
        ggufSession.Append(marked, ggufLogits);

        // HF: one placeholder per image (expanded), and the processor's already-expanded form (n per image).
        int[] single = [.. before, placeholder, .. middle, placeholder, .. after];
        int[] expanded = [.. before, .. Enumerable.Repeat(placeholder, n), .. middle, .. Enumerable.Repeat(placeholder, n), .. after];
        foreach (int[] ids in new[] { single, expanded })
        {
            var prompt = hf.ComposeTokens(ids, [a, b]);
            Assert.Equal(marked.PositionCount(n), prompt.PositionCount(n));
            using var session = hf.CreateSession(new LlavaSessionOptions { ContextSize = 128 });
            var logits = new float[(long)prompt.PositionCount(n) * vocab];
            session.Append(prompt, logits);
            double vsGguf = 0;
            for (long i = 0; i < logits.Length; i++) vsGguf = Math.Max(vsGguf, Math.Abs(logits[i] - ggufLogits[i]));

            using var reference = LlamaCppModel.Load(gguf);
            double vsLlamaCpp = LlavaLlamaCppAgreementTests.MaxAbs(logits,
                reference.EvalLogits(LlavaLlamaCppAgreementTests.ReferenceInputs(session, prompt)), vocab);
            output.WriteLine($"{(ids == single ? "one placeholder per image" : "expanded placeholders")}: HF vs GGUF max abs {vsGguf:E2}, HF vs llama.cpp {vsLlamaCpp:E2}");
            Assert.True(vsGguf <= 1e-4, $"HF vs GGUF composition: max abs {vsGguf:E3}");
            Assert.True(vsLlamaCpp <= 1e-4, $"HF vs llama.cpp: max abs {vsLlamaCpp:E3}");
        }
    }

    [Fact]
    public void PlaceholderRunSplitByText_TakesConsecutiveRowsOfOneImage_LikeMaskedScatter()
    {
        string gguf = RandomModels.GetPath(LlavaFixtures.LlamaText);
        using var hf = LlavaModel.Load(Folder.Value, LlavaFixtures.ClipMmproj());
        int p = hf.PromptFormat.PlaceholderTokenId, n = hf.ImageTokenCount, vocab = hf.Decoder.Config.VocabSize;
        var image = LlavaImage.FromBytes(LlavaFixtures.RandomPng(14), "a.png");
        int[] ids = [1, 450, .. Enumerable.Repeat(p, 5), 322, .. Enumerable.Repeat(p, n - 5), 29889];
        var prompt = hf.ComposeTokens(ids, [image]);
        var rows = prompt.Chunks.OfType<ImageChunk>().Select(c => (c.FirstRow, c.Rows(n))).ToArray();
        Assert.Equal([(0, 5), (5, n - 5)], rows);
        using var session = hf.CreateSession(new LlavaSessionOptions { ContextSize = 64 });
        var logits = new float[(long)ids.Length * vocab];
        session.Append(prompt, logits);
        using var reference = LlamaCppModel.Load(gguf);
        double maxAbs = LlavaLlamaCppAgreementTests.MaxAbs(logits, reference.EvalLogits(LlavaLlamaCppAgreementTests.ReferenceInputs(session, prompt)), vocab);
        output.WriteLine($"split placeholder run vs llama.cpp: max abs {maxAbs:E2}");
        Assert.True(maxAbs <= 1e-4, $"max abs {maxAbs:E3}");
    }

    [Fact]
    public void PlaceholderCountMismatch_IsAClearError()
    {
        using var hf = LlavaModel.Load(Folder.Value, LlavaFixtures.ClipMmproj());
        int p = hf.PromptFormat.PlaceholderTokenId, n = hf.ImageTokenCount;
        var image = LlavaImage.FromBytes(LlavaFixtures.RandomPng(13), "a.png");
        var e = Assert.Throws<LlavaPromptException>(() => hf.ComposeTokens([1, p, 5, p], [image]));
        Assert.Contains($"2 image placeholder id(s) ({p})", e.Message);
        Assert.Contains($"1 × {n} = {n}", e.Message);
        Assert.Throws<LlavaPromptException>(() => hf.ComposeTokens([1, .. Enumerable.Repeat(p, n - 1), 5], [image]));
        Assert.Throws<LlavaPromptException>(() => hf.ComposeTokens([1, 5], [image]));
    }
}
