using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LlavaNative.Kernels.Cpu.Quant;

/// <summary>
/// Integer building blocks shared by the quantized dot products (the equivalents of ggml's
/// <c>mul_sum_i8_pairs_float</c>, <c>hsum_float_8</c>, …). <c>vpmaddubsw</c> multiplies unsigned by signed
/// bytes, so a signed·signed product is formed as |x| · (y with x's sign); pairs of 16-bit products
/// then widen to 32 bits with <c>vpmaddwd</c> against ones.
/// </summary>
internal static class QuantSimd
{
    /// <summary>Which vector width the dispatching tables pick on this machine.</summary>
    public static bool UseAvx512 => Avx512BW.IsSupported && Avx512F.IsSupported && Avx512DQ.IsSupported && Fma.IsSupported;

    public static bool UseAvx2 => Avx2.IsSupported && Fma.IsSupported;

    /// <summary>Σ over groups of 4 adjacent bytes of x·y (signed·signed), as 8 int32 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> DotI8x4(Vector256<sbyte> x, Vector256<sbyte> y)
    {
        Vector256<byte> ax = Avx2.Sign(x, x).AsByte();
        Vector256<sbyte> sy = Avx2.Sign(y, x);
        return Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(ax, sy), Vector256.Create((short)1));
    }

    /// <summary>Σ over groups of 4 adjacent bytes of u·y (unsigned·signed, u ≤ 127 or products that fit int16 pairs), as 8 int32 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> DotU8x4(Vector256<byte> u, Vector256<sbyte> y)
        => Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u, y), Vector256.Create((short)1));

    /// <summary>Σ over groups of 4 adjacent bytes of u·y (unsigned·signed), as 16 int32 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<int> DotU8x4(Vector512<byte> u, Vector512<sbyte> y)
        => Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(u, y), Vector512.Create((short)1));

    /// <summary>Σ over groups of 4 adjacent bytes of x·y (signed·signed), as 16 int32 lanes (AVX-512 has no vpsignb).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<int> DotI8x4(Vector512<sbyte> x, Vector512<sbyte> y)
    {
        Vector512<byte> ax = Avx512BW.Abs(x);
        Vector512<sbyte> sy = Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512<sbyte>.Zero), Vector512<sbyte>.Zero - y, y);
        return DotU8x4(ax, sy);
    }

    /// <summary><paramref name="lo"/> in bits 0–255, <paramref name="hi"/> in 256–511 (one vinserti64x4).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Combine<T>(Vector256<T> lo, Vector256<T> hi)
        => Avx512F.InsertVector256(lo.AsByte().ToVector512Unsafe(), hi.AsByte(), 1).As<byte, T>();

    /// <summary>Two 32-byte pieces at <paramref name="a"/> and <paramref name="b"/> as one 512-bit vector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe Vector512<sbyte> Load2x32(sbyte* a, sbyte* b) => Combine(Vector256.Load(a), Vector256.Load(b));

    /// <summary>Four 16-byte pieces at <paramref name="p"/>, p + stride, p + 2·stride, p + 3·stride as one 512-bit vector (piece k in bytes 16k..16k+15).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe Vector512<byte> Load4x16(byte* p, int stride)
        => Combine(Vector256.Create(Vector128.Load(p), Vector128.Load(p + stride)),
                   Vector256.Create(Vector128.Load(p + 2 * stride), Vector128.Load(p + 3 * stride)));

    /// <summary>Four floats spread over the 16 lanes by <paramref name="lanes"/> (a vpermps index vector), e.g. each repeated 4 times.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Spread4(float a, float b, float c, float d, Vector512<int> lanes) => Spread4(Vector128.Create(a, b, c, d), lanes);

    /// <summary>The 4 floats of <paramref name="four"/> spread over the 16 lanes by <paramref name="lanes"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Spread4(Vector128<float> four, Vector512<int> lanes)
        => Avx512F.PermuteVar16x32(four.ToVector256Unsafe().ToVector512Unsafe(), lanes);

    /// <summary>Lanes 0–7 = <paramref name="lo"/>, lanes 8–15 = <paramref name="hi"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Splat2(float lo, float hi) => Combine(Vector256.Create(lo), Vector256.Create(hi));

    /// <summary>
    /// 32 4-bit values of a legacy block (16 bytes at <paramref name="qs"/>) as bytes in element order:
    /// low nibbles are elements 0–15, high nibbles 16–31.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe Vector256<byte> Nibbles32(byte* qs)
    {
        Vector128<byte> t = Vector128.Load(qs);
        return Vector256.Create(t, (t.AsUInt16() >> 4).AsByte()) & Vector256.Create((byte)0x0F);
    }

    /// <summary>
    /// Two legacy blocks' nibbles (16 bytes each) in element order, block a in bytes 0–31: [a lo | b lo]
    /// and its 4-bit shift form [a lo, b lo, a hi, b hi] in 128-bit lanes; one qword permute restores
    /// [a lo, a hi, b lo, b hi].
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe Vector512<byte> Nibbles2x32(byte* a, byte* b)
    {
        Vector256<byte> t = Avx2.InsertVector128(Vector128.Load(a).ToVector256Unsafe(), Vector128.Load(b), 1);
        Vector512<byte> both = Combine(t, (t.AsUInt16() >> 4).AsByte());
        Vector512<ulong> ordered = Avx512F.PermuteVar8x64(both.AsUInt64(), Vector512.Create(0UL, 1UL, 4UL, 5UL, 2UL, 3UL, 6UL, 7UL));
        return ordered.AsByte() & Vector512.Create((byte)0x0F);
    }

    /// <summary>Bit i of <paramref name="bits"/> → byte i = 0xFF or 0x00 (ggml's <c>bytes_from_bits_32</c>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> BytesFromBits32(uint bits)
    {
        Vector256<byte> spread = Avx2.Shuffle(Vector256.Create(bits).AsByte(),
            Vector256.Create(0x0000000000000000UL, 0x0101010101010101UL, 0x0202020202020202UL, 0x0303030303030303UL).AsByte());
        spread |= Vector256.Create(0x7FBFDFEFF7FBFDFEUL).AsByte(); // every bit but bit k in byte k
        return Vector256.Equals(spread, Vector256<byte>.AllBitsSet);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float HorizontalSum(Vector256<float> v)
    {
        Vector128<float> s = v.GetLower() + v.GetUpper();
        s += Sse.MoveHighToLow(s, s);
        s += Sse3.MoveHighAndDuplicate(s);
        return s.ToScalar();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float HorizontalSum(Vector512<float> v) => HorizontalSum(v.GetLower() + v.GetUpper());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int HorizontalSum(Vector256<int> v) => Vector256.Sum(v);
}
