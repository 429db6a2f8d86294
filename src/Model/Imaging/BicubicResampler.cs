namespace LlavaNative.Model.Imaging;

/// <summary>
/// Pillow's BICUBIC resize on 8-bit images, reproduced exactly (Hugging Face image processors resize through
/// Pillow, so the model saw these pixels in training). Separable convolution with the cubic kernel a = −0.5;
/// when downscaling the kernel is widened by the scale factor (antialiasing); weights are normalised, turned
/// into 22-bit fixed point, and every pass rounds and clamps to 0…255 — horizontal pass first, then vertical.
/// </summary>
public static class BicubicResampler
{
    private const int PrecisionBits = 32 - 8 - 2;
    private const double Support = 2.0;
    private const double A = -0.5;

    /// <summary>Resizes an image of any channel count to <paramref name="width"/>×<paramref name="height"/>.</summary>
    public static Image Resize(Image source, int width, int height)
    {
        if (width <= 0 || height <= 0) throw new ArgumentOutOfRangeException(nameof(width), $"target size {width}×{height} is empty");
        if (width == source.Width && height == source.Height) return source;
        Image horizontal = width == source.Width ? source : ResizeHorizontal(source, width);
        return height == source.Height ? horizontal : ResizeVertical(horizontal, height);
    }

    private static double Cubic(double x)
    {
        x = Math.Abs(x);
        if (x < 1.0) return ((A + 2.0) * x - (A + 3.0)) * x * x + 1;
        if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * A;
        return 0.0;
    }

    /// <summary>Per output pixel: first input index, tap count, and fixed-point weights [outSize, kernelSize].</summary>
    private static (int[] Start, int[] Count, int[] Weights, int KernelSize) Coefficients(int inSize, int outSize)
    {
        double scale = (double)inSize / outSize;
        double filterScale = Math.Max(scale, 1.0);
        double support = Support * filterScale;
        int kernelSize = (int)Math.Ceiling(support) * 2 + 1;
        var start = new int[outSize];
        var count = new int[outSize];
        var weights = new int[outSize * kernelSize];
        var w = new double[kernelSize];
        double inverse = 1.0 / filterScale;
        for (int o = 0; o < outSize; o++)
        {
            double center = (o + 0.5) * scale;
            // C casts truncate toward zero, as Pillow's (int) does.
            int min = Math.Max((int)(center - support + 0.5), 0);
            int n = Math.Min((int)(center + support + 0.5), inSize) - min;
            double total = 0;
            for (int i = 0; i < n; i++)
            {
                w[i] = Cubic((i + min - center + 0.5) * inverse);
                total += w[i];
            }
            for (int i = 0; i < n; i++)
            {
                double normalised = total != 0 ? w[i] / total : w[i];
                // Round half away from zero into fixed point.
                weights[o * kernelSize + i] = (int)(normalised * (1 << PrecisionBits) + (normalised < 0 ? -0.5 : 0.5));
            }
            start[o] = min;
            count[o] = n;
        }
        return (start, count, weights, kernelSize);
    }

    private static byte Clip(long value)
    {
        long v = value >> PrecisionBits;
        return v < 0 ? (byte)0 : v > 255 ? (byte)255 : (byte)v;
    }

    private static Image ResizeHorizontal(Image src, int outWidth)
    {
        var (start, count, weights, k) = Coefficients(src.Width, outWidth);
        int c = src.Channels;
        var dst = new byte[(long)outWidth * src.Height * c];
        byte[] s = src.Pixels;
        for (int y = 0; y < src.Height; y++)
        {
            long inRow = (long)y * src.Width * c, outRow = (long)y * outWidth * c;
            for (int x = 0; x < outWidth; x++)
            {
                int x0 = start[x], n = count[x], wb = x * k;
                for (int ch = 0; ch < c; ch++)
                {
                    long acc = 1L << (PrecisionBits - 1);
                    for (int i = 0; i < n; i++) acc += s[inRow + (long)(x0 + i) * c + ch] * (long)weights[wb + i];
                    dst[outRow + (long)x * c + ch] = Clip(acc);
                }
            }
        }
        return new Image(outWidth, src.Height, c, dst);
    }

    private static Image ResizeVertical(Image src, int outHeight)
    {
        var (start, count, weights, k) = Coefficients(src.Height, outHeight);
        int c = src.Channels;
        long rowBytes = (long)src.Width * c;
        var dst = new byte[rowBytes * outHeight];
        byte[] s = src.Pixels;
        for (int y = 0; y < outHeight; y++)
        {
            int y0 = start[y], n = count[y], wb = y * k;
            long outRow = y * rowBytes;
            for (long i = 0; i < rowBytes; i++)
            {
                long acc = 1L << (PrecisionBits - 1);
                for (int t = 0; t < n; t++) acc += s[(y0 + t) * rowBytes + i] * (long)weights[wb + t];
                dst[outRow + i] = Clip(acc);
            }
        }
        return new Image(src.Width, outHeight, c, dst);
    }
}
