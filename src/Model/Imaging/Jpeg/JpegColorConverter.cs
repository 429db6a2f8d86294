using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace LlavaNative.Model.Imaging.Jpeg;

/// <summary>How the components' samples map to colours (libjpeg's guess from the JFIF and Adobe markers).</summary>
internal enum JpegColorSpace { Gray, YCbCr, Rgb, Cmyk, Ycck }

/// <summary>
/// The output stage: upsamples each component to full size the way libjpeg does by default and converts the
/// samples to gray or RGB rows.
///
/// Upsampling (per component, by the ratio of the frame's largest sampling factors to its own, as libjpeg's
/// jdsample.c chooses):
/// <list type="bullet">
/// <item>2:1 horizontal and/or 2:1 vertical: the "fancy" triangle filter — each output sample is ¾ of the nearest
/// input sample plus ¼ of the next nearest, horizontally and vertically (9/16, 3/16, 3/16, 1/16 for 2×2), with
/// libjpeg's alternating rounding biases and edge samples replicated. Horizontal 2:1 falls back to replication
/// when the component is at most 2 samples wide, as libjpeg does.</item>
/// <item>Any other integral ratio (4:1:1, 4:1:0, …): replication.</item>
/// </list>
/// Colour: YCbCr → RGB with JFIF's BT.601 full-range equations in libjpeg's 16-bit fixed point; RGB (Adobe
/// transform 0) copied; CMYK and YCCK converted to RGB the way Pillow does (see <see cref="CmykToRgb"/>).
/// </summary>
internal static class JpegColorConverter
{
    private enum Upsampling { FullSize, H2V1Fancy, H1V2Fancy, H2V2Fancy, Replicate }

    private const int ScaleBits = 16;
    private const int Half = 1 << (ScaleBits - 1);
    private static int Fix(double x) => (int)(x * (1 << ScaleBits) + 0.5);

    // Indexed by the Cb or Cr sample 0..255 (centred at 128): R = Y + CrToR, B = Y + CbToB,
    // G = Y + ((CbToG + CrToG) >> 16) with the rounding half folded into CbToG.
    private static readonly int[] s_crToR = new int[256], s_cbToB = new int[256], s_crToG = new int[256], s_cbToG = new int[256];

    /// <summary>Clamps −384..639 to 0..255: index value + 384.</summary>
    private static readonly byte[] s_clamp = new byte[1024];
    private const int ClampOffset = 384;

    static JpegColorConverter()
    {
        for (int i = 0; i < 256; i++)
        {
            int x = i - 128;
            s_crToR[i] = (Fix(1.40200) * x + Half) >> ScaleBits;
            s_cbToB[i] = (Fix(1.77200) * x + Half) >> ScaleBits;
            s_crToG[i] = -Fix(0.71414) * x;
            s_cbToG[i] = -Fix(0.34414) * x + Half;
        }
        for (int i = 0; i < s_clamp.Length; i++) s_clamp[i] = (byte)Math.Clamp(i - ClampOffset, 0, 255);
    }

    /// <summary>Renders the frame's decoded planes as a gray (1 channel) or RGB (3 channels) image.</summary>
    public static Image Render(JpegFrame frame, JpegColorSpace colorSpace)
    {
        int width = frame.Width, height = frame.Height;
        var components = frame.Components;
        int channels = colorSpace == JpegColorSpace.Gray ? 1 : 3;
        var pixels = new byte[(long)width * height * channels];

        var methods = new Upsampling[components.Length];
        var rowBuffers = new byte[components.Length][];
        int widest = 0;
        for (int i = 0; i < components.Length; i++)
        {
            var c = components[i];
            methods[i] = ChooseUpsampling(frame, c);
            // Upsampled rows cover whole input samples, so they can run up to (ratio − 1) past the image width.
            rowBuffers[i] = methods[i] == Upsampling.FullSize ? [] : new byte[c.Width * (frame.MaxH / c.H) + 8];
            widest = Math.Max(widest, c.Width);
        }
        var columnSums = new int[widest];

        // Only the first component matters for gray output (libjpeg ignores the others of a gray image too).
        int used = colorSpace == JpegColorSpace.Gray ? 1 : components.Length;
        var rows = new ReadOnlyMemory<byte>[used];
        for (int y = 0; y < height; y++)
        {
            for (int i = 0; i < used; i++)
                rows[i] = UpsampleRow(frame, components[i], methods[i], y, rowBuffers[i], columnSums);
            var output = pixels.AsSpan((int)((long)y * width * channels), width * channels);
            switch (colorSpace)
            {
                case JpegColorSpace.Gray:
                    rows[0].Span[..width].CopyTo(output);
                    break;
                case JpegColorSpace.YCbCr:
                    YCbCrToRgb(rows[0].Span, rows[1].Span, rows[2].Span, output, width);
                    break;
                case JpegColorSpace.Rgb:
                    Interleave(rows[0].Span, rows[1].Span, rows[2].Span, output, width);
                    break;
                case JpegColorSpace.Cmyk:
                    CmykToRgb(rows[0].Span, rows[1].Span, rows[2].Span, rows[3].Span, output, width, fromYcck: false);
                    break;
                default:
                    CmykToRgb(rows[0].Span, rows[1].Span, rows[2].Span, rows[3].Span, output, width, fromYcck: true);
                    break;
            }
        }
        return new Image(width, height, channels, pixels);
    }

    /// <summary>libjpeg's choice (jinit_upsampler with fancy upsampling on); non-integral ratios are rejected earlier.</summary>
    private static Upsampling ChooseUpsampling(JpegFrame frame, JpegComponent c)
    {
        int hRatio = frame.MaxH / c.H, vRatio = frame.MaxV / c.V;
        return (hRatio, vRatio) switch
        {
            (1, 1) => Upsampling.FullSize,
            (2, 1) => c.Width > 2 ? Upsampling.H2V1Fancy : Upsampling.Replicate,
            (1, 2) => Upsampling.H1V2Fancy,
            (2, 2) => c.Width > 2 ? Upsampling.H2V2Fancy : Upsampling.Replicate,
            _ => Upsampling.Replicate,
        };
    }

    /// <summary>Output row <paramref name="y"/> of component <paramref name="c"/> at full resolution (at least Width samples).</summary>
    private static ReadOnlyMemory<byte> UpsampleRow(JpegFrame frame, JpegComponent c, Upsampling method, int y, byte[] buffer, int[] columnSums)
    {
        int hRatio = frame.MaxH / c.H, vRatio = frame.MaxV / c.V;
        int inputRow = y / vRatio;
        byte[] plane = c.Plane;
        int n = c.Width;
        switch (method)
        {
            case Upsampling.FullSize:
                return plane.AsMemory(y * c.Stride, c.Width);

            case Upsampling.H2V1Fancy:
                {
                    var input = plane.AsSpan(inputRow * c.Stride, n);
                    // Left output of sample i: (3·s[i] + s[i−1] + 1) / 4; right: (3·s[i] + s[i+1] + 2) / 4; edges replicated.
                    int previous = input[0];
                    for (int i = 0; i < n; i++)
                    {
                        int here = input[i] * 3;
                        int next = input[i + 1 < n ? i + 1 : i];
                        buffer[2 * i] = (byte)((here + previous + 1) >> 2);
                        buffer[2 * i + 1] = (byte)((here + next + 2) >> 2);
                        previous = input[i];
                    }
                    return buffer;
                }

            case Upsampling.H1V2Fancy:
                {
                    // Even output rows lean on the input row above, odd ones on the row below (edges replicated).
                    var near = plane.AsSpan(inputRow * c.Stride, n);
                    var far = plane.AsSpan(FarRow(y, inputRow, c.Height) * c.Stride, n);
                    int bias = (y & 1) == 0 ? 1 : 2;
                    for (int i = 0; i < n; i++) buffer[i] = (byte)((near[i] * 3 + far[i] + bias) >> 2);
                    return buffer;
                }

            case Upsampling.H2V2Fancy:
                {
                    var near = plane.AsSpan(inputRow * c.Stride, n);
                    var far = plane.AsSpan(FarRow(y, inputRow, c.Height) * c.Stride, n);
                    for (int i = 0; i < n; i++) columnSums[i] = near[i] * 3 + far[i];
                    // Horizontal triangle on the column sums (each 4× a sample): biases 8 and 7 alternate as in libjpeg.
                    int previous = columnSums[0];
                    for (int i = 0; i < n; i++)
                    {
                        int here = columnSums[i] * 3;
                        int next = columnSums[i + 1 < n ? i + 1 : i];
                        buffer[2 * i] = (byte)((here + previous + 8) >> 4);
                        buffer[2 * i + 1] = (byte)((here + next + 7) >> 4);
                        previous = columnSums[i];
                    }
                    return buffer;
                }

            default:
                {
                    var input = plane.AsSpan(inputRow * c.Stride, n);
                    int o = 0;
                    for (int i = 0; i < n; i++)
                    {
                        byte v = input[i];
                        for (int r = 0; r < hRatio; r++) buffer[o++] = v;
                    }
                    return buffer;
                }
        }
    }

    /// <summary>The next-nearest input row for 2:1 vertical upsampling, clamped to the component's real rows.</summary>
    private static int FarRow(int y, int inputRow, int rows) =>
        (y & 1) == 0 ? Math.Max(inputRow - 1, 0) : Math.Min(inputRow + 1, rows - 1);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void YCbCrToRgb(ReadOnlySpan<byte> ys, ReadOnlySpan<byte> cbs, ReadOnlySpan<byte> crs, Span<byte> rgb, int width)
    {
        if (ys.Length < width || cbs.Length < width || crs.Length < width || rgb.Length < 3 * width)
            throw new ArgumentException("rows shorter than the image width");
        // Lengths checked above; the loop reads through refs to skip per-pixel bounds checks on 6 arrays.
        ref byte y0 = ref MemoryMarshal.GetReference(ys), cb0 = ref MemoryMarshal.GetReference(cbs), cr0 = ref MemoryMarshal.GetReference(crs);
        ref byte out0 = ref MemoryMarshal.GetReference(rgb);
        ref int crToR = ref MemoryMarshal.GetArrayDataReference(s_crToR), cbToB = ref MemoryMarshal.GetArrayDataReference(s_cbToB);
        ref int crToG = ref MemoryMarshal.GetArrayDataReference(s_crToG), cbToG = ref MemoryMarshal.GetArrayDataReference(s_cbToG);
        ref byte clamp = ref MemoryMarshal.GetArrayDataReference(s_clamp);
        for (int x = 0; x < width; x++)
        {
            int y = Unsafe.Add(ref y0, x) + ClampOffset;
            int cb = Unsafe.Add(ref cb0, x), cr = Unsafe.Add(ref cr0, x);
            ref byte o = ref Unsafe.Add(ref out0, 3 * x);
            o = Unsafe.Add(ref clamp, y + Unsafe.Add(ref crToR, cr));
            Unsafe.Add(ref o, 1) = Unsafe.Add(ref clamp, y + ((Unsafe.Add(ref cbToG, cb) + Unsafe.Add(ref crToG, cr)) >> ScaleBits));
            Unsafe.Add(ref o, 2) = Unsafe.Add(ref clamp, y + Unsafe.Add(ref cbToB, cb));
        }
    }

    private static void Interleave(ReadOnlySpan<byte> r, ReadOnlySpan<byte> g, ReadOnlySpan<byte> b, Span<byte> rgb, int width)
    {
        for (int x = 0; x < width; x++)
        {
            rgb[3 * x] = r[x];
            rgb[3 * x + 1] = g[x];
            rgb[3 * x + 2] = b[x];
        }
    }

    /// <summary>
    /// CMYK → RGB exactly as Pillow (and so HF preprocessing) does it: Pillow always assumes Adobe's inverted CMYK
    /// (it reads stored sample s as ink 255 − s) and then converts naively, without any colour profile:
    /// R = (255 − K) − round((255 − K)·C / 255), likewise G from M and B from Y. YCCK is first turned into the stored
    /// CMYK libjpeg would return (C = 255 − R of the YCC triple, …, K unchanged).
    /// </summary>
    private static void CmykToRgb(ReadOnlySpan<byte> c0, ReadOnlySpan<byte> c1, ReadOnlySpan<byte> c2, ReadOnlySpan<byte> k,
        Span<byte> rgb, int width, bool fromYcck)
    {
        for (int x = 0; x < width; x++)
        {
            int s0 = c0[x], s1 = c1[x], s2 = c2[x];
            if (fromYcck)
            {
                int y = s0 + ClampOffset;
                int cb = s1, cr = s2;
                s0 = 255 - s_clamp[y + s_crToR[cr]];
                s1 = 255 - s_clamp[y + ((s_cbToG[cb] + s_crToG[cr]) >> ScaleBits)];
                s2 = 255 - s_clamp[y + s_cbToB[cb]];
            }
            int notBlack = k[x]; // 255 − ink K, with K = 255 − stored
            rgb[3 * x] = InkOn(255 - s0, notBlack);
            rgb[3 * x + 1] = InkOn(255 - s1, notBlack);
            rgb[3 * x + 2] = InkOn(255 - s2, notBlack);
        }
    }

    /// <summary>Pillow's cmyk2rgb channel: nk − ink·nk/255 with its MULDIV255 rounding.</summary>
    private static byte InkOn(int ink, int notBlack)
    {
        int t = ink * notBlack + 128;
        return (byte)Math.Clamp(notBlack - (((t >> 8) + t) >> 8), 0, 255);
    }
}
