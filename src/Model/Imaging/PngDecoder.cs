using System.Buffers.Binary;
using System.IO.Compression;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace LlavaNative.Model.Imaging;

/// <summary>
/// PNG decoder (ISO/IEC 15948, W3C PNG 2nd edition): every colour type (0 gray, 2 RGB, 3 palette, 4 gray+alpha,
/// 6 RGBA) at every legal bit depth, Adam7 interlace, the five row filters, tRNS transparency, CRC checked on
/// every chunk up to IEND. The default image of an APNG is decoded; its animation chunks are ancillary and skipped,
/// as is eXIf (orientation stays 1: Pillow's <c>Image.open</c> does not rotate PNGs either).
/// <para>
/// Output is 8-bit with as few channels as hold the file's information: gray → 1, gray+alpha → 2, RGB → 3,
/// RGBA → 4; palette → RGB, or RGBA when a tRNS chunk gives palette alpha; a tRNS colour key on gray or RGB adds
/// an alpha channel (0 where the pixel equals the key, else 255). Gray samples below 8 bits are scaled to 0–255
/// exactly as Pillow does (1-bit ×255, 2-bit ×85, 4-bit ×17). Palette indices past the end of PLTE read as
/// gray (i, i, i), as in Pillow, whose palettes start as a gray ramp.
/// </para>
/// <para>
/// Deliberate differences from Pillow (whose output HF preprocessing inherits): a 16-bit sample becomes its high
/// byte. Pillow keeps the high byte for 16-bit RGB, RGBA and gray+alpha but opens 16-bit gray as a 32-bit integer
/// image that <c>convert("L")</c> clips to 255, so almost every pixel turns white; the high byte is the correct
/// 8-bit value, so LlavaNative takes it for gray too. And the tRNS colour key is honoured for every bit depth:
/// Pillow compares it with the already scaled 1/2/4-bit gray values, and with 16-bit gray/RGB values after their
/// reduction to 8 bits, so it never matches there; LlavaNative compares the key with the file's own samples.
/// </para>
/// </summary>
internal static class PngDecoder
{
    private static ReadOnlySpan<byte> Signature => [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    // Chunk types as big-endian 32-bit codes.
    private const uint IHDR = 0x49484452, PLTE = 0x504C5445, IDAT = 0x49444154, IEND = 0x49454E44, TRNS = 0x74524E53;

    // Adam7 passes: x start, y start, x step, y step. A non-interlaced image is one pass (0, 0, 1, 1).
    private static readonly (int X0, int Y0, int Dx, int Dy)[] Adam7 =
        [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)];
    private static readonly (int X0, int Y0, int Dx, int Dy)[] SinglePass = [(0, 0, 1, 1)];

    private sealed record Header(int Width, int Height, int BitDepth, int ColorType, bool Interlaced)
    {
        public int SamplesPerPixel => ColorType switch { 0 => 1, 2 => 3, 3 => 1, 4 => 2, _ => 4 };
        public int BitsPerPixel => SamplesPerPixel * BitDepth;
        public long RowBytes(int width) => ((long)width * BitsPerPixel + 7) / 8;
    }

    /// <summary>Everything the chunk walk found: the header, PLTE (RGB triples), tRNS and the IDAT payloads.</summary>
    private sealed class Chunks
    {
        public Header? Header;
        public byte[]? Palette;              // [entries, 3]
        public byte[]? Transparency;         // raw tRNS payload
        public readonly List<(int Offset, int Length)> Idat = [];
    }

    public static DecodedImage Decode(byte[] data, string source, ImageDecodeOptions options)
    {
        if (data.Length < 8 || !data.AsSpan(0, 8).SequenceEqual(Signature))
            throw new ImageFormatException(source, "not a PNG file (bad signature)");
        Chunks chunks = ReadChunks(data, source, options);
        Header h = chunks.Header!;
        var image = DecodePixels(data, source, h, chunks);
        return new DecodedImage { Format = "PNG", Frames = [image] };
    }

    private static ImageFormatException Error(string source, string problem) => new(source, "PNG " + problem);

    private static string ChunkName(ReadOnlySpan<byte> type)
    {
        foreach (byte b in type)
            if (b is < 0x20 or > 0x7E) return "0x" + Convert.ToHexString(type);
        return System.Text.Encoding.ASCII.GetString(type);
    }

    /// <summary>
    /// Walks every chunk from the signature to IEND: checks lengths and CRCs, validates IHDR (and the size limit,
    /// before anything is allocated), keeps PLTE/tRNS and the IDAT payload positions, skips ancillary chunks and
    /// rejects unknown critical ones.
    /// </summary>
    private static Chunks ReadChunks(byte[] data, string source, ImageDecodeOptions options)
    {
        var c = new Chunks();
        bool idatClosed = false; // a chunk other than IDAT followed the IDAT run
        long pos = 8;
        while (true)
        {
            if (pos + 8 > data.Length)
                throw Error(source, pos == data.Length
                    ? "file ends before the IEND chunk (truncated)"
                    : $"file ends inside the chunk header at offset {pos} (truncated)");
            uint length = BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan((int)pos));
            ReadOnlySpan<byte> typeBytes = data.AsSpan((int)pos + 4, 4);
            string name = ChunkName(typeBytes);
            foreach (byte b in typeBytes)
                if (!char.IsAsciiLetter((char)b))
                    throw Error(source, $"invalid chunk type {name} at offset {pos} (chunk types are four ASCII letters): the file is corrupt");
            if (length > int.MaxValue)
                throw Error(source, $"chunk '{name}' at offset {pos} declares {length} bytes, more than the 2^31−1 PNG allows");
            if (pos + 12 + length > data.Length)
                throw Error(source, $"chunk '{name}' at offset {pos} declares {length} data bytes but the file ends {data.Length - pos - 8} bytes later (truncated)");
            int body = (int)pos + 8;
            uint stored = BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(body + (int)length));
            uint computed = PngCrc32.Compute(data.AsSpan((int)pos + 4, 4 + (int)length));
            if (stored != computed)
                throw Error(source, $"chunk '{name}' at offset {pos} has a bad CRC (stored {stored:X8}, computed {computed:X8}): the file is corrupt");
            uint type = BinaryPrimitives.ReadUInt32BigEndian(typeBytes);
            ReadOnlySpan<byte> payload = data.AsSpan(body, (int)length);

            if (c.Header is null && type != IHDR)
                throw Error(source, $"first chunk is '{name}', expected IHDR");
            if (type != IDAT && c.Idat.Count > 0) idatClosed = true;
            switch (type)
            {
                case IHDR:
                    if (c.Header is not null) throw Error(source, "has a second IHDR chunk");
                    c.Header = ParseHeader(payload, source, options);
                    break;
                case PLTE:
                    if (c.Idat.Count > 0) throw Error(source, "PLTE chunk comes after IDAT");
                    if (c.Palette is not null) throw Error(source, "has a second PLTE chunk");
                    if (length == 0 || length % 3 != 0 || length > 768)
                        throw Error(source, $"PLTE chunk has {length} bytes; expected 3 per entry, 1 to 256 entries");
                    c.Palette = payload.ToArray();
                    break;
                case TRNS:
                    // tRNS after the image data has no effect (the spec places it before IDAT); a second one is ignored.
                    if (c.Idat.Count == 0 && c.Transparency is null)
                        c.Transparency = ParseTransparency(payload, c, source);
                    break;
                case IDAT:
                    if (idatClosed) throw Error(source, $"IDAT chunk at offset {pos} is separated from the earlier IDAT chunks (they must be consecutive)");
                    c.Idat.Add((body, (int)length));
                    break;
                case IEND:
                    if (c.Idat.Count == 0) throw Error(source, "has no IDAT chunk (no image data)");
                    if (c.Header!.ColorType == 3 && c.Palette is null) throw Error(source, "palette image (colour type 3) has no PLTE chunk");
                    return c;
                default:
                    // Bit 5 of the first byte clear = critical: a decoder that does not know it must not show the image.
                    if ((typeBytes[0] & 0x20) == 0)
                        throw Error(source, $"unknown critical chunk '{name}' at offset {pos}; known: IHDR, PLTE, IDAT, IEND");
                    break;
            }
            pos += 12 + length;
        }
    }

    private static Header ParseHeader(ReadOnlySpan<byte> p, string source, ImageDecodeOptions options)
    {
        if (p.Length != 13) throw Error(source, $"IHDR chunk has {p.Length} bytes, expected 13");
        uint width = BinaryPrimitives.ReadUInt32BigEndian(p), height = BinaryPrimitives.ReadUInt32BigEndian(p[4..]);
        int depth = p[8], colorType = p[9];
        if (width == 0 || height == 0 || width > int.MaxValue || height > int.MaxValue)
            throw Error(source, $"IHDR size {width}×{height} is invalid (each side must be 1 to 2^31−1)");
        bool legal = colorType switch
        {
            0 => depth is 1 or 2 or 4 or 8 or 16,
            3 => depth is 1 or 2 or 4 or 8,
            2 or 4 or 6 => depth is 8 or 16,
            _ => false,
        };
        if (!legal)
            throw Error(source, $"IHDR colour type {colorType} with bit depth {depth} is not a legal combination " +
                "(gray: 1, 2, 4, 8, 16; palette: 1, 2, 4, 8; RGB, gray+alpha, RGBA: 8, 16)");
        if (p[10] != 0) throw Error(source, $"IHDR compression method {p[10]} is unknown (only 0, deflate)");
        if (p[11] != 0) throw Error(source, $"IHDR filter method {p[11]} is unknown (only 0, adaptive)");
        if (p[12] > 1) throw Error(source, $"IHDR interlace method {p[12]} is unknown (0 none, 1 Adam7)");
        var h = new Header((int)width, (int)height, depth, colorType, p[12] == 1);
        DecodeLimits.CheckImageSize(source, "PNG", width, height, 4, options);
        return h;
    }

    private static byte[] ParseTransparency(ReadOnlySpan<byte> p, Chunks c, string source)
    {
        Header h = c.Header!;
        switch (h.ColorType)
        {
            case 0 when p.Length != 2:
                throw Error(source, $"tRNS chunk has {p.Length} bytes; a gray image needs 2 (one 16-bit gray key)");
            case 2 when p.Length != 6:
                throw Error(source, $"tRNS chunk has {p.Length} bytes; an RGB image needs 6 (a 16-bit R, G, B key)");
            case 3:
                if (c.Palette is null) throw Error(source, "tRNS chunk comes before PLTE");
                // More alpha values than palette entries is an encoder slip; the extra ones have nothing to apply to.
                return p[..Math.Min(p.Length, c.Palette.Length / 3)].ToArray();
            case 4 or 6:
                return []; // images with an alpha channel ignore tRNS (the spec forbids it there)
        }
        return p.ToArray();
    }

    private static Image DecodePixels(byte[] data, string source, Header h, Chunks chunks)
    {
        byte[]? trns = chunks.Transparency is { Length: > 0 } t ? t : null;
        int channels = h.ColorType switch
        {
            0 => trns is null ? 1 : 2,
            2 or 3 => trns is null ? 3 : 4,
            4 => 2,
            _ => 4,
        };
        var writer = new RowWriter(h, channels, chunks.Palette, trns);
        var pixels = new byte[(long)h.Width * h.Height * channels];

        long maxRowBytes = h.RowBytes(h.Width);
        // Two row buffers, each with the filter-type byte in front: [1 + rowBytes].
        var current = new byte[maxRowBytes + 1];
        var previous = new byte[maxRowBytes + 1];
        int filterStride = Math.Max(1, h.BitsPerPixel / 8); // bytes back to the same sample of the previous pixel

        using var zlib = new ZLibStream(new IdatStream(data, chunks.Idat), CompressionMode.Decompress);
        var passes = h.Interlaced ? Adam7 : SinglePass;
        for (int p = 0; p < passes.Length; p++)
        {
            var (x0, y0, dx, dy) = passes[p];
            int passWidth = h.Width > x0 ? (h.Width - x0 + dx - 1) / dx : 0;
            int passHeight = h.Height > y0 ? (h.Height - y0 + dy - 1) / dy : 0;
            if (passWidth == 0 || passHeight == 0) continue; // empty passes carry no filter bytes at all
            int rowBytes = (int)h.RowBytes(passWidth);
            Span<byte> prior = previous.AsSpan(1, rowBytes);
            prior.Clear(); // the row above a pass's first row counts as zeros
            for (int r = 0; r < passHeight; r++)
            {
                Span<byte> line = current.AsSpan(0, rowBytes + 1);
                try
                {
                    zlib.ReadExactly(line);
                }
                catch (EndOfStreamException)
                {
                    throw Error(source, $"image data ends early: row {r} of {passHeight}{(h.Interlaced ? $" in Adam7 pass {p + 1}" : "")} is missing (truncated IDAT)");
                }
                catch (InvalidDataException e)
                {
                    throw Error(source, $"IDAT holds corrupt zlib data ({e.Message})");
                }
                int filter = line[0];
                Span<byte> row = line[1..];
                if (filter > 4)
                    throw Error(source, $"row {r}{(h.Interlaced ? $" of Adam7 pass {p + 1}" : "")} has filter type {filter}; only 0–4 exist");
                Unfilter(filter, row, prior, filterStride);
                long firstPixel = (long)(y0 + r * dy) * h.Width + x0;
                writer.Write(row, passWidth, pixels, firstPixel, dx);
                (current, previous) = (previous, current);
                prior = previous.AsSpan(1, rowBytes);
            }
        }
        return new Image(h.Width, h.Height, channels, pixels);
    }

    /// <summary>Reverses one row filter in place; <paramref name="prior"/> is the previous row, already unfiltered.</summary>
    internal static void Unfilter(int filter, Span<byte> row, ReadOnlySpan<byte> prior, int stride)
    {
        switch (filter)
        {
            case 1: UnfilterSub(row, stride); break;
            case 2: UnfilterUp(row, prior); break;
            case 3: UnfilterAverage(row, prior, stride); break;
            case 4:
                if (stride is 3 or 4 && Vector128.IsHardwareAccelerated) UnfilterPaethPixels(row, prior, stride);
                else UnfilterPaethScalar(row, prior, stride);
                break;
        }
    }

    // The loops below index with ref + Unsafe.Add: row and prior have the same length (checked by the callers'
    // slicing), and bounds checks on every byte cost about a third of the time on photo-sized images.

    /// <summary>Sub: each byte plus the same byte of the pixel to its left.</summary>
    private static void UnfilterSub(Span<byte> row, int stride)
    {
        ref byte r = ref MemoryMarshal.GetReference(row);
        for (int i = stride; i < row.Length; i++) Unsafe.Add(ref r, i) += Unsafe.Add(ref r, i - stride);
    }

    /// <summary>Up: each byte plus the byte above; no dependency along the row, so 16 bytes at a time.</summary>
    private static void UnfilterUp(Span<byte> row, ReadOnlySpan<byte> prior)
    {
        int i = 0;
        for (; i + Vector128<byte>.Count <= row.Length; i += Vector128<byte>.Count)
            (Vector128.Create(row[i..]) + Vector128.Create(prior[i..])).CopyTo(row[i..]);
        for (; i < row.Length; i++) row[i] += prior[i];
    }

    /// <summary>Average: each byte plus the floor of the mean of its left neighbour and the byte above.</summary>
    private static void UnfilterAverage(Span<byte> row, ReadOnlySpan<byte> prior, int stride)
    {
        ref byte r = ref MemoryMarshal.GetReference(row);
        ref byte p = ref MemoryMarshal.GetReference(prior);
        int n = row.Length, first = Math.Min(stride, n);
        for (int i = 0; i < first; i++) Unsafe.Add(ref r, i) += (byte)(Unsafe.Add(ref p, i) >> 1);
        for (int i = stride; i < n; i++) Unsafe.Add(ref r, i) += (byte)((Unsafe.Add(ref r, i - stride) + Unsafe.Add(ref p, i)) >> 1);
    }

    /// <summary>
    /// Paeth, byte by byte: the predictor is whichever of left (a), above (b) and upper-left (c) is closest to
    /// a + b − c, ties going to a, then b. The reference for <see cref="UnfilterPaethPixels"/>; used for 1, 2, 6
    /// and 8 bytes per pixel. Branch-free: on photographs the choice is close to random.
    /// </summary>
    internal static void UnfilterPaethScalar(Span<byte> row, ReadOnlySpan<byte> prior, int stride)
    {
        ref byte r = ref MemoryMarshal.GetReference(row);
        ref byte p = ref MemoryMarshal.GetReference(prior);
        int n = row.Length, first = Math.Min(stride, n);
        for (int i = 0; i < first; i++) Unsafe.Add(ref r, i) += Unsafe.Add(ref p, i); // a = c = 0: Paeth picks b
        for (int i = stride; i < n; i++)
        {
            int a = Unsafe.Add(ref r, i - stride), b = Unsafe.Add(ref p, i), c = Unsafe.Add(ref p, i - stride);
            int da = b - c, db = a - c, dc = da + db; // p − a, p − b, p − c
            int pa = (da ^ (da >> 31)) - (da >> 31), pb = (db ^ (db >> 31)) - (db >> 31), pc = (dc ^ (dc >> 31)) - (dc >> 31);
            int bOrC = pb <= pc ? b : c;
            Unsafe.Add(ref r, i) += (byte)((pa <= pb) & (pa <= pc) ? a : bOrC);
        }
    }

    /// <summary>
    /// Paeth for 3- and 4-byte pixels (8-bit RGB, RGBA): one pixel per step with its channels in 16-bit vector
    /// lanes. Each pixel depends on the one to its left, so the lanes run across channels, not along the row.
    /// </summary>
    internal static void UnfilterPaethPixels(Span<byte> row, ReadOnlySpan<byte> prior, int stride)
    {
        ref byte r = ref MemoryMarshal.GetReference(row);
        ref byte p = ref MemoryMarshal.GetReference(prior);
        var a = Vector128<short>.Zero;   // left pixel, already unfiltered
        var c = Vector128<short>.Zero;   // upper-left pixel
        var low = Vector128.Create((short)0xFF);
        for (int i = 0; i + stride <= row.Length; i += stride)
        {
            var b = Vector128.WidenLower(Vector128.CreateScalarUnsafe(ReadPixel(ref Unsafe.Add(ref p, i), stride)).AsByte()).AsInt16();
            var x = Vector128.WidenLower(Vector128.CreateScalarUnsafe(ReadPixel(ref Unsafe.Add(ref r, i), stride)).AsByte()).AsInt16();
            var pa = Vector128.Abs(b - c);
            var pb = Vector128.Abs(a - c);
            var pc = Vector128.Abs(a + b - c - c);
            var pickA = Vector128.LessThanOrEqual(pa, pb) & Vector128.LessThanOrEqual(pa, pc);
            var pickB = Vector128.LessThanOrEqual(pb, pc);
            var result = (x + Vector128.ConditionalSelect(pickA, a, Vector128.ConditionalSelect(pickB, b, c))) & low;
            uint bytes = Vector128.Narrow(result.AsUInt16(), result.AsUInt16()).AsUInt32().ToScalar();
            if (stride == 4) Unsafe.WriteUnaligned(ref Unsafe.Add(ref r, i), bytes);
            else
            {
                Unsafe.WriteUnaligned(ref Unsafe.Add(ref r, i), (ushort)bytes); // exactly 3 bytes: the 4th is the
                Unsafe.Add(ref r, i + 2) = (byte)(bytes >> 16);                  // next pixel's, not yet read
            }
            a = result;
            c = b;
        }
    }

    private static uint ReadPixel(ref byte at, int stride) => stride == 4
        ? Unsafe.ReadUnaligned<uint>(ref at)
        : Unsafe.ReadUnaligned<ushort>(ref at) | (uint)Unsafe.Add(ref at, 2) << 16;

    /// <summary>
    /// Turns unfiltered rows of samples into 8-bit output pixels. A row of <c>count</c> pixels lands at pixel
    /// <c>first</c> and every <c>step</c>-th pixel after it (step 1 unless the image is Adam7-interlaced).
    /// </summary>
    private sealed class RowWriter
    {
        private readonly int _depth, _colorType, _channels;
        private readonly int _grayKey = -1;                  // tRNS gray key (file's bit depth), −1 when none
        private readonly int _keyR = -1, _keyG = -1, _keyB = -1; // tRNS RGB key
        private readonly byte[]? _lookup;                    // palette: [256, 4] RGBA per index

        public RowWriter(Header h, int channels, byte[]? palette, byte[]? trns)
        {
            _depth = h.BitDepth;
            _colorType = h.ColorType;
            _channels = channels;
            if (trns is not null && h.ColorType == 0) _grayKey = trns[0] << 8 | trns[1];
            if (trns is not null && h.ColorType == 2)
            {
                _keyR = trns[0] << 8 | trns[1];
                _keyG = trns[2] << 8 | trns[3];
                _keyB = trns[4] << 8 | trns[5];
            }
            if (h.ColorType == 3)
            {
                _lookup = new byte[256 * 4];
                int entries = palette!.Length / 3;
                for (int i = 0; i < 256; i++)
                {
                    bool inPalette = i < entries;
                    _lookup[4 * i] = inPalette ? palette[3 * i] : (byte)i;
                    _lookup[4 * i + 1] = inPalette ? palette[3 * i + 1] : (byte)i;
                    _lookup[4 * i + 2] = inPalette ? palette[3 * i + 2] : (byte)i;
                    _lookup[4 * i + 3] = trns is not null && i < trns.Length ? trns[i] : (byte)255;
                }
            }
        }

        /// <summary>Sample <paramref name="i"/> of a row packed at 1, 2 or 4 bits, most significant bits first.</summary>
        private static int PackedSample(ReadOnlySpan<byte> row, int i, int depth)
        {
            int bit = i * depth;
            return (row[bit >> 3] >> (8 - depth - (bit & 7))) & ((1 << depth) - 1);
        }

        public void Write(ReadOnlySpan<byte> row, int count, byte[] pixels, long first, int step)
        {
            int ch = _channels;
            long o = first * ch;
            long advance = (long)step * ch;
            switch (_colorType)
            {
                case 0 when _depth < 8:
                {
                    int scale = _depth switch { 1 => 255, 2 => 85, _ => 17 };
                    for (int i = 0; i < count; i++, o += advance)
                    {
                        int v = PackedSample(row, i, _depth);
                        pixels[o] = (byte)(v * scale);
                        if (ch == 2) pixels[o + 1] = v == _grayKey ? (byte)0 : (byte)255;
                    }
                    break;
                }
                case 0 when _depth == 8:
                    if (ch == 1 && step == 1) { row[..count].CopyTo(pixels.AsSpan((int)o)); break; }
                    for (int i = 0; i < count; i++, o += advance)
                    {
                        pixels[o] = row[i];
                        if (ch == 2) pixels[o + 1] = row[i] == _grayKey ? (byte)0 : (byte)255;
                    }
                    break;
                case 0: // 16-bit gray: high byte; the key compares all 16 bits
                    for (int i = 0; i < count; i++, o += advance)
                    {
                        pixels[o] = row[2 * i];
                        if (ch == 2) pixels[o + 1] = (row[2 * i] << 8 | row[2 * i + 1]) == _grayKey ? (byte)0 : (byte)255;
                    }
                    break;
                case 3:
                {
                    byte[] lut = _lookup!;
                    for (int i = 0; i < count; i++, o += advance)
                    {
                        int k = 4 * (_depth == 8 ? row[i] : PackedSample(row, i, _depth));
                        pixels[o] = lut[k];
                        pixels[o + 1] = lut[k + 1];
                        pixels[o + 2] = lut[k + 2];
                        if (ch == 4) pixels[o + 3] = lut[k + 3];
                    }
                    break;
                }
                case 2 when ch == 4: // RGB with a colour key
                    for (int i = 0; i < count; i++, o += advance)
                    {
                        int r, g, b;
                        if (_depth == 8) { r = row[3 * i]; g = row[3 * i + 1]; b = row[3 * i + 2]; }
                        else
                        {
                            r = row[6 * i] << 8 | row[6 * i + 1];
                            g = row[6 * i + 2] << 8 | row[6 * i + 3];
                            b = row[6 * i + 4] << 8 | row[6 * i + 5];
                        }
                        int shift = _depth == 16 ? 8 : 0;
                        pixels[o] = (byte)(r >> shift);
                        pixels[o + 1] = (byte)(g >> shift);
                        pixels[o + 2] = (byte)(b >> shift);
                        pixels[o + 3] = r == _keyR && g == _keyG && b == _keyB ? (byte)0 : (byte)255;
                    }
                    break;
                default: // RGB, gray+alpha, RGBA: every sample straight through (high byte of 16-bit ones)
                    if (_depth == 8)
                    {
                        if (step == 1) { row[..(count * ch)].CopyTo(pixels.AsSpan((int)o)); break; }
                        for (int i = 0; i < count; i++, o += advance)
                            row.Slice(i * ch, ch).CopyTo(pixels.AsSpan((int)o, ch));
                    }
                    else
                    {
                        for (int i = 0; i < count; i++, o += advance)
                            for (int s = 0; s < ch; s++) pixels[o + s] = row[2 * (i * ch + s)];
                    }
                    break;
            }
        }
    }

    /// <summary>The IDAT payloads read back to back, as one stream for the inflater (nothing is copied up front).</summary>
    private sealed class IdatStream(byte[] data, List<(int Offset, int Length)> segments) : Stream
    {
        private int _segment, _offset;

        public override int Read(Span<byte> buffer)
        {
            while (_segment < segments.Count)
            {
                var (start, length) = segments[_segment];
                int left = length - _offset;
                if (left == 0) { _segment++; _offset = 0; continue; }
                int n = Math.Min(left, buffer.Length);
                data.AsSpan(start + _offset, n).CopyTo(buffer);
                _offset += n;
                return n;
            }
            return 0;
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
