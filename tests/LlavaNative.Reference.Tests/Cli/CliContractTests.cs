using System.Diagnostics;
using System.Text.Json;
using LlavaNative.Model.Formats.Npy;
using LlavaNative.TestSupport;
using LlavaNative.TestSupport.LlamaCpp;
using Xunit;

namespace LlavaNative.Reference.Tests.Cli;

/// <summary>The `llava` verbs whose output automated checks rely on, run as a child process and compared with llama.cpp.</summary>
public sealed class CliContractTests
{
    internal static (int Exit, string Out, string Err) RunCli(params string[] args)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "llava.dll");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(120_000)) { p.Kill(true); throw new TimeoutException($"llava {string.Join(' ', args)} did not finish"); }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    [Fact]
    public void EvalWritesEveryPositionsLogitsLikeLlamaCpp()
    {
        string model = RandomModels.TinyLlama;
        int[] tokens = [1, 450, 4996, 17354, 1701, 29916];
        string npy = Path.Combine(Path.GetTempPath(), $"llava-eval-{Environment.ProcessId}.npy");
        var (exit, _, err) = RunCli("eval", "-m", model, "--tokens", string.Join(",", tokens), "--logits-out", npy, "-t", "2");
        Assert.True(exit == 0, err);
        var (data, shape) = NpyFile.ReadFloat32(npy);
        File.Delete(npy);
        using var reference = LlamaCppModel.Load(model);
        Assert.Equal([tokens.Length, reference.VocabSize], shape);
        var expected = reference.EvalLogits(tokens);
        double maxAbs = 0;
        for (int t = 0; t < tokens.Length; t++)
            for (int v = 0; v < reference.VocabSize; v++)
                maxAbs = Math.Max(maxAbs, Math.Abs(data[t * reference.VocabSize + v] - expected[t][v]));
        Assert.True(maxAbs <= 1e-4, $"max abs {maxAbs:E3}");
    }

    [Theory]
    [InlineData("Hello world, this is   a test.\n")]
    [InlineData("<|im_start|>user\nhi<|im_end|>")]
    public void TokenizeMatchesLlamaCpp(string text)
    {
        string model = RandomModels.TinyQwen2;
        var (exit, stdout, err) = RunCli("tokenize", "-m", model, "--text", text);
        Assert.True(exit == 0, err);
        using var reference = LlamaCppModel.LoadVocabOnly(model);
        Assert.Equal(string.Join(",", reference.Tokenize(text, addSpecial: true, parseSpecial: true)), stdout.Trim());

        (exit, stdout, err) = RunCli("tokenize", "-m", model, "--text", text, "--json");
        Assert.True(exit == 0, err);
        Assert.Equal(JsonValueKind.Array, JsonDocument.Parse(stdout).RootElement.ValueKind);
    }

    [Fact]
    public void RunStreamsGreedyTextLikeLlamaCppsGreedyTokens()
    {
        string model = RandomModels.TinyLlama;
        const string prompt = "The quick brown fox";
        var (exit, stdout, err) = RunCli("run", "-m", model, "-p", prompt, "-n", "12", "--temp", "0", "-t", "2");
        Assert.True(exit == 0, err);
        using var reference = LlamaCppModel.Load(model);
        int[] promptIds = reference.Tokenize(prompt, addSpecial: true, parseSpecial: true);
        var greedy = reference.GreedyContinuation(promptIds, 12);
        // Compare only up to the first near-tie: beyond it either continuation is legitimate.
        int n = 0;
        while (n < greedy.Tokens.Length && greedy.Margins[n] > 1e-3 && !IsEog(reference, greedy.Tokens[n])) n++;
        var expected = greedy.Tokens.Take(n).SelectMany(t => reference.TokenPiece(t, special: true)).ToArray();
        string expectedText = System.Text.Encoding.UTF8.GetString(expected);
        Assert.StartsWith(expectedText.TrimEnd('\uFFFD'), stdout);
    }

    private static bool IsEog(LlamaCppModel m, int token) => token == m.EosId;

    [Fact]
    public void BenchJsonReportsBothSpeeds()
    {
        var (exit, stdout, err) = RunCli("bench", "-m", RandomModels.TinyLlama, "-p", "16", "-n", "4", "--reps", "1", "-t", "2", "--json");
        Assert.True(exit == 0, err);
        var json = JsonDocument.Parse(stdout).RootElement;
        Assert.True(json.GetProperty("pp_tok_s").GetDouble() > 0);
        Assert.True(json.GetProperty("tg_tok_s").GetDouble() > 0);
    }

    /// <summary>The table has llama-bench's columns, backend included, and one pp and one tg row with positive speeds.</summary>
    [Fact]
    public void BenchTableNamesTheBackend()
    {
        var (exit, stdout, err) = RunCli("bench", "-m", RandomModels.TinyLlama, "-p", "8", "-n", "2", "--reps", "1", "-t", "1", "--backend", "cpu");
        Assert.True(exit == 0, err);
        string[] lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        string[] header = lines[0].Split('|', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal(["model", "size", "backend", "threads", "test", "t/s"], header);
        foreach (string test in new[] { "pp8", "tg2" })
        {
            string[] row = lines.Select(l => l.Split('|', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                .Single(cells => cells.Length == 6 && cells[4] == test);
            Assert.Equal("CPU", row[2]);
            Assert.Equal("1", row[3]);
            double speed = double.Parse(row[5].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
            Assert.True(speed > 0, $"{test}: {row[5]}");
        }
    }

    [Fact]
    public void InfoAndBadInputExitCodes()
    {
        var (exit, stdout, _) = RunCli("info", "-m", RandomModels.TinyLlama);
        Assert.Equal(0, exit);
        Assert.Contains("blk.0.attn_q.weight", stdout);
        Assert.Contains("llama.embedding_length", stdout);

        string missing = Path.Combine(Path.GetTempPath(), "does-not-exist.gguf");
        (exit, _, string err) = RunCli("info", "-m", missing);
        Assert.Equal(1, exit);
        Assert.Contains("does-not-exist.gguf", err);
        Assert.DoesNotContain("   at ", err); // no stack trace

        (exit, _, err) = RunCli("run", "--bogus");
        Assert.Equal(2, exit);
        Assert.Contains("--bogus", err);
    }

    [Fact]
    public void InfoReadsHuggingFaceFoldersAndSafetensorsFiles()
    {
        string folder = TinyLlava.TinyLlavaFiles.HfFolder;
        var (exit, stdout, err) = RunCli("info", "-m", folder);
        Assert.True(exit == 0, err);
        Assert.Contains("model_type llava", stdout);
        Assert.Contains("text:    llama, vocab 512", stdout);
        Assert.Contains("vision:  clip_vision_model, image 48, patch 16", stdout);
        Assert.Contains("image_token_index 3", stdout);
        Assert.Contains("tokenizer.model", stdout);
        // the table lists every tensor of the safetensors header with its dtype, shape and size
        Assert.Matches(@"language_model\.lm_head\.weight +F32 +\[512, 128\] +262,144", stdout);
        using (var weights = LlavaNative.Model.Formats.Safetensors.SafetensorsFile.Open(Path.Combine(folder, "model.safetensors")))
            Assert.Contains($"tensors:   {weights.Tensors.Count}\n", stdout.ReplaceLineEndings("\n"));

        (exit, stdout, err) = RunCli("info", "-m", Path.Combine(folder, "model.safetensors"));
        Assert.True(exit == 0, err);
        Assert.Contains("format:    safetensors", stdout);
        Assert.Contains("multi_modal_projector.linear_1.weight", stdout);

        string empty = Directory.CreateTempSubdirectory("llava-info-").FullName;
        try
        {
            (exit, _, err) = RunCli("info", "-m", empty);
            Assert.Equal(1, exit);
            Assert.Contains("no weights in the folder", err);
            Assert.DoesNotContain("   at ", err);
        }
        finally { Directory.Delete(empty, true); }
    }
}

/// <summary>`llava encode-image` and `llava image-info` as child processes: shapes, the preprocessed tensor, errors.</summary>
public sealed class CliImageContractTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("llava-cli-image-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private string WritePpm(int width, int height)
    {
        var r = new Random(5);
        var header = System.Text.Encoding.ASCII.GetBytes($"P6\n{width} {height}\n255\n");
        var body = new byte[width * height * 3];
        r.NextBytes(body);
        string path = Path.Combine(_dir, "image.ppm");
        File.WriteAllBytes(path, header.Concat(body).ToArray());
        return path;
    }

    [Fact]
    public void EncodeImageWritesEmbeddingsAndPixelsOfTheDocumentedShapes()
    {
        var model = LlavaNative.TestSupport.Vision.RandomVisionModel.Create(LlavaNative.TestSupport.Vision.RandomVisionSpec.TinyClip);
        string mmproj = Path.Combine(_dir, "mmproj.gguf");
        model.WriteGguf(mmproj, LlavaNative.TestSupport.Vision.MmprojLayout.Legacy);
        string image = WritePpm(90, 70);
        string feats = Path.Combine(_dir, "feats.npy"), pixels = Path.Combine(_dir, "pixels.npy");
        var (exit, _, err) = CliContractTests.RunCli("encode-image", "--mmproj", mmproj, "--image", image, "--out", feats,
            "--pixels-out", pixels, "--image-mode", "crop", "-t", "2");
        Assert.True(exit == 0, err);

        using var encoder = LlavaNative.Model.Vision.ImageEncoder.LoadGguf(mmproj);
        var (f, fShape) = NpyFile.ReadFloat32(feats);
        Assert.Equal([encoder.ImageTokenCount, encoder.EmbeddingLength], fShape);
        Assert.All(f, v => Assert.True(float.IsFinite(v)));
        int size = encoder.VisionConfig.ImageSize;
        var (p, pShape) = NpyFile.ReadFloat32(pixels);
        Assert.Equal([3, size, size], pShape);
        // The CLI's pixels are exactly the documented preprocessing (itself bit-exact with Pillow, see PreprocessingAgreementTests).
        var expected = LlavaNative.Model.Imaging.ImagePreprocessor.Process(
            LlavaNative.Model.Imaging.ImageDecoder.Decode(image).First,
            LlavaNative.Model.Imaging.ImagePreprocessorConfig.Clip(size));
        Assert.Equal(expected, p);
    }

    [Fact]
    public void ImageInfoPrintsWhatTheEngineSeesAndFailsCleanlyOnBrokenFiles()
    {
        string image = WritePpm(31, 17);
        string npy = Path.Combine(_dir, "rgb.npy");
        var (exit, stdout, err) = CliContractTests.RunCli("image-info", "--image", image);
        Assert.True(exit == 0, err);
        Assert.Contains("31x17", stdout);
        Assert.Contains("PNM", stdout);

        string broken = Path.Combine(_dir, "broken.png");
        File.WriteAllBytes(broken, [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13]);
        (exit, _, err) = CliContractTests.RunCli("image-info", "--image", broken);
        Assert.Equal(1, exit);
        Assert.Contains("broken.png", err);
        Assert.DoesNotContain("   at ", err);
    }
}
