using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using LlavaNative.Kernels.Tensors;

namespace LlavaNative.Kernels.Cpu.Quant;

/// <summary>
/// Conversion of float activation rows into the dot-product encodings, matching what ggml's CPU backend
/// executes on x86 with AVX2/AVX-512 (<c>ggml-cpu/arch/x86/quants.c</c>, <c>ggml-cpu.c</c>):
/// <list type="bullet">
/// <item>Q8_0 / Q8_1: d = amax/127, multiplier 127/amax, round half to <b>even</b> (<c>_mm256_round_ps</c>
///   with <c>_MM_ROUND_NEAREST</c>) — not the <c>roundf</c> (half away from zero) and 1/d multiplier of
///   <c>quantize_row_q8_0_ref</c>. Q8_1's s = fp16(d · Σq).</item>
/// <item>Q8_K: the reference algorithm on every ISA (x86 calls <c>quantize_row_q8_K_ref</c>): scale −127/max
///   where max is the signed value of largest magnitude (first one on ties), nearest-even rounding,
///   clamp at 127, bsums per 16.</item>
/// <item>F16: round to nearest even (<c>vcvtps2ph</c>). BF16: round to nearest even, NaN kept quiet.</item>
/// </list>
/// The scalar functions are the references; the vector ones must produce identical bytes.
/// </summary>
public static unsafe class ActivationQuantizers
{
    public const int Q8_0BlockBytes = 34;
    public const int Q8_1BlockBytes = 36;
    public const int Q8_KBlockBytes = 292;

    public static ActivationQuantizer Q8_0 => new() { Type = TensorType.Q8_0, QuantizeRow = QuantSimd.UseAvx2 ? &QuantizeQ8_0Avx2 : &QuantizeQ8_0Scalar };
    public static ActivationQuantizer Q8_1 => new() { Type = TensorType.Q8_1, QuantizeRow = QuantSimd.UseAvx2 ? &QuantizeQ8_1Avx2 : &QuantizeQ8_1Scalar };
    public static ActivationQuantizer Q8_K => new() { Type = TensorType.Q8_K, QuantizeRow = QuantSimd.UseAvx2 ? &QuantizeQ8_KAvx2 : &QuantizeQ8_KScalar };
    public static ActivationQuantizer F16 => new() { Type = TensorType.F16, QuantizeRow = &QuantizeF16 };
    public static ActivationQuantizer BF16 => new() { Type = TensorType.BF16, QuantizeRow = &QuantizeBF16 };

    /// <summary>F16 rounding, stored expanded as F32 (the activation layout of the SIMD F16 kernels).</summary>
    public static ActivationQuantizer F16RoundedF32 => new() { Type = TensorType.F32, QuantizeRow = &RoundToF16AsF32 };

    public static ActivationQuantizer ScalarQ8_0 => new() { Type = TensorType.Q8_0, QuantizeRow = &QuantizeQ8_0Scalar };
    public static ActivationQuantizer ScalarQ8_1 => new() { Type = TensorType.Q8_1, QuantizeRow = &QuantizeQ8_1Scalar };
    public static ActivationQuantizer ScalarQ8_K => new() { Type = TensorType.Q8_K, QuantizeRow = &QuantizeQ8_KScalar };
    public static ActivationQuantizer ScalarF16 => new() { Type = TensorType.F16, QuantizeRow = &QuantizeF16Scalar };
    public static ActivationQuantizer ScalarBF16 => new() { Type = TensorType.BF16, QuantizeRow = &QuantizeBF16Scalar };

    // ---------------------------------------------------------------- Q8_0 / Q8_1

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void QuantizeQ8_0Scalar(float* x, byte* y, int n)
    {
        for (int b = 0; b < n / 32; b++, x += 32, y += Q8_0BlockBytes)
        {
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = MathF.Max(amax, MathF.Abs(x[j]));
            float d = amax / 127f;
            float id = amax != 0 ? 127f / amax : 0f;
            *(ushort*)y = Fp16.FromFloat(d);
            sbyte* q = (sbyte*)(y + 2);
            for (int j = 0; j < 32; j++) q[j] = (sbyte)(int)MathF.Round(x[j] * id, MidpointRounding.ToEven);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void QuantizeQ8_1Scalar(float* x, byte* y, int n)
    {
        for (int b = 0; b < n / 32; b++, x += 32, y += Q8_1BlockBytes)
        {
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = MathF.Max(amax, MathF.Abs(x[j]));
            float d = amax / 127f;
            float id = amax != 0 ? 127f / amax : 0f;
            *(ushort*)y = Fp16.FromFloat(d);
            sbyte* q = (sbyte*)(y + 4);
            int sum = 0;
            for (int j = 0; j < 32; j++)
            {
                int v = (int)MathF.Round(x[j] * id, MidpointRounding.ToEven);
                q[j] = (sbyte)v;
                sum += v;
            }
            *(ushort*)(y + 2) = Fp16.FromFloat(d * sum);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<sbyte> QuantizeBlock32Avx2(float* x, out float d)
    {
        Vector256<float> v0 = Vector256.Load(x), v1 = Vector256.Load(x + 8), v2 = Vector256.Load(x + 16), v3 = Vector256.Load(x + 24);
        Vector256<float> maxAbs = Vector256.Max(Vector256.Max(Vector256.Abs(v0), Vector256.Abs(v1)), Vector256.Max(Vector256.Abs(v2), Vector256.Abs(v3)));
        float amax = HorizontalMax(maxAbs);
        d = amax / 127f;
        Vector256<float> mul = Vector256.Create(amax != 0 ? 127f / amax : 0f);
        Vector256<int> i0 = Avx.ConvertToVector256Int32(Avx.RoundToNearestInteger(v0 * mul));
        Vector256<int> i1 = Avx.ConvertToVector256Int32(Avx.RoundToNearestInteger(v1 * mul));
        Vector256<int> i2 = Avx.ConvertToVector256Int32(Avx.RoundToNearestInteger(v2 * mul));
        Vector256<int> i3 = Avx.ConvertToVector256Int32(Avx.RoundToNearestInteger(v3 * mul));
        // packs work per 128-bit lane; the final permute restores element order.
        Vector256<short> s01 = Avx2.PackSignedSaturate(i0, i1);
        Vector256<short> s23 = Avx2.PackSignedSaturate(i2, i3);
        Vector256<sbyte> b = Avx2.PackSignedSaturate(s01, s23);
        return Avx2.PermuteVar8x32(b.AsInt32(), Vector256.Create(0, 4, 1, 5, 2, 6, 3, 7)).AsSByte();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float HorizontalMax(Vector256<float> v)
    {
        Vector128<float> m4 = Vector128.Max(v.GetLower(), v.GetUpper());
        m4 = Vector128.Max(m4, Sse.MoveHighToLow(m4, m4));
        m4 = Vector128.Max(m4, Sse3.MoveHighAndDuplicate(m4));
        return m4.ToScalar();
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void QuantizeQ8_0Avx2(float* x, byte* y, int n)
    {
        for (int b = 0; b < n / 32; b++, x += 32, y += Q8_0BlockBytes)
        {
            Vector256<sbyte> q = QuantizeBlock32Avx2(x, out float d);
            *(ushort*)y = Fp16.FromFloat(d);
            Vector256.Store(q, (sbyte*)(y + 2));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void QuantizeQ8_1Avx2(float* x, byte* y, int n)
    {
        for (int b = 0; b < n / 32; b++, x += 32, y += Q8_1BlockBytes)
        {
            Vector256<sbyte> q = QuantizeBlock32Avx2(x, out float d);
            int sum = Vector256.Sum(Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Vector256.Create((byte)1), q), Vector256.Create((short)1)));
            *(ushort*)y = Fp16.FromFloat(d);
            *(ushort*)(y + 2) = Fp16.FromFloat(d * sum);
            Vector256.Store(q, (sbyte*)(y + 4));
        }
    }

    // ---------------------------------------------------------------- Q8_K

    /// <summary>ggml's <c>nearest_int</c>: round half to even, valid for |v| ≤ 2²².</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int NearestInt(float v)
    {
        float t = v + 12582912f;
        return (int)(BitConverter.SingleToUInt32Bits(t) & 0x007FFFFF) - 0x00400000;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void QuantizeQ8_KScalar(float* x, byte* y, int n)
    {
        for (int b = 0; b < n / 256; b++, x += 256, y += Q8_KBlockBytes)
        {
            float max = 0, amax = 0;
            for (int j = 0; j < 256; j++)
            {
                float ax = MathF.Abs(x[j]);
                if (ax > amax) { amax = ax; max = x[j]; }
            }
            sbyte* q = (sbyte*)(y + 4);
            short* bsums = (short*)(y + 260);
            if (amax == 0)
            {
                new Span<byte>(y, Q8_KBlockBytes).Clear();
                continue;
            }
            float iscale = -127f / max;
            for (int j = 0; j < 256; j++) q[j] = (sbyte)Math.Min(127, NearestInt(iscale * x[j]));
            for (int j = 0; j < 16; j++)
            {
                int sum = 0;
                for (int i = 0; i < 16; i++) sum += q[16 * j + i];
                bsums[j] = (short)sum;
            }
            *(float*)y = 1 / iscale;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void QuantizeQ8_KAvx2(float* x, byte* y, int n)
    {
        for (int b = 0; b < n / 256; b++, x += 256, y += Q8_KBlockBytes)
        {
            Vector256<float> maxAbs = Vector256<float>.Zero;
            for (int j = 0; j < 256; j += 8) maxAbs = Vector256.Max(maxAbs, Vector256.Abs(Vector256.Load(x + j)));
            float amax = HorizontalMax(maxAbs);
            sbyte* q = (sbyte*)(y + 4);
            short* bsums = (short*)(y + 260);
            if (amax == 0)
            {
                new Span<byte>(y, Q8_KBlockBytes).Clear();
                continue;
            }
            // The sign of the scale comes from the first element of largest magnitude.
            int first = 0;
            while (MathF.Abs(x[first]) != amax) first++;
            float iscale = -127f / x[first];
            Vector256<float> vscale = Vector256.Create(iscale);
            for (int j = 0; j < 256; j += 32)
            {
                Vector256<int> i0 = Avx.ConvertToVector256Int32(Avx.RoundToNearestInteger(Vector256.Load(x + j) * vscale));
                Vector256<int> i1 = Avx.ConvertToVector256Int32(Avx.RoundToNearestInteger(Vector256.Load(x + j + 8) * vscale));
                Vector256<int> i2 = Avx.ConvertToVector256Int32(Avx.RoundToNearestInteger(Vector256.Load(x + j + 16) * vscale));
                Vector256<int> i3 = Avx.ConvertToVector256Int32(Avx.RoundToNearestInteger(Vector256.Load(x + j + 24) * vscale));
                Vector256<short> s01 = Avx2.PackSignedSaturate(i0, i1);
                Vector256<short> s23 = Avx2.PackSignedSaturate(i2, i3);
                Vector256<sbyte> packed = Avx2.PermuteVar8x32(Avx2.PackSignedSaturate(s01, s23).AsInt32(), Vector256.Create(0, 4, 1, 5, 2, 6, 3, 7)).AsSByte();
                Vector256.Store(packed, q + j); // saturation at 127 is ggml's MIN(127, v)
                // Sums of 16: bytes → int16 pairs → int32 quads, then add the 4 quads of each half.
                Vector256<int> quads = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Vector256.Create((byte)1), packed), Vector256.Create((short)1));
                Vector128<int> lo = quads.GetLower(), hi = quads.GetUpper();
                bsums[j / 16] = (short)(lo[0] + lo[1] + lo[2] + lo[3]);
                bsums[j / 16 + 1] = (short)(hi[0] + hi[1] + hi[2] + hi[3]);
            }
            *(float*)y = 1 / iscale;
        }
    }

    // ---------------------------------------------------------------- F16 / BF16

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void QuantizeF16(float* x, byte* y, int n) => Fp16.FromFloatRow(x, (ushort*)y, n);

    /// <summary>Each float rounded to F16 (nearest even) and expanded back, in place-safe 8-float steps.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RoundToF16AsF32(float* x, byte* y, int n)
    {
        float* dst = (float*)y;
        ushort* halves = stackalloc ushort[8];
        int i = 0;
        for (; i + 8 <= n; i += 8)
        {
            Fp16.FromFloatRow(x + i, halves, 8);
            Fp16.ToFloatRow(halves, dst + i, 8);
        }
        for (; i < n; i++) dst[i] = Fp16.Round(x[i]);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void QuantizeF16Scalar(float* x, byte* y, int n)
    {
        for (int i = 0; i < n; i++) ((ushort*)y)[i] = Fp16.FromFloat(x[i]);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void QuantizeBF16(float* x, byte* y, int n) => Bf16.FromFloatRow(x, (ushort*)y, n);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void QuantizeBF16Scalar(float* x, byte* y, int n)
    {
        for (int i = 0; i < n; i++) ((ushort*)y)[i] = Bf16.FromFloat(x[i]);
    }
}
