namespace LlavaNative.Model.Imaging.Jpeg;

/// <summary>
/// JPEG (ITU-T T.81 / JFIF) decoder: baseline and extended sequential (SOF0, SOF1) and progressive (SOF2) Huffman
/// coded 8-bit images, any integral sampling factors, restart intervals, gray, YCbCr, Adobe RGB, CMYK and YCCK.
///
/// <para><b>Agreement with libjpeg.</b> The pixels match libjpeg-turbo's defaults (<c>djpeg</c>, and Pillow, which
/// HF image processors use): the accurate integer IDCT computed with libjpeg's exact arithmetic
/// (<see cref="JpegIdct"/>), "fancy" triangle upsampling of 2:1 chroma, and the same YCbCr → RGB fixed-point
/// tables (<see cref="JpegColorConverter"/>). Known differences: libjpeg smooths blocks of progressive files whose
/// scans never complete some coefficients (we use the coefficients as sent), and libjpeg zero-fills and warns on
/// damaged data where we stop with an error (below).</para>
///
/// <para><b>CMYK.</b> Converted to RGB the naive way Pillow does (Adobe-inverted samples, no colour profile), so the
/// vision pipeline sees what HF sees.</para>
///
/// <para><b>EXIF orientation.</b> The APP1 Exif Orientation tag (0x0112) is read and, unless
/// <see cref="ImageDecodeOptions.ApplyExifOrientation"/> is false, applied: the returned image is upright, as browsers
/// and phone galleries show it, and <see cref="DecodedImage.Orientation"/> reports the tag. Pillow's
/// <c>Image.open</c> — and therefore HF preprocessing — ignores the tag, so on rotated photos LlavaNative's pixels
/// differ from HF's (rotated or mirrored), deliberately: the model should see the photo the way its author did.</para>
///
/// <para><b>Bad input</b> is an <see cref="ImageFormatException"/> naming the source and the problem: truncated or
/// corrupt entropy-coded data (including a scan cut short — libjpeg would pad it with gray), missing tables,
/// inconsistent headers, and unsupported variants (arithmetic coding, lossless, hierarchical, 12-bit samples,
/// DNL-defined height). Image size is checked against <see cref="ImageDecodeOptions.MaxPixels"/> before anything
/// is allocated.</para>
/// </summary>
public static class JpegDecoder
{
    /// <summary>Upper bound on scans per file: each scan may visit every block, so this bounds decoding time.</summary>
    public const int MaxScans = 1000;

    public static DecodedImage Decode(byte[] data, string source = "<bytes>", ImageDecodeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        options ??= ImageDecodeOptions.Default;
        var reader = new JpegFileReader(data, source, options);
        Image image = reader.Read();
        int orientation = reader.ExifOrientationTag;
        if (options.ApplyExifOrientation) image = ExifOrientation.Apply(image, orientation);
        return new DecodedImage { Format = "JPEG", Frames = [image], Orientation = orientation };
    }
}

/// <summary>Walks the marker segments of one JPEG file, decoding scans as they come.</summary>
internal sealed class JpegFileReader(byte[] data, string source, ImageDecodeOptions options)
{
    private readonly ushort[]?[] _quant = new ushort[]?[4];
    private readonly JpegHuffmanTable?[] _dcTables = new JpegHuffmanTable?[4];
    private readonly JpegHuffmanTable?[] _acTables = new JpegHuffmanTable?[4];
    private int _restartInterval;
    private JpegFrame? _frame;
    private bool _sawJfif, _sawAdobe, _sawExif;
    private int _adobeTransform;
    private int _scans;
    private JpegScanDecoder? _scanDecoder;

    /// <summary>The EXIF Orientation tag (1..8), 1 when absent or unreadable.</summary>
    public int ExifOrientationTag { get; private set; } = 1;

    private ImageFormatException Fail(string problem) => new(source, problem);

    public Image Read()
    {
        if (data.Length < 2 || data[0] != 0xFF || data[1] != 0xD8)
            throw Fail("not a JPEG file (no SOI marker FFD8 at the start)");
        int pos = 2;
        while (true)
        {
            int markerAt = FindMarker(pos);
            if (markerAt < 0)
            {
                FinishWithoutEoi();
                break;
            }
            int marker = data[markerAt + 1];
            pos = markerAt + 2;
            if (marker == 0xD9) break; // EOI
            if (marker == 0xD8) throw Fail($"corrupt JPEG: a second SOI marker at byte {markerAt}");
            if (marker is >= 0xD0 and <= 0xD7 or 0x01) continue; // stray RSTn / TEM: no payload

            int length = SegmentLength(markerAt, marker);
            int payloadStart = markerAt + 4;
            var payload = data.AsSpan(payloadStart, length - 2);
            pos = payloadStart + length - 2;
            switch (marker)
            {
                case 0xC0: case 0xC1: case 0xC2:
                    ReadFrameHeader(payload, marker);
                    break;
                case 0xC3: throw Fail("unsupported JPEG: lossless (SOF3)");
                case 0xC5: case 0xC6: case 0xC7:
                    throw Fail($"unsupported JPEG: hierarchical (SOF{marker - 0xC0})");
                case 0xC9: case 0xCA: case 0xCB: case 0xCD: case 0xCE: case 0xCF:
                    throw Fail($"unsupported JPEG: arithmetic coding (SOF{marker - 0xC0})");
                case 0xC4: ReadHuffmanTables(payload); break;
                case 0xCC: break; // DAC: arithmetic-coding conditioning, only meaningful with SOF9+ (rejected there)
                case 0xDB: ReadQuantTables(payload); break;
                case 0xDD: ReadRestartInterval(payload); break;
                case 0xDC: break; // DNL: the frame header already gave a non-zero height (height 0 is rejected there)
                case 0xDE: case 0xDF: throw Fail($"unsupported JPEG: hierarchical (marker FF{marker:X2})");
                case 0xE0: ReadJfif(payload); break;
                case 0xE1: ReadExif(payload); break;
                case 0xEE: ReadAdobe(payload); break;
                case 0xDA:
                    pos = ReadScan(payload, payloadStart + payload.Length);
                    break;
                default:
                    break; // APPn, COM and reserved markers: skipped
            }
        }

        var frame = _frame ?? throw Fail("JPEG has no frame header (SOF) before its end");
        foreach (var c in frame.Components)
        {
            bool decoded = frame.Progressive ? c.CoefficientBits[0] >= 0 : c.Decoded;
            if (!decoded) throw Fail($"JPEG component {c.Id} never appears in a scan{(frame.Progressive ? " coding its DC coefficients" : "")}");
            if (frame.Progressive) JpegScanDecoder.TransformProgressive(c);
        }
        return JpegColorConverter.Render(frame, ColorSpace(frame));
    }

    /// <summary>Position of the next marker's FF at or after <paramref name="pos"/>, skipping fill bytes and stray data; −1 at the end.</summary>
    private int FindMarker(int pos)
    {
        for (int p = pos; p + 1 < data.Length; p++)
            if (data[p] == 0xFF && data[p + 1] != 0x00 && data[p + 1] != 0xFF) return p;
        return -1;
    }

    private int SegmentLength(int markerAt, int marker)
    {
        if (markerAt + 4 > data.Length) throw Fail($"JPEG is truncated: the file ends inside the header of marker FF{marker:X2} at byte {markerAt}");
        int length = (data[markerAt + 2] << 8) | data[markerAt + 3];
        if (length < 2) throw Fail($"corrupt JPEG: marker FF{marker:X2} at byte {markerAt} declares a segment length of {length}");
        if (markerAt + 2 + length > data.Length)
            throw Fail($"JPEG is truncated: the {MarkerName(marker)} segment at byte {markerAt} needs {length} bytes, the file ends after {data.Length - markerAt - 2}");
        return length;
    }

    private static string MarkerName(int marker) => marker switch
    {
        0xC4 => "DHT",
        0xDB => "DQT",
        0xDA => "SOS",
        0xDD => "DRI",
        >= 0xC0 and <= 0xCF => $"SOF{marker - 0xC0}",
        >= 0xE0 and <= 0xEF => $"APP{marker - 0xE0}",
        0xFE => "COM",
        _ => $"FF{marker:X2}",
    };

    /// <summary>The file ended without EOI: fine if the image is complete, otherwise it was cut off between scans.</summary>
    private void FinishWithoutEoi()
    {
        if (_frame is null) throw Fail("JPEG is truncated: the file ends before any image data (no SOF/SOS)");
        foreach (var c in _frame.Components)
        {
            bool complete = _frame.Progressive ? c.CoefficientBits.All(b => b == 0) : c.Decoded;
            if (!complete)
                throw Fail($"JPEG is truncated: the file ends after scan {_scans} without an EOI marker, before component {c.Id} is complete");
        }
    }

    private void ReadFrameHeader(ReadOnlySpan<byte> p, int marker)
    {
        string kind = marker switch { 0xC0 => "SOF0 (baseline)", 0xC1 => "SOF1 (extended sequential)", _ => "SOF2 (progressive)" };
        if (_frame is not null) throw Fail($"JPEG has a second frame header ({kind}); only single-frame files are supported");
        if (p.Length < 6) throw Fail($"corrupt JPEG: {kind} header is {p.Length} bytes");
        int precision = p[0];
        int height = (p[1] << 8) | p[2], width = (p[3] << 8) | p[4];
        int count = p[5];
        if (precision != 8) throw Fail($"unsupported JPEG: {precision}-bit samples ({kind}); only 8-bit is supported");
        if (height == 0) throw Fail("unsupported JPEG: height 0 in the frame header (defined later by a DNL marker)");
        if (width == 0) throw Fail("corrupt JPEG: width 0 in the frame header");
        DecodeLimits.CheckImageSize(source, "JPEG", width, height, count == 1 ? 1 : 3, options);
        if (count is not (1 or 3 or 4))
            throw Fail($"unsupported JPEG: {count} components (supported: 1 gray, 3 YCbCr/RGB, 4 CMYK/YCCK)");
        if (p.Length != 6 + 3 * count) throw Fail($"corrupt JPEG: {kind} header is {p.Length} bytes for {count} components");

        var components = new JpegComponent[count];
        for (int i = 0; i < count; i++)
        {
            int id = p[6 + 3 * i], sampling = p[7 + 3 * i], tq = p[8 + 3 * i];
            int h = sampling >> 4, v = sampling & 15;
            if (h is < 1 or > 4 || v is < 1 or > 4) throw Fail($"corrupt JPEG: component {id} has sampling factors {h}×{v} (1..4 allowed)");
            if (tq > 3) throw Fail($"corrupt JPEG: component {id} uses quantization table {tq} (0..3 allowed)");
            for (int j = 0; j < i; j++)
                if (components[j].Id == id) throw Fail($"corrupt JPEG: component id {id} appears twice in the frame header");
            components[i] = new JpegComponent { Id = id, Index = i, H = h, V = v, QuantTableIndex = tq };
        }
        var frame = new JpegFrame { Width = width, Height = height, Progressive = marker == 0xC2, Kind = kind, Components = components };
        frame.Layout();
        foreach (var c in components)
        {
            if (frame.MaxH % c.H != 0 || frame.MaxV % c.V != 0)
                throw Fail($"unsupported JPEG: component {c.Id} sampling {c.H}×{c.V} is not an integral fraction of {frame.MaxH}×{frame.MaxV}");
        }
        long samples = 0;
        foreach (var c in components) samples += (long)c.PaddedBlocksPerLine * c.PaddedBlocksPerColumn * 64;
        // Beside the output size checked above: every component plane (padded to whole MCUs) must be a .NET array too.
        if (samples > Array.MaxLength)
            throw Fail($"JPEG is too large to decode into arrays ({width}×{height}, {count} components)");
        foreach (var c in components) c.Plane = new byte[c.PaddedBlocksPerLine * 8 * c.PaddedBlocksPerColumn * 8];
        _frame = frame;
    }

    private void ReadQuantTables(ReadOnlySpan<byte> p)
    {
        while (p.Length > 0)
        {
            int precision = p[0] >> 4, id = p[0] & 15;
            int size = precision == 0 ? 64 : 128;
            if (precision > 1 || id > 3) throw Fail($"corrupt JPEG: quantization table {id} with precision code {precision}");
            if (p.Length < 1 + size) throw Fail($"corrupt JPEG: DQT segment ends inside table {id}");
            var table = new ushort[64];
            ReadOnlySpan<byte> zigzag = JpegBits.ZigzagToNatural;
            for (int k = 0; k < 64; k++)
                table[zigzag[k]] = precision == 0 ? p[1 + k] : (ushort)((p[1 + 2 * k] << 8) | p[2 + 2 * k]);
            _quant[id] = table;
            p = p[(1 + size)..];
        }
    }

    private void ReadHuffmanTables(ReadOnlySpan<byte> p)
    {
        while (p.Length > 0)
        {
            int tableClass = p[0] >> 4, id = p[0] & 15;
            if (tableClass > 1 || id > 3) throw Fail($"corrupt JPEG: Huffman table class {tableClass} id {id}");
            if (p.Length < 17) throw Fail("corrupt JPEG: DHT segment ends inside a table's code counts");
            var counts = p.Slice(1, 16);
            int total = 0;
            foreach (byte c in counts) total += c;
            if (p.Length < 17 + total) throw Fail($"corrupt JPEG: DHT segment ends inside {(tableClass == 0 ? "DC" : "AC")} table {id}'s symbols");
            string name = $"{(tableClass == 0 ? "DC" : "AC")} Huffman table {id}";
            JpegHuffmanTable table;
            try
            {
                table = new JpegHuffmanTable(counts, p.Slice(17, total), isDc: tableClass == 0, name);
            }
            catch (ArgumentException e)
            {
                throw Fail($"corrupt JPEG: {e.Message}");
            }
            (tableClass == 0 ? _dcTables : _acTables)[id] = table;
            p = p[(17 + total)..];
        }
    }

    private void ReadRestartInterval(ReadOnlySpan<byte> p)
    {
        if (p.Length != 2) throw Fail($"corrupt JPEG: DRI segment of {p.Length} bytes (2 expected)");
        _restartInterval = (p[0] << 8) | p[1];
    }

    private void ReadJfif(ReadOnlySpan<byte> p)
    {
        if (p.Length >= 14 && p[..5].SequenceEqual("JFIF\0"u8)) _sawJfif = true;
    }

    private void ReadAdobe(ReadOnlySpan<byte> p)
    {
        if (p.Length >= 12 && p[..5].SequenceEqual("Adobe"u8))
        {
            _sawAdobe = true;
            _adobeTransform = p[11];
        }
    }

    private void ReadExif(ReadOnlySpan<byte> p)
    {
        // The first Exif APP1 counts (XMP also lives in APP1, under another identifier).
        if (_sawExif || p.Length < 6 || !p[..4].SequenceEqual("Exif"u8) || p[4] != 0) return;
        _sawExif = true;
        ExifOrientationTag = ExifOrientation.Read(p[6..]);
    }

    /// <summary>Parses an SOS header, decodes its entropy-coded data; returns the position after that data.</summary>
    private int ReadScan(ReadOnlySpan<byte> p, int dataStart)
    {
        var frame = _frame ?? throw Fail("corrupt JPEG: scan (SOS) before the frame header (SOF)");
        if (++_scans > JpegDecoder.MaxScans) throw Fail($"JPEG has more than {JpegDecoder.MaxScans} scans");
        if (p.Length < 1) throw Fail("corrupt JPEG: empty SOS header");
        int count = p[0];
        if (count is < 1 or > 4 || p.Length != 4 + 2 * count)
            throw Fail($"corrupt JPEG: SOS header of scan {_scans} is {p.Length} bytes for {count} components");

        var components = new JpegComponent[count];
        int blocksPerMcu = 0;
        for (int i = 0; i < count; i++)
        {
            int id = p[1 + 2 * i], tables = p[2 + 2 * i];
            var c = Array.Find(frame.Components, x => x.Id == id)
                ?? throw Fail($"corrupt JPEG: scan {_scans} names component {id}, which the frame header does not define");
            if (i > 0 && c.Index <= components[i - 1].Index)
                throw Fail($"corrupt JPEG: scan {_scans} lists its components out of frame order or twice");
            components[i] = c;
            blocksPerMcu += c.H * c.V;
            int dc = tables >> 4, ac = tables & 15;
            if (dc > 3 || ac > 3) throw Fail($"corrupt JPEG: scan {_scans} selects Huffman tables {dc}/{ac} (0..3 allowed)");
            c.DcTable = _dcTables[dc];
            c.AcTable = _acTables[ac];
        }
        if (count > 1 && blocksPerMcu > 10)
            throw Fail($"corrupt JPEG: scan {_scans} interleaves {blocksPerMcu} blocks per MCU (at most 10)");
        int ss = p[1 + 2 * count], se = p[2 + 2 * count], ah = p[3 + 2 * count] >> 4, al = p[3 + 2 * count] & 15;

        if (frame.Progressive)
        {
            bool dcScan = ss == 0;
            bool bad = dcScan ? se != 0 : se < ss || se > 63 || count != 1;
            if (ah != 0 && al != ah - 1) bad = true;
            if (al > 13) bad = true;
            if (bad) throw Fail($"corrupt JPEG: scan {_scans} has an invalid progression Ss={ss} Se={se} Ah={ah} Al={al}{(count != 1 && !dcScan ? $" with {count} components" : "")}");
        }
        else
        {
            ss = 0; se = 63; ah = 0; al = 0; // sequential scans always carry the whole block
        }

        var scan = new JpegScan { Components = components, Ss = ss, Se = se, Ah = ah, Al = al, Number = _scans };
        foreach (var c in components)
        {
            bool needsDc = ss == 0 && ah == 0, needsAc = se > 0;
            if (needsDc && c.DcTable is null) throw Fail($"corrupt JPEG: scan {_scans} uses DC Huffman table {p[2 + 2 * Array.IndexOf(components, c)] >> 4}, which was never defined");
            if (needsAc && c.AcTable is null) throw Fail($"corrupt JPEG: scan {_scans} uses AC Huffman table {p[2 + 2 * Array.IndexOf(components, c)] & 15}, which was never defined");
            if (c.Quant is null)
            {
                var q = _quant[c.QuantTableIndex] ?? throw Fail($"corrupt JPEG: component {c.Id} uses quantization table {c.QuantTableIndex}, which was never defined");
                c.Quant = (ushort[])q.Clone();
            }
            if (frame.Progressive)
            {
                c.Coefficients ??= new short[c.PaddedBlocksPerLine * 64 * c.PaddedBlocksPerColumn];
                for (int k = ss; k <= se; k++) c.CoefficientBits[k] = al;
            }
        }

        _scanDecoder ??= new JpegScanDecoder(data, source);
        int end = _scanDecoder.Decode(frame, scan, _restartInterval, dataStart);
        if (!frame.Progressive) foreach (var c in components) c.Decoded = true;
        return end;
    }

    /// <summary>libjpeg's guess of the colour space (jdapimin.c default_decompress_parms).</summary>
    private JpegColorSpace ColorSpace(JpegFrame frame)
    {
        var c = frame.Components;
        switch (c.Length)
        {
            case 1: return JpegColorSpace.Gray;
            case 3:
                if (_sawJfif) return JpegColorSpace.YCbCr;
                if (_sawAdobe) return _adobeTransform == 0 ? JpegColorSpace.Rgb : JpegColorSpace.YCbCr;
                return c[0].Id == 'R' && c[1].Id == 'G' && c[2].Id == 'B' ? JpegColorSpace.Rgb : JpegColorSpace.YCbCr;
            default:
                if (_sawAdobe) return _adobeTransform == 0 ? JpegColorSpace.Cmyk : JpegColorSpace.Ycck;
                return JpegColorSpace.Cmyk;
        }
    }
}
