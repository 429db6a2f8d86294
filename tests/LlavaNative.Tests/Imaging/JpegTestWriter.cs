namespace LlavaNative.Tests.Imaging;

/// <summary>
/// A small JPEG writer so decoder tests can build valid files — baseline or progressive, any luma sampling, restart
/// intervals, EXIF — without external tools, and then damage them. Deliberately plain: a direct floating-point
/// DCT, a simple quantization ramp and fixed Huffman tables of 4-bit DC and 8/12-bit AC codes (so both the
/// one-lookup and the long-code decoding paths are used). It is not a reference for pixel values; the reference
/// tests compare against libjpeg for that.
/// </summary>
internal sealed class JpegTestWriter
{
    public int Width { get; init; } = 37;
    public int Height { get; init; } = 21;
    public bool Gray { get; init; }
    /// <summary>Luma sampling factors; chroma is always 1×1.</summary>
    public int LumaH { get; init; } = 2;
    public int LumaV { get; init; } = 2;
    /// <summary>Quantizer step grows by this much per diagonal of the block (1 = fine).</summary>
    public int QuantSlope { get; init; } = 2;
    public int RestartInterval { get; init; }
    /// <summary>DC scans with successive approximation, then AC bands 1..5 and 6..63 per component.</summary>
    public bool Progressive { get; init; }
    /// <summary>TIFF bytes for an APP1 Exif segment ("Exif\0\0" is added).</summary>
    public byte[]? Exif { get; init; }
    public Func<int, int, (byte R, byte G, byte B)> Pixel { get; init; } = DefaultPixel;

    public static (byte R, byte G, byte B) DefaultPixel(int x, int y) =>
        ((byte)(x * 255 / 40), (byte)(y * 255 / 30), (byte)((x * 7 + y * 13) % 256));

    private sealed class Plane
    {
        public int H, V, Id, QuantTable, BlocksWide, BlocksHigh, PaddedWide, PaddedHigh;
        public int[][] Blocks = []; // [blockRow * PaddedWide + blockCol][64] quantized, natural order
    }

    private static ReadOnlySpan<byte> Zigzag =>
    [
        0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
        35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
    ];

    public byte[] Write()
    {
        int maxH = Gray ? 1 : LumaH, maxV = Gray ? 1 : LumaV;
        int mcusWide = (Width + 8 * maxH - 1) / (8 * maxH), mcusHigh = (Height + 8 * maxV - 1) / (8 * maxV);
        var planes = new List<Plane>();
        int count = Gray ? 1 : 3;
        for (int ci = 0; ci < count; ci++)
        {
            int h = ci == 0 ? maxH : 1, v = ci == 0 ? maxV : 1;
            int compW = (Width * h + maxH - 1) / maxH, compH = (Height * v + maxV - 1) / maxV;
            var p = new Plane
            {
                H = h, V = v, Id = ci + 1, QuantTable = ci == 0 ? 0 : 1,
                BlocksWide = (compW + 7) / 8, BlocksHigh = (compH + 7) / 8,
                PaddedWide = count == 1 ? (compW + 7) / 8 : mcusWide * h,
                PaddedHigh = count == 1 ? (compH + 7) / 8 : mcusHigh * v,
            };
            p.Blocks = new int[p.PaddedWide * p.PaddedHigh][];
            for (int by = 0; by < p.PaddedHigh; by++)
                for (int bx = 0; bx < p.PaddedWide; bx++)
                    p.Blocks[by * p.PaddedWide + bx] = EncodeBlock(ci, bx, by, maxH / h, maxV / v, p.QuantTable);
            planes.Add(p);
        }

        var o = new List<byte> { 0xFF, 0xD8 };
        Segment(o, 0xE0, [.. "JFIF\0"u8, 1, 1, 0, 0, 1, 0, 1, 0, 0]);
        if (Exif is not null) Segment(o, 0xE1, [.. "Exif\0\0"u8, .. Exif]);
        var dqt = new List<byte>();
        for (int t = 0; t < 2; t++)
        {
            dqt.Add((byte)t);
            for (int k = 0; k < 64; k++) dqt.Add((byte)Quant(t, Zigzag[k]));
        }
        Segment(o, 0xDB, [.. dqt]);
        var sof = new List<byte> { 8, (byte)(Height >> 8), (byte)Height, (byte)(Width >> 8), (byte)Width, (byte)count };
        foreach (var p in planes) sof.AddRange([(byte)p.Id, (byte)((p.H << 4) | p.V), (byte)p.QuantTable]);
        Segment(o, Progressive ? 0xC2 : 0xC0, [.. sof]);
        Segment(o, 0xC4, [.. DcTableSegment(0), .. AcTableSegment(0)]);
        if (RestartInterval > 0) Segment(o, 0xDD, [(byte)(RestartInterval >> 8), (byte)RestartInterval]);

        if (!Progressive)
        {
            WriteScan(o, planes, mcusWide, mcusHigh, 0, 63, 0, 0);
        }
        else
        {
            WriteScan(o, planes, mcusWide, mcusHigh, 0, 0, 0, 1);
            foreach (var p in planes) WriteScan(o, [p], mcusWide, mcusHigh, 1, 5, 0, 0);
            foreach (var p in planes) WriteScan(o, [p], mcusWide, mcusHigh, 6, 63, 0, 0);
            WriteScan(o, planes, mcusWide, mcusHigh, 0, 0, 1, 0);
        }
        o.AddRange([0xFF, 0xD9]);
        return [.. o];
    }

    private int Quant(int table, int natural) => 1 + (table + 1) * QuantSlope * ((natural >> 3) + (natural & 7)) / 2;

    /// <summary>Block (bx, by) of component ci: samples (box-averaged for chroma, edges repeated), DCT, quantized.</summary>
    private int[] EncodeBlock(int ci, int bx, int by, int hScale, int vScale, int table)
    {
        var samples = new double[64];
        for (int y = 0; y < 8; y++)
        {
            for (int x = 0; x < 8; x++)
            {
                double sum = 0;
                for (int dy = 0; dy < vScale; dy++)
                {
                    for (int dx = 0; dx < hScale; dx++)
                    {
                        int px = Math.Min(((bx * 8 + x) * hScale) + dx, Width - 1), py = Math.Min(((by * 8 + y) * vScale) + dy, Height - 1);
                        var (r, g, b) = Pixel(px, py);
                        sum += ci switch
                        {
                            0 => Gray ? r : 0.299 * r + 0.587 * g + 0.114 * b,
                            1 => -0.168736 * r - 0.331264 * g + 0.5 * b + 128,
                            _ => 0.5 * r - 0.418688 * g - 0.081312 * b + 128,
                        };
                    }
                }
                samples[y * 8 + x] = sum / (hScale * vScale) - 128;
            }
        }
        var result = new int[64];
        for (int v = 0; v < 8; v++)
        {
            for (int u = 0; u < 8; u++)
            {
                double s = 0;
                for (int y = 0; y < 8; y++)
                    for (int x = 0; x < 8; x++)
                        s += samples[y * 8 + x] * Math.Cos((2 * x + 1) * u * Math.PI / 16) * Math.Cos((2 * y + 1) * v * Math.PI / 16);
                double cu = u == 0 ? Math.Sqrt(0.5) : 1, cv = v == 0 ? Math.Sqrt(0.5) : 1;
                result[v * 8 + u] = (int)Math.Round(s * cu * cv / 4 / Quant(table, v * 8 + u));
            }
        }
        return result;
    }

    // Huffman tables: DC categories 0..11 as 4-bit codes; AC symbols in (size, run) order, the first 100 as 8-bit
    // codes and the rest (large magnitudes, long runs) as 12-bit codes.
    private static readonly byte[] s_acSymbols = BuildAcSymbols();

    private static byte[] BuildAcSymbols()
    {
        var symbols = new List<byte> { 0x00, 0xF0 };
        for (int size = 1; size <= 10; size++)
            for (int run = 0; run < 16; run++) symbols.Add((byte)((run << 4) | size));
        for (int run = 1; run < 15; run++) symbols.Add((byte)(run << 4)); // EOBn (unused by this writer)
        return [.. symbols];
    }

    private static byte[] DcTableSegment(int id)
    {
        var counts = new byte[16];
        counts[3] = 12;
        return [(byte)id, .. counts, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
    }

    private static byte[] AcTableSegment(int id)
    {
        var counts = new byte[16];
        counts[7] = 100;
        counts[11] = (byte)(s_acSymbols.Length - 100);
        return [(byte)(0x10 | id), .. counts, .. s_acSymbols];
    }

    private static (int Code, int Length) DcCode(int category) => (category, 4);

    private static (int Code, int Length) AcCode(int symbol)
    {
        int index = Array.IndexOf(s_acSymbols, (byte)symbol);
        if (index < 0) throw new InvalidOperationException($"AC symbol {symbol:X2}");
        // Canonical codes: 8-bit codes 0..99, then 12-bit codes continuing from (100 << 4).
        return index < 100 ? (index, 8) : ((100 << 4) + index - 100, 12);
    }

    private static int Category(int value) => value == 0 ? 0 : 32 - int.LeadingZeroCount(Math.Abs(value));

    private static int MagnitudeBits(int value, int size) => value >= 0 ? value : value + (1 << size) - 1;

    private sealed class BitWriter(List<byte> output)
    {
        private int _acc, _count;

        public void Write(int code, int length)
        {
            for (int i = length - 1; i >= 0; i--)
            {
                _acc = (_acc << 1) | ((code >> i) & 1);
                if (++_count == 8) Emit();
            }
        }

        private void Emit()
        {
            output.Add((byte)_acc);
            if (_acc == 0xFF) output.Add(0); // byte stuffing
            _acc = 0;
            _count = 0;
        }

        /// <summary>Pads the last byte with 1-bits.</summary>
        public void Flush()
        {
            while (_count != 0) Write(1, 1);
        }
    }

    private void WriteScan(List<byte> o, List<Plane> comps, int mcusWide, int mcusHigh, int ss, int se, int ah, int al)
    {
        var sos = new List<byte> { (byte)comps.Count };
        foreach (var p in comps) sos.AddRange([(byte)p.Id, 0x00]);
        sos.AddRange([(byte)ss, (byte)se, (byte)((ah << 4) | al)]);
        Segment(o, 0xDA, [.. sos]);

        var bits = new BitWriter(o);
        var predictors = new int[comps.Count];
        bool single = comps.Count == 1;
        int wide = single ? comps[0].BlocksWide : mcusWide, high = single ? comps[0].BlocksHigh : mcusHigh;
        int mcu = 0, restarts = 0;
        for (int my = 0; my < high; my++)
        {
            for (int mx = 0; mx < wide; mx++, mcu++)
            {
                if (RestartInterval > 0 && mcu > 0 && mcu % RestartInterval == 0)
                {
                    bits.Flush();
                    o.AddRange([0xFF, (byte)(0xD0 + (restarts++ & 7))]);
                    Array.Clear(predictors);
                }
                for (int ci = 0; ci < comps.Count; ci++)
                {
                    var p = comps[ci];
                    int hCount = single ? 1 : p.H, vCount = single ? 1 : p.V;
                    for (int v = 0; v < vCount; v++)
                        for (int h = 0; h < hCount; h++)
                        {
                            int bx = single ? mx : mx * p.H + h, by = single ? my : my * p.V + v;
                            EncodeBlockBits(bits, p.Blocks[by * p.PaddedWide + bx], ref predictors[ci], ss, se, ah, al);
                        }
                }
            }
        }
        bits.Flush();
    }

    private static void EncodeBlockBits(BitWriter bits, int[] block, ref int predictor, int ss, int se, int ah, int al)
    {
        if (ss == 0 && ah == 0)
        {
            int dc = block[0] >> al;
            int diff = dc - predictor;
            predictor = dc;
            int size = Category(diff);
            var (code, length) = DcCode(size);
            bits.Write(code, length);
            if (size > 0) bits.Write(MagnitudeBits(diff, size), size);
        }
        else if (ss == 0)
        {
            bits.Write((block[0] >> al) & 1, 1); // DC refinement: the next bit
        }
        if (se == 0) return;

        int run = 0;
        for (int k = Math.Max(ss, 1); k <= se; k++)
        {
            int value = block[Zigzag[k]];
            if (value == 0)
            {
                run++;
                continue;
            }
            while (run > 15)
            {
                var zrl = AcCode(0xF0);
                bits.Write(zrl.Code, zrl.Length);
                run -= 16;
            }
            int size = Category(value);
            var (code, length) = AcCode((run << 4) | size);
            bits.Write(code, length);
            bits.Write(MagnitudeBits(value, size), size);
            run = 0;
        }
        if (run > 0)
        {
            var eob = AcCode(0x00);
            bits.Write(eob.Code, eob.Length);
        }
    }

    private static void Segment(List<byte> o, int marker, byte[] payload)
    {
        o.AddRange([0xFF, (byte)marker, (byte)((payload.Length + 2) >> 8), (byte)(payload.Length + 2)]);
        o.AddRange(payload);
    }

    // ---- helpers for damaging files ----

    /// <summary>Offset of the first marker FFxx (its FF byte) at or after <paramref name="from"/>, −1 if none.</summary>
    public static int FindMarker(byte[] jpeg, int marker, int from = 2)
    {
        for (int i = from; i + 1 < jpeg.Length; i++)
            if (jpeg[i] == 0xFF && jpeg[i + 1] == marker) return i;
        return -1;
    }

    /// <summary>Offset of the first byte after the header of the first SOS segment: where entropy-coded data begins.</summary>
    public static int ScanDataStart(byte[] jpeg)
    {
        int sos = FindMarker(jpeg, 0xDA);
        return sos + 2 + ((jpeg[sos + 2] << 8) | jpeg[sos + 3]);
    }
}
