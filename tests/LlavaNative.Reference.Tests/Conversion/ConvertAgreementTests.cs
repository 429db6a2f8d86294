using System.Text;
using System.Text.Json.Nodes;
using LlavaNative.Kernels.Cpu.Ops;
using LlavaNative.Kernels.Tensors;
using LlavaNative.Model;
using LlavaNative.Model.Formats.Conversion;
using LlavaNative.Model.Formats.Gguf;
using LlavaNative.Model.Language;
using LlavaNative.Model.Tokenizers;
using LlavaNative.Model.Tokenizers.HuggingFace;
using LlavaNative.Reference.Tests.Cli;
using LlavaNative.Reference.Tests.Models;
using LlavaNative.Reference.Tests.Tokenizers;
using LlavaNative.Reference.Tests.Tokenizers.HuggingFace;
using LlavaNative.TestSupport;
using LlavaNative.TestSupport.HuggingFace;
using LlavaNative.TestSupport.LlamaCpp;
using Xunit;
using Xunit.Abstractions;

namespace LlavaNative.Reference.Tests.Conversion;

/// <summary>
/// `llava convert` against llama.cpp: random llama / qwen2 Hugging Face folders (written by the test-side
/// GGUF → HF exporter, which undoes llama.cpp's converter) are converted to GGUF; llama.cpp loads the result and
/// its logits must be the logits of our HF-folder forward pass (which is itself checked against llama.cpp on the
/// original GGUF elsewhere), its tokenization of a tricky corpus must be the ids of Hugging Face-semantics
/// tokenization of the folder, and its own quantizer applied to the F32 conversion must write the very bytes our
/// quantized conversion writes.
/// </summary>
public sealed class ConvertAgreementTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("llavanative-convert-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); }
        catch (IOException) { }
    }

    /// <summary>F32 bound of the task; measured ≈ 2e-5 (q·k summed in another order for llama's permuted rows).</summary>
    private const double F32MaxAbs = 1e-4;

    /// <summary>An HF folder of the random model <paramref name="spec"/> with the tokenizer files of <paramref name="tokenizerFolder"/>.</summary>
    private string HfFolder(string name, RandomModelSpec spec, HfExportOptions? options = null, string? tokenizerFolder = null, int smallTokenizerMerges = 200)
    {
        string folder = Path.Combine(_root, name);
        GgufToHuggingFace.Export(RandomModels.GetPath(spec), folder, options);
        if (tokenizerFolder is null)
            TokenizerJsonFixtures.WriteSmallByteLevel(folder, smallTokenizerMerges);
        else
            foreach (string file in Directory.GetFiles(tokenizerFolder))
                File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
        return folder;
    }

    private static float[] Logits(DecoderModel model, int[] tokens)
    {
        using var state = model.CreateState(64, maxBatch: 20);
        var logits = new float[tokens.Length * model.Config.VocabSize];
        model.Forward(state, tokens, LogitsMode.All, logits);
        return logits;
    }

    public static TheoryData<RandomModelArchitecture, HfCheckpointLayout> ArchitecturesAndLayouts => new()
    {
        { RandomModelArchitecture.Llama, HfCheckpointLayout.CausalLM },
        { RandomModelArchitecture.Qwen2, HfCheckpointLayout.CausalLM },
        { RandomModelArchitecture.Llama, HfCheckpointLayout.LlavaOld },
        { RandomModelArchitecture.Qwen2, HfCheckpointLayout.LlavaNew },
    };

    [Theory, MemberData(nameof(ArchitecturesAndLayouts))]
    public void F32ConversionGivesTheFoldersLogitsInLlamaCppAndInOurGgufLoader(RandomModelArchitecture architecture, HfCheckpointLayout layout)
    {
        var spec = RandomModelSpec.Tiny(architecture, RandomModelVocabulary.Synthetic);
        string folder = HfFolder($"{architecture}-{layout}", spec, new HfExportOptions { Layout = layout, Shards = 2 });
        string gguf = Path.Combine(_root, $"{architecture}-{layout}.gguf");
        var (exit, _, err) = CliContractTests.RunCli("convert", "-m", folder, "-o", gguf, "--type", "f32");
        Assert.True(exit == 0, err);
        output.WriteLine(err.Trim());

        using var hf = ModelLoader.Load(folder);
        using var converted = ModelLoader.Load(gguf);
        Assert.Equal(architecture == RandomModelArchitecture.Llama ? RopeMode.Normal : RopeMode.Neox, converted.Config.RopeMode);
        Assert.Equal(hf.Config with { RopeMode = converted.Config.RopeMode }, converted.Config);
        Assert.Equal(architecture == RandomModelArchitecture.Qwen2, converted.Weights.TiedEmbeddings);

        int vocab = hf.Config.VocabSize;
        int[] tokens = DecoderAgreementTests.SampleTokens(vocab, 40, seed: 9);
        float[] ours = Logits(hf, tokens);
        using var reference = LlamaCppModel.Load(gguf);
        Assert.Equal(vocab, reference.VocabSize);
        Assert.Equal(LlamaFtype.ALL_F32, reference.FileType);
        var (vsLlama, rel) = DecoderAgreementTests.Compare(ours, reference.EvalLogits(tokens), vocab);
        float[] ggufPath = Logits(converted, tokens);
        double vsOwnLoader = ours.Zip(ggufPath, (a, b) => Math.Abs((double)a - b)).Max();
        output.WriteLine($"{architecture} {layout}: HF folder vs llama.cpp on the conversion max abs {vsLlama:E2} (rel L2 {rel:E2}); vs our GGUF loader {vsOwnLoader:E2}");
        Assert.True(vsLlama <= F32MaxAbs, $"max abs {vsLlama:E3} > {F32MaxAbs:E0}");
        Assert.True(vsOwnLoader <= F32MaxAbs, $"our GGUF loader on the conversion: max abs {vsOwnLoader:E3} > {F32MaxAbs:E0}");
    }

    /// <summary>
    /// llava-hf's embedding has more rows than the tokenizer has tokens: the token list is padded with UNUSED
    /// <c>[PAD{id}]</c> tokens, which llama.cpp accepts and never produces from text.
    /// </summary>
    [Fact]
    public void ShortTokenizerIsPaddedToTheEmbeddingRows()
    {
        var spec = RandomModelSpec.Tiny(RandomModelArchitecture.Llama, RandomModelVocabulary.Synthetic);
        string folder = HfFolder("padded", spec, new HfExportOptions { Layout = HfCheckpointLayout.LlavaNew }, smallTokenizerMerges: 100);
        string gguf = Path.Combine(_root, "padded.gguf");
        var summary = HuggingFaceToGguf.Convert(folder, gguf, GgufOutputType.F16);
        int rows = RandomModels.VocabularySize(spec);
        int tokens = HuggingFaceTokenizerFiles.Load(folder).Tokens.Length;
        Assert.True(tokens < rows);
        Assert.Equal(rows - tokens, summary.Tokenizer.PaddedTokens);

        using var file = GgufFile.Open(gguf);
        string[] list = file.GetArray<string>("tokenizer.ggml.tokens");
        int[] types = file.GetIntArray("tokenizer.ggml.token_type");
        Assert.Equal(rows, list.Length);
        Assert.Equal($"[PAD{rows - 1}]", list[^1]);
        Assert.Equal(5, types[^1]);
        Assert.Equal("qwen2", file.GetString("tokenizer.ggml.pre"));

        using var reference = LlamaCppModel.LoadVocabOnly(gguf);
        Assert.Equal(rows, reference.VocabSize);
        var ours = HuggingFaceTokenizerFiles.LoadTokenizer(folder);
        foreach (string raw in TokenizerCorpus.Tricky.Take(30))
        {
            string text = UnicodeNormalization.Normalize(TextSplitting.ReplaceLoneSurrogates(raw), UnicodeForm.Nfc);
            if (HuggingFaceTokenizerAgreementTests.HasUnicode16Characters(text)) continue;
            Assert.Equal(ours.Encode(text, addSpecial: true, parseSpecial: true), reference.Tokenize(text, addSpecial: true, parseSpecial: true));
        }
    }

    /// <summary>
    /// Each pre-tokenizer the converter recognises, on a small vocabulary of GPT-2's first merges: llama.cpp with the
    /// written <c>tokenizer.ggml.pre</c> splits and merges as Hugging Face tokenization of the folder.
    /// </summary>
    [Theory]
    [InlineData("qwen2")]
    [InlineData("llama-bpe")]
    [InlineData("gpt-2")]
    public void EachRecognisedPreTokenizerTokenizesLikeTheFolder(string pre)
    {
        var spec = RandomModelSpec.Tiny(RandomModelArchitecture.Qwen2, RandomModelVocabulary.Synthetic) with { SyntheticVocabularySize = 1080 };
        string folder = Path.Combine(_root, $"pre-{pre}");
        GgufToHuggingFace.Export(RandomModels.GetPath(spec), folder);
        TokenizerJsonFixtures.WriteSmallByteLevel(folder, 800, pre);
        string gguf = Path.Combine(_root, $"pre-{pre}.gguf");
        Assert.Equal(pre, HuggingFaceToGguf.Convert(folder, gguf, GgufOutputType.Q8_0).Tokenizer.PreTokenizer);

        var ours = HuggingFaceTokenizerFiles.LoadTokenizer(folder);
        using var reference = LlamaCppModel.LoadVocabOnly(gguf);
        var failures = new List<string>();
        string[] texts = [.. HuggingFaceTokenizerAgreementTests.Corpus, .. TokenizerCorpus.Random(seed: 5, count: 100)];
        int compared = 0;
        foreach (string raw in texts)
        {
            string text = TextSplitting.ReplaceLoneSurrogates(raw);
            if (HuggingFaceTokenizerAgreementTests.HasUnicode16Characters(text)) continue;
            compared++;
            int[] expected = ours.Encode(text, addSpecial: true, parseSpecial: true);
            int[] actual = reference.Tokenize(text, addSpecial: true, parseSpecial: true);
            if (!expected.AsSpan().SequenceEqual(actual))
                failures.Add($"{HuggingFaceTokenizerAgreementTests.Show(text)}\n    HF:        [{string.Join(", ", expected)}]\n    llama.cpp: [{string.Join(", ", actual)}]");
        }
        output.WriteLine($"{pre}: {compared - failures.Count} of {compared} texts tokenized identically");
        Assert.True(failures.Count == 0, $"{failures.Count} of {compared} texts differ:\n" + string.Join("\n", failures.Take(10)));
    }

    public static TheoryData<TokenizerJsonKind> TokenizerKinds => new() { TokenizerJsonKind.Qwen2, TokenizerJsonKind.Llama3, TokenizerJsonKind.LlamaSentencePiece };

    /// <summary>
    /// Real vocabularies (Qwen2, Llama 3, Llama 2 SentencePiece as tokenizer.json): llama.cpp's tokenization of the
    /// converted GGUF equals Hugging Face tokenization of the folder (our tokenizer.json engine, itself identical to
    /// the Rust tokenizers library on these files) on the tricky corpus and random texts. Qwen2 normalizes to NFC and
    /// llama.cpp does not, so texts are given in NFC.
    /// </summary>
    [Theory, MemberData(nameof(TokenizerKinds))]
    public void ConvertedTokenizerTokenizesLikeTheFolder(TokenizerJsonKind kind)
    {
        var architecture = kind == TokenizerJsonKind.Qwen2 ? RandomModelArchitecture.Qwen2 : RandomModelArchitecture.Llama;
        string vocabulary = kind switch { TokenizerJsonKind.Qwen2 => "qwen2", TokenizerJsonKind.Llama3 => "llama-bpe", _ => "llama-spm" };
        var spec = RandomModelSpec.Tiny(architecture) with { RealVocabularyName = vocabulary, EmbeddingLength = 32, HeadCount = 2, KvHeadCount = 1, FeedForwardLength = 32, BlockCount = 1 };
        string folder = HfFolder($"tok-{kind}", spec, tokenizerFolder: TokenizerJsonFixtures.Folder(kind));
        string gguf = Path.Combine(_root, $"tok-{kind}.gguf");
        var summary = HuggingFaceToGguf.Convert(folder, gguf, GgufOutputType.Q8_0);
        output.WriteLine($"{kind}: {summary.Tokenizer.Model} pre {summary.Tokenizer.PreTokenizer}, {summary.Tokenizer.TokenCount} tokens; {string.Join("; ", summary.Tokenizer.Notes)}");
        Assert.Equal(kind == TokenizerJsonKind.LlamaSentencePiece ? "llama" : "gpt2", summary.Tokenizer.Model);
        Assert.Equal(kind switch { TokenizerJsonKind.Qwen2 => "qwen2", TokenizerJsonKind.Llama3 => "llama-bpe", _ => null }, summary.Tokenizer.PreTokenizer);

        var ours = HuggingFaceTokenizerFiles.LoadTokenizer(folder);
        using var reference = LlamaCppModel.LoadVocabOnly(gguf);
        string[] texts = [.. HuggingFaceTokenizerAgreementTests.Corpus, .. TokenizerCorpus.Random(seed: 77, count: 150)];
        var failures = new List<string>();
        int compared = 0;
        foreach (string raw in texts)
        {
            // the known legitimate differences (HuggingFaceTokenizerAgreementTests.HuggingFaceIds_EqualLlamaCppIds_OnNfcText):
            // llama.cpp's character tables are Unicode 15.1, it makes "</s>" an end-of-generation control token
            // (an ordinary token in Qwen2's vocabulary), and it does not apply Qwen2's NFC normalizer
            string text = TextSplitting.ReplaceLoneSurrogates(raw);
            if (HuggingFaceTokenizerAgreementTests.HasUnicode16Characters(text) || kind == TokenizerJsonKind.Qwen2 && text.Contains("</s>", StringComparison.Ordinal))
                continue;
            text = UnicodeNormalization.Normalize(text, UnicodeForm.Nfc);
            compared++;
            int[] expected = ours.Encode(text, addSpecial: true, parseSpecial: true);
            int[] actual = reference.Tokenize(text, addSpecial: true, parseSpecial: true);
            if (!expected.AsSpan().SequenceEqual(actual))
                failures.Add($"{HuggingFaceTokenizerAgreementTests.Show(text)}\n    HF:        [{string.Join(", ", expected)}]\n    llama.cpp: [{string.Join(", ", actual)}]");
        }
        Assert.True(compared > texts.Length * 3 / 4, $"only {compared} of {texts.Length} texts compared");
        output.WriteLine($"{compared - failures.Count} of {compared} texts tokenized identically ({texts.Length - compared} with known differences left out)");
        Assert.True(failures.Count == 0, $"{failures.Count} of {compared} texts differ:\n" + string.Join("\n", failures.Take(10)));
        Assert.Equal(HuggingFaceTokenizerFiles.Load(folder).ChatTemplate, reference.MetadataString("tokenizer.chat_template"));
        // a tokenizer without BOS (Qwen2) gets llama.cpp's default id, which add_bos_token=false leaves unused
        if (ours.BosId >= 0) Assert.Equal(ours.BosId, reference.BosId);
        Assert.Equal(ours.EosId, reference.EosId);
    }

    /// <summary>
    /// Half-precision checkpoints: an F16 (or BF16) GGUF in llama.cpp's layout, exported to F16 (BF16) safetensors and
    /// converted back to f16 (bf16), has every tensor bit for bit (the llama q/k rows permuted back) and the same
    /// hyper-parameters; the BF16 model is llama.cpp's own quantization of the random F32 model.
    /// </summary>
    [Theory]
    [InlineData(RandomModelArchitecture.Llama, "f16")]
    [InlineData(RandomModelArchitecture.Qwen2, "f16")]
    [InlineData(RandomModelArchitecture.Llama, "bf16")]
    public void HalfPrecisionFolderConvertsBackToTheSameBytes(RandomModelArchitecture architecture, string type)
    {
        var spec = RandomModelSpec.Tiny(architecture, RandomModelVocabulary.Synthetic);
        string original = type == "f16"
            ? RandomModels.GetPath(spec with { WeightType = TensorType.F16 })
            : RandomModels.GetQuantizedPath(spec, LlamaFtype.MOSTLY_BF16);
        string folder = Path.Combine(_root, $"half-{architecture}-{type}");
        GgufToHuggingFace.Export(original, folder, new HfExportOptions { Shards = 3 });
        TokenizerJsonFixtures.WriteSmallByteLevel(folder, 100);
        string gguf = Path.Combine(_root, $"half-{architecture}-{type}.gguf");
        HuggingFaceToGguf.Convert(folder, gguf, GgufOutputType.Parse(type));

        using var a = GgufFile.Open(original);
        using var b = GgufFile.Open(gguf);
        Assert.Equal(a.Tensors.Select(t => t.Name).Order(), b.Tensors.Select(t => t.Name).Order());
        foreach (var expected in a.Tensors)
        {
            var actual = b.GetTensor(expected.Name);
            Assert.Equal(expected.Type, actual.Type);
            Assert.Equal(expected.Dimensions, actual.Dimensions);
            unsafe
            {
                Assert.True(new ReadOnlySpan<byte>(expected.Data, (int)expected.ByteSize).SequenceEqual(new ReadOnlySpan<byte>(actual.Data, (int)actual.ByteSize)),
                    $"{expected.Name} ({expected.Type}): bytes differ from the original GGUF");
            }
        }
        string arch = a.GetString("general.architecture");
        Assert.Equal(arch, b.GetString("general.architecture"));
        foreach (string key in new[] { "context_length", "embedding_length", "block_count", "feed_forward_length", "attention.head_count", "attention.head_count_kv" })
            Assert.Equal(a.GetInt32($"{arch}.{key}"), b.GetInt32($"{arch}.{key}"));
        foreach (string key in new[] { "rope.freq_base", "attention.layer_norm_rms_epsilon" })
            Assert.Equal(a.GetFloat32($"{arch}.{key}"), b.GetFloat32($"{arch}.{key}"));
    }

    public static TheoryData<RandomModelArchitecture, string, LlamaFtype, bool> QuantizedCases => new()
    {
        { RandomModelArchitecture.Llama, "q8_0", LlamaFtype.MOSTLY_Q8_0, true },
        { RandomModelArchitecture.Llama, "q4_0", LlamaFtype.MOSTLY_Q4_0, true },
        { RandomModelArchitecture.Qwen2, "q4_0", LlamaFtype.MOSTLY_Q4_0, true },
        { RandomModelArchitecture.Qwen2, "q8_0", LlamaFtype.MOSTLY_Q8_0, false },
        { RandomModelArchitecture.Llama, "q4_0", LlamaFtype.MOSTLY_Q4_0, false },
        { RandomModelArchitecture.Llama, "q5_1", LlamaFtype.MOSTLY_Q5_1, true },
        { RandomModelArchitecture.Qwen2, "q4_1", LlamaFtype.MOSTLY_Q4_1, false },
        { RandomModelArchitecture.Llama, "q5_0", LlamaFtype.MOSTLY_Q5_0, false },
        { RandomModelArchitecture.Qwen2, "f16", LlamaFtype.MOSTLY_F16, false },
        { RandomModelArchitecture.Llama, "bf16", LlamaFtype.MOSTLY_BF16, false },
        { RandomModelArchitecture.Llama, "q4_k_m", LlamaFtype.MOSTLY_Q4_K_M, true },
        { RandomModelArchitecture.Qwen2, "q4_k_m", LlamaFtype.MOSTLY_Q4_K_M, true },
        { RandomModelArchitecture.Llama, "q4_k_m", LlamaFtype.MOSTLY_Q4_K_M, false },
    };

    /// <summary>
    /// A quantized conversion is the file llama_model_quantize makes from the F32 conversion: every tensor has the
    /// same type, dimensions and bytes (with rows of 256 the output matrix becomes Q6_K, with rows of 64 it falls
    /// back to Q8_0; 1-D tensors stay F32).
    /// </summary>
    [Theory, MemberData(nameof(QuantizedCases))]
    public void QuantizedConversionIsByteIdenticalToLlamaCppsQuantizer(RandomModelArchitecture architecture, string type, LlamaFtype ftype, bool rowsOf256)
    {
        // 8 layers for the K-quant mix, whose attn_v / ffn_down types depend on the layer
        var spec = rowsOf256 ? RandomModelSpec.Quantizable(architecture) : RandomModelSpec.Tiny(architecture, RandomModelVocabulary.Synthetic);
        if (type == "q4_k_m") spec = spec with { BlockCount = 8 };
        string folder = HfFolder($"q-{architecture}-{type}-{rowsOf256}", spec, new HfExportOptions { Layout = HfCheckpointLayout.LlavaOld });
        string f32 = Path.Combine(_root, $"q-{architecture}-{rowsOf256}-f32.gguf");
        string ours = Path.Combine(_root, $"q-{architecture}-{type}-{rowsOf256}.gguf");
        string theirs = Path.Combine(_root, $"q-{architecture}-{type}-{rowsOf256}-llama.gguf");
        HuggingFaceToGguf.Convert(folder, f32, GgufOutputType.F32);
        HuggingFaceToGguf.Convert(folder, ours, GgufOutputType.Parse(type));
        LlamaCppModel.Quantize(f32, theirs, ftype);

        using var a = GgufFile.Open(ours);
        using var b = GgufFile.Open(theirs);
        Assert.Equal(b.Tensors.Select(t => t.Name).Order(), a.Tensors.Select(t => t.Name).Order());
        var types = new SortedSet<string>();
        foreach (var expected in b.Tensors)
        {
            var actual = a.GetTensor(expected.Name);
            Assert.True(expected.Type == actual.Type, $"{expected.Name}: llama.cpp {expected.Type}, ours {actual.Type}");
            Assert.Equal(expected.Dimensions, actual.Dimensions);
            unsafe
            {
                Assert.True(new ReadOnlySpan<byte>(expected.Data, (int)expected.ByteSize).SequenceEqual(new ReadOnlySpan<byte>(actual.Data, (int)actual.ByteSize)),
                    $"{expected.Name} ({expected.Type}): bytes differ from llama.cpp's quantizer");
            }
            string shortName = expected.Name.StartsWith("blk.", StringComparison.Ordinal) ? expected.Name[4..] : expected.Name;
            types.Add($"{shortName.Replace(".weight", "", StringComparison.Ordinal)}={actual.Type}");
        }
        Assert.Equal((uint)ftype, (uint)a.GetInt32("general.file_type"));
        output.WriteLine($"{architecture} {type} (rows of {(rowsOf256 ? 256 : 64)}): {a.Tensors.Count} tensors identical; {string.Join(" ", types)}");
    }
}
