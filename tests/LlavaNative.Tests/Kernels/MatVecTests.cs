using Xunit;
using LlavaNative.Kernels.Cpu;
using LlavaNative.Kernels.Cpu.Ops;
using LlavaNative.Kernels.Cpu.Quant;
using LlavaNative.Kernels.Tensors;
using LlavaNative.TestSupport;
using Xunit.Abstractions;

namespace LlavaNative.Tests.Kernels;

/// <summary>
/// The multi-row decode kernels (<see cref="QuantKernels.MatVec"/>, AVX-512 only: the other ISA paths have none and
/// MatMul then takes one VecDot per row, which <see cref="IsaCoverageTests"/> covers) against the scalar reference
/// <see cref="QuantKernels.VecDot"/> of <see cref="QuantRegistry.ScalarKernels"/> per row, on random rows whose block
/// scales include zero, subnormal and negative halves (and Q8_0 quants of −128): block counts 1–5 (every remainder of
/// the 4-block step), 35 and 152, and through MatMul with row counts that leave 1–3 rows to the per-row path,
/// on pools of 1 and 2 threads. Tolerance: float rounding of the sums, 2e-6 of Σ|wᵢxᵢ|.
/// </summary>
public unsafe class MatVecTests(ITestOutputHelper output)
{
    public static TheoryData<TensorType> TypesWithMatVec()
    {
        var data = new TheoryData<TensorType>();
        foreach (var t in QuantRegistry.WeightTypes)
            if (QuantRegistry.Kernels(t).MatVec != null) data.Add(t);
        if (data.Count == 0) data.Add(TensorType.Q4_0); // on a CPU without AVX-512 the test reports that it has nothing to check
        return data;
    }

    [Theory]
    [MemberData(nameof(TypesWithMatVec))]
    public void RowGroupsMatchScalarVecDot(TensorType type)
    {
        var kernels = QuantRegistry.Kernels(type);
        if (kernels.MatVec == null)
        {
            output.WriteLine($"{type}: no MatVec kernel on this CPU (AVX-512 absent); MatMul uses VecDot per row");
            return;
        }
        var scalar = QuantRegistry.ScalarKernels(type);
        var rng = new Random(91 + (int)type);
        int rows = kernels.MatVecRows;
        double worst = 0;
        foreach (int blocks in new[] { 1, 2, 3, 4, 5, 35, 152 })
        {
            int cols = blocks * TensorTypeInfo.BlockElements(type);
            long rowBytes = TensorTypeInfo.RowBytes(type, cols);
            var w = new byte[rowBytes * rows];
            for (int r = 0; r < rows; r++) QuantTestData.RandomRow(type, cols, rng).CopyTo(w, r * rowBytes);
            float[] xf = QuantTestData.RandomActivations(cols, rng);
            var x = new byte[QuantRegistry.ActivationRowBytes(kernels, cols)];
            var xScalar = new byte[QuantRegistry.ActivationRowBytes(scalar, cols)];
            var y = new float[rows];
            var wf = new float[cols];
            var xq = new float[cols];
            fixed (byte* pw = w, px = x, pxs = xScalar)
            fixed (float* pxf = xf, py = y, pwf = wf, pxq = xq)
            {
                QuantRegistry.ActivationQuantizerFor(kernels).QuantizeRow(pxf, px, cols);
                QuantRegistry.ActivationQuantizerFor(scalar).QuantizeRow(pxf, pxs, cols);
                kernels.MatVec(cols, pw, rowBytes, px, py);
                VecDotTests.DequantizeActivation(scalar.DotType, pxs, pxq, cols);
                for (int r = 0; r < rows; r++)
                {
                    scalar.Dequantize(pw + r * rowBytes, pwf, cols);
                    double magnitude = 1e-30;
                    for (int i = 0; i < cols; i++) magnitude += Math.Abs((double)pwf[i] * pxq[i]);
                    float expected = scalar.VecDot(cols, pw + r * rowBytes, pxs);
                    double error = Math.Abs(y[r] - expected) / magnitude;
                    worst = Math.Max(worst, error);
                    Assert.True(error <= 2e-6, $"{type} {blocks} blocks, row {r}: MatVec {y[r]:R} vs scalar VecDot {expected:R} (Σ|wx| {magnitude:G4})");
                }
            }
        }
        output.WriteLine($"{type}: MatVec vs scalar VecDot, worst error {worst:G3} of Σ|wx|");
    }

    [Theory]
    [MemberData(nameof(TypesWithMatVec))]
    public void MatMulDecodeMatchesScalarTable(TensorType type)
    {
        var kernels = QuantRegistry.Kernels(type);
        var scalar = QuantRegistry.ScalarKernels(type);
        var rng = new Random(17 + (int)type);
        int cols = 7 * TensorTypeInfo.BlockElements(type);
        long rowBytes = TensorTypeInfo.RowBytes(type, cols);
        foreach (int threads in new[] { 1, 2 })
        {
            using var pool = new ComputeThreadPool(threads);
            foreach (int rows in new[] { 1, 3, 4, 5, 18, 39, 70 })
            {
                var w = new byte[rowBytes * rows];
                for (int r = 0; r < rows; r++) QuantTestData.RandomRow(type, cols, rng).CopyTo(w, r * rowBytes);
                float[] xf = QuantTestData.RandomActivations(cols, rng);
                var got = new float[rows];
                var expected = new float[rows];
                var scratch = new byte[Math.Max(64, MatMul.ScratchBytes(type, cols, 1))];
                var wf = new float[cols];
                fixed (byte* pw = w, ps = scratch)
                fixed (float* px = xf, pg = got, pe = expected, pwf = wf)
                {
                    var matrix = new WeightMatrix(pw, type, rows, cols);
                    MatMul.Compute(pool, matrix, kernels, px, 1, pg, ps);
                    MatMul.Compute(pool, matrix, scalar, px, 1, pe, ps);
                    for (int r = 0; r < rows; r++)
                    {
                        scalar.Dequantize(pw + r * rowBytes, pwf, cols);
                        double magnitude = 1e-30;
                        for (int i = 0; i < cols; i++) magnitude += Math.Abs((double)pwf[i] * px[i]);
                        Assert.True(Math.Abs(got[r] - expected[r]) / magnitude <= 2e-6,
                            $"{type} {rows} rows, {threads} threads: y[{r}] = {got[r]:R}, scalar table {expected[r]:R}");
                    }
                }
            }
        }
    }
}
