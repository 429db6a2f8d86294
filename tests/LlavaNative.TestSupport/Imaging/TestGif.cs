namespace LlavaNative.TestSupport.Imaging;

/// <summary>
/// Writes small GIF files for unit tests. The LZW data uses literal codes only, with a clear code before the code
/// width would grow — valid LZW every decoder must read, simple enough to write by hand (no compression).
/// </summary>
public static class TestGif
{
    /// <summary>One image: indices [Height, Width] at (X, Y); a graphic control extension is written when
    /// <see cref="Transparency"/> or <see cref="Disposal"/> is set.</summary>
    public sealed record Frame(int Width, int Height, byte[] Indices, int X = 0, int Y = 0, int? Transparency = null,
        int Disposal = 0, byte[]? LocalPalette = null, int MinCodeSize = 2);

    /// <summary>A whole file; palettes are RGB triples with a power-of-two entry count (2 to 256).</summary>
    public static byte[] Build(int width, int height, byte[]? globalPalette, IEnumerable<Frame> frames, bool trailer = true)
    {
        var ms = new MemoryStream();
        ms.Write("GIF89a"u8);
        void U16(int v) { ms.WriteByte((byte)v); ms.WriteByte((byte)(v >> 8)); } // little-endian
        U16(width);
        U16(height);
        ms.WriteByte(globalPalette is null ? (byte)0 : (byte)(0x80 | 0x70 | TableBits(globalPalette)));
        ms.WriteByte(0); // background
        ms.WriteByte(0); // aspect
        if (globalPalette is not null) ms.Write(globalPalette);
        foreach (var f in frames)
        {
            if (f.Transparency is not null || f.Disposal != 0)
            {
                ms.Write([0x21, 0xF9, 4, (byte)(f.Disposal << 2 | (f.Transparency is null ? 0 : 1)), 5, 0, (byte)(f.Transparency ?? 0), 0]);
            }
            ms.WriteByte(0x2C);
            U16(f.X);
            U16(f.Y);
            U16(f.Width);
            U16(f.Height);
            ms.WriteByte(f.LocalPalette is null ? (byte)0 : (byte)(0x80 | TableBits(f.LocalPalette)));
            if (f.LocalPalette is not null) ms.Write(f.LocalPalette);
            ms.WriteByte((byte)f.MinCodeSize);
            WriteSubBlocks(ms, LiteralLzw(f.Indices, f.MinCodeSize));
        }
        if (trailer) ms.WriteByte(0x3B);
        return ms.ToArray();
    }

    private static int TableBits(byte[] palette)
    {
        int entries = palette.Length / 3;
        if (entries < 2 || entries > 256 || (entries & (entries - 1)) != 0 || palette.Length % 3 != 0)
            throw new ArgumentException("a GIF colour table has 2, 4, … 256 RGB entries");
        return System.Numerics.BitOperations.Log2((uint)entries) - 1;
    }

    public static void WriteSubBlocks(Stream s, ReadOnlySpan<byte> data)
    {
        for (int i = 0; i < data.Length; i += 255)
        {
            int n = Math.Min(255, data.Length - i);
            s.WriteByte((byte)n);
            s.Write(data.Slice(i, n));
        }
        s.WriteByte(0);
    }

    /// <summary>Clear, then each index as a literal code, a clear again before the table reaches the next code width; end code.</summary>
    public static byte[] LiteralLzw(ReadOnlySpan<byte> indices, int minCodeSize, bool endCode = true)
    {
        if (minCodeSize < 2) throw new ArgumentOutOfRangeException(nameof(minCodeSize), "literal-only coding needs at least 2");
        int clear = 1 << minCodeSize, width = minCodeSize + 1, perClear = clear - 2;
        var codes = new List<int> { clear };
        for (int i = 0; i < indices.Length; i++)
        {
            if (i > 0 && i % perClear == 0) codes.Add(clear);
            codes.Add(indices[i]);
        }
        if (endCode) codes.Add(clear + 1);
        return PackCodes(codes, width);
    }

    /// <summary>Codes of one fixed width, least significant bit first.</summary>
    public static byte[] PackCodes(IEnumerable<int> codes, int width)
    {
        var bytes = new List<byte>();
        ulong acc = 0;
        int bits = 0;
        foreach (int c in codes)
        {
            acc |= (ulong)c << bits;
            bits += width;
            while (bits >= 8) { bytes.Add((byte)acc); acc >>= 8; bits -= 8; }
        }
        if (bits > 0) bytes.Add((byte)acc);
        return bytes.ToArray();
    }
}
