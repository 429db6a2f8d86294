using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace LlavaNative.Kernels.Cpu.Ops;

/// <summary>
/// e^x for the arguments a softmax feeds it after subtracting the row maximum (x ≤ 0), vectorized in float:
/// x = n·ln 2 + r with |r| ≤ ln 2 / 2 (ln 2 split in two constants so r is exact), e^r by Cephes' degree-5 minimax
/// polynomial, 2^n built in the exponent bits. Within 2 ulp of exp over [−87.3, 0]; arguments below −87.3 give
/// e^−87.3 ≈ 1.2e-38 instead of 0 (nothing beside a row's maximum term, which is 1). .NET's Vector512.Exp widens to
/// double and was a measurable part of the vision towers' attention.
/// </summary>
internal static class SoftmaxExp
{
    private const float Lowest = -87.3f;
    private const float Log2E = 1.44269504088896341f;
    private const float Ln2Hi = 0.693359375f;      // ln 2 in 9 significant bits: n·Ln2Hi is exact for |n| ≤ 126
    private const float Ln2Lo = -2.12194440e-4f;   // ln 2 − Ln2Hi
    private const float P0 = 1.9875691500e-4f, P1 = 1.3981999507e-3f, P2 = 8.3334519073e-3f,
                        P3 = 4.1665795894e-2f, P4 = 1.6666665459e-1f, P5 = 5.0000001201e-1f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x)
    {
        x = Vector512.Max(x, Vector512.Create(Lowest));
        var n = Vector512.Floor(Vector512.FusedMultiplyAdd(x, Vector512.Create(Log2E), Vector512.Create(0.5f)));
        var r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Hi), x);
        r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Lo), r);
        var p = Vector512.FusedMultiplyAdd(Vector512.Create(P0), r, Vector512.Create(P1));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P2));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P3));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P4));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P5));
        var e = Vector512.FusedMultiplyAdd(p, r * r, r + Vector512<float>.One);
        var twoToN = Vector512.ShiftLeft(Vector512.ConvertToInt32(n) + Vector512.Create(127), 23).AsSingle();
        return e * twoToN;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> x)
    {
        x = Vector256.Max(x, Vector256.Create(Lowest));
        var n = Vector256.Floor(Vector256.FusedMultiplyAdd(x, Vector256.Create(Log2E), Vector256.Create(0.5f)));
        var r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Hi), x);
        r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Lo), r);
        var p = Vector256.FusedMultiplyAdd(Vector256.Create(P0), r, Vector256.Create(P1));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(P2));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(P3));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(P4));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(P5));
        var e = Vector256.FusedMultiplyAdd(p, r * r, r + Vector256<float>.One);
        var twoToN = Vector256.ShiftLeft(Vector256.ConvertToInt32(n) + Vector256.Create(127), 23).AsSingle();
        return e * twoToN;
    }
}
