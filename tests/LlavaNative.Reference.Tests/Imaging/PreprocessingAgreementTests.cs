using System.Diagnostics;
using LlavaNative.Model.Formats.Npy;
using LlavaNative.Model.Imaging;
using Xunit;
using Xunit.Abstractions;

namespace LlavaNative.Reference.Tests.Imaging;

/// <summary>
/// Resizing and the full preprocessing against Pillow + numpy doing what the Hugging Face processors do
/// (preprocess_reference.py): fitted uint8 pixels identical (the issue allows ±1; Pillow's fixed-point
/// arithmetic is reproduced, so we require exact), normalised tensors within 1e-6.
/// </summary>
public sealed class PreprocessingAgreementTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("llava-preprocess-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private static Image TestImage(int width, int height, int seed)
    {
        // Half smooth gradient, half noise: smooth regions test interpolation, noise tests ringing and clamping.
        var r = new Random(seed);
        var px = new byte[width * height * 3];
        for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++)
        for (int c = 0; c < 3; c++)
        {
            int i = (y * width + x) * 3 + c;
            px[i] = x < width / 2
                ? (byte)((x * 255 / Math.Max(1, width - 1) + y * 97 / Math.Max(1, height) + c * 60) % 256)
                : (byte)r.Next(256);
        }
        return new Image(width, height, 3, px);
    }

    public static TheoryData<int, int, string, int> Cases => new()
    {
        { 500, 375, "crop", 336 },     // downscale, landscape
        { 375, 500, "crop", 336 },     // portrait
        { 100, 61, "crop", 336 },      // upscale, odd size
        { 17, 400, "crop", 224 },      // extreme aspect
        { 336, 336, "crop", 336 },     // identity
        { 1000, 999, "crop", 336 },    // strong downscale (wide antialiasing kernel)
        { 640, 480, "pad", 336 },      // original LLaVA pad-to-square
        { 33, 90, "pad", 336 },
        { 640, 427, "stretch", 384 },  // SigLIP
        { 5, 7, "stretch", 384 },
        { 640, 427, "resize_then_pad", 336 },
        { 200, 800, "resize_then_pad", 336 },
    };

    [Theory, MemberData(nameof(Cases))]
    public void MatchesPillowAndHuggingFaceArithmetic(int width, int height, string mode, int size)
    {
        var image = TestImage(width, height, width * 31 + height);
        string input = Path.Combine(_dir, "in.npy"), fittedPath = Path.Combine(_dir, "fitted.npy"), pixelsPath = Path.Combine(_dir, "pixels.npy");
        NpyFile.WriteUInt8(input, image.Pixels, height, width, 3);
        RunPython("preprocess_reference.py", input, mode, size.ToString(), fittedPath, pixelsPath);

        var config = mode switch
        {
            "crop" => ImagePreprocessorConfig.Clip(size),
            "pad" => ImagePreprocessorConfig.Clip(size, ImageFitMode.Pad),
            "resize_then_pad" => ImagePreprocessorConfig.Clip(size, ImageFitMode.ResizeThenPad),
            _ => ImagePreprocessorConfig.SigLip(size),
        };
        var fitted = ImagePreprocessor.Fit(image, config);
        var (expectedFitted, fittedShape) = NpyFile.ReadFloat32(fittedPath);
        Assert.Equal([size, size, 3], fittedShape);
        int maxDiff = 0, differing = 0;
        for (int i = 0; i < expectedFitted.Length; i++)
        {
            int d = Math.Abs(fitted.Pixels[i] - (int)expectedFitted[i]);
            maxDiff = Math.Max(maxDiff, d);
            if (d != 0) differing++;
        }

        var pixels = ImagePreprocessor.Process(image, config);
        var (expectedPixels, pixelShape) = NpyFile.ReadFloat32(pixelsPath);
        Assert.Equal([3, size, size], pixelShape);
        double maxAbs = 0;
        for (int i = 0; i < pixels.Length; i++) maxAbs = Math.Max(maxAbs, Math.Abs(pixels[i] - expectedPixels[i]));
        output.WriteLine($"{width}x{height} {mode} → {size}: uint8 max diff {maxDiff} ({differing} values differ), normalized max abs {maxAbs:E2}");
        Assert.Equal(0, maxDiff);
        Assert.True(maxAbs <= 1e-6, $"normalized max abs {maxAbs:E3}");
    }

    internal static void RunPython(string script, params string[] args)
    {
        const string python = "/usr/bin/python3";
        if (!File.Exists(python)) throw new InvalidOperationException("/usr/bin/python3 is missing; run tools/install-test-deps.sh");
        var psi = new ProcessStartInfo(python) { RedirectStandardError = true, RedirectStandardOutput = true };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Imaging", script));
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"{script} failed ({p.ExitCode}): {err}" +
                (err.Contains("No module named") ? " — run tools/install-test-deps.sh" : ""));
    }
}
