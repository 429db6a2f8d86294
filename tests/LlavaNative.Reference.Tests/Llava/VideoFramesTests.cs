using System.Diagnostics;
using LlavaNative.Model.Imaging;
using LlavaNative.Model.Llava;
using LlavaNative.TestSupport.Imaging;
using LlavaNative.TestSupport.Llava;
using Xunit;

namespace LlavaNative.Reference.Tests.Llava;

/// <summary>Frame sampling against numpy's <c>linspace(0, total − 1, n).astype(int)</c>, run by /usr/bin/python3.</summary>
public sealed class VideoFramesTests
{
    private static readonly (int Total, int Count)[] Cases =
        [(1, 1), (2, 1), (2, 2), (5, 2), (5, 3), (7, 4), (10, 3), (10, 8), (16, 8), (30, 7), (97, 13), (100, 32), (1000, 17), (12345, 64)];

    [Fact]
    public void SampleIndices_AreNumpyLinspaceTruncated()
    {
        string script = "import numpy as np\nimport sys\n" +
                        "for a in sys.argv[1:]:\n    t, n = map(int, a.split(':'))\n" +
                        "    print(','.join(str(int(i)) for i in np.linspace(0, t - 1, n).astype(int)))\n";
        var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(script);
        foreach (var (t, n) in Cases) psi.ArgumentList.Add($"{t}:{n}");
        using var p = Process.Start(psi)!;
        string stdout = p.StandardOutput.ReadToEnd(), stderr = p.StandardError.ReadToEnd();
        Assert.True(p.WaitForExit(60_000) && p.ExitCode == 0, $"numpy reference failed (install with tools/install-test-deps.sh): {stderr}");
        string[] lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(Cases.Length, lines.Length);
        for (int i = 0; i < Cases.Length; i++)
            Assert.Equal(lines[i], string.Join(",", VideoFrames.SampleIndices(Cases[i].Total, Cases[i].Count)));
        // More frames asked than exist: every frame once, no repeats.
        Assert.Equal([0, 1, 2], VideoFrames.SampleIndices(3, 10));
    }

    [Fact]
    public void GifWithNFrames_GivesTheSampledFramesInOrder()
    {
        byte[] palette = new byte[3 * 8];
        for (int k = 0; k < 8; k++) palette[3 * k] = (byte)(30 * k);
        var frames = Enumerable.Range(0, 7).Select(k => new TestGif.Frame(4, 2, Enumerable.Repeat((byte)k, 8).ToArray(), MinCodeSize: 3));
        string gif = Path.Combine(LlavaFixtures.TempFolder, $"frames-{Guid.NewGuid():N}.gif");
        File.WriteAllBytes(gif, TestGif.Build(4, 2, palette, frames));
        var images = VideoFrames.Load(gif, 4);
        Assert.Equal([0, 2, 4, 6], VideoFrames.SampleIndices(7, 4));
        Assert.Equal(4, images.Count);
        int[] reds = images.Select(i => (int)i.Decode().ToRgb().Pixels[0]).ToArray();
        Assert.Equal([0, 60, 120, 180], reds);
        Assert.Equal(4, images.Select(i => i.ContentHash).Distinct().Count());
    }

    [Fact]
    public void FrameFolder_IsSortedByName_AndBadVideosAreClearErrors()
    {
        string dir = Path.Combine(LlavaFixtures.TempFolder, $"frames-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        for (int k = 0; k < 5; k++) File.WriteAllBytes(Path.Combine(dir, $"frame{k:D3}.png"), LlavaFixtures.RandomPng(100 + k, 8, 8));
        File.WriteAllText(Path.Combine(dir, "notes.txt"), "not a frame");
        var images = VideoFrames.Load(dir, 3);
        Assert.Equal(["frame000.png", "frame002.png", "frame004.png"], images.Select(i => Path.GetFileName(i.Name)).ToArray());

        string empty = Path.Combine(LlavaFixtures.TempFolder, $"empty-{Guid.NewGuid():N}");
        Directory.CreateDirectory(empty);
        Assert.Contains("no frame images", Assert.Throws<ImageFormatException>(() => VideoFrames.Load(empty, 2)).Message);
        string png = LlavaFixtures.RandomPngFile(110);
        Assert.Contains("animated GIF", Assert.Throws<ImageFormatException>(() => VideoFrames.Load(png, 2)).Message);
        Assert.Throws<FileNotFoundException>(() => VideoFrames.Load(Path.Combine(empty, "missing.gif"), 2));
    }
}
