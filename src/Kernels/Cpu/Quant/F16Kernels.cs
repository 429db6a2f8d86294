using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using LlavaNative.Kernels.Tensors;

namespace LlavaNative.Kernels.Cpu.Quant;

/// <summary>
/// F16 weights · F16 activations (ggml rounds activations to F16 for F16 weights: <c>ggml_vec_dot_f16</c>).
/// Both sides are expanded exactly to float and multiplied-added in float; ggml sums its vector lanes
/// into a double at the end, the scalar reference here sums products in double. The SIMD kernels take the
/// F16-rounded activations already expanded to F32 (<see cref="QuantKernels.ActivationsAsRoundedF32"/>):
/// the same values, converted once per row instead of once per dot product.
/// </summary>
internal static unsafe class F16Kernels
{
    public static QuantKernels Table => new()
    {
        UsePackedGemm = true,
        Type = TensorType.F16, DotType = TensorType.F16, Dequantize = &Dequantize,
        ActivationsAsRoundedF32 = QuantSimd.UseAvx2,
        VecDot = QuantSimd.UseAvx512 ? &VecDotAvx512 : QuantSimd.UseAvx2 ? &VecDotAvx2 : &VecDotScalar,
        MatMulTile = QuantSimd.UseAvx512 ? &TileAvx512 : QuantSimd.UseAvx2 ? &TileAvx2 : null,
        TileRows = QuantSimd.UseAvx512 ? 4 : 2, TileTokens = int.MaxValue,
    };

    public static QuantKernels ScalarTable => new()
    {
        Type = TensorType.F16, DotType = TensorType.F16, Dequantize = &DequantizeScalar, VecDot = &VecDotScalar,
    };

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dequantize(byte* src, float* dst, int n) => Fp16.ToFloatRow((ushort*)src, dst, n);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void DequantizeScalar(byte* src, float* dst, int n)
    {
        for (int i = 0; i < n; i++) dst[i] = Fp16.ToFloat(((ushort*)src)[i]);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotScalar(int n, byte* w, byte* x)
    {
        ushort* a = (ushort*)w, b = (ushort*)x;
        double sum = 0;
        for (int i = 0; i < n; i++) sum += Fp16.ToFloat(a[i]) * Fp16.ToFloat(b[i]);
        return (float)sum;
    }

    /// <summary>
    /// F16 weights · F16-rounded activations held as F32 (<see cref="QuantKernels.ActivationsAsRoundedF32"/>):
    /// the same products and sums as <see cref="VecDotScalar"/>, with only the weights to expand. Fast path,
    /// for 32-half chunks of normal numbers: sign-extend each half to 32 bits, shift left by 13 and mask, which
    /// leaves sign | exponent | mantissa at float positions, then add (127 − 15) &lt;&lt; 23 to rebias the exponent.
    /// Chunks holding a zero, subnormal, infinite or NaN half take the exact converter
    /// (<see cref="Fp16.ToFloat8Lanes"/>) — never denormal arithmetic, which costs microcode assists on Intel.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotAvx2(int n, byte* w, byte* x)
    {
        ushort* a = (ushort*)w;
        float* b = (float*)x;
        Vector256<float> s0 = Vector256<float>.Zero, s1 = Vector256<float>.Zero, s2 = Vector256<float>.Zero, s3 = Vector256<float>.Zero;
        Vector256<ushort> expMask = Vector256.Create((ushort)0x7C00);
        int i = 0;
        for (; i + 32 <= n; i += 32)
        {
            Vector256<ushort> e0 = Vector256.Load(a + i) & expMask, e1 = Vector256.Load(a + i + 16) & expMask;
            Vector256<ushort> special = Vector256.Equals(Vector256.Min(e0, e1), Vector256<ushort>.Zero) | Vector256.Equals(Vector256.Max(e0, e1), expMask);
            if (special != Vector256<ushort>.Zero)
            {
                for (int k = 0; k < 32; k += 8) s0 = Fma.MultiplyAdd(Widen8(a + i + k), Vector256.Load(b + i + k), s0);
                continue;
            }
            s0 = Fma.MultiplyAdd(Normal8(a + i), Vector256.Load(b + i), s0);
            s1 = Fma.MultiplyAdd(Normal8(a + i + 8), Vector256.Load(b + i + 8), s1);
            s2 = Fma.MultiplyAdd(Normal8(a + i + 16), Vector256.Load(b + i + 16), s2);
            s3 = Fma.MultiplyAdd(Normal8(a + i + 24), Vector256.Load(b + i + 24), s3);
        }
        for (; i + 8 <= n; i += 8) s0 = Fma.MultiplyAdd(Widen8(a + i), Vector256.Load(b + i), s0);
        double sum = QuantSimd.HorizontalSum((s0 + s1) + (s2 + s3));
        for (; i < n; i++) sum += Fp16.ToFloat(a[i]) * b[i];
        return (float)sum;
    }

    /// <summary>8 normal halves → floats: sign-extend, shift, mask, rebias.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Normal8(ushort* p)
        => (((Avx2.ConvertToVector256Int32((short*)p) << 13) & Vector256.Create(unchecked((int)0x8FFF_E000))) + Vector256.Create(0x3800_0000)).AsSingle();

    /// <summary>
    /// As <see cref="VecDotAvx2"/> with 512-bit vectors, version 2. Decode reads F16 weights once per token, and
    /// without a half → float instruction in .NET (no vcvtph2ps) the conversion, not DRAM, bounds it: version 1
    /// spent ~15 vector instructions per 32 halves. Here (13): one unsigned compare finds zero/subnormal/inf/NaN
    /// exponents ((e − 1) &gt; 29 as (v &amp; 0x7C00) − 0x0400 &gt; 0x7400), and the 32 halves are converted with 16-bit
    /// operations on the loaded vector instead of two sign-extending loads: the high half of each float is
    /// ((h &gt;&gt;ₐ 3) &amp; 0x8FFF) + (112 &lt;&lt; 7) (sign, rebiased exponent, top 7 mantissa bits), the low half h &lt;&lt; 13,
    /// and vpunpcklwd / vpunpckhwd join them. Unpacking works within 128-bit lanes, so a qword permutation first puts
    /// halves 4k..4k+3 and 16+4k..16+4k+3 in lane k: the two unpacks then yield floats 0–15 and 16–31 in order.
    /// Chunks with special halves fix their lanes up in 512-bit registers too (version 1 went through four 8-lane
    /// exact conversions, each with its own unpredictable branch). 64 halves per step into 4 accumulators.
    /// Version 3: software prefetch 2 KB ahead; decode streams the weights from DRAM, and the prefetch keeps more of
    /// them in flight than the hardware prefetcher does while the conversion keeps the core busy.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotAvx512(int n, byte* w, byte* x)
    {
        ushort* a = (ushort*)w;
        float* b = (float*)x;
        Vector512<float> s0 = Vector512<float>.Zero, s1 = Vector512<float>.Zero, s2 = Vector512<float>.Zero, s3 = Vector512<float>.Zero;
        Vector256<float> slow = Vector256<float>.Zero;
        Vector512<ushort> expMask = Vector512.Create((ushort)0x7C00), expOne = Vector512.Create((ushort)0x0400), expMax = Vector512.Create((ushort)0x7400);
        int i = 0;
        // 64 halves per step, 4 accumulators; one special-exponent test for both 32-half chunks.
        for (; i + 64 <= n; i += 64)
        {
            // 2 KB ahead (the next row's start once near the end): with the hardware prefetcher alone one core streamed
            // ~7 GB/s of F16 weights, with this ~9 (as ggml does with its cheaper conversion).
            Sse.Prefetch0(a + i + 1024);
            Sse.Prefetch0(a + i + 1056);
            Vector512<ushort> v0 = Vector512.Load(a + i), v1 = Vector512.Load(a + i + 32);
            Vector512<float> w0, w1, w2, w3;
            if (Vector512.GreaterThanAny(Vector512.Max((v0 & expMask) - expOne, (v1 & expMask) - expOne), expMax))
            {
                Halves32Exact(v0, out w0, out w1);
                Halves32Exact(v1, out w2, out w3);
            }
            else
            {
                Halves32Normal(v0, out w0, out w1);
                Halves32Normal(v1, out w2, out w3);
            }
            s0 = Avx512F.FusedMultiplyAdd(w0, Vector512.Load(b + i), s0);
            s1 = Avx512F.FusedMultiplyAdd(w1, Vector512.Load(b + i + 16), s1);
            s2 = Avx512F.FusedMultiplyAdd(w2, Vector512.Load(b + i + 32), s2);
            s3 = Avx512F.FusedMultiplyAdd(w3, Vector512.Load(b + i + 48), s3);
        }
        for (; i + 32 <= n; i += 32)
        {
            Vector512<ushort> v = Vector512.Load(a + i);
            Halves32Exact(v, out Vector512<float> w0, out Vector512<float> w1);
            s0 = Avx512F.FusedMultiplyAdd(w0, Vector512.Load(b + i), s0);
            s1 = Avx512F.FusedMultiplyAdd(w1, Vector512.Load(b + i + 16), s1);
        }
        for (; i + 8 <= n; i += 8) slow = Fma.MultiplyAdd(Widen8(a + i), Vector256.Load(b + i), slow);
        double sum = QuantSimd.HorizontalSum((s0 + s1) + (s2 + s3)) + (double)QuantSimd.HorizontalSum(slow);
        for (; i < n; i++) sum += Fp16.ToFloat(a[i]) * b[i];
        return (float)sum;
    }

    /// <summary>32 normal halves → floats 0–15 in <paramref name="lo"/>, 16–31 in <paramref name="hi"/> (see <see cref="VecDotAvx512"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Halves32Normal(Vector512<ushort> v, out Vector512<float> lo, out Vector512<float> hi)
    {
        Vector512<short> h = Avx512F.PermuteVar8x64(v.AsUInt64(), Vector512.Create(0UL, 4, 1, 5, 2, 6, 3, 7)).AsInt16();
        Vector512<short> high = (Avx512BW.ShiftRightArithmetic(h, 3) & Vector512.Create(unchecked((short)0x8FFF))) + Vector512.Create((short)(112 << 7));
        Vector512<short> low = Avx512BW.ShiftLeftLogical(h, 13);
        lo = Avx512BW.UnpackLow(low, high).AsSingle();
        hi = Avx512BW.UnpackHigh(low, high).AsSingle();
    }

    /// <summary>
    /// Any 32 halves → floats, exact, without branches: <see cref="Halves32Normal"/> plus lane fix-ups. Inf/NaN
    /// (exponent 31 → 143): add 112 more, reaching 255. Zero/subnormal (exponent 0 → 112, i.e. ±2⁻¹⁵·(1 + m/1024)):
    /// one more on the exponent gives ±2⁻¹⁴·(1 + m/1024), minus ±2⁻¹⁴ leaves the exact ±2⁻¹⁴·m/1024 (no denormal
    /// arithmetic). In N(0, 0.02) weights ~7 % of 32-half chunks hold a subnormal.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Halves32Exact(Vector512<ushort> v, out Vector512<float> lo, out Vector512<float> hi)
    {
        Vector512<short> h = Avx512F.PermuteVar8x64(v.AsUInt64(), Vector512.Create(0UL, 4, 1, 5, 2, 6, 3, 7)).AsInt16();
        Vector512<short> rebias = Vector512.Create((short)(112 << 7));
        Vector512<short> high = (Avx512BW.ShiftRightArithmetic(h, 3) & Vector512.Create(unchecked((short)0x8FFF))) + rebias;
        Vector512<short> low = Avx512BW.ShiftLeftLogical(h, 13);
        Vector512<short> exponent = h & Vector512.Create((short)0x7C00);
        Vector512<short> infNan = Vector512.Equals(exponent, Vector512.Create((short)0x7C00));
        Vector512<short> tiny = Vector512.Equals(exponent, Vector512<short>.Zero);
        high += (infNan & rebias) + (tiny & Vector512.Create((short)(1 << 7)));
        Vector512<short> minTiny = tiny & ((h & Vector512.Create(unchecked((short)0x8000))) | Vector512.Create((short)0x3880)); // ±2⁻¹⁴, high half
        lo = Avx512BW.UnpackLow(low, high).AsSingle() - Avx512BW.UnpackLow(Vector512<short>.Zero, minTiny).AsSingle();
        hi = Avx512BW.UnpackHigh(low, high).AsSingle() - Avx512BW.UnpackHigh(Vector512<short>.Zero, minTiny).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Widen8(ushort* p) => Fp16.ToFloat8Lanes(Avx2.ConvertToVector256Int32(Vector128.Load(p)).AsUInt32());

    /// <summary>AVX2 form of <see cref="TileAvx512"/>: 2 rows (16 vector registers), 8 floats per FMA.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void TileAvx2(int n, byte* w, long wStride, byte* x, long xStride, float* y, long yStride, int rows, int tokens)
    {
        const int PanelColumns = 1024;
        float* panel = stackalloc float[2 * PanelColumns];
        float* p0 = panel, p1 = panel + PanelColumns;
        float* sums = stackalloc float[8];
        for (int k0 = 0; k0 < n; k0 += PanelColumns)
        {
            int kc = Math.Min(PanelColumns, n - k0);
            for (int r = 0; r < 2; r++)
                Fp16.ToFloatRow((ushort*)(w + Math.Min(r, rows - 1) * wStride) + k0, panel + r * PanelColumns, kc);
            for (int t = 0; t < tokens; t += 4)
            {
                int count = Math.Min(4, tokens - t);
                float* x0 = (float*)(x + t * xStride) + k0;
                float* x1 = (float*)(x + (t + Math.Min(1, count - 1)) * xStride) + k0;
                float* x2 = (float*)(x + (t + Math.Min(2, count - 1)) * xStride) + k0;
                float* x3 = (float*)(x + (t + Math.Min(3, count - 1)) * xStride) + k0;
                Vector256<float> a00 = default, a01 = default, a02 = default, a03 = default, a10 = default, a11 = default, a12 = default, a13 = default;
                int i = 0;
                for (; i + 8 <= kc; i += 8)
                {
                    Vector256<float> f0 = Vector256.Load(p0 + i), f1 = Vector256.Load(p1 + i);
                    Vector256<float> v = Vector256.Load(x0 + i);
                    a00 = Fma.MultiplyAdd(f0, v, a00); a10 = Fma.MultiplyAdd(f1, v, a10);
                    v = Vector256.Load(x1 + i);
                    a01 = Fma.MultiplyAdd(f0, v, a01); a11 = Fma.MultiplyAdd(f1, v, a11);
                    v = Vector256.Load(x2 + i);
                    a02 = Fma.MultiplyAdd(f0, v, a02); a12 = Fma.MultiplyAdd(f1, v, a12);
                    v = Vector256.Load(x3 + i);
                    a03 = Fma.MultiplyAdd(f0, v, a03); a13 = Fma.MultiplyAdd(f1, v, a13);
                }
                sums[0] = QuantSimd.HorizontalSum(a00); sums[1] = QuantSimd.HorizontalSum(a01); sums[2] = QuantSimd.HorizontalSum(a02); sums[3] = QuantSimd.HorizontalSum(a03);
                sums[4] = QuantSimd.HorizontalSum(a10); sums[5] = QuantSimd.HorizontalSum(a11); sums[6] = QuantSimd.HorizontalSum(a12); sums[7] = QuantSimd.HorizontalSum(a13);
                for (int r = 0; r < rows; r++)
                    for (int c = 0; c < count; c++)
                    {
                        float* xt = (float*)(x + (t + c) * xStride) + k0;
                        double sum = sums[r * 4 + c];
                        for (int k = i; k < kc; k++) sum += panel[r * PanelColumns + k] * xt[k];
                        float* target = y + (t + c) * yStride + r;
                        *target = k0 == 0 ? (float)sum : *target + (float)sum;
                    }
            }
        }
    }

    /// <summary>
    /// Prefill tile: 4 weight rows × every token. The rows are expanded to F32 once per 1024-column panel
    /// (exactly, into a 16 KB stack buffer that stays in L1), then each group of 4 tokens runs a pure FMA
    /// loop over the panel — the half→float work is paid once per row instead of once per (row, token).
    /// Declared with <see cref="QuantKernels.TileTokens"/> = int.MaxValue so MatMul hands it all tokens.
    /// Rows beyond the call's count repeat the last one and are not stored.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void TileAvx512(int n, byte* w, long wStride, byte* x, long xStride, float* y, long yStride, int rows, int tokens)
    {
        const int PanelColumns = 1024;
        float* panel = stackalloc float[4 * PanelColumns];
        float* p0 = panel, p1 = panel + PanelColumns, p2 = panel + 2 * PanelColumns, p3 = panel + 3 * PanelColumns;
        float* sums = stackalloc float[16];
        for (int k0 = 0; k0 < n; k0 += PanelColumns)
        {
            int kc = Math.Min(PanelColumns, n - k0);
            for (int r = 0; r < 4; r++)
                Fp16.ToFloatRow((ushort*)(w + Math.Min(r, rows - 1) * wStride) + k0, panel + r * PanelColumns, kc);
            for (int t = 0; t < tokens; t += 4)
            {
                int count = Math.Min(4, tokens - t);
                float* x0 = (float*)(x + t * xStride) + k0;
                float* x1 = (float*)(x + (t + Math.Min(1, count - 1)) * xStride) + k0;
                float* x2 = (float*)(x + (t + Math.Min(2, count - 1)) * xStride) + k0;
                float* x3 = (float*)(x + (t + Math.Min(3, count - 1)) * xStride) + k0;
                Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default;
                Vector512<float> a10 = default, a11 = default, a12 = default, a13 = default;
                Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default;
                Vector512<float> a30 = default, a31 = default, a32 = default, a33 = default;
                int i = 0;
                for (; i + 16 <= kc; i += 16)
                {
                    Vector512<float> f0 = Vector512.Load(p0 + i), f1 = Vector512.Load(p1 + i), f2 = Vector512.Load(p2 + i), f3 = Vector512.Load(p3 + i);
                    Vector512<float> v = Vector512.Load(x0 + i);
                    a00 = Avx512F.FusedMultiplyAdd(f0, v, a00); a10 = Avx512F.FusedMultiplyAdd(f1, v, a10);
                    a20 = Avx512F.FusedMultiplyAdd(f2, v, a20); a30 = Avx512F.FusedMultiplyAdd(f3, v, a30);
                    v = Vector512.Load(x1 + i);
                    a01 = Avx512F.FusedMultiplyAdd(f0, v, a01); a11 = Avx512F.FusedMultiplyAdd(f1, v, a11);
                    a21 = Avx512F.FusedMultiplyAdd(f2, v, a21); a31 = Avx512F.FusedMultiplyAdd(f3, v, a31);
                    v = Vector512.Load(x2 + i);
                    a02 = Avx512F.FusedMultiplyAdd(f0, v, a02); a12 = Avx512F.FusedMultiplyAdd(f1, v, a12);
                    a22 = Avx512F.FusedMultiplyAdd(f2, v, a22); a32 = Avx512F.FusedMultiplyAdd(f3, v, a32);
                    v = Vector512.Load(x3 + i);
                    a03 = Avx512F.FusedMultiplyAdd(f0, v, a03); a13 = Avx512F.FusedMultiplyAdd(f1, v, a13);
                    a23 = Avx512F.FusedMultiplyAdd(f2, v, a23); a33 = Avx512F.FusedMultiplyAdd(f3, v, a33);
                }
                sums[0] = QuantSimd.HorizontalSum(a00); sums[1] = QuantSimd.HorizontalSum(a01); sums[2] = QuantSimd.HorizontalSum(a02); sums[3] = QuantSimd.HorizontalSum(a03);
                sums[4] = QuantSimd.HorizontalSum(a10); sums[5] = QuantSimd.HorizontalSum(a11); sums[6] = QuantSimd.HorizontalSum(a12); sums[7] = QuantSimd.HorizontalSum(a13);
                sums[8] = QuantSimd.HorizontalSum(a20); sums[9] = QuantSimd.HorizontalSum(a21); sums[10] = QuantSimd.HorizontalSum(a22); sums[11] = QuantSimd.HorizontalSum(a23);
                sums[12] = QuantSimd.HorizontalSum(a30); sums[13] = QuantSimd.HorizontalSum(a31); sums[14] = QuantSimd.HorizontalSum(a32); sums[15] = QuantSimd.HorizontalSum(a33);
                for (int r = 0; r < rows; r++)
                    for (int c = 0; c < count; c++)
                    {
                        float* xt = (float*)(x + (t + c) * xStride) + k0;
                        double sum = sums[r * 4 + c];
                        for (int k = i; k < kc; k++) sum += panel[r * PanelColumns + k] * xt[k];
                        float* target = y + (t + c) * yStride + r;
                        *target = k0 == 0 ? (float)sum : *target + (float)sum;
                    }
            }
        }
    }
}

/// <summary>BF16 weights · BF16 activations (<c>ggml_vec_dot_bf16</c>): bf16 → float is a 16-bit shift.</summary>
internal static unsafe class BF16Kernels
{
    public static QuantKernels Table => new()
    {
        UsePackedGemm = true,
        Type = TensorType.BF16, DotType = TensorType.BF16, Dequantize = &Dequantize,
        VecDot = QuantSimd.UseAvx512 ? &VecDotAvx512 : QuantSimd.UseAvx2 ? &VecDotAvx2 : &VecDotScalar,
    };

    public static QuantKernels ScalarTable => new()
    {
        Type = TensorType.BF16, DotType = TensorType.BF16, Dequantize = &DequantizeScalar, VecDot = &VecDotScalar,
    };

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dequantize(byte* src, float* dst, int n) => Bf16.ToFloatRow((ushort*)src, dst, n);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void DequantizeScalar(byte* src, float* dst, int n)
    {
        for (int i = 0; i < n; i++) dst[i] = Bf16.ToFloat(((ushort*)src)[i]);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotScalar(int n, byte* w, byte* x)
    {
        ushort* a = (ushort*)w, b = (ushort*)x;
        double sum = 0;
        for (int i = 0; i < n; i++) sum += Bf16.ToFloat(a[i]) * Bf16.ToFloat(b[i]);
        return (float)sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotAvx2(int n, byte* w, byte* x)
    {
        float* f16 = Fp16.Table;
        ushort* a = (ushort*)w, b = (ushort*)x;
        Vector256<float> s0 = Vector256<float>.Zero, s1 = Vector256<float>.Zero, s2 = Vector256<float>.Zero, s3 = Vector256<float>.Zero;
        int i = 0;
        for (; i + 32 <= n; i += 32)
        {
            s0 = Fma.MultiplyAdd(Widen8(a + i), Widen8(b + i), s0);
            s1 = Fma.MultiplyAdd(Widen8(a + i + 8), Widen8(b + i + 8), s1);
            s2 = Fma.MultiplyAdd(Widen8(a + i + 16), Widen8(b + i + 16), s2);
            s3 = Fma.MultiplyAdd(Widen8(a + i + 24), Widen8(b + i + 24), s3);
        }
        for (; i + 8 <= n; i += 8) s0 = Fma.MultiplyAdd(Widen8(a + i), Widen8(b + i), s0);
        double sum = QuantSimd.HorizontalSum((s0 + s1) + (s2 + s3));
        for (; i < n; i++) sum += Bf16.ToFloat(a[i]) * Bf16.ToFloat(b[i]);
        return (float)sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float VecDotAvx512(int n, byte* w, byte* x)
    {
        float* f16 = Fp16.Table;
        ushort* a = (ushort*)w, b = (ushort*)x;
        Vector512<float> s0 = Vector512<float>.Zero, s1 = Vector512<float>.Zero;
        int i = 0;
        for (; i + 32 <= n; i += 32)
        {
            s0 = Avx512F.FusedMultiplyAdd(Widen16(a + i), Widen16(b + i), s0);
            s1 = Avx512F.FusedMultiplyAdd(Widen16(a + i + 16), Widen16(b + i + 16), s1);
        }
        for (; i + 16 <= n; i += 16) s0 = Avx512F.FusedMultiplyAdd(Widen16(a + i), Widen16(b + i), s0);
        double sum = QuantSimd.HorizontalSum(s0 + s1);
        for (; i < n; i++) sum += Bf16.ToFloat(a[i]) * Bf16.ToFloat(b[i]);
        return (float)sum;
    }

    private static Vector256<float> Widen8(ushort* p) => (Avx2.ConvertToVector256Int32(Vector128.Load(p)).AsUInt32() << 16).AsSingle();

    private static Vector512<float> Widen16(ushort* p) => (Avx512F.ConvertToVector512UInt32(Vector256.Load(p)) << 16).AsSingle();
}
