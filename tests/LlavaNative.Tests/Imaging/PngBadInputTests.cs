using System.IO.Compression;
using LlavaNative.Model.Imaging;
using LlavaNative.TestSupport.Imaging;
using Xunit;

namespace LlavaNative.Tests.Imaging;

/// <summary>
/// Corrupt, truncated, inconsistent and hostile PNG files: each is an <see cref="ImageFormatException"/> that
/// names the source and the problem — never another exception, a hang or a huge allocation.
/// (Pixel correctness is checked against Pillow in LlavaNative.Reference.Tests.)
/// </summary>
public sealed class PngBadInputTests
{
    private const string Source = "bad.png";

    // 5×3 RGB, rows cycling through all five filters.
    private static readonly byte[] Rgb = Enumerable.Range(0, 5 * 3 * 3).Select(i => (byte)(i * 37 + 11)).ToArray();

    private static byte[] Ihdr(int w = 5, int h = 3, int depth = 8, int colorType = 2, int interlace = 0) =>
        TestPng.Chunk("IHDR", TestPng.Ihdr(w, h, depth, colorType, interlace));

    private static byte[] Idat() => TestPng.Chunk("IDAT", TestPng.Zlib(TestPng.FilterRows(Rgb, 3, 3, y => y % 5)));
    private static byte[] Iend() => TestPng.Chunk("IEND", []);
    private static byte[] Valid() => TestPng.Assemble(Ihdr(), Idat(), Iend());

    private static ImageFormatException Fails(byte[] bytes, ImageDecodeOptions? options = null)
    {
        var e = Assert.Throws<ImageFormatException>(() => ImageDecoder.Decode(bytes, Source, options));
        Assert.StartsWith(Source + ": ", e.Message);
        return e;
    }

    [Fact]
    public void Crc32MatchesTheStandardCheckValue()
    {
        // The CRC-32 check value from the ISO 3309 / zlib catalogue: crc32("123456789") = 0xCBF43926.
        Assert.Equal(0xCBF43926u, PngCrc32.Compute("123456789"u8));
        var big = Enumerable.Range(0, 1000).Select(i => (byte)(i * 7)).ToArray();
        Assert.Equal(PngCrc32.Compute(big), PngCrc32.Update(PngCrc32.Compute(big.AsSpan(0, 333)), big.AsSpan(333)));
    }

    [Fact]
    public void ValidFileDecodes()
    {
        var image = ImageDecoder.Decode(Valid(), Source).First;
        Assert.Equal((5, 3, 3), (image.Width, image.Height, image.Channels));
        Assert.Equal(Rgb, image.Pixels);
    }

    [Fact]
    public void EveryTruncationIsACleanError()
    {
        var bytes = Valid();
        for (int cut = 0; cut < bytes.Length; cut++)
        {
            var e = Assert.Throws<ImageFormatException>(() => ImageDecoder.Decode(bytes[..cut], Source));
            Assert.StartsWith(Source + ": ", e.Message);
        }
    }

    [Fact]
    public void EveryFlippedByteIsDetected()
    {
        // Every byte after the signature is covered by a length, a type check or a CRC: no flip may go unnoticed.
        var bytes = Valid();
        for (int i = 0; i < bytes.Length; i++)
        {
            var copy = (byte[])bytes.Clone();
            copy[i] ^= 0x10;
            var e = Assert.Throws<ImageFormatException>(() => ImageDecoder.Decode(copy, Source));
            Assert.StartsWith(Source + ": ", e.Message);
        }
    }

    [Fact]
    public void BadCrcNamesTheChunk()
    {
        var idat = Idat();
        idat[^1] ^= 1;
        Assert.Contains("'IDAT'", Fails(TestPng.Assemble(Ihdr(), idat, Iend())).Message);
        Assert.Contains("bad CRC", Fails(TestPng.Assemble(Ihdr(), idat, Iend())).Message);
        var text = TestPng.Chunk("tEXt", "Comment\0hello"u8);
        text[10] ^= 0x20; // ancillary chunks are checked too
        Assert.Contains("'tEXt'", Fails(TestPng.Assemble(Ihdr(), text, Idat(), Iend())).Message);
        var iend = Iend();
        iend[^2] ^= 0x01;
        Assert.Contains("'IEND'", Fails(TestPng.Assemble(Ihdr(), Idat(), iend)).Message);
    }

    [Fact]
    public void UnknownCriticalChunkIsAnErrorAndUnknownAncillaryChunkIsSkipped()
    {
        var critical = TestPng.Chunk("ABCD", [1, 2, 3]);
        Assert.Contains("unknown critical chunk 'ABCD'", Fails(TestPng.Assemble(Ihdr(), critical, Idat(), Iend())).Message);
        var ancillary = TestPng.Chunk("abCD", [1, 2, 3]);
        var image = ImageDecoder.Decode(TestPng.Assemble(Ihdr(), ancillary, Idat(), ancillary, Iend()), Source).First;
        Assert.Equal(Rgb, image.Pixels);
        Assert.Contains("invalid chunk type", Fails(TestPng.Assemble(Ihdr(), TestPng.Chunk("ID4T", [0]), Idat(), Iend())).Message);
    }

    [Theory]
    [InlineData(5, 3, 3, 2, 0, "colour type 2 with bit depth 3")]
    [InlineData(5, 3, 4, 2, 0, "colour type 2 with bit depth 4")]
    [InlineData(5, 3, 16, 3, 0, "colour type 3 with bit depth 16")]
    [InlineData(5, 3, 8, 5, 0, "colour type 5")]
    [InlineData(5, 3, 8, 1, 0, "colour type 1")]
    [InlineData(0, 3, 8, 2, 0, "size 0×3")]
    [InlineData(5, 0, 8, 2, 0, "size 5×0")]
    [InlineData(-1, 3, 8, 2, 0, "size 4294967295×3")]
    [InlineData(5, 3, 8, 2, 2, "interlace method 2")]
    public void InvalidHeader(int w, int h, int depth, int colorType, int interlace, string expected)
    {
        Assert.Contains(expected, Fails(TestPng.Assemble(Ihdr(w, h, depth, colorType, interlace), Idat(), Iend())).Message);
    }

    [Fact]
    public void InvalidHeaderFields()
    {
        var ihdr = TestPng.Ihdr(5, 3, 8, 2);
        ihdr[10] = 1;
        Assert.Contains("compression method 1", Fails(TestPng.Assemble(TestPng.Chunk("IHDR", ihdr), Idat(), Iend())).Message);
        ihdr[10] = 0;
        ihdr[11] = 1;
        Assert.Contains("filter method 1", Fails(TestPng.Assemble(TestPng.Chunk("IHDR", ihdr), Idat(), Iend())).Message);
        Assert.Contains("IHDR chunk has 12 bytes", Fails(TestPng.Assemble(TestPng.Chunk("IHDR", ihdr.AsSpan(0, 12)), Idat(), Iend())).Message);
        Assert.Contains("expected IHDR", Fails(TestPng.Assemble(Idat(), Ihdr(), Iend())).Message);
        Assert.Contains("second IHDR", Fails(TestPng.Assemble(Ihdr(), Ihdr(), Idat(), Iend())).Message);
        // The message lists the legal combinations.
        Assert.Contains("gray: 1, 2, 4, 8, 16", Fails(TestPng.Assemble(Ihdr(5, 3, 3, 2), Idat(), Iend())).Message);
    }

    [Fact]
    public void HugeDimensionsFailBeforeAllocating()
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Fails(TestPng.Assemble(Ihdr(int.MaxValue, int.MaxValue), Idat(), Iend()));
        Assert.Contains("MaxPixels", e.Message);
        Assert.Contains("2147483647×2147483647", e.Message);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20, "allocated before rejecting the size");

        var small = new ImageDecodeOptions { MaxPixels = 14 };
        Assert.Contains("limit of 14", Fails(Valid(), small).Message);
        Assert.Equal(15, ImageDecoder.Decode(Valid(), Source, new ImageDecodeOptions { MaxPixels = 15 }).First.Pixels.Length / 3);
    }

    [Fact]
    public void MissingOrMisplacedChunks()
    {
        Assert.Contains("no IDAT", Fails(TestPng.Assemble(Ihdr(), Iend())).Message);
        Assert.Contains("before the IEND", Fails(TestPng.Assemble(Ihdr(), Idat())).Message);
        var palette = TestPng.Chunk("PLTE", [1, 2, 3, 4, 5, 6]);
        var indexRows = TestPng.Chunk("IDAT", TestPng.Zlib(new byte[3 * 6]));
        Assert.Contains("no PLTE", Fails(TestPng.Assemble(Ihdr(colorType: 3), indexRows, Iend())).Message);
        Assert.Contains("PLTE chunk comes after IDAT", Fails(TestPng.Assemble(Ihdr(colorType: 3), indexRows, palette, Iend())).Message);
        Assert.Contains("PLTE chunk has 5 bytes", Fails(TestPng.Assemble(Ihdr(colorType: 3), TestPng.Chunk("PLTE", [1, 2, 3, 4, 5]), indexRows, Iend())).Message);
        Assert.Contains("tRNS chunk comes before PLTE", Fails(TestPng.Assemble(Ihdr(colorType: 3), TestPng.Chunk("tRNS", [0]), palette, indexRows, Iend())).Message);
        Assert.Contains("needs 6", Fails(TestPng.Assemble(Ihdr(), TestPng.Chunk("tRNS", [0, 1]), Idat(), Iend())).Message);
        // IDAT chunks must be consecutive.
        var raw = TestPng.Zlib(TestPng.FilterRows(Rgb, 3, 3, _ => 0));
        var split = TestPng.Assemble(Ihdr(), TestPng.Chunk("IDAT", raw.AsSpan(0, 10)), TestPng.Chunk("tEXt", "a\0b"u8),
            TestPng.Chunk("IDAT", raw.AsSpan(10)), Iend());
        Assert.Contains("consecutive", Fails(split).Message);
    }

    [Fact]
    public void CorruptOrShortImageData()
    {
        Assert.Contains("corrupt zlib", Fails(TestPng.Assemble(Ihdr(), TestPng.Chunk("IDAT", [0x78, 0x9C, 0xFF, 0xFF, 0xFF, 0xFF]), Iend())).Message);
        Assert.Contains("corrupt zlib", Fails(TestPng.Assemble(Ihdr(), TestPng.Chunk("IDAT", [0x12, 0x34, 0x00]), Iend())).Message);
        // Rows 0 and 1 only: the third is missing.
        var twoRows = TestPng.Zlib(TestPng.FilterRows(Rgb.AsSpan(0, 30), 2, 3, _ => 0));
        Assert.Contains("row 2 of 3 is missing", Fails(TestPng.Assemble(Ihdr(), TestPng.Chunk("IDAT", twoRows), Iend())).Message);
        var badFilter = TestPng.FilterRows(Rgb, 3, 3, _ => 0);
        badFilter[16] = 5; // filter byte of row 1
        Assert.Contains("row 1 has filter type 5", Fails(TestPng.Assemble(Ihdr(), TestPng.Chunk("IDAT", TestPng.Zlib(badFilter)), Iend())).Message);
        // Missing Adam7 data names the pass.
        var adam7 = TestPng.Assemble(Ihdr(interlace: 1), TestPng.Chunk("IDAT", TestPng.Zlib(new byte[10])), Iend());
        Assert.Contains("Adam7 pass", Fails(adam7).Message);
    }

    /// <summary>
    /// A valid zlib stream of 1 + 258·<paramref name="matches"/> zero bytes, written directly (compressing a gigabyte
    /// would take seconds): one fixed-Huffman block holding a literal 0 and then matches of length 258 at distance 1,
    /// 13 bits each, then the Adler-32 of n zeros (a = 1, b = n mod 65521).
    /// </summary>
    private static byte[] ZerosZlib(int matches)
    {
        var bytes = new List<byte>(matches * 13 / 8 + 16) { 0x78, 0x01 };
        ulong acc = 0;
        int bits = 0;
        void Put(uint value, int count) // deflate header fields: least significant bit first
        {
            acc |= (ulong)value << bits;
            bits += count;
            while (bits >= 8) { bytes.Add((byte)acc); acc >>= 8; bits -= 8; }
        }
        void PutCode(uint code, int count) // Huffman codes: most significant bit first
        {
            for (int i = count - 1; i >= 0; i--) Put((code >> i) & 1, 1);
        }
        Put(1, 1);          // BFINAL
        Put(1, 2);          // BTYPE = 01, fixed Huffman codes
        PutCode(0x30, 8);   // literal 0
        // Each match: length symbol 285 (= 258, code 11000101) then distance symbol 0 (= 1, code 00000), as the
        // 13 bits 1,1,0,0,0,1,0,1,0,0,0,0,0 in stream order — 0xA3 read least significant bit first.
        for (int i = 0; i < matches; i++) Put(0xA3, 13);
        PutCode(0, 7);      // end of block (256)
        if (bits > 0) Put(0, 8 - bits);
        long n = 1 + 258L * matches;
        uint adler = (uint)(n % 65521) << 16 | 1;
        bytes.AddRange([(byte)(adler >> 24), (byte)(adler >> 16), (byte)(adler >> 8), (byte)adler]);
        return bytes.ToArray();
    }

    [Fact]
    public void ExtraImageDataIsNotInflated()
    {
        // The stream itself is sound: .NET inflates all of it.
        var small = ZerosZlib(1000);
        using (var z = new ZLibStream(new MemoryStream(small), CompressionMode.Decompress))
        {
            var all = new MemoryStream();
            z.CopyTo(all);
            Assert.Equal(1 + 258 * 1000, all.Length);
            Assert.All(all.ToArray(), b => Assert.Equal(0, b));
        }
        // A 1×1 gray image (2 bytes of filtered rows) whose zlib stream goes on for 258 MB of zeros: only what the
        // header asks for is inflated, into row buffers, so this allocates a few megabytes at most.
        var bomb = TestPng.Assemble(Ihdr(1, 1, 8, 0), TestPng.Chunk("IDAT", ZerosZlib(1_000_000)), Iend());
        long before = GC.GetAllocatedBytesForCurrentThread();
        var image = ImageDecoder.Decode(bomb, Source).First;
        Assert.Equal([0], image.Pixels);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 4 << 20, "allocated as if it inflated everything");
    }

    [Fact]
    public void PaletteIndicesPastThePaletteReadAsGrayAndTransparencyKeysApply()
    {
        // 4×1, 8-bit palette with 2 entries: indices 2 and 200 are past its end (Pillow shows them as gray).
        var palette = TestPng.Chunk("PLTE", [10, 20, 30, 40, 50, 60]);
        var rows = TestPng.Chunk("IDAT", TestPng.Zlib([0, 0, 1, 2, 200]));
        var image = ImageDecoder.Decode(TestPng.Assemble(Ihdr(4, 1, 8, 3), palette, rows, Iend()), Source).First;
        Assert.Equal([10, 20, 30, 40, 50, 60, 2, 2, 2, 200, 200, 200], image.Pixels);
        // A tRNS chunk placed after IDAT comes too late to apply (the spec puts it before the image data).
        var late = ImageDecoder.Decode(TestPng.Assemble(Ihdr(4, 1, 8, 3), palette, rows, TestPng.Chunk("tRNS", [0]), Iend()), Source).First;
        Assert.Equal(3, late.Channels);
    }

    [Fact]
    public void ErrorNamesTheFileWhenDecodingFromAPath()
    {
        string dir = Directory.CreateTempSubdirectory("llava-png-bad-").FullName;
        try
        {
            string path = Path.Combine(dir, "broken.png");
            File.WriteAllBytes(path, Valid()[..40]);
            var e = Assert.Throws<ImageFormatException>(() => ImageDecoder.Decode(path));
            Assert.StartsWith("broken.png: PNG ", e.Message);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
