using System.Text.Json;
using LlavaNative.Kernels.Tensors;
using LlavaNative.Model.Formats.Conversion;
using LlavaNative.Model.Formats.HuggingFace;
using LlavaNative.Model.Formats.Safetensors;
using LlavaNative.Model.Tokenizers.HuggingFace;
using LlavaNative.TestSupport;
using LlavaNative.TestSupport.HuggingFace;
using Xunit;

namespace LlavaNative.Tests.HuggingFace;

/// <summary>
/// <see cref="HuggingFaceToGguf"/> on folders that cannot be converted: every error names the file and the problem,
/// and no output file is left behind.
/// </summary>
public sealed class ConvertBadInputTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("llava-convert-bad-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); }
        catch (IOException) { }
    }

    private const string Qwen2Split = "{\"type\": \"Split\", \"pattern\": {\"Regex\": %REGEX%}, \"behavior\": \"Isolated\", \"invert\": false}";
    private const string ByteLevel = "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": false, \"use_regex\": false}";

    /// <summary>A byte-level tokenizer.json of the 256 byte characters (no merges) with the given pre-tokenizer.</summary>
    private static void WriteTokenizer(string folder, string? preTokenizer = null, string normalizer = "null")
    {
        var vocab = TokenizerJsonFixtures.ByteAlphabet().Select((c, i) => (c.ToString(), i)).ToList();
        preTokenizer ??= "{\"type\": \"Sequence\", \"pretokenizers\": [" +
                         Qwen2Split.Replace("%REGEX%", JsonSerializer.Serialize(TokenizerJsonFixtures.Qwen2Pattern)) + ", " + ByteLevel + "]}";
        var json = new TokenizerJsonFixtures.TokenizerJson
        {
            ModelOptions = "\"type\": \"BPE\", \"dropout\": null, \"unk_token\": null, \"fuse_unk\": false, \"byte_fallback\": false",
            Vocab = vocab,
            Merges = [],
            Normalizer = normalizer,
            PreTokenizer = preTokenizer,
            Decoder = ByteLevel,
        };
        TokenizerJsonFixtures.WriteFolder(folder, json);
    }

    private string ValidFolder(string name = "model")
    {
        string folder = Path.Combine(_root, name);
        GgufToHuggingFace.Export(RandomModels.GetPath(RandomModelSpec.Tiny(RandomModelArchitecture.Llama, RandomModelVocabulary.Synthetic)), folder);
        WriteTokenizer(folder);
        return folder;
    }

    private string Output => Path.Combine(_root, "out.gguf");

    private void AssertNoOutput() =>
        Assert.Empty(Directory.GetFiles(_root, "out.gguf*"));

    [Fact]
    public void AValidFolderConverts()
    {
        var summary = HuggingFaceToGguf.Convert(ValidFolder(), Output, GgufOutputType.F16);
        Assert.Equal("gpt2", summary.Tokenizer.Model);
        Assert.Equal("qwen2", summary.Tokenizer.PreTokenizer);
        Assert.True(File.Exists(Output));
        Assert.Equal(3 + 2 * 9, summary.TensorCount); // token_embd, output_norm, output + 9 per layer
    }

    [Fact]
    public void MissingFolderConfigWeightsOrTokenizer()
    {
        var e1 = Assert.Throws<DirectoryNotFoundException>(() => HuggingFaceToGguf.Convert(Path.Combine(_root, "nope"), Output, GgufOutputType.F16));
        Assert.Contains("nope", e1.Message);

        string folder = ValidFolder();
        File.Delete(Path.Combine(folder, "config.json"));
        Assert.Contains("config.json", Assert.Throws<FileNotFoundException>(() => HuggingFaceToGguf.Convert(folder, Output, GgufOutputType.F16)).Message);

        folder = ValidFolder("no-weights");
        File.Delete(Path.Combine(folder, SafetensorsCheckpoint.SingleFileName));
        Assert.Contains(SafetensorsCheckpoint.SingleFileName, Assert.Throws<FileNotFoundException>(() => HuggingFaceToGguf.Convert(folder, Output, GgufOutputType.F16)).Message);

        folder = ValidFolder("no-tokenizer");
        File.Delete(Path.Combine(folder, "tokenizer.json"));
        var e = Assert.Throws<FileNotFoundException>(() => HuggingFaceToGguf.Convert(folder, Output, GgufOutputType.F16));
        Assert.Contains("tokenizer.json", e.Message);
        Assert.Contains("tokenizer.model", e.Message);
        AssertNoOutput();
    }

    [Fact]
    public void UnsupportedArchitecture()
    {
        string folder = ValidFolder();
        string config = File.ReadAllText(Path.Combine(folder, "config.json")).Replace("\"model_type\": \"llama\"", "\"model_type\": \"mistral\"");
        File.WriteAllText(Path.Combine(folder, "config.json"), config);
        var e = Assert.Throws<HuggingFaceConfigException>(() => HuggingFaceToGguf.Convert(folder, Output, GgufOutputType.F16));
        Assert.Contains("config.json", e.Message);
        Assert.Contains("'mistral'", e.Message);
        AssertNoOutput();
    }

    [Fact]
    public void UnknownPreTokenizerIsRefusedNotGuessed()
    {
        string folder = ValidFolder();
        // a digits-in-threes split llama.cpp has no pre-tokenizer type for
        WriteTokenizer(folder, "{\"type\": \"Sequence\", \"pretokenizers\": [" + Qwen2Split.Replace("%REGEX%", "\"\\\\p{N}{1,3}| ?\\\\p{L}+\"") + ", " + ByteLevel + "]}");
        var e = Assert.Throws<HuggingFaceTokenizerException>(() => HuggingFaceToGguf.Convert(folder, Output, GgufOutputType.F16));
        Assert.StartsWith("tokenizer.json: pre_tokenizer ", e.Message);
        Assert.Contains("not a pre-tokenizer llama.cpp reproduces", e.Message);
        Assert.Contains("qwen2", e.Message);

        WriteTokenizer(folder, preTokenizer: "null");
        Assert.Contains("is none", Assert.Throws<HuggingFaceTokenizerException>(() => HuggingFaceToGguf.Convert(folder, Output, GgufOutputType.F16)).Message);

        WriteTokenizer(folder, normalizer: "{\"type\": \"Lowercase\"}");
        Assert.Contains("Lowercase", Assert.Throws<HuggingFaceTokenizerException>(() => HuggingFaceToGguf.Convert(folder, Output, GgufOutputType.F16)).Message);
        AssertNoOutput();
    }

    [Fact]
    public void TokenizerLargerThanTheEmbedding()
    {
        string folder = ValidFolder();
        var vocab = Enumerable.Range(0, 600).Select(i => (i < 256 ? TokenizerJsonFixtures.ByteAlphabet().ElementAt(i).ToString() : $"tok{i}", i)).ToList();
        TokenizerJsonFixtures.WriteFolder(folder, new TokenizerJsonFixtures.TokenizerJson
        {
            ModelOptions = "\"type\": \"BPE\", \"byte_fallback\": false",
            Vocab = vocab,
            Merges = [],
            PreTokenizer = "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}",
            Decoder = ByteLevel,
        });
        var e = Assert.Throws<HuggingFaceTokenizerException>(() => HuggingFaceToGguf.Convert(folder, Output, GgufOutputType.F16));
        Assert.Contains("600 tokens but the embedding only 512 rows", e.Message);
        AssertNoOutput();
    }

    [Fact]
    public void UnwritableOutput()
    {
        string folder = ValidFolder();
        var e = Assert.Throws<DirectoryNotFoundException>(() => HuggingFaceToGguf.Convert(folder, Path.Combine(_root, "missing", "out.gguf"), GgufOutputType.F16));
        Assert.Contains("does not exist", e.Message);
        Assert.Contains("is a folder", Assert.Throws<IOException>(() => HuggingFaceToGguf.Convert(folder, _root, GgufOutputType.F16)).Message);
    }

    [Fact]
    public void TruncatedWeightsNameTheShard()
    {
        string folder = ValidFolder();
        string weights = Path.Combine(folder, SafetensorsCheckpoint.SingleFileName);
        using (var f = new FileStream(weights, FileMode.Open)) f.SetLength(f.Length - 100);
        var e = Assert.Throws<SafetensorsFormatException>(() => HuggingFaceToGguf.Convert(folder, Output, GgufOutputType.F16));
        Assert.StartsWith(SafetensorsCheckpoint.SingleFileName, e.Message);
        Assert.Contains("truncated", e.Message);
        AssertNoOutput();
    }

    [Fact]
    public void UnsupportedTypesAreNamedWithTheSupportedOnes()
    {
        var e = Assert.Throws<ArgumentException>(() => GgufOutputType.Parse("q3_k_m"));
        Assert.Contains("'q3_k_m'", e.Message);
        Assert.Contains("f32, f16, bf16, q8_0, q4_0", e.Message);
        Assert.Contains("llama-quantize", e.Message);
        Assert.Throws<ArgumentException>(() => GgufOutputType.Parse("int8"));
        Assert.Same(GgufOutputType.Q8_0, GgufOutputType.Parse("Q8_0"));
    }

    /// <summary>The per-tensor type rules (checked byte for byte against llama.cpp's quantizer in the reference tests).</summary>
    [Fact]
    public void TypeRules()
    {
        Assert.Equal(TensorType.F32, GgufOutputType.Q4_0.TypeFor("blk.0.attn_norm.weight", [64], false));
        Assert.Equal(TensorType.F32, GgufOutputType.F16.TypeFor("blk.0.attn_q.bias", [64], false));
        Assert.Equal(TensorType.F16, GgufOutputType.F16.TypeFor("blk.0.attn_q.weight", [64, 64], false));
        Assert.Equal(TensorType.Q6_K, GgufOutputType.Q4_0.TypeFor("output.weight", [256, 512], true));
        Assert.Equal(TensorType.Q8_0, GgufOutputType.Q4_0.TypeFor("output.weight", [64, 512], true));
        Assert.Equal(TensorType.Q8_0, GgufOutputType.Q8_0.TypeFor("output.weight", [256, 512], true));
        Assert.Equal(TensorType.F16, GgufOutputType.Q4_0.TypeFor("blk.0.ffn_down.weight", [48, 64], false));
        Assert.Equal(TensorType.Q4_0, GgufOutputType.Q4_0.TypeFor("token_embd.weight", [64, 512], false));
        // Q4_K_M: attn_v / ffn_down of layers 0, 3, 6, 7 of 8 get Q6_K (llama.cpp's use_more_bits); rows of 64 fall back to Q5_0
        Assert.Equal([0, 3, 6, 7], Enumerable.Range(0, 8).Where(l => GgufOutputType.Q4_K_M.TypeFor($"blk.{l}.ffn_down.weight", [256, 64], false, l, 8) == TensorType.Q6_K));
        Assert.Equal(TensorType.Q4_K, GgufOutputType.Q4_K_M.TypeFor("blk.0.attn_q.weight", [256, 256], false, 0, 8));
        Assert.Equal(TensorType.Q5_0, GgufOutputType.Q4_K_M.TypeFor("blk.1.attn_q.weight", [64, 64], false, 1, 8));
        Assert.Equal(TensorType.Q8_0, GgufOutputType.Q4_K_M.TypeFor("blk.0.attn_v.weight", [64, 64], false, 0, 8));
    }
}
