namespace LlavaNative.Model.Imaging;

/// <summary>Decodes an image file of any supported format, recognised by its signature (not its extension).</summary>
public static class ImageDecoder
{
    public static DecodedImage Decode(string path, ImageDecodeOptions? options = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: image file not found", path);
        return Decode(File.ReadAllBytes(path), Path.GetFileName(path), options);
    }

    public static DecodedImage Decode(Stream stream, string source = "<stream>", ImageDecodeOptions? options = null)
    {
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return Decode(copy.ToArray(), source, options);
    }

    /// <summary>Decodes <paramref name="data"/>; <paramref name="source"/> names it in errors.</summary>
    public static DecodedImage Decode(byte[] data, string source = "<bytes>", ImageDecodeOptions? options = null)
    {
        options ??= ImageDecodeOptions.Default;
        var format = Sniff(data);
        return format switch
        {
            "PNG" => PngDecoder.Decode(data, source, options),
            "JPEG" => Jpeg.JpegDecoder.Decode(data, source, options),
            "GIF" => GifDecoder.Decode(data, source, options),
            "BMP" => BmpDecoder.Decode(data, source, options),
            "PNM" => PnmDecoder.Decode(data, source, options),
            _ => throw new ImageFormatException(source, data.Length == 0
                ? "the file is empty"
                : $"unrecognised image format (first bytes {Convert.ToHexString(data.AsSpan(0, Math.Min(8, data.Length)))}); supported: PNG, JPEG, GIF, BMP, PPM/PGM"),
        };
    }

    /// <summary>Format named by the file signature, or null.</summary>
    public static string? Sniff(ReadOnlySpan<byte> d)
    {
        ReadOnlySpan<byte> png = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];
        if (d.Length >= 8 && d[..8].SequenceEqual(png)) return "PNG";
        if (d.Length >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) return "JPEG";
        if (d.Length >= 6 && (d[..6].SequenceEqual("GIF87a"u8) || d[..6].SequenceEqual("GIF89a"u8))) return "GIF";
        if (d.Length >= 2 && d[0] == (byte)'B' && d[1] == (byte)'M') return "BMP";
        if (d.Length >= 2 && d[0] == (byte)'P' && d[1] is (byte)'2' or (byte)'3' or (byte)'5' or (byte)'6') return "PNM";
        return null;
    }
}
