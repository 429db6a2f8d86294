using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace LlavaNative.Model.Imaging.Jpeg;

/// <summary>How one component is brought to full resolution (libjpeg jdsample.c's choice with fancy upsampling on).</summary>
internal enum JpegUpsampling { FullSize, H2V1Fancy, H1V2Fancy, H2V2Fancy, Replicate }

/// <summary>
/// Chroma upsampling as libjpeg does it by default. 2:1 ratios use the "fancy" triangle filter — each output sample
/// is ¾ of the nearest input sample plus ¼ of the next nearest (horizontally, vertically, or both: 9/16, 3/16,
/// 3/16, 1/16), with libjpeg's alternating rounding biases so errors do not drift one way, and edge samples
/// replicated. Other integral ratios (4:1:1, 3:1, …) replicate samples.
///
/// Each kernel comes as a scalar reference (…Reference) and a Vector256 version that must give identical bytes;
/// the vector versions fall back to the reference for the tail and when Vector256 is not accelerated. The vector
/// kernels pack two output bytes per 16-bit lane (first byte in the low half), which assumes a little-endian
/// machine, as every .NET platform is.
/// </summary>
internal static class JpegUpsampler
{
    /// <summary>libjpeg's method for a component whose samples are 1/hRatio × 1/vRatio of the image's.</summary>
    public static JpegUpsampling Choose(int hRatio, int vRatio, int componentWidth) => (hRatio, vRatio) switch
    {
        (1, 1) => JpegUpsampling.FullSize,
        // libjpeg replicates instead when the component is at most 2 samples wide.
        (2, 1) => componentWidth > 2 ? JpegUpsampling.H2V1Fancy : JpegUpsampling.Replicate,
        (1, 2) => JpegUpsampling.H1V2Fancy,
        (2, 2) => componentWidth > 2 ? JpegUpsampling.H2V2Fancy : JpegUpsampling.Replicate,
        _ => JpegUpsampling.Replicate,
    };

    private static bool UseVectors => Vector256.IsHardwareAccelerated && BitConverter.IsLittleEndian;

    // ---- horizontal 2:1 triangle ----

    /// <summary>
    /// Doubles a row horizontally. <paramref name="padded"/> holds the n input values at [1..n] with the edge values
    /// repeated at [0] and [n+1]. Output 2i = (3·v[i] + v[i−1] + biasLeft) >> shift, output 2i+1 =
    /// (3·v[i] + v[i+1] + biasRight) >> shift. For a plain row (h2v1): biases 1, 2 and shift 2. For column sums of
    /// two rows, each 4× a sample (h2v2): biases 8, 7 and shift 4.
    /// </summary>
    public static void DoubleWidthReference(ReadOnlySpan<ushort> padded, int n, Span<byte> output, int biasLeft, int biasRight, int shift)
    {
        for (int i = 0; i < n; i++)
        {
            int here = padded[i + 1] * 3;
            output[2 * i] = (byte)((here + padded[i] + biasLeft) >> shift);
            output[2 * i + 1] = (byte)((here + padded[i + 2] + biasRight) >> shift);
        }
    }

    /// <summary>Same bytes as <see cref="DoubleWidthReference"/>, 16 input values per step.</summary>
    public static void DoubleWidth(ReadOnlySpan<ushort> padded, int n, Span<byte> output, int biasLeft, int biasRight, int shift)
    {
        if (padded.Length < n + 2 || output.Length < 2 * n) throw new ArgumentException("row buffers shorter than the row");
        int i = 0;
        if (UseVectors)
        {
            // Lengths checked above: loads read padded[i .. i+17] with i + 16 <= n; stores write output[2i .. 2i+31].
            ref ushort source = ref MemoryMarshal.GetReference(padded);
            ref byte destination = ref MemoryMarshal.GetReference(output);
            Vector256<ushort> left = Vector256.Create((ushort)biasLeft), right = Vector256.Create((ushort)biasRight);
            for (; i + 16 <= n; i += 16)
            {
                Vector256<ushort> here = Vector256.LoadUnsafe(ref source, (nuint)(i + 1)) * 3;
                Vector256<ushort> even = (here + Vector256.LoadUnsafe(ref source, (nuint)i) + left) >> shift;
                Vector256<ushort> odd = (here + Vector256.LoadUnsafe(ref source, (nuint)(i + 2)) + right) >> shift;
                (even | (odd << 8)).AsByte().StoreUnsafe(ref destination, (nuint)(2 * i));
            }
        }
        if (i < n) DoubleWidthReference(padded[i..], n - i, output[(2 * i)..], biasLeft, biasRight, shift);
    }

    // ---- vertical 2:1 triangle ----

    /// <summary>h1v2: output = (3·near + far + bias) >> 2, bias 1 for rows leaning up, 2 for rows leaning down.</summary>
    public static void BlendRowsReference(ReadOnlySpan<byte> near, ReadOnlySpan<byte> far, Span<byte> output, int n, int bias)
    {
        for (int i = 0; i < n; i++) output[i] = (byte)((near[i] * 3 + far[i] + bias) >> 2);
    }

    /// <summary>Same bytes as <see cref="BlendRowsReference"/>, 32 samples per step.</summary>
    public static void BlendRows(ReadOnlySpan<byte> near, ReadOnlySpan<byte> far, Span<byte> output, int n, int bias)
    {
        if (near.Length < n || far.Length < n || output.Length < n) throw new ArgumentException("rows shorter than n");
        int i = 0;
        if (UseVectors)
        {
            ref byte a = ref MemoryMarshal.GetReference(near), b = ref MemoryMarshal.GetReference(far), o = ref MemoryMarshal.GetReference(output);
            Vector256<ushort> biasVector = Vector256.Create((ushort)bias);
            for (; i + 32 <= n; i += 32)
            {
                (Vector256<ushort> nearLow, Vector256<ushort> nearHigh) = Vector256.Widen(Vector256.LoadUnsafe(ref a, (nuint)i));
                (Vector256<ushort> farLow, Vector256<ushort> farHigh) = Vector256.Widen(Vector256.LoadUnsafe(ref b, (nuint)i));
                Vector256<ushort> low = (nearLow * 3 + farLow + biasVector) >> 2;
                Vector256<ushort> high = (nearHigh * 3 + farHigh + biasVector) >> 2;
                Vector256.Narrow(low, high).StoreUnsafe(ref o, (nuint)i);
            }
        }
        if (i < n) BlendRowsReference(near[i..], far[i..], output[i..], n - i, bias);
    }

    /// <summary>h2v2 first step: padded[1 + i] = 3·near[i] + far[i], with the edge sums repeated at [0] and [n+1].</summary>
    public static void ColumnSumsReference(ReadOnlySpan<byte> near, ReadOnlySpan<byte> far, Span<ushort> padded, int n)
    {
        for (int i = 0; i < n; i++) padded[i + 1] = (ushort)(near[i] * 3 + far[i]);
        padded[0] = padded[1];
        padded[n + 1] = padded[n];
    }

    /// <summary>Same values as <see cref="ColumnSumsReference"/>, 32 columns per step.</summary>
    public static void ColumnSums(ReadOnlySpan<byte> near, ReadOnlySpan<byte> far, Span<ushort> padded, int n)
    {
        if (near.Length < n || far.Length < n || padded.Length < n + 2) throw new ArgumentException("rows shorter than n");
        int i = 0;
        if (UseVectors)
        {
            ref byte a = ref MemoryMarshal.GetReference(near), b = ref MemoryMarshal.GetReference(far);
            ref ushort o = ref MemoryMarshal.GetReference(padded);
            for (; i + 32 <= n; i += 32)
            {
                (Vector256<ushort> nearLow, Vector256<ushort> nearHigh) = Vector256.Widen(Vector256.LoadUnsafe(ref a, (nuint)i));
                (Vector256<ushort> farLow, Vector256<ushort> farHigh) = Vector256.Widen(Vector256.LoadUnsafe(ref b, (nuint)i));
                (nearLow * 3 + farLow).StoreUnsafe(ref o, (nuint)(i + 1));
                (nearHigh * 3 + farHigh).StoreUnsafe(ref o, (nuint)(i + 17));
            }
        }
        for (; i < n; i++) padded[i + 1] = (ushort)(near[i] * 3 + far[i]);
        padded[0] = padded[1];
        padded[n + 1] = padded[n];
    }

    /// <summary>h2v1 first step: the row widened to 16 bits at padded[1..n], edge samples repeated at [0] and [n+1].</summary>
    public static void WidenPadded(ReadOnlySpan<byte> row, Span<ushort> padded, int n)
    {
        if (row.Length < n || padded.Length < n + 2) throw new ArgumentException("rows shorter than n");
        int i = 0;
        if (UseVectors)
        {
            ref byte a = ref MemoryMarshal.GetReference(row);
            ref ushort o = ref MemoryMarshal.GetReference(padded);
            for (; i + 32 <= n; i += 32)
            {
                (Vector256<ushort> low, Vector256<ushort> high) = Vector256.Widen(Vector256.LoadUnsafe(ref a, (nuint)i));
                low.StoreUnsafe(ref o, (nuint)(i + 1));
                high.StoreUnsafe(ref o, (nuint)(i + 17));
            }
        }
        for (; i < n; i++) padded[i + 1] = row[i];
        padded[0] = padded[1];
        padded[n + 1] = padded[n];
    }

    // ---- replication ----

    /// <summary>Each of the n input samples repeated <paramref name="ratio"/> times.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Replicate(ReadOnlySpan<byte> row, int n, int ratio, Span<byte> output)
    {
        if (ratio == 1)
        {
            row[..n].CopyTo(output);
            return;
        }
        int o = 0;
        for (int i = 0; i < n; i++)
        {
            byte v = row[i];
            for (int r = 0; r < ratio; r++) output[o++] = v;
        }
    }
}
