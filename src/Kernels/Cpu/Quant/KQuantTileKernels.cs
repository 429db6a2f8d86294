using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LlavaNative.Kernels.Cpu.Quant;

/// <summary>
/// Prefill micro-kernels for Q4_K, Q5_K and Q6_K (AVX-512): 2 weight rows × 4 tokens per call. The sub-block
/// scales are applied in the integer domain (<c>vpmaddwd</c> with the scale), so each (row, token) pair keeps
/// one exact int32 sum per super-block — ggml's integer — converted and scaled by d·d_x once per 256 elements.
/// Two rows rather than four: every row needs its unpacked codes and scale vectors in registers.
/// Rows/tokens beyond the call's count repeat the last one and are not stored.
/// </summary>
internal static unsafe class KQuantTileKernels
{
    private const int XBytes = ActivationQuantizers.Q8_KBlockBytes;

    /// <summary>Whether the 4-bit codes carry Q5_K's fifth bit (qh) — a compile-time switch via the type argument.</summary>
    internal interface IFifthBit { static abstract bool Present { get; } }

    internal struct Q4K : IFifthBit { public static bool Present => false; }

    internal struct Q5K : IFifthBit { public static bool Present => true; }

    /// <summary>Q4_K: y[t·yStride + r] for r &lt; rows ≤ 2, t &lt; tokens ≤ 4.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void TileQ4_KAvx512(int n, byte* w, long wStride, byte* x, long xStride, float* y, long yStride, int rows, int tokens)
        => TileQ45KAvx512<Q4K>(n, w, wStride, x, xStride, y, yStride, rows, tokens);

    /// <summary>Q5_K: as Q4_K with the fifth bit of each code from qh (bit 2c for low nibbles of chunk c, 2c+1 for high).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void TileQ5_KAvx512(int n, byte* w, long wStride, byte* x, long xStride, float* y, long yStride, int rows, int tokens)
        => TileQ45KAvx512<Q5K>(n, w, wStride, x, xStride, y, yStride, rows, tokens);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // not inlined (it stackallocs): optimise it directly
    private static void TileQ45KAvx512<TBits>(int n, byte* w, long wStride, byte* x, long xStride, float* y, long yStride, int rows, int tokens)
        where TBits : struct, IFifthBit
    {
        float* f16 = Fp16.Table;
        int bb = TBits.Present ? Q5_KKernels.BlockBytes : Q4_KKernels.BlockBytes;
        int qsOffset = TBits.Present ? 48 : 16;
        byte* w0 = w, w1 = w + Math.Min(1, rows - 1) * wStride;
        byte* x0 = x, x1 = x + Math.Min(1, tokens - 1) * xStride, x2 = x + Math.Min(2, tokens - 1) * xStride, x3 = x + Math.Min(3, tokens - 1) * xStride;
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default;
        float* mins = stackalloc float[8]; // dmin·d_x·Σ m·bsum per (row, token), subtracted at the end
        for (int i = 0; i < 8; i++) mins[i] = 0;
        Vector512<byte> m4 = Vector512.Create((byte)0x0F);
        for (int b = 0; b < n / 256; b++)
        {
            byte* r0 = w0 + (long)b * bb, r1 = w1 + (long)b * bb;
            long ox = (long)b * XBytes;
            KQuantScales.UnpackQ4K(r0 + 4, out ulong sc0, out ulong mn0);
            KQuantScales.UnpackQ4K(r1 + 4, out ulong sc1, out ulong mn1);
            Vector512<int> s00 = default, s01 = default, s02 = default, s03 = default, s10 = default, s11 = default, s12 = default, s13 = default;
            for (int half = 0; half < 2; half++)
            {
                int s = 4 * half;
                Vector512<byte> bits0 = Vector512.Load(r0 + qsOffset + 64 * half), bits1 = Vector512.Load(r1 + qsOffset + 64 * half);
                Vector512<byte> lo0 = bits0 & m4, hi0 = (bits0.AsUInt16() >> 4).AsByte() & m4;
                Vector512<byte> lo1 = bits1 & m4, hi1 = (bits1.AsUInt16() >> 4).AsByte() & m4;
                if (TBits.Present)
                {
                    lo0 |= FifthBits(r0 + 16, 4 * half, 4 * half + 2); hi0 |= FifthBits(r0 + 16, 4 * half + 1, 4 * half + 3);
                    lo1 |= FifthBits(r1 + 16, 4 * half, 4 * half + 2); hi1 |= FifthBits(r1 + 16, 4 * half + 1, 4 * half + 3);
                }
                Vector512<short> sl0 = ScalePair(sc0, s, s + 2), sh0 = ScalePair(sc0, s + 1, s + 3);
                Vector512<short> sl1 = ScalePair(sc1, s, s + 2), sh1 = ScalePair(sc1, s + 1, s + 3);
                int oy = 4 + 128 * half;
                Q4KToken(x0 + ox + oy, lo0, hi0, sl0, sh0, lo1, hi1, sl1, sh1, ref s00, ref s10);
                Q4KToken(x1 + ox + oy, lo0, hi0, sl0, sh0, lo1, hi1, sl1, sh1, ref s01, ref s11);
                Q4KToken(x2 + ox + oy, lo0, hi0, sl0, sh0, lo1, hi1, sl1, sh1, ref s02, ref s12);
                Q4KToken(x3 + ox + oy, lo0, hi0, sl0, sh0, lo1, hi1, sl1, sh1, ref s03, ref s13);
            }
            float d0 = f16[*(ushort*)r0], d1 = f16[*(ushort*)r1];
            float m0 = f16[*(ushort*)(r0 + 2)], m1 = f16[*(ushort*)(r1 + 2)];
            float dx0 = *(float*)(x0 + ox), dx1 = *(float*)(x1 + ox), dx2 = *(float*)(x2 + ox), dx3 = *(float*)(x3 + ox);
            a00 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(s00), Vector512.Create(dx0 * d0), a00);
            a01 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(s01), Vector512.Create(dx1 * d0), a01);
            a02 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(s02), Vector512.Create(dx2 * d0), a02);
            a03 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(s03), Vector512.Create(dx3 * d0), a03);
            a10 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(s10), Vector512.Create(dx0 * d1), a10);
            a11 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(s11), Vector512.Create(dx1 * d1), a11);
            a12 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(s12), Vector512.Create(dx2 * d1), a12);
            a13 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(s13), Vector512.Create(dx3 * d1), a13);
            short* bs0 = (short*)(x0 + ox + 260), bs1 = (short*)(x1 + ox + 260), bs2 = (short*)(x2 + ox + 260), bs3 = (short*)(x3 + ox + 260);
            mins[0] += dx0 * m0 * Q4_KKernels.MinCorrection(mn0, bs0);
            mins[1] += dx1 * m0 * Q4_KKernels.MinCorrection(mn0, bs1);
            mins[2] += dx2 * m0 * Q4_KKernels.MinCorrection(mn0, bs2);
            mins[3] += dx3 * m0 * Q4_KKernels.MinCorrection(mn0, bs3);
            mins[4] += dx0 * m1 * Q4_KKernels.MinCorrection(mn1, bs0);
            mins[5] += dx1 * m1 * Q4_KKernels.MinCorrection(mn1, bs1);
            mins[6] += dx2 * m1 * Q4_KKernels.MinCorrection(mn1, bs2);
            mins[7] += dx3 * m1 * Q4_KKernels.MinCorrection(mn1, bs3);
        }
        Store(y, yStride, rows, tokens, a00, a01, a02, a03, a10, a11, a12, a13, mins);
    }

    /// <summary>Bit <paramref name="b1"/> of qh[l] for bytes 0–31 and bit <paramref name="b2"/> for bytes 32–63, moved to 0x10.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<byte> FifthBits(byte* qh, int b1, int b2)
    {
        Vector256<ushort> h = Vector256.Load((ushort*)qh);
        Vector512<byte> bits = QuantSimd.Combine((h >> b1).AsByte(), (h >> b2).AsByte()) & Vector512.Create((byte)1);
        return (bits.AsUInt16() << 4).AsByte();
    }

    /// <summary>int16 scale k1 in bits 0–255, k2 in 256–511 (the two sub-blocks one 512-bit code vector spans).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<short> ScalePair(ulong scales, int k1, int k2)
        => QuantSimd.Combine(Vector256.Create((short)(byte)(scales >> (8 * k1))), Vector256.Create((short)(byte)(scales >> (8 * k2))));

    /// <summary>
    /// One token, one 128-element half: low nibbles pair with activation elements [0,32) and [64,96) of the
    /// half, high nibbles with [32,64) and [96,128) (see <see cref="Q4_KKernels.VecDotAvx512"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Q4KToken(byte* q8,
        Vector512<byte> lo0, Vector512<byte> hi0, Vector512<short> sl0, Vector512<short> sh0,
        Vector512<byte> lo1, Vector512<byte> hi1, Vector512<short> sl1, Vector512<short> sh1,
        ref Vector512<int> s0, ref Vector512<int> s1)
    {
        Vector512<sbyte> yl = QuantSimd.Load2x32((sbyte*)q8, (sbyte*)(q8 + 64));
        Vector512<sbyte> yh = QuantSimd.Load2x32((sbyte*)(q8 + 32), (sbyte*)(q8 + 96));
        s0 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(lo0, yl), sl0) + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(hi0, yh), sh0);
        s1 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(lo1, yl), sl1) + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(hi1, yh), sh1);
    }

    /// <summary>Q6_K: y[t·yStride + r] for r &lt; rows ≤ 2, t &lt; tokens ≤ 4.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void TileQ6_KAvx512(int n, byte* w, long wStride, byte* x, long xStride, float* y, long yStride, int rows, int tokens)
    {
        float* f16 = Fp16.Table;
        const int bb = Q6_KKernels.BlockBytes;
        byte* w0 = w, w1 = w + Math.Min(1, rows - 1) * wStride;
        byte* x0 = x, x1 = x + Math.Min(1, tokens - 1) * xStride, x2 = x + Math.Min(2, tokens - 1) * xStride, x3 = x + Math.Min(3, tokens - 1) * xStride;
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default;
        Vector512<byte> m15 = Vector512.Create((byte)15), m30 = Vector512.Create((byte)0x30);
        for (int b = 0; b < n / 256; b++)
        {
            byte* r0 = w0 + (long)b * bb, r1 = w1 + (long)b * bb;
            long ox = (long)b * XBytes;
            // The −32 of the codes: 32·Σ sc_g·bsum_g, in the first 8 lanes of each pair's integer sum.
            Vector256<short> sc0 = Avx2.ConvertToVector256Int16(Vector128.Load((sbyte*)(r0 + 192)));
            Vector256<short> sc1 = Avx2.ConvertToVector256Int16(Vector128.Load((sbyte*)(r1 + 192)));
            Vector512<int> s00 = Offset(sc0, x0 + ox), s01 = Offset(sc0, x1 + ox), s02 = Offset(sc0, x2 + ox), s03 = Offset(sc0, x3 + ox);
            Vector512<int> s10 = Offset(sc1, x0 + ox), s11 = Offset(sc1, x1 + ox), s12 = Offset(sc1, x2 + ox), s13 = Offset(sc1, x3 + ox);
            for (int half = 0; half < 2; half++)
            {
                Q6KHalf(r0 + 64 * half, r0 + 128 + 32 * half, (sbyte*)(r0 + 192 + 8 * half), m15, m30, out var q01a, out var q23a, out var sA01, out var sA23);
                Q6KHalf(r1 + 64 * half, r1 + 128 + 32 * half, (sbyte*)(r1 + 192 + 8 * half), m15, m30, out var q01b, out var q23b, out var sB01, out var sB23);
                int oy = 4 + 128 * half;
                Q6KToken(x0 + ox + oy, q01a, q23a, sA01, sA23, q01b, q23b, sB01, sB23, ref s00, ref s10);
                Q6KToken(x1 + ox + oy, q01a, q23a, sA01, sA23, q01b, q23b, sB01, sB23, ref s01, ref s11);
                Q6KToken(x2 + ox + oy, q01a, q23a, sA01, sA23, q01b, q23b, sB01, sB23, ref s02, ref s12);
                Q6KToken(x3 + ox + oy, q01a, q23a, sA01, sA23, q01b, q23b, sB01, sB23, ref s03, ref s13);
            }
            float d0 = f16[*(ushort*)(r0 + 208)], d1 = f16[*(ushort*)(r1 + 208)];
            float dx0 = *(float*)(x0 + ox), dx1 = *(float*)(x1 + ox), dx2 = *(float*)(x2 + ox), dx3 = *(float*)(x3 + ox);
            a00 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(s00), Vector512.Create(d0 * dx0), a00);
            a01 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(s01), Vector512.Create(d0 * dx1), a01);
            a02 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(s02), Vector512.Create(d0 * dx2), a02);
            a03 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(s03), Vector512.Create(d0 * dx3), a03);
            a10 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(s10), Vector512.Create(d1 * dx0), a10);
            a11 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(s11), Vector512.Create(d1 * dx1), a11);
            a12 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(s12), Vector512.Create(d1 * dx2), a12);
            a13 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(s13), Vector512.Create(d1 * dx3), a13);
        }
        float* none = stackalloc float[8];
        for (int i = 0; i < 8; i++) none[i] = 0;
        Store(y, yStride, rows, tokens, a00, a01, a02, a03, a10, a11, a12, a13, none);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Offset(Vector256<short> scales, byte* xBlock)
        => QuantSimd.Combine(Vector256<int>.Zero - (Avx2.MultiplyAddAdjacent(Vector256.Load((short*)(xBlock + 260)), scales) << 5), Vector256<int>.Zero);

    /// <summary>
    /// Unsigned 6-bit codes of one 128-element half: quarters 0|1 (low nibbles of ql[0..63]) and 2|3 (high
    /// nibbles), with their four 16-element scales per vector as int16 (see <see cref="Q6_KKernels.VecDotAvx512"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Q6KHalf(byte* ql, byte* qh, sbyte* sc, Vector512<byte> m15, Vector512<byte> m30,
        out Vector512<byte> q01, out Vector512<byte> q23, out Vector512<short> s01, out Vector512<short> s23)
    {
        Vector512<byte> bits = Vector512.Load(ql);
        Vector256<byte> h = Vector256.Load(qh);
        Vector512<byte> high01 = QuantSimd.Combine((h.AsUInt16() << 4).AsByte(), (h.AsUInt16() << 2).AsByte()) & m30;
        Vector512<byte> high23 = QuantSimd.Combine(h, (h.AsUInt16() >> 2).AsByte()) & m30;
        q01 = (bits & m15) | high01;
        q23 = ((bits.AsUInt16() >> 4).AsByte() & m15) | high23;
        s01 = QuantSimd.Combine(Scales(sc[0], sc[1]), Scales(sc[2], sc[3]));
        s23 = QuantSimd.Combine(Scales(sc[4], sc[5]), Scales(sc[6], sc[7]));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> Scales(sbyte lo, sbyte hi) => Vector256.Create(Vector128.Create((short)lo), Vector128.Create((short)hi));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Q6KToken(byte* q8,
        Vector512<byte> q01a, Vector512<byte> q23a, Vector512<short> sA01, Vector512<short> sA23,
        Vector512<byte> q01b, Vector512<byte> q23b, Vector512<short> sB01, Vector512<short> sB23,
        ref Vector512<int> s0, ref Vector512<int> s1)
    {
        Vector512<sbyte> y01 = Vector512.Load((sbyte*)q8), y23 = Vector512.Load((sbyte*)(q8 + 64));
        s0 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q01a, y01), sA01) + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q23a, y23), sA23);
        s1 += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q01b, y01), sB01) + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q23b, y23), sB23);
    }

    /// <summary>Reduces the 8 accumulators (row r, token t), subtracts the per-pair min terms, stores the valid ones.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* y, long yStride, int rows, int tokens,
        Vector512<float> a00, Vector512<float> a01, Vector512<float> a02, Vector512<float> a03,
        Vector512<float> a10, Vector512<float> a11, Vector512<float> a12, Vector512<float> a13, float* mins)
    {
        Put(y, yStride, rows, tokens, 0, 0, a00, mins[0]); Put(y, yStride, rows, tokens, 0, 1, a01, mins[1]);
        Put(y, yStride, rows, tokens, 0, 2, a02, mins[2]); Put(y, yStride, rows, tokens, 0, 3, a03, mins[3]);
        Put(y, yStride, rows, tokens, 1, 0, a10, mins[4]); Put(y, yStride, rows, tokens, 1, 1, a11, mins[5]);
        Put(y, yStride, rows, tokens, 1, 2, a12, mins[6]); Put(y, yStride, rows, tokens, 1, 3, a13, mins[7]);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put(float* y, long yStride, int rows, int tokens, int r, int t, Vector512<float> acc, float min)
    {
        if (r < rows && t < tokens) y[t * yStride + r] = QuantSimd.HorizontalSum(acc) - min;
    }
}
