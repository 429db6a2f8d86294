using LlavaNative.Kernels.Cpu.Ops;
using LlavaNative.Kernels.Cpu.Quant;
using LlavaNative.Kernels.Cuda;
using LlavaNative.Kernels.Tensors;

namespace LlavaNative.TestSupport.Cuda;

/// <summary>Outcome of one device-vs-CPU comparison.</summary>
public sealed record GpuCheckResult(string Name, bool Passed, double MaxAbs, double RelL2, string Tolerance, string Detail = "")
{
    public override string ToString() =>
        $"{(Passed ? "PASS" : "FAIL")} {Name,-34} max|Δ| {MaxAbs:0.00e+00}  rel L2 {RelL2:0.00e+00}  (tolerance {Tolerance}){(Detail.Length > 0 ? "  " + Detail : "")}";
}

/// <summary>
/// Per-op checks of the CUDA kernels (through <see cref="CudaOps"/>) against the CPU ops on random inputs of
/// awkward sizes (row counts that are not multiples of the rows per block, row lengths below and above one
/// warp's share, partial rotary dims, GQA, strides with padding). The same checks run on the host emulator in
/// the xunit tests and on a real GPU in the xunit tests (when one is present) and in tools/device/GpuCheck.
/// Every output buffer starts as NaN (the emulator poisons allocations; here it is filled explicitly), so an
/// element a kernel forgets to write fails the check on either device.
/// </summary>
public static unsafe partial class GpuOpChecks
{
    /// <summary>One shape for <see cref="TiledAttentionCheck"/>.</summary>
    public sealed record TiledAttentionCase(string Name, int Tokens, int StartPos, int Keys, bool Causal, int Heads, int KvHeads, int HeadDim);

    /// <summary>
    /// Shapes for the tiled tensor-core kernel: every padded head dim it has (24 → 32, 40 → 64, 64, 72 → 80, 96, 128),
    /// GQA 4:1, 2:1 and 1:1, token and key counts off the 64-row / 64-key tiles (16, 20, 26, 37, 70, 129) and on them
    /// (64 queries after 64 cached keys), causal with a cache (start_pos 37, 64 and 100: tiles partly and wholly past
    /// the diagonal, warps with no rows) and from 0, and
    /// bidirectional with as many or more keys than queries.
    /// </summary>
    // Declared before All, which reads it while the class initializes.
    public static IReadOnlyList<TiledAttentionCase> TiledAttentionCases { get; } =
    [
        new("attention tiled causal cache gqa4 d64", Tokens: 70, StartPos: 37, Keys: 107, Causal: true, Heads: 8, KvHeads: 2, HeadDim: 64),
        new("attention tiled causal gqa4 d128", Tokens: 129, StartPos: 0, Keys: 129, Causal: true, Heads: 4, KvHeads: 1, HeadDim: 128),
        new("attention tiled causal cache 20 rows d80", Tokens: 20, StartPos: 100, Keys: 120, Causal: true, Heads: 2, KvHeads: 2, HeadDim: 80),
        new("attention tiled causal cache tile-aligned gqa2 d64", Tokens: 64, StartPos: 64, Keys: 128, Causal: true, Heads: 4, KvHeads: 2, HeadDim: 64),
        new("attention tiled causal gqa3 d40", Tokens: 16, StartPos: 0, Keys: 16, Causal: true, Heads: 6, KvHeads: 2, HeadDim: 40),
        new("attention tiled bidir siglip d72", Tokens: 37, StartPos: 0, Keys: 37, Causal: false, Heads: 3, KvHeads: 3, HeadDim: 72),
        new("attention tiled bidir clip d64", Tokens: 129, StartPos: 0, Keys: 129, Causal: false, Heads: 2, KvHeads: 2, HeadDim: 64),
        new("attention tiled bidir more keys gqa2 d96", Tokens: 37, StartPos: 0, Keys: 70, Causal: false, Heads: 4, KvHeads: 2, HeadDim: 96),
        new("attention tiled bidir d24", Tokens: 26, StartPos: 0, Keys: 26, Causal: false, Heads: 3, KvHeads: 3, HeadDim: 24),
    ];

    /// <summary>Every check, by name.</summary>
    public static IReadOnlyList<(string Name, Func<IGpuDevice, int, GpuCheckResult> Run)> All { get; } = BuildAll();

    private static List<(string, Func<IGpuDevice, int, GpuCheckResult>)> BuildAll()
    {
        var all = new List<(string, Func<IGpuDevice, int, GpuCheckResult>)>();
        foreach (TensorType type in CudaOps.WeightTypes)
        {
            all.Add(($"matvec {type}", (d, seed) => MatVec(d, type, seed)));
            all.Add(($"get_rows {type}", (d, seed) => GetRows(d, type, seed)));
            all.Add(($"matmul {type}", (d, seed) => MatMul(d, type, seed)));
        }
        all.Add(("matmul tensor cores F16", (d, seed) => MatMulTensorCores(d, TensorType.F16, seed)));
        all.Add(("matmul tensor cores BF16", (d, seed) => MatMulTensorCores(d, TensorType.BF16, seed)));
        all.Add(("matmul tensor cores v2 F16", (d, seed) => MatMulTensorCoresV2(d, TensorType.F16, seed)));
        all.Add(("matmul tensor cores v2 BF16", (d, seed) => MatMulTensorCoresV2(d, TensorType.BF16, seed)));
        foreach (TensorType type in CudaOps.WeightTypes.Where(t => TensorTypeInfo.BlockElements(t) > 1))
            all.Add(($"matmul tensor cores dequantized {type}", (d, seed) => MatMulDequantizedTensorCores(d, type, seed)));
        all.Add(("patch embedding (im2col + matmul F16)", PatchEmbeddingCheck));
        all.Add(("rms_norm", RmsNormCheck));
        all.Add(("layer_norm", LayerNormCheck));
        all.Add(("softmax", SoftmaxCheck));
        all.Add(("rope normal", (d, seed) => RopeCheck(d, RopeMode.Normal, seed)));
        all.Add(("rope neox", (d, seed) => RopeCheck(d, RopeMode.Neox, seed)));
        all.Add(("attention decode gqa", (d, seed) => AttentionCheck(d, tokens: 1, startPos: 0, causal: true, headDim: 40, seed)));
        all.Add(("attention causal gqa", (d, seed) => AttentionCheck(d, tokens: 3, startPos: 9, causal: true, headDim: 40, seed)));
        all.Add(("attention bidirectional", (d, seed) => AttentionCheck(d, tokens: 2, startPos: 0, causal: false, headDim: 96, seed)));
        // The F32 kernel forced at a prefill-sized batch (Auto would take the tensor cores there): still within 1e-5.
        all.Add(("attention F32 forced t37 causal", (d, seed) => AttentionCheck(d, tokens: 37, startPos: 5, causal: true, headDim: 72, seed, AttentionPath.F32)));
        foreach (var c in TiledAttentionCases) all.Add((c.Name, (d, seed) => TiledAttentionCheck(d, c, seed)));
        AddDecodeStepChecks(all); // GpuOpChecks.DecodeStep.cs: the position-from-device kernels of graph-captured decode steps
        AddHalfKvChecks(all);     // GpuOpChecks.HalfKv.cs: the F16 KV cache's append, store and attention kernels
        all.Add(("add / bias / scale", ElementwiseCheck));
        all.Add(("copy", CopyCheck));
        all.Add(("position embeddings + class row", (d, seed) => PositionEmbeddingsCheck(d, withClass: true, seed)));
        all.Add(("position embeddings, no class row", (d, seed) => PositionEmbeddingsCheck(d, withClass: false, seed)));
        all.Add(("silu_mul", SiluMulCheck));
        foreach (ActivationFunction f in Enum.GetValues<ActivationFunction>()) all.Add(($"activation {f}", (d, seed) => ActivationCheck(d, f, seed)));
        all.Add(("argmax", ArgMaxCheck));
        all.Add(("upload / download round trip", CopyRoundTripCheck));
        return all;
    }

    // ---- helpers ----

    private static float[] Normal(Random rng, int n, double std = 1.0)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++)
        {
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            a[i] = (float)(std * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }
        return a;
    }

    private static DeviceBuffer Output(IGpuDevice device, int floats)
    {
        var buffer = device.Allocate(floats * 4L);
        device.Fill(buffer, 0xFF, buffer.Bytes); // NaN
        return buffer;
    }

    /// <summary>Compares element by element; NaN or infinity anywhere fails.</summary>
    private static GpuCheckResult Compare(string name, ReadOnlySpan<float> actual, ReadOnlySpan<double> expected, double relL2Tolerance,
        double maxAbsTolerance, string detail = "")
    {
        double maxAbs = 0, diff2 = 0, ref2 = 0;
        int worst = -1;
        bool finite = true;
        for (int i = 0; i < actual.Length; i++)
        {
            if (!float.IsFinite(actual[i])) { finite = false; worst = i; maxAbs = double.PositiveInfinity; break; }
            double d = Math.Abs(actual[i] - expected[i]);
            if (d > maxAbs) { maxAbs = d; worst = i; }
            diff2 += d * d;
            ref2 += expected[i] * expected[i];
        }
        double rel = ref2 > 0 ? Math.Sqrt(diff2 / ref2) : Math.Sqrt(diff2);
        bool passed = finite && rel <= relL2Tolerance && maxAbs <= maxAbsTolerance;
        if (!passed && worst >= 0) detail = $"{detail} worst at [{worst}]: got {actual[worst]:R}, expected {expected[worst]:R}".Trim();
        return new GpuCheckResult(name, passed, maxAbs, rel, $"rel L2 ≤ {relL2Tolerance:0e0}, max|Δ| ≤ {maxAbsTolerance:0e0}", detail);
    }

    private static double[] ToDouble(ReadOnlySpan<float> a)
    {
        var d = new double[a.Length];
        for (int i = 0; i < a.Length; i++) d[i] = a[i];
        return d;
    }

    // ---- weights ----

    /// <summary>Row lengths to test per type: below and above 32 groups (one per lane) and, for floats, lengths off the vector width.</summary>
    public static int[] MatVecCols(TensorType type) => type switch
    {
        TensorType.F32 => [203, 96],
        TensorType.F16 or TensorType.BF16 => [203, 1096],
        TensorType.Q2_K or TensorType.Q3_K or TensorType.Q4_K or TensorType.Q5_K or TensorType.Q6_K => [768, 1280],
        _ => [224, 1184],
    };

    /// <summary>
    /// y = W·x against float64 dot products of the CPU-dequantized rows (the CPU's own Dequantize, scalar table).
    /// Per-row bound: |y − ref| ≤ 1e-5·Σ|w·x| (float32 accumulation of ≤ 1280 terms in a different order).
    /// </summary>
    public static GpuCheckResult MatVec(IGpuDevice device, TensorType type, int seed)
    {
        var rng = new Random(seed);
        const int rows = 37;
        double worstRatio = 0, maxAbs = 0;
        string detail = "";
        bool finite = true;
        using var ops = new CudaOps(device);
        foreach (int cols in MatVecCols(type))
        {
            var w = new byte[TensorTypeInfo.RowBytes(type, cols) * rows];
            for (int r = 0; r < rows; r++)
                QuantTestData.RandomRow(type, cols, rng, realistic: false).CopyTo(w, TensorTypeInfo.RowBytes(type, cols) * r);
            float[] x = Normal(rng, cols);
            var dequantized = new float[(long)rows * cols];
            var kernels = QuantRegistry.ScalarKernels(type);
            fixed (byte* pw = w)
            fixed (float* pd = dequantized)
                for (int r = 0; r < rows; r++) kernels.Dequantize(pw + TensorTypeInfo.RowBytes(type, cols) * r, pd + (long)r * cols, cols);

            using var dw = device.Upload<byte>(w);
            using var dx = device.Upload<float>(x);
            using var dy = Output(device, rows);
            ops.MatVec(type, dw, dx, dy, rows, cols);
            float[] y = device.Download<float>(dy);
            for (int r = 0; r < rows; r++)
            {
                double exact = 0, magnitude = 0;
                for (int c = 0; c < cols; c++)
                {
                    double t = (double)dequantized[(long)r * cols + c] * x[c];
                    exact += t;
                    magnitude += Math.Abs(t);
                }
                if (!float.IsFinite(y[r])) { finite = false; detail = $"cols {cols} row {r}: {y[r]}"; continue; }
                double err = Math.Abs(y[r] - exact);
                maxAbs = Math.Max(maxAbs, err);
                double ratio = err / Math.Max(magnitude, 1e-30);
                if (ratio > worstRatio) { worstRatio = ratio; if (ratio > 1e-5) detail = $"cols {cols} row {r}: got {y[r]:R}, expected {exact:R}"; }
            }
        }
        return new GpuCheckResult($"matvec {type}", finite && worstRatio <= 1e-5, maxAbs, worstRatio,
            "per row |Δ| ≤ 1e-5·Σ|w·x| (rel L2 column shows the worst ratio)", detail);
    }

    /// <summary>
    /// Y = X·Wᵀ for 70 weight rows × 37 tokens (neither a multiple of the 64×64 tile) with an output stride of
    /// rows + 3, against float64 dot products of the CPU-dequantized rows; per element |Δ| ≤ 1e-5·Σ|w·x|.
    /// The padding columns of Y must keep their poison (NaN): the kernel may write only its rows.
    /// </summary>
    public static GpuCheckResult MatMul(IGpuDevice device, TensorType type, int seed)
    {
        var rng = new Random(seed);
        const int rows = 70, tokens = 37;
        int cols = type == TensorType.F32 ? 203 : MatVecCols(type)[0];
        int stride = rows + 3;
        long rowBytes = TensorTypeInfo.RowBytes(type, cols);
        var w = new byte[rowBytes * rows];
        for (int r = 0; r < rows; r++) QuantTestData.RandomRow(type, cols, rng, realistic: false).CopyTo(w, rowBytes * r);
        float[] x = Normal(rng, tokens * cols);
        var dequantized = new float[(long)rows * cols];
        var kernels = QuantRegistry.ScalarKernels(type);
        fixed (byte* pw = w)
        fixed (float* pd = dequantized)
            for (int r = 0; r < rows; r++) kernels.Dequantize(pw + rowBytes * r, pd + (long)r * cols, cols);
        using var ops = new CudaOps(device) { MatMulPath = MatMulPath.Float }; // the F32 kernels (Auto would take the tensor cores at 37 tokens)
        using var dw = device.Upload<byte>(w);
        using var dx = device.Upload<float>(x);
        using var dy = Output(device, tokens * stride);
        ops.MatMul(type, dw, dx, dy, rows, cols, tokens, stride);
        float[] y = device.Download<float>(dy);
        var (ok, maxAbs, worstRatio, detail) = CompareProducts(y, dequantized, x, rows, cols, tokens, stride, 1e-5);
        return new GpuCheckResult($"matmul {type}", ok && worstRatio <= 1e-5, maxAbs, worstRatio,
            "per element |Δ| ≤ 1e-5·Σ|w·x| (rel L2 column shows the worst ratio)", detail);
    }

    /// <summary>
    /// The tensor-core mat-mul for 70 rows × 37 tokens × 203 columns (no dimension a multiple of its tiles or of the
    /// mma shape) against float64 dot products of the weights with the activations rounded to the weight's 16-bit
    /// type (what the kernel multiplies); per element |Δ| ≤ 1e-4·Σ|w·x| (tensor-core F32 accumulation is not
    /// sequential IEEE float). On the emulator this checks tiling, staging and indexing; the mma fragment layout
    /// itself is the emulator's reading of the PTX ISA, so only a GPU run confirms it.
    /// </summary>
    public static GpuCheckResult MatMulTensorCores(IGpuDevice device, TensorType type, int seed)
    {
        var rng = new Random(seed);
        const int rows = 70, tokens = 37, cols = 203;
        int stride = rows + 3;
        var w = new byte[TensorTypeInfo.RowBytes(type, cols) * rows];
        for (int r = 0; r < rows; r++) QuantTestData.RandomRow(type, cols, rng, realistic: false).CopyTo(w, TensorTypeInfo.RowBytes(type, cols) * r);
        float[] x = Normal(rng, tokens * cols);
        var wf = new float[rows * cols];
        var xr = new float[x.Length];
        fixed (byte* pw = w)
        fixed (float* pf = wf)
            QuantRegistry.ScalarKernels(type).Dequantize(pw, pf, rows * cols);
        for (int i = 0; i < x.Length; i++) xr[i] = type == TensorType.BF16 ? Bf16.ToFloat(Bf16.FromFloat(x[i])) : Fp16.Round(x[i]);
        using var ops = new CudaOps(device);
        using var dw = device.Upload<byte>(w);
        using var dx = device.Upload<float>(x);
        using var dy = Output(device, tokens * stride);
        ops.MatMulTensorCores(type, dw, dx, dy, rows, cols, tokens, stride);
        float[] y = device.Download<float>(dy);
        var (ok, maxAbs, worstRatio, detail) = CompareProducts(y, wf, xr, rows, cols, tokens, stride, 1e-4);
        return new GpuCheckResult($"matmul tensor cores {type}", ok && worstRatio <= 1e-4, maxAbs, worstRatio,
            "per element |Δ| ≤ 1e-4·Σ|w·x| vs 16-bit-rounded activations (rel L2 column shows the worst ratio)", detail);
    }

    /// <summary>
    /// The version-2 tensor-core kernel (activations rounded to 16 bits once, 128 × 128 tiles, cp.async double
    /// buffering), taken when the row length is a multiple of 8: 200 rows × 150 tokens × 136 columns (two row tiles, two
    /// token tiles, both partial; four whole k-steps and a partial fifth) and 130 × 17 × 1024, output stride rows + 3.
    /// Must equal version 1 (matmul_tc_*) bit for bit — the same mma products in the same k order — and the float64
    /// products of the 16-bit-rounded operands within 1e-4·Σ|w·x| per element.
    /// </summary>
    public static GpuCheckResult MatMulTensorCoresV2(IGpuDevice device, TensorType type, int seed)
    {
        var rng = new Random(seed);
        double worstRatio = 0, maxAbs = 0;
        int differingBits = 0;
        string detail = "";
        bool ok = true;
        foreach (var (rows, tokens, cols) in new[] { (200, 150, 136), (130, 17, 1024) })
        {
            int stride = rows + 3;
            long rowBytes = TensorTypeInfo.RowBytes(type, cols);
            var w = new byte[rowBytes * rows];
            for (int r = 0; r < rows; r++) QuantTestData.RandomRow(type, cols, rng, realistic: false).CopyTo(w, rowBytes * r);
            float[] x = Normal(rng, tokens * cols);
            var wf = new float[rows * cols];
            var xr = new float[x.Length];
            fixed (byte* pw = w)
            fixed (float* pf = wf)
                QuantRegistry.ScalarKernels(type).Dequantize(pw, pf, rows * cols);
            for (int i = 0; i < x.Length; i++) xr[i] = type == TensorType.BF16 ? Bf16.ToFloat(Bf16.FromFloat(x[i])) : Fp16.Round(x[i]);
            using var ops = new CudaOps(device);
            using var dw = device.Upload<byte>(w);
            using var dx = device.Upload<float>(x);
            using var dy = Output(device, tokens * stride);
            using var dy1 = Output(device, tokens * stride);
            ops.MatMulTensorCores(type, dw, dx, dy, rows, cols, tokens, stride);
            ops.MatMulTensorCoresV1(type, dw, dx, dy1, rows, cols, tokens, stride);
            float[] y = device.Download<float>(dy), y1 = device.Download<float>(dy1);
            for (int i = 0; i < y.Length; i++)
                if (BitConverter.SingleToInt32Bits(y[i]) != BitConverter.SingleToInt32Bits(y1[i])) differingBits++;
            var (okShape, maxShape, ratioShape, detailShape) = CompareProducts(y, wf, xr, rows, cols, tokens, stride, 1e-4);
            ok &= okShape;
            maxAbs = Math.Max(maxAbs, maxShape);
            if (ratioShape > worstRatio) worstRatio = ratioShape;
            if (detailShape.Length > 0) detail = $"{rows}×{tokens}×{cols}: {detailShape}";
        }
        return new GpuCheckResult($"matmul tensor cores v2 {type}", ok && worstRatio <= 1e-4 && differingBits == 0, maxAbs, worstRatio,
            "bit-identical to version 1, and per element |Δ| ≤ 1e-4·Σ|w·x| (rel L2 column: worst ratio)",
            $"{differingBits} outputs differ from version 1{(detail.Length > 0 ? "; " + detail : "")}");
    }

    /// <summary>
    /// A quantized weight through the tensor cores (<see cref="CudaOps.MatMul"/> with <see cref="MatMulPath.TensorCores"/>:
    /// the matrix expanded to F16 on the device, then the F16 kernel): 70 rows × 37 tokens × 512 columns, stride rows + 3.
    /// Must equal, bit for bit, the F16 tensor-core product of the CPU's scalar Dequantize rounded to F16 (so the device
    /// expansion is exact), and the float64 products of those F16 weights with the F16-rounded activations within
    /// 1e-4·Σ|w·x| per element.
    /// </summary>
    public static GpuCheckResult MatMulDequantizedTensorCores(IGpuDevice device, TensorType type, int seed)
    {
        var rng = new Random(seed);
        const int rows = 70, tokens = 37, cols = 512;
        int stride = rows + 3;
        long rowBytes = TensorTypeInfo.RowBytes(type, cols);
        var w = new byte[rowBytes * rows];
        for (int r = 0; r < rows; r++) QuantTestData.RandomRow(type, cols, rng, realistic: true).CopyTo(w, rowBytes * r);
        float[] x = Normal(rng, tokens * cols);
        var wf = new float[rows * cols];
        fixed (byte* pw = w)
        fixed (float* pf = wf)
            QuantRegistry.ScalarKernels(type).Dequantize(pw, pf, rows * cols);
        var wh = new ushort[wf.Length];
        for (int i = 0; i < wf.Length; i++) { wh[i] = Fp16.FromFloat(wf[i]); wf[i] = Fp16.ToFloat(wh[i]); }
        float[] xr = x.Select(Fp16.Round).ToArray();
        using var ops = new CudaOps(device) { MatMulPath = MatMulPath.TensorCores };
        using var dw = device.Upload<byte>(w);
        using var dwh = device.Upload<ushort>(wh);
        using var dx = device.Upload<float>(x);
        using var dy = Output(device, tokens * stride);
        using var dyh = Output(device, tokens * stride);
        ops.MatMul(type, dw, dx, dy, rows, cols, tokens, stride);
        ops.MatMulTensorCores(TensorType.F16, dwh, dx, dyh, rows, cols, tokens, stride);
        float[] y = device.Download<float>(dy), yh = device.Download<float>(dyh);
        int differingBits = 0;
        for (int i = 0; i < y.Length; i++)
            if (BitConverter.SingleToInt32Bits(y[i]) != BitConverter.SingleToInt32Bits(yh[i])) differingBits++;
        var (ok, maxAbs, worstRatio, detail) = CompareProducts(y, wf, xr, rows, cols, tokens, stride, 1e-4);
        return new GpuCheckResult($"matmul tensor cores dequantized {type}", ok && worstRatio <= 1e-4 && differingBits == 0, maxAbs, worstRatio,
            "bit-identical to F16 tensor cores on the CPU's Dequantize rounded to F16; per element |Δ| ≤ 1e-4·Σ|w·x|",
            $"{differingBits} outputs differ from the F16 product{(detail.Length > 0 ? "; " + detail : "")}");
    }

    /// <summary>
    /// Y [tokens, stride] against float64 dot products of W [rows, cols] with X [tokens, cols]: the worst per-element
    /// |Δ| / Σ|w·x| must stay within <paramref name="tolerance"/>, every value must be finite, and the padding columns
    /// rows..stride−1 must keep their NaN poison (the kernel may write only its rows).
    /// </summary>
    private static (bool Ok, double MaxAbs, double WorstRatio, string Detail) CompareProducts(
        float[] y, float[] w, float[] x, int rows, int cols, int tokens, int stride, double tolerance)
    {
        double worstRatio = 0, maxAbs = 0;
        string detail = "";
        bool ok = true;
        for (int t = 0; t < tokens; t++)
        {
            for (int r = 0; r < rows; r++)
            {
                double exact = 0, magnitude = 0;
                for (int c = 0; c < cols; c++)
                {
                    double p = (double)w[(long)r * cols + c] * x[t * cols + c];
                    exact += p;
                    magnitude += Math.Abs(p);
                }
                float got = y[t * stride + r];
                if (!float.IsFinite(got)) { ok = false; detail = $"token {t} row {r}: {got}"; continue; }
                double err = Math.Abs(got - exact);
                maxAbs = Math.Max(maxAbs, err);
                double ratio = err / Math.Max(magnitude, 1e-30);
                if (ratio > worstRatio) { worstRatio = ratio; if (ratio > tolerance) detail = $"token {t} row {r}: got {got:R}, expected {exact:R}"; }
            }
            for (int r = rows; r < stride; r++)
                if (!float.IsNaN(y[t * stride + r])) { ok = false; detail = $"token {t}: padding column {r} was written"; }
        }
        return (ok, maxAbs, worstRatio, detail);
    }

    /// <summary>Gathered and dequantized rows must equal the CPU Dequantize bit for bit.</summary>
    public static GpuCheckResult GetRows(IGpuDevice device, TensorType type, int seed)
    {
        var rng = new Random(seed);
        const int rows = 11;
        int cols = MatVecCols(type)[0];
        long rowBytes = TensorTypeInfo.RowBytes(type, cols);
        var w = new byte[rowBytes * rows];
        for (int r = 0; r < rows; r++) QuantTestData.RandomRow(type, cols, rng, realistic: false).CopyTo(w, rowBytes * r);
        int[] ids = [3, 0, 10, 3, 7];
        var expected = new double[ids.Length * cols];
        var row = new float[cols];
        var kernels = QuantRegistry.ScalarKernels(type);
        fixed (byte* pw = w)
        fixed (float* pr = row)
            for (int t = 0; t < ids.Length; t++)
            {
                kernels.Dequantize(pw + rowBytes * ids[t], pr, cols);
                for (int c = 0; c < cols; c++) expected[t * cols + c] = row[c];
            }
        using var ops = new CudaOps(device);
        using var dw = device.Upload<byte>(w);
        using var dids = device.Upload<int>(ids);
        using var dst = Output(device, ids.Length * cols);
        ops.GetRows(type, dw, dids, dst, ids.Length, cols);
        return Compare($"get_rows {type}", device.Download<float>(dst), expected, 0, 0, "bit-exact");
    }

    /// <summary>
    /// The patch embedding as the vision tower runs it (im2col, then the F16 prefill mat-mul) against a float64
    /// direct convolution: a 52×52 image with patch 8 (6×6 patches; the last 4 pixels of each side are not read),
    /// 40 output channels. Per element |Δ| ≤ 1e-5·Σ|w·x|.
    /// </summary>
    public static GpuCheckResult PatchEmbeddingCheck(IGpuDevice device, int seed)
    {
        var rng = new Random(seed);
        const int size = 52, p = 8, perSide = size / p, dim = 40, k = 3 * p * p, patches = perSide * perSide;
        float[] pixels = Normal(rng, 3 * size * size);
        var w = new byte[TensorTypeInfo.RowBytes(TensorType.F16, k) * dim];
        for (int r = 0; r < dim; r++) QuantTestData.RandomRow(TensorType.F16, k, rng, realistic: false).CopyTo(w, TensorTypeInfo.RowBytes(TensorType.F16, k) * r);
        var wf = new float[dim * k];
        fixed (byte* pw = w)
        fixed (float* pf = wf)
            QuantRegistry.ScalarKernels(TensorType.F16).Dequantize(pw, pf, dim * k);
        using var ops = new CudaOps(device) { MatMulPath = MatMulPath.Float }; // F32 products (the F16 tensor-core path is checked on its own)
        using var dp = device.Upload<float>(pixels);
        using var dpatch = Output(device, patches * k);
        using var dw = device.Upload<byte>(w);
        using var dy = Output(device, patches * dim);
        ops.Im2ColPatches(dp, dpatch, size, p);
        ops.MatMul(TensorType.F16, dw, dpatch, dy, dim, k, patches, dim);
        float[] y = device.Download<float>(dy);
        double worstRatio = 0, maxAbs = 0;
        string detail = "";
        bool finite = true;
        for (int patch = 0; patch < patches; patch++)
        {
            int py = patch / perSide, px = patch % perSide;
            for (int o = 0; o < dim; o++)
            {
                double exact = 0, magnitude = 0;
                for (int ch = 0; ch < 3; ch++)
                    for (int ky = 0; ky < p; ky++)
                        for (int kx = 0; kx < p; kx++)
                        {
                            double term = (double)wf[o * k + (ch * p + ky) * p + kx] * pixels[(ch * size + py * p + ky) * size + px * p + kx];
                            exact += term;
                            magnitude += Math.Abs(term);
                        }
                float got = y[patch * dim + o];
                if (!float.IsFinite(got)) { finite = false; detail = $"patch {patch} channel {o}: {got}"; continue; }
                double err = Math.Abs(got - exact);
                maxAbs = Math.Max(maxAbs, err);
                double ratio = err / Math.Max(magnitude, 1e-30);
                if (ratio > worstRatio) { worstRatio = ratio; if (ratio > 1e-5) detail = $"patch {patch} channel {o}: got {got:R}, expected {exact:R}"; }
            }
        }
        return new GpuCheckResult("patch embedding (im2col + matmul F16)", finite && worstRatio <= 1e-5, maxAbs, worstRatio,
            "per element |Δ| ≤ 1e-5·Σ|w·x| vs a float64 convolution", detail);
    }

    // ---- rows ----

    public static GpuCheckResult RmsNormCheck(IGpuDevice device, int seed)
    {
        var rng = new Random(seed);
        var results = new List<(float[] Actual, double[] Expected)>();
        using var ops = new CudaOps(device);
        foreach (int cols in new[] { 1000, 33 })
        {
            const int rows = 3;
            float[] x = Normal(rng, rows * cols, 2.0), w = Normal(rng, cols);
            var expected = new float[rows * cols];
            fixed (float* px = x, pw = w, pe = expected)
                for (int r = 0; r < rows; r++) RmsNorm.ApplyScalar(px + r * cols, pw, pe + r * cols, cols, 1e-6f);
            using var dx = device.Upload<float>(x);
            using var dw = device.Upload<float>(w);
            ops.RmsNorm(dx, dw, dx, rows, cols, 1e-6f); // in place, as the decoder uses it
            results.Add((device.Download<float>(dx), ToDouble(expected)));
        }
        return Concat("rms_norm", results, 2e-6, 1e-4);
    }

    public static GpuCheckResult LayerNormCheck(IGpuDevice device, int seed)
    {
        var rng = new Random(seed);
        var results = new List<(float[] Actual, double[] Expected)>();
        using var ops = new CudaOps(device);
        foreach (var (cols, withBias) in new[] { (1000, true), (45, false) })
        {
            const int rows = 3;
            float[] x = Normal(rng, rows * cols, 2.0), w = Normal(rng, cols), b = Normal(rng, cols);
            for (int i = 0; i < x.Length; i++) x[i] += 3.0f; // a mean far from zero, as LayerNorm inputs have
            var expected = new float[rows * cols];
            fixed (float* px = x, pw = w, pb = b, pe = expected)
                for (int r = 0; r < rows; r++) LayerNorm.Apply(px + r * cols, pw, withBias ? pb : null, pe + r * cols, cols, 1e-5f);
            using var dx = device.Upload<float>(x);
            using var dw = device.Upload<float>(w);
            using var db = device.Upload<float>(b);
            using var dy = Output(device, rows * cols);
            ops.LayerNorm(dx, dw, withBias ? db.Pointer : default, dy, rows, cols, 1e-5f);
            results.Add((device.Download<float>(dy), ToDouble(expected)));
        }
        return Concat("layer_norm", results, 2e-6, 1e-4);
    }

    public static GpuCheckResult SoftmaxCheck(IGpuDevice device, int seed)
    {
        var rng = new Random(seed);
        var results = new List<(float[] Actual, double[] Expected)>();
        using var ops = new CudaOps(device);
        foreach (int cols in new[] { 1000, 7 })
        {
            const int rows = 3;
            float[] x = Normal(rng, rows * cols, 4.0);
            var expected = (float[])x.Clone();
            fixed (float* pe = expected)
                for (int r = 0; r < rows; r++) Softmax.Apply(pe + r * cols, cols);
            using var dx = device.Upload<float>(x);
            ops.Softmax(dx, rows, cols);
            results.Add((device.Download<float>(dx), ToDouble(expected)));
        }
        return Concat("softmax", results, 2e-6, 1e-6);
    }

    private static GpuCheckResult Concat(string name, List<(float[] Actual, double[] Expected)> parts, double rel, double abs)
    {
        var a = parts.SelectMany(p => p.Actual).ToArray();
        var e = parts.SelectMany(p => p.Expected).ToArray();
        return Compare(name, a, e, rel, abs);
    }

    /// <summary>Partial rotary dims (16 of 24), 5 heads, rows padded by 8 floats (the padding must stay untouched).</summary>
    public static GpuCheckResult RopeCheck(IGpuDevice device, RopeMode mode, int seed)
    {
        var rng = new Random(seed);
        const int tokens = 3, heads = 5, headDim = 24, ropeDims = 16, stride = heads * headDim + 8, startPos = 7;
        float[] x = Normal(rng, tokens * stride);
        var cos = new float[tokens * ropeDims / 2];
        var sin = new float[tokens * ropeDims / 2];
        var expected = (float[])x.Clone();
        fixed (float* pc = cos, ps = sin, pe = expected)
        {
            Rope.ComputeAngles(startPos, tokens, ropeDims, 10000f, pc, ps);
            for (int t = 0; t < tokens; t++) Rope.Apply(pe + t * stride, heads, headDim, ropeDims, mode, pc + t * ropeDims / 2, ps + t * ropeDims / 2);
        }
        using var ops = new CudaOps(device);
        using var dx = device.Upload<float>(x);
        using var dc = device.Upload<float>(cos);
        using var ds = device.Upload<float>(sin);
        ops.Rope(dx, dc, ds, tokens, heads, headDim, ropeDims, stride, mode);
        return Compare($"rope {mode}", device.Download<float>(dx), ToDouble(expected), 1e-6, 1e-5);
    }

    /// <summary>6 query heads over 2 KV heads; KV rows padded by 4 floats; against the CPU's float64 reference.</summary>
    public static GpuCheckResult AttentionCheck(IGpuDevice device, int tokens, int startPos, bool causal, int headDim, int seed,
        AttentionPath path = AttentionPath.Auto)
    {
        var rng = new Random(seed);
        const int heads = 6, kvHeads = 2;
        int kvStride = kvHeads * headDim + 4;
        int keys = causal ? startPos + tokens : 13;
        float[] q = Normal(rng, tokens * heads * headDim, 1.5);
        float[] k = Normal(rng, keys * kvStride, 1.5);
        float[] v = Normal(rng, keys * kvStride);
        var expected = new float[tokens * heads * headDim];
        float scale = 1.0f / MathF.Sqrt(headDim);
        fixed (float* pq = q, pk = k, pv = v, pe = expected)
        {
            var problem = new Attention.Problem
            {
                Q = pq, K = pk, V = pv, Output = pe, Tokens = tokens, Heads = heads, KvHeads = kvHeads, HeadDim = headDim,
                KvStride = kvStride, StartPos = startPos, KeyCount = keys, Causal = causal, Scale = scale,
            };
            Attention.ComputeScalar(in problem);
        }
        using var ops = new CudaOps(device);
        using var dq = device.Upload<float>(q);
        using var dk = device.Upload<float>(k);
        using var dv = device.Upload<float>(v);
        using var dout = Output(device, expected.Length);
        if (ops.ResolveAttentionPath(path, tokens, headDim) != AttentionPath.F32)
            throw new InvalidOperationException($"AttentionCheck holds the F32 kernel to 1e-5; t{tokens} d{headDim} would take {path}");
        ops.Attention(dq, dk, dv, dout, tokens, heads, kvHeads, headDim, kvStride, startPos, keys, causal, scale, path);
        return Compare($"attention t{tokens} p{startPos} {(causal ? "causal" : "bidir")} d{headDim}", device.Download<float>(dout),
            ToDouble(expected), 1e-5, 1e-5);
    }

    /// <summary>The unit roundoff of F16 (11-bit significand), to which the tiled kernel rounds Q, K, V and P.</summary>
    public const double HalfUnitRoundoff = 1.0 / 2048;

    /// <summary>
    /// Bound on the F32 accumulation of the mma products and the kernel's F32 softmax arithmetic, relative to the sum
    /// of magnitudes (the tensor-core mat-mul check's 1e-4; tensor-core accumulation is not sequential IEEE float).
    /// </summary>
    public const double TensorCoreAccumulation = 1e-4;

    /// <summary>
    /// The tiled tensor-core attention (forced, <see cref="AttentionPath.TensorCores"/>) against the CPU reference
    /// (<see cref="Attention.ComputeScalar"/>, F32), per element within a bound derived from the F16 roundings, with
    /// u = 2⁻¹¹ and a = <see cref="TensorCoreAccumulation"/>:
    /// a score s_j = scale·q·k_j computed from rounded q and k is off by at most
    /// Δ = scale·(2u + u² + a)·max_j Σ_i |q_i k_ji| (the row's worst key); the softmax weights w_j = p_j / l then move by
    /// a factor within e^(±2Δ); P (numerator only — l sums the F32 probabilities) and V add a factor (1 ± u) each; so
    /// |o_d − ref_d| ≤ (e^(2Δ)(1 + u)² − 1 + a)·Σ_j w_j |v_jd| + keys·2⁻²⁵·max_j |v_jd| (the last term: probabilities
    /// below 2⁻¹⁴ are F16 subnormals, rounded to an absolute 2⁻²⁵; l ≥ 1). The weights are computed in float64 for the
    /// bound only. As the bound is worst-case, the aggregate is also held to rel L2 ≤ 4u: the roundings are unbiased,
    /// so a systematic error (a wrong key, mask or scale) shows there long before it reaches the per-element bound.
    /// The output starts as NaN, so an element the kernel forgets fails; the F32 kernel on the same inputs must stay
    /// within 1e-5 of the reference (the path the kernel replaces, unchanged).
    /// </summary>
    public static GpuCheckResult TiledAttentionCheck(IGpuDevice device, TiledAttentionCase c, int seed)
    {
        var rng = new Random(seed);
        int tokens = c.Tokens, heads = c.Heads, kvHeads = c.KvHeads, headDim = c.HeadDim, keys = c.Keys;
        int kvStride = kvHeads * headDim + 4;
        float[] q = Normal(rng, tokens * heads * headDim, 1.5);
        float[] k = Normal(rng, keys * kvStride, 1.5);
        float[] v = Normal(rng, keys * kvStride);
        var expected = new float[tokens * heads * headDim];
        float scale = 1.0f / MathF.Sqrt(headDim);
        fixed (float* pq = q, pk = k, pv = v, pe = expected)
        {
            var problem = new Attention.Problem
            {
                Q = pq, K = pk, V = pv, Output = pe, Tokens = tokens, Heads = heads, KvHeads = kvHeads, HeadDim = headDim,
                KvStride = kvStride, StartPos = c.StartPos, KeyCount = keys, Causal = c.Causal, Scale = scale,
            };
            Attention.ComputeScalar(in problem);
        }

        // Per-element bound from the float64 softmax weights.
        const double u = HalfUnitRoundoff, a = TensorCoreAccumulation;
        var bound = new double[expected.Length];
        var w = new double[keys];
        for (int t = 0; t < tokens; t++)
            for (int h = 0; h < heads; h++)
            {
                int g = h / (heads / kvHeads), visible = c.Causal ? Math.Min(c.StartPos + t + 1, keys) : keys;
                int qAt = (t * heads + h) * headDim;
                double worstMagnitude = 0, max = double.NegativeInfinity, sum = 0;
                for (int j = 0; j < visible; j++)
                {
                    double dot = 0, magnitude = 0;
                    for (int i = 0; i < headDim; i++)
                    {
                        double term = (double)q[qAt + i] * k[j * kvStride + g * headDim + i];
                        dot += term;
                        magnitude += Math.Abs(term);
                    }
                    w[j] = dot * scale;
                    max = Math.Max(max, w[j]);
                    worstMagnitude = Math.Max(worstMagnitude, magnitude);
                }
                for (int j = 0; j < visible; j++) sum += w[j] = Math.Exp(w[j] - max);
                double delta = scale * (2 * u + u * u + a) * worstMagnitude;
                double factor = Math.Exp(2 * delta) * (1 + u) * (1 + u) - 1 + a;
                for (int d = 0; d < headDim; d++)
                {
                    double weighted = 0, largest = 0;
                    for (int j = 0; j < visible; j++)
                    {
                        double magnitude = Math.Abs(v[j * kvStride + g * headDim + d]);
                        weighted += w[j] / sum * magnitude;
                        largest = Math.Max(largest, magnitude);
                    }
                    bound[qAt + d] = factor * weighted + visible * Math.Pow(2, -25) * largest;
                }
            }

        using var ops = new CudaOps(device);
        using var dq = device.Upload<float>(q);
        using var dk = device.Upload<float>(k);
        using var dv = device.Upload<float>(v);
        using var dout = Output(device, expected.Length);
        ops.Attention(dq, dk, dv, dout, tokens, heads, kvHeads, headDim, kvStride, c.StartPos, keys, c.Causal, scale, AttentionPath.TensorCores);
        float[] actual = device.Download<float>(dout);

        double maxAbs = 0, worstRatio = 0, diff2 = 0, ref2 = 0;
        string detail = "";
        bool finite = true;
        for (int i = 0; i < actual.Length; i++)
        {
            if (!float.IsFinite(actual[i])) { finite = false; detail = $"[{i}] (token {i / (heads * headDim)}) is {actual[i]}"; break; }
            double err = Math.Abs(actual[i] - (double)expected[i]);
            maxAbs = Math.Max(maxAbs, err);
            diff2 += err * err;
            ref2 += (double)expected[i] * expected[i];
            double ratio = err / bound[i];
            if (ratio > worstRatio)
            {
                worstRatio = ratio;
                if (ratio > 1) detail = $"[{i}] token {i / (heads * headDim)} head {i / headDim % heads} dim {i % headDim}: got {actual[i]:R}, expected {expected[i]:R}, bound {bound[i]:0.0e0}";
            }
        }
        double relL2 = Math.Sqrt(diff2 / Math.Max(ref2, 1e-300));
        const double relL2Limit = 4 * u;

        // The F32 kernel on the same inputs (forced: Auto would pick the tensor cores here).
        using var dout32 = Output(device, expected.Length);
        ops.Attention(dq, dk, dv, dout32, tokens, heads, kvHeads, headDim, kvStride, c.StartPos, keys, c.Causal, scale, AttentionPath.F32);
        var f32 = Compare("f32", device.Download<float>(dout32), ToDouble(expected), 1e-5, 1e-5);

        bool passed = finite && worstRatio <= 1 && relL2 <= relL2Limit && f32.Passed;
        detail = $"worst |Δ|/bound {worstRatio:0.000}; F32 kernel max|Δ| {f32.MaxAbs:0.0e0} {detail}".Trim();
        if (!f32.Passed) detail += $"; F32 kernel: {f32.Detail}";
        return new GpuCheckResult(c.Name, passed, maxAbs, relL2, $"per element |Δ| ≤ F16 rounding bound, rel L2 ≤ 4u = {relL2Limit:0.0e0}; F32 kernel ≤ 1e-5", detail);
    }

    // ---- pointwise ----

    public static GpuCheckResult ElementwiseCheck(IGpuDevice device, int seed)
    {
        var rng = new Random(seed);
        const int rows = 7, cols = 149, n = rows * cols;
        float[] a = Normal(rng, n), b = Normal(rng, n), bias = Normal(rng, cols);
        var expected = new double[n];
        for (int i = 0; i < n; i++) expected[i] = ((a[i] + b[i]) + bias[i % cols]) * 0.37f;
        using var ops = new CudaOps(device);
        using var da = device.Upload<float>(a);
        using var db = device.Upload<float>(b);
        using var dbias = device.Upload<float>(bias);
        using var dsum = Output(device, n);
        ops.Add(da, db, dsum, n);
        ops.AddBiasRows(dsum, dbias, rows, cols);
        ops.Scale(dsum, 0.37f, n);
        // Each step is one float rounding on both sides; the reference above rounds the same way (float arithmetic).
        var e = new double[n];
        for (int i = 0; i < n; i++) e[i] = (float)((float)((float)(a[i] + b[i]) + bias[i % cols]) * 0.37f);
        return Compare("add / bias / scale", device.Download<float>(dsum), e, 0, 0, "bit-exact");
    }

    /// <summary>1001 floats copied into the middle of a poisoned buffer: bit-exact, and the floats around them untouched.</summary>
    public static GpuCheckResult CopyCheck(IGpuDevice device, int seed)
    {
        var rng = new Random(seed);
        const int n = 1001, pad = 5;
        float[] a = Normal(rng, n);
        using var ops = new CudaOps(device);
        using var src = device.Upload<float>(a);
        using var dst = Output(device, n + 2 * pad);
        ops.Copy(src, dst.Pointer.Offset(pad * 4), n);
        float[] got = device.Download<float>(dst);
        var expected = new double[n];
        for (int i = 0; i < n; i++) expected[i] = a[i];
        var result = Compare("copy", got.AsSpan(pad, n), expected, 0, 0, "bit-exact");
        for (int i = 0; i < pad; i++)
            if (!float.IsNaN(got[i]) || !float.IsNaN(got[n + pad + i]))
                return result with { Passed = false, Detail = "a float outside the copied range was written" };
        return result;
    }

    /// <summary>
    /// The vision tower's position table (<c>VisionEncoder</c>: x[0] = class embedding, then x += positions) on 26 rows of
    /// 72 (CLIP-like, row 0 of x poisoned: the kernel must not read it) or 16 rows of 108 (SigLIP, no class row); the
    /// CPU's float adds, bit-exact.
    /// </summary>
    public static GpuCheckResult PositionEmbeddingsCheck(IGpuDevice device, bool withClass, int seed)
    {
        var rng = new Random(seed);
        int rows = withClass ? 26 : 16, dim = withClass ? 72 : 108;
        float[] x = Normal(rng, rows * dim), positions = Normal(rng, rows * dim, 0.5), cls = Normal(rng, dim);
        if (withClass) for (int c = 0; c < dim; c++) x[c] = float.NaN; // the patch rows start at row 1
        var expected = (float[])x.Clone();
        fixed (float* pe = expected, pp = positions, pc = cls)
        {
            if (withClass) new ReadOnlySpan<float>(pc, dim).CopyTo(new Span<float>(pe, dim));
            for (int r = 0; r < rows; r++) Elementwise.Add(pe + r * dim, pp + r * dim, pe + r * dim, dim);
        }
        using var ops = new CudaOps(device);
        using var dx = device.Upload<float>(x);
        using var dp = device.Upload<float>(positions);
        using var dc = device.Upload<float>(cls);
        ops.AddPositionEmbeddings(dx, dp, withClass ? dc.Pointer : default, rows, dim);
        return Compare(withClass ? "position embeddings + class row" : "position embeddings, no class row", device.Download<float>(dx),
            ToDouble(expected), 0, 0, "bit-exact");
    }

    public static GpuCheckResult SiluMulCheck(IGpuDevice device, int seed)
    {
        var rng = new Random(seed);
        const int n = 1007;
        float[] gate = Normal(rng, n, 4.0), up = Normal(rng, n);
        var expected = (float[])gate.Clone();
        fixed (float* pe = expected, pu = up) Elementwise.SiluMulScalar(pe, pu, n);
        using var ops = new CudaOps(device);
        using var dg = device.Upload<float>(gate);
        using var du = device.Upload<float>(up);
        ops.SiluMul(dg, du, n);
        return Compare("silu_mul", device.Download<float>(dg), ToDouble(expected), 1e-6, 1e-5);
    }

    /// <summary>Inputs N(0, 4) reach the far negative tail, where GELU(erf) must keep its relative accuracy.</summary>
    public static GpuCheckResult ActivationCheck(IGpuDevice device, ActivationFunction function, int seed)
    {
        var rng = new Random(seed);
        const int n = 1031;
        float[] x = Normal(rng, n, 4.0);
        var expected = new float[n];
        fixed (float* px = x, pe = expected) Activations.ApplyScalar(function, px, pe, n);
        using var ops = new CudaOps(device);
        using var dx = device.Upload<float>(x);
        using var dy = Output(device, n);
        ops.Activation(function, dx, dy, n);
        float[] y = device.Download<float>(dy);
        // Also relative per element: the erf form's negative tail is tiny but must not be lost to cancellation.
        double worstRelative = 0;
        for (int i = 0; i < n; i++)
            if (Math.Abs(expected[i]) > 1e-30) worstRelative = Math.Max(worstRelative, Math.Abs(y[i] - expected[i]) / Math.Abs(expected[i]));
        var result = Compare($"activation {function}", y, ToDouble(expected), 1e-6, 1e-5, $"worst per-element relative {worstRelative:0.0e0}");
        return worstRelative <= 1e-5 ? result : result with { Passed = false, Detail = result.Detail + " (limit 1e-5)" };
    }

    /// <summary>
    /// 20 MiB + 3 bytes up and down at an odd offset: crosses the driver device's 16 MiB pinned staging buffers
    /// (two in flight) and must come back byte for byte; the bytes around the copied range must stay untouched.
    /// </summary>
    public static GpuCheckResult CopyRoundTripCheck(IGpuDevice device, int seed)
    {
        var rng = new Random(seed);
        var data = new byte[(20 << 20) + 3];
        rng.NextBytes(data);
        using var buffer = device.Allocate(data.Length + 64);
        device.Fill(buffer, 0x5A, buffer.Bytes);
        device.Upload<byte>(buffer.Pointer.Offset(5), data);
        var back = new byte[data.Length + 64];
        device.Download<byte>(back, buffer.Pointer);
        int mismatches = 0;
        for (int i = 0; i < back.Length; i++)
        {
            byte expected = i >= 5 && i < 5 + data.Length ? data[i - 5] : (byte)0x5A;
            if (back[i] != expected) mismatches++;
        }
        return new GpuCheckResult("upload / download round trip", mismatches == 0, mismatches, 0, "byte-exact", $"{mismatches} bytes differ");
    }

    /// <summary>Two equal maxima: the first index must win, as in the CPU sampler.</summary>
    public static GpuCheckResult ArgMaxCheck(IGpuDevice device, int seed)
    {
        var rng = new Random(seed);
        const int n = 5003;
        float[] x = Normal(rng, n);
        int first = 1234 + rng.Next(100), second = 4000 + rng.Next(100);
        x[first] = x[second] = 10f;
        using var ops = new CudaOps(device);
        using var dx = device.Upload<float>(x);
        using var dr = device.Allocate(4);
        ops.ArgMax(dx, n, dr);
        int[] result = device.Download<int>(dr);
        return new GpuCheckResult("argmax", result[0] == first, 0, 0, "exact index", $"got {result[0]}, expected {first}");
    }
}
