using System.Runtime.InteropServices;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using LlavaNative.Kernels.Cpu.Quant;
using LlavaNative.Kernels.Tensors;

namespace LlavaNative.Kernels.Cpu.Ops;

/// <summary>
/// Register-blocked, cache-blocked F32 GEMM for prompt-sized products, y[t, r] = Σ_k x[t, k] · W[r, k]
/// (x [tokens, K], W [rows, K] in F32, F16 or BF16, y [tokens, rows]), in the BLIS arrangement:
/// <code>
/// pack x once:   [K-block][token panel][k][TileTokens]          every token panel of one K-block is contiguous
/// for each group of GroupPanels panels of TileRows weight rows (split across the pool)
///   for each K-block of KBlock columns
///     pack the group's weight panels: [panel][k][TileRows] floats, F16/BF16 converted here (once per call)
///     for each token panel (its kc × TileTokens floats stay in L1 while the group's panels pass)
///       for each panel of the group: microkernel  y[TileTokens × TileRows] += xpanel · wpanelᵀ   (in registers)
/// </code>
/// The microkernel is an outer product per k: TileRows weights in vector registers, each of the TileTokens
/// activations broadcast against them, TileTokens × TileRows accumulators. AVX-512: 12 tokens × 32 rows (24 zmm
/// accumulators, 2 weight vectors, a broadcast: 27 of 32 registers; 14 loads per 24 FMAs, so the FMA ports, not the
/// loads, bound it). AVX2: 6 × 16 (12 + 2 + 1 of 16 ymm). Without SIMD: 4 × 8 scalar. At the AVX-512 sizes a token
/// panel is 256 × 12 floats = 12 KB (L1), the group's weight panels 4 × 32 KB (L2). Token panel outside, weight
/// panel inside measured 15–17 % faster than the reverse (weight panel in L1, 128-column blocks, x streamed from L2)
/// in a C model of the loops (gcc, same kernel, 576 × 1024 × 1024, best of 15). The accumulators add their partial
/// sums into y every FlushK products (for accuracy: see there). Tiles that stick out of y (token or row counts
/// that are not multiples of the tile) run on zero-padded panels into a small edge tile.
/// </summary>
public static unsafe class PackedGemm
{
    /// <summary>Tokens per microkernel tile (the broadcast operand).</summary>
    public static readonly int TileTokens = Avx512F.IsSupported ? 12 : Avx2.IsSupported && Fma.IsSupported ? 6 : 4;

    /// <summary>Weight rows per microkernel tile (the vector operand).</summary>
    public static readonly int TileRows = Avx512F.IsSupported ? 32 : Avx2.IsSupported && Fma.IsSupported ? 16 : 8;

    /// <summary>Columns (the K dimension) per block.</summary>
    public const int KBlock = 256;

    /// <summary>
    /// The microkernels sum FlushK products per output in registers, then add that partial sum to y: one float chain
    /// over all of K would lose accuracy like √K, so y receives one partial sum per K-block. Flushing every 32
    /// products cost 10–13 % of the product rate: the 12 rows of a y tile are a multiple of 4 KB apart, all in one L1
    /// set, so every flush missed L1. 128: the text models' logits agree with llama.cpp's to 2e-5 and the vision towers
    /// with torch to 1e-4 (the reference tests); one chain over a whole 256-column block did not (Qwen2 F32 logits
    /// 2.05e-5 from llama.cpp's).
    /// </summary>
    private const int FlushK = 128;

    /// <summary>
    /// Weight-row panels packed together per K-block (128 KB at the AVX-512 sizes, in L2): each token panel, loaded
    /// into L1 once, meets all of them.
    /// </summary>
    private const int GroupPanels = 4;

    private static readonly delegate*<int, float*, float*, float*, long, bool, void> Kernel =
        Avx512F.IsSupported ? &Kernel12x32 : Avx2.IsSupported && Fma.IsSupported ? &Kernel6x16 : &KernelScalar;

    /// <summary>Floats of a packed operand of <paramref name="count"/> tokens (or rows) and <paramref name="k"/> columns.</summary>
    public static long PackedActivationFloats(int count, int k) => (long)Panels(count, TileTokens) * TileTokens * k;

    /// <summary>Floats of a packed weight operand of <paramref name="rows"/> rows and <paramref name="k"/> columns.</summary>
    public static long PackedWeightFloats(int rows, int k) => (long)Panels(rows, TileRows) * TileRows * k;

    private static int Panels(int count, int panel) => (count + panel - 1) / panel;

    /// <summary>Whether <paramref name="type"/> weights can be packed (converted to F32) by this GEMM.</summary>
    public static bool SupportsWeightType(TensorType type) => type is TensorType.F32 or TensorType.F16 or TensorType.BF16;

    /// <summary>
    /// y [tokens, w.Rows] = x [tokens, w.Cols] · wᵀ on the pool. <paramref name="packedX"/> holds
    /// <see cref="PackedActivationFloats"/>(tokens, w.Cols) floats, 64-byte aligned.
    /// </summary>
    public static void Multiply(ComputeThreadPool pool, in WeightMatrix w, float* x, int tokens, float* y, float* packedX)
    {
        if (!SupportsWeightType(w.Type)) throw new NotSupportedException($"the packed GEMM takes F32, F16 or BF16 weights, not {TensorTypeInfo.Name(w.Type)}");
        if (tokens <= 0 || w.Rows <= 0) return;
        int k = w.Cols;
        var pack = new PackActivationsJob { X = x, Ldx = k, Tokens = tokens, K = k, Packed = packedX };
        pool.Run(ref pack, Panels(tokens, TileTokens));
        var job = new MultiplyJob
        {
            W = w.Data, WType = w.Type, WRowBytes = w.RowBytes, Rows = w.Rows, K = k,
            PackedX = packedX, Tokens = tokens, Y = y, Ldy = w.Rows,
        };
        pool.Run(ref job, Panels(w.Rows, TileRows));
    }

    /// <summary>Single-threaded <see cref="Multiply"/> (tests, and callers that split work themselves).</summary>
    public static void MultiplySingle(in WeightMatrix w, float* x, int tokens, float* y, float* packedX)
    {
        if (!SupportsWeightType(w.Type)) throw new NotSupportedException($"the packed GEMM takes F32, F16 or BF16 weights, not {TensorTypeInfo.Name(w.Type)}");
        PackActivations(x, w.Cols, tokens, w.Cols, packedX);
        var job = new MultiplyJob
        {
            W = w.Data, WType = w.Type, WRowBytes = w.RowBytes, Rows = w.Rows, K = w.Cols,
            PackedX = packedX, Tokens = tokens, Y = y, Ldy = w.Rows,
        };
        job.Execute(0, Panels(w.Rows, TileRows));
    }

    /// <summary>
    /// Packs <paramref name="tokens"/> rows of x (row stride <paramref name="ldx"/> floats, <paramref name="k"/> used)
    /// into <paramref name="packed"/>: [K-block][token panel][k][TileTokens], missing tokens zero.
    /// </summary>
    public static void PackActivations(float* x, long ldx, int tokens, int k, float* packed)
        => PackActivationPanels(x, ldx, tokens, k, packed, 0, Panels(tokens, TileTokens));

    private static void PackActivationPanels(float* x, long ldx, int tokens, int k, float* packed, int firstPanel, int endPanel)
    {
        int mr = TileTokens, panels = Panels(tokens, mr);
        for (int k0 = 0; k0 < k; k0 += KBlock)
        {
            int kc = Math.Min(KBlock, k - k0);
            float* block = packed + (long)k0 * panels * mr;
            for (int p = firstPanel; p < endPanel; p++)
            {
                float* dst = block + (long)p * kc * mr;
                int done = 0;
                if (Avx512F.IsSupported && mr == 12 && (p + 1) * mr <= tokens)
                    done = PackActivationPanelAvx512(x + (long)p * mr * ldx + k0, ldx, kc, dst);
                if (done == kc) continue;
                for (int i = 0; i < mr; i++)
                {
                    int t = p * mr + i;
                    if (t >= tokens)
                    {
                        for (int j = 0; j < kc; j++) dst[j * mr + i] = 0;
                        continue;
                    }
                    float* src = x + t * ldx + k0;
                    for (int j = done; j < kc; j++) dst[j * mr + i] = src[j];
                }
            }
        }
    }

    /// <summary>
    /// AVX-512 packing of one full 12-token panel, 16 columns at a time: the 12 rows (and 4 zero rows) go through
    /// <see cref="TransposeStore16"/>, which stores each column's 12 floats with one 256-bit and one 128-bit store
    /// instead of 12 scalar stores 48 bytes apart. Returns the columns packed (a multiple of 16); the caller's scalar
    /// loop packs the rest.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int PackActivationPanelAvx512(float* x, long ldx, int kc, float* dst)
    {
        Vector512<float> zero = Vector512<float>.Zero;
        int kk = 0;
        for (; kk + 16 <= kc; kk += 16)
        {
            float* src = x + kk;
            TransposeStore16(
                Vector512.Load(src), Vector512.Load(src + ldx), Vector512.Load(src + 2 * ldx), Vector512.Load(src + 3 * ldx),
                Vector512.Load(src + 4 * ldx), Vector512.Load(src + 5 * ldx), Vector512.Load(src + 6 * ldx), Vector512.Load(src + 7 * ldx),
                Vector512.Load(src + 8 * ldx), Vector512.Load(src + 9 * ldx), Vector512.Load(src + 10 * ldx), Vector512.Load(src + 11 * ldx),
                zero, zero, zero, zero, dst + kk * 12, 12, height: 12);
        }
        return kk;
    }

    /// <summary>
    /// Transposes the 16 × 16 block r0…r15 (row i, columns c…c+15) in registers — unpack ps, unpack pd, two
    /// 128-bit lane shuffles: 64 shuffles per 256 floats — and stores column j's first <paramref name="height"/>
    /// values (16, or 12: rows 12–15 are then not stored) at <paramref name="o"/> + j · <paramref name="stride"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void TransposeStore16(
        Vector512<float> r0, Vector512<float> r1, Vector512<float> r2, Vector512<float> r3, Vector512<float> r4, Vector512<float> r5,
        Vector512<float> r6, Vector512<float> r7, Vector512<float> r8, Vector512<float> r9, Vector512<float> r10, Vector512<float> r11,
        Vector512<float> r12, Vector512<float> r13, Vector512<float> r14, Vector512<float> r15, float* o, int stride, int height)
    {
        Vector512<float> t0 = Avx512F.UnpackLow(r0, r1), t1 = Avx512F.UnpackHigh(r0, r1);
        Vector512<float> t2 = Avx512F.UnpackLow(r2, r3), t3 = Avx512F.UnpackHigh(r2, r3);
        Vector512<float> t4 = Avx512F.UnpackLow(r4, r5), t5 = Avx512F.UnpackHigh(r4, r5);
        Vector512<float> t6 = Avx512F.UnpackLow(r6, r7), t7 = Avx512F.UnpackHigh(r6, r7);
        Vector512<float> t8 = Avx512F.UnpackLow(r8, r9), t9 = Avx512F.UnpackHigh(r8, r9);
        Vector512<float> t10 = Avx512F.UnpackLow(r10, r11), t11 = Avx512F.UnpackHigh(r10, r11);
        Vector512<float> t12 = Avx512F.UnpackLow(r12, r13), t13 = Avx512F.UnpackHigh(r12, r13);
        Vector512<float> t14 = Avx512F.UnpackLow(r14, r15), t15 = Avx512F.UnpackHigh(r14, r15);
        Vector512<float> u0 = Avx512F.UnpackLow(t0.AsDouble(), t2.AsDouble()).AsSingle(), u1 = Avx512F.UnpackHigh(t0.AsDouble(), t2.AsDouble()).AsSingle();
        Vector512<float> u2 = Avx512F.UnpackLow(t1.AsDouble(), t3.AsDouble()).AsSingle(), u3 = Avx512F.UnpackHigh(t1.AsDouble(), t3.AsDouble()).AsSingle();
        Vector512<float> u4 = Avx512F.UnpackLow(t4.AsDouble(), t6.AsDouble()).AsSingle(), u5 = Avx512F.UnpackHigh(t4.AsDouble(), t6.AsDouble()).AsSingle();
        Vector512<float> u6 = Avx512F.UnpackLow(t5.AsDouble(), t7.AsDouble()).AsSingle(), u7 = Avx512F.UnpackHigh(t5.AsDouble(), t7.AsDouble()).AsSingle();
        Vector512<float> u8 = Avx512F.UnpackLow(t8.AsDouble(), t10.AsDouble()).AsSingle(), u9 = Avx512F.UnpackHigh(t8.AsDouble(), t10.AsDouble()).AsSingle();
        Vector512<float> u10 = Avx512F.UnpackLow(t9.AsDouble(), t11.AsDouble()).AsSingle(), u11 = Avx512F.UnpackHigh(t9.AsDouble(), t11.AsDouble()).AsSingle();
        Vector512<float> u12 = Avx512F.UnpackLow(t12.AsDouble(), t14.AsDouble()).AsSingle(), u13 = Avx512F.UnpackHigh(t12.AsDouble(), t14.AsDouble()).AsSingle();
        Vector512<float> u14 = Avx512F.UnpackLow(t13.AsDouble(), t15.AsDouble()).AsSingle(), u15 = Avx512F.UnpackHigh(t13.AsDouble(), t15.AsDouble()).AsSingle();
        // u_m holds, for rows 4⌊m/4⌋…+3, columns c + 4L (L = 128-bit lane), c = m mod 4.
        Store4(u0, u4, u8, u12, o + 0 * stride, stride, height);
        Store4(u1, u5, u9, u13, o + 1 * stride, stride, height);
        Store4(u2, u6, u10, u14, o + 2 * stride, stride, height);
        Store4(u3, u7, u11, u15, o + 3 * stride, stride, height);
    }

    /// <summary>Columns c, c + 4, c + 8, c + 12 of 16 rows: a_m holds rows 4m..4m+3 of columns c + 4L in lane L; a 4 × 4 transpose of lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store4(Vector512<float> a0, Vector512<float> a1, Vector512<float> a2, Vector512<float> a3, float* o, int stride, int height)
    {
        Vector512<float> v0 = Avx512F.Shuffle4x128(a0, a1, 0x88), v1 = Avx512F.Shuffle4x128(a0, a1, 0xDD);
        Vector512<float> v2 = Avx512F.Shuffle4x128(a2, a3, 0x88), v3 = Avx512F.Shuffle4x128(a2, a3, 0xDD);
        StoreColumn(Avx512F.Shuffle4x128(v0, v2, 0x88), o, height);                // column c
        StoreColumn(Avx512F.Shuffle4x128(v1, v3, 0x88), o + 4 * stride, height);   // column c + 4
        StoreColumn(Avx512F.Shuffle4x128(v0, v2, 0xDD), o + 8 * stride, height);   // column c + 8
        StoreColumn(Avx512F.Shuffle4x128(v1, v3, 0xDD), o + 12 * stride, height);  // column c + 12
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreColumn(Vector512<float> column, float* o, int height)
    {
        if (height == 16)
        {
            column.Store(o);
            return;
        }
        column.GetLower().Store(o);
        column.GetUpper().GetLower().Store(o + 8);
    }

    /// <summary>
    /// Packs the rows [r0, r0 + TileRows) ∩ [0, rows) of a row-major weight, columns [k0, k0 + kc), into
    /// <paramref name="dst"/> [kc][TileRows] as floats; rows past the end are zero. <paramref name="rowTmp"/>: KBlock floats.
    /// </summary>
    private static void PackWeightPanel(byte* w, TensorType type, long rowBytes, int validRows, int k0, int kc, float* dst, float* rowTmp)
    {
        int nr = TileRows, done = 0;
        if (Avx512F.IsSupported && nr == 32) done = PackWeightPanelAvx512(w, type, rowBytes, validRows, k0, kc, dst);
        if (done == kc) return;
        dst += done * nr;
        k0 += done;
        kc -= done;
        for (int r = 0; r < nr; r++)
        {
            if (r >= validRows)
            {
                for (int j = 0; j < kc; j++) dst[j * nr + r] = 0;
                continue;
            }
            byte* row = w + r * rowBytes;
            float* src;
            switch (type)
            {
                case TensorType.F16: Fp16.ToFloatRow((ushort*)row + k0, rowTmp, kc); src = rowTmp; break;
                case TensorType.BF16: Bf16.ToFloatRow((ushort*)row + k0, rowTmp, kc); src = rowTmp; break;
                default: src = (float*)row + k0; break;
            }
            for (int j = 0; j < kc; j++) dst[j * nr + r] = src[j];
        }
    }

    /// <summary>
    /// AVX-512 panel packing: 16 rows × 16 columns at a time are loaded (and converted) as 16 vectors and go through
    /// <see cref="TransposeStore16"/>, instead of 256 scalar stores. Columns past the last multiple of 16 go through
    /// <see cref="PackWeightPanel"/>'s scalar loop.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int PackWeightPanelAvx512(byte* w, TensorType type, long rowBytes, int validRows, int k0, int kc, float* dst)
    {
        int kk = 0;
        for (; kk + 16 <= kc; kk += 16)
            for (int g = 0; g < 32; g += 16)
            {
                int k = k0 + kk;
                TransposeStore16(
                    Row16(w, type, rowBytes, g + 0, validRows, k), Row16(w, type, rowBytes, g + 1, validRows, k),
                    Row16(w, type, rowBytes, g + 2, validRows, k), Row16(w, type, rowBytes, g + 3, validRows, k),
                    Row16(w, type, rowBytes, g + 4, validRows, k), Row16(w, type, rowBytes, g + 5, validRows, k),
                    Row16(w, type, rowBytes, g + 6, validRows, k), Row16(w, type, rowBytes, g + 7, validRows, k),
                    Row16(w, type, rowBytes, g + 8, validRows, k), Row16(w, type, rowBytes, g + 9, validRows, k),
                    Row16(w, type, rowBytes, g + 10, validRows, k), Row16(w, type, rowBytes, g + 11, validRows, k),
                    Row16(w, type, rowBytes, g + 12, validRows, k), Row16(w, type, rowBytes, g + 13, validRows, k),
                    Row16(w, type, rowBytes, g + 14, validRows, k), Row16(w, type, rowBytes, g + 15, validRows, k),
                    dst + kk * 32 + g, 32, height: 16);
            }
        return kk;
    }

    /// <summary>16 consecutive weights of row <paramref name="r"/> from column <paramref name="k"/> as floats (zero past <paramref name="validRows"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Row16(byte* w, TensorType type, long rowBytes, int r, int validRows, int k)
    {
        if (r >= validRows) return Vector512<float>.Zero;
        byte* row = w + r * rowBytes;
        return type switch
        {
            TensorType.F16 => Fp16.ToFloat16Lanes(Avx512F.ConvertToVector512UInt32(Vector256.Load((ushort*)row + k))),
            TensorType.BF16 => (Avx512F.ConvertToVector512UInt32(Vector256.Load((ushort*)row + k)) << 16).AsSingle(),
            _ => Vector512.Load((float*)row + k),
        };
    }

    /// <summary>
    /// Packs an F32 operand stored K-major — element (r, k) at <c>v[k·ldv + r]</c>, as the values of attention are
    /// (keys down, head dimensions across) — into the packed weight layout [K-block][row panel][k][TileRows].
    /// </summary>
    public static void PackWeightsKMajor(float* v, long ldv, int rows, int k, float* packed)
    {
        int nr = TileRows, panels = Panels(rows, nr);
        for (int k0 = 0; k0 < k; k0 += KBlock)
        {
            int kc = Math.Min(KBlock, k - k0);
            for (int q = 0; q < panels; q++)
            {
                float* dst = packed + (long)k0 * panels * nr + (long)q * kc * nr;
                int valid = Math.Min(nr, rows - q * nr);
                for (int j = 0; j < kc; j++)
                {
                    float* src = v + (k0 + j) * ldv + q * nr;
                    int r = 0;
                    for (; r < valid; r++) dst[j * nr + r] = src[r];
                    for (; r < nr; r++) dst[j * nr + r] = 0;
                }
            }
        }
    }

    /// <summary>Packs row-major F32 rows (row stride <paramref name="ldw"/>) into the packed weight layout.</summary>
    [SkipLocalsInit]
    public static void PackWeightsRowMajor(float* w, long ldw, int rows, int k, float* packed)
    {
        int nr = TileRows, panels = Panels(rows, nr);
        for (int k0 = 0; k0 < k; k0 += KBlock)
        {
            int kc = Math.Min(KBlock, k - k0);
            for (int q = 0; q < panels; q++)
                PackWeightPanel((byte*)(w + q * nr * ldw), TensorType.F32, ldw * 4, Math.Min(nr, rows - q * nr), k0, kc,
                    packed + (long)k0 * panels * nr + (long)q * kc * nr, null);
        }
    }

    /// <summary>
    /// y[t, r] = Σ_k x[t, k] · W[r, k] with both operands already packed (<see cref="PackActivations"/>,
    /// <see cref="PackWeightsKMajor"/> / <see cref="PackWeightsRowMajor"/>); y has row stride <paramref name="ldy"/>.
    /// Single-threaded.
    /// </summary>
    [SkipLocalsInit]
    public static void MultiplyPacked(float* packedX, int tokens, float* packedW, int rows, int k, float* y, long ldy)
    {
        int mr = TileTokens, nr = TileRows;
        int tokenPanels = Panels(tokens, mr), rowPanels = Panels(rows, nr);
        byte* edgeSpace = stackalloc byte[12 * 32 * sizeof(float) + 64];
        float* edge = (float*)(((nint)edgeSpace + 63) & ~(nint)63);
        for (int k0 = 0; k0 < k; k0 += KBlock)
        {
            int kc = Math.Min(KBlock, k - k0);
            float* xBlock = packedX + (long)k0 * tokenPanels * mr;
            for (int p = 0; p < tokenPanels; p++)
            {
                float* xp = xBlock + (long)p * kc * mr;
                int validTokens = Math.Min(mr, tokens - p * mr);
                for (int q = 0; q < rowPanels; q++)
                    Tile(kc, packedW + (long)k0 * rowPanels * nr + (long)q * kc * nr, xp, y + (long)p * mr * ldy + q * nr, ldy,
                         validTokens, Math.Min(nr, rows - q * nr), k0 > 0, edge);
            }
        }
    }

    /// <summary>One microkernel call on a tile that may stick out of y: those go through <paramref name="edge"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Tile(int kc, float* w, float* x, float* c, long ldc, int validTokens, int validRows, bool accumulate, float* edge)
    {
        int mr = TileTokens, nr = TileRows;
        if (validTokens == mr && validRows == nr)
        {
            Kernel(kc, w, x, c, ldc, accumulate);
            return;
        }
        if (accumulate)
            for (int t = 0; t < validTokens; t++)
                new ReadOnlySpan<float>(c + t * ldc, validRows).CopyTo(new Span<float>(edge + t * nr, validRows));
        Kernel(kc, w, x, edge, nr, accumulate);
        for (int t = 0; t < validTokens; t++)
            new ReadOnlySpan<float>(edge + t * nr, validRows).CopyTo(new Span<float>(c + t * ldc, validRows));
    }

    private struct PackActivationsJob : IRangeJob
    {
        public float* X, Packed;
        public long Ldx;
        public int Tokens, K;
        public void Execute(int start, int end) => PackActivationPanels(X, Ldx, Tokens, K, Packed, start, end);
    }

    /// <summary>Weight-row panels [start, end): each K-block of x is shared by all of them while it is in L2.</summary>
    private struct MultiplyJob : IRangeJob
    {
        public byte* W;
        public TensorType WType;
        public long WRowBytes;
        public int Rows, K, Tokens;
        public float* PackedX, Y;
        public long Ldy;

        [SkipLocalsInit]
        public void Execute(int start, int end)
        {
            int mr = TileTokens, nr = TileRows;
            int tokenPanels = Panels(Tokens, mr);
            float* panels = GroupPanelBuffer.ForThisThread();
            float* rowTmp = stackalloc float[KBlock];
            byte* edgeSpace = stackalloc byte[12 * 32 * sizeof(float) + 64];
            float* edge = (float*)(((nint)edgeSpace + 63) & ~(nint)63);
            for (int g = start; g < end; g += GroupPanels)
            {
                int groupEnd = Math.Min(g + GroupPanels, end);
                for (int k0 = 0; k0 < K; k0 += KBlock)
                {
                    int kc = Math.Min(KBlock, K - k0);
                    // The group's weight panels for this K-block, packed once (L2) and used by every token panel.
                    for (int q = g; q < groupEnd; q++)
                        PackWeightPanel(W + q * nr * WRowBytes, WType, WRowBytes, Math.Min(nr, Rows - q * nr), k0, kc,
                            panels + (q - g) * KBlock * nr, rowTmp);
                    float* xBlock = PackedX + (long)k0 * tokenPanels * mr;
                    for (int p = 0; p < tokenPanels; p++)
                    {
                        // One token panel (kc × 12 floats, ≤ 12 KB) stays in L1 while the group's panels stream past it.
                        float* xp = xBlock + (long)p * kc * mr;
                        float* yp = Y + (long)p * mr * Ldy;
                        int validTokens = Math.Min(mr, Tokens - p * mr);
                        for (int q = g; q < groupEnd; q++)
                            Tile(kc, panels + (q - g) * KBlock * nr, xp, yp + q * nr, Ldy,
                                 validTokens, Math.Min(nr, Rows - q * nr), k0 > 0, edge);
                    }
                }
            }
        }
    }

    /// <summary>
    /// Each thread's buffer for one group of packed weight panels (GroupPanels × KBlock × 32 floats = 128 KB, too
    /// much for the stack of an arbitrary caller's thread), allocated at its first product and freed with the thread.
    /// </summary>
    private sealed class GroupPanelBuffer
    {
        [ThreadStatic] private static GroupPanelBuffer? _current;
        private readonly float* _floats = (float*)NativeMemory.AlignedAlloc((nuint)(GroupPanels * KBlock * 32 * sizeof(float)), 64);

        public static float* ForThisThread() => (_current ??= new GroupPanelBuffer())._floats;

        ~GroupPanelBuffer() => NativeMemory.AlignedFree(_floats);
    }

    /// <summary>
    /// AVX-512 microkernel: c[12 × 32] (+)= Σ_k x[k][0..11] ⊗ w[k][0..31], c with row stride <paramref name="ldc"/>.
    /// Row i of the tile is token i, its 32 floats two zmm accumulators.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel12x32(int kc, float* w, float* x, float* c, long ldc, bool accumulate)
    {
        Vector512<float> c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51,
                         c60, c61, c70, c71, c80, c81, c90, c91, cA0, cA1, cB0, cB1;
        for (int k0 = 0; k0 < kc; k0 += FlushK)
        {
            int kEnd = Math.Min(kc, k0 + FlushK);
            c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = Vector512<float>.Zero;
            c60 = c61 = c70 = c71 = c80 = c81 = c90 = c91 = cA0 = cA1 = cB0 = cB1 = Vector512<float>.Zero;
            for (int k = k0; k < kEnd; k++)
            {
                Vector512<float> w0 = Vector512.Load(w), w1 = Vector512.Load(w + 16);
                Vector512<float> a = Vector512.Create(x[0]);
                c00 = Avx512F.FusedMultiplyAdd(w0, a, c00); c01 = Avx512F.FusedMultiplyAdd(w1, a, c01);
                a = Vector512.Create(x[1]);
                c10 = Avx512F.FusedMultiplyAdd(w0, a, c10); c11 = Avx512F.FusedMultiplyAdd(w1, a, c11);
                a = Vector512.Create(x[2]);
                c20 = Avx512F.FusedMultiplyAdd(w0, a, c20); c21 = Avx512F.FusedMultiplyAdd(w1, a, c21);
                a = Vector512.Create(x[3]);
                c30 = Avx512F.FusedMultiplyAdd(w0, a, c30); c31 = Avx512F.FusedMultiplyAdd(w1, a, c31);
                a = Vector512.Create(x[4]);
                c40 = Avx512F.FusedMultiplyAdd(w0, a, c40); c41 = Avx512F.FusedMultiplyAdd(w1, a, c41);
                a = Vector512.Create(x[5]);
                c50 = Avx512F.FusedMultiplyAdd(w0, a, c50); c51 = Avx512F.FusedMultiplyAdd(w1, a, c51);
                a = Vector512.Create(x[6]);
                c60 = Avx512F.FusedMultiplyAdd(w0, a, c60); c61 = Avx512F.FusedMultiplyAdd(w1, a, c61);
                a = Vector512.Create(x[7]);
                c70 = Avx512F.FusedMultiplyAdd(w0, a, c70); c71 = Avx512F.FusedMultiplyAdd(w1, a, c71);
                a = Vector512.Create(x[8]);
                c80 = Avx512F.FusedMultiplyAdd(w0, a, c80); c81 = Avx512F.FusedMultiplyAdd(w1, a, c81);
                a = Vector512.Create(x[9]);
                c90 = Avx512F.FusedMultiplyAdd(w0, a, c90); c91 = Avx512F.FusedMultiplyAdd(w1, a, c91);
                a = Vector512.Create(x[10]);
                cA0 = Avx512F.FusedMultiplyAdd(w0, a, cA0); cA1 = Avx512F.FusedMultiplyAdd(w1, a, cA1);
                a = Vector512.Create(x[11]);
                cB0 = Avx512F.FusedMultiplyAdd(w0, a, cB0); cB1 = Avx512F.FusedMultiplyAdd(w1, a, cB1);
                w += 32;
                x += 12;
            }
            if (accumulate || k0 > 0)
            {
                c00 += Vector512.Load(c);
                c01 += Vector512.Load(c + 16);
                c10 += Vector512.Load(c + ldc);
                c11 += Vector512.Load(c + ldc + 16);
                c20 += Vector512.Load(c + 2 * ldc);
                c21 += Vector512.Load(c + 2 * ldc + 16);
                c30 += Vector512.Load(c + 3 * ldc);
                c31 += Vector512.Load(c + 3 * ldc + 16);
                c40 += Vector512.Load(c + 4 * ldc);
                c41 += Vector512.Load(c + 4 * ldc + 16);
                c50 += Vector512.Load(c + 5 * ldc);
                c51 += Vector512.Load(c + 5 * ldc + 16);
                c60 += Vector512.Load(c + 6 * ldc);
                c61 += Vector512.Load(c + 6 * ldc + 16);
                c70 += Vector512.Load(c + 7 * ldc);
                c71 += Vector512.Load(c + 7 * ldc + 16);
                c80 += Vector512.Load(c + 8 * ldc);
                c81 += Vector512.Load(c + 8 * ldc + 16);
                c90 += Vector512.Load(c + 9 * ldc);
                c91 += Vector512.Load(c + 9 * ldc + 16);
                cA0 += Vector512.Load(c + 10 * ldc);
                cA1 += Vector512.Load(c + 10 * ldc + 16);
                cB0 += Vector512.Load(c + 11 * ldc);
                cB1 += Vector512.Load(c + 11 * ldc + 16);
            }
            c00.Store(c); c01.Store(c + 16);
            c10.Store(c + ldc); c11.Store(c + ldc + 16);
            c20.Store(c + 2 * ldc); c21.Store(c + 2 * ldc + 16);
            c30.Store(c + 3 * ldc); c31.Store(c + 3 * ldc + 16);
            c40.Store(c + 4 * ldc); c41.Store(c + 4 * ldc + 16);
            c50.Store(c + 5 * ldc); c51.Store(c + 5 * ldc + 16);
            c60.Store(c + 6 * ldc); c61.Store(c + 6 * ldc + 16);
            c70.Store(c + 7 * ldc); c71.Store(c + 7 * ldc + 16);
            c80.Store(c + 8 * ldc); c81.Store(c + 8 * ldc + 16);
            c90.Store(c + 9 * ldc); c91.Store(c + 9 * ldc + 16);
            cA0.Store(c + 10 * ldc); cA1.Store(c + 10 * ldc + 16);
            cB0.Store(c + 11 * ldc); cB1.Store(c + 11 * ldc + 16);
        }
    }

    /// <summary>AVX2 microkernel: c[6 × 16] (+)= Σ_k x[k][0..5] ⊗ w[k][0..15].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel6x16(int kc, float* w, float* x, float* c, long ldc, bool accumulate)
    {
        Vector256<float> c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
        for (int k0 = 0; k0 < kc; k0 += FlushK)
        {
            int kEnd = Math.Min(kc, k0 + FlushK);
            c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = Vector256<float>.Zero;
            for (int k = k0; k < kEnd; k++)
            {
                Vector256<float> w0 = Vector256.Load(w), w1 = Vector256.Load(w + 8);
                Vector256<float> a = Vector256.Create(x[0]);
                c00 = Fma.MultiplyAdd(w0, a, c00); c01 = Fma.MultiplyAdd(w1, a, c01);
                a = Vector256.Create(x[1]);
                c10 = Fma.MultiplyAdd(w0, a, c10); c11 = Fma.MultiplyAdd(w1, a, c11);
                a = Vector256.Create(x[2]);
                c20 = Fma.MultiplyAdd(w0, a, c20); c21 = Fma.MultiplyAdd(w1, a, c21);
                a = Vector256.Create(x[3]);
                c30 = Fma.MultiplyAdd(w0, a, c30); c31 = Fma.MultiplyAdd(w1, a, c31);
                a = Vector256.Create(x[4]);
                c40 = Fma.MultiplyAdd(w0, a, c40); c41 = Fma.MultiplyAdd(w1, a, c41);
                a = Vector256.Create(x[5]);
                c50 = Fma.MultiplyAdd(w0, a, c50); c51 = Fma.MultiplyAdd(w1, a, c51);
                w += 16;
                x += 6;
            }
            if (accumulate || k0 > 0)
            {
                c00 += Vector256.Load(c);
                c01 += Vector256.Load(c + 8);
                c10 += Vector256.Load(c + ldc);
                c11 += Vector256.Load(c + ldc + 8);
                c20 += Vector256.Load(c + 2 * ldc);
                c21 += Vector256.Load(c + 2 * ldc + 8);
                c30 += Vector256.Load(c + 3 * ldc);
                c31 += Vector256.Load(c + 3 * ldc + 8);
                c40 += Vector256.Load(c + 4 * ldc);
                c41 += Vector256.Load(c + 4 * ldc + 8);
                c50 += Vector256.Load(c + 5 * ldc);
                c51 += Vector256.Load(c + 5 * ldc + 8);
            }
            c00.Store(c); c01.Store(c + 8);
            c10.Store(c + ldc); c11.Store(c + ldc + 8);
            c20.Store(c + 2 * ldc); c21.Store(c + 2 * ldc + 8);
            c30.Store(c + 3 * ldc); c31.Store(c + 3 * ldc + 8);
            c40.Store(c + 4 * ldc); c41.Store(c + 4 * ldc + 8);
            c50.Store(c + 5 * ldc); c51.Store(c + 5 * ldc + 8);
        }
    }

    /// <summary>Scalar microkernel (no SIMD): c[4 × 8] (+)= Σ_k x[k][0..3] ⊗ w[k][0..7], in float.</summary>
    private static void KernelScalar(int kc, float* w, float* x, float* c, long ldc, bool accumulate)
    {
        float* acc = stackalloc float[4 * 8];
        for (int k0 = 0; k0 < kc; k0 += FlushK)
        {
            new Span<float>(acc, 4 * 8).Clear();
            for (int k = k0, kEnd = Math.Min(kc, k0 + FlushK); k < kEnd; k++, w += 8, x += 4)
                for (int t = 0; t < 4; t++)
                {
                    float a = x[t];
                    for (int r = 0; r < 8; r++) acc[t * 8 + r] += a * w[r];
                }
            for (int t = 0; t < 4; t++)
                for (int r = 0; r < 8; r++) c[t * ldc + r] = accumulate || k0 > 0 ? c[t * ldc + r] + acc[t * 8 + r] : acc[t * 8 + r];
        }
    }

    /// <summary>
    /// Reference: y[t, r] = Σ_k x[t, k] · W[r, k] in double, weights expanded exactly. Independent of the packing,
    /// the blocking and the microkernels.
    /// </summary>
    public static void MultiplyReference(in WeightMatrix w, float* x, int tokens, double* y)
    {
        var row = new float[w.Cols];
        for (int r = 0; r < w.Rows; r++)
        {
            byte* src = w.Row(r);
            for (int i = 0; i < w.Cols; i++)
                row[i] = w.Type switch
                {
                    TensorType.F16 => Fp16.ToFloat(((ushort*)src)[i]),
                    TensorType.BF16 => Bf16.ToFloat(((ushort*)src)[i]),
                    _ => ((float*)src)[i],
                };
            for (int t = 0; t < tokens; t++)
            {
                double sum = 0;
                for (int i = 0; i < w.Cols; i++) sum += (double)row[i] * x[(long)t * w.Cols + i];
                y[(long)t * w.Rows + r] = sum;
            }
        }
    }
}
