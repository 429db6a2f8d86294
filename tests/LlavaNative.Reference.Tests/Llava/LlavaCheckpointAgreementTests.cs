using LlavaNative.Model.Formats.Npy;
using LlavaNative.Model.Imaging;
using LlavaNative.Model.Llava;
using LlavaNative.Reference.Tests.Cli;
using LlavaNative.Reference.Tests.PyTorch;
using LlavaNative.TestSupport.LlamaCpp;
using LlavaNative.TestSupport.Llava;
using Xunit;
using Xunit.Abstractions;

namespace LlavaNative.Reference.Tests.Llava;

/// <summary>
/// Whole LLaVA checkpoint folders (decoder + tokenizer + tower + projector, <see cref="LlavaFixtures.CheckpointFolder"/>)
/// through two genuinely different paths: (a) the folder itself (safetensors decoder, HF tower, placeholder ids or the
/// original −200-sentinel / patch-token placement, preprocessor_config.json) and (b) <c>llava convert</c> to a text GGUF
/// plus an mmproj GGUF (rows at markers, mtmd style), with the same preprocessing set explicitly. Logits of every
/// position must agree, and llama.cpp on the converted text GGUF with our image rows injected must agree with both.
/// </summary>
public sealed class LlavaCheckpointAgreementTests(ITestOutputHelper output)
{
    /// <summary>F32 weights everywhere: the text-core tolerance.</summary>
    private const double F32Tolerance = 1e-4;

    /// <summary>
    /// F16 conversion (text matrices F16, mmproj F16) vs the F32 folder: weight rounding only (2⁻¹¹ relative); the
    /// tiny random models have logit std ≈ 3, so a few 1e-2 (verification.md measures 1.6e-2 for llama.cpp F16 vs exact math).
    /// </summary>
    private const double F16Tolerance = 6e-2;

    public static TheoryData<string> LlavaHfPairs => new() { "llama+clip", "qwen2+siglip" };

    private static string Temp(string name) => Path.Combine(LlavaFixtures.TempFolder, $"{name}-{Guid.NewGuid():N}");

    /// <summary><c>llava convert</c> with <c>--mmproj-out</c>; returns (text GGUF, mmproj GGUF).</summary>
    private (string Text, string Mmproj) Convert(string folder, string? tower, string type)
    {
        string text = Temp("text") + ".gguf", mmproj = Temp("mmproj") + ".gguf";
        var args = new List<string> { "convert", "-m", folder, "-o", text, "--type", type, "--mmproj-out", mmproj };
        if (tower is not null) args.AddRange(["--vision-tower", tower]);
        var (exit, _, err) = CliContractTests.RunCli([.. args]);
        Assert.True(exit == 0, err);
        output.WriteLine(err.Trim());
        return (text, mmproj);
    }

    /// <summary>Every position's logits; <paramref name="preprocessing"/> is set explicitly so both paths see the same pixels.</summary>
    private static float[] Evaluate(LlavaModel model, LlavaPrompt prompt, ImagePreprocessorConfig preprocessing, out LlavaSession session)
    {
        session = model.CreateSession(new LlavaSessionOptions { ContextSize = 256, Preprocessing = preprocessing });
        var logits = new float[(long)prompt.PositionCount(model.ImageTokenCount) * model.Decoder.Config.VocabSize];
        session.Append(prompt, logits);
        return logits;
    }

    private static double MaxAbs(float[] a, float[] b)
    {
        Assert.Equal(a.Length, b.Length);
        double max = 0;
        for (long i = 0; i < a.Length; i++) max = Math.Max(max, Math.Abs((double)a[i] - b[i]));
        return max;
    }

    /// <summary>The mtmd form of a placeholder prompt: the text between placeholder ids as token chunks, an image chunk per id.</summary>
    private static LlavaPrompt MarkerPrompt(int[] ids, int placeholder, IReadOnlyList<LlavaImage> images)
    {
        var chunks = new List<LlavaPromptChunk>();
        var run = new List<int>();
        int k = 0;
        foreach (int id in ids)
        {
            if (id != placeholder) { run.Add(id); continue; }
            if (run.Count > 0) chunks.Add(new TokenChunk(run.ToArray()));
            run.Clear();
            chunks.Add(new ImageChunk(images[k++]));
        }
        if (run.Count > 0) chunks.Add(new TokenChunk(run.ToArray()));
        Assert.Equal(images.Count, k);
        return new LlavaPrompt(chunks);
    }

    [Theory]
    [MemberData(nameof(LlavaHfPairs))]
    public void LlavaHfFolder_AndItsConversion_GiveTheSameLogits_AndLlamaCppAgrees(string pair)
    {
        var (folder, _) = LlavaFixtures.CheckpointFolder(pair);
        int placeholder = LlavaFixtures.CheckpointImageToken(pair);
        using var hf = LlavaModel.Load(folder, mmproj: null);
        Assert.Equal(ImagePlacement.PlaceholderToken, hf.PromptFormat.Placement);
        Assert.Equal(placeholder, hf.PromptFormat.PlaceholderTokenId);
        var (text, mmproj) = Convert(folder, null, "f32");
        using var gguf = LlavaModel.LoadGguf(text, mmproj);
        Assert.Equal(ImagePlacement.Embeddings, gguf.PromptFormat.Placement);
        Assert.Equal(hf.ImageTokenCount, gguf.ImageTokenCount);

        var a = LlavaImage.FromBytes(LlavaFixtures.RandomPng(21), "a.png");
        var b = LlavaImage.FromBytes(LlavaFixtures.RandomPng(22, 25, 47), "b.png");
        // The processor's text: '<image>' is an added special token of the folder's tokenizer (the placeholder id).
        const string Prompt = "USER: <image>\nWhat differs from <image>? ASSISTANT:";
        int[] ids = hf.Tokenizer!.Encode(Prompt, addSpecial: true, parseSpecial: true);
        Assert.Equal(2, ids.Count(id => id == placeholder));
        // The converted GGUF's tokenizer (llama.cpp's reading of it) gives the same ids, '<image>' included.
        using (var vocab = LlamaCppModel.LoadVocabOnly(text))
            Assert.Equal(ids, vocab.Tokenize(Prompt, addSpecial: true, parseSpecial: true));

        var preprocessing = hf.Preprocessing;
        var hfPrompt = hf.ComposeTokens(ids, [a, b]);
        var ggufPrompt = MarkerPrompt(ids, placeholder, [a, b]);
        float[] ours = Evaluate(hf, hfPrompt, preprocessing, out var hfSession);
        float[] converted = Evaluate(gguf, ggufPrompt, preprocessing, out var ggufSession);
        using (hfSession)
        using (ggufSession)
        {
            double vsConverted = MaxAbs(ours, converted);
            // The image rows themselves: HF tower + projector vs the mmproj's.
            double rows = MaxAbs(hfSession.EncodeImage(a), ggufSession.EncodeImage(a));

            using var reference = LlamaCppModel.Load(text);
            Assert.Equal(hf.Decoder.Config.VocabSize, reference.VocabSize);
            double vsLlamaCpp = LlavaLlamaCppAgreementTests.MaxAbs(converted,
                reference.EvalLogits(LlavaLlamaCppAgreementTests.ReferenceInputs(ggufSession, ggufPrompt)), reference.VocabSize);
            output.WriteLine($"{pair}: {ids.Length - 2 + 2 * hf.ImageTokenCount} positions, vocab {reference.VocabSize}; image rows HF vs mmproj max abs {rows:E2}; " +
                             $"logits folder vs conversion {vsConverted:E2}, conversion vs llama.cpp (rows injected) {vsLlamaCpp:E2}");
            Assert.True(rows <= F32Tolerance, $"image rows differ by {rows:E3}");
            Assert.True(vsConverted <= F32Tolerance, $"folder vs conversion: max abs {vsConverted:E3}");
            Assert.True(vsLlamaCpp <= F32Tolerance, $"conversion vs llama.cpp: max abs {vsLlamaCpp:E3}");
        }
    }

    [Fact]
    public void F16Conversion_StaysWithinHalfPrecisionOfTheFolder()
    {
        var (folder, _) = LlavaFixtures.CheckpointFolder("llama+clip");
        using var hf = LlavaModel.Load(folder, mmproj: null);
        var (text, mmproj) = Convert(folder, null, "f16");
        using var gguf = LlavaModel.LoadGguf(text, mmproj);
        var image = LlavaImage.FromBytes(LlavaFixtures.RandomPng(23), "a.png");
        int[] ids = hf.Tokenizer!.Encode("USER: <image>\nWhat is this? ASSISTANT:", addSpecial: true, parseSpecial: true);
        var preprocessing = hf.Preprocessing;
        float[] ours = Evaluate(hf, hf.ComposeTokens(ids, [image]), preprocessing, out var s1);
        float[] half = Evaluate(gguf, MarkerPrompt(ids, hf.PromptFormat.PlaceholderTokenId, [image]), preprocessing, out var s2);
        s1.Dispose();
        s2.Dispose();
        double maxAbs = MaxAbs(ours, half);
        output.WriteLine($"F16 conversion vs F32 folder: max abs {maxAbs:E2} over {ours.Length / hf.Decoder.Config.VocabSize} positions");
        Assert.True(maxAbs <= F16Tolerance, $"max abs {maxAbs:E3}");
        Assert.True(maxAbs > 0, "an F16 conversion that equals F32 bit for bit did not round anything");
    }

    [Fact]
    public void EvalCli_OnTheFolder_GivesTheLogitsOfTheConversion()
    {
        var (folder, _) = LlavaFixtures.CheckpointFolder("llama+clip");
        string image = LlavaFixtures.RandomPngFile(24);
        int[] before = [1, 3148, 1001, 29901], after = [13, 5618, 338, 445, 29973];
        string npy = Temp("eval") + ".npy";
        var (exit, _, err) = CliContractTests.RunCli("eval", "-m", folder, "--image", image,
            "--tokens", $"{string.Join(",", before)},img,{string.Join(",", after)}", "--logits-out", npy, "-t", "2");
        Assert.True(exit == 0, err);
        var (data, shape) = NpyFile.ReadFloat32(npy);

        using var hf = LlavaModel.Load(folder, mmproj: null);
        var (text, mmproj) = Convert(folder, null, "f32");
        using var gguf = LlavaModel.LoadGguf(text, mmproj);
        var prompt = new LlavaPrompt([new TokenChunk(before), new ImageChunk(LlavaImage.FromFile(image)), new TokenChunk(after)]);
        float[] expected = Evaluate(gguf, prompt, hf.Preprocessing, out var session);
        session.Dispose();
        Assert.Equal([before.Length + hf.ImageTokenCount + after.Length, hf.Decoder.Config.VocabSize], shape);
        double maxAbs = MaxAbs(data, expected);
        output.WriteLine($"llava eval -m folder vs the converted GGUF pair: max abs {maxAbs:E2}");
        Assert.True(maxAbs <= F32Tolerance, $"max abs {maxAbs:E3}");
    }

    [Fact]
    public void OriginalLlava_VicunaPromptWithSentinelPlacement_MatchesConversionAndLlamaCpp_AndTheCli()
    {
        var (folder, tower) = LlavaFixtures.CheckpointFolder("original");
        using var model = LlavaModel.Load(folder, mmproj: null, visionTower: tower);
        Assert.Equal(ImagePlacement.Embeddings, model.PromptFormat.Placement); // IMAGE_TOKEN_INDEX −200: no id in the vocabulary
        Assert.Equal("vicuna-v1", model.DefaultChatTemplateName);
        Assert.Equal(64, model.Decoder.Config.Dim); // the top-level Llama fields, not LlamaConfig's defaults
        Assert.Equal(2, model.Decoder.Config.Layers);

        var image = LlavaImage.FromBytes(LlavaFixtures.RandomPng(25, 50, 20), "wide.png");
        string rendered = model.RenderUserPrompt(model.ChooseChatTemplate(), "What is unusual here?", 1);
        Assert.StartsWith("A chat between a curious", rendered, StringComparison.Ordinal);
        Assert.Contains("USER: <image>\nWhat is unusual here? ASSISTANT:", rendered, StringComparison.Ordinal);
        var prompt = model.ComposeText(rendered, [image]);
        Assert.Single(prompt.Chunks.OfType<ImageChunk>());
        Assert.IsType<TokenChunk>(prompt.Chunks[0]);
        Assert.IsType<TokenChunk>(prompt.Chunks[^1]);

        var preprocessing = model.Preprocessing;
        Assert.Equal(ImageFitMode.Pad, model.Preprocessing.Mode); // image_aspect_ratio "pad": expand2square
        float[] ours = Evaluate(model, prompt, preprocessing, out var session);
        var (text, mmproj) = Convert(folder, tower, "f32");
        using var gguf = LlavaModel.LoadGguf(text, mmproj);
        float[] converted = Evaluate(gguf, prompt, preprocessing, out var ggufSession);
        using (session)
        using (ggufSession)
        {
            using var reference = LlamaCppModel.Load(text);
            double vsLlamaCpp = LlavaLlamaCppAgreementTests.MaxAbs(ours,
                reference.EvalLogits(LlavaLlamaCppAgreementTests.ReferenceInputs(session, prompt)), reference.VocabSize);
            double vsConverted = MaxAbs(ours, converted);
            output.WriteLine($"original LLaVA ({prompt.PositionCount(model.ImageTokenCount)} positions): folder vs llama.cpp (rows injected) {vsLlamaCpp:E2}, vs conversion {vsConverted:E2}");
            Assert.True(vsLlamaCpp <= F32Tolerance, $"folder vs llama.cpp: max abs {vsLlamaCpp:E3}");
            Assert.True(vsConverted <= F32Tolerance, $"folder vs conversion: max abs {vsConverted:E3}");

            // llava eval -m folder --vision-tower clip, the image at the same place.
            string png = Path.Combine(LlavaFixtures.TempFolder, $"wide-{Guid.NewGuid():N}.png");
            File.WriteAllBytes(png, LlavaFixtures.RandomPng(25, 50, 20));
            var tokens = prompt.Chunks.Select(c => c is TokenChunk t ? string.Join(",", t.Ids) : "img");
            string npy = Temp("eval-original") + ".npy";
            var (exit, _, err) = CliContractTests.RunCli("eval", "-m", folder, "--vision-tower", tower!, "--image", png,
                "--tokens", string.Join(",", tokens), "--logits-out", npy, "-t", "2");
            Assert.True(exit == 0, err);
            double cli = MaxAbs(NpyFile.ReadFloat32(npy).Data, ours);
            output.WriteLine($"llava eval --vision-tower vs in-process: max abs {cli:E2}");
            Assert.True(cli <= 1e-5, $"CLI vs in-process: max abs {cli:E3}");

            // llava run -m folder --vision-tower clip: the vicuna-v1 prompt above, greedy, as the session generates it.
            (exit, string stdout, err) = CliContractTests.RunCli("run", "-m", folder, "--vision-tower", tower!, "--image", png,
                "-p", "What is unusual here?", "-n", "3", "--temp", "0", "--json", "-t", "2");
            Assert.True(exit == 0, err);
            using var json = System.Text.Json.JsonDocument.Parse(stdout);
            var root = json.RootElement;
            Assert.Equal("vicuna-v1", root.GetProperty("chat_template").GetString());
            Assert.Equal(model.ImageTokenCount, root.GetProperty("image_tokens").GetInt32());
            Assert.Equal(prompt.TextTokenCount, root.GetProperty("prompt_tokens").GetInt32());
            string generated = string.Concat(session.Generate(new Model.Generation.GenerationOptions
            {
                MaxTokens = 3, Sampling = Model.Generation.SamplingOptions.Greedy,
            }).Select(p => p.Text));
            Assert.Equal(generated, root.GetProperty("text").GetString());
        }
    }

    [Fact]
    public void OriginalLlavaV1_ImStartEnd_RowsReplaceThePatchTokens_AsLlamaCppSeesThem()
    {
        var (folder, tower) = LlavaFixtures.CheckpointFolder("original-im-start-end");
        using var model = LlavaModel.Load(folder, mmproj: null, visionTower: tower);
        Assert.Equal(ImagePlacement.PatchTokens, model.PromptFormat.Placement);
        Assert.Equal((32000, 32001, 32002), (model.PromptFormat.PatchTokenId, model.PromptFormat.StartTokenId, model.PromptFormat.EndTokenId));
        var image = LlavaImage.FromBytes(LlavaFixtures.RandomPng(26), "a.png");
        var prompt = model.ComposeText("Describe <image> briefly.", [image]);
        var chunks = prompt.Chunks;
        int at = chunks.ToList().FindIndex(c => c is ImageChunk);
        Assert.Equal([32001], ((TokenChunk)chunks[at - 1]).Ids);
        Assert.Equal([32002], ((TokenChunk)chunks[at + 1]).Ids);
        float[] ours = Evaluate(model, prompt, model.Preprocessing, out var session);
        using (session)
        {
            var (text, _) = Convert(folder, tower, "f32");
            using var reference = LlamaCppModel.Load(text);
            Assert.Equal(32003, reference.VocabSize);
            double maxAbs = LlavaLlamaCppAgreementTests.MaxAbs(ours,
                reference.EvalLogits(LlavaLlamaCppAgreementTests.ReferenceInputs(session, prompt)), reference.VocabSize);
            output.WriteLine($"LLaVA v1 (linear projector, im_start/im_end): folder vs llama.cpp {maxAbs:E2}");
            Assert.True(maxAbs <= F32Tolerance, $"max abs {maxAbs:E3}");
        }
    }

    [Fact]
    public void OriginalLlava_PyTorchBinWeights_GiveTheSafetensorsLogits()
    {
        var (folder, tower) = LlavaFixtures.CheckpointFolder("original");
        string bin = Temp("original-bin");
        TorchSave.Run("model", folder, bin, "1");
        foreach (string file in Directory.GetFiles(folder).Where(f => !f.EndsWith(".json", StringComparison.Ordinal) && !f.EndsWith(".safetensors", StringComparison.Ordinal)))
            File.Copy(file, Path.Combine(bin, Path.GetFileName(file)));
        Assert.False(Model.Formats.HuggingFace.HuggingFaceCheckpoint.HasSafetensors(bin));

        var image = LlavaImage.FromBytes(LlavaFixtures.RandomPng(27), "a.png");
        float[] Logits(string f)
        {
            using var model = LlavaModel.Load(f, mmproj: null, visionTower: tower);
            var prompt = model.ComposeText("USER: <image>\nWhat? ASSISTANT:", [image]);
            float[] logits = Evaluate(model, prompt, model.Preprocessing, out var session);
            session.Dispose();
            return logits;
        }
        double maxAbs = MaxAbs(Logits(folder), Logits(bin));
        output.WriteLine($"pytorch_model.bin vs safetensors: max abs {maxAbs:E2}");
        Assert.Equal(0, maxAbs); // the same F32 values through another container: bit for bit
    }
}
