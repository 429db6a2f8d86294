using System.Runtime.Intrinsics;
using LlavaNative.Kernels.Cpu.Ops;
using Xunit;

namespace LlavaNative.Tests.Kernels;

/// <summary>The softmax's vectorized e^x against double-precision Math.Exp.</summary>
public sealed class SoftmaxExpTests
{
    // 2 ulp of a float in [1, 2) is 2.4e-7; the bound allows for the result's own rounding below 1.
    private const double RelativeTolerance = 3e-7;

    private static IEnumerable<float> Arguments()
    {
        var rng = new Random(7);
        for (int i = 0; i < 200_000; i++) yield return -87.3f * (float)rng.NextDouble();
        for (int i = 0; i < 20_000; i++) yield return -(float)rng.NextDouble() * 1e-3f; // near the row maximum
        foreach (float x in new[] { 0f, -0f, -1e-30f, -0.34657359f, -0.34657360f, -0.6931472f, -1f, -10f, -87.29f, -87.3f })
            yield return x;
    }

    [Fact]
    public void Vector512_WithinTwoUlpOfExp_OnTheSoftmaxRange()
    {
        double worst = Check(16, (buffer, i) => SoftmaxExp.Exp(Vector512.Create(buffer.AsSpan(i, 16))).CopyTo(buffer.AsSpan(i, 16)));
        Assert.True(worst <= RelativeTolerance, $"max relative error {worst:E3} > {RelativeTolerance:E0}");
    }

    [Fact]
    public void Vector256_WithinTwoUlpOfExp_OnTheSoftmaxRange()
    {
        double worst = Check(8, (buffer, i) => SoftmaxExp.Exp(Vector256.Create(buffer.AsSpan(i, 8))).CopyTo(buffer.AsSpan(i, 8)));
        Assert.True(worst <= RelativeTolerance, $"max relative error {worst:E3} > {RelativeTolerance:E0}");
    }

    [Fact]
    public void BelowTheRange_GivesAnIgnorablyTinyValue_NotNaNOrInfinity()
    {
        var x = Vector512.Create(-88f, -100f, -1e4f, -3.4e38f, float.NegativeInfinity, -87.31f, -200f, -90f,
                                 -88f, -100f, -1e4f, -3.4e38f, float.NegativeInfinity, -87.31f, -200f, -90f);
        var e = SoftmaxExp.Exp(x);
        for (int i = 0; i < 16; i++)
            Assert.True(e[i] >= 0 && e[i] <= 1.3e-38f, $"exp({x[i]}) = {e[i]}");
    }

    private static double Check(int width, Action<float[], int> apply)
    {
        var args = Arguments().ToArray();
        var buffer = new float[(args.Length + width - 1) / width * width];
        args.CopyTo(buffer, 0);
        for (int i = 0; i < buffer.Length; i += width) apply(buffer, i);
        double worst = 0;
        for (int i = 0; i < args.Length; i++)
        {
            double exact = Math.Exp(args[i]);
            worst = Math.Max(worst, Math.Abs(buffer[i] - exact) / exact);
        }
        return worst;
    }
}
