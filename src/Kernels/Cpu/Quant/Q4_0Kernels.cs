using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using LlavaNative.Kernels.Tensors;

namespace LlavaNative.Kernels.Cpu.Quant;

/// <summary>
/// Q4_0 weights · Q8_0 activations. Block (18 bytes, 32 elements): <c>d: f16, qs: u8[16]</c>; element j &lt; 16
/// is the low nibble of qs[j], element j + 16 the high nibble; y = (q − 8)·d.
/// Dot product per block: Σ (q_w − 8)·q_x in integers, times fp32(d_w)·fp32(d_x) (<c>ggml_vec_dot_q4_0_q8_0</c>).
/// </summary>
internal static unsafe class Q4_0Kernels
{
    public const int BlockBytes = 18;
    private const int XBytes = ActivationQuantizers.Q8_0BlockBytes;

    public static QuantKernels Table => new()
    {
        Type = TensorType.Q4_0, DotType = TensorType.Q8_0, Dequantize = &Dequantize,
        VecDot = QuantSimd.UseAvx512 ? &VecDotAvx512 : QuantSimd.UseAvx2 ? &VecDotAvx2 : &VecDotScalar,
        MatMulTile = QuantSimd.UseAvx512 ? &Q4_0PackedGemm.TileAvx512 : QuantSimd.UseAvx2 ? &LegacyTileKernels.TileUnsignedAvx2<LegacyTileKernels.Q4_0Blocks> : null,
        TileRows = QuantSimd.UseAvx512 ? Q4_0PackedGemm.ChunkRows : 2, TileTokens = QuantSimd.UseAvx512 ? int.MaxValue : 4,
        MatVec = QuantSimd.UseAvx512 ? &MatVec4Avx512 : null, MatVecRows = 4,
    };

    public static QuantKernels ScalarTable => new()
    {
        Type = TensorType.Q4_0, DotType = TensorType.Q8_0, Dequantize = &Dequantize, VecDot = &VecDotScalar,
    };

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dequantize(byte* src, float* dst, int n)
    {
        for (int b = 0; b < n / 32; b++, src += BlockBytes, dst += 32)
        {
            float d = Fp16.ToFloat(*(ushort*)src);
            byte* q = src + 2;
            for (int j = 0; j < 16; j++)
            {
                dst[j] = ((q[j] & 0x0F) - 8) * d;
                dst[j + 16] = ((q[j] >> 4) - 8) * d;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotScalar(int n, byte* w, byte* x)
    {
        float sum = 0;
        for (int b = 0; b < n / 32; b++, w += BlockBytes, x += XBytes)
        {
            byte* qw = w + 2;
            sbyte* qx = (sbyte*)(x + 2);
            int sum0 = 0, sum1 = 0;
            for (int j = 0; j < 16; j++)
            {
                sum0 += ((qw[j] & 0x0F) - 8) * qx[j];
                sum1 += ((qw[j] >> 4) - 8) * qx[j + 16];
            }
            sum += (sum0 + sum1) * Fp16.ToFloat(*(ushort*)w) * Fp16.ToFloat(*(ushort*)x);
        }
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotAvx2(int n, byte* w, byte* x)
    {
        float* f16 = Fp16.Table;
        int nb = n / 32;
        Vector256<float> acc0 = Vector256<float>.Zero, acc1 = Vector256<float>.Zero;
        Vector256<sbyte> eight = Vector256.Create((sbyte)8);
        int b = 0;
        for (; b + 2 <= nb; b += 2, w += 2 * BlockBytes, x += 2 * XBytes)
        {
            Vector256<sbyte> q0 = QuantSimd.Nibbles32(w + 2).AsSByte() - eight;
            Vector256<sbyte> q1 = QuantSimd.Nibbles32(w + BlockBytes + 2).AsSByte() - eight;
            Vector256<int> p0 = QuantSimd.DotI8x4(q0, Vector256.Load((sbyte*)(x + 2)));
            Vector256<int> p1 = QuantSimd.DotI8x4(q1, Vector256.Load((sbyte*)(x + XBytes + 2)));
            float d0 = f16[*(ushort*)w] * f16[*(ushort*)x];
            float d1 = f16[*(ushort*)(w + BlockBytes)] * f16[*(ushort*)(x + XBytes)];
            acc0 = Fma.MultiplyAdd(Vector256.Create(d0), Avx.ConvertToVector256Single(p0), acc0);
            acc1 = Fma.MultiplyAdd(Vector256.Create(d1), Avx.ConvertToVector256Single(p1), acc1);
        }
        if (b < nb)
        {
            Vector256<sbyte> q0 = QuantSimd.Nibbles32(w + 2).AsSByte() - eight;
            Vector256<int> p0 = QuantSimd.DotI8x4(q0, Vector256.Load((sbyte*)(x + 2)));
            acc0 = Fma.MultiplyAdd(Vector256.Create(f16[*(ushort*)w] * f16[*(ushort*)x]), Avx.ConvertToVector256Single(p0), acc0);
        }
        return QuantSimd.HorizontalSum(acc0 + acc1);
    }

    /// <summary>
    /// Two blocks per 512-bit vector. AVX-512 has no byte sign instruction, so the nibbles stay unsigned
    /// (0..15) for <c>vpmaddubsw</c> and the −8 offset is subtracted as 8·(x pair sums) in 16 bits:
    /// the same integers as Σ (q − 8)·x.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotAvx512(int n, byte* w, byte* x)
    {
        float* f16 = Fp16.Table;
        int nb = n / 32;
        Vector512<float> acc0 = Vector512<float>.Zero, acc1 = Vector512<float>.Zero;
        Vector512<byte> eight = Vector512.Create((byte)8);
        Vector512<short> ones = Vector512.Create((short)1);
        int b = 0;
        for (; b + 4 <= nb; b += 4, w += 4 * BlockBytes, x += 4 * XBytes)
        {
            Vector512<byte> u0 = QuantSimd.Nibbles2x32(w + 2, w + BlockBytes + 2);
            Vector512<byte> u1 = QuantSimd.Nibbles2x32(w + 2 * BlockBytes + 2, w + 3 * BlockBytes + 2);
            Vector512<sbyte> y0 = QuantSimd.Load2x32((sbyte*)(x + 2), (sbyte*)(x + XBytes + 2));
            Vector512<sbyte> y1 = QuantSimd.Load2x32((sbyte*)(x + 2 * XBytes + 2), (sbyte*)(x + 3 * XBytes + 2));
            Vector512<short> s0 = Avx512BW.MultiplyAddAdjacent(u0, y0) - Avx512BW.MultiplyAddAdjacent(eight, y0);
            Vector512<short> s1 = Avx512BW.MultiplyAddAdjacent(u1, y1) - Avx512BW.MultiplyAddAdjacent(eight, y1);
            Vector512<int> p0 = Avx512BW.MultiplyAddAdjacent(s0, ones);
            Vector512<int> p1 = Avx512BW.MultiplyAddAdjacent(s1, ones);
            Vector512<float> d0 = QuantSimd.Splat2(f16[*(ushort*)w] * f16[*(ushort*)x],
                                                   f16[*(ushort*)(w + BlockBytes)] * f16[*(ushort*)(x + XBytes)]);
            Vector512<float> d1 = QuantSimd.Splat2(f16[*(ushort*)(w + 2 * BlockBytes)] * f16[*(ushort*)(x + 2 * XBytes)],
                                                   f16[*(ushort*)(w + 3 * BlockBytes)] * f16[*(ushort*)(x + 3 * XBytes)]);
            acc0 = Avx512F.FusedMultiplyAdd(d0, Avx512F.ConvertToVector512Single(p0), acc0);
            acc1 = Avx512F.FusedMultiplyAdd(d1, Avx512F.ConvertToVector512Single(p1), acc1);
        }
        Vector256<float> acc = (acc0 + acc1).GetLower() + (acc0 + acc1).GetUpper();
        Vector256<sbyte> eight256 = Vector256.Create((sbyte)8);
        for (; b < nb; b++, w += BlockBytes, x += XBytes)
        {
            Vector256<sbyte> q = QuantSimd.Nibbles32(w + 2).AsSByte() - eight256;
            Vector256<int> p = QuantSimd.DotI8x4(q, Vector256.Load((sbyte*)(x + 2)));
            acc = Fma.MultiplyAdd(Vector256.Create(f16[*(ushort*)w] * f16[*(ushort*)x]), Avx.ConvertToVector256Single(p), acc);
        }
        return QuantSimd.HorizontalSum(acc);
    }

    /// <summary>Cache lines of the next row group fetched per 4-block step of <see cref="MatVec4Avx512"/> (it advances 288 bytes).</summary>
    private const int PrefetchLinesPerStep = 5;

    /// <summary>
    /// Decode: 4 weight rows · one Q8_0 activation row, 4 blocks per step (<see cref="QuantKernels.MatVec"/>).
    /// <see cref="VecDotAvx512"/> spends most of its instructions on what the activation alone determines (loading and
    /// pairing its blocks, the −8 offset as 8·Σx, its scales) and on placing each scale in the lanes of its block;
    /// here the activation side is done once per 4 rows, and the layout needs no permutation: the 16 nibble bytes of
    /// 4 blocks fill one vector, whose low nibbles (elements 0–15 of each block) meet the activations' first 16 bytes
    /// and the high nibbles (16–31) their last 16, so int32 lane j belongs to block j / 4, and the 4 weight scales
    /// reach their lanes with one vpermps. Same integers per block as <see cref="VecDotScalar"/>; only the float
    /// summation order differs.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void MatVec4Avx512(int n, byte* w, long rowBytes, byte* x, float* y)
    {
        float* f16 = Fp16.Table;
        int nb = n / 32;
        byte* w0 = w, w1 = w + rowBytes, w2 = w + 2 * rowBytes, w3 = w + 3 * rowBytes;
        Vector512<float> acc0 = Vector512<float>.Zero, acc1 = Vector512<float>.Zero, acc2 = Vector512<float>.Zero, acc3 = Vector512<float>.Zero;
        Vector512<byte> eight = Vector512.Create((byte)8);
        Vector512<int> lanes = Vector512.Create(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
        byte* next = w + 4 * rowBytes;
        int b = 0;
        for (; b + 4 <= nb; b += 4)
        {
            byte* xb = x + b * XBytes;
            Vector512<sbyte> xLow = QuantSimd.Load4x16(xb + 2, XBytes).AsSByte();    // elements 0–15 of blocks b..b+3
            Vector512<sbyte> xHigh = QuantSimd.Load4x16(xb + 18, XBytes).AsSByte();  // elements 16–31
            Vector512<short> offset = Avx512BW.MultiplyAddAdjacent(eight, xLow) + Avx512BW.MultiplyAddAdjacent(eight, xHigh);
            Vector512<float> dx = QuantSimd.Spread4(f16[*(ushort*)xb], f16[*(ushort*)(xb + XBytes)],
                                                    f16[*(ushort*)(xb + 2 * XBytes)], f16[*(ushort*)(xb + 3 * XBytes)], lanes);
            long o = (long)b * BlockBytes;
            // The 4 rows are contiguous, and so is the next group's: fetch it while this one computes (the 4 interleaved
            // row streams defeat the hardware prefetcher, which keeps up with one row read front to back).
            for (int line = 0; line < PrefetchLinesPerStep; line++) Sse.Prefetch0(next + line * 64);
            next += 4 * 4 * BlockBytes;
            acc0 = Step4(w0 + o, xLow, xHigh, offset, dx, lanes, f16, acc0);
            acc1 = Step4(w1 + o, xLow, xHigh, offset, dx, lanes, f16, acc1);
            acc2 = Step4(w2 + o, xLow, xHigh, offset, dx, lanes, f16, acc2);
            acc3 = Step4(w3 + o, xLow, xHigh, offset, dx, lanes, f16, acc3);
        }
        long tail = (long)b * BlockBytes;
        byte* xt = x + b * XBytes;
        y[0] = QuantSimd.HorizontalSum(acc0.GetLower() + acc0.GetUpper() + TailBlocks(w0 + tail, xt, nb - b, f16));
        y[1] = QuantSimd.HorizontalSum(acc1.GetLower() + acc1.GetUpper() + TailBlocks(w1 + tail, xt, nb - b, f16));
        y[2] = QuantSimd.HorizontalSum(acc2.GetLower() + acc2.GetUpper() + TailBlocks(w2 + tail, xt, nb - b, f16));
        y[3] = QuantSimd.HorizontalSum(acc3.GetLower() + acc3.GetUpper() + TailBlocks(w3 + tail, xt, nb - b, f16));
    }

    /// <summary>One row's 4 blocks of <see cref="MatVec4Avx512"/>: acc + d_w·d_x·Σ(q − 8)·x per int32 lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Step4(byte* wb, Vector512<sbyte> xLow, Vector512<sbyte> xHigh, Vector512<short> offset,
                                          Vector512<float> dx, Vector512<int> lanes, float* f16, Vector512<float> acc)
    {
        Vector512<byte> q = QuantSimd.Load4x16(wb + 2, BlockBytes);
        Vector512<byte> low = q & Vector512.Create((byte)0x0F);
        Vector512<byte> high = (q.AsUInt16() >> 4).AsByte() & Vector512.Create((byte)0x0F);
        // |pair sums| ≤ 2·15·127 each and ≤ 11684 after the offset: no int16 saturation.
        Vector512<short> s = Avx512BW.MultiplyAddAdjacent(low, xLow) + Avx512BW.MultiplyAddAdjacent(high, xHigh) - offset;
        Vector512<int> p = Avx512BW.MultiplyAddAdjacent(s, Vector512.Create((short)1));
        Vector512<float> dw = QuantSimd.Spread4(f16[*(ushort*)wb], f16[*(ushort*)(wb + BlockBytes)],
                                                f16[*(ushort*)(wb + 2 * BlockBytes)], f16[*(ushort*)(wb + 3 * BlockBytes)], lanes);
        return Avx512F.FusedMultiplyAdd(dw * dx, Avx512F.ConvertToVector512Single(p), acc);
    }

    /// <summary>The last <paramref name="count"/> (&lt; 4) blocks of one row, one block per 256-bit step.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> TailBlocks(byte* w, byte* x, int count, float* f16)
    {
        Vector256<float> acc = Vector256<float>.Zero;
        for (int k = 0; k < count; k++, w += BlockBytes, x += XBytes)
        {
            Vector256<sbyte> q = QuantSimd.Nibbles32(w + 2).AsSByte() - Vector256.Create((sbyte)8);
            Vector256<int> p = QuantSimd.DotI8x4(q, Vector256.Load((sbyte*)(x + 2)));
            acc = Fma.MultiplyAdd(Vector256.Create(f16[*(ushort*)w] * f16[*(ushort*)x]), Avx.ConvertToVector256Single(p), acc);
        }
        return acc;
    }
}
