namespace LlavaNative.Model.Tokenizers;

/// <summary>
/// GPT-2's byte-to-unicode mapping: byte-level BPE vocabularies spell every byte as one printable character.
/// Bytes '!'..'~', '¡'..'¬' and '®'..'ÿ' stand for themselves; the other 68 bytes, in increasing order, become
/// U+0100, U+0101, … (so ' ' is 'Ġ' U+0120 and '\n' is 'Ċ' U+010A). Every such character is one UTF-16 unit.
/// </summary>
internal static class ByteLevelAlphabet
{
    /// <summary>[256]: the character that spells each byte.</summary>
    public static readonly char[] ByteToChar = BuildByteToChar();

    /// <summary>[0x144]: the byte a character spells, or -1 for characters outside the alphabet.</summary>
    private static readonly short[] s_charToByte = BuildCharToByte();

    /// <summary>The byte <paramref name="c"/> spells, or -1 when it is not one of the 256 alphabet characters.</summary>
    public static int CharToByte(int c) => (uint)c < (uint)s_charToByte.Length ? s_charToByte[c] : -1;

    private static bool StandsForItself(int b) => b is (>= 0x21 and <= 0x7E) or (>= 0xA1 and <= 0xAC) or (>= 0xAE and <= 0xFF);

    private static char[] BuildByteToChar()
    {
        var map = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
            map[b] = StandsForItself(b) ? (char)b : (char)next++;
        return map;
    }

    private static short[] BuildCharToByte()
    {
        var map = new short[256 + 68];
        Array.Fill(map, (short)-1);
        for (int b = 0; b < 256; b++)
            map[ByteToChar[b]] = (short)b;
        return map;
    }
}
