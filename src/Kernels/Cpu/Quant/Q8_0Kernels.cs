using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using LlavaNative.Kernels.Tensors;

namespace LlavaNative.Kernels.Cpu.Quant;

/// <summary>
/// Q8_0 weights · Q8_0 activations. Block (34 bytes, 32 elements): <c>d: f16, qs: i8[32]</c>, y = qs·d.
/// Dot product per block: Σ qs_w·qs_x in integers, times fp32(d_w)·fp32(d_x) (ggml's
/// <c>ggml_vec_dot_q8_0_q8_0</c>), accumulated in float.
/// </summary>
internal static unsafe class Q8_0Kernels
{
    public const int BlockBytes = 34;

    public static QuantKernels Table => new()
    {
        Type = TensorType.Q8_0, DotType = TensorType.Q8_0, Dequantize = &Dequantize,
        VecDot = QuantSimd.UseAvx512 ? &VecDotAvx512 : QuantSimd.UseAvx2 ? &VecDotAvx2 : &VecDotScalar,
        MatMulTile = QuantSimd.UseAvx512 ? &LegacyTileKernels.TileSignedAvx512<LegacyTileKernels.Q8_0Blocks> : QuantSimd.UseAvx2 ? &LegacyTileKernels.TileSignedAvx2<LegacyTileKernels.Q8_0Blocks> : null,
        TileRows = QuantSimd.UseAvx512 ? 4 : 2, TileTokens = 4,
        MatVec = QuantSimd.UseAvx512 ? &MatVec4Avx512 : null, MatVecRows = 4,
    };

    public static QuantKernels ScalarTable => new()
    {
        Type = TensorType.Q8_0, DotType = TensorType.Q8_0, Dequantize = &Dequantize, VecDot = &VecDotScalar,
    };

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dequantize(byte* src, float* dst, int n)
    {
        for (int b = 0; b < n / 32; b++, src += BlockBytes, dst += 32)
        {
            float d = Fp16.ToFloat(*(ushort*)src);
            sbyte* q = (sbyte*)(src + 2);
            for (int j = 0; j < 32; j++) dst[j] = q[j] * d;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotScalar(int n, byte* w, byte* x)
    {
        float sum = 0;
        for (int b = 0; b < n / 32; b++, w += BlockBytes, x += ActivationQuantizers.Q8_0BlockBytes)
        {
            sbyte* qw = (sbyte*)(w + 2), qx = (sbyte*)(x + 2);
            int isum = 0;
            for (int j = 0; j < 32; j++) isum += qw[j] * qx[j];
            sum += isum * (Fp16.ToFloat(*(ushort*)w) * Fp16.ToFloat(*(ushort*)x));
        }
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotAvx2(int n, byte* w, byte* x)
    {
        float* f16 = Fp16.Table;
        int nb = n / 32;
        Vector256<float> acc0 = Vector256<float>.Zero, acc1 = Vector256<float>.Zero;
        int b = 0;
        for (; b + 2 <= nb; b += 2, w += 2 * BlockBytes, x += 2 * BlockBytes)
        {
            Vector256<int> p0 = QuantSimd.DotI8x4(Vector256.Load((sbyte*)(w + 2)), Vector256.Load((sbyte*)(x + 2)));
            Vector256<int> p1 = QuantSimd.DotI8x4(Vector256.Load((sbyte*)(w + BlockBytes + 2)), Vector256.Load((sbyte*)(x + BlockBytes + 2)));
            float d0 = f16[*(ushort*)w] * f16[*(ushort*)x];
            float d1 = f16[*(ushort*)(w + BlockBytes)] * f16[*(ushort*)(x + BlockBytes)];
            acc0 = Fma.MultiplyAdd(Vector256.Create(d0), Avx.ConvertToVector256Single(p0), acc0);
            acc1 = Fma.MultiplyAdd(Vector256.Create(d1), Avx.ConvertToVector256Single(p1), acc1);
        }
        if (b < nb)
        {
            Vector256<int> p0 = QuantSimd.DotI8x4(Vector256.Load((sbyte*)(w + 2)), Vector256.Load((sbyte*)(x + 2)));
            float d0 = f16[*(ushort*)w] * f16[*(ushort*)x];
            acc0 = Fma.MultiplyAdd(Vector256.Create(d0), Avx.ConvertToVector256Single(p0), acc0);
        }
        return QuantSimd.HorizontalSum(acc0 + acc1);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotAvx512(int n, byte* w, byte* x)
    {
        float* f16 = Fp16.Table;
        int nb = n / 32;
        Vector512<float> acc0 = Vector512<float>.Zero, acc1 = Vector512<float>.Zero;
        int b = 0;
        for (; b + 4 <= nb; b += 4, w += 4 * BlockBytes, x += 4 * BlockBytes)
        {
            Vector512<int> p0 = QuantSimd.DotI8x4(QuantSimd.Load2x32((sbyte*)(w + 2), (sbyte*)(w + BlockBytes + 2)),
                                                  QuantSimd.Load2x32((sbyte*)(x + 2), (sbyte*)(x + BlockBytes + 2)));
            Vector512<int> p1 = QuantSimd.DotI8x4(QuantSimd.Load2x32((sbyte*)(w + 2 * BlockBytes + 2), (sbyte*)(w + 3 * BlockBytes + 2)),
                                                  QuantSimd.Load2x32((sbyte*)(x + 2 * BlockBytes + 2), (sbyte*)(x + 3 * BlockBytes + 2)));
            Vector512<float> d0 = QuantSimd.Splat2(f16[*(ushort*)w] * f16[*(ushort*)x],
                                                   f16[*(ushort*)(w + BlockBytes)] * f16[*(ushort*)(x + BlockBytes)]);
            Vector512<float> d1 = QuantSimd.Splat2(f16[*(ushort*)(w + 2 * BlockBytes)] * f16[*(ushort*)(x + 2 * BlockBytes)],
                                                   f16[*(ushort*)(w + 3 * BlockBytes)] * f16[*(ushort*)(x + 3 * BlockBytes)]);
            acc0 = Avx512F.FusedMultiplyAdd(d0, Avx512F.ConvertToVector512Single(p0), acc0);
            acc1 = Avx512F.FusedMultiplyAdd(d1, Avx512F.ConvertToVector512Single(p1), acc1);
        }
        Vector256<float> acc = (acc0 + acc1).GetLower() + (acc0 + acc1).GetUpper();
        for (; b < nb; b++, w += BlockBytes, x += BlockBytes)
        {
            Vector256<int> p = QuantSimd.DotI8x4(Vector256.Load((sbyte*)(w + 2)), Vector256.Load((sbyte*)(x + 2)));
            float d = f16[*(ushort*)w] * f16[*(ushort*)x];
            acc = Fma.MultiplyAdd(Vector256.Create(d), Avx.ConvertToVector256Single(p), acc);
        }
        return QuantSimd.HorizontalSum(acc);
    }

    /// <summary>Cache lines of the next row group fetched per 4-block step of <see cref="MatVec4Avx512"/> (it advances 544 bytes).</summary>
    private const int PrefetchLinesPerStep = 9;

    /// <summary>
    /// Decode: 4 weight rows · one activation row, 4 blocks (two 512-bit vectors) per step (<see cref="QuantKernels.MatVec"/>).
    /// As in <see cref="VecDotAvx512"/>, vpmaddubsw takes |w| as its unsigned operand and x with w's sign (|w| may be 128;
    /// activations stay within ±127); what depends on the activation alone — its loads, −x, its scales spread over
    /// the lanes of their blocks — is done once per 4 rows. Same integers per block as <see cref="VecDotScalar"/>;
    /// only the float summation order differs.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void MatVec4Avx512(int n, byte* w, long rowBytes, byte* x, float* y)
    {
        float* f16 = Fp16.Table;
        int nb = n / 32;
        byte* w0 = w, w1 = w + rowBytes, w2 = w + 2 * rowBytes, w3 = w + 3 * rowBytes;
        Vector512<float> acc0 = Vector512<float>.Zero, acc1 = Vector512<float>.Zero, acc2 = Vector512<float>.Zero, acc3 = Vector512<float>.Zero;
        // Lanes of blocks b, b + 1 (first vector) and b + 2, b + 3 (second): 8 int32 lanes per block.
        Vector512<int> lanes01 = Vector512.Create(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
        Vector512<int> lanes23 = Vector512.Create(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
        byte* next = w + 4 * rowBytes;
        int b = 0;
        for (; b + 4 <= nb; b += 4)
        {
            byte* xb = x + b * BlockBytes;
            Vector512<sbyte> xa = QuantSimd.Load2x32((sbyte*)(xb + 2), (sbyte*)(xb + BlockBytes + 2));
            Vector512<sbyte> xc = QuantSimd.Load2x32((sbyte*)(xb + 2 * BlockBytes + 2), (sbyte*)(xb + 3 * BlockBytes + 2));
            Vector512<sbyte> negXa = Vector512<sbyte>.Zero - xa, negXc = Vector512<sbyte>.Zero - xc;
            var dx = Vector128.Create(f16[*(ushort*)xb], f16[*(ushort*)(xb + BlockBytes)], f16[*(ushort*)(xb + 2 * BlockBytes)], f16[*(ushort*)(xb + 3 * BlockBytes)]);
            Vector512<float> dxa = QuantSimd.Spread4(dx, lanes01), dxc = QuantSimd.Spread4(dx, lanes23);
            long o = (long)b * BlockBytes;
            // The 4 rows are contiguous, and so is the next group's: fetch it while this one computes (the 4 interleaved
            // row streams defeat the hardware prefetcher, which keeps up with one row read front to back).
            for (int line = 0; line < PrefetchLinesPerStep; line++) Sse.Prefetch0(next + line * 64);
            next += 4 * 4 * BlockBytes;
            acc0 = Step4(w0 + o, xa, negXa, xc, negXc, dxa, dxc, lanes01, lanes23, f16, acc0);
            acc1 = Step4(w1 + o, xa, negXa, xc, negXc, dxa, dxc, lanes01, lanes23, f16, acc1);
            acc2 = Step4(w2 + o, xa, negXa, xc, negXc, dxa, dxc, lanes01, lanes23, f16, acc2);
            acc3 = Step4(w3 + o, xa, negXa, xc, negXc, dxa, dxc, lanes01, lanes23, f16, acc3);
        }
        long tail = (long)b * BlockBytes;
        byte* xt = x + tail;
        y[0] = QuantSimd.HorizontalSum(acc0.GetLower() + acc0.GetUpper() + TailBlocks(w0 + tail, xt, nb - b, f16));
        y[1] = QuantSimd.HorizontalSum(acc1.GetLower() + acc1.GetUpper() + TailBlocks(w1 + tail, xt, nb - b, f16));
        y[2] = QuantSimd.HorizontalSum(acc2.GetLower() + acc2.GetUpper() + TailBlocks(w2 + tail, xt, nb - b, f16));
        y[3] = QuantSimd.HorizontalSum(acc3.GetLower() + acc3.GetUpper() + TailBlocks(w3 + tail, xt, nb - b, f16));
    }

    /// <summary>One row's 4 blocks of <see cref="MatVec4Avx512"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Step4(byte* wb, Vector512<sbyte> xa, Vector512<sbyte> negXa, Vector512<sbyte> xc, Vector512<sbyte> negXc,
                                          Vector512<float> dxa, Vector512<float> dxc, Vector512<int> lanes01, Vector512<int> lanes23, float* f16, Vector512<float> acc)
    {
        Vector512<sbyte> wa = QuantSimd.Load2x32((sbyte*)(wb + 2), (sbyte*)(wb + BlockBytes + 2));
        Vector512<sbyte> wc = QuantSimd.Load2x32((sbyte*)(wb + 2 * BlockBytes + 2), (sbyte*)(wb + 3 * BlockBytes + 2));
        Vector512<short> ones = Vector512.Create((short)1);
        Vector512<int> pa = Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(Avx512BW.Abs(wa),
            Vector512.ConditionalSelect(Vector512.LessThan(wa, Vector512<sbyte>.Zero), negXa, xa)), ones);
        Vector512<int> pc = Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(Avx512BW.Abs(wc),
            Vector512.ConditionalSelect(Vector512.LessThan(wc, Vector512<sbyte>.Zero), negXc, xc)), ones);
        var dw = Vector128.Create(f16[*(ushort*)wb], f16[*(ushort*)(wb + BlockBytes)], f16[*(ushort*)(wb + 2 * BlockBytes)], f16[*(ushort*)(wb + 3 * BlockBytes)]);
        acc = Avx512F.FusedMultiplyAdd(QuantSimd.Spread4(dw, lanes01) * dxa, Avx512F.ConvertToVector512Single(pa), acc);
        return Avx512F.FusedMultiplyAdd(QuantSimd.Spread4(dw, lanes23) * dxc, Avx512F.ConvertToVector512Single(pc), acc);
    }

    /// <summary>The last <paramref name="count"/> (&lt; 4) blocks of one row, one block per 256-bit step.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> TailBlocks(byte* w, byte* x, int count, float* f16)
    {
        Vector256<float> acc = Vector256<float>.Zero;
        for (int k = 0; k < count; k++, w += BlockBytes, x += BlockBytes)
        {
            Vector256<int> p = QuantSimd.DotI8x4(Vector256.Load((sbyte*)(w + 2)), Vector256.Load((sbyte*)(x + 2)));
            acc = Fma.MultiplyAdd(Vector256.Create(f16[*(ushort*)w] * f16[*(ushort*)x]), Avx.ConvertToVector256Single(p), acc);
        }
        return acc;
    }
}
