using System.Text;

namespace LlavaNative.Model.Tokenizers.HuggingFace;

/// <summary>The four Unicode normalization forms of UAX #15.</summary>
internal enum UnicodeForm
{
    Nfc,
    Nfd,
    Nfkc,
    Nfkd,
}

/// <summary>
/// Unicode normalization (UAX #15) written out, because this repository runs .NET with InvariantGlobalization,
/// where <see cref="string.Normalize()"/> returns its input unchanged. Decomposition is recursive over the
/// one-level mappings of UnicodeData.txt (canonical only, or canonical and compatibility), Hangul syllables are
/// decomposed and composed arithmetically, non-starters are put in canonical order by combining class, and the
/// composing forms recombine every unblocked pair that has a primary composite. The table
/// (UnicodeNormalization.data, embedded) is generated from Python's unicodedata by
/// tools/generate-unicode-normalization.py.
/// </summary>
internal static class UnicodeNormalization
{
    // Hangul syllable arithmetic (Unicode chapter 3.12)
    private const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7;
    private const int LCount = 19, VCount = 21, TCount = 28, NCount = VCount * TCount, SCount = LCount * NCount;

    private sealed class Tables
    {
        public readonly Dictionary<int, byte> CombiningClass = new();
        public readonly Dictionary<int, int[]> Canonical = new();
        public readonly Dictionary<int, int[]> Compatibility = new();
        public readonly Dictionary<long, int> Composition = new();
        public string UnicodeVersion = "";
    }

    private static readonly Lazy<Tables> s_tables = new(Load);

    /// <summary>The Unicode version the table was generated from.</summary>
    public static string UnicodeVersion => s_tables.Value.UnicodeVersion;

    public static string Normalize(string text, UnicodeForm form)
    {
        if (IsUnchangedFast(text, form))
            return text;
        Tables tables = s_tables.Value;
        bool compatibility = form is UnicodeForm.Nfkc or UnicodeForm.Nfkd;
        var codepoints = new List<int>(text.Length + 8);
        foreach (Rune rune in text.EnumerateRunes())
            Decompose(rune.Value, compatibility, tables, codepoints);
        PutInCanonicalOrder(codepoints, tables);
        if (form is UnicodeForm.Nfc or UnicodeForm.Nfkc)
            Compose(codepoints, tables);

        var sb = new StringBuilder(codepoints.Count + 8);
        foreach (int cp in codepoints)
            sb.Append(new Rune(cp).ToString());
        return sb.ToString();
    }

    /// <summary>Canonical combining class of <paramref name="codepoint"/> (0 for starters).</summary>
    public static int CombiningClass(int codepoint) =>
        s_tables.Value.CombiningClass.TryGetValue(codepoint, out byte ccc) ? ccc : 0;

    /// <summary>
    /// Text made only of characters no form changes: below U+0300 for NFC (nothing there decomposes under NFC,
    /// has a non-zero combining class or composes with a following character), below U+00C0 for NFD and
    /// below U+00A0 for the compatibility forms.
    /// </summary>
    private static bool IsUnchangedFast(string text, UnicodeForm form)
    {
        char limit = form switch
        {
            UnicodeForm.Nfc => '\u0300',
            UnicodeForm.Nfd => '\u00C0',
            _ => '\u00A0',
        };
        foreach (char c in text)
            if (c >= limit)
                return false;
        return true;
    }

    private static void Decompose(int cp, bool compatibility, Tables tables, List<int> output)
    {
        int s = cp - SBase;
        if ((uint)s < SCount)
        {
            output.Add(LBase + s / NCount);
            output.Add(VBase + s % NCount / TCount);
            if (s % TCount != 0)
                output.Add(TBase + s % TCount);
            return;
        }
        if (tables.Canonical.TryGetValue(cp, out int[]? mapping) || (compatibility && tables.Compatibility.TryGetValue(cp, out mapping)))
        {
            foreach (int part in mapping)
                Decompose(part, compatibility, tables, output);
            return;
        }
        output.Add(cp);
    }

    /// <summary>Stable sort of every run of non-starters by combining class (the canonical ordering algorithm).</summary>
    private static void PutInCanonicalOrder(List<int> cps, Tables tables)
    {
        for (int i = 1; i < cps.Count; i++)
        {
            int ccc = Ccc(cps[i], tables);
            if (ccc == 0)
                continue;
            int j = i;
            while (j > 0)
            {
                int before = Ccc(cps[j - 1], tables);
                if (before <= ccc)
                    break;
                (cps[j - 1], cps[j]) = (cps[j], cps[j - 1]);
                j--;
            }
        }
    }

    /// <summary>
    /// Canonical composition: each character composes with the last starter when nothing between them blocks it
    /// (a character in between blocks when its class is 0 or not lower than the character's own).
    /// </summary>
    private static void Compose(List<int> cps, Tables tables)
    {
        int write = 0;
        int starter = -1;       // index in the output of the last starter
        int lastClass = -1;     // class of the last character written after that starter; -1: none yet
        for (int read = 0; read < cps.Count; read++)
        {
            int cp = cps[read];
            int ccc = Ccc(cp, tables);
            if (starter >= 0 && (lastClass == -1 || (lastClass != 0 && lastClass < ccc))
                && TryCompose(cps[starter], cp, tables, out int composite))
            {
                cps[starter] = composite;
                continue;
            }
            if (ccc == 0)
            {
                starter = write;
                lastClass = -1;
            }
            else
            {
                lastClass = ccc;
            }
            cps[write++] = cp;
        }
        cps.RemoveRange(write, cps.Count - write);
    }

    private static bool TryCompose(int first, int second, Tables tables, out int composite)
    {
        int l = first - LBase, v = second - VBase;
        if ((uint)l < LCount && (uint)v < VCount)
        {
            composite = SBase + (l * VCount + v) * TCount;
            return true;
        }
        int s = first - SBase, t = second - TBase;
        if ((uint)s < SCount && s % TCount == 0 && t > 0 && t < TCount)
        {
            composite = first + t;
            return true;
        }
        return tables.Composition.TryGetValue(((long)first << 32) | (uint)second, out composite);
    }

    private static int Ccc(int cp, Tables tables) => cp < 0x300 ? 0 : tables.CombiningClass.TryGetValue(cp, out byte c) ? c : 0;

    private static Tables Load()
    {
        const string resource = "LlavaNative.Model.Tokenizers.HuggingFace.UnicodeNormalization.data";
        using Stream stream = typeof(UnicodeNormalization).Assembly.GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException($"embedded resource {resource} is missing from the assembly");
        using var reader = new StreamReader(stream, Encoding.ASCII);
        var tables = new Tables();
        string? line;
        while ((line = reader.ReadLine()) != null)
        {
            if (line.StartsWith('#'))
            {
                const string marker = "# Unicode ";
                if (line.StartsWith(marker, StringComparison.Ordinal))
                    tables.UnicodeVersion = line[marker.Length..].Split(' ')[0];
                continue;
            }
            string[] fields = line.Split(' ');
            int cp = Convert.ToInt32(fields[0], 16);
            byte ccc = byte.Parse(fields[1]);
            if (ccc != 0)
                tables.CombiningClass[cp] = ccc;
            if (fields.Length < 4)
                continue;
            bool excluded = fields[^1] == "x";
            int[] mapping = new int[fields.Length - 3 - (excluded ? 1 : 0)];
            for (int i = 0; i < mapping.Length; i++)
                mapping[i] = Convert.ToInt32(fields[3 + i], 16);
            if (fields[2] == "c")
            {
                tables.Canonical[cp] = mapping;
                if (mapping.Length == 2 && !excluded)
                    tables.Composition[((long)mapping[0] << 32) | (uint)mapping[1]] = cp;
            }
            else
            {
                tables.Compatibility[cp] = mapping;
            }
        }
        return tables;
    }
}
