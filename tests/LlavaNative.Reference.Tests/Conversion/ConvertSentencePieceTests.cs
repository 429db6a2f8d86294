using System.Diagnostics;
using System.Text;
using System.Text.Json;
using LlavaNative.Model.Formats.Conversion;
using LlavaNative.Model.Formats.Gguf;
using LlavaNative.Model.Tokenizers.HuggingFace;
using LlavaNative.Reference.Tests.Tokenizers;
using LlavaNative.Reference.Tests.Tokenizers.HuggingFace;
using LlavaNative.TestSupport;
using LlavaNative.TestSupport.HuggingFace;
using LlavaNative.TestSupport.LlamaCpp;
using Xunit;
using Xunit.Abstractions;

namespace LlavaNative.Reference.Tests.Conversion;

/// <summary>
/// A folder with only a SentencePiece tokenizer.model (older Llama / Vicuna / LLaVA checkpoints): Google's
/// sentencepiece trains a Llama-style BPE model with the user-defined symbol <c>&lt;image&gt;</c>, the folder is
/// converted, and llama.cpp's tokenization of the GGUF must be sentencepiece's own ids.
/// </summary>
public sealed class ConvertSentencePieceTests(ITestOutputHelper output) : IDisposable
{
    private const string Python = "/usr/bin/python3";
    private readonly string _root = Directory.CreateTempSubdirectory("llavanative-convert-spm-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); }
        catch (IOException) { }
    }

    /// <summary>
    /// Trains tokenizer.model in <paramref name="folder"/>; returns its piece count, the id of &lt;image&gt; and, per
    /// text, sentencepiece's ids. For a text holding &lt;image&gt; the ids are those of Hugging Face's legacy
    /// LlamaTokenizer and of llama.cpp: the text is split at each &lt;image&gt; and every other fragment is encoded
    /// by sentencepiece on its own (so it gets the "▁" prefix); sentencepiece alone would not prefix the fragment
    /// after the symbol.
    /// </summary>
    private static (int Pieces, int Image, int[][] Ids) TrainAndEncode(string folder, string[] texts)
    {
        string training = Path.Combine(folder, "training.txt");
        var corpus = new StringBuilder();
        foreach (string line in TokenizerCorpus.Tricky.Concat(TokenizerCorpus.Random(seed: 300, count: 400)))
            corpus.Append(line.Replace('\n', ' ').Replace('\r', ' ')).Append('\n');
        corpus.Append(TokenizerCorpus.LongMixedText(10000).Replace('\n', ' ')).Append('\n');
        corpus.Append("USER: <image>\nWhat is in the image? ASSISTANT: a cat\n");
        File.WriteAllText(training, corpus.ToString(), new UTF8Encoding(false));
        string inputs = Path.Combine(folder, "texts.json");
        File.WriteAllText(inputs, JsonSerializer.Serialize(texts), new UTF8Encoding(false));

        string script = """
            import json, os, sys
            import sentencepiece as spm
            folder, training, inputs = sys.argv[1], sys.argv[2], sys.argv[3]
            spm.SentencePieceTrainer.train(
                input=training, model_prefix=os.path.join(folder, "tokenizer"), model_type="bpe", vocab_size=800,
                byte_fallback=True, split_digits=True, normalization_rule_name="identity", remove_extra_whitespaces=False,
                add_dummy_prefix=True, allow_whitespace_only_pieces=True, character_coverage=0.9995, hard_vocab_limit=False,
                user_defined_symbols=["<image>"], unk_id=0, bos_id=1, eos_id=2, num_threads=1, minloglevel=2)
            sp = spm.SentencePieceProcessor(model_file=os.path.join(folder, "tokenizer.model"))
            image = sp.piece_to_id("<image>")
            def legacy(t):
                ids = []
                for i, fragment in enumerate(t.split("<image>")):
                    if i > 0: ids.append(image)
                    if fragment: ids.extend(sp.encode(fragment))
                return ids
            texts = json.load(open(inputs, encoding="utf-8"))
            ids = [legacy(t) if "<image>" in t else sp.encode(t) for t in texts]
            sys.stdout.write(json.dumps({"pieces": sp.get_piece_size(), "image": image, "ids": ids}))
            """;
        if (!File.Exists(Python))
            throw new InvalidOperationException($"{Python} is missing; run tools/install-test-deps.sh");
        var start = new ProcessStartInfo(Python, ["-c", script, folder, training, inputs]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"sentencepiece failed (python3-sentencepiece comes from tools/install-test-deps.sh): {stderr.Result}");
        using var result = JsonDocument.Parse(stdout);
        var root = result.RootElement;
        return (root.GetProperty("pieces").GetInt32(), root.GetProperty("image").GetInt32(),
            root.GetProperty("ids").Deserialize<int[][]>()!);
    }

    [Fact]
    public void TokenizerModelWithAUserDefinedSymbolTokenizesInLlamaCppAsSentencePiece()
    {
        string[] texts =
        [
            .. HuggingFaceTokenizerAgreementTests.Corpus.Select(TextSplitting.ReplaceLoneSurrogates),
            .. TokenizerCorpus.Random(seed: 12, count: 150).Select(TextSplitting.ReplaceLoneSurrogates),
            "USER: <image>\nWhat is in the image? ASSISTANT:", "<image>", "a<image>b", "  <image>  <image><image> x ",
        ];
        string tokenizer = Path.Combine(_root, "tokenizer");
        Directory.CreateDirectory(tokenizer);
        var (pieces, image, expected) = TrainAndEncode(tokenizer, texts);
        Assert.True(image > 2);

        // an embedding with 40 rows more than the tokenizer has pieces, as llava-hf checkpoints have
        var spec = RandomModelSpec.Tiny(RandomModelArchitecture.Llama, RandomModelVocabulary.Synthetic) with { SyntheticVocabularySize = pieces + 40 };
        string folder = Path.Combine(_root, "model");
        GgufToHuggingFace.Export(RandomModels.GetPath(spec), folder);
        File.Copy(Path.Combine(tokenizer, "tokenizer.model"), Path.Combine(folder, "tokenizer.model"));
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"),
            "{\"tokenizer_class\": \"LlamaTokenizer\", \"add_bos_token\": true, \"add_eos_token\": false, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"unk_token\": \"<unk>\", \"legacy\": true}");
        string gguf = Path.Combine(_root, "model.gguf");
        var summary = HuggingFaceToGguf.Convert(folder, gguf, GgufOutputType.F16);
        Assert.Equal("llama", summary.Tokenizer.Model);
        Assert.Equal("tokenizer.model", summary.Tokenizer.Source);
        Assert.Equal(40, summary.Tokenizer.PaddedTokens);
        using (var file = GgufFile.Open(gguf))
            Assert.Equal(4, file.GetIntArray("tokenizer.ggml.token_type")[image]); // USER_DEFINED, as sentencepiece types it

        using var reference = LlamaCppModel.LoadVocabOnly(gguf);
        Assert.Equal(pieces + 40, reference.VocabSize);
        Assert.Equal(1, reference.BosId);
        Assert.Equal(2, reference.EosId);
        var failures = new List<string>();
        for (int i = 0; i < texts.Length; i++)
        {
            // sentencepiece reads "<s>" in a text as text: special tokens are not parsed (user-defined ones still are)
            int[] actual = reference.Tokenize(texts[i], addSpecial: false, parseSpecial: false);
            if (!actual.AsSpan().SequenceEqual(expected[i]))
                failures.Add($"{HuggingFaceTokenizerAgreementTests.Show(texts[i])}\n    sentencepiece: [{string.Join(", ", expected[i])}]\n    llama.cpp:     [{string.Join(", ", actual)}]");
        }
        output.WriteLine($"{texts.Length - failures.Count} of {texts.Length} texts: llama.cpp on the converted GGUF = sentencepiece ({pieces} pieces, <image> = {image})");
        Assert.True(failures.Count == 0, $"{failures.Count} of {texts.Length} texts differ:\n" + string.Join("\n", failures.Take(10)));
        Assert.Equal([1, .. expected[^4]], reference.Tokenize(texts[^4], addSpecial: true, parseSpecial: true));
    }
}
