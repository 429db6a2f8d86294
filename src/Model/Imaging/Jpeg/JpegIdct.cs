using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

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
/// <item><see cref="Transform"/>: the fast path. The butterfly is linear with integer constants, so each 1-D pass
/// equals multiplying by an 8×8 integer matrix (<see cref="Basis"/>, found by pushing unit vectors through the
/// butterfly); rounding happens only between passes and at the end, so both give identical results. The matrix form
/// vectorizes without transposes: the column pass works on whole rows (8 columns per Vector256), the row pass
/// broadcasts one workspace value against a column of the matrix.</item>
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

    /// <summary>Basis[n·8 + k]: weight of frequency k in spatial output n of the 1-D butterfly (×2^13).</summary>
    internal static readonly int[] Basis = BuildBasis();

    /// <summary>BasisColumns[k]: column k of <see cref="Basis"/> as a vector over n, for the row pass.</summary>
    private static readonly Vector256<int>[] BasisColumns = BuildBasisColumns();

    private static int[] BuildBasis()
    {
        var basis = new int[64];
        Span<long> unit = stackalloc long[8];
        Span<long> response = stackalloc long[8];
        for (int k = 0; k < 8; k++)
        {
            unit.Clear();
            unit[k] = 1;
            Butterfly(unit, 1, response);
            for (int n = 0; n < 8; n++) basis[n * 8 + k] = checked((int)response[n]);
        }
        return basis;
    }

    private static Vector256<int>[] BuildBasisColumns()
    {
        var columns = new Vector256<int>[8];
        Span<int> c = stackalloc int[8];
        for (int k = 0; k < 8; k++)
        {
            for (int n = 0; n < 8; n++) c[n] = Basis[n * 8 + k];
            columns[k] = Vector256.Create((ReadOnlySpan<int>)c);
        }
        return columns;
    }

    /// <summary>
    /// Same result as <see cref="TransformReference"/>. <paramref name="lastRow"/> is the highest row of
    /// <paramref name="coefficients"/> that may be non-zero (rows below it are skipped in the column pass); when the
    /// block holds only a DC term pass <see cref="TransformDcOnly"/> instead.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Transform(ReadOnlySpan<short> coefficients, ReadOnlySpan<ushort> quant, Span<byte> output, int stride, int lastRow = 7)
    {
        if (!Vector256.IsHardwareAccelerated)
        {
            TransformReference(coefficients, quant, output, stride);
            return;
        }
        if (coefficients.Length < 64 || quant.Length < 64 || output.Length < 7 * stride + 8 || (uint)lastRow > 7)
            throw new ArgumentException("an 8×8 block and its output rows");

        // Column pass: workspace row n = Σ_k Basis[n,k] · (dequantized coefficient row k), 8 columns per vector.
        // Indexing below is within the checked lengths; Unsafe.Add avoids per-element bounds checks.
        Span<Vector256<int>> rows = stackalloc Vector256<int>[8];
        ref short c0 = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(coefficients);
        ref ushort q0 = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(quant);
        for (int k = 0; k <= lastRow; k++)
        {
            Vector256<int> c = Vector256.WidenLower(Vector256.Create(Vector128.LoadUnsafe(ref c0, (nuint)(k * 8)), Vector128<short>.Zero));
            Vector256<int> q = Vector256.WidenLower(Vector256.Create(Vector128.LoadUnsafe(ref q0, (nuint)(k * 8)), Vector128<ushort>.Zero)).AsInt32();
            rows[k] = c * q;
        }

        Span<int> workspace = stackalloc int[64]; // [row n, column], Pass1Bits extra precision
        ref int basis = ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(Basis);
        Vector256<int> round1 = Vector256.Create(1 << (Pass1Shift - 1));
        for (int n = 0; n < 8; n++)
        {
            Vector256<int> sum = round1;
            for (int k = 0; k <= lastRow; k++) sum += rows[k] * Unsafe.Add(ref basis, n * 8 + k);
            Vector256.ShiftRightArithmetic(sum, Pass1Shift).CopyTo(workspace.Slice(n * 8, 8));
        }

        // Row pass: output row n = Σ_c workspace[n,c] · BasisColumns[c]; two rows narrow to 16 bytes at a time.
        Vector256<int> round2 = Vector256.Create(1 << (Pass2Shift - 1));
        Vector256<int> center = Vector256.Create(128);
        Vector256<int> zero = Vector256<int>.Zero, max = Vector256.Create(255);
        ref Vector256<int> columns = ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(BasisColumns);
        ref int ws = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(workspace);
        for (int n = 0; n < 8; n += 2)
        {
            Vector256<int> a = round2, b = round2;
            for (int c = 0; c < 8; c++)
            {
                Vector256<int> column = Unsafe.Add(ref columns, c);
                a += Vector256.Create(Unsafe.Add(ref ws, n * 8 + c)) * column;
                b += Vector256.Create(Unsafe.Add(ref ws, n * 8 + 8 + c)) * column;
            }
            a = Vector256.Min(Vector256.Max(Vector256.ShiftRightArithmetic(a, Pass2Shift) + center, zero), max);
            b = Vector256.Min(Vector256.Max(Vector256.ShiftRightArithmetic(b, Pass2Shift) + center, zero), max);
            Vector256<short> words = Vector256.Narrow(a, b);
            Vector128<byte> bytes = Vector128.Narrow(words.AsUInt16().GetLower(), words.AsUInt16().GetUpper());
            ulong lo = bytes.AsUInt64().GetElement(0), hi = bytes.AsUInt64().GetElement(1);
            Unsafe.WriteUnaligned(ref output[n * stride], lo);
            Unsafe.WriteUnaligned(ref output[(n + 1) * stride], hi);
        }
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
