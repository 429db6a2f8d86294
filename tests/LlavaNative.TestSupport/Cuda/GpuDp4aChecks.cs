using LlavaNative.Kernels.Cpu.Quant;
using LlavaNative.Kernels.Cuda;
using LlavaNative.Kernels.Tensors;

namespace LlavaNative.TestSupport.Cuda;

/// <summary>
/// The integer prefill mat-mul (matmul_dp4a.cu through <see cref="CudaOps.MatMulDp4a"/>) against the CPU: the device's
/// Q8_0 activation blocks must be the bytes of the CPU quantizer (<see cref="QuantRegistry.Activation"/>); the products
/// must equal the CPU's scalar VecDot on those blocks bit for bit (same integers, same float operations in the same
/// order), and the CPU's SIMD VecDot (the production path) within float reassociation: per element
/// |Δ| ≤ 1e-6·Σ_b |d_w·d_x|·Σ_j |w_j·x_j|. Sizes off every tile: 70 rows, 37 tokens, 96 and 160 columns, output stride
/// rows + 3 (padding must keep its NaN). Shared by the xunit tests and tools/device/GpuCheck.
/// </summary>
public static unsafe class GpuDp4aChecks
{
    public static IReadOnlyList<(string Name, Func<IGpuDevice, int, GpuCheckResult> Run)> All { get; } =
    [
        ("dp4a quantize rows Q8_0", QuantizeCheck),
        ("dp4a matmul Q8_0 96 cols", (d, seed) => MatMulCheck(d, TensorType.Q8_0, 96, seed)),
        ("dp4a matmul Q8_0 160 cols", (d, seed) => MatMulCheck(d, TensorType.Q8_0, 160, seed)),
        ("dp4a matmul Q4_0 96 cols", (d, seed) => MatMulCheck(d, TensorType.Q4_0, 96, seed)),
        ("dp4a matmul Q4_0 160 cols", (d, seed) => MatMulCheck(d, TensorType.Q4_0, 160, seed)),
    ];

    private static float[] Activations(Random rng, int n)
    {
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)((rng.NextDouble() * 2 - 1) * (i % 7 == 0 ? 4 : 1));
        for (int i = 0; i < 32 && i < n; i++) x[i] = 0; // an all-zero block: scale 0
        return x;
    }

    /// <summary>Q8_0 blocks [34 bytes: F16 d, 32 int8] of the CPU's activation quantizer for each row.</summary>
    private static byte[] CpuBlocks(float[] x, int cols, int tokens)
    {
        var quantizer = QuantRegistry.Activation(TensorType.Q8_0);
        var blocks = new byte[(long)tokens * (cols / 32) * 34];
        fixed (float* px = x)
        fixed (byte* pb = blocks)
            for (int t = 0; t < tokens; t++) quantizer.QuantizeRow(px + (long)t * cols, pb + (long)t * (cols / 32) * 34, cols);
        return blocks;
    }

    public static GpuCheckResult QuantizeCheck(IGpuDevice device, int seed)
    {
        var rng = new Random(seed);
        const int cols = 160, tokens = 37;
        float[] x = Activations(rng, cols * tokens);
        byte[] expected = CpuBlocks(x, cols, tokens);
        using var ops = new CudaOps(device);
        using var dx = device.Upload<float>(x);
        using var xq = device.Allocate((long)cols * tokens);
        using var xd = device.Allocate((long)tokens * (cols / 32) * 4);
        ops.QuantizeRowsQ8_0(dx, xq, xd, cols, tokens);
        var q = device.Download<sbyte>(xq);
        var d = device.Download<float>(xd);
        int wrongQ = 0, wrongD = 0;
        for (int b = 0; b < tokens * (cols / 32); b++)
        {
            float scale = (float)BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(expected, b * 34));
            if (BitConverter.SingleToInt32Bits(scale) != BitConverter.SingleToInt32Bits(d[b])) wrongD++;
            for (int j = 0; j < 32; j++) if ((sbyte)expected[b * 34 + 2 + j] != q[b * 32 + j]) wrongQ++;
        }
        return new GpuCheckResult("dp4a quantize rows Q8_0", wrongQ == 0 && wrongD == 0, wrongQ + wrongD, 0, "identical int8 values and F16 scales",
            $"{tokens} rows × {cols}; {wrongQ} int8 and {wrongD} scales differ");
    }

    public static GpuCheckResult MatMulCheck(IGpuDevice device, TensorType type, int cols, int seed)
    {
        var rng = new Random(seed * 31 + cols);
        const int rows = 70, tokens = 37;
        int stride = rows + 3;
        long rowBytes = TensorTypeInfo.RowBytes(type, cols);
        var w = new byte[rowBytes * rows];
        for (int r = 0; r < rows; r++) QuantTestData.RandomRow(type, cols, rng, realistic: false).CopyTo(w, rowBytes * r);
        float[] x = Activations(rng, cols * tokens);
        byte[] blocks = CpuBlocks(x, cols, tokens);
        long activationRowBytes = (cols / 32) * 34L;
        var scalar = QuantRegistry.ScalarKernels(type);
        var simd = QuantRegistry.Kernels(type);

        using var ops = new CudaOps(device) { QuantizedMatMulPath = QuantizedMatMulPath.Dp4a };
        using var dw = device.Upload<byte>(w);
        using var dx = device.Upload<float>(x);
        using var dy = device.Allocate(tokens * stride * 4L);
        device.Fill(dy, 0xFF, dy.Bytes); // NaN
        ops.MatMul(type, dw, dx, dy, rows, cols, tokens, stride); // 37 ≥ Dp4aMinTokens: the dp4a kernel
        float[] y = device.Download<float>(dy);

        int notExact = 0, padding = 0;
        double maxAbs = 0, worstRatio = 0;
        string worst = "";
        fixed (byte* pw = w)
        fixed (byte* pb = blocks)
        {
            for (int t = 0; t < tokens; t++)
            {
                for (int r = 0; r < stride; r++)
                {
                    float got = y[t * stride + r];
                    if (r >= rows) { if (!float.IsNaN(got)) padding++; continue; }
                    byte* wr = pw + rowBytes * r;
                    byte* xr = pb + activationRowBytes * t;
                    float exact = scalar.VecDot(cols, wr, xr);
                    float fast = simd.VecDot(cols, wr, xr);
                    if (BitConverter.SingleToInt32Bits(got) != BitConverter.SingleToInt32Bits(exact)) notExact++;
                    double scale = AbsTermSum(type, wr, xr, cols);
                    double d = Math.Abs(got - (double)fast);
                    maxAbs = Math.Max(maxAbs, d);
                    double ratio = d / Math.Max(scale, 1e-30);
                    if (ratio > worstRatio) { worstRatio = ratio; worst = $"token {t} row {r}: GPU {got:R}, CPU SIMD {fast:R}, scalar {exact:R}"; }
                }
            }
        }
        bool passed = notExact == 0 && padding == 0 && worstRatio <= 1e-6;
        return new GpuCheckResult($"dp4a matmul {type} {cols} cols", passed, maxAbs, worstRatio,
            "bit-identical to the CPU scalar VecDot; |Δ| ≤ 1e-6·Σ|d_w·d_x·w_j·x_j| vs the CPU SIMD VecDot",
            $"{rows} rows × {tokens} tokens × {cols}; {notExact} not bit-identical to scalar, {padding} padding written; worst vs SIMD {worst}");
    }

    /// <summary>
    /// Σ_b |d_w · d_x| · Σ_j |w_j · x_j| in double: the scale of the float rounding in a product (the SIMD CPU paths
    /// convert partial integer sums of a block to float per lane, so cancellation inside a block does not shrink it).
    /// </summary>
    private static double AbsTermSum(TensorType type, byte* w, byte* x, int cols)
    {
        int wBlock = type == TensorType.Q8_0 ? 34 : 18;
        double sum = 0;
        for (int b = 0; b < cols / 32; b++, w += wBlock, x += 34)
        {
            int isum = 0;
            for (int j = 0; j < 32; j++)
            {
                int wq = type == TensorType.Q8_0 ? (sbyte)w[2 + j] : (j < 16 ? w[2 + j] & 0xF : w[2 + j - 16] >> 4) - 8;
                isum += Math.Abs(wq * (sbyte)x[2 + j]);
            }
            sum += Math.Abs(isum * (double)(float)BitConverter.UInt16BitsToHalf(*(ushort*)w) * (float)BitConverter.UInt16BitsToHalf(*(ushort*)x));
        }
        return sum;
    }
}
