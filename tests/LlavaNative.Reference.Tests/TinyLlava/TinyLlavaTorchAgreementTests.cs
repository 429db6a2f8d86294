using System.Text.Json;
using LlavaNative.Model.Formats.Npy;
using LlavaNative.Model.Generation;
using LlavaNative.Model.Imaging;
using LlavaNative.Model.Llava;
using Xunit;
using Xunit.Abstractions;

namespace LlavaNative.Reference.Tests.TinyLlava;

/// <summary>
/// The shipped tiny LLaVA through both of its formats — the llava-hf folder (own vision tower) and the F32 GGUF pair
/// our converter made from it — against the trainer's PyTorch model: reference tensors computed in float64 from the
/// stored weights (tests/data/tiny-llava-eval/reference, export.py) and torch's greedy float32 answers on the
/// held-out set (torch-answers.json).
/// </summary>
public sealed class TinyLlavaTorchAgreementTests(ITestOutputHelper output)
{
    /// <summary>F32 weights, float32 engine arithmetic vs float64 torch: embeddings and logits within 1e-4 max abs.</summary>
    private const double TensorTolerance = 1e-4;

    /// <summary>Normalised pixels: (x/255 − mean)/std in float32 vs float64 rounded to float32 — a few ulp.</summary>
    private const double PixelTolerance = 1e-6;

    public static TheoryData<string> Formats => new() { "hf", "gguf" };

    [Theory]
    [MemberData(nameof(Formats))]
    public void ReferenceCases_PromptIdsPixelsEmbeddingsAndEveryLogit_MatchTorch(string format)
    {
        using var model = TinyLlavaFiles.Load(format);
        var template = model.ChooseChatTemplate();
        int imageId = ImageTokenIndex(), vocab = model.Decoder.Config.VocabSize, dim = model.Decoder.Config.Dim;
        using var casesDoc = JsonDocument.Parse(File.ReadAllText(Path.Combine(TinyLlavaFiles.ReferenceFolder, "cases.json")));
        int checkedCases = 0;
        foreach (var c in casesDoc.RootElement.GetProperty("cases").EnumerateArray())
        {
            string name = c.GetProperty("name").GetString()!;
            string prompt = c.GetProperty("prompt").GetString()!;
            var images = c.GetProperty("images").EnumerateArray()
                .Select(e => LlavaImage.FromFile(Path.Combine(TinyLlavaFiles.EvalFolder, e.GetString()!))).ToList();
            var files = c.GetProperty("files");

            // The question goes through OUR chat template, which must rebuild the training prompt byte for byte.
            Assert.True(prompt.StartsWith("USER: ", StringComparison.Ordinal) && prompt.EndsWith(" ASSISTANT:", StringComparison.Ordinal), $"{name}: prompt '{prompt}'");
            string question = prompt["USER: ".Length..^" ASSISTANT:".Length].Replace("<image>\n", "");
            string rendered = model.RenderUserPrompt(template, question, images.Count);
            Assert.Equal(prompt, rendered);

            // Token ids with every image row written as the placeholder id, as the HF processor expands them.
            var composed = model.ComposeText(rendered, images);
            int[] ids = ExpandedIds(composed, model.ImageTokenCount, imageId);
            int[] expectedIds = c.GetProperty("input_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            Assert.Equal(expectedIds, ids);

            using var session = model.CreateSession(new LlavaSessionOptions { ContextSize = 64 });
            if (images.Count > 0)
            {
                var pixelFiles = files.GetProperty("pixel_values").EnumerateArray().Select(e => e.GetString()!).ToArray();
                var (embedsRef, embedsShape) = NpyFile.ReadFloat32(Path.Combine(TinyLlavaFiles.ReferenceFolder, files.GetProperty("image_embeds").GetString()!));
                Assert.Equal([images.Count, model.ImageTokenCount, dim], embedsShape);
                for (int k = 0; k < images.Count; k++)
                {
                    float[] pixels = ImagePreprocessor.Process(images[k].Decode(), session.Preprocessing);
                    var (pixelsRef, pixelsShape) = NpyFile.ReadFloat32(Path.Combine(TinyLlavaFiles.ReferenceFolder, pixelFiles[k]));
                    Assert.Equal(pixelsRef.Length, pixels.Length);
                    double pixelDiff = MaxAbs(pixels, pixelsRef);
                    float[] embeds = model.Encoder.EncodeAndProject(pixels);
                    double embedDiff = MaxAbs(embeds, embedsRef.AsSpan(k * embeds.Length, embeds.Length));
                    Report($"{format} {name} image {k}: pixels [{string.Join(", ", pixelsShape)}] max abs {pixelDiff:E2}, projected embeddings max abs {embedDiff:E2}");
                    Assert.True(pixelDiff <= PixelTolerance, $"{format} {name} image {k}: pixels max abs {pixelDiff:E3} > {PixelTolerance:E0}");
                    Assert.True(embedDiff <= TensorTolerance, $"{format} {name} image {k}: embeddings max abs {embedDiff:E3} > {TensorTolerance:E0}");
                }
            }

            var (logitsRef, logitsShape) = NpyFile.ReadFloat32(Path.Combine(TinyLlavaFiles.ReferenceFolder, files.GetProperty("logits").GetString()!));
            Assert.Equal([ids.Length, vocab], logitsShape);
            var logits = new float[ids.Length * vocab];
            session.Append(composed, logits);
            double logitDiff = MaxAbs(logits, logitsRef);
            Report($"{format} {name}: {ids.Length} positions, logits of every position max abs {logitDiff:E2}");
            Assert.True(logitDiff <= TensorTolerance, $"{format} {name}: logits max abs {logitDiff:E3} > {TensorTolerance:E0}");
            checkedCases++;
        }
        Assert.Equal(3, checkedCases);
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void HeldOutSet_GreedyAnswers_AgreeWithTorch_AndMeetTheAccuracyTargets(string format)
    {
        var items = TinyLlavaFiles.Items();
        using var model = TinyLlavaFiles.Load(format);
        var template = model.ChooseChatTemplate();
        using var session = model.CreateSession(new LlavaSessionOptions { ContextSize = 160 });
        // As torch-answers.json was made: greedy, stop at </s>, at most 60 new tokens, answer = decoded text trimmed.
        var greedy = new GenerationOptions { MaxTokens = 60, Sampling = new SamplingOptions { Temperature = 0 } };

        int agree = 0;
        var correct = new Dictionary<string, int>();
        var total = new Dictionary<string, int>();
        foreach (var item in items)
        {
            var images = item.Images.Select(f => LlavaImage.FromFile(Path.Combine(TinyLlavaFiles.EvalFolder, f))).ToList();
            session.Reset();
            session.Append(model.ComposeText(model.RenderUserPrompt(template, item.Question, images.Count), images));
            string answer = string.Concat(session.Generate(greedy).Select(p => p.Text)).Trim();
            if (answer == item.TorchAnswer) agree++;
            else Report($"{format} item {item.Id} ({item.Kind}/{item.Task}): engine '{answer}', torch '{item.TorchAnswer}'");
            total[item.Kind] = total.GetValueOrDefault(item.Kind) + 1;
            if (answer == item.Answer) correct[item.Kind] = correct.GetValueOrDefault(item.Kind) + 1;
        }

        Report($"{format}: engine answer == torch answer on {agree}/{items.Count} items ({100.0 * agree / items.Count:F1} %)");
        foreach (string kind in total.Keys.Order())
            Report($"{format}: {kind} accuracy {correct.GetValueOrDefault(kind)}/{total[kind]} = {100.0 * correct.GetValueOrDefault(kind) / total[kind]:F1} % " +
                   $"(torch {100 * TinyLlavaFiles.TorchAccuracy(kind):F1} %)");

        // Agreement: an exact implementation gives torch's answer on every item; near-ties between float32 paths may differ.
        Assert.True(agree >= 0.99 * items.Count, $"{format}: the engine agrees with torch on only {agree}/{items.Count} items (need ≥ 99 %)");
        // Issue 6's targets, by exact match of the short answers: single-image ≥ 95 %, two-image ≥ 90 %; and the
        // engine no more than 2 points below the torch model's own accuracy (a near-tie may flip, a bug flips many).
        foreach (var (kind, target) in new[] { ("single", 0.95), ("multi", 0.90) })
        {
            double accuracy = (double)correct.GetValueOrDefault(kind) / total[kind], torch = TinyLlavaFiles.TorchAccuracy(kind);
            Assert.True(accuracy >= target, $"{format}: {kind} accuracy {accuracy:P1} is below the target {target:P0}");
            Assert.True(accuracy >= torch - 0.02, $"{format}: {kind} accuracy {accuracy:P1} is more than 2 points below torch's {torch:P1}");
        }
    }

    /// <summary>The prompt as the decoder sees it: text ids, and <paramref name="imageId"/> for every image row.</summary>
    private static int[] ExpandedIds(LlavaPrompt prompt, int imageTokenCount, int imageId)
    {
        var ids = new List<int>();
        foreach (var chunk in prompt.Chunks)
        {
            if (chunk is TokenChunk t) ids.AddRange(t.Ids);
            else if (chunk is ImageChunk ic) ids.AddRange(Enumerable.Repeat(imageId, ic.Rows(imageTokenCount)));
        }
        return ids.ToArray();
    }

    private static int ImageTokenIndex()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(TinyLlavaFiles.HfFolder, "config.json")));
        return doc.RootElement.GetProperty("image_token_index").GetInt32();
    }

    private static double MaxAbs(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.Equal(b.Length, a.Length);
        double max = 0;
        for (int i = 0; i < a.Length; i++) max = Math.Max(max, Math.Abs((double)a[i] - b[i]));
        return max;
    }

    private void Report(string line)
    {
        output.WriteLine(line);
        Console.WriteLine(line);
    }
}
