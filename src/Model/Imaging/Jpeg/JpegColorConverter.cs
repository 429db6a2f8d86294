using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace LlavaNative.Model.Imaging.Jpeg;

/// <summary>How the components' samples map to colours (libjpeg's guess from the JFIF and Adobe markers).</summary>
internal enum JpegColorSpace { Gray, YCbCr, Rgb, Cmyk, Ycck }

/// <summary>
/// The output stage: brings each component to full size (<see cref="JpegUpsampler"/>, libjpeg's default choices)
/// and converts the samples to gray or RGB rows. YCbCr → RGB uses JFIF's BT.601 full-range equations in libjpeg's
/// 16-bit fixed point (R = Y + 1.402·Cr, G = Y − 0.34414·Cb − 0.71414·Cr, B = Y + 1.772·Cb, Cb/Cr centred at 128);
/// RGB (Adobe transform 0) is copied; CMYK and YCCK are converted the way Pillow does (<see cref="CmykToRgb"/>).
/// </summary>
internal static class JpegColorConverter
{
    private const int ScaleBits = 16;
    private const int Half = 1 << (ScaleBits - 1);
    private static int Fix(double x) => (int)(x * (1 << ScaleBits) + 0.5);
    private static readonly int CrToRFactor = Fix(1.40200), CbToBFactor = Fix(1.77200), CrToGFactor = Fix(0.71414), CbToGFactor = Fix(0.34414);

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
            s_crToR[i] = (CrToRFactor * x + Half) >> ScaleBits;
            s_cbToB[i] = (CbToBFactor * x + Half) >> ScaleBits;
            s_crToG[i] = -CrToGFactor * x;
            s_cbToG[i] = -CbToGFactor * x + Half;
        }
        for (int i = 0; i < s_clamp.Length; i++) s_clamp[i] = (byte)Math.Clamp(i - ClampOffset, 0, 255);
    }

    /// <summary>Renders the frame's decoded planes as a gray (1 channel) or RGB (3 channels) image.</summary>
    public static Image Render(JpegFrame frame, JpegColorSpace colorSpace)
    {
        int width = frame.Width, height = frame.Height;
        int channels = colorSpace == JpegColorSpace.Gray ? 1 : 3;
        var pixels = new byte[(long)width * height * channels];
        // Only the first component matters for gray output (libjpeg ignores any others too).
        int used = colorSpace == JpegColorSpace.Gray ? 1 : frame.Components.Length;
        var sources = new ComponentRows[used];
        for (int i = 0; i < used; i++) sources[i] = new ComponentRows(frame, frame.Components[i]);

        for (int y = 0; y < height; y++)
        {
            var output = pixels.AsSpan((int)((long)y * width * channels), width * channels);
            switch (colorSpace)
            {
                case JpegColorSpace.Gray:
                    sources[0].Row(y)[..width].CopyTo(output);
                    break;
                case JpegColorSpace.YCbCr:
                    YCbCrToRgb(sources[0].Row(y), sources[1].Row(y), sources[2].Row(y), output, width);
                    break;
                case JpegColorSpace.Rgb:
                    Interleave(sources[0].Row(y), sources[1].Row(y), sources[2].Row(y), output, width);
                    break;
                default:
                    CmykToRgb(sources[0].Row(y), sources[1].Row(y), sources[2].Row(y), sources[3].Row(y), output, width,
                        fromYcck: colorSpace == JpegColorSpace.Ycck);
                    break;
            }
        }
        return new Image(width, height, channels, pixels);
    }

    /// <summary>One component's rows at full resolution, upsampled on demand into a reused buffer.</summary>
    private sealed class ComponentRows
    {
        private readonly JpegComponent _c;
        private readonly JpegUpsampling _method;
        private readonly int _hRatio, _vRatio;
        private readonly byte[] _row;      // upsampled row; whole input samples, so up to hRatio − 1 past the width
        private readonly ushort[] _padded; // 16-bit row or column sums with a repeated edge value at each end

        public ComponentRows(JpegFrame frame, JpegComponent c)
        {
            _c = c;
            _hRatio = frame.MaxH / c.H;
            _vRatio = frame.MaxV / c.V;
            _method = JpegUpsampler.Choose(_hRatio, _vRatio, c.Width);
            _row = _method == JpegUpsampling.FullSize ? [] : new byte[c.Width * _hRatio];
            _padded = _method is JpegUpsampling.H2V1Fancy or JpegUpsampling.H2V2Fancy ? new ushort[c.Width + 2] : [];
        }

        public ReadOnlySpan<byte> Row(int y)
        {
            var c = _c;
            int n = c.Width;
            int inputRow = y / _vRatio;
            var near = c.Plane.AsSpan(inputRow * c.Stride, n);
            switch (_method)
            {
                case JpegUpsampling.FullSize:
                    return near;
                case JpegUpsampling.H2V1Fancy:
                    JpegUpsampler.WidenPadded(near, _padded, n);
                    JpegUpsampler.DoubleWidth(_padded, n, _row, 1, 2, 2);
                    return _row;
                case JpegUpsampling.H1V2Fancy:
                    JpegUpsampler.BlendRows(near, c.Plane.AsSpan(FarRow(y, inputRow, c.Height) * c.Stride, n), _row, n, (y & 1) == 0 ? 1 : 2);
                    return _row;
                case JpegUpsampling.H2V2Fancy:
                    JpegUpsampler.ColumnSums(near, c.Plane.AsSpan(FarRow(y, inputRow, c.Height) * c.Stride, n), _padded, n);
                    JpegUpsampler.DoubleWidth(_padded, n, _row, 8, 7, 4);
                    return _row;
                default:
                    JpegUpsampler.Replicate(near, n, _hRatio, _row);
                    return _row;
            }
        }

        /// <summary>
        /// The next-nearest input row for 2:1 vertical upsampling: above for even output rows, below for odd ones,
        /// clamped to the component's real rows (libjpeg repeats the first and last rows).
        /// </summary>
        private static int FarRow(int y, int inputRow, int rows) =>
            (y & 1) == 0 ? Math.Max(inputRow - 1, 0) : Math.Min(inputRow + 1, rows - 1);
    }

    /// <summary>Reference YCbCr → RGB through libjpeg's lookup tables.</summary>
    public static void YCbCrToRgbReference(ReadOnlySpan<byte> ys, ReadOnlySpan<byte> cbs, ReadOnlySpan<byte> crs, Span<byte> rgb, int width)
    {
        for (int x = 0; x < width; x++)
        {
            int y = ys[x] + ClampOffset, cb = cbs[x], cr = crs[x];
            rgb[3 * x] = s_clamp[y + s_crToR[cr]];
            rgb[3 * x + 1] = s_clamp[y + ((s_cbToG[cb] + s_crToG[cr]) >> ScaleBits)];
            rgb[3 * x + 2] = s_clamp[y + s_cbToB[cb]];
        }
    }

    /// <summary>
    /// Same bytes as <see cref="YCbCrToRgbReference"/>: the table entries computed in 32-bit lanes, 16 pixels per
    /// step; each group of 4 pixels is packed as R,G,B,0 words, shuffled to 12 bytes of RGB and stored with 16-byte
    /// writes whose 4 spare bytes the next write covers (so the vector loop stops 2 pixels before the row ends).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void YCbCrToRgb(ReadOnlySpan<byte> ys, ReadOnlySpan<byte> cbs, ReadOnlySpan<byte> crs, Span<byte> rgb, int width)
    {
        if (ys.Length < width || cbs.Length < width || crs.Length < width || rgb.Length < 3 * width)
            throw new ArgumentException("rows shorter than the image width");
        int x = 0;
        if (Vector256.IsHardwareAccelerated && Vector128.IsHardwareAccelerated && BitConverter.IsLittleEndian)
        {
            // Lengths checked above; the loop reads x .. x+15 and writes bytes 3x .. 3x+51 < 3·width with x + 18 <= width.
            ref byte y0 = ref MemoryMarshal.GetReference(ys), cb0 = ref MemoryMarshal.GetReference(cbs), cr0 = ref MemoryMarshal.GetReference(crs);
            ref byte out0 = ref MemoryMarshal.GetReference(rgb);
            Vector128<byte> compact = Vector128.Create((byte)0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, 0x80, 0x80, 0x80, 0x80);
            for (; x + 18 <= width; x += 16)
            {
                (Vector256<int> y, Vector256<int> yHigh) = WidenToInt(ref y0, x);
                (Vector256<int> cb, Vector256<int> cbHigh) = WidenToInt(ref cb0, x);
                (Vector256<int> cr, Vector256<int> crHigh) = WidenToInt(ref cr0, x);
                Vector256<int> low = PackRgb(y, cb, cr), high = PackRgb(yHigh, cbHigh, crHigh);
                ref byte o = ref Unsafe.Add(ref out0, 3 * x);
                Vector128.Shuffle(low.GetLower().AsByte(), compact).StoreUnsafe(ref o);
                Vector128.Shuffle(low.GetUpper().AsByte(), compact).StoreUnsafe(ref o, 12);
                Vector128.Shuffle(high.GetLower().AsByte(), compact).StoreUnsafe(ref o, 24);
                Vector128.Shuffle(high.GetUpper().AsByte(), compact).StoreUnsafe(ref o, 36);
            }
        }
        if (x < width) YCbCrToRgbReference(ys[x..], cbs[x..], crs[x..], rgb[(3 * x)..], width - x);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<int> Low, Vector256<int> High) WidenToInt(ref byte row, int x)
    {
        Vector256<ushort> words = Vector256.WidenLower(Vector128.LoadUnsafe(ref row, (nuint)x).ToVector256Unsafe());
        (Vector256<uint> low, Vector256<uint> high) = Vector256.Widen(words);
        return (low.AsInt32(), high.AsInt32());
    }

    /// <summary>Eight pixels as R | G &lt;&lt; 8 | B &lt;&lt; 16, each channel clamped to 0..255.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> PackRgb(Vector256<int> y, Vector256<int> cb, Vector256<int> cr)
    {
        Vector256<int> center = Vector256.Create(128), half = Vector256.Create(Half);
        Vector256<int> zero = Vector256<int>.Zero, max = Vector256.Create(255);
        cb -= center;
        cr -= center;
        Vector256<int> r = y + ((cr * CrToRFactor + half) >> ScaleBits);
        Vector256<int> g = y + ((half - cb * CbToGFactor - cr * CrToGFactor) >> ScaleBits);
        Vector256<int> b = y + ((cb * CbToBFactor + half) >> ScaleBits);
        r = Vector256.Min(Vector256.Max(r, zero), max);
        g = Vector256.Min(Vector256.Max(g, zero), max);
        b = Vector256.Min(Vector256.Max(b, zero), max);
        return r | (g << 8) | (b << 16);
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
