using System.Buffers.Binary;
using System.Numerics;

namespace LlavaNative.Model.Imaging;

/// <summary>
/// Windows BMP decoder: BITMAPCOREHEADER (OS/2 1.x, 12 bytes), BITMAPINFOHEADER (40) and its V2/V3/V4/V5
/// extensions (52, 56, 108, 124; OS/2 2.x's 64 read as its first 40 bytes); 1/4/8-bit palette (uncompressed,
/// RLE8, RLE4), 16/24/32-bit direct colour (BI_RGB, BI_BITFIELDS, BI_ALPHABITFIELDS); bottom-up and top-down rows.
/// <para>
/// Output: RGB, or RGBA when the file has an alpha bitfield mask. A 32-bit BI_RGB file's fourth byte is dropped,
/// as Pillow does: the format reserves that byte, and writers disagree on whether it holds alpha (Pillow itself
/// saves RGBA there yet ignores it on reading), so 0 there must not make the image invisible. Alpha is kept where
/// the file says it is alpha: a bitfield alpha mask (V4/V5 headers, BI_ALPHABITFIELDS), as Pillow does for 32-bit
/// pixels — and, unlike Pillow, for 16-bit ones too (ARGB1555, ARGB4444: Pillow drops or rejects them). 32-bit
/// BITFIELDS with all masks zero reads as BGRA, as in Pillow.
/// </para>
/// <para>
/// Bitfield channels are scaled to 8 bits as Pillow scales 5- and 6-bit ones, <c>v · 255 / max</c> rounded down;
/// the same rule covers any contiguous mask, including layouts Pillow rejects (ImageMagick scales some widths
/// differently). Palette indices past the colour table read as gray (i, i, i), as in Pillow. Run-length data is
/// read as the format specifies, where Pillow 9.4 misreads two escapes (it takes the two bytes after a move's
/// dx, dy as the move, and reads an RLE4 literal run of odd length one pixel short). Embedded JPEG/PNG
/// (compression 4/5) is not supported: a clear error.
/// </para>
/// </summary>
internal static class BmpDecoder
{
    private const int BiRgb = 0, BiRle8 = 1, BiRle4 = 2, BiBitfields = 3, BiJpeg = 4, BiPng = 5, BiAlphaBitfields = 6;

    /// <summary>One colour channel of a direct-colour pixel: its mask, shift and maximum value.</summary>
    private readonly record struct Channel(uint Mask)
    {
        public int Shift => Mask == 0 ? 0 : BitOperations.TrailingZeroCount(Mask);
        public uint Max => Mask >> Shift;

        public byte Extract(uint pixel)
        {
            uint max = Max;
            uint v = (pixel & Mask) >> Shift;
            return max == 255 ? (byte)v : (byte)((ulong)v * 255 / max);
        }
    }

    public static DecodedImage Decode(byte[] data, string source, ImageDecodeOptions options)
    {
        if (data.Length < 18) throw Error(source, $"file has {data.Length} bytes, too short for the BMP headers (truncated)");
        long dataOffset = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(10));
        uint headerSize = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(14));
        if (headerSize is not (12 or 40 or 52 or 56 or 64 or 108 or 124))
            throw Error(source, $"DIB header size {headerSize} is not supported (known: 12, 40, 52, 56, 64, 108, 124)");
        if (14 + headerSize > data.Length) throw Error(source, $"the {headerSize}-byte DIB header is cut off (truncated)");
        var h = data.AsSpan(14, (int)headerSize);

        long width, height;
        int bits, compression = BiRgb, paletteEntrySize = 4;
        uint colorsUsed = 0;
        bool topDown = false;
        if (headerSize == 12)
        {
            width = BinaryPrimitives.ReadUInt16LittleEndian(h[4..]);
            height = BinaryPrimitives.ReadUInt16LittleEndian(h[6..]);
            bits = BinaryPrimitives.ReadUInt16LittleEndian(h[10..]);
            paletteEntrySize = 3;
        }
        else
        {
            width = BinaryPrimitives.ReadInt32LittleEndian(h[4..]);
            height = BinaryPrimitives.ReadInt32LittleEndian(h[8..]);
            bits = BinaryPrimitives.ReadUInt16LittleEndian(h[14..]);
            compression = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(h[16..]), int.MaxValue);
            colorsUsed = BinaryPrimitives.ReadUInt32LittleEndian(h[32..]);
            if (height < 0) { topDown = true; height = -height; }
        }
        if (bits is not (1 or 4 or 8 or 16 or 24 or 32))
            throw Error(source, $"bit depth {bits} is not supported (1, 4, 8, 16, 24, 32)");
        switch (compression)
        {
            case BiRle8 when bits != 8:
            case BiRle4 when bits != 4:
                throw Error(source, $"{(compression == BiRle8 ? "RLE8" : "RLE4")} compression with {bits}-bit pixels is not a valid combination");
            case BiRle8 or BiRle4 when topDown:
                throw Error(source, "run-length compressed bitmaps cannot be top-down (negative height)");
            case BiJpeg or BiPng:
                throw Error(source, $"embedded {(compression == BiJpeg ? "JPEG" : "PNG")} data (compression {compression}) is not supported");
            case BiBitfields or BiAlphaBitfields when bits is not (16 or 24 or 32) || headerSize == 64:
                throw Error(source, $"bitfields compression with {bits}-bit pixels{(headerSize == 64 ? " in an OS/2 2.x header" : "")} is not a valid combination");
            case not (BiRgb or BiBitfields or BiAlphaBitfields or BiRle8 or BiRle4):
                throw Error(source, $"compression type {compression} is unknown");
        }

        // Direct-colour channels: BI_RGB defaults (16-bit 5-5-5, 24/32-bit 8-8-8, fourth byte ignored) or masks.
        long afterHeader = 14 + headerSize;
        Channel red, green, blue, alpha = new(0);
        if (compression is not (BiBitfields or BiAlphaBitfields))
        {
            (red, green, blue) = bits == 16
                ? (new Channel(0x7C00), new Channel(0x03E0), new Channel(0x001F))
                : (new Channel(0xFF0000), new Channel(0x00FF00), new Channel(0x0000FF));
        }
        else
        {
            ReadOnlySpan<byte> m;
            int count = compression == BiAlphaBitfields ? 4 : 3;
            if (headerSize >= 52)
            {
                m = h[40..];
                if (headerSize >= 56) count = 4;
            }
            else
            {
                if (afterHeader + 4 * count > data.Length) throw Error(source, "bitfield masks after the header are cut off (truncated)");
                m = data.AsSpan((int)afterHeader, 4 * count);
                afterHeader += 4 * count;
            }
            red = new Channel(BinaryPrimitives.ReadUInt32LittleEndian(m));
            green = new Channel(BinaryPrimitives.ReadUInt32LittleEndian(m[4..]));
            blue = new Channel(BinaryPrimitives.ReadUInt32LittleEndian(m[8..]));
            if (count == 4) alpha = new Channel(BinaryPrimitives.ReadUInt32LittleEndian(m[12..]));
            if (bits == 32 && red.Mask == 0 && green.Mask == 0 && blue.Mask == 0 && alpha.Mask == 0)
                (red, green, blue, alpha) = (new Channel(0xFF0000), new Channel(0xFF00), new Channel(0xFF), new Channel(0xFF000000));
            foreach (var (name, c) in new[] { ("red", red), ("green", green), ("blue", blue), ("alpha", alpha) })
            {
                bool contiguous = c.Mask == 0 || ((c.Max + 1) & c.Max) == 0;
                if (!contiguous || (bits < 32 && c.Mask >> bits != 0) || (c.Mask == 0 && name != "alpha"))
                    throw Error(source, $"{name} bitfield mask 0x{c.Mask:X8} is not a contiguous run of bits inside a {bits}-bit pixel");
            }
        }
        int channels = alpha.Mask != 0 ? 4 : 3;
        if (width <= 0 || height <= 0)
            throw Error(source, $"image size {width}×{(topDown ? -height : height)} is empty or negative");
        DecodeLimits.CheckImageSize(source, "BMP", width, height, channels, options);

        // Colour table for 1/4/8-bit images: [256, 3] RGB, gray ramp past the file's entries.
        byte[]? lookup = null;
        if (bits <= 8)
        {
            long colors = colorsUsed != 0 ? colorsUsed : 1L << bits;
            if (colors > 65536) throw Error(source, $"colour table size {colors} is absurd");
            int entries = (int)Math.Min(colors, 256);
            if (afterHeader + (long)paletteEntrySize * entries > data.Length)
                throw Error(source, $"colour table ({entries} entries) is cut off (truncated)");
            lookup = new byte[256 * 3];
            for (int i = 0; i < 256; i++)
            {
                long e = afterHeader + (long)paletteEntrySize * i;
                bool inTable = i < entries;
                lookup[3 * i] = inTable ? data[e + 2] : (byte)i;
                lookup[3 * i + 1] = inTable ? data[e + 1] : (byte)i;
                lookup[3 * i + 2] = inTable ? data[e] : (byte)i;
            }
            // Some writers point the pixel offset at the colour table itself; Pillow skips the table then too.
            if (dataOffset == 14 + headerSize) dataOffset += paletteEntrySize * colors;
        }

        if (compression is BiRle8 or BiRle4)
        {
            if (dataOffset >= data.Length) throw Error(source, $"pixel data offset {dataOffset} is past the end of the file (truncated)");
            var rgb = new byte[width * height * 3];
            DecodeRunLength(data.AsSpan((int)dataOffset), (int)width, (int)height, compression == BiRle4, lookup!, rgb, source);
            return new DecodedImage { Format = "BMP", Frames = [new Image((int)width, (int)height, 3, rgb)] };
        }

        long stride = (width * bits + 31) / 32 * 4;
        long lastRowBytes = (width * bits + 7) / 8;
        long needed = dataOffset + stride * (height - 1) + lastRowBytes;
        if (needed > data.Length)
            throw Error(source, $"pixel data needs {needed - dataOffset} bytes from offset {dataOffset} but the file has {Math.Max(0, data.Length - dataOffset)} (truncated)");

        var pixels = new byte[width * height * channels];
        int w = (int)width;
        for (long y = 0; y < height; y++)
        {
            long fileRow = topDown ? y : height - 1 - y;
            var src = data.AsSpan((int)(dataOffset + fileRow * stride), (int)lastRowBytes);
            var dst = pixels.AsSpan((int)(y * width * channels), w * channels);
            if (lookup is not null) PaletteRow(src, dst, w, bits, lookup);
            else DirectRow(src, dst, w, bits, compression == BiRgb, red, green, blue, alpha, channels);
        }
        return new DecodedImage { Format = "BMP", Frames = [new Image(w, (int)height, channels, pixels)] };
    }

    private static ImageFormatException Error(string source, string problem) => new(source, "BMP " + problem);

    /// <summary>
    /// RLE8/RLE4: (count, index) runs, and escapes 0,0 end of line, 0,1 end of bitmap, 0,2,dx,dy move, 0,n
    /// n literal indices padded to a 16-bit boundary. Rows run bottom-up. Pixels the data never sets are index 0:
    /// skipped by a move or an early end of line (as in Pillow) or after an early end of bitmap (the format's way to
    /// end an image; Pillow calls it truncated). Runs past the row end are cut there. Data that stops before the
    /// image is complete without an end-of-bitmap marker is an error, as in Pillow.
    /// </summary>
    private static void DecodeRunLength(ReadOnlySpan<byte> src, int width, int height, bool rle4, byte[] lookup, byte[] rgb, string source)
    {
        var indices = new byte[(long)width * height]; // [height, width] in file order (bottom row first), index 0 default
        int x = 0, y = 0, pos = 0;
        void Put(int index)
        {
            if (x >= width) return; // runs past the row end are cut (x stays at width)
            indices[(long)y * width + x] = (byte)index;
            x++;
        }
        while (y < height)
        {
            if (pos + 2 > src.Length)
            {
                if (y == height - 1 && x == width) break; // last row complete, end markers missing: fine, as in Pillow
                throw Error(source, $"RLE data ends at row {y} of {height} without an end-of-bitmap marker (truncated)");
            }
            int count = src[pos], value = src[pos + 1];
            pos += 2;
            if (count > 0)
            {
                for (int i = 0; i < count && x < width; i++) Put(rle4 ? (i % 2 == 0 ? value >> 4 : value & 15) : value);
                continue;
            }
            if (value == 0) { x = 0; y++; continue; }       // end of line
            if (value == 1) break;                          // end of bitmap
            if (value == 2)                                 // move right dx, up dy
            {
                if (pos + 2 > src.Length) throw Error(source, "RLE move escape is cut off (truncated)");
                x = Math.Min(width, x + src[pos]);
                y += src[pos + 1];
                pos += 2;
                continue;
            }
            int bytes = rle4 ? (value + 1) / 2 : value;     // literal run of `value` indices
            if (pos + bytes > src.Length) throw Error(source, $"RLE literal run of {value} pixels is cut off (truncated)");
            for (int i = 0; i < value; i++) Put(rle4 ? (i % 2 == 0 ? src[pos + i / 2] >> 4 : src[pos + i / 2] & 15) : src[pos + i]);
            pos += bytes + (bytes & 1);
        }
        for (int r = 0; r < height; r++)
        {
            var row = indices.AsSpan(r * width, width);
            var dst = rgb.AsSpan((height - 1 - r) * width * 3, width * 3);
            for (int i = 0; i < width; i++)
            {
                dst[3 * i] = lookup[3 * row[i]];
                dst[3 * i + 1] = lookup[3 * row[i] + 1];
                dst[3 * i + 2] = lookup[3 * row[i] + 2];
            }
        }
    }

    private static void PaletteRow(ReadOnlySpan<byte> src, Span<byte> dst, int width, int bits, byte[] lookup)
    {
        int perByte = 8 / bits, mask = (1 << bits) - 1;
        for (int x = 0; x < width; x++)
        {
            int index = bits == 8 ? src[x] : (src[x / perByte] >> (8 - bits * (x % perByte + 1))) & mask;
            dst[3 * x] = lookup[3 * index];
            dst[3 * x + 1] = lookup[3 * index + 1];
            dst[3 * x + 2] = lookup[3 * index + 2];
        }
    }

    private static void DirectRow(ReadOnlySpan<byte> src, Span<byte> dst, int width, int bits, bool standard,
        Channel red, Channel green, Channel blue, Channel alpha, int channels)
    {
        if (standard && bits >= 24)
        {
            // BGR(X) bytes: the common case, without mask arithmetic.
            int step = bits / 8;
            for (int x = 0; x < width; x++)
            {
                dst[3 * x] = src[step * x + 2];
                dst[3 * x + 1] = src[step * x + 1];
                dst[3 * x + 2] = src[step * x];
            }
            return;
        }
        for (int x = 0; x < width; x++)
        {
            uint p = bits switch
            {
                16 => BinaryPrimitives.ReadUInt16LittleEndian(src[(2 * x)..]),
                24 => (uint)(src[3 * x] | src[3 * x + 1] << 8 | src[3 * x + 2] << 16),
                _ => BinaryPrimitives.ReadUInt32LittleEndian(src[(4 * x)..]),
            };
            int o = channels * x;
            dst[o] = red.Extract(p);
            dst[o + 1] = green.Extract(p);
            dst[o + 2] = blue.Extract(p);
            if (channels == 4) dst[o + 3] = alpha.Extract(p);
        }
    }
}
