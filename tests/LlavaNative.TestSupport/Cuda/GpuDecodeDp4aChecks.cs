using LlavaNative.Kernels.Cpu.Quant;
using LlavaNative.Kernels.Cuda;
using LlavaNative.Kernels.Tensors;
using LlavaNative.Model.Language;

namespace LlavaNative.TestSupport.Cuda;

/// <summary>
/// The integer decode mat-vec (matvec_dp4a.cu through <see cref="CudaOps.MatVec"/> with
/// <see cref="QuantizedMatMulPath.Dp4a"/>) against the CPU. The device's Q8_1 activation blocks must be the bytes of the
/// CPU's scalar quantizer (d, s and the 32 int8). Each product must equal the CPU's scalar VecDot on the CPU-quantized
/// activation up to float reassociation (the kernel forms every block's term with the CPU's operations but sums the
/// terms in 8 interleaved chains and a shuffle tree): per row |Δ| ≤ 1e-6·Σ_b (|d_w·d_x|·Σ_j |w_j·x_j| + |m_w·s_x|).
/// Sizes: 37 rows (not a multiple of the kernel's 4 rows per block) × 1, 3, 5 and 7 blocks, and 6 rows × 4096; an
/// all-zero weight block and an all-zero activation block; outputs past the last row must keep their NaN. The
/// end-to-end checks run a GPU decoder on the Dp4a path against the CPU decoder on the same quantized weights
/// (<see cref="GpuDecoderChecks.Dp4aDecode"/>). Shared by the xunit tests and tools/device/GpuCheck.
/// </summary>
public static unsafe class GpuDecodeDp4aChecks
{
    /// <summary>Max |Δ| / Σ_b (|d_w·d_x|·Σ_j |w_j·x_j| + |m_w·s_x|) per row vs the CPU scalar VecDot.</summary>
    public const double RelativeTolerance = 1e-6;

    public static IReadOnlyList<TensorType> Types { get; } =
        [TensorType.Q8_0, TensorType.Q4_0, TensorType.Q4_1, TensorType.Q5_0, TensorType.Q5_1, TensorType.IQ4_NL];

    public static IReadOnlyList<(string Name, Func<IGpuDevice, int, GpuCheckResult> Run)> All { get; } =
    [
        ("dp4a quantize rows Q8_1", QuantizeQ8_1Check),
        .. Types.Select(t => ($"dp4a matvec {TensorTypeInfo.Name(t)}", (Func<IGpuDevice, int, GpuCheckResult>)((d, seed) => MatVecCheck(d, t, seed)))),
        ("decoder llama Q4_0 dp4a decode (graphs and direct) vs CPU Q4_0",
            (d, seed) => GpuDecoderChecks.Dp4aDecode(d, RandomModelArchitecture.Llama, TensorType.Q4_0, seed)),
        ("decoder qwen2 Q5_1 dp4a decode (graphs and direct) vs CPU Q5_1",
            (d, seed) => GpuDecoderChecks.Dp4aDecode(d, RandomModelArchitecture.Qwen2, TensorType.Q5_1, seed)),
    ];

    private static readonly (int Rows, int Cols)[] s_shapes = [(37, 32), (37, 96), (37, 160), (37, 224), (6, 4096)];

    /// <summary>Activations in ±1 with every 7th value ×4, the first block all zero (scale 0).</summary>
    private static float[] Activations(Random rng, int n)
    {
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)((rng.NextDouble() * 2 - 1) * (i % 7 == 0 ? 4 : 1));
        for (int i = 0; i < 32 && i < n; i++) x[i] = 0;
        return x;
    }

    public static GpuCheckResult QuantizeQ8_1Check(IGpuDevice device, int seed)
    {
        const string name = "dp4a quantize rows Q8_1";
        var rng = new Random(seed);
        const int cols = 160, tokens = 37, blocksPerRow = cols / 32;
        float[] x = Activations(rng, cols * tokens);
        var quantizer = QuantRegistry.ScalarActivation(TensorType.Q8_1);
        var expected = new byte[tokens * blocksPerRow * ActivationQuantizers.Q8_1BlockBytes];
        fixed (float* px = x)
        fixed (byte* pe = expected)
            for (int t = 0; t < tokens; t++) quantizer.QuantizeRow(px + t * cols, pe + t * blocksPerRow * ActivationQuantizers.Q8_1BlockBytes, cols);

        using var ops = new CudaOps(device);
        using var dx = device.Upload<float>(x);
        using var xq = device.Allocate((long)cols * tokens);
        using var xd = device.Allocate(tokens * blocksPerRow * 4L);
        using var xs = device.Allocate(tokens * blocksPerRow * 4L);
        ops.QuantizeRowsQ8_1(dx, xq, xd, xs, cols, tokens);
        var q = device.Download<sbyte>(xq);
        var d = device.Download<float>(xd);
        var s = device.Download<float>(xs);
        int wrongQ = 0, wrongD = 0, wrongS = 0;
        for (int b = 0; b < tokens * blocksPerRow; b++)
        {
            int o = b * ActivationQuantizers.Q8_1BlockBytes;
            if (!SameBits(Half(expected, o), d[b])) wrongD++;
            if (!SameBits(Half(expected, o + 2), s[b])) wrongS++;
            for (int j = 0; j < 32; j++) if ((sbyte)expected[o + 4 + j] != q[b * 32 + j]) wrongQ++;
        }
        return new GpuCheckResult(name, wrongQ + wrongD + wrongS == 0, wrongQ + wrongD + wrongS, 0,
            "identical int8 values, F16 d and F16 s as the CPU's scalar Q8_1 quantizer",
            $"{tokens} rows × {cols}; {wrongQ} int8, {wrongD} d and {wrongS} s differ");
    }

    public static GpuCheckResult MatVecCheck(IGpuDevice device, TensorType type, int seed)
    {
        string name = $"dp4a matvec {TensorTypeInfo.Name(type)}";
        var rng = new Random(seed * 131 + (int)type);
        var scalar = QuantRegistry.ScalarKernels(type);
        var quantizer = QuantRegistry.Activation(scalar.DotType); // the production quantizer (bytes identical to the scalar one)
        int xBlockBytes = scalar.DotType == TensorType.Q8_1 ? ActivationQuantizers.Q8_1BlockBytes : ActivationQuantizers.Q8_0BlockBytes;
        int wBlockBytes = TensorTypeInfo.BlockBytes(type);
        using var ops = new CudaOps(device) { QuantizedMatMulPath = QuantizedMatMulPath.Dp4a };

        int checkedRows = 0, identical = 0, padding = 0, nonFinite = 0;
        double maxAbs = 0, worstRatio = 0;
        string worst = "";
        foreach (var (rows, cols) in s_shapes)
        {
            long rowBytes = TensorTypeInfo.RowBytes(type, cols);
            var w = new byte[rowBytes * rows];
            for (int r = 0; r < rows; r++) QuantTestData.RandomRow(type, cols, rng, realistic: false).CopyTo(w, rowBytes * r);
            Array.Clear(w, (int)(rowBytes * (rows - 1)), wBlockBytes); // the last row's first block all zero (scales too)
            float[] x = Activations(rng, cols);
            var blocks = new byte[cols / 32 * xBlockBytes];
            fixed (float* px = x)
            fixed (byte* pb = blocks)
                quantizer.QuantizeRow(px, pb, cols);

            using var dw = device.Upload<byte>(w);
            using var dx = device.Upload<float>(x);
            using var dy = device.Allocate((rows + 3) * 4L);
            device.Fill(dy, 0xFF, dy.Bytes); // NaN
            ops.MatVec(type, dw, dx, dy, rows, cols);
            float[] y = device.Download<float>(dy);
            for (int r = rows; r < rows + 3; r++) if (!float.IsNaN(y[r])) padding++;

            fixed (byte* pw = w)
            fixed (byte* pb = blocks)
            {
                for (int r = 0; r < rows; r++)
                {
                    byte* wr = pw + rowBytes * r;
                    float expected = scalar.VecDot(cols, wr, pb);
                    float got = y[r];
                    checkedRows++;
                    if (!float.IsFinite(got)) { nonFinite++; continue; }
                    if (SameBits(expected, got)) identical++;
                    double diff = Math.Abs(got - (double)expected);
                    double scale = AbsTermSum(type, wr, pb, cols, wBlockBytes, xBlockBytes);
                    double ratio = diff == 0 ? 0 : diff / Math.Max(scale, 1e-30);
                    maxAbs = Math.Max(maxAbs, diff);
                    if (ratio > worstRatio)
                    {
                        worstRatio = ratio;
                        worst = $"{rows}×{cols} row {r}: GPU {got:R}, CPU scalar {expected:R}";
                    }
                }
            }
        }
        bool passed = padding == 0 && nonFinite == 0 && worstRatio <= RelativeTolerance;
        return new GpuCheckResult(name, passed, maxAbs, worstRatio,
            $"per row |Δ| ≤ {RelativeTolerance:0e0}·Σ_b(|d_w·d_x|·Σ|w_j·x_j| + |m_w·s_x|) vs the CPU scalar VecDot",
            $"{checkedRows} rows over {string.Join(", ", s_shapes.Select(s => $"{s.Rows}×{s.Cols}"))}; {identical} bit-identical to the scalar VecDot; " +
            $"{nonFinite} not finite, {padding} padding written; worst {worst}");
    }

    private static float Half(byte[] bytes, int offset) => (float)BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(bytes, offset));

    private static float Half(byte* p) => (float)BitConverter.UInt16BitsToHalf(*(ushort*)p);

    private static bool SameBits(float a, float b) => BitConverter.SingleToInt32Bits(a) == BitConverter.SingleToInt32Bits(b);

    /// <summary>
    /// Σ_b (|d_w·d_x|·Σ_j |w_j·x_j| + |m_w·s_x|) in double, w_j the integer weight codes (the scale of the float rounding
    /// in a product). The codes are read here from ggml's block layouts, independently of the kernels.
    /// </summary>
    private static double AbsTermSum(TensorType type, byte* w, byte* x, int cols, int wBlockBytes, int xBlockBytes)
    {
        bool q81 = xBlockBytes == ActivationQuantizers.Q8_1BlockBytes;
        double sum = 0;
        for (int b = 0; b < cols / 32; b++, w += wBlockBytes, x += xBlockBytes)
        {
            sbyte* qx = (sbyte*)(x + (q81 ? 4 : 2));
            long isum = 0;
            for (int j = 0; j < 32; j++) isum += Math.Abs(WeightCode(type, w, j) * qx[j]);
            sum += Math.Abs(isum * (double)Half(w) * Half(x));
            if (q81) sum += Math.Abs((double)Half(w + 2) * Half(x + 2));
        }
        return sum;
    }

    private static ReadOnlySpan<sbyte> Iq4NlValues => [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

    private static int Nibble(byte* q, int j) => j < 16 ? q[j] & 15 : q[j - 16] >> 4;

    private static int HighBit(byte* qh, int j) => (int)((*(uint*)qh >> j) & 1) << 4;

    private static int WeightCode(TensorType type, byte* block, int j) => type switch
    {
        TensorType.Q8_0 => ((sbyte*)block)[2 + j],
        TensorType.Q4_0 => Nibble(block + 2, j) - 8,
        TensorType.Q4_1 => Nibble(block + 4, j),
        TensorType.Q5_0 => (Nibble(block + 6, j) | HighBit(block + 2, j)) - 16,
        TensorType.Q5_1 => Nibble(block + 8, j) | HighBit(block + 4, j),
        TensorType.IQ4_NL => Iq4NlValues[Nibble(block + 2, j)],
        _ => throw new NotSupportedException($"no dp4a mat-vec check for {TensorTypeInfo.Name(type)}"),
    };
}
