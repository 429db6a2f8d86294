using LlavaNative.Model.Imaging;
using LlavaNative.Model.Imaging.Jpeg;
using Xunit;

namespace LlavaNative.Tests.Imaging;

/// <summary>
/// The JPEG decoder's kernels in pairs: each vector kernel against its scalar reference on random inputs of awkward
/// sizes, and the references against plain floating-point math (so the pair is not only self-consistent).
/// </summary>
public sealed class JpegKernelTests
{
    /// <summary>A random block of quantized coefficients whose dequantized values stay in the range of real 8-bit data.</summary>
    private static (short[] Coefficients, ushort[] Quant) RandomBlock(Random random)
    {
        var quant = new ushort[64];
        var coefficients = new short[64];
        bool sixteenBit = random.Next(8) == 0;
        int density = random.Next(1, 65); // how many coefficients may be non-zero
        for (int i = 0; i < 64; i++)
        {
            quant[i] = (ushort)(sixteenBit ? random.Next(1, 4000) : random.Next(1, 256));
            if (i < density || random.Next(16) == 0)
            {
                int limit = Math.Max(1, (i == 0 ? 2047 : 1023) / quant[i]); // |coefficient · q| within 8-bit DCT range
                coefficients[i] = (short)random.Next(-limit, limit + 1);
            }
        }
        return (coefficients, quant);
    }

    [Fact]
    public void VectorIdctEqualsReference()
    {
        var random = new Random(7);
        var fast = new byte[8 * 13];
        var reference = new byte[8 * 13];
        for (int trial = 0; trial < 20000; trial++)
        {
            var (c, q) = RandomBlock(random);
            JpegIdct.Transform(c, q, fast, 13);
            JpegIdct.TransformReference(c, q, reference, 13);
            Assert.True(fast.AsSpan().SequenceEqual(reference), $"trial {trial}");
        }
        // Every coefficient at the edge of the 8-bit range at once (DC ±2047, AC ±1023 after dequantization),
        // random signs: the worst case for 32-bit intermediates in the vector path.
        var q1 = Enumerable.Repeat((ushort)1, 64).ToArray();
        var extreme = new short[64];
        for (int trial = 0; trial < 5000; trial++)
        {
            for (int i = 0; i < 64; i++) extreme[i] = (short)((random.Next(2) * 2 - 1) * (i == 0 ? 2047 : 1023));
            JpegIdct.Transform(extreme, q1, fast, 13);
            JpegIdct.TransformReference(extreme, q1, reference, 13);
            Assert.True(fast.AsSpan().SequenceEqual(reference), $"extreme trial {trial}");
        }
    }

    [Fact]
    public void DcOnlyIdctEqualsReference()
    {
        var block = new short[64];
        var quant = new ushort[64];
        var fast = new byte[64];
        var reference = new byte[64];
        foreach (ushort q in new ushort[] { 1, 2, 3, 8, 16, 255, 1000 })
        {
            quant[0] = q;
            for (int dc = -2048 / q - 1; dc <= 2048 / q + 1; dc++)
            {
                block[0] = (short)dc;
                JpegIdct.TransformDcOnly((short)dc, q, fast, 8);
                JpegIdct.TransformReference(block, quant, reference, 8);
                Assert.True(fast.AsSpan().SequenceEqual(reference), $"dc {dc} q {q}");
            }
        }
    }

    [Fact]
    public void ReferenceIdctIsAnAccurateInverseDct()
    {
        // Against the textbook 2-D inverse DCT in doubles: libjpeg's integer method is within ±1 after rounding.
        var random = new Random(3);
        var output = new byte[64];
        var basis = new double[8, 8]; // [position, frequency]: C(u)·cos((2x+1)uπ/16)
        for (int x = 0; x < 8; x++)
            for (int u = 0; u < 8; u++) basis[x, u] = (u == 0 ? Math.Sqrt(0.5) : 1) * Math.Cos((2 * x + 1) * u * Math.PI / 16);
        int worst = 0;
        for (int trial = 0; trial < 3000; trial++)
        {
            var (c, q) = RandomBlock(random);
            JpegIdct.TransformReference(c, q, output, 8);
            for (int y = 0; y < 8; y++)
            {
                for (int x = 0; x < 8; x++)
                {
                    double s = 0;
                    for (int v = 0; v < 8; v++)
                        for (int u = 0; u < 8; u++)
                            s += c[v * 8 + u] * q[v * 8 + u] * basis[x, u] * basis[y, v];
                    int exact = Math.Clamp((int)Math.Round(s / 4 + 128), 0, 255);
                    worst = Math.Max(worst, Math.Abs(exact - output[y * 8 + x]));
                }
            }
        }
        Assert.True(worst <= 1, $"largest difference {worst}");
    }

    private static byte[] RandomBytes(Random random, int n)
    {
        var b = new byte[n];
        random.NextBytes(b);
        // Extremes matter for the arithmetic: sprinkle 0 and 255.
        for (int i = 0; i < n; i += 7) b[i] = (byte)(random.Next(2) * 255);
        return b;
    }

    [Fact]
    public void VectorUpsamplingEqualsReference()
    {
        var random = new Random(11);
        for (int n = 1; n <= 140; n++)
        {
            byte[] near = RandomBytes(random, n), far = RandomBytes(random, n);

            var padded = new ushort[n + 2];
            var paddedReference = new ushort[n + 2];
            JpegUpsampler.ColumnSums(near, far, padded, n);
            JpegUpsampler.ColumnSumsReference(near, far, paddedReference, n);
            Assert.Equal(paddedReference, padded);
            foreach (var (left, right, shift) in new[] { (8, 7, 4), (1, 2, 2) })
            {
                if (shift == 2)
                {
                    JpegUpsampler.WidenPadded(near, padded, n);
                    for (int i = 0; i < n; i++) paddedReference[i + 1] = near[i];
                    paddedReference[0] = near[0];
                    paddedReference[n + 1] = near[n - 1];
                    Assert.Equal(paddedReference, padded);
                }
                var doubled = new byte[2 * n];
                var doubledReference = new byte[2 * n];
                JpegUpsampler.DoubleWidth(padded, n, doubled, left, right, shift);
                JpegUpsampler.DoubleWidthReference(padded, n, doubledReference, left, right, shift);
                Assert.Equal(doubledReference, doubled);
            }
            foreach (int bias in new[] { 1, 2 })
            {
                var blended = new byte[n];
                var blendedReference = new byte[n];
                JpegUpsampler.BlendRows(near, far, blended, n, bias);
                JpegUpsampler.BlendRowsReference(near, far, blendedReference, n, bias);
                Assert.Equal(blendedReference, blended);
            }
        }
    }

    [Fact]
    public void FancyUpsamplingIsTheTriangleFilter()
    {
        // h2v1 on a ramp 0, 40, 80, 120: outputs ¾·nearer + ¼·further with libjpeg's biases, edges replicated.
        byte[] row = [0, 40, 80, 120];
        var padded = new ushort[6];
        JpegUpsampler.WidenPadded(row, padded, 4);
        var output = new byte[8];
        JpegUpsampler.DoubleWidthReference(padded, 4, output, 1, 2, 2);
        Assert.Equal(new byte[] { 0, 10, 30, 50, 70, 90, 110, 120 }, output);
    }

    [Fact]
    public void VectorColourConversionEqualsReference()
    {
        var random = new Random(5);
        for (int width = 0; width <= 100; width++)
        {
            byte[] y = RandomBytes(random, width), cb = RandomBytes(random, width), cr = RandomBytes(random, width);
            var rgb = new byte[3 * width];
            var reference = new byte[3 * width];
            JpegColorConverter.YCbCrToRgb(y, cb, cr, rgb, width);
            JpegColorConverter.YCbCrToRgbReference(y, cb, cr, reference, width);
            Assert.Equal(reference, rgb);
        }
    }

    [Fact]
    public void ReferenceColourConversionIsJfifYCbCr()
    {
        // JFIF / BT.601 full range in doubles: the fixed-point tables round each term, so they may differ by 1.
        var rgb = new byte[3];
        int worst = 0;
        for (int y = 0; y < 256; y += 5)
            for (int cb = 0; cb < 256; cb += 3)
                for (int cr = 0; cr < 256; cr += 3)
                {
                    JpegColorConverter.YCbCrToRgbReference([(byte)y], [(byte)cb], [(byte)cr], rgb, 1);
                    double r = y + 1.402 * (cr - 128), g = y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128), b = y + 1.772 * (cb - 128);
                    worst = Math.Max(worst, Math.Abs(rgb[0] - Math.Clamp((int)Math.Round(r), 0, 255)));
                    worst = Math.Max(worst, Math.Abs(rgb[1] - Math.Clamp((int)Math.Round(g), 0, 255)));
                    worst = Math.Max(worst, Math.Abs(rgb[2] - Math.Clamp((int)Math.Round(b), 0, 255)));
                }
        Assert.True(worst <= 1, $"largest difference {worst}");
    }

    [Fact]
    public void HuffmanTableFromAnnexKLuminanceDc()
    {
        // T.81 Table K.3: category 0 → 00, 1 → 010, 5 → 110, 6 → 1110, 11 → 111111110.
        byte[] counts = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
        byte[] symbols = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
        var table = new JpegHuffmanTable(counts, symbols, isDc: true, "test");
        int Lookup(string code)
        {
            int index = Convert.ToInt32(code.PadRight(9, '0'), 2);
            int e = table.Fast[index];
            Assert.Equal(code.Length, e >> 8);
            return e & 0xFF;
        }
        Assert.Equal(0, Lookup("00"));
        Assert.Equal(1, Lookup("010"));
        Assert.Equal(5, Lookup("110"));
        Assert.Equal(6, Lookup("1110"));
        Assert.Equal(11, Lookup("111111110"));
        Assert.Equal(0, table.Fast[0b111111111]); // all ones: no code
        Assert.Throws<ArgumentException>(() => new JpegHuffmanTable(counts, symbols[..11], isDc: true, "short"));
    }

    [Fact]
    public void HuffmanLongCodesUseTheLengthLimits()
    {
        // One 1-bit code, then codes of 10 and 16 bits: 0 → A; 1000000000 → B; 1000000001 → C; 1000000010000000 → D.
        var counts = new byte[16];
        counts[0] = 1;
        counts[9] = 2;
        counts[15] = 1;
        var table = new JpegHuffmanTable(counts, [0xA, 0xB, 0xC, 0xD], isDc: false, "long");
        Assert.Equal((1 << 8) | 0xA, table.Fast[0]);
        Assert.Equal(0, table.Fast[0b100000000]);          // 9-bit prefix of the long codes: not decodable by lookup
        Assert.Equal(0b1000000001, table.MaxCode[10]);
        Assert.Equal(0xB, table.Symbols[0b1000000000 + table.SymbolOffset[10]]);
        Assert.Equal(0b1000000010000000, table.MaxCode[16]);
        Assert.Equal(0xD, table.Symbols[0b1000000010000000 + table.SymbolOffset[16]]);
        Assert.Equal(-1, table.MaxCode[12]);
    }

    [Fact]
    public void ExifOrientationReadsBothByteOrders()
    {
        byte[] motorola = [.. "MM\0*"u8, 0, 0, 0, 8, 0, 2, 0x01, 0x0F, 0, 2, 0, 0, 0, 4, 0, 0, 0, 40, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 8, 0, 0];
        byte[] intel = [.. "II*\0"u8, 8, 0, 0, 0, 2, 0, 0x0F, 0x01, 2, 0, 4, 0, 0, 0, 40, 0, 0, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 3, 0, 0, 0];
        Assert.Equal(8, ExifOrientation.Read(motorola));
        Assert.Equal(3, ExifOrientation.Read(intel));
        Assert.Equal(1, ExifOrientation.Read(intel[..30])); // orientation entry cut off
    }

    [Fact]
    public void ExifOrientationTurnsImagesUpright()
    {
        // Stored 3×2:  a b c / d e f  (each pixel 3 channels, value and value+100, value+200).
        byte[] values = [1, 2, 3, 4, 5, 6];
        var stored = new Image(3, 2, 3, [.. values.SelectMany(v => new[] { v, (byte)(v + 100), (byte)(v + 200) })]);
        var expected = new Dictionary<int, (int W, byte[] Pixels)>
        {
            [1] = (3, [1, 2, 3, 4, 5, 6]),
            [2] = (3, [3, 2, 1, 6, 5, 4]), // mirrored left–right
            [3] = (3, [6, 5, 4, 3, 2, 1]), // rotated 180°
            [4] = (3, [4, 5, 6, 1, 2, 3]), // mirrored top–bottom
            [5] = (2, [1, 4, 2, 5, 3, 6]), // transposed
            [6] = (2, [4, 1, 5, 2, 6, 3]), // turned 90° clockwise
            [7] = (2, [6, 3, 5, 2, 4, 1]), // transversed
            [8] = (2, [3, 6, 2, 5, 1, 4]), // turned 90° counter-clockwise
        };
        foreach (var (orientation, (w, pixels)) in expected)
        {
            var upright = ExifOrientation.Apply(stored, orientation);
            Assert.Equal(w, upright.Width);
            Assert.Equal(6 / w, upright.Height);
            Assert.Equal(pixels.SelectMany(v => new[] { v, (byte)(v + 100), (byte)(v + 200) }).ToArray(), upright.Pixels);
        }
    }
}
