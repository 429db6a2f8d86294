using System.Text.Json;
using LlavaNative.Model.Formats.Npy;
using LlavaNative.Model.Generation;
using LlavaNative.Model.Llava;
using LlavaNative.TestSupport;
using LlavaNative.TestSupport.Imaging;
using LlavaNative.TestSupport.LlamaCpp;
using LlavaNative.TestSupport.Llava;
using Xunit;
using Xunit.Abstractions;
using static LlavaNative.Reference.Tests.Cli.CliContractTests;

namespace LlavaNative.Reference.Tests.Llava;

/// <summary>`llava eval` and `llava run` with images, as child processes, against llama.cpp with injected image rows.</summary>
public sealed class LlavaCliTests(ITestOutputHelper output)
{
    private static string Text => RandomModels.GetPath(LlavaFixtures.LlamaText);

    [Fact]
    public void EvalWithImgMarks_WritesEveryPositionsLogits_LikeLlamaCppWithInjectedRows()
    {
        string a = LlavaFixtures.RandomPngFile(21), b = LlavaFixtures.RandomPngFile(22, 31, 44);
        string mmproj = LlavaFixtures.ClipMmproj();
        string npy = Path.Combine(LlavaFixtures.TempFolder, $"eval-{Guid.NewGuid():N}.npy");
        var (exit, _, err) = RunCli("eval", "-m", Text, "--mmproj", mmproj, "--image", a, "--image", b,
            "--tokens", "1,325,img,77,img,5", "--logits-out", npy, "-t", "2");
        Assert.True(exit == 0, err);
        var (data, shape) = NpyFile.ReadFloat32(npy);

        // The rows llama.cpp gets: our encoder's output for the same files and the same (default) preprocessing.
        using var model = LlavaModel.LoadGguf(Text, mmproj);
        using var session = model.CreateSession(new LlavaSessionOptions { ContextSize = 64 });
        int n = model.ImageTokenCount, dim = model.Decoder.Config.Dim;
        using var reference = LlamaCppModel.Load(Text);
        float[][] expected = reference.EvalLogits(
            LlamaInput.Tokens(1, 325), LlamaInput.Embeddings(session.EncodeImage(LlavaImage.FromFile(a)), dim),
            LlamaInput.Tokens(77), LlamaInput.Embeddings(session.EncodeImage(LlavaImage.FromFile(b)), dim), LlamaInput.Tokens(5));
        Assert.Equal([4 + 2 * n, reference.VocabSize], shape);
        double maxAbs = LlavaLlamaCppAgreementTests.MaxAbs(data, expected, reference.VocabSize);
        output.WriteLine($"eval CLI vs llama.cpp: {shape[0]} positions, max abs {maxAbs:E2}");
        Assert.True(maxAbs <= 1e-4, $"max abs {maxAbs:E3}");
    }

    [Fact]
    public void RunWithAnImage_GeneratesLlamaCppsGreedyTokens_AndReportsJson()
    {
        string image = LlavaFixtures.RandomPngFile(23);
        string mmproj = LlavaFixtures.ClipMmproj();
        const string Prompt = "What is in the picture?";
        var (exit, stdout, err) = RunCli("run", "-m", Text, "--mmproj", mmproj, "--image", image, "-p", Prompt,
            "-n", "6", "--temp", "0", "--json", "--timings", "-t", "2");
        Assert.True(exit == 0, err);
        using var json = JsonDocument.Parse(stdout);
        var root = json.RootElement;
        Assert.Equal(1, root.GetProperty("images").GetInt32());
        Assert.Equal(16, root.GetProperty("image_tokens").GetInt32());
        Assert.Equal("vicuna-v1", root.GetProperty("chat_template").GetString());
        Assert.True(root.GetProperty("timings").GetProperty("load_ms").GetDouble() > 0);
        Assert.True(root.GetProperty("timings").GetProperty("image_encode_ms").GetDouble() > 0);
        Assert.Contains("image encode:", err);

        // The same prompt in llama.cpp: template text around our image rows, then greedy steps by full re-evaluation.
        using var model = LlavaModel.LoadGguf(Text, mmproj);
        using var session = model.CreateSession(new LlavaSessionOptions { ContextSize = 256 });
        string rendered = model.RenderUserPrompt(model.ChooseChatTemplate(), Prompt, 1);
        Assert.StartsWith("A chat between", rendered);
        var prompt = model.ComposeText(rendered, [LlavaImage.FromFile(image)]);
        Assert.Equal(root.GetProperty("prompt_tokens").GetInt32(), prompt.TextTokenCount);
        using var reference = LlamaCppModel.Load(Text);
        var inputs = LlavaLlamaCppAgreementTests.ReferenceInputs(session, prompt).ToList();
        var expected = new List<int>();
        for (int step = 0; step < 6; step++)
        {
            float[] row = reference.EvalLogits(inputs.ToArray())[^1];
            int best = Sampler.ArgMax(row);
            if (row[best] - row.Where((_, i) => i != best).Max() < 1e-3 || best == reference.EosId) break;
            expected.Add(best);
            inputs.Add(LlamaInput.Tokens(best));
        }
        string expectedText = System.Text.Encoding.UTF8.GetString(expected.SelectMany(t => reference.TokenPiece(t, special: true)).ToArray());
        output.WriteLine($"{expected.Count} greedy tokens compared: '{expectedText}'");
        Assert.StartsWith(expectedText.TrimEnd('\uFFFD'), root.GetProperty("text").GetString());
    }

    [Fact]
    public void RunWithAGifVideo_FeedsTheSampledFramesAsImages()
    {
        // 5 frames of 3×3 pixels, each a different colour index; --frames 2 keeps frames 0 and 4.
        byte[] palette = [0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 0, 0, 255, 255, 255, 0, 255, 255, 255, 255];
        var frames = Enumerable.Range(0, 5).Select(k => new TestGif.Frame(3, 3, Enumerable.Repeat((byte)k, 9).ToArray(), MinCodeSize: 3));
        string gif = Path.Combine(LlavaFixtures.TempFolder, $"video-{Guid.NewGuid():N}.gif");
        File.WriteAllBytes(gif, TestGif.Build(3, 3, [.. palette, .. new byte[24]], frames));
        var (exit, stdout, err) = RunCli("run", "-m", Text, "--mmproj", LlavaFixtures.ClipMmproj(), "--video", gif, "--frames", "2",
            "-p", "What happens?", "-n", "2", "--temp", "0", "--json", "-t", "2", "--chat-template", "llava-1.5");
        Assert.True(exit == 0, err);
        using var json = JsonDocument.Parse(stdout);
        Assert.Equal(2, json.RootElement.GetProperty("images").GetInt32());
        Assert.Equal(32, json.RootElement.GetProperty("image_tokens").GetInt32());
        Assert.Equal("llava-1.5", json.RootElement.GetProperty("chat_template").GetString());
        // "USER: " + 2 × "<image>\n" + "What happens? ASSISTANT:" — the text tokens of exactly that prompt.
        using var model = LlavaModel.LoadGguf(Text, LlavaFixtures.ClipMmproj());
        var frames2 = VideoFrames.Load(gif, 2);
        var prompt = model.ComposeText("USER: <image>\n<image>\nWhat happens? ASSISTANT:", frames2);
        Assert.Equal(prompt.TextTokenCount, json.RootElement.GetProperty("prompt_tokens").GetInt32());

        // A template file instead of a name.
        string templateFile = Path.Combine(LlavaFixtures.TempFolder, $"template-{Guid.NewGuid():N}.jinja");
        File.WriteAllText(templateFile, "{% for m in messages %}<<{{ m['content'] }}>>{% endfor %}{% if add_generation_prompt %}=>{% endif %}");
        (exit, stdout, err) = RunCli("run", "-m", Text, "--mmproj", LlavaFixtures.ClipMmproj(), "--image", LlavaFixtures.RandomPngFile(26),
            "-p", "Q: <image>?", "-n", "1", "--temp", "0", "--json", "-t", "2", "--chat-template", templateFile);
        Assert.True(exit == 0, err);
        using var json2 = JsonDocument.Parse(stdout);
        Assert.Equal(model.ComposeText("<<Q: <image>?>>=>", [LlavaImage.FromFile(LlavaFixtures.RandomPngFile(26))]).TextTokenCount,
            json2.RootElement.GetProperty("prompt_tokens").GetInt32());
    }

    [Fact]
    public void TextOnlyRun_TakesAChatTemplateAndJsonToo()
    {
        var (exit, stdout, err) = RunCli("run", "-m", Text, "-p", "Hi there", "-n", "3", "--temp", "0", "--json", "--chat-template", "vicuna-v1", "-t", "2");
        Assert.True(exit == 0, err);
        using var json = JsonDocument.Parse(stdout);
        using var reference = LlamaCppModel.LoadVocabOnly(Text);
        string rendered = Model.Templates.ChatTemplate.BuiltIn("vicuna-v1").Render([Model.Templates.ChatMessage.FromText("user", "Hi there")],
            new Model.Templates.ChatTemplateOptions { AddGenerationPrompt = true, BosToken = "", EosToken = "" });
        Assert.EndsWith("USER: Hi there ASSISTANT:", rendered);
        Assert.Equal(reference.Tokenize(rendered, addSpecial: true, parseSpecial: true).Length, json.RootElement.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(0, json.RootElement.GetProperty("image_tokens").GetInt32());
    }

    [Fact]
    public void CommandLineMistakes_ExitWith2()
    {
        string image = LlavaFixtures.RandomPngFile(24);
        string mmproj = LlavaFixtures.ClipMmproj();
        string npy = Path.Combine(LlavaFixtures.TempFolder, "never.npy");
        var (exit, _, err) = RunCli("eval", "-m", Text, "--mmproj", mmproj, "--image", image, "--tokens", "1,img,5,img", "--logits-out", npy);
        Assert.Equal(2, exit);
        Assert.Contains("2 'img' mark(s) but 1 --image", err);
        (exit, _, err) = RunCli("eval", "-m", Text, "--tokens", "1,img,5", "--logits-out", npy);
        Assert.Equal(2, exit);
        (exit, _, err) = RunCli("run", "-m", Text, "--image", image, "-p", "hi");
        Assert.Equal(2, exit);
        Assert.Contains("--mmproj", err);
        (exit, _, err) = RunCli("run", "-m", Text, "--mmproj", mmproj, "--image", image, "-p", "<image> and <image>", "--chat-template", "none", "-n", "1");
        Assert.Equal(2, exit);
        Assert.Contains("2 image marker(s)", err);
        (exit, _, err) = RunCli("run", "-m", Text, "--mmproj", mmproj, "--image", image, "-p", "x", "--image-mode", "zoom");
        Assert.Equal(2, exit);
        Assert.False(File.Exists(npy));
    }

    [Fact]
    public void BadInputs_ExitWith1_AndNameTheProblem()
    {
        string image = LlavaFixtures.RandomPngFile(25);
        string mmproj = LlavaFixtures.ClipMmproj();
        string missing = Path.Combine(LlavaFixtures.TempFolder, "no-such-image.png");
        var (exit, _, err) = RunCli("run", "-m", Text, "--mmproj", mmproj, "--image", missing, "-p", "x", "-n", "1");
        Assert.Equal(1, exit);
        Assert.Contains("no-such-image.png", err);

        string notAnImage = Path.Combine(LlavaFixtures.TempFolder, "notes.png");
        File.WriteAllText(notAnImage, "just some text, not pixels");
        (exit, _, err) = RunCli("run", "-m", Text, "--mmproj", mmproj, "--image", notAnImage, "-p", "x", "-n", "1");
        Assert.Equal(1, exit);
        Assert.Contains("notes.png", err);
        Assert.Contains("unrecognised image format", err);

        string wide = LlavaFixtures.ClipMmproj(textDim: 96);
        (exit, _, err) = RunCli("run", "-m", Text, "--mmproj", wide, "--image", image, "-p", "x", "-n", "1");
        Assert.Equal(1, exit);
        Assert.Contains(Path.GetFileName(wide), err);
        Assert.Contains(Path.GetFileName(Text), err);
        Assert.Contains("96", err);

        (exit, _, err) = RunCli("run", "-m", Text, "--mmproj", mmproj, "--image", image, "--image", image, "-p", "x", "-n", "1", "-c", "40");
        Assert.Equal(1, exit);
        Assert.Contains("32 image positions", err);
        Assert.Contains("of the 40-position context are free", err);
    }
}
