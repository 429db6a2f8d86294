using LlavaNative.Model;
using LlavaNative.Model.Formats;
using LlavaNative.Model.Formats.HuggingFace;
using LlavaNative.Model.Formats.Safetensors;
using LlavaNative.Model.Language;
using Xunit;

namespace LlavaNative.Tests.HuggingFace;

/// <summary>
/// A tiny Hugging Face llama / qwen2 folder written here, then broken one way at a time: the loader's errors
/// name the file (the shard holding the tensor, or the checkpoint when a tensor is missing) and the tensor.
/// </summary>
public sealed class HuggingFaceLoaderBadInputTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("llava-hf-loader-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private const int Dim = 8, Heads = 2, KvHeads = 1, HeadDim = 4, Ffn = 12, Vocab = 10, Layers = 2;

    /// <summary>Writes config.json and the decoder tensors (names under <paramref name="prefix"/>), letting a test drop or alter some.</summary>
    private string WriteFolder(string arch = "llama", string prefix = "model.", string? lmHead = "lm_head.weight", bool tie = false,
        Func<string, long[], (string Name, long[] Shape, SafetensorsDType DType)?>? edit = null, int shards = 1, string? configOverride = null)
    {
        string folder = Path.Combine(_dir, Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "config.json"), configOverride ?? $$"""
            {"model_type": "{{arch}}", "hidden_size": {{Dim}}, "num_attention_heads": {{Heads}}, "num_key_value_heads": {{KvHeads}},
             "intermediate_size": {{Ffn}}, "vocab_size": {{Vocab}}, "num_hidden_layers": {{Layers}}, "tie_word_embeddings": {{(tie ? "true" : "false")}}}
            """);
        var tensors = new List<(string, long[])> { (prefix + "embed_tokens.weight", [Vocab, Dim]), (prefix + "norm.weight", [Dim]) };
        if (lmHead != null) tensors.Add((lmHead, [Vocab, Dim]));
        for (int l = 0; l < Layers; l++)
        {
            string p = $"{prefix}layers.{l}.";
            tensors.Add((p + "input_layernorm.weight", [Dim]));
            tensors.Add((p + "post_attention_layernorm.weight", [Dim]));
            tensors.Add((p + "self_attn.q_proj.weight", [Heads * HeadDim, Dim]));
            tensors.Add((p + "self_attn.k_proj.weight", [KvHeads * HeadDim, Dim]));
            tensors.Add((p + "self_attn.v_proj.weight", [KvHeads * HeadDim, Dim]));
            tensors.Add((p + "self_attn.o_proj.weight", [Dim, Heads * HeadDim]));
            if (arch == "qwen2")
            {
                tensors.Add((p + "self_attn.q_proj.bias", [Heads * HeadDim]));
                tensors.Add((p + "self_attn.k_proj.bias", [KvHeads * HeadDim]));
                tensors.Add((p + "self_attn.v_proj.bias", [KvHeads * HeadDim]));
            }
            tensors.Add((p + "mlp.gate_proj.weight", [Ffn, Dim]));
            tensors.Add((p + "mlp.up_proj.weight", [Ffn, Dim]));
            tensors.Add((p + "mlp.down_proj.weight", [Dim, Ffn]));
        }
        var writer = new SafetensorsWriter();
        var rng = new Random(1);
        foreach (var (name, shape) in tensors)
        {
            var spec = edit != null ? edit(name, shape) : (name, shape, SafetensorsDType.F32);
            if (spec is not { } s) continue;
            long count = s.Shape.Aggregate(1L, (a, b) => a * b);
            int size = SafetensorsDTypes.ElementBytes(s.DType);
            var bytes = new byte[count * size];
            for (long i = 0; i < count; i++)
            {
                // At most 8 significant bits, so exact in F32, F16 and BF16 alike: k/256 for matrices,
                // 1 + k/128 (|k| ≤ 64) for norm weights and biases.
                float v = s.Shape.Length == 1 ? 1f + rng.Next(-64, 65) / 128f : rng.Next(-128, 129) / 256f;
                byte[] encoded = s.DType switch
                {
                    SafetensorsDType.F32 => BitConverter.GetBytes(v),
                    SafetensorsDType.F16 => BitConverter.GetBytes((Half)v),
                    SafetensorsDType.BF16 => BitConverter.GetBytes((ushort)(BitConverter.SingleToUInt32Bits(v) >> 16)),
                    _ => new byte[size],
                };
                encoded.CopyTo(bytes, i * size);
            }
            writer.AddTensor(s.Name, s.DType, s.Shape, bytes);
        }
        if (shards == 1) writer.WriteTo(Path.Combine(folder, SafetensorsCheckpoint.SingleFileName));
        else writer.WriteSharded(folder, shards);
        return folder;
    }

    private static SafetensorsFormatException LoadFails(string folder)
    {
        var e = Assert.Throws<SafetensorsFormatException>(() => DecoderModel.LoadHuggingFace(folder).Dispose());
        return e;
    }

    [Fact]
    public void ValidFoldersLoadInEveryLayout()
    {
        using (var m = DecoderModel.LoadHuggingFace(WriteFolder()))
        {
            Assert.False(m.Weights.TiedEmbeddings);
            Assert.Equal((Dim, Heads, KvHeads, HeadDim, Ffn, Vocab), (m.Config.Dim, m.Config.Heads, m.Config.KvHeads, m.Config.HeadDim, m.Config.FeedForward, m.Config.VocabSize));
            using var state = m.CreateState(8);
            Assert.Equal(Vocab, m.Forward(state, [1, 2, 3]).Length);
        }
        using (var m = DecoderModel.LoadHuggingFace(WriteFolder("qwen2", lmHead: null, tie: true)))
            Assert.True(m.Weights.TiedEmbeddings);
        using (var m = ModelLoader.Load(WriteFolder(prefix: "model.language_model.", shards: 3)))
            Assert.Equal(Layers, m.Config.Layers);
        // A file of the checkpoint stands for its folder.
        string folder = WriteFolder(prefix: "language_model.model.", lmHead: "language_model.lm_head.weight");
        foreach (string file in new[] { "config.json", SafetensorsCheckpoint.SingleFileName })
            using (var m = ModelLoader.Load(Path.Combine(folder, file)))
                Assert.False(m.Weights.TiedEmbeddings);
    }

    [Theory]
    [InlineData(SafetensorsDType.F16)]
    [InlineData(SafetensorsDType.BF16)]
    public void HalfPrecisionNormsAndBiasesAreConvertedExactly(SafetensorsDType dtype)
    {
        // Same values, vectors stored as F32 in one folder and as dtype in the other: identical logits.
        float[] Logits(string folder)
        {
            using var m = DecoderModel.LoadHuggingFace(folder);
            using var state = m.CreateState(8);
            return m.Forward(state, [1, 2, 3, 4]).ToArray();
        }
        float[] expected = Logits(WriteFolder("qwen2"));
        float[] converted = Logits(WriteFolder("qwen2", edit: (n, s) => (n, s, s.Length == 1 ? dtype : SafetensorsDType.F32)));
        Assert.Equal(expected, converted);
        Assert.Contains(expected, v => v != 0);
    }

    [Fact]
    public unsafe void TiedConfigUsesTheEmbeddingEvenWhenAnLmHeadIsStored()
    {
        using var m = DecoderModel.LoadHuggingFace(WriteFolder(tie: true));
        Assert.True(m.Weights.TiedEmbeddings);
        Assert.True(m.Weights.LmHead.Data == m.Weights.TokenEmbedding.Data);
    }

    [Fact]
    public void MissingTensorIsNamed()
    {
        string folder = WriteFolder(edit: (n, s) => n == "model.layers.1.mlp.up_proj.weight" ? null : (n, s, SafetensorsDType.F32));
        var e = LoadFails(folder);
        Assert.StartsWith("model.safetensors: ", e.Message);
        Assert.Contains("'model.layers.1.mlp.up_proj.weight' is missing", e.Message);

        folder = WriteFolder(edit: (n, s) => n == "model.layers.0.self_attn.k_proj.weight" ? null : (n, s, SafetensorsDType.F32), shards: 2);
        e = LoadFails(folder);
        Assert.StartsWith(SafetensorsCheckpoint.IndexFileName + ": ", e.Message);
        Assert.Contains("'model.layers.0.self_attn.k_proj.weight' is missing", e.Message);
    }

    [Fact]
    public void Qwen2WithoutBiasesIsAnError()
    {
        string folder = WriteFolder("qwen2", edit: (n, s) => n.EndsWith("v_proj.bias") ? null : (n, s, SafetensorsDType.F32));
        Assert.Contains("'model.layers.0.self_attn.v_proj.bias' is missing", LoadFails(folder).Message);
    }

    [Fact]
    public void WrongShapeNamesTheShardAndTensor()
    {
        string folder = WriteFolder(shards: 2, edit: (n, s) => n == "model.layers.1.mlp.down_proj.weight" ? (n, new long[] { Ffn, Dim }, SafetensorsDType.F32) : (n, s, SafetensorsDType.F32));
        var e = LoadFails(folder);
        Assert.Matches(@"^model-0000\d-of-00002\.safetensors: ", e.Message);
        Assert.Contains("'model.layers.1.mlp.down_proj.weight' has shape [12, 8], expected [8, 12]", e.Message);

        // A vocabulary that disagrees with config.json's vocab_size.
        folder = WriteFolder(edit: (n, s) => n == "model.embed_tokens.weight" ? (n, new long[] { Vocab + 2, Dim }, SafetensorsDType.F32) : (n, s, SafetensorsDType.F32));
        Assert.Contains("'model.embed_tokens.weight' has shape [12, 8], expected [10, 8]", LoadFails(folder).Message);
    }

    [Fact]
    public void NonFloatWeightIsNamed()
    {
        string folder = WriteFolder(edit: (n, s) => n == "model.layers.0.self_attn.o_proj.weight" ? (n, s, SafetensorsDType.I32) : (n, s, SafetensorsDType.F32));
        var e = LoadFails(folder);
        Assert.Contains("'model.layers.0.self_attn.o_proj.weight' has element type I32", e.Message);
        Assert.Contains("F32, F16, BF16", e.Message);
    }

    [Fact]
    public void NoKnownEmbeddingNameListsTheLayoutsTried()
    {
        var e = LoadFails(WriteFolder(prefix: "transformer."));
        Assert.Contains("'model.embed_tokens.weight'", e.Message);
        Assert.Contains("'language_model.model.embed_tokens.weight'", e.Message);
        Assert.Contains("'model.language_model.embed_tokens.weight'", e.Message);
    }

    [Fact]
    public void ConfigProblemsComeBeforeWeights()
    {
        string folder = WriteFolder(configOverride: """{"model_type": "gpt2"}""");
        var e = Assert.Throws<HuggingFaceConfigException>(() => DecoderModel.LoadHuggingFace(folder).Dispose());
        Assert.Contains("config.json: model_type 'gpt2' is not supported", e.Message);

        File.Delete(Path.Combine(folder, "config.json"));
        Assert.Throws<FileNotFoundException>(() => DecoderModel.LoadHuggingFace(folder).Dispose());
        var notModel = Assert.Throws<ModelFormatException>(() => ModelLoader.Load(folder).Dispose());
        Assert.Contains("without config.json", notModel.Message);
        Assert.Throws<FileNotFoundException>(() => ModelLoader.Load(Path.Combine(_dir, "nothing-here")).Dispose());
    }
}
