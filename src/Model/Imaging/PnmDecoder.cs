namespace LlavaNative.Model.Imaging;

/// <summary>
/// Netpbm graymap and pixmap decoder: binary P5 (gray) and P6 (RGB) and their plain-text forms P2 and P3, maxval 1
/// to 65535 (two big-endian bytes per sample above 255), '#' comments in the header (and between plain-text
/// samples). Output is 8-bit gray or RGB: a sample v becomes <c>round(v / maxval · 255)</c> with ties to even,
/// computed in double precision exactly as Pillow does it for P3/P6 and for P2/P5 with maxval ≤ 255 (so the
/// results match bit for bit). Deliberate difference: Pillow opens a graymap with maxval above 255 as a 32-bit
/// integer image that <c>convert("L")</c> clips to 255; LlavaNative scales it like every other maxval. A sample
/// above maxval is an error (Pillow clips it in binary files and rejects it in plain ones).
/// </summary>
internal static class PnmDecoder
{
    public static DecodedImage Decode(byte[] data, string source, ImageDecodeOptions options)
    {
        if (data.Length < 3 || data[0] != 'P' || data[1] is not ((byte)'2' or (byte)'3' or (byte)'5' or (byte)'6') || !IsSpace(data[2]))
            throw Error(source, "not a PGM/PPM file (expected P2, P3, P5 or P6 followed by whitespace)");
        char kind = (char)data[1];
        bool plain = kind is '2' or '3';
        int channels = kind is '3' or '6' ? 3 : 1;
        int pos = 2;
        long width = ReadHeaderNumber(data, ref pos, source, "width");
        long height = ReadHeaderNumber(data, ref pos, source, "height");
        long maxval = ReadHeaderNumber(data, ref pos, source, "maxval");
        if (maxval is < 1 or > 65535) throw Error(source, $"maxval {maxval} is out of range (1 to 65535)");
        DecodeLimits.CheckImageSize(source, $"P{kind}", width, height, channels, options);
        long samples = width * height * channels;

        // One output byte per possible sample value: [maxval + 1].
        var scale = new byte[maxval + 1];
        for (int v = 0; v <= maxval; v++) scale[v] = (byte)Math.Round(v / (double)maxval * 255.0, MidpointRounding.ToEven);

        byte[] pixels;
        if (plain)
        {
            pixels = new byte[samples];
            ReadPlainSamples(data, pos, pixels, scale, maxval, source);
        }
        else
        {
            pos++; // exactly one whitespace byte separates maxval from the raster (ReadHeaderNumber stopped on it)
            int bytesPerSample = maxval < 256 ? 1 : 2;
            long needed = samples * bytesPerSample;
            if (pos + needed > data.Length)
                throw Error(source, $"raster needs {needed} bytes after the header but the file has {Math.Max(0, data.Length - pos)} (truncated)");
            pixels = new byte[samples];
            for (long i = 0; i < samples; i++)
            {
                int v = bytesPerSample == 1 ? data[pos + i] : data[pos + 2 * i] << 8 | data[pos + 2 * i + 1];
                if (v > maxval) throw Error(source, $"sample {i} is {v}, above maxval {maxval}");
                pixels[i] = scale[v];
            }
        }
        return new DecodedImage { Format = "PNM", Frames = [new Image((int)width, (int)height, channels, pixels)] };
    }

    private static ImageFormatException Error(string source, string problem) => new(source, "PNM " + problem);

    private static bool IsSpace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\v' or (byte)'\f' or (byte)'\r';

    /// <summary>Skips whitespace and '#' comments (to the end of the line) before a token.</summary>
    private static void SkipSpaceAndComments(byte[] data, ref int pos)
    {
        while (pos < data.Length)
        {
            if (IsSpace(data[pos])) pos++;
            else if (data[pos] == '#')
                while (pos < data.Length && data[pos] is not ((byte)'\n' or (byte)'\r')) pos++;
            else break;
        }
    }

    /// <summary>A decimal header field; leaves <paramref name="pos"/> on the byte after its last digit.</summary>
    private static long ReadHeaderNumber(byte[] data, ref int pos, string source, string field)
    {
        SkipSpaceAndComments(data, ref pos);
        if (pos >= data.Length) throw Error(source, $"header ends before the {field} (truncated)");
        long value = 0;
        int start = pos;
        while (pos < data.Length && data[pos] is >= (byte)'0' and <= (byte)'9')
        {
            if (pos - start == 10) throw Error(source, $"header {field} has more than 10 digits");
            value = value * 10 + (data[pos++] - '0');
        }
        if (pos == start) throw Error(source, $"header {field} is not a number (found byte 0x{data[pos]:X2} at offset {pos})");
        if (pos >= data.Length || !IsSpace(data[pos]))
            throw Error(source, pos >= data.Length ? $"file ends after the header {field} (truncated)" : $"header {field} is followed by byte 0x{data[pos]:X2}, not whitespace");
        return value;
    }

    private static void ReadPlainSamples(byte[] data, int pos, byte[] pixels, byte[] scale, long maxval, string source)
    {
        for (long i = 0; i < pixels.LongLength; i++)
        {
            SkipSpaceAndComments(data, ref pos);
            if (pos >= data.Length) throw Error(source, $"plain raster ends after {i} of {pixels.LongLength} samples (truncated)");
            long v = 0;
            int start = pos;
            while (pos < data.Length && data[pos] is >= (byte)'0' and <= (byte)'9')
            {
                if (pos - start == 10) throw Error(source, $"sample {i} has more than 10 digits");
                v = v * 10 + (data[pos++] - '0');
            }
            if (pos == start) throw Error(source, $"sample {i} is not a number (found byte 0x{data[pos]:X2} at offset {pos})");
            if (v > maxval) throw Error(source, $"sample {i} is {v}, above maxval {maxval}");
            pixels[i] = scale[v];
        }
    }
}
