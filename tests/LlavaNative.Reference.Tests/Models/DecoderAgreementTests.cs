using LlavaNative.Model.Language;
using LlavaNative.TestSupport;
using LlavaNative.TestSupport.LlamaCpp;
using Xunit;
using Xunit.Abstractions;

namespace LlavaNative.Reference.Tests.Models;

/// <summary>Our decoder's logits against llama.cpp's on the same random-weight GGUF files.</summary>
public sealed class DecoderAgreementTests(ITestOutputHelper output)
{
    internal static int[] SampleTokens(int vocab, int count, int seed)
    {
        var r = new Random(seed);
        // Skip the low ids (control / byte tokens of real vocabularies): ordinary text tokens.
        return Enumerable.Range(0, count).Select(_ => 300 + r.Next(vocab - 300)).ToArray();
    }

    internal static (double MaxAbs, double RelL2) Compare(float[] ours, float[][] reference, int vocab)
    {
        double maxAbs = 0, diff2 = 0, ref2 = 0;
        for (int t = 0; t < reference.Length; t++)
        for (int v = 0; v < vocab; v++)
        {
            double d = ours[(long)t * vocab + v] - reference[t][v];
            maxAbs = Math.Max(maxAbs, Math.Abs(d));
            diff2 += d * d;
            ref2 += (double)reference[t][v] * reference[t][v];
        }
        return (maxAbs, Math.Sqrt(diff2 / ref2));
    }

    public static TheoryData<RandomModelArchitecture> Architectures => new() { RandomModelArchitecture.Llama, RandomModelArchitecture.Qwen2 };

    [Theory, MemberData(nameof(Architectures))]
    public void F32LogitsOfEveryPositionMatchLlamaCpp(RandomModelArchitecture architecture)
    {
        string path = RandomModels.GetPath(RandomModelSpec.Tiny(architecture));
        using var model = DecoderModel.LoadGguf(path);
        int vocab = model.Config.VocabSize;
        int[] tokens = SampleTokens(vocab, 48, seed: 7);

        using var state = model.CreateState(64, maxBatch: 20); // 48 tokens in 3 batches: exercises cache reuse
        var ours = new float[tokens.Length * vocab];
        model.Forward(state, tokens, LogitsMode.All, ours);

        using var reference = LlamaCppModel.Load(path);
        var expected = reference.EvalLogits(tokens);
        var (maxAbs, rel) = Compare(ours, expected, vocab);
        output.WriteLine($"{architecture}: max abs {maxAbs:E2}, rel L2 {rel:E2} over {tokens.Length}×{vocab} logits");
        Assert.True(maxAbs <= 1e-4, $"max abs difference {maxAbs:E3} exceeds 1e-4 (rel L2 {rel:E2})");
    }

    [Theory, MemberData(nameof(Architectures))]
    public void TokenByTokenDecodeMatchesLlamaCppGreedyContinuation(RandomModelArchitecture architecture)
    {
        string path = RandomModels.GetPath(RandomModelSpec.Tiny(architecture));
        using var model = DecoderModel.LoadGguf(path);
        int vocab = model.Config.VocabSize;
        int[] prompt = SampleTokens(vocab, 9, seed: 11);
        using var reference = LlamaCppModel.Load(path);
        var expected = reference.GreedyContinuation(prompt, 24);

        using var state = model.CreateState(64);
        var logits = model.Forward(state, prompt).ToArray();
        for (int step = 0; step < expected.Tokens.Length; step++)
        {
            double maxAbs = 0;
            for (int v = 0; v < vocab; v++) maxAbs = Math.Max(maxAbs, Math.Abs(logits[v] - expected.Logits[step][v]));
            Assert.True(maxAbs <= 1e-4, $"step {step}: max abs difference {maxAbs:E3}");
            int ours = Model.Generation.Sampler.ArgMax(logits);
            if (expected.Margins[step] > 1e-3) Assert.Equal(expected.Tokens[step], ours);
            // Feed llama.cpp's choice so both continue on the same sequence even at near-ties.
            logits = model.Forward(state, [expected.Tokens[step]]).ToArray();
        }
    }
}
