using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using LlavaNative.Model.Imaging;

namespace LlavaNative.TestSupport.Imaging;

/// <summary>
/// Writes PNG files for tests and benchmarks: chunks with their CRC, zlib-compressed rows with a chosen filter per
/// row. Only a file builder — what the pixels should be comes from independent references (Pillow) in the
/// reference tests; unit tests use it to build valid files and then corrupt them.
/// </summary>
public static class TestPng
{
    public static readonly byte[] Signature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>Length, type, data and CRC of one chunk.</summary>
    public static byte[] Chunk(string type, ReadOnlySpan<byte> data)
    {
        var c = new byte[12 + data.Length];
        BinaryPrimitives.WriteUInt32BigEndian(c, (uint)data.Length);
        Encoding.ASCII.GetBytes(type, c.AsSpan(4, 4));
        data.CopyTo(c.AsSpan(8));
        BinaryPrimitives.WriteUInt32BigEndian(c.AsSpan(8 + data.Length), PngCrc32.Compute(c.AsSpan(4, 4 + data.Length)));
        return c;
    }

    public static byte[] Ihdr(int width, int height, int bitDepth, int colorType, int interlace = 0)
    {
        var d = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(d, width);
        BinaryPrimitives.WriteInt32BigEndian(d.AsSpan(4), height);
        d[8] = (byte)bitDepth;
        d[9] = (byte)colorType;
        d[12] = (byte)interlace;
        return d;
    }

    public static byte[] Zlib(ReadOnlySpan<byte> raw, CompressionLevel level = CompressionLevel.Optimal)
    {
        var ms = new MemoryStream();
        using (var z = new ZLibStream(ms, level, leaveOpen: true)) z.Write(raw);
        return ms.ToArray();
    }

    /// <summary>Signature followed by the given chunks.</summary>
    public static byte[] Assemble(params byte[][] chunks)
    {
        var ms = new MemoryStream();
        ms.Write(Signature);
        foreach (var c in chunks) ms.Write(c);
        return ms.ToArray();
    }

    /// <summary>
    /// Filters non-interlaced rows of packed samples ([height, rowBytes]) with <paramref name="filterOfRow"/>
    /// (0 none, 1 sub, 2 up, 3 average, 4 Paeth) and prefixes each with its filter byte: the IDAT payload before zlib.
    /// </summary>
    public static byte[] FilterRows(ReadOnlySpan<byte> rows, int height, int bytesPerPixel, Func<int, int> filterOfRow)
    {
        int rowBytes = rows.Length / height;
        var raw = new byte[height * (rowBytes + 1)];
        for (int y = 0; y < height; y++)
        {
            int filter = filterOfRow(y);
            var cur = rows.Slice(y * rowBytes, rowBytes);
            var prior = y > 0 ? rows.Slice((y - 1) * rowBytes, rowBytes) : new byte[rowBytes];
            var dst = raw.AsSpan(y * (rowBytes + 1), rowBytes + 1);
            dst[0] = (byte)filter;
            for (int i = 0; i < rowBytes; i++)
            {
                int a = i >= bytesPerPixel ? cur[i - bytesPerPixel] : 0, b = prior[i], c = i >= bytesPerPixel ? prior[i - bytesPerPixel] : 0;
                int predicted = filter switch
                {
                    0 => 0,
                    1 => a,
                    2 => b,
                    3 => (a + b) / 2,
                    _ => Paeth(a, b, c),
                };
                dst[1 + i] = (byte)(cur[i] - predicted);
            }
        }
        return raw;
    }

    private static int Paeth(int a, int b, int c)
    {
        int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }

    /// <summary>A complete non-interlaced 8-bit PNG of colour type 0, 2, 4 or 6 from interleaved samples.</summary>
    public static byte[] Encode8(int width, int height, int colorType, ReadOnlySpan<byte> samples,
        Func<int, int>? filterOfRow = null, CompressionLevel level = CompressionLevel.Optimal)
    {
        int channels = colorType switch { 0 => 1, 2 => 3, 4 => 2, 6 => 4, _ => throw new ArgumentOutOfRangeException(nameof(colorType)) };
        var raw = FilterRows(samples, height, channels, filterOfRow ?? (y => y % 5));
        return Assemble(Chunk("IHDR", Ihdr(width, height, 8, colorType)), Chunk("IDAT", Zlib(raw, level)), Chunk("IEND", []));
    }
}
