using System.Diagnostics;
using System.Text.Json;
using LlavaNative.Cli;
using Xunit;
using Xunit.Abstractions;

namespace LlavaNative.Reference.Tests.TinyLlava;

/// <summary>
/// The README's first command: <c>llava run</c> / <c>llava chat</c> with no <c>-m</c>, from the repository root, use the
/// shipped tiny LLaVA and answer as the PyTorch model does (tests/data/tiny-llava-eval/torch_sample_answers.jsonl,
/// made by tools/tiny-llava/torch_sample_answers.py).
/// </summary>
public sealed class TinyLlavaCliTests(ITestOutputHelper output)
{
    [Fact]
    public void RunWithoutModelOption_UsesTheShippedModel_AndAnswersAsTorch()
    {
        var (image, question, torchAnswer) = SampleAnswer("samples/tiny-llava-0.png", "What color is the circle?");
        var (exit, stdout, stderr) = RunCliInRepoRoot(null, "run", "--image", image, "-p", question, "--temp", "0", "-t", "2");
        output.WriteLine($"llava run --image {image} -p \"{question}\" --temp 0 → '{stdout.Trim()}' (torch '{torchAnswer}'); stderr: {stderr.Trim()}");
        Assert.True(exit == 0, stderr);
        Assert.Contains(Path.Combine("models", "tiny-llava", "hf"), stderr);
        Assert.Equal(torchAnswer, stdout.Trim());
    }

    [Fact]
    public void ChatWithoutModelOption_UsesTheShippedModel_AndAnswersAsTorch()
    {
        var (image, question, torchAnswer) = SampleAnswer("samples/tiny-llava-3.png", "How many objects are there?");
        var (exit, stdout, stderr) = RunCliInRepoRoot(question + "\n", "chat", "--image", image, "--temp", "0", "-t", "2");
        output.WriteLine($"llava chat --image {image} --temp 0 <<< \"{question}\" → '{stdout.Trim()}' (torch '{torchAnswer}')");
        Assert.True(exit == 0, stderr);
        Assert.Equal(torchAnswer, stdout.Trim());
    }

    [Fact]
    public void DefaultModelFind_WalksUpToTheFolderHoldingModelsTinyLlava_AndReturnsNullElsewhere()
    {
        string root = Path.Combine(Path.GetTempPath(), $"llava-default-model-{Guid.NewGuid():N}");
        try
        {
            string deep = Path.Combine(root, "a", "b", "c");
            Directory.CreateDirectory(deep);
            Assert.Null(DefaultModel.Find(deep));
            string hf = Path.Combine(root, "a", "models", "tiny-llava", "hf");
            Directory.CreateDirectory(hf);
            Assert.Null(DefaultModel.Find(deep)); // a folder without config.json is not a model
            File.WriteAllText(Path.Combine(hf, "config.json"), "{}");
            Assert.Equal(hf, DefaultModel.Find(deep));
            Assert.Null(DefaultModel.Find(Path.Combine(root)));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void RunWithoutModelOption_OutsideTheRepository_IsAUsageErrorNamingWhereItLooked()
    {
        // The CLI copied outside the checkout and started there: neither its folder nor the current directory leads to
        // models/tiny-llava/hf.
        string root = Path.Combine(Path.GetTempPath(), $"llava-no-model-{Guid.NewGuid():N}");
        try
        {
            string bin = Path.Combine(root, "bin"), cwd = Path.Combine(root, "cwd");
            Directory.CreateDirectory(bin);
            Directory.CreateDirectory(cwd);
            foreach (string file in Directory.EnumerateFiles(AppContext.BaseDirectory))
                if (Path.GetFileName(file) is var n && (n.StartsWith("llava.", StringComparison.Ordinal) || n.StartsWith("LlavaNative.", StringComparison.Ordinal)))
                    File.Copy(file, Path.Combine(bin, n));
            if (DefaultModel.Find(root) is { } found) throw new InvalidOperationException($"{root} lies under a tree with a shipped model ({found})");
            var (exit, stdout, stderr) = RunCli(cwd, Path.Combine(bin, "llava.dll"), null, "run", "-p", "hello");
            output.WriteLine(stderr);
            Assert.Equal(2, exit);
            Assert.Equal("", stdout);
            Assert.Contains("missing -m", stderr);
            Assert.Contains(cwd, stderr);
            Assert.Contains(bin, stderr);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static (string Image, string Question, string TorchAnswer) SampleAnswer(string image, string question)
    {
        string path = Path.Combine(TinyLlavaFiles.EvalFolder, "torch_sample_answers.jsonl");
        foreach (string line in File.ReadLines(path))
        {
            using var doc = JsonDocument.Parse(line);
            var r = doc.RootElement;
            if (r.GetProperty("image").GetString() == image && r.GetProperty("question").GetString() == question)
                return (image, question, r.GetProperty("torch_answer").GetString()!);
        }
        throw new InvalidDataException($"{path}: no torch answer for {image} / '{question}'; rerun tools/tiny-llava/torch_sample_answers.py");
    }

    /// <summary>The CLI of this build as a child process whose current directory is the repository root.</summary>
    private static (int Exit, string Out, string Err) RunCliInRepoRoot(string? stdin, params string[] args)
        => RunCli(TinyLlavaFiles.RepoRoot, Path.Combine(AppContext.BaseDirectory, "llava.dll"), stdin, args);

    private static (int Exit, string Out, string Err) RunCli(string workingDirectory, string dll, string? stdin, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true,
            WorkingDirectory = workingDirectory,
        };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        if (stdin is not null) p.StandardInput.Write(stdin);
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(120_000)) { p.Kill(true); throw new TimeoutException($"llava {string.Join(' ', args)} did not finish"); }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }
}
