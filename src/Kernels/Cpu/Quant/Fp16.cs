using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LlavaNative.Kernels.Cpu.Quant;

/// <summary>
/// IEEE binary16 ↔ binary32 conversions, exact in the half → float direction and round-to-nearest-even
/// in the float → half direction (what ggml's <c>GGML_FP32_TO_FP16</c> and F16C's <c>vcvtps2ph</c> with
/// <c>_MM_FROUND_TO_NEAREST_INT</c> do). .NET 10 exposes no F16C intrinsics, so the vector paths rebuild
/// the float bits with integer operations.
/// </summary>
public static unsafe class Fp16
{
    /// <summary>
    /// All 65536 halves expanded to floats (256 KB, 64-byte aligned), for the per-block scales in the
    /// dot-product loops: one load instead of a conversion with a rarely taken branch, and no call
    /// in the loop that would force the vector accumulators to be spilled.
    /// Load it into a local before a loop (<c>float* f16 = Fp16.Table;</c>).
    /// </summary>
    public static readonly float* Table = CreateTable();

    private static float* CreateTable()
    {
        var table = (float*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc(65536 * sizeof(float), 64);
        for (int h = 0; h < 65536; h++) table[h] = ToFloat((ushort)h);
        return table;
    }

    /// <summary>Exact half → float. Normal numbers take the short path: rebias the exponent by 112.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToFloat(ushort h)
    {
        uint exponent = (uint)h & 0x7C00u;
        // exponent field in [1, 30]: a normal number, (h & 0x7FFF) << 13 plus (127 − 15) << 23.
        if (exponent - 0x0400u < 0x7800u)
            return BitConverter.UInt32BitsToSingle((((uint)h & 0x8000u) << 16) | ((((uint)h & 0x7FFFu) << 13) + 0x3800_0000u));
        return ToFloatRare(h);
    }

    private static float ToFloatRare(ushort h)
    {
        uint sign = ((uint)h & 0x8000u) << 16;
        uint mantissa = (uint)h & 0x03FFu;
        if (((uint)h & 0x7C00u) == 0)
        {
            // zero or subnormal: mantissa · 2⁻²⁴, exact in float.
            float magnitude = mantissa * (1.0f / 16777216.0f);
            return BitConverter.UInt32BitsToSingle(sign | BitConverter.SingleToUInt32Bits(magnitude));
        }
        // infinity or NaN: all-ones exponent, the mantissa (and so the NaN payload) shifted up.
        return BitConverter.UInt32BitsToSingle(sign | 0x7F80_0000u | (mantissa << 13));
    }

    /// <summary>Float → half, round to nearest even (overflow → ±inf, NaN → quiet NaN).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort FromFloat(float f) => BitConverter.HalfToUInt16Bits((Half)f);

    /// <summary>Float → half → float: the value a float has after being stored as F16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Round(float f) => ToFloat(FromFloat(f));

    /// <summary>Expands <paramref name="n"/> halves to floats.</summary>
    public static void ToFloatRow(ushort* src, float* dst, int n)
    {
        int i = 0;
        if (Avx512F.IsSupported)
        {
            for (; i + 16 <= n; i += 16)
                Avx512F.Store(dst + i, ToFloat16Lanes(Avx512F.ConvertToVector512UInt32(Vector256.Load(src + i))));
        }
        if (Avx2.IsSupported)
        {
            for (; i + 8 <= n; i += 8)
                Avx.Store(dst + i, ToFloat8Lanes(Avx2.ConvertToVector256Int32(Vector128.Load(src + i)).AsUInt32()));
        }
        for (; i < n; i++) dst[i] = ToFloat(src[i]);
    }

    /// <summary>Rounds <paramref name="n"/> floats to halves (round to nearest even).</summary>
    public static void FromFloatRow(float* src, ushort* dst, int n)
    {
        int i = 0;
        if (Avx2.IsSupported)
        {
            for (; i + 8 <= n; i += 8)
                Vector128.Store(FromFloat8Lanes(Vector256.Load(src + i)), dst + i);
        }
        for (; i < n; i++) dst[i] = FromFloat(src[i]);
    }

    /// <summary>
    /// 16 halves (zero-extended to 32 bits) → 16 floats, exact. Normal numbers: shift the 15 value bits
    /// to float position and add (127 − 15) &lt;&lt; 23 to the exponent. Zero/subnormal lanes are renormalised
    /// by adding 2⁻¹⁴'s exponent and subtracting 2⁻¹⁴ (exact, no denormal arithmetic); inf/NaN lanes get
    /// another 112 on the exponent, reaching 255.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> ToFloat16Lanes(Vector512<uint> h)
    {
        Vector512<uint> nonsign = (h & Vector512.Create(0x7FFFu)) << 13;
        Vector512<uint> exponent = nonsign & Vector512.Create(0x0F80_0000u);
        Vector512<uint> bits = nonsign + Vector512.Create(0x3800_0000u);
        Vector512<uint> sign = (h & Vector512.Create(0x8000u)) << 16;
        Vector512<uint> special = Vector512.Equals(exponent, Vector512.Create(0x0F80_0000u)) | Vector512.Equals(exponent, Vector512<uint>.Zero);
        if (special == Vector512<uint>.Zero)
            return (bits | sign).AsSingle();
        Vector512<uint> infNan = Vector512.Equals(exponent, Vector512.Create(0x0F80_0000u));
        Vector512<uint> tiny = Vector512.Equals(exponent, Vector512<uint>.Zero);
        bits += infNan & Vector512.Create(0x3800_0000u);
        bits += tiny & Vector512.Create(0x0080_0000u);
        Vector512<float> value = bits.AsSingle() - (tiny & Vector512.Create(0x3880_0000u)).AsSingle(); // 2⁻¹⁴
        return (value.AsUInt32() | sign).AsSingle();
    }

    /// <summary>8 halves (zero-extended) → 8 floats, exact; see <see cref="ToFloat16Lanes"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> ToFloat8Lanes(Vector256<uint> h)
    {
        Vector256<uint> nonsign = (h & Vector256.Create(0x7FFFu)) << 13;
        Vector256<uint> exponent = nonsign & Vector256.Create(0x0F80_0000u);
        Vector256<uint> bits = nonsign + Vector256.Create(0x3800_0000u);
        Vector256<uint> sign = (h & Vector256.Create(0x8000u)) << 16;
        Vector256<uint> special = Vector256.Equals(exponent, Vector256.Create(0x0F80_0000u)) | Vector256.Equals(exponent, Vector256<uint>.Zero);
        if (special == Vector256<uint>.Zero)
            return (bits | sign).AsSingle();
        Vector256<uint> infNan = Vector256.Equals(exponent, Vector256.Create(0x0F80_0000u));
        Vector256<uint> tiny = Vector256.Equals(exponent, Vector256<uint>.Zero);
        bits += infNan & Vector256.Create(0x3800_0000u);
        bits += tiny & Vector256.Create(0x0080_0000u);
        Vector256<float> value = bits.AsSingle() - (tiny & Vector256.Create(0x3880_0000u)).AsSingle();
        return (value.AsUInt32() | sign).AsSingle();
    }

    /// <summary>
    /// 8 floats → 8 halves, round to nearest even, bit-identical to <c>vcvtps2ph</c> for finite inputs, ±inf
    /// and overflow; NaN becomes a quiet NaN with the top mantissa bits kept. Works on the float bits:
    /// normal results round the 13 dropped mantissa bits; results below 2⁻¹⁴ are formed by adding 0.5
    /// (which aligns the mantissa at the subnormal half grid and lets the FPU do the even rounding).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<ushort> FromFloat8Lanes(Vector256<float> f)
    {
        Vector256<uint> bits = f.AsUInt32();
        Vector256<uint> sign = bits & Vector256.Create(0x8000_0000u);
        Vector256<uint> abs = bits ^ sign;

        // Normal range: add the rounding bias (0xFFF + the lowest kept bit), then rebias and shift.
        Vector256<uint> odd = (abs >> 13) & Vector256<uint>.One;
        Vector256<uint> normal = (abs + Vector256.Create(0x0000_0FFFu) + odd - Vector256.Create(0x3800_0000u)) >> 13;

        // Subnormal range (|f| < 2⁻¹⁴): |f| + 0.5 puts the half's mantissa in the float's low bits.
        Vector256<uint> subnormal = (abs.AsSingle() + Vector256.Create(0.5f)).AsUInt32() - Vector256.Create(0x3F00_0000u);

        Vector256<uint> isSub = Vector256.LessThan(abs, Vector256.Create(0x3880_0000u));
        Vector256<uint> isOverflow = Vector256.GreaterThanOrEqual(abs, Vector256.Create(0x4780_0000u)); // ≥ 65536 after rounding → inf
        Vector256<uint> isNaN = Vector256.GreaterThan(abs, Vector256.Create(0x7F80_0000u));
        Vector256<uint> result = Vector256.ConditionalSelect(isSub, subnormal, normal);
        result = Vector256.Min(result, Vector256.Create(0x7C00u)) | (isOverflow & Vector256.Create(0x7C00u));
        result = Vector256.ConditionalSelect(isNaN, Vector256.Create(0x7E00u) | ((abs >> 13) & Vector256.Create(0x01FFu)), result);
        result |= sign >> 16;
        return Vector128.Narrow(result.GetLower(), result.GetUpper());
    }
}

/// <summary>bfloat16 ↔ float: the top half of a float's bits, rounded to nearest even (ggml's <c>GGML_FP32_TO_BF16</c>).</summary>
public static unsafe class Bf16
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToFloat(ushort h) => BitConverter.UInt32BitsToSingle((uint)h << 16);

    /// <summary>Round to nearest even; NaN is kept quiet by setting bit 6 (as ggml does).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort FromFloat(float f)
    {
        uint u = BitConverter.SingleToUInt32Bits(f);
        if ((u & 0x7FFF_FFFFu) > 0x7F80_0000u) return (ushort)((u >> 16) | 64);
        return (ushort)((u + (0x7FFFu + ((u >> 16) & 1u))) >> 16);
    }

    public static void ToFloatRow(ushort* src, float* dst, int n)
    {
        int i = 0;
        if (Avx512F.IsSupported)
        {
            for (; i + 16 <= n; i += 16)
                Avx512F.Store(dst + i, (Avx512F.ConvertToVector512UInt32(Vector256.Load(src + i)) << 16).AsSingle());
        }
        if (Avx2.IsSupported)
        {
            for (; i + 8 <= n; i += 8)
                Avx.Store(dst + i, (Avx2.ConvertToVector256Int32(Vector128.Load(src + i)).AsUInt32() << 16).AsSingle());
        }
        for (; i < n; i++) dst[i] = ToFloat(src[i]);
    }

    public static void FromFloatRow(float* src, ushort* dst, int n)
    {
        int i = 0;
        if (Avx2.IsSupported)
        {
            for (; i + 8 <= n; i += 8)
            {
                Vector256<uint> u = Vector256.Load(src + i).AsUInt32();
                Vector256<uint> rounded = (u + Vector256.Create(0x7FFFu) + ((u >> 16) & Vector256<uint>.One)) >> 16;
                Vector256<uint> nan = Vector256.GreaterThan(u & Vector256.Create(0x7FFF_FFFFu), Vector256.Create(0x7F80_0000u));
                Vector256<uint> result = Vector256.ConditionalSelect(nan, (u >> 16) | Vector256.Create(64u), rounded);
                Vector128.Store(Vector128.Narrow(result.GetLower(), result.GetUpper()), dst + i);
            }
        }
        for (; i < n; i++) dst[i] = FromFloat(src[i]);
    }
}
