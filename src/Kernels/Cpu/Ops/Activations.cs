using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace LlavaNative.Kernels.Cpu.Ops;

/// <summary>The pointwise non-linearities of vision towers and projectors.</summary>
public enum ActivationFunction
{
    /// <summary><c>x·σ(1.702x)</c>: CLIP's <c>quick_gelu</c> (CLIPVisionConfig default).</summary>
    QuickGelu,
    /// <summary><c>0.5x(1 + tanh(√(2/π)(x + 0.044715x³)))</c>: SigLIP's <c>gelu_pytorch_tanh</c>.</summary>
    GeluTanh,
    /// <summary><c>0.5x(1 + erf(x/√2))</c>: exact GELU, HF's <c>"gelu"</c> (LLaVA projector).</summary>
    GeluErf,
}

/// <summary>
/// GELU (erf and tanh forms) and quick_gelu over rows of floats. One generic driver walks
/// Vector512 → Vector256 → Vector128 → scalar over a struct operator, so each function is written once per
/// width; the scalar operator is the reference the vector paths are tested against (and handles tails).
/// <para>Numerics. Sigmoid forms are evaluated as <c>x / (1 + e^(−k·x))</c>, which never cancels.
/// GELU(erf) needs <c>1 + erf(z)</c>, which cancels for z ≪ 0 when computed from erf; here it is computed
/// directly: for |z| &lt; 1 as <c>1 + z·P(z²)</c>, for |z| ≥ 1 from <c>erfc(|z|) = t·exp(−z² + R(u))</c>,
/// t = 1/|z|, so the negative tail keeps its relative accuracy. P (degree 6) and R (degree 10, in
/// u = (2t − 1.1)/0.9 so its coefficients stay below 1) come from <c>tools/fit-erf-coefficients.py</c>;
/// their approximation error is below 5e-9 (erf) and 3e-8 relative (erfc), well under float rounding.</para>
/// </summary>
public static unsafe class Activations
{
    /// <summary>Applies <paramref name="function"/>: <c>y[i] = f(x[i])</c> for i &lt; n (y may alias x).</summary>
    public static void Apply(ActivationFunction function, float* x, float* y, long n)
    {
        switch (function)
        {
            case ActivationFunction.QuickGelu: Run<QuickGeluOp>(x, y, n, MaxVectorBits); break;
            case ActivationFunction.GeluTanh: Run<GeluTanhOp>(x, y, n, MaxVectorBits); break;
            case ActivationFunction.GeluErf: Run<GeluErfOp>(x, y, n, MaxVectorBits); break;
            default: throw new ArgumentOutOfRangeException(nameof(function), function, "unknown activation");
        }
    }

    /// <summary>Scalar reference of <see cref="Apply"/>: the per-element operator only.</summary>
    public static void ApplyScalar(ActivationFunction function, float* x, float* y, long n) => ApplyWithWidth(function, x, y, n, 0);

    /// <summary>
    /// <see cref="Apply"/> using vectors of at most <paramref name="maxVectorBits"/> bits (512, 256, 128; 0 = scalar),
    /// so tests can run every path on one machine. Widths the CPU does not accelerate are skipped.
    /// </summary>
    internal static void ApplyWithWidth(ActivationFunction function, float* x, float* y, long n, int maxVectorBits)
    {
        switch (function)
        {
            case ActivationFunction.QuickGelu: Run<QuickGeluOp>(x, y, n, maxVectorBits); break;
            case ActivationFunction.GeluTanh: Run<GeluTanhOp>(x, y, n, maxVectorBits); break;
            case ActivationFunction.GeluErf: Run<GeluErfOp>(x, y, n, maxVectorBits); break;
            default: throw new ArgumentOutOfRangeException(nameof(function), function, "unknown activation");
        }
    }

    private const int MaxVectorBits = 512;

    /// <summary>Scalar GELU(erf): <c>0.5x(1 + erf(x/√2))</c>.</summary>
    public static float GeluErf(float x) => GeluErfOp.Invoke(x);

    /// <summary>Scalar GELU(tanh).</summary>
    public static float GeluTanh(float x) => GeluTanhOp.Invoke(x);

    /// <summary>Scalar quick_gelu.</summary>
    public static float QuickGelu(float x) => QuickGeluOp.Invoke(x);

    /// <summary>erf in float from the same approximation GELU(erf) uses (absolute error ≈ 1e-7, float rounding).</summary>
    public static float Erf(float z)
    {
        float a = MathF.Abs(z);
        if (a < 1f) return ErfSmall(z);
        float e = 1f - ErfcLarge(a);
        return z < 0 ? -e : e;
    }

    // ---- driver ---------------------------------------------------------------------------------------------

    private interface IActivationOp
    {
        static abstract float Invoke(float x);
        static abstract Vector128<float> Invoke(Vector128<float> x);
        static abstract Vector256<float> Invoke(Vector256<float> x);
        static abstract Vector512<float> Invoke(Vector512<float> x);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Run<TOp>(float* x, float* y, long n, int maxVectorBits) where TOp : struct, IActivationOp
    {
        long i = 0;
        if (maxVectorBits >= 512 && Vector512.IsHardwareAccelerated)
            for (; i + 16 <= n; i += 16) Vector512.Store(TOp.Invoke(Vector512.Load(x + i)), y + i);
        if (maxVectorBits >= 256 && Vector256.IsHardwareAccelerated)
            for (; i + 8 <= n; i += 8) Vector256.Store(TOp.Invoke(Vector256.Load(x + i)), y + i);
        if (maxVectorBits >= 128 && Vector128.IsHardwareAccelerated)
            for (; i + 4 <= n; i += 4) Vector128.Store(TOp.Invoke(Vector128.Load(x + i)), y + i);
        for (; i < n; i++) y[i] = TOp.Invoke(x[i]);
    }

    // ---- quick_gelu: x / (1 + e^(−1.702x)) ------------------------------------------------------------------

    private const float QuickGeluSlope = -1.702f;

    private struct QuickGeluOp : IActivationOp
    {
        public static float Invoke(float x) => x / (1f + MathF.Exp(QuickGeluSlope * x));
        public static Vector128<float> Invoke(Vector128<float> x) => x / (Vector128<float>.One + Vector128.Exp(x * QuickGeluSlope));
        public static Vector256<float> Invoke(Vector256<float> x) => x / (Vector256<float>.One + Vector256.Exp(x * QuickGeluSlope));
        public static Vector512<float> Invoke(Vector512<float> x) => x / (Vector512<float>.One + Vector512.Exp(x * QuickGeluSlope));
    }

    // ---- GELU(tanh): 0.5x(1 + tanh(v)) = x / (1 + e^(−2v)), v = √(2/π)(x + 0.044715x³) --------------------

    private const float TanhK0 = -1.5957691216057308f;   // −2·√(2/π)
    private const float TanhK1 = -0.07135481627260025f;  // −2·√(2/π)·0.044715

    private struct GeluTanhOp : IActivationOp
    {
        // −2v = x·(K0 + K1·x²)
        public static float Invoke(float x) => x / (1f + MathF.Exp(x * MathF.FusedMultiplyAdd(TanhK1, x * x, TanhK0)));

        public static Vector128<float> Invoke(Vector128<float> x) =>
            x / (Vector128<float>.One + Vector128.Exp(x * Vector128.FusedMultiplyAdd(Vector128.Create(TanhK1), x * x, Vector128.Create(TanhK0))));

        public static Vector256<float> Invoke(Vector256<float> x) =>
            x / (Vector256<float>.One + Vector256.Exp(x * Vector256.FusedMultiplyAdd(Vector256.Create(TanhK1), x * x, Vector256.Create(TanhK0))));

        public static Vector512<float> Invoke(Vector512<float> x) =>
            x / (Vector512<float>.One + Vector512.Exp(x * Vector512.FusedMultiplyAdd(Vector512.Create(TanhK1), x * x, Vector512.Create(TanhK0))));
    }

    // ---- GELU(erf): 0.5x·(1 + erf(x/√2)) --------------------------------------------------------------------

    private const float InvSqrt2 = 0.70710678118654752f;

    // erf(z)/z = P(z²) on |z| < 1, ascending powers (tools/fit-erf-coefficients.py). P0 = 1.128379166 is held
    // as a float pair: rounded to one float its error (6e-8 relative) would be the largest term near |z| = 1.
    private const float P0Hi = 1.128379107e+00f, P0Lo = 5.947839199e-08f, P1 = -3.761262714e-01f, P2 = 1.128360017e-01f, P3 = -2.685444451e-02f,
                        P4 = 5.189535187e-03f, P5 = -8.020839923e-04f, P6 = 7.889114990e-05f;

    // log(erfc(z)·z) + z² = R(u) on 1 ≤ |z| ≤ 10, u = (2/|z| − 1.1)/0.9, ascending powers.
    private const float R0 = -6.884513617e-01f, R1 = -1.523144265e-01f, R2 = -1.980950869e-02f, R3 = 1.540825128e-02f,
                        R4 = -5.551349330e-03f, R5 = 1.160132182e-03f, R6 = 1.310119233e-04f, R7 = -3.695222831e-04f,
                        R8 = 2.505763764e-04f, R9 = -3.525037671e-05f, R10 = -2.408941568e-05f;

    private const float TMin = 0.1f, TMax = 1f;         // t = 1/|z| is clamped to the fitted range
    private const float USlope = 2f / 0.9f, UOffset = -1.1f / 0.9f;

    /// <summary>erf(z) for |z| &lt; 1: z·P0 + z·s·(P1 + P2·s + …), s = z², the leading product exact in the last FMA.</summary>
    private static float ErfSmall(float z)
    {
        float s = z * z;
        float q = MathF.FusedMultiplyAdd(P6, s, P5);
        q = MathF.FusedMultiplyAdd(q, s, P4);
        q = MathF.FusedMultiplyAdd(q, s, P3);
        q = MathF.FusedMultiplyAdd(q, s, P2);
        q = MathF.FusedMultiplyAdd(q, s, P1);
        return MathF.FusedMultiplyAdd(z, P0Hi, MathF.FusedMultiplyAdd(z * s, q, z * P0Lo));
    }

    /// <summary>erfc(a) for a ≥ 1.</summary>
    private static float ErfcLarge(float a)
    {
        float t = 1f / a;
        float u = MathF.FusedMultiplyAdd(Math.Clamp(t, TMin, TMax), USlope, UOffset);
        float r = MathF.FusedMultiplyAdd(R10, u, R9);
        r = MathF.FusedMultiplyAdd(r, u, R8);
        r = MathF.FusedMultiplyAdd(r, u, R7);
        r = MathF.FusedMultiplyAdd(r, u, R6);
        r = MathF.FusedMultiplyAdd(r, u, R5);
        r = MathF.FusedMultiplyAdd(r, u, R4);
        r = MathF.FusedMultiplyAdd(r, u, R3);
        r = MathF.FusedMultiplyAdd(r, u, R2);
        r = MathF.FusedMultiplyAdd(r, u, R1);
        r = MathF.FusedMultiplyAdd(r, u, R0);
        return t * MathF.Exp(MathF.FusedMultiplyAdd(-a, a, r));
    }

    private struct GeluErfOp : IActivationOp
    {
        public static float Invoke(float x)
        {
            float z = x * InvSqrt2;
            float a = MathF.Abs(z);
            float onePlusErf;
            if (a < 1f) onePlusErf = 1f + ErfSmall(z);
            else
            {
                float erfc = ErfcLarge(a);
                onePlusErf = z > 0 ? 2f - erfc : erfc;
            }
            return 0.5f * x * onePlusErf;
        }

        // The vector forms compute both regions for every lane and select per lane.
        public static Vector128<float> Invoke(Vector128<float> x)
        {
            var z = x * InvSqrt2;
            var a = Vector128.Abs(z);
            var s = z * z;
            var q = Vector128.FusedMultiplyAdd(Vector128.Create(P6), s, Vector128.Create(P5));
            q = Vector128.FusedMultiplyAdd(q, s, Vector128.Create(P4));
            q = Vector128.FusedMultiplyAdd(q, s, Vector128.Create(P3));
            q = Vector128.FusedMultiplyAdd(q, s, Vector128.Create(P2));
            q = Vector128.FusedMultiplyAdd(q, s, Vector128.Create(P1));
            var erfSmall = Vector128.FusedMultiplyAdd(z, Vector128.Create(P0Hi), Vector128.FusedMultiplyAdd(z * s, q, z * P0Lo));
            var small = Vector128<float>.One + erfSmall;

            var t = Vector128<float>.One / a;
            var u = Vector128.FusedMultiplyAdd(Vector128.Min(Vector128.Max(t, Vector128.Create(TMin)), Vector128.Create(TMax)),
                                               Vector128.Create(USlope), Vector128.Create(UOffset));
            var r = Vector128.FusedMultiplyAdd(Vector128.Create(R10), u, Vector128.Create(R9));
            r = Vector128.FusedMultiplyAdd(r, u, Vector128.Create(R8));
            r = Vector128.FusedMultiplyAdd(r, u, Vector128.Create(R7));
            r = Vector128.FusedMultiplyAdd(r, u, Vector128.Create(R6));
            r = Vector128.FusedMultiplyAdd(r, u, Vector128.Create(R5));
            r = Vector128.FusedMultiplyAdd(r, u, Vector128.Create(R4));
            r = Vector128.FusedMultiplyAdd(r, u, Vector128.Create(R3));
            r = Vector128.FusedMultiplyAdd(r, u, Vector128.Create(R2));
            r = Vector128.FusedMultiplyAdd(r, u, Vector128.Create(R1));
            r = Vector128.FusedMultiplyAdd(r, u, Vector128.Create(R0));
            var erfc = t * Vector128.Exp(Vector128.FusedMultiplyAdd(-a, a, r));
            var large = Vector128.ConditionalSelect(Vector128.GreaterThan(z, Vector128<float>.Zero), Vector128.Create(2f) - erfc, erfc);

            var onePlusErf = Vector128.ConditionalSelect(Vector128.LessThan(a, Vector128<float>.One), small, large);
            return x * onePlusErf * 0.5f;
        }

        public static Vector256<float> Invoke(Vector256<float> x)
        {
            var z = x * InvSqrt2;
            var a = Vector256.Abs(z);
            var s = z * z;
            var q = Vector256.FusedMultiplyAdd(Vector256.Create(P6), s, Vector256.Create(P5));
            q = Vector256.FusedMultiplyAdd(q, s, Vector256.Create(P4));
            q = Vector256.FusedMultiplyAdd(q, s, Vector256.Create(P3));
            q = Vector256.FusedMultiplyAdd(q, s, Vector256.Create(P2));
            q = Vector256.FusedMultiplyAdd(q, s, Vector256.Create(P1));
            var erfSmall = Vector256.FusedMultiplyAdd(z, Vector256.Create(P0Hi), Vector256.FusedMultiplyAdd(z * s, q, z * P0Lo));
            var small = Vector256<float>.One + erfSmall;

            var t = Vector256<float>.One / a;
            var u = Vector256.FusedMultiplyAdd(Vector256.Min(Vector256.Max(t, Vector256.Create(TMin)), Vector256.Create(TMax)),
                                               Vector256.Create(USlope), Vector256.Create(UOffset));
            var r = Vector256.FusedMultiplyAdd(Vector256.Create(R10), u, Vector256.Create(R9));
            r = Vector256.FusedMultiplyAdd(r, u, Vector256.Create(R8));
            r = Vector256.FusedMultiplyAdd(r, u, Vector256.Create(R7));
            r = Vector256.FusedMultiplyAdd(r, u, Vector256.Create(R6));
            r = Vector256.FusedMultiplyAdd(r, u, Vector256.Create(R5));
            r = Vector256.FusedMultiplyAdd(r, u, Vector256.Create(R4));
            r = Vector256.FusedMultiplyAdd(r, u, Vector256.Create(R3));
            r = Vector256.FusedMultiplyAdd(r, u, Vector256.Create(R2));
            r = Vector256.FusedMultiplyAdd(r, u, Vector256.Create(R1));
            r = Vector256.FusedMultiplyAdd(r, u, Vector256.Create(R0));
            var erfc = t * Vector256.Exp(Vector256.FusedMultiplyAdd(-a, a, r));
            var large = Vector256.ConditionalSelect(Vector256.GreaterThan(z, Vector256<float>.Zero), Vector256.Create(2f) - erfc, erfc);

            var onePlusErf = Vector256.ConditionalSelect(Vector256.LessThan(a, Vector256<float>.One), small, large);
            return x * onePlusErf * 0.5f;
        }

        public static Vector512<float> Invoke(Vector512<float> x)
        {
            var z = x * InvSqrt2;
            var a = Vector512.Abs(z);
            var s = z * z;
            var q = Vector512.FusedMultiplyAdd(Vector512.Create(P6), s, Vector512.Create(P5));
            q = Vector512.FusedMultiplyAdd(q, s, Vector512.Create(P4));
            q = Vector512.FusedMultiplyAdd(q, s, Vector512.Create(P3));
            q = Vector512.FusedMultiplyAdd(q, s, Vector512.Create(P2));
            q = Vector512.FusedMultiplyAdd(q, s, Vector512.Create(P1));
            var erfSmall = Vector512.FusedMultiplyAdd(z, Vector512.Create(P0Hi), Vector512.FusedMultiplyAdd(z * s, q, z * P0Lo));
            var small = Vector512<float>.One + erfSmall;

            var t = Vector512<float>.One / a;
            var u = Vector512.FusedMultiplyAdd(Vector512.Min(Vector512.Max(t, Vector512.Create(TMin)), Vector512.Create(TMax)),
                                               Vector512.Create(USlope), Vector512.Create(UOffset));
            var r = Vector512.FusedMultiplyAdd(Vector512.Create(R10), u, Vector512.Create(R9));
            r = Vector512.FusedMultiplyAdd(r, u, Vector512.Create(R8));
            r = Vector512.FusedMultiplyAdd(r, u, Vector512.Create(R7));
            r = Vector512.FusedMultiplyAdd(r, u, Vector512.Create(R6));
            r = Vector512.FusedMultiplyAdd(r, u, Vector512.Create(R5));
            r = Vector512.FusedMultiplyAdd(r, u, Vector512.Create(R4));
            r = Vector512.FusedMultiplyAdd(r, u, Vector512.Create(R3));
            r = Vector512.FusedMultiplyAdd(r, u, Vector512.Create(R2));
            r = Vector512.FusedMultiplyAdd(r, u, Vector512.Create(R1));
            r = Vector512.FusedMultiplyAdd(r, u, Vector512.Create(R0));
            var erfc = t * Vector512.Exp(Vector512.FusedMultiplyAdd(-a, a, r));
            var large = Vector512.ConditionalSelect(Vector512.GreaterThan(z, Vector512<float>.Zero), Vector512.Create(2f) - erfc, erfc);

            var onePlusErf = Vector512.ConditionalSelect(Vector512.LessThan(a, Vector512<float>.One), small, large);
            return x * onePlusErf * 0.5f;
        }
    }
}
