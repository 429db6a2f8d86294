using System.Diagnostics;
using System.Runtime.InteropServices;
using LlavaNative.Model.Imaging;
using LlavaNative.Model.Imaging.Jpeg;
using Xunit;
using Xunit.Abstractions;

namespace LlavaNative.Reference.Tests.Imaging;

/// <summary>
/// Our JPEG decoder against libjpeg-turbo's djpeg (and Pillow for CMYK and EXIF files) on a generated corpus.
/// Tolerance: at most ±2 per channel and a mean absolute error below 0.5 over the image — decoders that make
/// libjpeg's IDCT and upsampling choices land within that; a wrong IDCT, upsampling filter or colour matrix does not.
/// Each file's maximum and mean error are printed.
/// </summary>
[Collection(JpegCorpusCollection.Name)]
public sealed class JpegReferenceTests(JpegCorpus corpus, ITestOutputHelper output)
{
    private const int MaxAbsTolerance = 2;
    private const double MeanAbsTolerance = 0.5;

    [Theory]
    [InlineData("sampling")]
    [InlineData("odd-sampling")]
    [InlineData("restart")]
    [InlineData("quality")]
    [InlineData("sizes")]
    [InlineData("tables")]
    [InlineData("scans")]
    [InlineData("colour")]
    [InlineData("encoders")]
    [InlineData("cmyk")]
    [InlineData("exif")]
    public void AgreesWithReferenceDecoder(string group)
    {
        var cases = corpus.Cases.Where(c => c.Group == group).ToList();
        Assert.NotEmpty(cases);
        var failures = new List<string>();
        foreach (var c in cases)
        {
            var decoded = ImageDecoder.Decode(c.JpegPath);
            var reference = PnmImage.Read(c.ReferencePath!);
            var image = decoded.First;
            string line;
            if (image.Width != reference.Width || image.Height != reference.Height || image.Channels != reference.Channels)
            {
                line = $"{c.Name}: ours {image.Width}×{image.Height}×{image.Channels}, reference {reference.Width}×{reference.Height}×{reference.Channels}";
                failures.Add(line);
            }
            else
            {
                (int max, double mean) = Compare(image.Pixels, reference.Pixels);
                line = $"{c.Name,-44} {image.Width,5}×{image.Height,-5} max {max} mean {mean:F4}   ({c.How})";
                if (max > MaxAbsTolerance || mean >= MeanAbsTolerance) failures.Add(line);
            }
            if (decoded.Orientation != c.Orientation) failures.Add($"{c.Name}: orientation {decoded.Orientation}, file says {c.Orientation}");
            Assert.Equal("JPEG", decoded.Format);
            output.WriteLine(line);
        }
        Assert.True(failures.Count == 0, $"{failures.Count} of {cases.Count} files outside ±{MaxAbsTolerance} / MAE {MeanAbsTolerance}:\n" + string.Join("\n", failures));
    }

    private static (int Max, double Mean) Compare(byte[] ours, byte[] reference)
    {
        int max = 0;
        long sum = 0;
        for (int i = 0; i < ours.Length; i++)
        {
            int d = Math.Abs(ours[i] - reference[i]);
            sum += d;
            if (d > max) max = d;
        }
        return (max, (double)sum / ours.Length);
    }

    /// <summary>Without orientation applied, an EXIF file decodes to the stored layout: what djpeg (and plain Pillow) give.</summary>
    [Fact]
    public void ExifOrientationCanBeLeftUnapplied()
    {
        var options = new ImageDecodeOptions { ApplyExifOrientation = false };
        foreach (var c in corpus.Cases.Where(c => c.Group == "exif"))
        {
            var decoded = ImageDecoder.Decode(File.ReadAllBytes(c.JpegPath), c.Name, options);
            Assert.Equal(c.Orientation, decoded.Orientation);
            var stored = ImageDecoder.Decode(c.JpegPath, options).First;
            var upright = ImageDecoder.Decode(c.JpegPath).First;
            Assert.Equal(ExifOrientation.Apply(stored, c.Orientation).Pixels, upright.Pixels);
            // Rotations by 90° swap the sides of the 61×37 picture.
            Assert.Equal(c.Orientation >= 5 ? (37, 61) : (61, 37), (upright.Width, upright.Height));
        }
    }

    [Fact]
    public void ArithmeticCodingIsRejectedByName()
    {
        var c = corpus.Cases.Single(c => c.Name == "unsupported_arithmetic");
        var e = Assert.Throws<ImageFormatException>(() => ImageDecoder.Decode(c.JpegPath));
        Assert.StartsWith("unsupported_arithmetic.jpg: ", e.Message);
        Assert.Contains("arithmetic", e.Message);
    }

    /// <summary>
    /// Every truncation of real progressive and restart-interval files (not just our own writer's output) is either
    /// a decoded image or an ImageFormatException, never another exception or a hang.
    /// </summary>
    [Theory]
    [InlineData("scans_deep_successive_approximation_restart")]
    [InlineData("restart_1b_420")]
    [InlineData("odd_sampling_mixed_cb21_cr12_progressive")]
    public void TruncatedAndDamagedCorpusFilesFailCleanly(string name)
    {
        var c = corpus.Cases.Single(c => c.Name == name);
        byte[] data = File.ReadAllBytes(c.JpegPath);
        int decoded = 0, rejected = 0;
        for (int cut = 0; cut < data.Length; cut += Math.Max(1, data.Length / 250))
        {
            if (TryDecode(data[..cut])) decoded++; else rejected++;
        }
        var random = new Random(1234);
        for (int i = 0; i < 250; i++)
        {
            byte[] damaged = (byte[])data.Clone();
            for (int flips = random.Next(1, 4); flips > 0; flips--) damaged[random.Next(damaged.Length)] ^= (byte)random.Next(1, 256);
            if (TryDecode(damaged)) decoded++; else rejected++;
        }
        output.WriteLine($"{name}: {decoded} decoded, {rejected} rejected with ImageFormatException");
        Assert.True(rejected > 0);
    }

    private static bool TryDecode(byte[] data)
    {
        try
        {
            JpegDecoder.Decode(data, "fuzz.jpg", new ImageDecodeOptions { MaxPixels = 1 << 20 });
            return true;
        }
        catch (ImageFormatException e)
        {
            Assert.StartsWith("fuzz.jpg: ", e.Message);
            return false;
        }
    }

    /// <summary>
    /// A 4000×3000 4:2:0 baseline photo-sized JPEG decodes in well under a second on one core and agrees with djpeg.
    /// The bound is on the decoding thread's CPU time (best of three after a warm-up), which other processes on a
    /// shared machine do not inflate the way they inflate wall time; both are printed.
    /// </summary>
    [Fact]
    public void LargeBaselineDecodesQuicklyAndCorrectly()
    {
        var c = corpus.Large;
        byte[] data = File.ReadAllBytes(c.JpegPath);
        var image = JpegDecoder.Decode(data, c.Name).First; // warm-up (JIT)
        double bestCpu = double.MaxValue, bestWall = double.MaxValue;
        for (int i = 0; i < 3; i++)
        {
            var wall = Stopwatch.StartNew();
            double cpu = ThreadCpuSeconds();
            image = JpegDecoder.Decode(data, c.Name).First;
            bestCpu = Math.Min(bestCpu, ThreadCpuSeconds() - cpu);
            bestWall = Math.Min(bestWall, wall.Elapsed.TotalSeconds);
        }
        var reference = PnmImage.Read(c.ReferencePath!);
        (int max, double mean) = Compare(image.Pixels, reference.Pixels);
        output.WriteLine($"{c.Name}: {data.Length / 1e6:F1} MB, best of 3: {bestCpu * 1000:F0} ms CPU ({bestWall * 1000:F0} ms wall); vs djpeg max {max} mean {mean:F4}");
        Assert.Equal((4000, 3000), (image.Width, image.Height));
        Assert.True(max <= MaxAbsTolerance && mean < MeanAbsTolerance, $"max {max} mean {mean}");
        Assert.True(bestCpu < 1.0, $"decoding took {bestCpu:F2} s of CPU time");
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec { public long Seconds; public long Nanoseconds; }

    [DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, out TimeSpec time);

    /// <summary>CPU time of the calling thread (Linux CLOCK_THREAD_CPUTIME_ID); wall time elsewhere.</summary>
    private static double ThreadCpuSeconds()
    {
        const int ClockThreadCpuTime = 3;
        if (OperatingSystem.IsLinux() && ClockGetTime(ClockThreadCpuTime, out var t) == 0) return t.Seconds + t.Nanoseconds * 1e-9;
        return Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency;
    }
}
