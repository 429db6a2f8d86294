using System.Text.Json;
using LlavaNative.Model;
using LlavaNative.Reference.Tests.Cli;
using LlavaNative.TestSupport;
using LlavaNative.TestSupport.HuggingFace;
using Xunit;

namespace LlavaNative.Reference.Tests.Tokenizers.HuggingFace;

/// <summary>
/// A Hugging Face folder with tokenizer.json runs like its GGUF twin: the tiny random Qwen2 model (real Qwen2
/// vocabulary) exported to safetensors with the Qwen2 tokenizer.json built from the same vocabulary.
/// </summary>
public sealed class HuggingFaceTokenizerCliTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("llavanative-hftok-cli-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); }
        catch (IOException) { }
    }

    private string Qwen2Folder()
    {
        string folder = Path.Combine(_root, "qwen2-hf");
        GgufToHuggingFace.Export(RandomModels.TinyQwen2, folder);
        string tokenizer = TokenizerJsonFixtures.Folder(TokenizerJsonKind.Qwen2);
        foreach (string file in new[] { "tokenizer.json", "tokenizer_config.json" })
            File.Copy(Path.Combine(tokenizer, file), Path.Combine(folder, file));
        File.WriteAllText(Path.Combine(folder, "generation_config.json"), "{\"bos_token_id\": 151643, \"eos_token_id\": [151645, 151643]}");
        return folder;
    }

    [Fact]
    public void RunOnAHuggingFaceFolder_GeneratesWhatTheGgufGenerates()
    {
        string folder = Qwen2Folder();
        string prompt = "<|im_start|>user\nWhat is in the picture? 🦙 café<|im_end|>\n<|im_start|>assistant\n";
        string[] options = ["-p", prompt, "--temp", "0", "-n", "16", "-t", "2", "-c", "256"];

        var (exitHf, outHf, errHf) = CliContractTests.RunCli(["run", "-m", folder, .. options]);
        Assert.True(exitHf == 0, errHf);
        var (exitGguf, outGguf, errGguf) = CliContractTests.RunCli(["run", "-m", RandomModels.TinyQwen2, .. options]);
        Assert.True(exitGguf == 0, errGguf);
        Assert.Equal(outGguf, outHf);
        Assert.False(string.IsNullOrWhiteSpace(outHf));
    }

    [Fact]
    public void LoadedModel_CarriesTheTokenizer_WithQwenEndOfGeneration()
    {
        using var model = ModelLoader.Load(Qwen2Folder());
        var vocabulary = model.Vocabulary ?? throw new InvalidOperationException("no tokenizer attached");
        var tokenizer = LlavaNative.Model.Tokenizers.Tokenizer.FromVocabulary(vocabulary);
        Assert.False(tokenizer.AddBos);
        Assert.Equal(151643, tokenizer.EosId); // tokenizer_config.json eos_token "<|endoftext|>"
        Assert.True(tokenizer.IsEndOfGeneration(151645)); // <|im_end|>, from generation_config.json and by its text
        Assert.True(tokenizer.IsEndOfGeneration(151643));
        Assert.False(tokenizer.IsEndOfGeneration(151644)); // <|im_start|>
        Assert.StartsWith("{% for message in messages %}", vocabulary.ChatTemplate);
    }

    [Fact]
    public void TokenizeOnAHuggingFaceFolder_PrintsHuggingFaceIds()
    {
        string folder = TokenizerJsonFixtures.Folder(TokenizerJsonKind.LlamaSentencePiece);
        string text = "USER: <image>\nWhat is this? ASSISTANT: café 🦙";
        var reference = HuggingFaceTokenizersReference.Run(new HuggingFaceTokenizersReference.Job(HuggingFaceEngine.Rust, folder, [text]))[0];

        var (exit, stdout, err) = CliContractTests.RunCli("tokenize", "-m", folder, "--text", text);
        Assert.True(exit == 0, err);
        Assert.Equal(string.Join(",", reference.Encodings[0].WithSpecial), stdout.Trim());

        (exit, stdout, err) = CliContractTests.RunCli("tokenize", "-m", Path.Combine(folder, "tokenizer.json"), "--text", text, "--json");
        Assert.True(exit == 0, err);
        var items = JsonDocument.Parse(stdout).RootElement.EnumerateArray().ToArray();
        Assert.Equal(reference.Encodings[0].WithSpecial, items.Select(i => i.GetProperty("id").GetInt32()).ToArray());
        Assert.Equal("<s>", items[0].GetProperty("piece").GetString());
    }
}
