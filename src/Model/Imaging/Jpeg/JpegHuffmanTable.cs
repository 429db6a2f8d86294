namespace LlavaNative.Model.Imaging.Jpeg;

/// <summary>
/// A Huffman decoding table built from a DHT segment (T.81 Annex C: code lengths → canonical codes; F.2.2.3:
/// decoding by the largest code of each length). Codes of up to <see cref="LookaheadBits"/> bits are decoded with
/// one lookup of the next 9 bits of the stream; longer codes (rare) walk the per-length limits.
/// </summary>
internal sealed class JpegHuffmanTable
{
    /// <summary>Bits looked at by one table lookup. 9 covers nearly every code real encoders emit.</summary>
    public const int LookaheadBits = 9;

    /// <summary>By the next 9 bits: (code length &lt;&lt; 8) | symbol, or 0 when the code is longer than 9 bits.</summary>
    public readonly ushort[] Fast = new ushort[1 << LookaheadBits];

    /// <summary>
    /// AC tables only, by the next 9 bits: when the code and the magnitude bits that follow it both fit in 9 bits,
    /// (value &lt;&lt; 8) | (run &lt;&lt; 4) | (code length + magnitude bits), value already sign-extended; else 0.
    /// Saves the second bit-buffer read for the small coefficients that make up most of a scan.
    /// </summary>
    public readonly int[]? FastAc;

    /// <summary>Largest code of each length 1..16 (index = length), -1 when none; [17] is a sentinel that ends the walk.</summary>
    public readonly int[] MaxCode = new int[18];

    /// <summary>Added to a code of length l to get its index in <see cref="Symbols"/>.</summary>
    public readonly int[] SymbolOffset = new int[17];

    public readonly byte[] Symbols;

    /// <param name="counts">BITS: number of codes of each length 1..16 (index 0 = length 1).</param>
    /// <param name="symbols">HUFFVAL: the symbols in code order.</param>
    /// <param name="isDc">DC tables hold magnitude categories, which must be at most 15.</param>
    /// <param name="describe">Names the table in errors, e.g. "DC table 0".</param>
    /// <exception cref="ArgumentException">the counts describe no valid prefix code, or a DC symbol is out of range.</exception>
    public JpegHuffmanTable(ReadOnlySpan<byte> counts, ReadOnlySpan<byte> symbols, bool isDc, string describe)
    {
        if (counts.Length != 16) throw new ArgumentException($"{describe}: 16 code-length counts expected");
        int total = 0;
        foreach (byte c in counts) total += c;
        if (total > 256 || total != symbols.Length)
            throw new ArgumentException($"{describe}: {total} codes (at most 256, and one per symbol)");
        Symbols = symbols.ToArray();
        if (isDc)
        {
            foreach (byte s in Symbols)
                if (s > 15) throw new ArgumentException($"{describe}: DC magnitude category {s} (at most 15)");
        }

        // Canonical code assignment (C.2): codes of one length are consecutive; moving to the next length appends a 0.
        int code = 0, index = 0;
        for (int length = 1; length <= 16; length++)
        {
            int n = counts[length - 1];
            SymbolOffset[length] = index - code;
            for (int i = 0; i < n; i++, code++, index++)
            {
                // Every code of this length must fit in `length` bits and must not be all ones (T.81 reserves that
                // pattern; libjpeg rejects it too): counts that get there oversubscribe the code space.
                if (code >= (1 << length) - 1)
                    throw new ArgumentException($"{describe}: code lengths oversubscribe the code space at length {length}");
                if (length <= LookaheadBits)
                {
                    int shift = LookaheadBits - length;
                    int first = code << shift;
                    for (int j = 0; j < 1 << shift; j++) Fast[first + j] = (ushort)((length << 8) | Symbols[index]);
                }
            }
            MaxCode[length] = n == 0 ? -1 : code - 1;
            code <<= 1;
        }
        MaxCode[17] = int.MaxValue;

        if (!isDc)
        {
            FastAc = new int[1 << LookaheadBits];
            for (int bits = 0; bits < FastAc.Length; bits++)
            {
                int e = Fast[bits];
                if (e == 0) continue;
                int length = e >> 8, rs = e & 255, run = rs >> 4, size = rs & 15;
                if (size == 0 || length + size > LookaheadBits) continue;
                int raw = (bits >> (LookaheadBits - length - size)) & ((1 << size) - 1);
                int value = JpegBits.Extend(raw, size);
                FastAc[bits] = (value << 8) | (run << 4) | (length + size);
            }
        }
    }
}

/// <summary>Bit-level helpers shared by the Huffman decoders.</summary>
internal static class JpegBits
{
    /// <summary>
    /// T.81 F.2.2.1 EXTEND: <paramref name="size"/> magnitude bits <paramref name="raw"/> to a signed value; codes
    /// whose top bit is 0 are the negative half, e.g. size 3: 000..011 → −7..−4, 100..111 → 4..7.
    /// </summary>
    public static int Extend(int raw, int size) => raw < 1 << (size - 1) ? raw - (1 << size) + 1 : raw;

    /// <summary>Zigzag order (T.81 Figure A.6): entry k is the natural (row-major) index of the k-th coefficient.</summary>
    public static ReadOnlySpan<byte> ZigzagToNatural =>
    [
        0, 1, 8, 16, 9, 2, 3, 10,
        17, 24, 32, 25, 18, 11, 4, 5,
        12, 19, 26, 33, 40, 48, 41, 34,
        27, 20, 13, 6, 7, 14, 21, 28,
        35, 42, 49, 56, 57, 50, 43, 36,
        29, 22, 15, 23, 30, 37, 44, 51,
        58, 59, 52, 45, 38, 31, 39, 46,
        53, 60, 61, 54, 47, 55, 62, 63,
    ];
}
