using System.Diagnostics;
using System.Text;
using System.Text.Json;
using LlavaNative.Model.Tokenizers;
using LlavaNative.Model.Tokenizers.HuggingFace;
using Xunit;

namespace LlavaNative.Reference.Tests.Tokenizers.HuggingFace;

/// <summary>
/// tokenizer.model support against Google's sentencepiece (Debian python3-sentencepiece, from
/// tools/install-test-deps.sh): sentencepiece trains a Llama-style BPE model (byte fallback, split digits, identity
/// normalizer, no white-space removal) on our corpus, then encodes texts; we read the same protobuf file and must
/// give the same ids.
/// </summary>
public sealed class SentencePieceModelTests : IDisposable
{
    private const string Python = "/usr/bin/python3";
    private readonly string _root = Directory.CreateTempSubdirectory("llavanative-spm-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private static readonly string[] s_texts =
    [
        .. HuggingFaceTokenizerAgreementTests.Corpus,
        .. TokenizerCorpus.Random(seed: 11, count: 200),
    ];

    /// <summary>Trains a model in <paramref name="folder"/> and returns sentencepiece's ids for each text (no BOS/EOS).</summary>
    private static int[][] TrainAndEncode(string folder, string[] texts)
    {
        string training = Path.Combine(folder, "training.txt");
        var corpus = new StringBuilder();
        for (int i = 0; i < 3; i++)
            foreach (string line in TokenizerCorpus.Tricky.Concat(TokenizerCorpus.Random(seed: 100 + i, count: 400)))
                corpus.Append(line.Replace('\n', ' ').Replace('\r', ' ')).Append('\n');
        corpus.Append(TokenizerCorpus.LongMixedText(20000).Replace('\n', ' '));
        File.WriteAllText(training, corpus.ToString(), new UTF8Encoding(false));
        string inputs = Path.Combine(folder, "texts.json");
        File.WriteAllText(inputs, JsonSerializer.Serialize(texts.Select(TextSplitting.ReplaceLoneSurrogates)), new UTF8Encoding(false));

        string script = """
            import json, os, sys
            import sentencepiece as spm
            folder, training, inputs = sys.argv[1], sys.argv[2], sys.argv[3]
            spm.SentencePieceTrainer.train(
                input=training, model_prefix=os.path.join(folder, "tokenizer"), model_type="bpe", vocab_size=1500,
                byte_fallback=True, split_digits=True, normalization_rule_name="identity", remove_extra_whitespaces=False,
                add_dummy_prefix=True, allow_whitespace_only_pieces=True, character_coverage=0.9995, hard_vocab_limit=False,
                unk_id=0, bos_id=1, eos_id=2, num_threads=1, minloglevel=2)
            sp = spm.SentencePieceProcessor(model_file=os.path.join(folder, "tokenizer.model"))
            texts = json.load(open(inputs, encoding="utf-8"))
            sys.stdout.write(json.dumps([sp.encode(t) for t in texts]))
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
        return JsonSerializer.Deserialize<int[][]>(stdout)!;
    }

    [Fact]
    public void TrainedBpeModel_EncodesAsSentencePiece()
    {
        string folder = Path.Combine(_root, "trained");
        Directory.CreateDirectory(folder);
        int[][] expected = TrainAndEncode(folder, s_texts);

        var vocabulary = HuggingFaceTokenizerFiles.Load(folder);
        var tokenizer = Tokenizer.FromVocabulary(vocabulary);
        Assert.Equal("llama", vocabulary.Model);
        Assert.True(tokenizer.AddBos);
        Assert.Equal(1, tokenizer.BosId);
        Assert.Equal(2, tokenizer.EosId);

        var failures = new List<string>();
        for (int i = 0; i < s_texts.Length; i++)
        {
            // sentencepiece reads "<s>" in text as text: special tokens are not parsed
            int[] ours = tokenizer.Encode(s_texts[i], addSpecial: false, parseSpecial: false);
            if (!ours.AsSpan().SequenceEqual(expected[i]))
                failures.Add($"{HuggingFaceTokenizerAgreementTests.Show(s_texts[i])}\n    sentencepiece: [{string.Join(", ", expected[i])}]\n    ours:          [{string.Join(", ", ours)}]");
        }
        Assert.True(failures.Count == 0, $"{failures.Count} of {s_texts.Length} texts differ from sentencepiece:\n" + string.Join("\n", failures.Take(12)));

        // and with BOS, as LlamaTokenizer adds it by default
        Assert.Equal([1, .. expected[s_texts.Length - 1]], tokenizer.Encode(s_texts[^1], addSpecial: true, parseSpecial: false));
    }

    [Fact]
    public void AddedTokensJson_AndConfig_ExtendTheVocabulary_AsLlavaV1Checkpoints()
    {
        string folder = Path.Combine(_root, "llava-v1");
        Directory.CreateDirectory(folder);
        TrainAndEncode(folder, ["x"]);
        var model = SentencePieceModelFile.Read(Path.Combine(folder, "tokenizer.model"));
        int n = model.Pieces.Length;
        File.WriteAllText(Path.Combine(folder, "added_tokens.json"), $"{{\"<im_patch>\": {n}, \"<im_start>\": {n + 1}, \"<im_end>\": {n + 2}}}");
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"),
            "{\"tokenizer_class\": \"LlamaTokenizer\", \"add_bos_token\": true, \"add_eos_token\": false, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"unk_token\": \"<unk>\"}");
        File.WriteAllText(Path.Combine(folder, "generation_config.json"), "{\"eos_token_id\": 2}");

        var tokenizer = HuggingFaceTokenizerFiles.LoadTokenizer(folder);
        Assert.Equal(n + 3, tokenizer.VocabSize);
        int[] ids = tokenizer.Encode("<im_start><im_patch><im_end> [/INST]", addSpecial: true, parseSpecial: true);
        Assert.Equal([1, n + 1, n, n + 2], ids[..4]);
        Assert.True(tokenizer.IsEndOfGeneration(2));
        // user-defined tokens are recognised even when special tokens are not
        Assert.Contains(n, tokenizer.Encode("a<im_patch>b", addSpecial: false, parseSpecial: false));
    }
}
