namespace LlavaNative.Tests.Vision;

/// <summary>
/// erf and erfc in float64, written independently of the float kernel: the Maclaurin series for |x| &lt; 1.5
/// (largest term ≈ e^2.25, so the cancellation costs under one digit) and, from 1.5 on, Laplace's continued
/// fraction erfc(x) = e^(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + …))))) evaluated from depth 200
/// (converged to 1e-16 there), which keeps erfc's relative accuracy in the far tail.
/// </summary>
internal static class Float64Erf
{
    private const double TwoOverSqrtPi = 1.1283791670955126;
    private const double InvSqrtPi = 0.5641895835477563;

    public static double Erf(double x)
    {
        if (double.IsNaN(x)) return double.NaN;
        double a = Math.Abs(x);
        if (a < 1.5)
        {
            // erf(x) = 2/√π · Σ (−1)^n x^(2n+1) / (n! (2n+1))
            double term = a, sum = a, x2 = a * a;
            for (int n = 1; n < 200; n++)
            {
                term *= -x2 / n;
                double contribution = term / (2 * n + 1);
                sum += contribution;
                if (Math.Abs(contribution) < 1e-18 * Math.Abs(sum)) break;
            }
            return Math.CopySign(TwoOverSqrtPi * sum, x);
        }
        return Math.CopySign(1 - ErfcTail(a), x);
    }

    public static double Erfc(double x)
    {
        if (x >= 1.5) return ErfcTail(x);
        return 1 - Erf(x);
    }

    /// <summary>erfc for x ≥ 1.5 by the continued fraction, evaluated bottom-up from a fixed depth.</summary>
    private static double ErfcTail(double x)
    {
        // 1/(x + a1/(x + a2/(x + …))) with a_k = k/2.
        double f = x;
        for (int k = 200; k >= 1; k--) f = x + k / 2.0 / f;
        return Math.Exp(-x * x) * InvSqrtPi / f;
    }

    /// <summary>0.5·x·(1 + erf(x/√2)), through erfc for x &lt; 0 so the tail does not cancel.</summary>
    public static double GeluErf(double x)
    {
        double z = x / Math.Sqrt(2);
        return x < 0 ? 0.5 * x * Erfc(-z) : 0.5 * x * (1 + Erf(z));
    }

    /// <summary>0.5·x·(1 + tanh(v)); for v &lt; 0 as x·e^(2v)/(1 + e^(2v)) (= the same), since 1 + tanh(v) cancels there.</summary>
    public static double GeluTanh(double x)
    {
        double v = Math.Sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x);
        if (v >= 0) return 0.5 * x * (1 + Math.Tanh(v));
        double e = Math.Exp(2 * v);
        return x * e / (1 + e);
    }

    /// <summary>x·σ(1.702x) with σ(w) = 1/(1 + e^(−w)) (no cancellation for any sign in float64).</summary>
    public static double QuickGelu(double x) => x / (1 + Math.Exp(-1.702 * x));
}
