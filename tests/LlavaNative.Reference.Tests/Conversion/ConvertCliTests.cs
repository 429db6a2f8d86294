using LlavaNative.Model.Formats.Gguf;
using LlavaNative.Reference.Tests.Cli;
using LlavaNative.TestSupport;
using LlavaNative.TestSupport.HuggingFace;
using Xunit;

namespace LlavaNative.Reference.Tests.Conversion;

/// <summary>`llava convert` as a child process: exit codes 0 / 1 (the work failed) / 2 (command-line mistake) and messages.</summary>
public sealed class ConvertCliTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("llavanative-convert-cli-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); }
        catch (IOException) { }
    }

    private string Folder()
    {
        string folder = Path.Combine(_root, "qwen2-hf");
        GgufToHuggingFace.Export(RandomModels.GetPath(RandomModelSpec.Tiny(RandomModelArchitecture.Qwen2, RandomModelVocabulary.Synthetic)), folder,
            new HfExportOptions { Layout = HfCheckpointLayout.LlavaOld });
        TokenizerJsonFixtures.WriteSmallByteLevel(folder, 100);
        return folder;
    }

    [Fact]
    public void ConvertWritesAGgufAndSaysWhat()
    {
        string output = Path.Combine(_root, "out.gguf");
        var (exit, _, err) = CliContractTests.RunCli("convert", "-m", Folder(), "-o", output, "--type", "q8_0", "--name", "tiny");
        Assert.True(exit == 0, err);
        Assert.Contains("qwen2", err);
        Assert.Contains("[PAD] tokens", err);
        Assert.Contains("vision tower", err); // the llava folder's vision tensors are not part of the text GGUF
        using var file = GgufFile.Open(output);
        Assert.Equal("tiny", file.GetString("general.name"));
        Assert.Equal(7, file.GetInt32("general.file_type"));
    }

    [Fact]
    public void UnsupportedTypeIsAUsageError()
    {
        string output = Path.Combine(_root, "out.gguf");
        var (exit, _, err) = CliContractTests.RunCli("convert", "-m", _root, "-o", output, "--type", "q3_k_m");
        Assert.Equal(2, exit);
        Assert.Contains("q3_k_m", err);
        Assert.Contains("supported: f32, f16, bf16, q8_0", err);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public void BadFoldersFailWithTheReason()
    {
        var (exit, _, err) = CliContractTests.RunCli("convert", "-m", Path.Combine(_root, "missing"), "-o", Path.Combine(_root, "out.gguf"));
        Assert.Equal(1, exit);
        Assert.Contains("folder not found", err);

        (exit, _, err) = CliContractTests.RunCli("convert", "-m", _root, "-o", Path.Combine(_root, "out.gguf"));
        Assert.Equal(1, exit);
        Assert.Contains("config.json", err);

        (exit, _, err) = CliContractTests.RunCli("convert", "-m", _root);
        Assert.Equal(2, exit);
        Assert.Contains("missing -o", err);
    }
}
