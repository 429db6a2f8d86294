using System.Buffers.Binary;
using System.Text;
using LlavaNative.Model.Imaging;
using Xunit;

namespace LlavaNative.Tests.Imaging;

/// <summary>
/// Corrupt, truncated and hostile BMP and PGM/PPM files. Pixels are checked against Pillow in
/// LlavaNative.Reference.Tests.
/// </summary>
public sealed class BmpPnmBadInputTests
{
    private const string Source = "bad.img";

    /// <summary>A bottom-up BMP with a 40-byte header; <paramref name="pixelData"/> is the padded rows as stored.</summary>
    private static byte[] Bmp(int width, int height, int bits, byte[] pixelData, int compression = 0, byte[]? extra = null)
    {
        extra ??= [];
        int offset = 14 + 40 + extra.Length;
        var b = new byte[offset + pixelData.Length];
        b[0] = (byte)'B';
        b[1] = (byte)'M';
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(2), b.Length);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(10), offset);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(14), 40);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(18), width);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(22), height);
        BinaryPrimitives.WriteInt16LittleEndian(b.AsSpan(26), 1);
        BinaryPrimitives.WriteInt16LittleEndian(b.AsSpan(28), (short)bits);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(30), compression);
        extra.CopyTo(b, 54);
        pixelData.CopyTo(b, offset);
        return b;
    }

    // 3×2, 24-bit: rows of 9 bytes padded to 12; bottom row first in the file.
    private static byte[] Rgb24() => Bmp(3, 2, 24, [.. Enumerable.Range(0, 24).Select(i => (byte)(10 * i))]);

    private static ImageFormatException Fails(byte[] bytes, ImageDecodeOptions? options = null)
    {
        var e = Assert.Throws<ImageFormatException>(() => ImageDecoder.Decode(bytes, Source, options));
        Assert.StartsWith(Source + ": ", e.Message);
        return e;
    }

    [Fact]
    public void ValidBmpDecodes()
    {
        var image = ImageDecoder.Decode(Rgb24(), Source).First;
        Assert.Equal((3, 2, 3), (image.Width, image.Height, image.Channels));
        // Top row = second stored row (offset 12): B=120, G=130, R=140 → RGB 140, 130, 120.
        Assert.Equal([140, 130, 120], image.Pixels[..3]);
    }

    [Fact]
    public void EveryBmpTruncationIsACleanError()
    {
        var bytes = Rgb24();
        // The last row's padding (3 bytes) is not needed.
        for (int cut = 0; cut < bytes.Length - 3; cut++)
            Assert.StartsWith(Source + ": ", Assert.Throws<ImageFormatException>(() => ImageDecoder.Decode(bytes[..cut], Source)).Message);
        Assert.Equal(18, ImageDecoder.Decode(bytes[..^3], Source).First.Pixels.Length);
    }

    [Fact]
    public void FlippedBmpBytesDecodeOrFailCleanly()
    {
        var palette = Enumerable.Range(0, 16 * 4).Select(i => (byte)i).ToArray();
        var files = new[] { Rgb24(), Bmp(5, 3, 4, new byte[12], extra: palette), Bmp(2, 2, 16, new byte[8], 3, [0, 0xF8, 0, 0, 0xE0, 7, 0, 0, 0x1F, 0, 0, 0]) };
        foreach (var bytes in files)
            foreach (byte mask in new byte[] { 0x01, 0x40, 0x80, 0xFF })
                for (int i = 0; i < bytes.Length; i++)
                {
                    var copy = (byte[])bytes.Clone();
                    copy[i] ^= mask;
                    try { ImageDecoder.Decode(copy, Source); }
                    catch (ImageFormatException e) { Assert.StartsWith(Source + ": ", e.Message); }
                }
    }

    [Fact]
    public void BmpHeaderErrors()
    {
        Assert.Contains("MaxPixels", Fails(Bmp(int.MaxValue, int.MaxValue, 24, [])).Message);
        Assert.Contains("MaxPixels", Fails(Bmp(100_000, -100_000, 8, [])).Message);
        Assert.Contains("empty or negative", Fails(Bmp(-3, 2, 24, new byte[24])).Message);
        Assert.Contains("empty or negative", Fails(Bmp(3, 0, 24, new byte[24])).Message);
        Assert.Contains("MaxPixels", Fails(Bmp(1, int.MinValue, 24, [])).Message);
        Assert.Contains("bit depth 2", Fails(Bmp(3, 2, 2, new byte[8])).Message);
        Assert.Contains("RLE8 compression with 24-bit pixels", Fails(Bmp(3, 2, 24, new byte[8], compression: 1)).Message);
        Assert.Contains("RLE4 compression with 8-bit pixels", Fails(Bmp(3, 2, 8, new byte[8], compression: 2)).Message);
        Assert.Contains("cannot be top-down", Fails(Bmp(3, -2, 8, new byte[8], compression: 1, extra: new byte[1024])).Message);
        Assert.Contains("embedded JPEG", Fails(Bmp(3, 2, 24, new byte[8], compression: 4)).Message);
        Assert.Contains("compression type 9", Fails(Bmp(3, 2, 24, new byte[8], compression: 9)).Message);
        Assert.Contains("bitfields compression with 8-bit", Fails(Bmp(3, 2, 8, new byte[8], compression: 3)).Message);
        // Green mask 0x0F0F is not one run of bits.
        Assert.Contains("green bitfield mask 0x00000F0F", Fails(Bmp(2, 2, 16, new byte[8], 3, [0, 0xF0, 0, 0, 0x0F, 0x0F, 0, 0, 0x0F, 0, 0, 0])).Message);
        Assert.Contains("bitfield masks after the header are cut off", Fails(Bmp(2, 2, 16, [], 3, [0, 0xF8])).Message);
        var header20 = Rgb24();
        header20[14] = 20;
        Assert.Contains("DIB header size 20", Fails(header20).Message);
        var palette = Bmp(2, 2, 8, new byte[8]);
        BinaryPrimitives.WriteInt32LittleEndian(palette.AsSpan(46), 200_000); // colours used
        Assert.Contains("colour table size 200000", Fails(palette).Message);
        BinaryPrimitives.WriteInt32LittleEndian(palette.AsSpan(46), 0);
        Assert.Contains("colour table (256 entries) is cut off", Fails(palette).Message);
        Assert.Contains("too short", Fails("BM\0\0"u8.ToArray()).Message);
    }

    // 4×3 RLE8 with a 4-entry table (index i = gray 60·i + 10): bottom row a run of four 1s; middle row a literal
    // run 2, 3, 0 (padded to 16 bits) then end of line; then end of bitmap before the top row.
    private static readonly byte[] RleTable = [10, 10, 10, 0, 70, 70, 70, 0, 130, 130, 130, 0, 190, 190, 190, 0];
    private static readonly byte[] Rle8Data = [4, 1, 0, 0, 0, 3, 2, 3, 0, 0, 0, 0, 0, 1];

    private static byte[] Rle8(byte[] data)
    {
        var b = Bmp(4, 3, 8, data, compression: 1, extra: RleTable);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(46), 4); // colours used
        return b;
    }

    [Fact]
    public void RunLengthEscapesAndAnEarlyEndOfBitmap()
    {
        // Pixels the data never sets (the rest of the middle row, the whole top row) are index 0.
        var image = ImageDecoder.Decode(Rle8(Rle8Data), Source).First;
        byte[] expectedGray = [10, 10, 10, 10, /* middle */ 130, 190, 10, 10, /* bottom */ 70, 70, 70, 70];
        Assert.Equal(expectedGray.SelectMany(g => new[] { g, g, g }).ToArray(), image.Pixels);
    }

    [Fact]
    public void RunLengthTruncationAndFlipsFailCleanly()
    {
        var bytes = Rle8(Rle8Data);
        // Every cut is an error: the end-of-bitmap marker may be missing only once every row is complete, and here
        // the marker itself stands for the top row.
        for (int cut = 0; cut < bytes.Length; cut++)
            Assert.StartsWith(Source + ": ", Assert.Throws<ImageFormatException>(() => ImageDecoder.Decode(bytes[..cut], Source)).Message);
        foreach (byte mask in new byte[] { 0x01, 0x02, 0x80, 0xFF })
            for (int i = 0; i < bytes.Length; i++)
            {
                var copy = (byte[])bytes.Clone();
                copy[i] ^= mask;
                try { ImageDecoder.Decode(copy, Source); }
                catch (ImageFormatException e) { Assert.StartsWith(Source + ": ", e.Message); }
            }
        // Runs far past the row end are cut there and a move far past the image ends it: nothing is written out of
        // bounds. Bottom row: a run of 255 ones, then a literal run of 200 (both cut to 4 pixels); then a move away.
        byte[] wild = [255, 1, 0, 200, .. Enumerable.Repeat((byte)3, 200), 0, 0, 0, 2, 255, 255];
        var image = ImageDecoder.Decode(Rle8(wild), Source).First;
        Assert.Equal(Enumerable.Repeat((byte)10, 24).Concat(Enumerable.Repeat((byte)70, 12)), image.Pixels);
    }

    [Fact]
    public void BmpAllocatesNothingBeforeRejectingASize()
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        Fails(Bmp(60_000, 60_000, 32, []));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20);
    }

    private static byte[] Pnm(string header, params byte[] raster) => [.. Encoding.ASCII.GetBytes(header), .. raster];

    [Fact]
    public void ValidPnmDecodes()
    {
        var image = ImageDecoder.Decode(Pnm("P6\n# comment\n2 1\n255\n", 1, 2, 3, 4, 5, 6), Source).First;
        Assert.Equal((2, 1, 3), (image.Width, image.Height, image.Channels));
        Assert.Equal([1, 2, 3, 4, 5, 6], image.Pixels);
        // maxval 3: 0, 1, 2, 3 → 0, 85, 170, 255.
        Assert.Equal([0, 85, 170, 255], ImageDecoder.Decode(Pnm("P2 4 1 3\n0 1 2\n3"), Source).First.Pixels);
    }

    [Fact]
    public void EveryPnmTruncationIsACleanError()
    {
        foreach (var bytes in new[] { Pnm("P6\n2 1\n255\n", 1, 2, 3, 4, 5, 6), Pnm("P5 2 2 65535\n", 1, 2, 3, 4, 5, 6, 7, 8), Pnm("P3\n2 1\n255\n1 2 3 4 5 6") })
            for (int cut = 0; cut < bytes.Length; cut++)
                Assert.StartsWith(Source + ": ", Assert.Throws<ImageFormatException>(() => ImageDecoder.Decode(bytes[..cut], Source)).Message);
    }

    [Fact]
    public void PnmHeaderAndSampleErrors()
    {
        Assert.Contains("maxval 0", Fails(Pnm("P5 1 1 0\n", 0)).Message);
        Assert.Contains("maxval 65536", Fails(Pnm("P5 1 1 65536\n", 0, 0)).Message);
        Assert.Contains("MaxPixels", Fails(Pnm("P6 99999 99999 255\n", 1, 2, 3)).Message);
        Assert.Contains("more than 10 digits", Fails(Pnm("P5 12345678901 1 255\n", 0)).Message);
        Assert.Contains("width is not a number", Fails(Pnm("P5 x 1 255\n", 0)).Message);
        Assert.Contains("followed by byte", Fails(Pnm("P5 1x 1 255\n", 0)).Message);
        Assert.Contains("empty or negative", Fails(Pnm("P5 0 1 255\n")).Message);
        Assert.Contains("sample 1 is 200, above maxval 100", Fails(Pnm("P5 2 1 100\n", 7, 200)).Message);
        Assert.Contains("sample 2 is 70000, above maxval 65535", Fails(Pnm("P2 3 1 65535\n1 2 70000\n")).Message);
        Assert.Contains("sample 0 is not a number", Fails(Pnm("P2 1 1 255\n-1\n")).Message);
        Assert.Contains("not a PGM/PPM", Fails(Pnm("P6x 1 1 255\n", 1, 2, 3)).Message);
        Assert.Contains("ends after 1 of 2", Fails(Pnm("P2 2 1 255\n7 # no second sample\n")).Message);
    }
}
