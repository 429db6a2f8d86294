using LlavaNative.Model.Imaging;
using LlavaNative.TestSupport.Imaging;
using Xunit;

namespace LlavaNative.Tests.Imaging;

/// <summary>
/// Corrupt, truncated and hostile GIF files, and the frame/size limits. Compositing is checked against Pillow in
/// LlavaNative.Reference.Tests.
/// </summary>
public sealed class GifBadInputTests
{
    private const string Source = "bad.gif";
    private static readonly byte[] Palette = [0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255]; // 4 entries

    private static byte[] Indices(int n, int seed = 1) => Enumerable.Range(0, n).Select(i => (byte)((i * 7 + seed) % 4)).ToArray();

    private static byte[] TwoFrames() => TestGif.Build(6, 4, Palette,
    [
        new TestGif.Frame(6, 4, Indices(24)),
        new TestGif.Frame(3, 2, Indices(6, 2), X: 2, Y: 1, Transparency: 0, Disposal: 2),
    ]);

    private static ImageFormatException Fails(byte[] bytes, ImageDecodeOptions? options = null)
    {
        var e = Assert.Throws<ImageFormatException>(() => ImageDecoder.Decode(bytes, Source, options));
        Assert.StartsWith(Source + ": GIF ", e.Message);
        return e;
    }

    [Fact]
    public void ValidFileDecodes()
    {
        var decoded = ImageDecoder.Decode(TwoFrames(), Source);
        Assert.Equal("GIF", decoded.Format);
        Assert.Equal(2, decoded.Frames.Count);
        Assert.All(decoded.Frames, f => Assert.Equal((6, 4, 4), (f.Width, f.Height, f.Channels)));
        // First pixel: index (0·7 + 1) % 4 = 1 = red, opaque.
        Assert.Equal([255, 0, 0, 255], decoded.Frames[0].Pixels[..4]);
    }

    [Fact]
    public void EveryTruncationInsideAFrameIsAnError()
    {
        // A file cut between frames (or inside the extensions before a frame) reads as the frames it still holds,
        // as in Pillow and browsers: the trailer is optional. A cut anywhere up to the end of a frame's data is an error.
        var bytes = TwoFrames();
        var first = TestGif.Build(6, 4, Palette, [new TestGif.Frame(6, 4, Indices(24))], trailer: false);
        Assert.Equal(first, bytes[..first.Length]);
        int secondDescriptor = first.Length + 8; // after the 8-byte graphic control extension
        Assert.Equal(0x2C, bytes[secondDescriptor]);
        for (int cut = 0; cut < bytes.Length; cut++)
        {
            if ((cut >= first.Length && cut <= secondDescriptor) || cut == bytes.Length - 1)
            {
                int frames = cut == bytes.Length - 1 ? 2 : 1;
                Assert.Equal(frames, ImageDecoder.Decode(bytes[..cut], Source).Frames.Count);
                continue;
            }
            var e = Assert.Throws<ImageFormatException>(() => ImageDecoder.Decode(bytes[..cut], Source));
            Assert.StartsWith(Source + ": ", e.Message);
        }
    }

    [Fact]
    public void FlippedBytesDecodeOrFailCleanly()
    {
        // GIF has no checksums: a flip may give other pixels, but never another exception or a hang.
        var bytes = TwoFrames();
        foreach (byte mask in new byte[] { 0x01, 0x10, 0x80, 0xFF })
            for (int i = 0; i < bytes.Length; i++)
            {
                var copy = (byte[])bytes.Clone();
                copy[i] ^= mask;
                try
                {
                    ImageDecoder.Decode(copy, Source);
                }
                catch (ImageFormatException e)
                {
                    Assert.StartsWith(Source + ": ", e.Message);
                }
            }
    }

    // Offset of the LZW data in a one-frame file without extensions: header, 4-entry table, descriptor, code size.
    private const int DataStart = 13 + 12 + 10 + 1;

    /// <summary>A one-frame file whose image data is replaced by <paramref name="lzw"/>.</summary>
    private static byte[] WithLzw(int width, int height, byte[] lzw)
    {
        var ms = new MemoryStream();
        ms.Write(TestGif.Build(width, height, Palette, [new TestGif.Frame(width, height, Indices(width * height))]).AsSpan(0, DataStart));
        TestGif.WriteSubBlocks(ms, lzw);
        ms.WriteByte(0x3B);
        return ms.ToArray();
    }

    [Fact]
    public void ImageDataEndingEarlyIsAnError()
    {
        // 10 of the 24 pixels, then the end code (Pillow: "image file is truncated").
        Assert.Contains("ends after 10 of 24 pixels", Fails(WithLzw(6, 4, TestGif.LiteralLzw(Indices(10), 2))).Message);
        // The same without an end code: the sub-blocks simply stop (the zero bits padding the last byte may read as
        // one more literal code 0, so 10 or 11 pixels).
        Assert.Matches("ends after 1[01] of 24 pixels", Fails(WithLzw(6, 4, TestGif.LiteralLzw(Indices(10), 2, endCode: false))).Message);
        // More pixels than the frame holds: the rest is ignored.
        Assert.Equal(24 * 4, ImageDecoder.Decode(WithLzw(6, 4, TestGif.LiteralLzw(Indices(30), 2)), Source).First.Pixels.Length);
    }

    [Fact]
    public void InvalidLzwCodes()
    {
        // Clear, literal 1, then code 7: the table has codes 0-3, clear 4, end 5 and the next free code is 6.
        Assert.Contains("LZW code 7 is past the end of the table", Fails(WithLzw(2, 1, TestGif.PackCodes([4, 1, 7, 5], 3))).Message);
        // A first code that is neither a literal nor clear.
        Assert.Contains("before any table entry", Fails(WithLzw(2, 1, TestGif.PackCodes([6, 1, 5], 3))).Message);

        foreach (int size in new[] { 0, 9, 12 })
        {
            var f = TestGif.Build(2, 1, Palette, [new TestGif.Frame(2, 1, [0, 1])]);
            f[DataStart - 1] = (byte)size;
            Assert.Contains($"minimum code size {size}", Fails(f).Message);
        }
    }

    [Fact]
    public void StructuralErrors()
    {
        Assert.Contains("holds no image", Fails(TestGif.Build(4, 4, Palette, [])).Message);
        Assert.Contains("shorter than the 13-byte", Fails("GIF89a\x01\x00"u8.ToArray()).Message);
        var gce = TestGif.Build(2, 1, Palette, [new TestGif.Frame(2, 1, [0, 1], Transparency: 1)]);
        int at = 13 + Palette.Length;
        Assert.Equal(0xF9, gce[at + 1]);
        gce[at + 2] = 2; // block size 2 instead of 4: too short to hold the flags, delay and index
        Assert.Contains("graphic control extension", Fails(gce).Message);
        var table = TestGif.Build(2, 1, Palette, [new TestGif.Frame(2, 1, [0, 1])]);
        table[10] = 0x87; // global table of 256 entries: runs past the end
        Assert.Contains("global colour table", Fails(table).Message);
    }

    [Fact]
    public void FrameCountLimit()
    {
        var frames = Enumerable.Range(0, 5).Select(k => new TestGif.Frame(2, 2, Indices(4, k)));
        var file = TestGif.Build(2, 2, Palette, frames);
        Assert.Contains("more than 4 frames", Fails(file, new ImageDecodeOptions { MaxFrames = 4 }).Message);
        Assert.Equal(5, ImageDecoder.Decode(file, Source, new ImageDecodeOptions { MaxFrames = 5 }).Frames.Count);
    }

    [Fact]
    public void HugeScreensAndFramesFailBeforeAllocating()
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        // A 65535×65535 screen with a 1×1 frame: 17 GB as RGBA.
        var e = Fails(TestGif.Build(65535, 65535, Palette, [new TestGif.Frame(1, 1, [1])]));
        Assert.Contains("MaxPixels", e.Message);
        // A first frame far outside a small screen grows the screen (as in Pillow) — and is limited the same way.
        Assert.Contains("MaxPixels", Fails(TestGif.Build(2, 2, Palette, [new TestGif.Frame(1, 1, [1], X: 65000, Y: 65000)])).Message);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20, "allocated before rejecting the size");

        // Many tiny frames on a big screen: every frame is a full-screen image.
        var many = TestGif.Build(1000, 1000, Palette, Enumerable.Range(0, 10).Select(k => new TestGif.Frame(1, 1, [1], X: k)));
        Assert.Contains("MaxTotalPixels", Fails(many, new ImageDecodeOptions { MaxTotalPixels = 9_999_999 }).Message);
        Assert.Equal(10, ImageDecoder.Decode(many, Source, new ImageDecodeOptions { MaxTotalPixels = 10_000_000 }).Frames.Count);
        // A later frame's rectangle is limited by MaxPixels too (its LZW work is proportional to its area).
        var wide = TestGif.Build(4, 4, Palette, [new TestGif.Frame(1, 1, [1]), new TestGif.Frame(1, 1, [1])]);
        int second = Array.LastIndexOf(wide, (byte)0x2C);
        wide[second + 5] = 0xFF; wide[second + 6] = 0xFF; // width 65535
        wide[second + 7] = 0xFF; wide[second + 8] = 0xFF; // height 65535
        Assert.Contains("frame 1 is 65535×65535", Fails(wide).Message);
    }
}
