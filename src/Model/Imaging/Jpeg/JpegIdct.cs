using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LlavaNative.Model.Imaging.Jpeg;

/// <summary>
/// The 8×8 inverse DCT with dequantization, computed exactly as libjpeg's default "islow" method: the
/// Loeffler–Ligtenberg–Moschytz factorization with 13-bit fixed-point constants, a column pass kept at 2 extra bits
/// of precision and rounded, then a row pass rounded to the output and clamped to 0..255 around the level shift
/// of 128. Matching its arithmetic (not just an accurate IDCT) makes our samples equal djpeg's and Pillow's.
///
/// Two implementations of the same integer arithmetic:
/// <list type="bullet">
/// <item><see cref="TransformReference"/>: the butterfly network in 64-bit integers, one column or row at a time.</item>
/// <item><see cref="Transform"/>: the fast path (AVX2), the same butterfly on eight columns or rows per vector with
/// transposes between the passes. 32-bit lanes hold every intermediate exactly for the coefficient magnitudes
/// 8-bit images produce (dequantized DC up to ±2047, AC up to ±1023; a kernel-pair test sets all 64 coefficients
/// to those limits at once), the assumption libjpeg-turbo's SIMD code makes too. Corrupt or adversarial data can wrap,
/// which changes its garbage pixels but cannot fail.</item>
/// </list>
/// </summary>
internal static class JpegIdct
{
    private const int ConstBits = 13;
    private const int Pass1Bits = 2;
    /// <summary>Column-pass rounding: the sum carries ConstBits fraction bits, kept at Pass1Bits.</summary>
    private const int Pass1Shift = ConstBits - Pass1Bits;
    /// <summary>Row-pass rounding: removes the remaining fraction bits and the 8 = 2^3 scale of the 2-D transform.</summary>
    private const int Pass2Shift = ConstBits + Pass1Bits + 3;

    // The LLM rotation constants as 13-bit fixed point, round(x · 2^13). These are the values libjpeg uses (jidctint.c);
    // e.g. 0.541196100 = √2·cos(6π/16), 1.175875602 = √2·cos(3π/16).
    private const long Fix0_298631336 = 2446;
    private const long Fix0_390180644 = 3196;
    private const long Fix0_541196100 = 4433;
    private const long Fix0_765366865 = 6270;
    private const long Fix0_899976223 = 7373;
    private const long Fix1_175875602 = 9633;
    private const long Fix1_501321110 = 12299;
    private const long Fix1_847759065 = 15137;
    private const long Fix1_961570560 = 16069;
    private const long Fix2_053119869 = 16819;
    private const long Fix2_562915447 = 20995;
    private const long Fix3_072711026 = 25172;

    /// <summary>
    /// The 1-D butterfly on x[0], x[stride], …, x[7·stride] (frequencies 0..7), results scaled by 2^13 and not yet
    /// rounded, written to y[0..7] (spatial positions 0..7).
    /// </summary>
    private static void Butterfly(ReadOnlySpan<long> x, int stride, Span<long> y)
    {
        long f0 = x[0], f1 = x[stride], f2 = x[2 * stride], f3 = x[3 * stride];
        long f4 = x[4 * stride], f5 = x[5 * stride], f6 = x[6 * stride], f7 = x[7 * stride];

        // Even half: frequencies 0, 2, 4, 6. The 2/6 pair is one rotation by 6π/16 sharing a multiply.
        long rotation = (f2 + f6) * Fix0_541196100;
        long even6 = rotation - f6 * Fix1_847759065;
        long even2 = rotation + f2 * Fix0_765366865;
        long sum04 = (f0 + f4) << ConstBits;
        long diff04 = (f0 - f4) << ConstBits;
        long e0 = sum04 + even2, e3 = sum04 - even2;
        long e1 = diff04 + even6, e2 = diff04 - even6;

        // Odd half: frequencies 1, 3, 5, 7 (LLM figure 8), four products shared through the sums s17..s35.
        long s17 = f7 + f1, s35 = f5 + f3, s73 = f7 + f3, s51 = f5 + f1;
        long common = (s73 + s51) * Fix1_175875602;
        long p17 = s17 * -Fix0_899976223;
        long p35 = s35 * -Fix2_562915447;
        long p73 = s73 * -Fix1_961570560 + common;
        long p51 = s51 * -Fix0_390180644 + common;
        long o7 = f7 * Fix0_298631336 + p17 + p73;
        long o5 = f5 * Fix2_053119869 + p35 + p51;
        long o3 = f3 * Fix3_072711026 + p35 + p73;
        long o1 = f1 * Fix1_501321110 + p17 + p51;

        y[0] = e0 + o1; y[7] = e0 - o1;
        y[1] = e1 + o3; y[6] = e1 - o3;
        y[2] = e2 + o5; y[5] = e2 - o5;
        y[3] = e3 + o7; y[4] = e3 - o7;
    }

    private static long RoundShift(long v, int shift) => (v + (1L << (shift - 1))) >> shift;

    private static byte ClampSample(long centered) => (byte)Math.Clamp(centered + 128, 0, 255);

    /// <summary>
    /// Reference: dequantize <paramref name="coefficients"/> (natural order) by <paramref name="quant"/>, inverse
    /// transform and write 8 rows of 8 samples to <paramref name="output"/>, rows <paramref name="stride"/> apart.
    /// </summary>
    public static void TransformReference(ReadOnlySpan<short> coefficients, ReadOnlySpan<ushort> quant, Span<byte> output, int stride)
    {
        Span<long> block = stackalloc long[64];
        Span<long> workspace = stackalloc long[64]; // [row, column], columns transformed, Pass1Bits extra precision
        Span<long> line = stackalloc long[8];
        for (int i = 0; i < 64; i++) block[i] = (long)coefficients[i] * quant[i];
        for (int column = 0; column < 8; column++)
        {
            Butterfly(block[column..], 8, line);
            for (int row = 0; row < 8; row++) workspace[row * 8 + column] = RoundShift(line[row], Pass1Shift);
        }
        for (int row = 0; row < 8; row++)
        {
            Butterfly(workspace.Slice(row * 8, 8), 1, line);
            for (int column = 0; column < 8; column++)
                output[row * stride + column] = ClampSample(RoundShift(line[column], Pass2Shift));
        }
    }

    /// <summary>
    /// <see cref="Butterfly"/> on eight columns at once: lane j of x0..x7 holds frequencies 0..7 of column j; the
    /// results (spatial positions 0..7, ×2^13, unrounded) replace them. The same integer operations in the same
    /// order as the scalar version, so the results are identical.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Butterfly(ref Vector256<int> x0, ref Vector256<int> x1, ref Vector256<int> x2, ref Vector256<int> x3,
        ref Vector256<int> x4, ref Vector256<int> x5, ref Vector256<int> x6, ref Vector256<int> x7)
    {
        Vector256<int> f0 = x0, f1 = x1, f2 = x2, f3 = x3, f4 = x4, f5 = x5, f6 = x6, f7 = x7;

        Vector256<int> rotation = (f2 + f6) * (int)Fix0_541196100;
        Vector256<int> even6 = rotation - f6 * (int)Fix1_847759065;
        Vector256<int> even2 = rotation + f2 * (int)Fix0_765366865;
        Vector256<int> sum04 = (f0 + f4) << ConstBits;
        Vector256<int> diff04 = (f0 - f4) << ConstBits;
        Vector256<int> e0 = sum04 + even2, e3 = sum04 - even2;
        Vector256<int> e1 = diff04 + even6, e2 = diff04 - even6;

        Vector256<int> s17 = f7 + f1, s35 = f5 + f3, s73 = f7 + f3, s51 = f5 + f1;
        Vector256<int> common = (s73 + s51) * (int)Fix1_175875602;
        Vector256<int> p17 = s17 * -(int)Fix0_899976223;
        Vector256<int> p35 = s35 * -(int)Fix2_562915447;
        Vector256<int> p73 = s73 * -(int)Fix1_961570560 + common;
        Vector256<int> p51 = s51 * -(int)Fix0_390180644 + common;
        Vector256<int> o7 = f7 * (int)Fix0_298631336 + p17 + p73;
        Vector256<int> o5 = f5 * (int)Fix2_053119869 + p35 + p51;
        Vector256<int> o3 = f3 * (int)Fix3_072711026 + p35 + p73;
        Vector256<int> o1 = f1 * (int)Fix1_501321110 + p17 + p51;

        x0 = e0 + o1; x7 = e0 - o1;
        x1 = e1 + o3; x6 = e1 - o3;
        x2 = e2 + o5; x5 = e2 - o5;
        x3 = e3 + o7; x4 = e3 - o7;
    }

    /// <summary>Transposes the 8×8 matrix held as rows r0..r7 (AVX2: 32-bit then 64-bit interleaves, then 128-bit halves).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose(ref Vector256<int> r0, ref Vector256<int> r1, ref Vector256<int> r2, ref Vector256<int> r3,
        ref Vector256<int> r4, ref Vector256<int> r5, ref Vector256<int> r6, ref Vector256<int> r7)
    {
        Vector256<int> t0 = Avx2.UnpackLow(r0, r1), t1 = Avx2.UnpackHigh(r0, r1);
        Vector256<int> t2 = Avx2.UnpackLow(r2, r3), t3 = Avx2.UnpackHigh(r2, r3);
        Vector256<int> t4 = Avx2.UnpackLow(r4, r5), t5 = Avx2.UnpackHigh(r4, r5);
        Vector256<int> t6 = Avx2.UnpackLow(r6, r7), t7 = Avx2.UnpackHigh(r6, r7);
        Vector256<int> u0 = Avx2.UnpackLow(t0.AsInt64(), t2.AsInt64()).AsInt32(), u1 = Avx2.UnpackHigh(t0.AsInt64(), t2.AsInt64()).AsInt32();
        Vector256<int> u2 = Avx2.UnpackLow(t1.AsInt64(), t3.AsInt64()).AsInt32(), u3 = Avx2.UnpackHigh(t1.AsInt64(), t3.AsInt64()).AsInt32();
        Vector256<int> u4 = Avx2.UnpackLow(t4.AsInt64(), t6.AsInt64()).AsInt32(), u5 = Avx2.UnpackHigh(t4.AsInt64(), t6.AsInt64()).AsInt32();
        Vector256<int> u6 = Avx2.UnpackLow(t5.AsInt64(), t7.AsInt64()).AsInt32(), u7 = Avx2.UnpackHigh(t5.AsInt64(), t7.AsInt64()).AsInt32();
        r0 = Avx2.Permute2x128(u0, u4, 0x20); r4 = Avx2.Permute2x128(u0, u4, 0x31);
        r1 = Avx2.Permute2x128(u1, u5, 0x20); r5 = Avx2.Permute2x128(u1, u5, 0x31);
        r2 = Avx2.Permute2x128(u2, u6, 0x20); r6 = Avx2.Permute2x128(u2, u6, 0x31);
        r3 = Avx2.Permute2x128(u3, u7, 0x20); r7 = Avx2.Permute2x128(u3, u7, 0x31);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> LoadDequantized(ref short coefficients, ref ushort quant, int row)
    {
        Vector256<int> c = Vector256.WidenLower(Vector128.LoadUnsafe(ref coefficients, (nuint)(row * 8)).ToVector256Unsafe());
        Vector256<int> q = Vector256.WidenLower(Vector128.LoadUnsafe(ref quant, (nuint)(row * 8)).ToVector256Unsafe()).AsInt32();
        return c * q;
    }

    /// <summary>Rounds away the row pass's fraction bits, adds the level shift and clamps to 0..255.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> ToSamples(Vector256<int> v) =>
        Vector256.Min(Vector256.Max(((v + Vector256.Create(1 << (Pass2Shift - 1))) >> Pass2Shift) + Vector256.Create(128), Vector256<int>.Zero), Vector256.Create(255));

    /// <summary>
    /// Same result as <see cref="TransformReference"/>, eight columns (then eight rows) per AVX2 vector: the
    /// column butterfly runs on the coefficient rows as loaded, a transpose turns the workspace so the row
    /// butterfly can run the same way, and a second transpose restores row order for the output.
    /// When the block holds only a DC term <see cref="TransformDcOnly"/> is cheaper.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    [SkipLocalsInit]
    public static void Transform(ReadOnlySpan<short> coefficients, ReadOnlySpan<ushort> quant, Span<byte> output, int stride)
    {
        if (!Avx2.IsSupported)
        {
            TransformReference(coefficients, quant, output, stride);
            return;
        }
        if (coefficients.Length < 64 || quant.Length < 64 || output.Length < 7 * stride + 8)
            throw new ArgumentException("an 8×8 block and its output rows");

        // Lengths checked above: unchecked loads and stores below.
        ref short c = ref MemoryMarshal.GetReference(coefficients);
        ref ushort q = ref MemoryMarshal.GetReference(quant);
        Vector256<int> r0 = LoadDequantized(ref c, ref q, 0), r1 = LoadDequantized(ref c, ref q, 1);
        Vector256<int> r2 = LoadDequantized(ref c, ref q, 2), r3 = LoadDequantized(ref c, ref q, 3);
        Vector256<int> r4 = LoadDequantized(ref c, ref q, 4), r5 = LoadDequantized(ref c, ref q, 5);
        Vector256<int> r6 = LoadDequantized(ref c, ref q, 6), r7 = LoadDequantized(ref c, ref q, 7);

        // Column pass, rounded to Pass1Bits of extra precision.
        Butterfly(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);
        Vector256<int> round1 = Vector256.Create(1 << (Pass1Shift - 1));
        r0 = (r0 + round1) >> Pass1Shift; r1 = (r1 + round1) >> Pass1Shift;
        r2 = (r2 + round1) >> Pass1Shift; r3 = (r3 + round1) >> Pass1Shift;
        r4 = (r4 + round1) >> Pass1Shift; r5 = (r5 + round1) >> Pass1Shift;
        r6 = (r6 + round1) >> Pass1Shift; r7 = (r7 + round1) >> Pass1Shift;

        // Row pass on the transposed workspace: vector k holds frequency k of every row.
        Transpose(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);
        Butterfly(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);
        r0 = ToSamples(r0); r1 = ToSamples(r1); r2 = ToSamples(r2); r3 = ToSamples(r3);
        r4 = ToSamples(r4); r5 = ToSamples(r5); r6 = ToSamples(r6); r7 = ToSamples(r7);
        Transpose(ref r0, ref r1, ref r2, ref r3, ref r4, ref r5, ref r6, ref r7);

        ref byte o = ref MemoryMarshal.GetReference(output);
        StoreRows(ref o, 0, stride, r0, r1);
        StoreRows(ref o, 2, stride, r2, r3);
        StoreRows(ref o, 4, stride, r4, r5);
        StoreRows(ref o, 6, stride, r6, r7);
    }

    /// <summary>Narrows two rows of 0..255 ints to bytes and stores them 8 bytes each.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRows(ref byte output, int row, int stride, Vector256<int> a, Vector256<int> b)
    {
        Vector256<ushort> words = Vector256.Narrow(a, b).AsUInt16();
        Vector128<byte> bytes = Vector128.Narrow(words.GetLower(), words.GetUpper());
        Unsafe.WriteUnaligned(ref Unsafe.Add(ref output, row * stride), bytes.AsUInt64().ToScalar());
        Unsafe.WriteUnaligned(ref Unsafe.Add(ref output, (row + 1) * stride), bytes.AsUInt64().GetElement(1));
    }

    /// <summary>
    /// A block whose only non-zero coefficient is DC is flat: the transform reduces to round(dc·q / 8) + 128
    /// (exactly what both passes compute for it), written to all 64 samples.
    /// </summary>
    public static void TransformDcOnly(short dc, ushort quant, Span<byte> output, int stride)
    {
        if (output.Length < 7 * stride + 8) throw new ArgumentException("an 8×8 block of output rows");
        int centered = (dc * quant + 4) >> 3;
        byte v = (byte)Math.Clamp(centered + 128, 0, 255);
        ulong fill = 0x0101010101010101UL * v;
        for (int row = 0; row < 8; row++) Unsafe.WriteUnaligned(ref output[row * stride], fill);
    }
}
