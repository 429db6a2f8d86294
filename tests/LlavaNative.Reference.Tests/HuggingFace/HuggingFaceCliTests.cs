using LlavaNative.Model.Formats.Npy;
using LlavaNative.Reference.Tests.Cli;
using LlavaNative.TestSupport;
using LlavaNative.TestSupport.HuggingFace;
using LlavaNative.TestSupport.LlamaCpp;
using Xunit;

namespace LlavaNative.Reference.Tests.HuggingFace;

/// <summary>`llava eval -m FOLDER` reads a Hugging Face checkpoint folder as readily as a GGUF file.</summary>
public sealed class HuggingFaceCliTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("llavanative-hf-cli-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); }
        catch (IOException) { }
    }

    [Fact]
    public void EvalOnAHuggingFaceFolderWritesLlamaCppsLogits()
    {
        string gguf = RandomModels.GetPath(RandomModelSpec.Tiny(RandomModelArchitecture.Llama, RandomModelVocabulary.Synthetic));
        string folder = Path.Combine(_root, "llama-hf");
        GgufToHuggingFace.Export(gguf, folder, new HfExportOptions { Shards = 2 });
        int[] tokens = [1, 300, 301, 77, 400, 5];
        string npy = Path.Combine(_root, "logits.npy");

        var (exit, _, err) = CliContractTests.RunCli("eval", "-m", folder, "--tokens", string.Join(",", tokens), "--logits-out", npy, "-t", "2");
        Assert.True(exit == 0, err);
        var (data, shape) = NpyFile.ReadFloat32(npy);
        using var reference = LlamaCppModel.Load(gguf);
        Assert.Equal([tokens.Length, reference.VocabSize], shape);
        var expected = reference.EvalLogits(tokens);
        double maxAbs = 0;
        for (int t = 0; t < tokens.Length; t++)
            for (int v = 0; v < reference.VocabSize; v++)
                maxAbs = Math.Max(maxAbs, Math.Abs(data[t * reference.VocabSize + v] - expected[t][v]));
        Assert.True(maxAbs <= 2e-5, $"max abs {maxAbs:E3}");
    }

    [Fact]
    public void EvalOnAFolderWithoutConfigSaysWhy()
    {
        var (exit, _, err) = CliContractTests.RunCli("eval", "-m", _root, "--tokens", "1,2", "--logits-out", Path.Combine(_root, "x.npy"));
        Assert.NotEqual(0, exit);
        Assert.Contains("config.json", err);
    }
}
