using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LlavaNative.Kernels.Cpu.Quant;

/// <summary>
/// Prefill micro-kernels for the 32-element block types with Q8_0 activations (Q4_0, Q5_0, Q8_0, IQ4_NL): a tile
/// of up to 4 weight rows × 4 tokens. Each weight block is unpacked once and used for 4 tokens, each
/// activation block loaded once and used for 4 rows — in <see cref="QuantKernels.VecDot"/> both are redone
/// for every (row, token) pair. Per block the integer sums are exactly ggml's (Σ q_w·q_x), scaled by
/// d_w·d_x in float; only the float summation order differs from <c>ggml_vec_dot_*</c>.
/// AVX-512: two blocks per 512-bit step, 4 rows × 4 tokens; AVX2 (16 registers): one block per step, 2 rows × 4
/// tokens. Rows/tokens beyond the tile's count repeat the last one and are not stored.
/// </summary>
internal static unsafe class LegacyTileKernels
{
    /// <summary>Decodes two consecutive blocks of a weight row into 64 unsigned codes (block a in bytes 0–31).</summary>
    internal interface IUnsignedBlocks
    {
        static abstract int BlockBytes { get; }
        /// <summary>Value subtracted from every code (8 for Q4_0, 16 for Q5_0).</summary>
        static abstract byte Offset { get; }
        static abstract Vector512<byte> Decode2(byte* blockA, byte* blockB);
        /// <summary>One block's 32 unsigned codes in element order (AVX2).</summary>
        static abstract Vector256<byte> Decode1(byte* block);
    }

    internal struct Q4_0Blocks : IUnsignedBlocks
    {
        public static int BlockBytes => 18;
        public static byte Offset => 8;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<byte> Decode2(byte* a, byte* b) => QuantSimd.Nibbles2x32(a + 2, b + 2);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<byte> Decode1(byte* a) => QuantSimd.Nibbles32(a + 2);
    }

    internal struct Q5_0Blocks : IUnsignedBlocks
    {
        public static int BlockBytes => 22;
        public static byte Offset => 16;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<byte> Decode2(byte* a, byte* b)
        {
            Vector512<byte> high = QuantSimd.Combine(QuantSimd.BytesFromBits32(*(uint*)(a + 2)), QuantSimd.BytesFromBits32(*(uint*)(b + 2)));
            return QuantSimd.Nibbles2x32(a + 6, b + 6) | (high & Vector512.Create((byte)16));
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<byte> Decode1(byte* a)
            => QuantSimd.Nibbles32(a + 6) | (QuantSimd.BytesFromBits32(*(uint*)(a + 2)) & Vector256.Create((byte)16));
    }

    /// <summary>Decodes weight blocks into signed codes (Q8_0: the bytes; IQ4_NL: table values).</summary>
    internal interface ISignedBlocks
    {
        static abstract int BlockBytes { get; }
        static abstract Vector512<sbyte> Decode2(byte* blockA, byte* blockB);
        static abstract Vector256<sbyte> Decode1(byte* block);
    }

    internal struct Q8_0Blocks : ISignedBlocks
    {
        public static int BlockBytes => Q8_0Kernels.BlockBytes;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<sbyte> Decode2(byte* a, byte* b) => QuantSimd.Load2x32((sbyte*)(a + 2), (sbyte*)(b + 2));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<sbyte> Decode1(byte* a) => Vector256.Load((sbyte*)(a + 2));
    }

    internal struct IQ4_NLBlocks : ISignedBlocks
    {
        public static int BlockBytes => IQ4_NLKernels.BlockBytes;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<sbyte> Decode2(byte* a, byte* b)
        {
            Vector128<sbyte> table = Vector128.Create(IQ4_NLKernels.Values);
            Vector256<sbyte> half = Vector256.Create(table, table);
            return Avx512BW.Shuffle(Vector512.Create(half, half), QuantSimd.Nibbles2x32(a + 2, b + 2).AsSByte());
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<sbyte> Decode1(byte* a)
        {
            Vector128<sbyte> table = Vector128.Create(IQ4_NLKernels.Values);
            return Avx2.Shuffle(Vector256.Create(table, table), QuantSimd.Nibbles32(a + 2).AsSByte());
        }
    }

    private const int XBytes = ActivationQuantizers.Q8_0BlockBytes;

    /// <summary>y[t·yStride + r] = row r · token t for r &lt; rows ≤ 4, t &lt; tokens ≤ 4 (codes − offset, Q8_0 activations).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void TileUnsignedAvx512<TBlocks>(int n, byte* w, long wStride, byte* x, long xStride, float* y, long yStride, int rows, int tokens)
        where TBlocks : struct, IUnsignedBlocks
    {
        float* f16 = Fp16.Table;
        int bb = TBlocks.BlockBytes;
        byte* w0 = w, w1 = w + Math.Min(1, rows - 1) * wStride, w2 = w + Math.Min(2, rows - 1) * wStride, w3 = w + Math.Min(3, rows - 1) * wStride;
        byte* x0 = x, x1 = x + Math.Min(1, tokens - 1) * xStride, x2 = x + Math.Min(2, tokens - 1) * xStride, x3 = x + Math.Min(3, tokens - 1) * xStride;
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default;
        Vector512<float> a10 = default, a11 = default, a12 = default, a13 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default;
        Vector512<float> a30 = default, a31 = default, a32 = default, a33 = default;
        Vector512<byte> offset = Vector512.Create(TBlocks.Offset);
        int nb = n / 32;
        for (int b = 0; b < nb; b += 2)
        {
            // An odd last block pairs with itself; its second copy gets scale 0.
            int next = b + 1 < nb ? 1 : 0;
            float keep = next;
            long ow = (long)b * bb, owNext = ow + next * bb;
            long ox = (long)b * XBytes, oxNext = ox + next * XBytes;

            Vector512<byte> u0 = TBlocks.Decode2(w0 + ow, w0 + owNext), u1 = TBlocks.Decode2(w1 + ow, w1 + owNext);
            Vector512<byte> u2 = TBlocks.Decode2(w2 + ow, w2 + owNext), u3 = TBlocks.Decode2(w3 + ow, w3 + owNext);
            Vector512<float> d0 = QuantSimd.Splat2(f16[*(ushort*)(w0 + ow)], keep * f16[*(ushort*)(w0 + owNext)]);
            Vector512<float> d1 = QuantSimd.Splat2(f16[*(ushort*)(w1 + ow)], keep * f16[*(ushort*)(w1 + owNext)]);
            Vector512<float> d2 = QuantSimd.Splat2(f16[*(ushort*)(w2 + ow)], keep * f16[*(ushort*)(w2 + owNext)]);
            Vector512<float> d3 = QuantSimd.Splat2(f16[*(ushort*)(w3 + ow)], keep * f16[*(ushort*)(w3 + owNext)]);

            Token(x0 + ox, x0 + oxNext, f16, offset, u0, u1, u2, u3, d0, d1, d2, d3, ref a00, ref a10, ref a20, ref a30);
            Token(x1 + ox, x1 + oxNext, f16, offset, u0, u1, u2, u3, d0, d1, d2, d3, ref a01, ref a11, ref a21, ref a31);
            Token(x2 + ox, x2 + oxNext, f16, offset, u0, u1, u2, u3, d0, d1, d2, d3, ref a02, ref a12, ref a22, ref a32);
            Token(x3 + ox, x3 + oxNext, f16, offset, u0, u1, u2, u3, d0, d1, d2, d3, ref a03, ref a13, ref a23, ref a33);
        }
        Store(y, yStride, rows, tokens, a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33);
    }

    /// <summary>One token against the 4 unpacked rows: Σ (u − offset)·x per 4-byte group, scaled, accumulated.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Token(byte* xa, byte* xb, float* f16, Vector512<byte> offset,
        Vector512<byte> u0, Vector512<byte> u1, Vector512<byte> u2, Vector512<byte> u3,
        Vector512<float> d0, Vector512<float> d1, Vector512<float> d2, Vector512<float> d3,
        ref Vector512<float> a0, ref Vector512<float> a1, ref Vector512<float> a2, ref Vector512<float> a3)
    {
        Vector512<sbyte> yv = QuantSimd.Load2x32((sbyte*)(xa + 2), (sbyte*)(xb + 2));
        Vector512<short> correction = Avx512BW.MultiplyAddAdjacent(offset, yv);
        Vector512<float> dx = QuantSimd.Splat2(f16[*(ushort*)xa], f16[*(ushort*)xb]);
        Vector512<short> ones = Vector512.Create((short)1);
        a0 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(u0, yv) - correction, ones)), d0 * dx, a0);
        a1 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(u1, yv) - correction, ones)), d1 * dx, a1);
        a2 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(u2, yv) - correction, ones)), d2 * dx, a2);
        a3 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(u3, yv) - correction, ones)), d3 * dx, a3);
    }

    /// <summary>Signed codes (Q8_0, IQ4_NL): the products use |w| and x with w's sign (masked negate).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void TileSignedAvx512<TBlocks>(int n, byte* w, long wStride, byte* x, long xStride, float* y, long yStride, int rows, int tokens)
        where TBlocks : struct, ISignedBlocks
    {
        float* f16 = Fp16.Table;
        int bb = TBlocks.BlockBytes;
        byte* w0 = w, w1 = w + Math.Min(1, rows - 1) * wStride, w2 = w + Math.Min(2, rows - 1) * wStride, w3 = w + Math.Min(3, rows - 1) * wStride;
        byte* x0 = x, x1 = x + Math.Min(1, tokens - 1) * xStride, x2 = x + Math.Min(2, tokens - 1) * xStride, x3 = x + Math.Min(3, tokens - 1) * xStride;
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default;
        Vector512<float> a10 = default, a11 = default, a12 = default, a13 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default;
        Vector512<float> a30 = default, a31 = default, a32 = default, a33 = default;
        int nb = n / 32;
        for (int b = 0; b < nb; b += 2)
        {
            int next = b + 1 < nb ? 1 : 0;
            float keep = next;
            long ow = (long)b * bb, owNext = ow + next * bb;
            long ox = (long)b * XBytes, oxNext = ox + next * XBytes;

            Vector512<sbyte> q0 = TBlocks.Decode2(w0 + ow, w0 + owNext), q1 = TBlocks.Decode2(w1 + ow, w1 + owNext);
            Vector512<sbyte> q2 = TBlocks.Decode2(w2 + ow, w2 + owNext), q3 = TBlocks.Decode2(w3 + ow, w3 + owNext);
            Vector512<float> d0 = QuantSimd.Splat2(f16[*(ushort*)(w0 + ow)], keep * f16[*(ushort*)(w0 + owNext)]);
            Vector512<float> d1 = QuantSimd.Splat2(f16[*(ushort*)(w1 + ow)], keep * f16[*(ushort*)(w1 + owNext)]);
            Vector512<float> d2 = QuantSimd.Splat2(f16[*(ushort*)(w2 + ow)], keep * f16[*(ushort*)(w2 + owNext)]);
            Vector512<float> d3 = QuantSimd.Splat2(f16[*(ushort*)(w3 + ow)], keep * f16[*(ushort*)(w3 + owNext)]);

            TokenSigned(x0 + ox, x0 + oxNext, f16, q0, q1, q2, q3, d0, d1, d2, d3, ref a00, ref a10, ref a20, ref a30);
            TokenSigned(x1 + ox, x1 + oxNext, f16, q0, q1, q2, q3, d0, d1, d2, d3, ref a01, ref a11, ref a21, ref a31);
            TokenSigned(x2 + ox, x2 + oxNext, f16, q0, q1, q2, q3, d0, d1, d2, d3, ref a02, ref a12, ref a22, ref a32);
            TokenSigned(x3 + ox, x3 + oxNext, f16, q0, q1, q2, q3, d0, d1, d2, d3, ref a03, ref a13, ref a23, ref a33);
        }
        Store(y, yStride, rows, tokens, a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void TokenSigned(byte* xa, byte* xb, float* f16,
        Vector512<sbyte> q0, Vector512<sbyte> q1, Vector512<sbyte> q2, Vector512<sbyte> q3,
        Vector512<float> d0, Vector512<float> d1, Vector512<float> d2, Vector512<float> d3,
        ref Vector512<float> a0, ref Vector512<float> a1, ref Vector512<float> a2, ref Vector512<float> a3)
    {
        Vector512<sbyte> yv = QuantSimd.Load2x32((sbyte*)(xa + 2), (sbyte*)(xb + 2));
        Vector512<float> dx = QuantSimd.Splat2(f16[*(ushort*)xa], f16[*(ushort*)xb]);
        a0 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(QuantSimd.DotI8x4(q0, yv)), d0 * dx, a0);
        a1 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(QuantSimd.DotI8x4(q1, yv)), d1 * dx, a1);
        a2 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(QuantSimd.DotI8x4(q2, yv)), d2 * dx, a2);
        a3 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(QuantSimd.DotI8x4(q3, yv)), d3 * dx, a3);
    }

    // ------------------------------------------------------------------ AVX2 (16 vector registers: 2 rows × 4 tokens)

    /// <summary>AVX2 form of <see cref="TileUnsignedAvx512{TBlocks}"/>: one block per step, rows ≤ 2, tokens ≤ 4.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void TileUnsignedAvx2<TBlocks>(int n, byte* w, long wStride, byte* x, long xStride, float* y, long yStride, int rows, int tokens)
        where TBlocks : struct, IUnsignedBlocks
    {
        float* f16 = Fp16.Table;
        int bb = TBlocks.BlockBytes;
        byte* w0 = w, w1 = w + Math.Min(1, rows - 1) * wStride;
        byte* x0 = x, x1 = x + Math.Min(1, tokens - 1) * xStride, x2 = x + Math.Min(2, tokens - 1) * xStride, x3 = x + Math.Min(3, tokens - 1) * xStride;
        Vector256<float> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default;
        Vector256<byte> offset = Vector256.Create(TBlocks.Offset);
        for (int b = 0; b < n / 32; b++)
        {
            long ow = (long)b * bb, ox = (long)b * XBytes;
            Vector256<byte> u0 = TBlocks.Decode1(w0 + ow), u1 = TBlocks.Decode1(w1 + ow);
            float d0 = f16[*(ushort*)(w0 + ow)], d1 = f16[*(ushort*)(w1 + ow)];
            TokenAvx2(x0 + ox, f16, offset, u0, u1, d0, d1, ref a00, ref a10);
            TokenAvx2(x1 + ox, f16, offset, u0, u1, d0, d1, ref a01, ref a11);
            TokenAvx2(x2 + ox, f16, offset, u0, u1, d0, d1, ref a02, ref a12);
            TokenAvx2(x3 + ox, f16, offset, u0, u1, d0, d1, ref a03, ref a13);
        }
        StoreAvx2(y, yStride, rows, tokens, a00, a01, a02, a03, a10, a11, a12, a13);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void TokenAvx2(byte* xb, float* f16, Vector256<byte> offset, Vector256<byte> u0, Vector256<byte> u1, float d0, float d1,
        ref Vector256<float> a0, ref Vector256<float> a1)
    {
        Vector256<sbyte> yv = Vector256.Load((sbyte*)(xb + 2));
        Vector256<short> correction = Avx2.MultiplyAddAdjacent(offset, yv);
        float dx = f16[*(ushort*)xb];
        Vector256<short> ones = Vector256.Create((short)1);
        a0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u0, yv) - correction, ones)), Vector256.Create(d0 * dx), a0);
        a1 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u1, yv) - correction, ones)), Vector256.Create(d1 * dx), a1);
    }

    /// <summary>AVX2 form of <see cref="TileSignedAvx512{TBlocks}"/> (vpsignb is available here): rows ≤ 2, tokens ≤ 4.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void TileSignedAvx2<TBlocks>(int n, byte* w, long wStride, byte* x, long xStride, float* y, long yStride, int rows, int tokens)
        where TBlocks : struct, ISignedBlocks
    {
        float* f16 = Fp16.Table;
        int bb = TBlocks.BlockBytes;
        byte* w0 = w, w1 = w + Math.Min(1, rows - 1) * wStride;
        byte* x0 = x, x1 = x + Math.Min(1, tokens - 1) * xStride, x2 = x + Math.Min(2, tokens - 1) * xStride, x3 = x + Math.Min(3, tokens - 1) * xStride;
        Vector256<float> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default;
        for (int b = 0; b < n / 32; b++)
        {
            long ow = (long)b * bb, ox = (long)b * XBytes;
            Vector256<sbyte> q0 = TBlocks.Decode1(w0 + ow), q1 = TBlocks.Decode1(w1 + ow);
            Vector256<byte> abs0 = Avx2.Sign(q0, q0).AsByte(), abs1 = Avx2.Sign(q1, q1).AsByte();
            float d0 = f16[*(ushort*)(w0 + ow)], d1 = f16[*(ushort*)(w1 + ow)];
            TokenSignedAvx2(x0 + ox, f16, q0, q1, abs0, abs1, d0, d1, ref a00, ref a10);
            TokenSignedAvx2(x1 + ox, f16, q0, q1, abs0, abs1, d0, d1, ref a01, ref a11);
            TokenSignedAvx2(x2 + ox, f16, q0, q1, abs0, abs1, d0, d1, ref a02, ref a12);
            TokenSignedAvx2(x3 + ox, f16, q0, q1, abs0, abs1, d0, d1, ref a03, ref a13);
        }
        StoreAvx2(y, yStride, rows, tokens, a00, a01, a02, a03, a10, a11, a12, a13);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void TokenSignedAvx2(byte* xb, float* f16, Vector256<sbyte> q0, Vector256<sbyte> q1, Vector256<byte> abs0, Vector256<byte> abs1,
        float d0, float d1, ref Vector256<float> a0, ref Vector256<float> a1)
    {
        Vector256<sbyte> yv = Vector256.Load((sbyte*)(xb + 2));
        float dx = f16[*(ushort*)xb];
        Vector256<short> ones = Vector256.Create((short)1);
        a0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(abs0, Avx2.Sign(yv, q0)), ones)), Vector256.Create(d0 * dx), a0);
        a1 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(abs1, Avx2.Sign(yv, q1)), ones)), Vector256.Create(d1 * dx), a1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void StoreAvx2(float* y, long yStride, int rows, int tokens,
        Vector256<float> a00, Vector256<float> a01, Vector256<float> a02, Vector256<float> a03,
        Vector256<float> a10, Vector256<float> a11, Vector256<float> a12, Vector256<float> a13)
    {
        Put(y, yStride, rows, tokens, 0, 0, a00); Put(y, yStride, rows, tokens, 0, 1, a01); Put(y, yStride, rows, tokens, 0, 2, a02); Put(y, yStride, rows, tokens, 0, 3, a03);
        Put(y, yStride, rows, tokens, 1, 0, a10); Put(y, yStride, rows, tokens, 1, 1, a11); Put(y, yStride, rows, tokens, 1, 2, a12); Put(y, yStride, rows, tokens, 1, 3, a13);
    }

    /// <summary>Reduces the 16 accumulators (row r, token t) and stores the valid ones.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Store(float* y, long yStride, int rows, int tokens,
        Vector512<float> a00, Vector512<float> a01, Vector512<float> a02, Vector512<float> a03,
        Vector512<float> a10, Vector512<float> a11, Vector512<float> a12, Vector512<float> a13,
        Vector512<float> a20, Vector512<float> a21, Vector512<float> a22, Vector512<float> a23,
        Vector512<float> a30, Vector512<float> a31, Vector512<float> a32, Vector512<float> a33)
    {
        Put(y, yStride, rows, tokens, 0, 0, a00); Put(y, yStride, rows, tokens, 0, 1, a01); Put(y, yStride, rows, tokens, 0, 2, a02); Put(y, yStride, rows, tokens, 0, 3, a03);
        Put(y, yStride, rows, tokens, 1, 0, a10); Put(y, yStride, rows, tokens, 1, 1, a11); Put(y, yStride, rows, tokens, 1, 2, a12); Put(y, yStride, rows, tokens, 1, 3, a13);
        Put(y, yStride, rows, tokens, 2, 0, a20); Put(y, yStride, rows, tokens, 2, 1, a21); Put(y, yStride, rows, tokens, 2, 2, a22); Put(y, yStride, rows, tokens, 2, 3, a23);
        Put(y, yStride, rows, tokens, 3, 0, a30); Put(y, yStride, rows, tokens, 3, 1, a31); Put(y, yStride, rows, tokens, 3, 2, a32); Put(y, yStride, rows, tokens, 3, 3, a33);
    }

    /// <summary>y[t·yStride + r] = the lanes' sum, when (r, t) is inside the tile.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Put(float* y, long yStride, int rows, int tokens, int r, int t, Vector512<float> acc)
    {
        if (r < rows && t < tokens) y[t * yStride + r] = QuantSimd.HorizontalSum(acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Put(float* y, long yStride, int rows, int tokens, int r, int t, Vector256<float> acc)
    {
        if (r < rows && t < tokens) y[t * yStride + r] = QuantSimd.HorizontalSum(acc);
    }
}
