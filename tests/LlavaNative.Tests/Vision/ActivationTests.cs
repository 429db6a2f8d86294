using LlavaNative.Kernels.Cpu.Ops;
using Xunit;
using Xunit.Abstractions;

namespace LlavaNative.Tests.Vision;

/// <summary>
/// GELU(erf), GELU(tanh) and quick_gelu: every vector width this machine runs (512, 256, 128 bits) and the
/// scalar operator, at every length 0..257 (all tails), against float64 math.
/// </summary>
public sealed unsafe class ActivationTests(ITestOutputHelper output)
{
    public static TheoryData<ActivationFunction, int> FunctionsAndWidths()
    {
        var data = new TheoryData<ActivationFunction, int>();
        foreach (var f in Enum.GetValues<ActivationFunction>())
            foreach (int bits in new[] { 512, 256, 128, 0 })
                data.Add(f, bits);
        return data;
    }

    private static double Exact(ActivationFunction f, double x) => f switch
    {
        ActivationFunction.GeluErf => Float64Erf.GeluErf(x),
        ActivationFunction.GeluTanh => Float64Erf.GeluTanh(x),
        _ => Float64Erf.QuickGelu(x),
    };

    /// <summary>
    /// Bound on |float result − float64 result|: a few float roundings of the output; for the sigmoid forms
    /// x / (1 + e^w) also the conditioning of exp (the float exponent w carries a rounding of |w|·6e-8, which
    /// e^w turns into a relative error of the same size, and forming w = x·(k0 + k1·x²) rounds ~4 times;
    /// torch's float32 kernels have it too); for GELU(erf)
    /// the absolute error of 1 + erf(z) (≈ 1.5e-7: float rounding near 1 and near 2) carried by 0.5·|x|.
    /// </summary>
    private static double Tolerance(ActivationFunction f, double x, double exact)
    {
        double exponent = f switch
        {
            ActivationFunction.QuickGelu => 1.702 * Math.Abs(x),
            ActivationFunction.GeluTanh => 2 * Math.Sqrt(2 / Math.PI) * Math.Abs(x + 0.044715 * x * x * x),
            _ => 0,
        };
        double relative = 4e-7 + 2.5e-7 * exponent;
        return f == ActivationFunction.GeluErf
            ? relative * Math.Abs(exact) + 1e-7 * Math.Abs(x) + 1e-37
            : relative * Math.Abs(exact) + 1e-37;
    }

    [Theory, MemberData(nameof(FunctionsAndWidths))]
    public void EveryLengthAgreesWithFloat64(ActivationFunction f, int maxVectorBits)
    {
        var rng = new Random(1000 + (int)f * 7 + maxVectorBits);
        double worstRatio = 0;
        for (int n = 0; n <= 257; n++)
        {
            var x = new float[n];
            for (int i = 0; i < n; i++)
            {
                // Mostly the range activations live in, some far tails, and a few exact landmarks.
                x[i] = (i % 17) switch
                {
                    0 => (float)(rng.NextDouble() * 60 - 30),
                    1 => new[] { 0f, -0f, 1.4142135f, -1.4142135f, 1e-30f, -1e-30f, 14.1f, -14.1f }[rng.Next(8)],
                    _ => (float)(rng.NextDouble() * 16 - 8),
                };
            }
            var y = new float[n + 1];
            y[n] = 12345f; // sentinel: nothing past n is written
            fixed (float* px = x, py = y)
                Activations.ApplyWithWidth(f, px, py, n, maxVectorBits);
            Assert.Equal(12345f, y[n]);
            for (int i = 0; i < n; i++)
            {
                double exact = Exact(f, x[i]);
                double tol = Tolerance(f, x[i], exact);
                double err = Math.Abs(y[i] - exact);
                worstRatio = Math.Max(worstRatio, err / tol);
                Assert.True(err <= tol, $"{f} width {maxVectorBits} n={n} i={i}: f({x[i]:R}) = {y[i]:R}, float64 {exact:R}, error {err:E2} > {tol:E2}");
            }
        }
        output.WriteLine($"{f}, width {maxVectorBits}: worst error / tolerance = {worstRatio:F3}");
    }

    [Fact]
    public void InPlaceMatchesOutOfPlace()
    {
        var rng = new Random(5);
        var x = new float[257];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 12 - 6);
        foreach (var f in Enum.GetValues<ActivationFunction>())
        {
            var y = new float[x.Length];
            var inPlace = (float[])x.Clone();
            fixed (float* px = x, py = y, pz = inPlace)
            {
                Activations.Apply(f, px, py, x.Length);
                Activations.Apply(f, pz, pz, x.Length);
            }
            Assert.Equal(y, inPlace);
        }
    }

    [Fact]
    public void VectorPathsMatchScalarOperator()
    {
        var rng = new Random(6);
        var x = new float[1024];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 20 - 10);
        foreach (var f in Enum.GetValues<ActivationFunction>())
        {
            var scalar = new float[x.Length];
            var simd = new float[x.Length];
            fixed (float* px = x, ps = scalar, pv = simd)
            {
                Activations.ApplyScalar(f, px, ps, x.Length);
                Activations.Apply(f, px, pv, x.Length);
            }
            // Same formula, same constants; only vector Exp vs MathF.Exp may differ (≈ 1 ulp).
            for (int i = 0; i < x.Length; i++)
                Assert.True(Math.Abs(scalar[i] - simd[i]) <= 3e-7 * Math.Abs(scalar[i]) + 1e-30, $"{f}({x[i]}): scalar {scalar[i]} vs vector {simd[i]}");
        }
    }

    [Fact]
    public void ErfAbsoluteErrorIsBelow1e7()
    {
        double worst = 0, worstAt = 0;
        for (int k = -400_000; k <= 400_000; k++)
        {
            float z = k * 2.5e-5f; // [-10, 10]
            double err = Math.Abs(Activations.Erf(z) - Float64Erf.Erf(z));
            if (err > worst) { worst = err; worstAt = z; }
        }
        output.WriteLine($"max |erf error| on [-10, 10] = {worst:E2} at {worstAt}");
        Assert.True(worst < 1e-7, $"erf error {worst:E2} at {worstAt}");
    }

    [Fact]
    public void Float64ReferenceMatchesHighPrecisionValues()
    {
        // Values from mpmath at 30 digits.
        (double X, double Erf)[] erf = [(0.1, 0.1124629160182849), (0.5, 0.52049987781304654), (1, 0.84270079294971487),
            (1.5, 0.96610514647531073), (2, 0.99532226501895273), (2.5, 0.99959304798255504)];
        foreach (var (x, e) in erf)
        {
            Assert.Equal(e, Float64Erf.Erf(x), 1e-14);
            Assert.Equal(-e, Float64Erf.Erf(-x), 1e-14);
        }
        (double X, double Erfc)[] erfc = [(2.5, 0.00040695201744495894), (3, 2.2090496998585441e-5), (4, 1.5417257900280019e-8),
            (6, 2.1519736712498913e-17), (9, 4.1370317465138102e-37)];
        foreach (var (x, e) in erfc)
            Assert.True(Math.Abs(Float64Erf.Erfc(x) / e - 1) < 1e-12, $"erfc({x}) = {Float64Erf.Erfc(x):R}, expected {e:R}");
    }
}
