using LlavaNative.Model.Imaging;

namespace LlavaNative.Model.Llava;

/// <summary>
/// A video as consecutive images: the frames of an animated GIF, or the image files of a folder sorted by name
/// (ordinal), of which N are sampled uniformly.
/// </summary>
public static class VideoFrames
{
    /// <summary>File extensions a frame folder's images may have (others, e.g. a notes.txt, are skipped).</summary>
    public static readonly string[] FrameExtensions = [".png", ".jpg", ".jpeg", ".gif", ".bmp", ".ppm", ".pgm", ".pnm"];

    /// <summary>
    /// The frames to keep of <paramref name="total"/>: <c>numpy.linspace(0, total − 1, count).astype(int)</c>, the rule
    /// LLaVA-NeXT-Video and llava-onevision use — evenly spaced, first and last frame included, each index truncated
    /// toward zero. <paramref name="count"/> is first capped at <paramref name="total"/> (no frame is repeated).
    /// </summary>
    public static int[] SampleIndices(int total, int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(total);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        count = Math.Min(count, total);
        var indices = new int[count];
        if (count == 1) return indices; // linspace(0, stop, 1) = [0]
        // numpy: step = (stop − start) / (num − 1); y = arange(num) · step + start; the last element set to stop exactly.
        double step = (double)(total - 1) / (count - 1);
        for (int i = 0; i < count; i++) indices[i] = (int)(i * step);
        indices[^1] = total - 1;
        return indices;
    }

    /// <summary>
    /// <paramref name="count"/> frames of <paramref name="path"/>: a folder of image files (sorted by name) or an
    /// animated GIF, sampled by <see cref="SampleIndices"/>.
    /// </summary>
    /// <exception cref="FileNotFoundException">Neither a folder nor a file.</exception>
    /// <exception cref="ImageFormatException">The folder has no image files, or the file is not a GIF / a frame cannot be decoded.</exception>
    public static IReadOnlyList<LlavaImage> Load(string path, int count)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        if (Directory.Exists(path))
        {
            string[] files = Directory.GetFiles(path)
                .Where(f => FrameExtensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
                .OrderBy(f => Path.GetFileName(f), StringComparer.Ordinal)
                .ToArray();
            if (files.Length == 0)
                throw new ImageFormatException(path, $"the folder holds no frame images ({string.Join(", ", FrameExtensions)})");
            return SampleIndices(files.Length, count).Select(i => LlavaImage.FromFile(files[i])).ToArray();
        }
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such video file or frame folder", path);
        byte[] data = File.ReadAllBytes(path);
        if (ImageDecoder.Sniff(data) != "GIF")
            throw new ImageFormatException(path, "a video must be an animated GIF or a folder of frame images (other video formats are not supported)");
        var frames = ImageDecoder.Decode(data, Path.GetFileName(path)).Frames;
        return SampleIndices(frames.Count, count).Select(i => LlavaImage.FromImage(frames[i], $"{path}#frame{i}")).ToArray();
    }
}
