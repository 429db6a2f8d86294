using LlavaNative.Model.Imaging;
using LlavaNative.Model.Imaging.Jpeg;
using Xunit;
using Xunit.Abstractions;

namespace LlavaNative.Tests.Imaging;

/// <summary>
/// Damaged, truncated, hostile and unsupported JPEG files, built from <see cref="JpegTestWriter"/> output: each is an
/// <see cref="ImageFormatException"/> naming the file and the problem — never a crash, hang or huge allocation.
/// </summary>
public sealed class JpegBadInputTests(ITestOutputHelper output)
{
    private const string Name = "photo.jpg";

    private static ImageFormatException Fails(byte[] data, ImageDecodeOptions? options = null)
    {
        var e = Assert.Throws<ImageFormatException>(() => JpegDecoder.Decode(data, Name, options));
        Assert.StartsWith(Name + ": ", e.Message);
        return e;
    }

    private static byte[] Valid(bool progressive = false, int restart = 0) =>
        new JpegTestWriter { Progressive = progressive, RestartInterval = restart }.Write();

    private static byte[] Splice(byte[] data, int at, int remove, params byte[] insert) =>
        [.. data.AsSpan(0, at), .. insert, .. data.AsSpan(at + remove)];

    [Theory]
    [InlineData(false, 0)]
    [InlineData(true, 0)]
    [InlineData(false, 2)]
    [InlineData(true, 3)]
    public void TestWriterFilesDecode(bool progressive, int restart)
    {
        // Sanity of the base files the damage tests start from: they decode, to roughly the picture written.
        var writer = new JpegTestWriter { Progressive = progressive, RestartInterval = restart, QuantSlope = 1 };
        var image = JpegDecoder.Decode(writer.Write(), Name).First;
        Assert.Equal((writer.Width, writer.Height, 3), (image.Width, image.Height, image.Channels));
        double error = 0;
        for (int y = 0; y < image.Height; y++)
            for (int x = 0; x < image.Width; x++)
            {
                var (r, g, b) = writer.Pixel(x, y);
                int i = (y * image.Width + x) * 3;
                error += Math.Abs(image.Pixels[i] - r) + Math.Abs(image.Pixels[i + 1] - g) + Math.Abs(image.Pixels[i + 2] - b);
            }
        double mean = error / (image.Width * image.Height * 3);
        output.WriteLine($"progressive={progressive} restart={restart}: mean abs error vs source {mean:F2}");
        Assert.True(mean < 6, $"mean error {mean}");
    }

    [Fact]
    public void NotAJpeg()
    {
        Assert.Contains("no SOI", Fails([]).Message);
        Assert.Contains("no SOI", Fails("GIF89a"u8.ToArray()).Message);
    }

    [Fact]
    public void EveryTruncationOfTheScanIsATruncationError()
    {
        foreach (bool progressive in new[] { false, true })
        {
            byte[] data = Valid(progressive);
            int start = JpegTestWriter.ScanDataStart(data);
            for (int cut = start; cut < data.Length - 2; cut++)
            {
                var e = Fails(data[..cut]);
                Assert.True(e.Message.Contains("truncated"), $"cut at {cut} of {data.Length}: {e.Message}");
            }
        }
        // The baseline message says where: which scan, which MCU.
        byte[] baseline = Valid();
        var m = Fails(baseline[..(JpegTestWriter.ScanDataStart(baseline) + 20)]).Message;
        Assert.Matches(@"truncated: the data ends inside scan 1, in MCU \d+ of 6", m);
    }

    [Fact]
    public void EveryTruncationAnywhereFailsCleanly()
    {
        foreach (bool progressive in new[] { false, true })
        {
            byte[] data = Valid(progressive, restart: 1);
            for (int cut = 0; cut < data.Length - 2; cut++) Fails(data[..cut]);
            // Only the EOI marker missing: the image is complete, so it decodes.
            Assert.Equal(37, JpegDecoder.Decode(data[..^2], Name).First.Width);
        }
    }

    [Fact]
    public void RandomByteDamageIsDecodedOrRejected()
    {
        var random = new Random(42);
        var options = new ImageDecodeOptions { MaxPixels = 1 << 20 };
        int decoded = 0, rejected = 0;
        foreach (var data in new[] { Valid(), Valid(progressive: true), Valid(restart: 2), Valid(progressive: true, restart: 1) })
        {
            for (int i = 0; i < 600; i++)
            {
                byte[] damaged = (byte[])data.Clone();
                for (int flips = random.Next(1, 5); flips > 0; flips--)
                {
                    int at = random.Next(damaged.Length);
                    damaged[at] = random.Next(3) switch { 0 => 0xFF, 1 => 0x00, _ => (byte)random.Next(256) };
                }
                try
                {
                    var image = JpegDecoder.Decode(damaged, Name, options).First;
                    Assert.True(image.Width * image.Height <= options.MaxPixels);
                    decoded++;
                }
                catch (ImageFormatException e)
                {
                    Assert.StartsWith(Name + ": ", e.Message);
                    rejected++;
                }
            }
        }
        output.WriteLine($"{decoded} damaged files decoded, {rejected} rejected");
        Assert.True(decoded > 0 && rejected > 0);
    }

    [Fact]
    public void EveryHeaderByteChangedFailsCleanly()
    {
        // Each byte before the entropy-coded data set to a few telling values (0, 1, 0x7F, 0xFF, ±1): the tables,
        // frame and scan headers must reject nonsense with an ImageFormatException or still decode.
        var options = new ImageDecodeOptions { MaxPixels = 1 << 20 };
        foreach (bool progressive in new[] { false, true })
        {
            byte[] data = Valid(progressive, restart: 2);
            int header = JpegTestWriter.ScanDataStart(data);
            for (int at = 0; at < header; at++)
            {
                foreach (int value in new[] { 0, 1, 0x7F, 0xFF, data[at] + 1, data[at] - 1 })
                {
                    byte[] damaged = (byte[])data.Clone();
                    damaged[at] = (byte)value;
                    try
                    {
                        JpegDecoder.Decode(damaged, Name, options);
                    }
                    catch (ImageFormatException e)
                    {
                        Assert.StartsWith(Name + ": ", e.Message);
                    }
                }
            }
        }
    }

    [Fact]
    public void RandomHuffmanCodeLengthsFailCleanly()
    {
        // Redistribute each table's codes over the 16 lengths at random (same symbol count, so the segment stays
        // well formed): over-full code spaces must be rejected, valid ones decode something or fail cleanly.
        var random = new Random(9);
        byte[] data = Valid(progressive: true);
        int dht = JpegTestWriter.FindMarker(data, 0xC4);
        int dcCounts = dht + 5, acCounts = dcCounts + 16 + 12 + 1;
        int rejectedTables = 0;
        for (int trial = 0; trial < 400; trial++)
        {
            byte[] damaged = (byte[])data.Clone();
            int counts = trial % 2 == 0 ? dcCounts : acCounts;
            int total = trial % 2 == 0 ? 12 : 176;
            Array.Clear(damaged, counts, 16);
            int maxLength = random.Next(1, 17);
            for (int i = 0; i < total; i++) damaged[counts + random.Next(maxLength)]++;
            try
            {
                JpegDecoder.Decode(damaged, Name);
            }
            catch (ImageFormatException e)
            {
                Assert.StartsWith(Name + ": ", e.Message);
                if (e.Message.Contains("oversubscribe")) rejectedTables++;
            }
        }
        Assert.True(rejectedTables > 0);
    }

    private static int Sof(byte[] data) => Math.Max(JpegTestWriter.FindMarker(data, 0xC0), JpegTestWriter.FindMarker(data, 0xC2));

    [Theory]
    [InlineData(0xC3, "lossless")]
    [InlineData(0xC5, "hierarchical")]
    [InlineData(0xC9, "arithmetic")]
    [InlineData(0xCA, "arithmetic")]
    public void UnsupportedProcessesAreNamed(int marker, string expected)
    {
        byte[] data = Valid();
        data[Sof(data) + 1] = (byte)marker;
        Assert.Contains($"unsupported JPEG: {expected}", Fails(data).Message);
    }

    [Fact]
    public void TwelveBitSamplesAreUnsupported()
    {
        byte[] data = Valid();
        int sof = Sof(data);
        data[sof + 1] = 0xC1;
        data[sof + 4] = 12;
        Assert.Contains("12-bit samples", Fails(data).Message);
    }

    [Fact]
    public void HeightFromDnlIsUnsupported()
    {
        byte[] data = Valid();
        int sof = Sof(data);
        data[sof + 5] = 0;
        data[sof + 6] = 0;
        Assert.Contains("DNL", Fails(data).Message);
    }

    [Fact]
    public void HugeDimensionsAreRejectedBeforeAllocating()
    {
        byte[] data = Valid();
        int sof = Sof(data);
        data[sof + 5] = 0xFF; data[sof + 6] = 0xFF; // 65535 × 65535
        data[sof + 7] = 0xFF; data[sof + 8] = 0xFF;
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Fails(data);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1_000_000);
        Assert.Contains("65535×65535", e.Message);
        Assert.Contains("MaxPixels", e.Message);
        // A caller's smaller limit applies the same way.
        Assert.Contains("more than the limit of 500", Fails(Valid(), new ImageDecodeOptions { MaxPixels = 500 }).Message);
    }

    [Fact]
    public void ComponentCountAndSamplingAreChecked()
    {
        byte[] data = Valid();
        int sof = Sof(data);
        byte[] twoComponents = (byte[])data.Clone();
        twoComponents[sof + 9] = 2;
        Assert.Contains("2 components", Fails(twoComponents).Message);

        byte[] zeroSampling = (byte[])data.Clone();
        zeroSampling[sof + 11] = 0x02; // luma 0×2
        Assert.Contains("sampling factors 0×2", Fails(zeroSampling).Message);

        byte[] fractional = (byte[])data.Clone();
        fractional[sof + 11] = 0x31; // luma 3×1, chroma 1×1 is fine; make chroma 2×1 for a 3:2 ratio
        fractional[sof + 14] = 0x21;
        Assert.Contains("not an integral fraction", Fails(fractional).Message);

        byte[] badTable = (byte[])data.Clone();
        badTable[sof + 12] = 7;
        Assert.Contains("quantization table 7", Fails(badTable).Message);
    }

    [Fact]
    public void BadHuffmanTablesAreRejected()
    {
        byte[] data = Valid();
        int dht = JpegTestWriter.FindMarker(data, 0xC4);
        // DC table counts start at dht + 5: 12 four-bit codes. 17 four-bit codes oversubscribe the code space.
        byte[] oversubscribed = Splice(data, dht + 5 + 3, 1, 17);
        oversubscribed = Splice(oversubscribed, dht + 5 + 16, 0, 12, 13, 14, 15, 15); // five more symbols
        oversubscribed[dht + 3] += 5;
        Assert.Contains("oversubscribe", Fails(oversubscribed).Message);

        byte[] bigDcSymbol = (byte[])data.Clone();
        bigDcSymbol[dht + 5 + 16 + 11] = 16; // DC category 16
        Assert.Contains("DC magnitude category 16", Fails(bigDcSymbol).Message);
    }

    [Fact]
    public void MissingTablesAreNamed()
    {
        byte[] data = Valid();
        int sos = JpegTestWriter.FindMarker(data, 0xDA);
        byte[] undefinedHuffman = (byte[])data.Clone();
        undefinedHuffman[sos + 6] = 0x11; // component 1 uses DC/AC tables 1, never defined
        Assert.Contains("DC Huffman table 1, which was never defined", Fails(undefinedHuffman).Message);

        byte[] noQuant = (byte[])data.Clone();
        int dqt = JpegTestWriter.FindMarker(noQuant, 0xDB);
        noQuant[dqt + 1] = 0xFE; // the DQT segment becomes a comment
        Assert.Contains("quantization table 0, which was never defined", Fails(noQuant).Message);
    }

    [Fact]
    public void StructureErrors()
    {
        byte[] data = Valid();
        int sof = Sof(data);
        byte[] noFrame = (byte[])data.Clone();
        noFrame[sof + 1] = 0xFE; // SOF becomes a comment: the scan has no frame
        Assert.Contains("scan (SOS) before the frame header", Fails(noFrame).Message);

        int sos = JpegTestWriter.FindMarker(data, 0xDA);
        byte[] unknownComponent = (byte[])data.Clone();
        unknownComponent[sos + 5] = 9;
        Assert.Contains("component 9", Fails(unknownComponent).Message);

        byte[] badLength = (byte[])data.Clone();
        badLength[sof + 2] = 0; badLength[sof + 3] = 1;
        Assert.Contains("segment length of 1", Fails(badLength).Message);

        Assert.Contains("second SOI", Fails(Splice(data, 2, 0, 0xFF, 0xD8)).Message);
        Assert.Contains("no frame header", Fails([0xFF, 0xD8, 0xFF, 0xD9]).Message);
    }

    [Fact]
    public void MarkerInsideScanDataIsCorruption()
    {
        byte[] data = Valid();
        int at = JpegTestWriter.ScanDataStart(data) + 10;
        var e = Fails(Splice(data, at, 0, 0xFF, 0xD9));
        Assert.Contains("corrupt JPEG: scan 1's data ends at marker FFD9", e.Message);
    }

    [Fact]
    public void WrongRestartMarkerIsCorruption()
    {
        byte[] data = Valid(restart: 1);
        int rst1 = JpegTestWriter.FindMarker(data, 0xD1, JpegTestWriter.ScanDataStart(data));
        data[rst1 + 1] = 0xD5;
        Assert.Contains("expected restart marker RST1 after MCU 2 of scan 1, found marker FFD5", Fails(data).Message);
    }

    [Fact]
    public void InvalidProgressionsAreRejected()
    {
        byte[] data = Valid(progressive: true);
        int sos = JpegTestWriter.FindMarker(data, 0xDA);
        int parameters = sos + 4 + 1 + 2 * 3; // Ss, Se, Ah/Al of the first (3-component DC) scan
        byte[] acInterleaved = (byte[])data.Clone();
        acInterleaved[parameters] = 1; acInterleaved[parameters + 1] = 5;
        Assert.Contains("invalid progression Ss=1 Se=5 Ah=0 Al=1 with 3 components", Fails(acInterleaved).Message);

        byte[] dcWithAc = (byte[])data.Clone();
        dcWithAc[parameters + 1] = 3;
        Assert.Contains("invalid progression Ss=0 Se=3", Fails(dcWithAc).Message);

        byte[] badRefinement = (byte[])data.Clone();
        badRefinement[parameters + 2] = 0x31; // Ah=3, Al=1
        Assert.Contains("Ah=3 Al=1", Fails(badRefinement).Message);
    }

    [Fact]
    public void ProgressiveFileCutBetweenScansIsTruncated()
    {
        byte[] data = Valid(progressive: true);
        int secondScan = JpegTestWriter.FindMarker(data, 0xDA, JpegTestWriter.ScanDataStart(data));
        var e = Fails(data[..secondScan]);
        Assert.Contains("truncated: the file ends after scan 1 without an EOI marker", e.Message);
    }

    [Fact]
    public void ComponentsWithoutScansAreAnError()
    {
        // Headers and tables, then EOI: the frame was never coded.
        foreach (bool progressive in new[] { false, true })
        {
            byte[] data = Valid(progressive);
            byte[] headerOnly = [.. data[..JpegTestWriter.FindMarker(data, 0xDA)], 0xFF, 0xD9];
            Assert.Contains("component 1 never appears in a scan", Fails(headerOnly).Message);
        }
    }

    [Fact]
    public void ProgressiveFileEndingAfterItsDcScanDecodes()
    {
        // EOI right after the first (DC) scan: like libjpeg, the coefficients sent so far make the image (8×8 flat blocks).
        byte[] data = Valid(progressive: true);
        int secondScan = JpegTestWriter.FindMarker(data, 0xDA, JpegTestWriter.ScanDataStart(data));
        var image = JpegDecoder.Decode([.. data[..secondScan], 0xFF, 0xD9], Name).First;
        Assert.Equal((37, 21), (image.Width, image.Height));
    }

    [Fact]
    public void TooManyScansAreRejected()
    {
        // A valid progressive file with its final DC refinement scan repeated past the limit.
        byte[] data = Valid(progressive: true);
        int lastScan = data.Length - 2;
        while (!(data[lastScan] == 0xFF && data[lastScan + 1] == 0xDA)) lastScan--;
        byte[] scan = data[lastScan..^2];
        var many = new List<byte>(data[..^2]);
        for (int i = 0; i < JpegDecoder.MaxScans; i++) many.AddRange(scan);
        many.AddRange([0xFF, 0xD9]);
        Assert.Contains($"more than {JpegDecoder.MaxScans} scans", Fails([.. many]).Message);
    }

    [Fact]
    public void ExifParsingProblemsAreIgnored()
    {
        // Broken EXIF must not break decoding: orientation 1, pixels unrotated.
        byte[][] broken =
        [
            [],
            "II*\0"u8.ToArray(),
            [.. "II*\0"u8, 0xFF, 0xFF, 0xFF, 0x7F],                    // IFD offset past the end
            [.. "MM\0*"u8, 0, 0, 0, 8, 0xFF, 0xFF],                    // 65535 entries, none present
            [.. "II*\0"u8, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 9, 0, 0, 0], // orientation 9
            [.. "II*\0"u8, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 2, 0, 1, 0, 0, 0, 6, 0, 0, 0], // type ASCII
            [.. "XX*\0"u8, 8, 0, 0, 0],
        ];
        foreach (var tiff in broken)
        {
            var decoded = JpegDecoder.Decode(new JpegTestWriter { Exif = tiff }.Write(), Name);
            Assert.Equal(1, decoded.Orientation);
            Assert.Equal((37, 21), (decoded.First.Width, decoded.First.Height));
        }
        var rotated = JpegDecoder.Decode(new JpegTestWriter { Exif = [.. "MM\0*"u8, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0] }.Write(), Name);
        Assert.Equal(6, rotated.Orientation);
        Assert.Equal((21, 37), (rotated.First.Width, rotated.First.Height));
    }

    [Fact]
    public void ImageDecoderDispatchesJpeg()
    {
        var decoded = ImageDecoder.Decode(Valid(), Name);
        Assert.Equal("JPEG", decoded.Format);
        Assert.Equal("JPEG", ImageDecoder.Sniff(Valid()));
        var e = Assert.Throws<ImageFormatException>(() => ImageDecoder.Decode(Valid()[..100], Name));
        Assert.StartsWith(Name + ": JPEG is truncated", e.Message);
    }
}
