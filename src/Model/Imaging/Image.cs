namespace LlavaNative.Model.Imaging;

/// <summary>
/// A decoded 8-bit image: <see cref="Pixels"/> is row-major, interleaved, <see cref="Channels"/> per pixel
/// (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) — [Height, Width, Channels]. Decoders return what the file holds (16-bit
/// samples reduced to their high byte); <see cref="ToRgb"/> gives the 3-channel view the vision pipeline consumes.
/// </summary>
public sealed class Image
{
    public int Width { get; }
    public int Height { get; }
    public int Channels { get; }
    public byte[] Pixels { get; }

    public Image(int width, int height, int channels, byte[] pixels)
    {
        if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException(nameof(width), $"image size {width}×{height} is empty");
        if (channels is < 1 or > 4) throw new ArgumentOutOfRangeException(nameof(channels), channels, "1 to 4 channels");
        if (pixels.LongLength != (long)width * height * channels)
            throw new ArgumentException($"{pixels.LongLength} bytes for a {width}×{height}×{channels} image");
        Width = width;
        Height = height;
        Channels = channels;
        Pixels = pixels;
    }

    public bool HasAlpha => Channels is 2 or 4;

    /// <summary>
    /// RGB, 3 channels. Gray is replicated; alpha is composited on white (transformers' <c>convert_to_rgb</c>:
    /// an RGBA image pasted on a white background), <c>round(c·a/255 + 255·(1 − a/255))</c>.
    /// </summary>
    public Image ToRgb()
    {
        if (Channels == 3) return this;
        var rgb = new byte[(long)Width * Height * 3];
        long n = (long)Width * Height;
        for (long i = 0; i < n; i++)
        {
            byte r, g, b, a;
            switch (Channels)
            {
                case 1: r = g = b = Pixels[i]; a = 255; break;
                case 2: r = g = b = Pixels[2 * i]; a = Pixels[2 * i + 1]; break;
                default: r = Pixels[4 * i]; g = Pixels[4 * i + 1]; b = Pixels[4 * i + 2]; a = Pixels[4 * i + 3]; break;
            }
            rgb[3 * i] = OnWhite(r, a);
            rgb[3 * i + 1] = OnWhite(g, a);
            rgb[3 * i + 2] = OnWhite(b, a);
        }
        return new Image(Width, Height, 3, rgb);
    }

    // Pillow's alpha_composite of the image over opaque white, in integer arithmetic with rounding.
    private static byte OnWhite(byte c, byte a) => (byte)((c * a + 255 * (255 - a) + 127) / 255);
}

/// <summary>Decoded file: its frames (one for still images), format name and EXIF orientation (already applied).</summary>
public sealed class DecodedImage
{
    public required string Format { get; init; }
    public required IReadOnlyList<Image> Frames { get; init; }
    /// <summary>
    /// EXIF orientation tag (1–8) found in the file, 1 when absent; the frames are already rotated upright unless
    /// <see cref="ImageDecodeOptions.ApplyExifOrientation"/> was false.
    /// </summary>
    public int Orientation { get; init; } = 1;
    public Image First => Frames[0];
}

/// <summary>Limits against decompression bombs and absurd headers.</summary>
public sealed record ImageDecodeOptions
{
    /// <summary>Largest accepted width × height (default 100 megapixels).</summary>
    public long MaxPixels { get; init; } = 100_000_000;
    /// <summary>Largest accepted frame count for animations (default 1000).</summary>
    public int MaxFrames { get; init; } = 1000;
    /// <summary>
    /// Largest accepted sum of width × height over all decoded frames of an animation (default 400 megapixels,
    /// 1.6 GB as RGBA): every GIF frame is a full-canvas image, so a few kilobytes of tiny frames on a large canvas
    /// would otherwise expand to <see cref="MaxFrames"/> × <see cref="MaxPixels"/> pixels.
    /// </summary>
    public long MaxTotalPixels { get; init; } = 400_000_000;
    /// <summary>
    /// Turn images upright by their EXIF Orientation tag (default true, as browsers and phones show photos). Pillow,
    /// and so HF preprocessing, ignores the tag: set false to get the stored pixel layout HF would see.
    /// </summary>
    public bool ApplyExifOrientation { get; init; } = true;
    public static ImageDecodeOptions Default { get; } = new();
}

/// <summary>An image that cannot be decoded: the message names the file (when known) and the problem.</summary>
public sealed class ImageFormatException(string source, string problem)
    : Formats.ModelFormatException($"{source}: {problem}");
