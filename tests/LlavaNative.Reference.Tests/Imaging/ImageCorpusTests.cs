using System.Text;
using LlavaNative.Model.Imaging;
using Xunit;

namespace LlavaNative.Reference.Tests.Imaging;

/// <summary>
/// Every file of the corpus decodes to exactly the pixels Pillow gives (<c>np.asarray(Image.open(f).convert(mode))</c>,
/// every frame of a GIF via <c>ImageSequence</c>), or, where LlavaNative deliberately differs from Pillow (16-bit
/// samples, PNG colour keys Pillow never matches, PGM above maxval 255, BMP bitfields Pillow rejects), exactly the
/// values computed from the samples the file was written from; for the RLE BMP escapes Pillow 9.4 misreads, what
/// ImageMagick decodes. PNG, GIF, BMP and PNM are lossless: one byte off is a failure.
/// </summary>
public sealed class ImageCorpusTests(ImageCorpus corpus) : IClassFixture<ImageCorpus>
{
    [Fact] public void PngMatchesTheReference() => Check("PNG");
    [Fact] public void GifMatchesPillowFrameByFrame() => Check("GIF");
    [Fact] public void BmpMatchesTheReference() => Check("BMP");
    [Fact] public void PnmMatchesTheReference() => Check("PNM");

    private void Check(string format)
    {
        var entries = corpus.Entries.Where(e => e.Format == format).ToList();
        Assert.NotEmpty(entries);
        var failures = new List<string>();
        foreach (var e in entries)
        {
            string? problem = Compare(e);
            if (problem is not null) failures.Add($"{e.File} ({e.Reference}{(e.Why.Length > 0 ? ": " + e.Why : "")}): {problem}");
        }
        Assert.True(failures.Count == 0,
            $"{failures.Count} of {entries.Count} {format} files differ from the reference:\n" + string.Join("\n", failures.Take(25)));
    }

    private string? Compare(CorpusEntry e)
    {
        DecodedImage decoded;
        try
        {
            decoded = ImageDecoder.Decode(corpus.PathOf(e.File));
        }
        catch (Exception ex)
        {
            return $"{ex.GetType().Name}: {ex.Message}";
        }
        if (decoded.Format != e.Format) return $"format {decoded.Format}, expected {e.Format}";
        if (decoded.Frames.Count != e.Frames) return $"{decoded.Frames.Count} frames, expected {e.Frames}";
        byte[] expected = File.ReadAllBytes(corpus.PathOf(e.Pixels));
        int frameBytes = e.Width * e.Height * e.Channels;
        Assert.Equal(e.Frames * frameBytes, expected.Length);
        for (int k = 0; k < e.Frames; k++)
        {
            var f = decoded.Frames[k];
            if ((f.Width, f.Height, f.Channels) != (e.Width, e.Height, e.Channels))
                return $"frame {k} is {f.Width}×{f.Height}×{f.Channels}, expected {e.Width}×{e.Height}×{e.Channels}";
            var want = expected.AsSpan(k * frameBytes, frameBytes);
            if (want.SequenceEqual(f.Pixels)) continue;
            int first = -1, count = 0;
            for (int i = 0; i < frameBytes; i++)
                if (f.Pixels[i] != want[i]) { count++; if (first < 0) first = i; }
            int pixel = first / e.Channels;
            return $"frame {k}: {count} bytes differ; first at x={pixel % e.Width}, y={pixel / e.Width}, channel {first % e.Channels}: " +
                $"got {Pixel(f.Pixels, pixel, e.Channels)}, expected {Pixel(want, pixel, e.Channels)}";
        }
        return null;
    }

    private static string Pixel(ReadOnlySpan<byte> pixels, int index, int channels)
    {
        var sb = new StringBuilder("(");
        for (int c = 0; c < channels; c++) sb.Append(c > 0 ? ", " : "").Append(pixels[index * channels + c]);
        return sb.Append(')').ToString();
    }

    [Fact]
    public void CorpusCoversEveryVariant()
    {
        var files = corpus.Entries.Select(e => e.File).ToHashSet();
        // Every PNG colour type × legal bit depth, interlaced and not, at 1×1, 3×7 and 257×13.
        int[][] legal = [[0, 1], [0, 2], [0, 4], [0, 8], [0, 16], [2, 8], [2, 16], [3, 1], [3, 2], [3, 4], [3, 8], [4, 8], [4, 16], [6, 8], [6, 16]];
        foreach (var ct in legal)
            foreach (var layout in new[] { "flat", "adam7" })
                foreach (var size in new[] { "1x1", "3x7", "257x13" })
                    Assert.Contains($"png/ct{ct[0]}_d{ct[1]}_{layout}_{size}.png", files);
        foreach (var f in new[] { "png/trns_ct0_d1_adam7.png", "png/trns_ct2_d16_flat.png", "png/plte_trns_short_d4.png",
                     "png/filter4_rgb16.png", "png/magick_6_d16_adam7.png", "png/magick_gray_d2_adam7.png",
                     "gif/lzw_deferred_clear.gif", "gif/interlaced_h37.gif", "gif/anim_23.gif", "gif/magick_optimized.gif",
                     "bmp/rgb24_2x5_topdown.bmp", "bmp/bitfields32_bgra_v124.bmp", "bmp/os2_pal8.bmp", "bmp/rle4_40x9_odd_literals.bmp",
                     "bmp/rle8_257x13_move.bmp", "bmp/magick_rle8.bmp", "pnm/plain_max1000_3x7.ppm" })
            Assert.Contains(f, files);
        // Deliberate differences from Pillow, and the files Pillow misreads, are the documented ones, each with its reason.
        foreach (var e in corpus.Entries.Where(e => e.Reference != "pillow"))
        {
            Assert.NotEmpty(e.Why);
            Assert.Contains(e.Reference, new[] { "exact", "imagemagick" });
            Assert.Contains(e.Format, new[] { "PNG", "BMP", "PNM" });
        }
        Assert.True(corpus.Entries.Count(e => e.Format == "GIF" && e.Frames > 1) >= 20, "too few GIF animations");
    }
}
