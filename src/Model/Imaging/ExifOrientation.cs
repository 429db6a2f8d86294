namespace LlavaNative.Model.Imaging;

/// <summary>
/// The EXIF Orientation tag (TIFF tag 0x0112 in IFD0): reading it from an Exif TIFF structure and turning an
/// image upright by it. Values (EXIF 2.3, "where row 0 / column 0 of the stored image are"):
/// 1 as stored; 2 mirrored left–right; 3 rotated 180°; 4 mirrored top–bottom; 5 transposed (mirrored across the
/// main diagonal); 6 needs a 90° clockwise turn; 7 transversed (mirrored across the anti-diagonal); 8 needs a 90°
/// counter-clockwise turn. These are the transposes Pillow's <c>ImageOps.exif_transpose</c> applies.
/// </summary>
public static class ExifOrientation
{
    private const int OrientationTag = 0x0112;

    /// <summary>
    /// The orientation in a TIFF structure (from its "II*\0" or "MM\0*" header on; JPEG APP1 after "Exif\0\0"):
    /// 1..8, or 1 when the tag is absent, malformed or out of range — a broken tag must not break decoding.
    /// </summary>
    public static int Read(ReadOnlySpan<byte> tiff)
    {
        if (tiff.Length < 8) return 1;
        bool little;
        if (tiff[0] == 'I' && tiff[1] == 'I') little = true;
        else if (tiff[0] == 'M' && tiff[1] == 'M') little = false;
        else return 1;
        if (U16(tiff, 2, little) != 42) return 1;
        long ifd = U32(tiff, 4, little);
        if (ifd < 8 || ifd + 2 > tiff.Length) return 1;
        int entries = U16(tiff, (int)ifd, little);
        for (int i = 0; i < entries; i++)
        {
            long entry = ifd + 2 + 12L * i;
            if (entry + 12 > tiff.Length) return 1;
            int e = (int)entry;
            if (U16(tiff, e, little) != OrientationTag) continue;
            int type = U16(tiff, e + 2, little);
            long count = U32(tiff, e + 4, little);
            // SHORT as the standard says; LONG tolerated (some writers use it). The value sits in the entry itself.
            long value = type switch
            {
                3 when count >= 1 => U16(tiff, e + 8, little),
                4 when count >= 1 => U32(tiff, e + 8, little),
                _ => 0,
            };
            return value is >= 1 and <= 8 ? (int)value : 1;
        }
        return 1;
    }

    private static int U16(ReadOnlySpan<byte> b, int at, bool little) =>
        little ? b[at] | (b[at + 1] << 8) : (b[at] << 8) | b[at + 1];

    private static long U32(ReadOnlySpan<byte> b, int at, bool little) =>
        little ? (uint)(b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24))
               : (uint)((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]);

    /// <summary>The image as it should be displayed for <paramref name="orientation"/> (1 or out of range: unchanged).</summary>
    public static Image Apply(Image image, int orientation)
    {
        if (orientation is < 2 or > 8) return image;
        int w = image.Width, h = image.Height, ch = image.Channels;
        bool swaps = orientation >= 5; // 5..8 exchange width and height
        int outW = swaps ? h : w, outH = swaps ? w : h;
        var src = image.Pixels;
        var dst = new byte[src.Length];
        // Source pixel shown at (ox, oy) is (x0 + ox·dx, y0 + ox·dy) with the start depending on oy.
        (int dx, int dy) = orientation switch
        {
            2 or 3 => (-1, 0),
            4 => (1, 0),
            5 or 8 => (0, 1),
            _ => (0, -1), // 6, 7
        };
        for (int oy = 0; oy < outH; oy++)
        {
            (int x0, int y0) = orientation switch
            {
                2 => (w - 1, oy),
                3 => (w - 1, h - 1 - oy),
                4 => (0, h - 1 - oy),
                5 => (oy, 0),
                6 => (oy, h - 1),
                7 => (w - 1 - oy, h - 1),
                _ => (w - 1 - oy, 0), // 8
            };
            long step = ((long)dy * w + dx) * ch;
            long from = ((long)y0 * w + x0) * ch;
            long to = (long)oy * outW * ch;
            for (int ox = 0; ox < outW; ox++, from += step, to += ch)
                for (int k = 0; k < ch; k++) dst[to + k] = src[from + k];
        }
        return new Image(outW, outH, ch, dst);
    }
}
