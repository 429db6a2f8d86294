namespace LlavaNative.Model.Imaging;

/// <summary>How an image of any aspect ratio becomes the square the vision tower expects.</summary>
public enum ImageFitMode
{
    /// <summary>CLIPImageProcessor (llava-1.5-hf): shortest edge → size, then a center crop (the sides are lost).</summary>
    Crop,
    /// <summary>Original LLaVA-1.5 "pad": paste centred on a square of the mean colour (122,116,104), then resize.</summary>
    Pad,
    /// <summary>llama.cpp: resize so the long side fits (aspect kept), then centre on a square of the pad colour.</summary>
    ResizeThenPad,
    /// <summary>SiglipImageProcessor (llava-interleave): resize straight to size×size, aspect not kept.</summary>
    Stretch,
}

/// <summary>Preprocessing settings of one checkpoint (preprocessor_config.json or mmproj metadata).</summary>
public sealed partial record ImagePreprocessorConfig
{
    /// <summary>Side of the square the encoder takes (336 CLIP-L/14-336, 224 CLIP-224, 384 SigLIP).</summary>
    public required int ImageSize { get; init; }

    /// <summary>
    /// <see cref="ImageFitMode.Crop"/> and <see cref="ImageFitMode.Pad"/>: the side the shortest edge is resized to before
    /// the center crop to <see cref="ImageSize"/> (CLIPImageProcessor <c>size.shortest_edge</c> vs <c>crop_size</c>);
    /// null means <see cref="ImageSize"/> (no crop needed after the resize).
    /// </summary>
    public int? ShortestEdge { get; init; }
    public required ImageFitMode Mode { get; init; }
    public required float[] Mean { get; init; }
    public required float[] Std { get; init; }
    /// <summary>Multiplier from uint8 to [0, 1] (HF <c>rescale_factor</c>, 1/255).</summary>
    public double RescaleFactor { get; init; } = 1.0 / 255.0;

    /// <summary>Pad colour for the pad modes: the mean colour as integers, <c>int(mean·255)</c>, as LLaVA computes it.</summary>
    public byte[] PadColor => Mean.Select(m => (byte)(int)(m * 255)).ToArray();

    public static readonly float[] ClipMean = [0.48145466f, 0.4578275f, 0.40821073f];
    public static readonly float[] ClipStd = [0.26862954f, 0.26130258f, 0.27577711f];

    /// <summary>llava-1.5-7b-hf: CLIP 336, shortest-edge resize + center crop.</summary>
    public static ImagePreprocessorConfig Clip(int size = 336, ImageFitMode mode = ImageFitMode.Crop) =>
        new() { ImageSize = size, Mode = mode, Mean = ClipMean, Std = ClipStd };

    /// <summary>llava-interleave: SigLIP 384, stretch, mean/std 0.5.</summary>
    public static ImagePreprocessorConfig SigLip(int size = 384) =>
        new() { ImageSize = size, Mode = ImageFitMode.Stretch, Mean = [0.5f, 0.5f, 0.5f], Std = [0.5f, 0.5f, 0.5f] };
}

/// <summary>
/// Image → normalised float tensor [3, size, size] (planar RGB), following the Hugging Face processors step by
/// step: RGB conversion (alpha on white), fit (see <see cref="ImageFitMode"/>), Pillow-exact BICUBIC on uint8,
/// then <c>float32(u8 · rescale)</c> and <c>(x − mean) / std</c> in float32.
/// </summary>
public static class ImagePreprocessor
{
    /// <summary>The fitted uint8 RGB image (size×size), before normalisation.</summary>
    public static Image Fit(Image image, ImagePreprocessorConfig config)
    {
        var rgb = image.ToRgb();
        int size = config.ImageSize;
        switch (config.Mode)
        {
            case ImageFitMode.Crop:
            {
                // transformers get_resize_output_image_size(default_to_square=False): the long side is truncated.
                bool wide = rgb.Width >= rgb.Height;
                int shortSide = wide ? rgb.Height : rgb.Width, longSide = wide ? rgb.Width : rgb.Height;
                int edge = config.ShortestEdge ?? size;
                int newLong = (int)((long)edge * longSide / shortSide);
                var resized = wide ? BicubicResampler.Resize(rgb, newLong, edge) : BicubicResampler.Resize(rgb, edge, newLong);
                return CenterCrop(resized, size, size);
            }
            case ImageFitMode.Pad:
            {
                // expand2square, then the CLIP processor: the square's shortest edge → ShortestEdge, center crop to size.
                var square = PasteCentred(rgb, Math.Max(rgb.Width, rgb.Height), config.PadColor);
                int edge = config.ShortestEdge ?? size;
                var resized = BicubicResampler.Resize(square, edge, edge);
                return edge == size ? resized : CenterCrop(resized, size, size);
            }
            case ImageFitMode.ResizeThenPad:
            {
                double scale = (double)size / Math.Max(rgb.Width, rgb.Height);
                int w = Math.Min(size, (int)Math.Ceiling(rgb.Width * scale));
                int h = Math.Min(size, (int)Math.Ceiling(rgb.Height * scale));
                return PasteCentred(BicubicResampler.Resize(rgb, w, h), size, config.PadColor);
            }
            case ImageFitMode.Stretch:
                return BicubicResampler.Resize(rgb, size, size);
            default:
                throw new ArgumentOutOfRangeException(nameof(config), config.Mode, "unknown fit mode");
        }
    }

    /// <summary>Fit + normalise: [3, size, size] float32, channel planes R, G, B.</summary>
    public static float[] Process(Image image, ImagePreprocessorConfig config)
    {
        var fitted = Fit(image, config);
        var output = new float[3 * fitted.Width * fitted.Height];
        Normalize(fitted, config, output);
        return output;
    }

    /// <summary>Planar normalisation of an RGB image into <paramref name="output"/> [3, H, W].</summary>
    public static void Normalize(Image rgb, ImagePreprocessorConfig config, Span<float> output)
    {
        int plane = rgb.Width * rgb.Height;
        if (rgb.Channels != 3) throw new ArgumentException("expected an RGB image", nameof(rgb));
        if (output.Length < 3 * plane) throw new ArgumentException("output too small", nameof(output));
        byte[] p = rgb.Pixels;
        for (int c = 0; c < 3; c++)
        {
            float mean = config.Mean[c], std = config.Std[c];
            for (int i = 0; i < plane; i++)
            {
                float rescaled = (float)(p[3 * i + c] * config.RescaleFactor); // HF: float64 multiply, cast to float32
                output[c * plane + i] = (rescaled - mean) / std;
            }
        }
    }

    /// <summary>transformers' center_crop: top = (H − h) // 2, left = (W − w) // 2; zero padding where the image is smaller.</summary>
    public static Image CenterCrop(Image src, int width, int height)
    {
        int c = src.Channels;
        var dst = new byte[(long)width * height * c];
        int top = FloorDiv(src.Height - height, 2), left = FloorDiv(src.Width - width, 2);
        for (int y = 0; y < height; y++)
        {
            int sy = y + top;
            if (sy < 0 || sy >= src.Height) continue;
            for (int x = 0; x < width; x++)
            {
                int sx = x + left;
                if (sx < 0 || sx >= src.Width) continue;
                Array.Copy(src.Pixels, ((long)sy * src.Width + sx) * c, dst, ((long)y * width + x) * c, c);
            }
        }
        return new Image(width, height, c, dst);
    }

    /// <summary>LLaVA's expand2square: the image pasted at ((S − W) // 2, (S − H) // 2) on an S×S square of <paramref name="color"/>.</summary>
    public static Image PasteCentred(Image src, int side, byte[] color)
    {
        var dst = new byte[(long)side * side * 3];
        for (long i = 0; i < (long)side * side; i++)
        {
            dst[3 * i] = color[0];
            dst[3 * i + 1] = color[1];
            dst[3 * i + 2] = color[2];
        }
        int left = (side - src.Width) / 2, top = (side - src.Height) / 2;
        for (int y = 0; y < src.Height; y++)
            Array.Copy(src.Pixels, (long)y * src.Width * 3, dst, ((long)(y + top) * side + left) * 3, (long)src.Width * 3);
        return new Image(side, side, 3, dst);
    }

    private static int FloorDiv(int a, int b) => (int)Math.Floor((double)a / b);
}
