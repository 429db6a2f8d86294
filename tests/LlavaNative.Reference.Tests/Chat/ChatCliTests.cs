using System.Diagnostics;
using System.Text.Json;
using LlavaNative.Model.Llava;
using LlavaNative.TestSupport.Llava;
using Xunit;
using Xunit.Abstractions;

namespace LlavaNative.Reference.Tests.Chat;

/// <summary>`llava chat` as a child process with redirected stdin (no prompt decorations, lines until EOF).</summary>
public sealed class ChatCliTests(ITestOutputHelper output)
{
    internal static (int Exit, string Out, string Err) RunChat(string stdin, params string[] args)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "llava.dll");
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
            WorkingDirectory = LlavaFixtures.TempFolder,
        };
        psi.ArgumentList.Add(dll);
        psi.ArgumentList.Add("chat");
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.StandardInput.Write(stdin);
        p.StandardInput.Close();
        if (!p.WaitForExit(120_000)) { p.Kill(true); throw new TimeoutException($"llava chat {string.Join(' ', args)} did not finish"); }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    private static string[] Args(string text, string mmproj, params string[] more) =>
        ["-m", text, "--mmproj", mmproj, "--temp", "0", "-n", "6", "-c", "512", "-t", "2", .. more];

    [Fact]
    public void TwoTurnsWithAnImage_AnswerAsTheOnePassConversation_AndSaveWritesTheConversation()
    {
        var (text, mmproj) = OnePassChat.Pair;
        string image = LlavaFixtures.RandomPngFile(41);
        string saved = Path.Combine(LlavaFixtures.TempFolder, $"chat-{Guid.NewGuid():N}.json");
        string stdin = $"/image {image}\n{OnePassChat.FirstQuestion}\n{OnePassChat.SecondQuestion}\n/save {saved}\n";
        var (exit, stdout, err) = RunChat(stdin, Args(text, mmproj, "--timings"));
        output.WriteLine(err);
        Assert.True(exit == 0, err);

        using var model = LlavaModel.LoadGguf(text, mmproj);
        var reference = OnePassChat.Compute(model, model.ChooseChatTemplate()!, LlavaImage.FromFile(image), answerTokens: 6);
        Assert.Equal(reference.FirstAnswer + "\n" + reference.SecondAnswer + "\n", stdout);
        Assert.Contains("0 reused (Full)", err);
        Assert.Contains($"reused ({reference.ExpectedUpdate})", err); // the second turn kept the first in the cache
        Assert.DoesNotContain("> ", err); // no prompt marker when stdin is not a terminal

        using var json = JsonDocument.Parse(File.ReadAllText(saved));
        var messages = json.RootElement.GetProperty("messages").EnumerateArray().ToArray();
        Assert.Equal(["user", "assistant", "user", "assistant"], messages.Select(m => m.GetProperty("role").GetString()));
        Assert.Equal(OnePassChat.FirstQuestion, messages[0].GetProperty("text").GetString());
        Assert.Equal([Path.GetFullPath(image)], messages[0].GetProperty("images").EnumerateArray().Select(i => i.GetString()));
        Assert.Equal(reference.FirstAnswer, messages[1].GetProperty("text").GetString());
        Assert.Equal("TokenLimit", messages[1].GetProperty("stop").GetString());
        Assert.Equal(OnePassChat.SecondQuestion, messages[2].GetProperty("text").GetString());
        Assert.False(messages[2].TryGetProperty("images", out _));
        Assert.Equal(reference.SecondAnswer, messages[3].GetProperty("text").GetString());
        Assert.Equal("vicuna-v1", json.RootElement.GetProperty("chat_template").GetString());

        // --load restores it: the next turn continues the loaded conversation (one image, encoded once).
        (exit, stdout, err) = RunChat($"{OnePassChat.SecondQuestion}\n/save {saved}\n", Args(text, mmproj, "--load", saved, "--timings"));
        Assert.True(exit == 0, err);
        using var again = JsonDocument.Parse(File.ReadAllText(saved));
        Assert.Equal(6, again.RootElement.GetProperty("messages").GetArrayLength());
        Assert.Contains("images encoded: 1", err);
    }

    [Fact]
    public async Task CtrlC_StopsTheAnswer_WhichStaysMarked_AndTheChatGoesOn()
    {
        var (text, mmproj) = OnePassChat.Pair;
        string saved = Path.Combine(LlavaFixtures.TempFolder, $"chat-{Guid.NewGuid():N}.json");
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
            WorkingDirectory = LlavaFixtures.TempFolder,
        };
        foreach (var a in (string[])[Path.Combine(AppContext.BaseDirectory, "llava.dll"), "chat", "-m", text, "--mmproj", mmproj,
                     "--temp", "0", "-n", "3000", "--ignore-eos", "-c", "4096", "-t", "2"])
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        p.StandardInput.WriteLine("Tell me a long story.");
        p.StandardInput.Flush();
        var first = new char[1];
        Assert.Equal(1, p.StandardOutput.Read(first, 0, 1)); // the answer is streaming (--ignore-eos: it cannot end before the signal)
        using (var kill = Process.Start("kill", ["-INT", p.Id.ToString()])) kill.WaitForExit();
        p.StandardInput.WriteLine($"/save {saved}");
        p.StandardInput.Close();
        string rest = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(120_000)) { p.Kill(true); throw new TimeoutException("llava chat did not finish after Ctrl-C"); }
        string err = await stderr;
        output.WriteLine(err);
        Assert.Equal(0, p.ExitCode);
        Assert.Contains("answer interrupted", err);

        using var json = JsonDocument.Parse(File.ReadAllText(saved));
        var answer = json.RootElement.GetProperty("messages")[1];
        Assert.Equal("Cancelled", answer.GetProperty("stop").GetString());
        Assert.True(answer.GetProperty("incomplete").GetBoolean());
        Assert.Equal(answer.GetProperty("text").GetString() + "\n", first[0] + rest);
    }

    [Fact]
    public void Reset_StartsOver_AndBadImagesAreReportedWhileTheChatGoesOn()
    {
        var (text, mmproj) = OnePassChat.Pair;
        string missing = Path.Combine(LlavaFixtures.TempFolder, "no-such-picture.png");
        string notAnImage = Path.Combine(LlavaFixtures.TempFolder, "notes.png");
        File.WriteAllText(notAnImage, "just some text, not pixels");
        string stdin = $"/image {missing}\n/image {notAnImage}\nHello\n/reset\nHello\n/bogus\n/help\n/exit\nnever read\n";
        var (exit, stdout, err) = RunChat(stdin, Args(text, mmproj, "--timings"));
        output.WriteLine(err);
        Assert.True(exit == 0, err);
        Assert.Contains("no-such-picture.png", err);
        Assert.Contains("notes.png", err);
        Assert.Contains("conversation cleared", err);
        Assert.Contains("unknown command '/bogus'", err);
        Assert.Contains("/save FILE", err);
        string[] answers = stdout.Split('\n');
        Assert.Equal(3, answers.Length); // two answers and the final newline; "never read" after /exit
        Assert.Equal(answers[0], answers[1]); // greedy, and after /reset the same first turn
        Assert.Contains("images encoded: 0", err); // neither bad file reached the model
    }

    [Fact]
    public void FullContext_IsReported_TheChatGoesOn_AndEofExitsCleanly()
    {
        var (text, mmproj) = OnePassChat.Pair;
        string image = LlavaFixtures.RandomPngFile(42);
        string stdin = $"/image {image}\nHi\n{new string('x', 200)}\n/reset\nHi\n";
        var (exit, stdout, err) = RunChat(stdin, ["-m", text, "--mmproj", mmproj, "--temp", "0", "-n", "2", "-c", "80", "-t", "2", "--chat-template", "llava-1.5"]);
        Assert.True(exit == 0, err);
        Assert.Contains("context full", err);
        Assert.Contains("/reset", err);
        Assert.Equal(3, stdout.Split('\n').Length); // the first and the post-reset answer

        (exit, _, err) = RunChat("", Args(text, mmproj));
        Assert.Equal(0, exit);
        (exit, _, err) = RunChat("", ["-m", text]);
        Assert.Equal(2, exit);
        Assert.Contains("--mmproj", err);
        (exit, _, err) = RunChat("", Args(text, mmproj, "--load", Path.Combine(LlavaFixtures.TempFolder, "missing-chat.json")));
        Assert.Equal(1, exit);
        Assert.Contains("missing-chat.json", err);
    }
}
