using LlavaNative.Kernels.Tensors;
using LlavaNative.TestSupport;
using LlavaNative.TestSupport.LlamaCpp;
using Xunit;
using Xunit.Abstractions;

namespace LlavaNative.Reference.Tests.Models;

/// <summary>
/// The random test models are what llama.cpp expects (it loads them with the intended hyper-parameters and
/// tokenizer) and are sensitive test subjects (logit scale, RoPE variant and base matter).
/// </summary>
public class RandomModelTests(ITestOutputHelper output)
{
    private const string Sentence = "The quick brown fox jumps over the lazy dog, then 12 more foxes do.";

    internal static double RowStd(float[] row)
    {
        double mean = row.Average(v => (double)v);
        return Math.Sqrt(row.Sum(v => (v - mean) * (v - mean)) / row.Length);
    }

    internal static double MaxAbsDiff(float[] a, float[] b)
    {
        double m = 0;
        for (int i = 0; i < a.Length; i++)
            m = Math.Max(m, Math.Abs((double)a[i] - b[i]));
        return m;
    }

    [Theory]
    [InlineData(RandomModelArchitecture.Llama, 32000, LlamaRopeType.Norm)]
    [InlineData(RandomModelArchitecture.Qwen2, 151936, LlamaRopeType.Neox)]
    public void TinyModelWithRealVocabulary_LoadsInLlamaCpp_WithIntendedShapeAndLogitScale(
        RandomModelArchitecture architecture, int vocabSize, LlamaRopeType ropeType)
    {
        RandomModelSpec spec = RandomModelSpec.Tiny(architecture);
        using LlamaCppModel model = LlamaCppModel.Load(RandomModels.GetPath(spec));
        Assert.Equal(vocabSize, model.VocabSize);
        Assert.Equal(vocabSize, RandomModels.VocabularySize(spec));
        Assert.Equal(64, model.EmbeddingLength);
        Assert.Equal(ropeType, model.RopeType);
        Assert.Equal(LlamaFtype.ALL_F32, model.FileType);
        Assert.Equal(spec.ArchitectureName, model.MetadataString("general.architecture"));
        Assert.Equal("2", model.MetadataString($"{spec.ArchitectureName}.attention.head_count_kv"));
        // The real tokenizer came along: the sentence tokenizes exactly as with the vocabulary file itself.
        using (LlamaCppModel vocab = LlamaCppModel.LoadVocabOnly(ReferencePaths.Vocabulary(spec.VocabularyFileName)))
            Assert.Equal(vocab.Tokenize(Sentence, true, false), model.Tokenize(Sentence, true, false));

        int[] tokens = model.Tokenize(Sentence, addSpecial: true, parseSpecial: false);
        float[][] logits = model.EvalLogits(tokens);
        Assert.Equal(tokens.Length, logits.Length);
        double[] stds = logits.Select(RowStd).ToArray();
        output.WriteLine($"{architecture}: {tokens.Length} tokens, logit std per position {string.Join(" ", stds.Select(s => s.ToString("F2")))}");
        Assert.All(logits, row => Assert.All(row, v => Assert.True(float.IsFinite(v))));
        Assert.All(stds, s => Assert.InRange(s, 2.0, 4.5));

        // Same input again: the context is reused with its memory cleared, so the result is identical.
        float[][] again = model.EvalLogits(tokens);
        for (int i = 0; i < tokens.Length; i++)
            Assert.Equal(logits[i], again[i]);

        // Greedy decoding starts from the same distribution as the last prompt position.
        GreedyResult greedy = model.GreedyContinuation(tokens, 4);
        Assert.True(MaxAbsDiff(logits[^1], greedy.Logits[0]) < 1e-3);
        Assert.Equal(Array.IndexOf(logits[^1], logits[^1].Max()), greedy.Tokens[0]);
        Assert.All(greedy.Margins, m => Assert.True(m >= 0));
        // Each step's logits are those of prompt + the tokens chosen so far.
        float[][] replay = model.EvalLogits([.. tokens, .. greedy.Tokens[..3]]);
        for (int step = 1; step < 4; step++)
            Assert.True(MaxAbsDiff(replay[tokens.Length - 1 + step], greedy.Logits[step]) < 1e-3);
    }

    [Fact]
    public void SyntheticVocabulary_TokenizesAnyText_AndRoundTrips()
    {
        RandomModelSpec spec = RandomModelSpec.Tiny(RandomModelArchitecture.Llama, RandomModelVocabulary.Synthetic);
        using LlamaCppModel model = LlamaCppModel.Load(RandomModels.GetPath(spec));
        Assert.Equal(512, model.VocabSize);
        Assert.Equal(1, model.VocabType); // SPM
        string text = "hello World\n€ 42 ünïcode";
        int[] ids = model.Tokenize(text, addSpecial: true, parseSpecial: false);
        Assert.Equal(1, ids[0]);
        Assert.Contains(ids, id => id is >= 3 and < 259); // byte fallback for what the pieces do not cover
        byte[] bytes = ids.Skip(1).SelectMany(id => model.TokenPiece(id, special: false)).ToArray();
        Assert.Equal(" " + text, System.Text.Encoding.UTF8.GetString(bytes)); // SPM adds the space prefix
    }

    [Fact]
    public void F16Variant_MarksItsFileType_AndStaysCloseToF32()
    {
        RandomModelSpec f32 = RandomModelSpec.Tiny(RandomModelArchitecture.Qwen2, RandomModelVocabulary.Synthetic);
        RandomModelSpec f16 = f32 with { WeightType = TensorType.F16 };
        using LlamaCppModel a = LlamaCppModel.Load(RandomModels.GetPath(f32));
        using LlamaCppModel b = LlamaCppModel.Load(RandomModels.GetPath(f16));
        Assert.Equal(LlamaFtype.MOSTLY_F16, b.FileType);
        using (var g = GgmlGgufReader.Open(RandomModels.GetPath(f16)))
        {
            Assert.Equal((int)TensorType.F16, g.TensorType(g.FindTensor("blk.0.attn_q.weight")));
            Assert.Equal((int)TensorType.F32, g.TensorType(g.FindTensor("blk.0.attn_q.bias")));
            Assert.Equal((int)TensorType.F32, g.TensorType(g.FindTensor("blk.1.ffn_norm.weight")));
        }
        int[] tokens = a.Tokenize(Sentence, true, false);
        float[][] la = a.EvalLogits(tokens), lb = b.EvalLogits(tokens);
        double worst = la.Zip(lb, MaxAbsDiff).Max();
        output.WriteLine($"F16 vs F32 weights: max |Δlogit| = {worst:G3}");
        Assert.True(worst is > 0 and < 0.1, $"F16 weights moved logits by {worst}");
    }

    [Fact]
    public void RopeVariantAndBase_MoveLogitsALot_ButNotAtPositionZero()
    {
        // Identical tensors (same seed and names); only the architecture's RoPE pairing or the RoPE base differ.
        RandomModelSpec llama = RandomModelSpec.Tiny(RandomModelArchitecture.Llama, RandomModelVocabulary.Synthetic) with { AttentionBias = true };
        RandomModelSpec qwen2 = llama with { Architecture = RandomModelArchitecture.Qwen2 };
        RandomModelSpec otherBase = llama with { RopeFreqBase = 1e6f };
        using LlamaCppModel norm = LlamaCppModel.Load(RandomModels.GetPath(llama));
        using LlamaCppModel neox = LlamaCppModel.Load(RandomModels.GetPath(qwen2));
        using LlamaCppModel theta = LlamaCppModel.Load(RandomModels.GetPath(otherBase));
        Assert.Equal(LlamaRopeType.Norm, norm.RopeType);
        Assert.Equal(LlamaRopeType.Neox, neox.RopeType);

        int[] tokens = norm.Tokenize(Sentence, true, false);
        float[][] ln = norm.EvalLogits(tokens), lx = neox.EvalLogits(tokens), lt = theta.EvalLogits(tokens);
        double[] variant = ln.Zip(lx, MaxAbsDiff).ToArray();
        double[] ropeBase = ln.Zip(lt, MaxAbsDiff).ToArray();
        output.WriteLine($"NORM vs NEOX max |Δlogit| per position: {string.Join(" ", variant.Select(v => v.ToString("F2")))}");
        output.WriteLine($"base 1e4 vs 1e6 max |Δlogit| per position: {string.Join(" ", ropeBase.Select(v => v.ToString("F2")))}");
        // Position 0 is not rotated at all: the models agree there (up to float summation order).
        Assert.True(variant[0] < 1e-3, $"position 0 differs by {variant[0]}");
        Assert.True(ropeBase[0] < 1e-3, $"position 0 differs by {ropeBase[0]}");
        Assert.True(variant.Skip(1).Max() > 4, "a wrong RoPE pairing must move logits by several units");
        Assert.True(ropeBase.Skip(1).Max() > 1, "a wrong RoPE base must move logits clearly");
    }

    [Fact]
    public void Writing_IsDeterministic_AndTheSeedMatters()
    {
        RandomModelSpec spec = RandomModelSpec.Tiny(RandomModelArchitecture.Llama, RandomModelVocabulary.Synthetic) with { BlockCount = 1 };
        string dir = Directory.CreateTempSubdirectory("llavanative-random-model-").FullName;
        try
        {
            string a = Path.Combine(dir, "a.gguf"), b = Path.Combine(dir, "b.gguf"), c = Path.Combine(dir, "c.gguf");
            RandomModels.Write(spec, a);
            RandomModels.Write(spec, b);
            RandomModels.Write(spec with { Seed = spec.Seed + 1 }, c);
            Assert.Equal(File.ReadAllBytes(a), File.ReadAllBytes(b));
            Assert.NotEqual(File.ReadAllBytes(a), File.ReadAllBytes(c));
            Assert.Equal(new FileInfo(a).Length, new FileInfo(c).Length);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void MetadataAndTensorInfos_AreWhatGgmlSees()
    {
        RandomModelSpec spec = RandomModelSpec.Tiny(RandomModelArchitecture.Qwen2, RandomModelVocabulary.Synthetic);
        using var g = GgmlGgufReader.Open(RandomModels.GetPath(spec));
        Assert.Equal("qwen2", g.GetString(g.FindKey("general.architecture")));
        Assert.Equal(64u, g.GetUInt32(g.FindKey("qwen2.embedding_length")));
        Assert.Equal(2u, g.GetUInt32(g.FindKey("qwen2.block_count")));
        Assert.Equal(160u, g.GetUInt32(g.FindKey("qwen2.feed_forward_length")));
        Assert.Equal(4u, g.GetUInt32(g.FindKey("qwen2.attention.head_count")));
        Assert.Equal(2u, g.GetUInt32(g.FindKey("qwen2.attention.head_count_kv")));
        Assert.Equal(16u, g.GetUInt32(g.FindKey("qwen2.rope.dimension_count")));
        Assert.Equal(1e6f, g.GetFloat32(g.FindKey("qwen2.rope.freq_base")));
        Assert.Equal(1e-6f, g.GetFloat32(g.FindKey("qwen2.attention.layer_norm_rms_epsilon")));
        Assert.Equal(0u, g.GetUInt32(g.FindKey("general.file_type")));
        Assert.Equal(-1, g.FindTensor("output.weight")); // tied
        // 2 layers × 12 tensors + token_embd + output_norm
        Assert.Equal(26, g.TensorCount);
        Assert.Equal(new long[] { 64, 512, 1, 1 }, g.TensorDimensions(g.FindTensor("token_embd.weight")));
        Assert.Equal(new long[] { 64, 32, 1, 1 }, g.TensorDimensions(g.FindTensor("blk.1.attn_k.weight")));
        Assert.Equal(new long[] { 32, 1, 1, 1 }, g.TensorDimensions(g.FindTensor("blk.1.attn_v.bias")));
        Assert.Equal(new long[] { 160, 64, 1, 1 }, g.TensorDimensions(g.FindTensor("blk.0.ffn_down.weight")));
        Assert.Equal(new long[] { 64, 160, 1, 1 }, g.TensorDimensions(g.FindTensor("blk.0.ffn_up.weight")));
    }
}
