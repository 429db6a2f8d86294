using LlavaNative.Model.Imaging;
using Xunit;

namespace LlavaNative.Tests.Imaging;

/// <summary>
/// The vector Paeth kernel (one 3- or 4-byte pixel per step) against the byte-by-byte reference, on random rows of
/// every length up to 130 pixels; and the byte-by-byte kernel against the predictor exactly as the PNG
/// specification writes it (section 9.4), with branches. Pillow agreement for whole files is in the reference tests.
/// </summary>
public sealed class PngFilterTests
{
    private static int SpecPaeth(int a, int b, int c)
    {
        int p = a + b - c;
        int pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        if (pa <= pb && pa <= pc) return a;
        if (pb <= pc) return b;
        return c;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(6)]
    [InlineData(8)]
    public void ScalarPaethMatchesTheSpecification(int stride)
    {
        var random = new Random(stride);
        for (int pixels = 0; pixels <= 40; pixels++)
        {
            var filtered = new byte[pixels * stride];
            var prior = new byte[pixels * stride];
            random.NextBytes(filtered);
            random.NextBytes(prior);
            var expected = (byte[])filtered.Clone();
            for (int i = 0; i < expected.Length; i++)
            {
                int a = i >= stride ? expected[i - stride] : 0, c = i >= stride ? prior[i - stride] : 0;
                expected[i] = (byte)(filtered[i] + SpecPaeth(a, prior[i], c));
            }
            var row = (byte[])filtered.Clone();
            PngDecoder.UnfilterPaethScalar(row, prior, stride);
            Assert.Equal(expected, row);
        }
    }

    [Theory]
    [InlineData(3)]
    [InlineData(4)]
    public void VectorPaethMatchesScalar(int stride)
    {
        var random = new Random(10 + stride);
        for (int pixels = 0; pixels <= 130; pixels++)
        {
            foreach (bool smooth in new[] { false, true })
            {
                var filtered = new byte[pixels * stride];
                var prior = new byte[pixels * stride];
                random.NextBytes(filtered);
                random.NextBytes(prior);
                if (smooth) // small differences: ties between the three distances are common
                    for (int i = 0; i < prior.Length; i++) { prior[i] = (byte)(100 + i % 3); filtered[i] = (byte)(i % 2); }
                var expected = (byte[])filtered.Clone();
                PngDecoder.UnfilterPaethScalar(expected, prior, stride);
                // The row sits inside a larger buffer: the kernel must not touch the byte after it.
                var buffer = new byte[filtered.Length + 1];
                filtered.CopyTo(buffer, 0);
                buffer[^1] = 0xA5;
                PngDecoder.UnfilterPaethPixels(buffer.AsSpan(0, filtered.Length), prior, stride);
                Assert.Equal(expected, buffer[..^1]);
                Assert.Equal(0xA5, buffer[^1]);
            }
        }
    }

    [Fact]
    public void OtherFiltersMatchTheSpecification()
    {
        var random = new Random(3);
        foreach (int stride in new[] { 1, 3, 4, 8 })
            for (int length = 0; length <= 70; length++)
            {
                var filtered = new byte[length];
                var prior = new byte[length];
                random.NextBytes(filtered);
                random.NextBytes(prior);
                for (int filter = 0; filter <= 3; filter++)
                {
                    var expected = (byte[])filtered.Clone();
                    for (int i = 0; i < length; i++)
                    {
                        int a = i >= stride ? expected[i - stride] : 0, b = prior[i];
                        expected[i] += (byte)(filter switch { 0 => 0, 1 => a, 2 => b, _ => (a + b) / 2 });
                    }
                    var row = (byte[])filtered.Clone();
                    PngDecoder.Unfilter(filter, row, prior, stride);
                    Assert.Equal(expected, row);
                }
            }
    }
}
