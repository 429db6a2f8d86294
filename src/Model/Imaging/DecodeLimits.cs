namespace LlavaNative.Model.Imaging;

/// <summary>Size checks every decoder runs on header values before it allocates anything.</summary>
internal static class DecodeLimits
{
    /// <summary>
    /// Throws an <see cref="ImageFormatException"/> unless a <paramref name="width"/> × <paramref name="height"/>
    /// image is non-empty, within <see cref="ImageDecodeOptions.MaxPixels"/>, and its
    /// <paramref name="channels"/>-byte pixels fit in one array.
    /// </summary>
    public static void CheckImageSize(string source, string format, long width, long height, int channels, ImageDecodeOptions options)
    {
        if (width <= 0 || height <= 0)
            throw new ImageFormatException(source, $"{format} image size {width}×{height} is empty or negative");
        long pixels = width * height; // both ≤ 2^32 in every format we read, so no overflow
        if (pixels > options.MaxPixels)
            throw new ImageFormatException(source,
                $"{format} image is {width}×{height} = {pixels} pixels, more than the limit of {options.MaxPixels} (ImageDecodeOptions.MaxPixels)");
        if (pixels * channels > Array.MaxLength)
            throw new ImageFormatException(source,
                $"{format} image {width}×{height}×{channels} needs {pixels * channels} bytes, more than one .NET array holds");
    }
}
