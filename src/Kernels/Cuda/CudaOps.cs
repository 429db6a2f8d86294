using LlavaNative.Kernels.Cpu.Ops;
using LlavaNative.Kernels.Tensors;

namespace LlavaNative.Kernels.Cuda;

/// <summary>
/// Launchers of the kernels in Cuda/Kernels: each op takes device pointers and sizes, checks what the kernel
/// assumes (supported type, divisibility, limits) with a message naming the op, and queues one launch on the
/// device's stream. The same code runs against the CUDA driver and, in tests, against the host emulator.
/// Shapes follow the CPU ops in Cpu/Ops, which are the references the tests compare with. Launching allocates
/// nothing (one reused argument block), so a decode step can be captured into a graph.
/// </summary>
public sealed class CudaOps(IGpuDevice device) : IDisposable
{
    private const int MatVecRowsPerBlock = 4;   // matvec.cu: MATVEC_ROWS_PER_BLOCK warps of 32
    private const int ElementwiseThreads = 256;
    private const int ElementwiseMaxBlocks = 4096; // grid-stride loops cover the rest
    private const int RowThreads = 256;
    private const int AttentionThreads = 128;   // attention.cu: ATTN_WARPS warps
    private const int AttentionMaxHeadDim = 256; // attention.cu: ATTN_MAX_DIM

    private readonly KernelArguments _args = new();

    public IGpuDevice Device { get; } = device;

    /// <summary>Weight types with a device mat-vec and row gather.</summary>
    public static IReadOnlyList<TensorType> WeightTypes { get; } =
        [
            TensorType.F32, TensorType.F16, TensorType.BF16, TensorType.Q8_0, TensorType.Q4_0, TensorType.Q4_1, TensorType.Q5_0, TensorType.Q5_1,
            TensorType.IQ4_NL, TensorType.Q2_K, TensorType.Q3_K, TensorType.Q4_K, TensorType.Q5_K, TensorType.Q6_K,
        ];

    public static bool Supports(TensorType type) => WeightTypes.Contains(type);

    private static string Suffix(TensorType type) => type switch
    {
        TensorType.F32 => "f32",
        TensorType.F16 => "f16",
        TensorType.BF16 => "bf16",
        TensorType.Q8_0 => "q8_0",
        TensorType.Q4_0 => "q4_0",
        TensorType.Q4_1 => "q4_1",
        TensorType.Q5_1 => "q5_1",
        TensorType.IQ4_NL => "iq4_nl",
        TensorType.Q2_K => "q2_k",
        TensorType.Q3_K => "q3_k",
        TensorType.Q5_K => "q5_k",
        TensorType.Q5_0 => "q5_0",
        TensorType.Q4_K => "q4_k",
        TensorType.Q6_K => "q6_k",
        _ => throw new NotSupportedException(
            $"no CUDA kernel for weight type {TensorTypeInfo.Name(type)}; supported: {string.Join(", ", WeightTypes)}"),
    };

    // Kernel names per type, built once so a launch does not format strings.
    private static readonly Dictionary<TensorType, (string MatVec, string GetRows, string MatMul)> s_names =
        WeightTypes.ToDictionary(t => t, t => ("matvec_" + Suffix(t), "get_rows_" + Suffix(t), "matmul_" + Suffix(t)));

    private const int MatMulTileRows = 64, MatMulTileTokens = 64, MatMulThreads = 256; // matmul.cu

    private static void CheckRowLength(string op, TensorType type, int cols)
    {
        int block = TensorTypeInfo.BlockElements(type);
        if (cols <= 0 || cols % block != 0)
            throw new ArgumentException($"{op}: rows of {TensorTypeInfo.Name(type)} must be a positive multiple of {block} elements, got {cols}");
    }

    private static uint Blocks(long n, int perBlock) => (uint)Math.Max(1, Math.Min((n + perBlock - 1) / perBlock, ElementwiseMaxBlocks));

    /// <summary>y [rows] = W [rows, cols] · x [cols]; W in <paramref name="type"/> (row-major GGUF encoding), x and y F32.</summary>
    public void MatVec(TensorType type, DevicePtr w, DevicePtr x, DevicePtr y, int rows, int cols)
    {
        Suffix(type);
        CheckRowLength("MatVec", type, cols);
        if (QuantizedMatMulPath == QuantizedMatMulPath.Dp4a && HasMatVecDp4a(type)) { MatVecDp4a(type, w, x, y, rows, cols); return; }
        if (UsesDp4aK(type)) { MatVecDp4aK(type, w, x, y, rows, cols); return; }
        var kernel = Device.Kernel(s_names[type].MatVec);
        _args.Clear().Add(w).Add(x).Add(y).Add(rows).Add(cols);
        Device.Launch(kernel, (int)((rows + MatVecRowsPerBlock - 1) / MatVecRowsPerBlock), MatVecRowsPerBlock * 32, 0, _args);
    }

    /// <summary>
    /// Y [tokens, rows] = X [tokens, cols] · Wᵀ for prefill and the vision tower (W [rows, cols] in <paramref name="type"/>,
    /// X and Y F32; Y's token t starts at y + t·yStride floats, yStride ≥ rows). F32/F16/BF16 take any cols; quantized
    /// types whole blocks.
    /// </summary>
    public void MatMul(TensorType type, DevicePtr w, DevicePtr x, DevicePtr y, int rows, int cols, int tokens, int yStride)
    {
        Suffix(type);
        if (TensorTypeInfo.BlockElements(type) > 1) CheckRowLength("MatMul", type, cols);
        else if (cols <= 0) throw new ArgumentException($"MatMul: row length must be positive, got {cols}");
        if (yStride < rows) throw new ArgumentException($"MatMul: output stride {yStride} is shorter than a row of {rows} outputs");
        if (UsesDp4aK(type)) { MatMulDp4aK(type, w, x, y, rows, cols, tokens, yStride); return; }
        if (UsesDp4a(type, tokens)) { MatMulDp4a(type, w, x, y, rows, cols, tokens, yStride); return; }
        if (ResolveMatMulPath(type, cols, tokens) == MatMulPath.TensorCores)
        {
            if (type is TensorType.F16 or TensorType.BF16) MatMulTensorCores(type, w, x, y, rows, cols, tokens, yStride);
            else MatMulDequantizedTensorCores(type, w, x, y, rows, cols, tokens, yStride);
            return;
        }
        var kernel = Device.Kernel(s_names[type].MatMul);
        _args.Clear().Add(w).Add(x).Add(y).Add(rows).Add(cols).Add(tokens).Add(yStride);
        var grid = new Dim3((uint)((rows + MatMulTileRows - 1) / MatMulTileRows), (uint)((tokens + MatMulTileTokens - 1) / MatMulTileTokens));
        Device.Launch(kernel, grid, MatMulThreads, 0, _args);
    }

    /// <summary>
    /// <see cref="MatMul"/> on the tensor cores (mma.sync m16n8k16, sm_80+) for F16 and BF16 weights: activations are
    /// rounded to the weight's 16-bit type as they are staged, products accumulate in F32. Any rows, cols, tokens.
    /// </summary>
    public void MatMulTensorCores(TensorType type, DevicePtr w, DevicePtr x, DevicePtr y, int rows, int cols, int tokens, int yStride)
    {
        string name = type switch
        {
            TensorType.F16 => "matmul_tc_f16",
            TensorType.BF16 => "matmul_tc_bf16",
            _ => throw new NotSupportedException($"MatMulTensorCores: weight type {TensorTypeInfo.Name(type)}; supported: F16, BF16"),
        };
        if (cols <= 0) throw new ArgumentException($"MatMulTensorCores: row length must be positive, got {cols}");
        if (rows <= 0 || tokens <= 0) throw new ArgumentException($"MatMulTensorCores: {rows} rows × {tokens} tokens; both must be positive");
        if (yStride < rows) throw new ArgumentException($"MatMulTensorCores: output stride {yStride} is shorter than a row of {rows} outputs");
        if (cols % 8 == 0 && w.Address % 16 == 0)
        {
            // Version 2: the activations rounded to 16 bits once, into scratch, then 16-byte cp.async staging.
            DevicePtr xh = RoundActivations(type, x, cols, tokens);
            LaunchTensorCoresV2(type, w, xh, y, rows, cols, tokens, yStride);
            return;
        }
        _args.Clear().Add(w).Add(x).Add(y).Add(rows).Add(cols).Add(tokens).Add(yStride);
        var grid = new Dim3((uint)((rows + TensorCoreTileRows - 1) / TensorCoreTileRows), (uint)((tokens + TensorCoreTileTokens - 1) / TensorCoreTileTokens));
        Device.Launch(Device.Kernel(name), grid, TensorCoreThreads, 0, _args);
    }

    /// <summary>
    /// Version 1 of <see cref="MatMulTensorCores"/> whatever the alignment (activations rounded per tile as they are
    /// staged): the reference the version-2 kernel is checked against bit for bit, and the fallback for rows whose length
    /// is not a multiple of 8 or weights not 16-byte aligned.
    /// </summary>
    public void MatMulTensorCoresV1(TensorType type, DevicePtr w, DevicePtr x, DevicePtr y, int rows, int cols, int tokens, int yStride)
    {
        string name = type switch
        {
            TensorType.F16 => "matmul_tc_f16",
            TensorType.BF16 => "matmul_tc_bf16",
            _ => throw new NotSupportedException($"MatMulTensorCoresV1: weight type {TensorTypeInfo.Name(type)}; supported: F16, BF16"),
        };
        if (cols <= 0 || rows <= 0 || tokens <= 0 || yStride < rows)
            throw new ArgumentException($"MatMulTensorCoresV1: {rows} rows × {cols} cols × {tokens} tokens, output stride {yStride}");
        _args.Clear().Add(w).Add(x).Add(y).Add(rows).Add(cols).Add(tokens).Add(yStride);
        var grid = new Dim3((uint)((rows + TensorCoreTileRows - 1) / TensorCoreTileRows), (uint)((tokens + TensorCoreTileTokens - 1) / TensorCoreTileTokens));
        Device.Launch(Device.Kernel(name), grid, TensorCoreThreads, 0, _args);
    }

    private void LaunchTensorCoresV2(TensorType type, DevicePtr w, DevicePtr xh, DevicePtr y, int rows, int cols, int tokens, int yStride)
    {
        _args.Clear().Add(w).Add(xh).Add(y).Add(rows).Add(cols).Add(tokens).Add(yStride);
        var grid = new Dim3((uint)((rows + TensorCoreV2TileRows - 1) / TensorCoreV2TileRows), (uint)((tokens + TensorCoreV2TileTokens - 1) / TensorCoreV2TileTokens));
        Device.Launch(Device.Kernel(type == TensorType.BF16 ? "matmul_tc2_bf16" : "matmul_tc2_f16"), grid, TensorCoreV2Threads, 0, _args);
    }

    /// <summary>x [tokens, cols] F32 rounded to <paramref name="type"/>'s 16 bits (F16 or BF16) into this instance's scratch.</summary>
    private DevicePtr RoundActivations(TensorType type, DevicePtr x, int cols, int tokens)
    {
        long n = (long)tokens * cols;
        DevicePtr xh = Scratch(ref _halfActivations, n * 2);
        _args.Clear().Add(x).Add(xh).Add(n);
        Device.Launch(Device.Kernel(type == TensorType.BF16 ? "round_rows_bf16" : "round_rows_f16"), Blocks(n, ElementwiseThreads), ElementwiseThreads, 0, _args);
        return xh;
    }

    /// <summary>
    /// <see cref="MatMul"/> on the tensor cores for a quantized weight: the whole matrix is expanded to F16 (the CPU's
    /// Dequantize of each element, rounded to nearest even) into scratch of this instance, then the F16 tensor-core
    /// product with the activations rounded to F16. A 4096 × 11008 matrix is 90 MB of scratch and one pass over the
    /// quantized bytes per prefill batch, small beside the product of a batch. cols a multiple of 32.
    /// </summary>
    public void MatMulDequantizedTensorCores(TensorType type, DevicePtr w, DevicePtr x, DevicePtr y, int rows, int cols, int tokens, int yStride)
    {
        if (TensorTypeInfo.BlockElements(type) <= 1 || !Supports(type))
            throw new NotSupportedException($"MatMulDequantizedTensorCores: weight type {TensorTypeInfo.Name(type)} is not a quantized type with a device kernel");
        CheckRowLength("MatMulDequantizedTensorCores", type, cols);
        if (rows <= 0 || tokens <= 0) throw new ArgumentException($"MatMulDequantizedTensorCores: {rows} rows × {tokens} tokens; both must be positive");
        if (yStride < rows) throw new ArgumentException($"MatMulDequantizedTensorCores: output stride {yStride} is shorter than a row of {rows} outputs");
        long n = (long)rows * cols;
        DevicePtr wh = Scratch(ref _halfWeights, n * 2);
        _args.Clear().Add(w).Add(wh).Add(rows).Add(cols);
        Device.Launch(Device.Kernel(s_dequantizeF16[type]), Blocks(n / 32, ElementwiseThreads), ElementwiseThreads, 0, _args);
        DevicePtr xh = RoundActivations(TensorType.F16, x, cols, tokens);
        LaunchTensorCoresV2(TensorType.F16, wh, xh, y, rows, cols, tokens, yStride);
    }

    private static readonly Dictionary<TensorType, string> s_dequantizeF16 =
        WeightTypes.Where(t => TensorTypeInfo.BlockElements(t) > 1).ToDictionary(t => t, t => "dequantize_f16_" + Suffix(t));

    /// <summary>
    /// Which kernels <see cref="MatMul"/> runs for batches: <see cref="MatMulPath.Auto"/> (the default) takes the tensor
    /// cores on sm_80+ for F16, BF16 and quantized weights at <see cref="TensorCoreMinTokens"/> tokens or more (F32 weights
    /// stay on the F32 kernel); <see cref="MatMulPath.Float"/> always the F32-FMA tiled kernels (exact products of the
    /// F32 activations); <see cref="MatMulPath.TensorCores"/> the tensor cores for every non-F32 type and batch (sm_80+;
    /// older GPUs keep the F32 kernels).
    /// An explicit <see cref="QuantizedMatMulPath.Dp4a"/> takes precedence for the types it covers.
    /// </summary>
    public MatMulPath MatMulPath { get; set; } = MatMulPath.Auto;

    /// <summary>The smallest batch <see cref="MatMulPath.Auto"/> sends to the tensor cores.</summary>
    public const int TensorCoreMinTokens = 16;

    /// <summary>The kernel family <see cref="MatMul"/> takes for this weight type and batch under <see cref="MatMulPath"/>.</summary>
    public MatMulPath ResolveMatMulPath(TensorType type, int cols, int tokens)
    {
        bool eligible = type != TensorType.F32 && Supports(type);
        return MatMulPath switch
        {
            MatMulPath.Auto => eligible && tokens >= TensorCoreMinTokens && Device.ComputeCapability.Major >= 8 ? MatMulPath.TensorCores : MatMulPath.Float,
            MatMulPath.TensorCores => eligible && Device.ComputeCapability.Major >= 8 ? MatMulPath.TensorCores : MatMulPath.Float,
            _ => MatMulPath.Float,
        };
    }

    // Grow-only scratch of this instance (never allocated while a decode step is captured: single-token steps take the mat-vec).
    private DeviceBuffer? _halfActivations, _halfWeights;

    /// <summary>
    /// Allocates now the scratch the tensor-core mat-muls need for batches up to <paramref name="tokens"/> × <paramref name="cols"/>
    /// activations and quantized weights up to <paramref name="quantizedWeightElements"/> elements (0 when none), so that
    /// later calls within those sizes allocate nothing.
    /// </summary>
    public void ReserveTensorCoreScratch(int tokens, int cols, long quantizedWeightElements)
    {
        if (tokens > 0 && cols > 0) Scratch(ref _halfActivations, (long)tokens * cols * 2);
        if (quantizedWeightElements > 0) Scratch(ref _halfWeights, quantizedWeightElements * 2);
    }

    private DevicePtr Scratch(ref DeviceBuffer? buffer, long bytes)
    {
        if (buffer == null || buffer.Bytes < bytes)
        {
            buffer?.Dispose();
            buffer = null;
            buffer = Device.Allocate(bytes);
        }
        return buffer.Pointer;
    }

    private const int TensorCoreTileRows = 64, TensorCoreTileTokens = 64, TensorCoreThreads = 128; // matmul_tc.cu
    private const int TensorCoreV2TileRows = 128, TensorCoreV2TileTokens = 128, TensorCoreV2Threads = 256; // matmul_tc.cu: TC2_*

    /// <summary>dst [nIds, cols] (F32) = rows ids[0…nIds−1] of W [*, cols] in <paramref name="type"/>, dequantized (embedding lookup).</summary>
    public void GetRows(TensorType type, DevicePtr w, DevicePtr ids, DevicePtr dst, int nIds, int cols)
    {
        Suffix(type);
        CheckRowLength("GetRows", type, cols);
        var kernel = Device.Kernel(s_names[type].GetRows);
        _args.Clear().Add(w).Add(ids).Add(dst).Add(cols);
        Device.Launch(kernel, nIds, 128, 0, _args);
    }

    /// <summary>RMSNorm of each row of x [rows, cols] into y (may alias x).</summary>
    public void RmsNorm(DevicePtr x, DevicePtr weight, DevicePtr y, int rows, int cols, float eps)
    {
        _args.Clear().Add(x).Add(weight).Add(y).Add(cols).Add(eps);
        Device.Launch(Device.Kernel("rms_norm_f32"), rows, RowThreads, 0, _args);
    }

    /// <summary>LayerNorm of each row of x [rows, cols] into y (may alias x); <paramref name="bias"/> may be null (address 0).</summary>
    public void LayerNorm(DevicePtr x, DevicePtr weight, DevicePtr bias, DevicePtr y, int rows, int cols, float eps)
    {
        _args.Clear().Add(x).Add(weight).Add(bias).Add(y).Add(cols).Add(eps);
        Device.Launch(Device.Kernel("layer_norm_f32"), rows, RowThreads, 0, _args);
    }

    /// <summary>Softmax of each row of x [rows, cols], in place.</summary>
    public void Softmax(DevicePtr x, int rows, int cols)
    {
        _args.Clear().Add(x).Add(cols);
        Device.Launch(Device.Kernel("softmax_f32"), rows, RowThreads, 0, _args);
    }

    /// <summary>
    /// RoPE on <paramref name="nTokens"/> tokens (token t at x + t·rowStride floats, <paramref name="nHeads"/> heads of
    /// <paramref name="headDim"/>), first <paramref name="ropeDims"/> dims of each head, angles from cos/sin
    /// [nTokens, ropeDims/2] (<see cref="Rope.ComputeAngles"/>).
    /// </summary>
    public void Rope(DevicePtr x, DevicePtr cos, DevicePtr sin, int nTokens, int nHeads, int headDim, int ropeDims, int rowStride, RopeMode mode)
    {
        if (ropeDims % 2 != 0 || ropeDims > headDim || ropeDims <= 0)
            throw new ArgumentException($"Rope: rotary dims {ropeDims} must be even, positive and at most the head dim {headDim}");
        _args.Clear().Add(x).Add(cos).Add(sin).Add(nHeads).Add(headDim).Add(ropeDims).Add(rowStride).Add(mode == RopeMode.Neox ? 1 : 0);
        Device.Launch(Device.Kernel("rope_f32"), nTokens, 128, 0, _args);
    }

    /// <summary>
    /// Which attention kernel <see cref="Attention"/> uses when its call does not say (<see cref="AttentionPath.Auto"/>:
    /// the tiled tensor-core kernel for <see cref="TiledAttentionMinTokens"/> or more query tokens on sm_80+ with
    /// head dims up to <see cref="TiledAttentionMaxHeadDim"/>, else the F32 per-query kernel). Set it to force one
    /// path for every call of a decoder or encoder built on these ops (checks compare both).
    /// </summary>
    public AttentionPath AttentionPath { get; set; } = AttentionPath.Auto;

    /// <summary>Query tokens from which <see cref="AttentionPath.Auto"/> takes the tiled kernel (fewer: decode-like, the per-query kernel).</summary>
    public const int TiledAttentionMinTokens = 16;

    /// <summary>Largest head dim of the tiled kernel (attention.cu: attention_tiled_d128).</summary>
    public const int TiledAttentionMaxHeadDim = 128;

    private static readonly (int Dim, string Name)[] s_tiledAttention =
        [(32, "attention_tiled_d32"), (64, "attention_tiled_d64"), (80, "attention_tiled_d80"), (96, "attention_tiled_d96"), (128, "attention_tiled_d128")];
    private const int TiledAttentionRows = 64, TiledAttentionThreads = 128; // attention.cu: FA_ROWS, FA_THREADS

    /// <summary>The path a call with these sizes takes under <paramref name="path"/> (Auto resolved; a forced path is returned as is).</summary>
    public AttentionPath ResolveAttentionPath(AttentionPath path, int nTokens, int headDim) => path switch
    {
        AttentionPath.Auto => nTokens >= TiledAttentionMinTokens && headDim <= TiledAttentionMaxHeadDim && Device.ComputeCapability.Major >= 8
            ? AttentionPath.TensorCores
            : AttentionPath.F32,
        _ => path,
    };

    /// <summary>
    /// Attention with the geometry of <see cref="Cpu.Ops.Attention.Problem"/>: q, out [tokens, heads·headDim]; k, v [keys, kvStride].
    /// <paramref name="path"/> (null: <see cref="AttentionPath"/>) picks the kernel: <see cref="AttentionPath.F32"/>, attention_f32
    /// (F32 throughout, one block per query token and head); <see cref="AttentionPath.TensorCores"/>, attention_tiled_d*
    /// (64 queries × 64 keys per tile on mma.sync, Q, K, V and the probabilities rounded to F16, F32 accumulation and
    /// softmax; sm_80+, head dim ≤ 128, |q|, |k|, |v| below the F16 range 65504).
    /// </summary>
    public void Attention(DevicePtr q, DevicePtr k, DevicePtr v, DevicePtr output, int nTokens, int nHeads, int nKvHeads, int headDim,
        int kvStride, int startPos, int keyCount, bool causal, float scale, AttentionPath? path = null)
    {
        CheckAttentionHeads("Attention", nHeads, nKvHeads, headDim);
        if (nTokens <= 0) return;
        if (ResolveAttentionPath(path ?? AttentionPath, nTokens, headDim) == AttentionPath.TensorCores)
        {
            if (Device.ComputeCapability.Major < 8)
                throw new NotSupportedException(
                    $"Attention: the tensor-core kernel (mma.sync m16n8k16) needs compute capability 8.0 or newer; {Device.Name} is {Device.ComputeCapability.Major}.{Device.ComputeCapability.Minor}");
            if (headDim > TiledAttentionMaxHeadDim)
                throw new ArgumentException($"Attention: head dim {headDim} is above the tensor-core kernel's {TiledAttentionMaxHeadDim}");
            if (keyCount <= 0) throw new ArgumentException($"Attention: the tensor-core kernel needs at least one key, got {keyCount}");
            int variant = 0;
            while (s_tiledAttention[variant].Dim < headDim) variant++; // no LINQ: a launch allocates nothing
            string name = s_tiledAttention[variant].Name;
            _args.Clear().Add(q).Add(k).Add(v).Add(output).Add(nTokens).Add(nHeads).Add(nKvHeads).Add(headDim).Add(kvStride).Add(startPos)
                .Add(keyCount).Add(causal ? 1 : 0).Add(scale);
            var grid = new Dim3((uint)((nTokens + TiledAttentionRows - 1) / TiledAttentionRows), (uint)nHeads);
            Device.Launch(Device.Kernel(name), grid, TiledAttentionThreads, 0, _args);
            return;
        }
        _args.Clear().Add(q).Add(k).Add(v).Add(output).Add(nHeads).Add(nKvHeads).Add(headDim).Add(kvStride).Add(startPos)
            .Add(keyCount).Add(causal ? 1 : 0).Add(scale);
        Device.Launch(Device.Kernel("attention_f32"), new Dim3((uint)nHeads, (uint)nTokens), AttentionThreads, 0, _args);
    }

    private static void CheckAttentionHeads(string op, int nHeads, int nKvHeads, int headDim)
    {
        if (headDim > AttentionMaxHeadDim || headDim <= 0)
            throw new ArgumentException($"{op}: head dim {headDim} is outside the kernel's 1…{AttentionMaxHeadDim}");
        if (nKvHeads <= 0 || nHeads % nKvHeads != 0)
            throw new ArgumentException($"{op}: {nHeads} query heads cannot be grouped over {nKvHeads} KV heads");
    }

    /// <summary>
    /// Patch rows for the patch embedding: patches [perSide², 3·p·p] from planar RGB pixels [3, imageSize, imageSize]
    /// (the conv kernel's [3, p, p] order); multiply by the patch weight with <see cref="MatMul"/>.
    /// </summary>
    public void Im2ColPatches(DevicePtr pixels, DevicePtr patches, int imageSize, int patchSize)
    {
        if (patchSize <= 0 || imageSize < patchSize)
            throw new ArgumentException($"Im2ColPatches: patch size {patchSize} does not fit an image of {imageSize}");
        int perSide = imageSize / patchSize;
        _args.Clear().Add(pixels).Add(patches).Add(imageSize).Add(patchSize).Add(perSide);
        Device.Launch(Device.Kernel("im2col_patches_f32"), perSide * perSide, 256, 0, _args);
    }

    /// <summary>
    /// The vision tower's position table onto its embeddings x [positionCount, dim] (positions [positionCount, dim]):
    /// with a class embedding [dim] (CLIP), row 0 becomes class + positions[0] and x's row 0 is not read; with
    /// <paramref name="classEmbedding"/> null (address 0, SigLIP), x[r] += positions[r] for every row.
    /// </summary>
    public void AddPositionEmbeddings(DevicePtr x, DevicePtr positions, DevicePtr classEmbedding, int positionCount, int dim)
    {
        if (positionCount <= 0 || dim <= 0)
            throw new ArgumentException($"AddPositionEmbeddings: {positionCount} positions of {dim} floats; both must be positive");
        _args.Clear().Add(x).Add(positions).Add(classEmbedding).Add(positionCount).Add(dim);
        Device.Launch(Device.Kernel("add_position_embeddings_f32"), Blocks((long)positionCount * dim, ElementwiseThreads), ElementwiseThreads, 0, _args);
    }

    /// <summary>destination = source over n floats, device to device (the ranges must not overlap).</summary>
    public void Copy(DevicePtr source, DevicePtr destination, int n)
    {
        if (n < 0) throw new ArgumentException($"Copy: negative float count {n}");
        if (n == 0) return;
        _args.Clear().Add(source).Add(destination).Add(n);
        Device.Launch(Device.Kernel("copy_f32"), Blocks(n, ElementwiseThreads), ElementwiseThreads, 0, _args);
    }

    /// <summary>dst = a + b over n floats (dst may alias either).</summary>
    public void Add(DevicePtr a, DevicePtr b, DevicePtr dst, int n)
    {
        _args.Clear().Add(a).Add(b).Add(dst).Add(n);
        Device.Launch(Device.Kernel("add_f32"), Blocks(n, ElementwiseThreads), ElementwiseThreads, 0, _args);
    }

    /// <summary>x [rows, cols] += bias [cols] on every row.</summary>
    public void AddBiasRows(DevicePtr x, DevicePtr bias, int rows, int cols)
    {
        _args.Clear().Add(x).Add(bias).Add(rows).Add(cols);
        Device.Launch(Device.Kernel("add_bias_rows_f32"), Blocks((long)rows * cols, ElementwiseThreads), ElementwiseThreads, 0, _args);
    }

    /// <summary>x *= s over n floats.</summary>
    public void Scale(DevicePtr x, float s, int n)
    {
        _args.Clear().Add(x).Add(s).Add(n);
        Device.Launch(Device.Kernel("scale_f32"), Blocks(n, ElementwiseThreads), ElementwiseThreads, 0, _args);
    }

    /// <summary>gate = silu(gate) · up over n floats (<see cref="Elementwise.SiluMul"/>).</summary>
    public void SiluMul(DevicePtr gate, DevicePtr up, int n)
    {
        _args.Clear().Add(gate).Add(up).Add(n);
        Device.Launch(Device.Kernel("silu_mul_f32"), Blocks(n, ElementwiseThreads), ElementwiseThreads, 0, _args);
    }

    /// <summary>y = f(x) over n floats for the vision activations (<see cref="Activations"/>); y may alias x.</summary>
    public void Activation(ActivationFunction function, DevicePtr x, DevicePtr y, int n)
    {
        string name = function switch
        {
            ActivationFunction.GeluErf => "gelu_erf_f32",
            ActivationFunction.GeluTanh => "gelu_tanh_f32",
            ActivationFunction.QuickGelu => "quick_gelu_f32",
            _ => throw new ArgumentOutOfRangeException(nameof(function), function, "unknown activation"),
        };
        _args.Clear().Add(x).Add(y).Add(n);
        Device.Launch(Device.Kernel(name), Blocks(n, ElementwiseThreads), ElementwiseThreads, 0, _args);
    }

    /// <summary>result[0] (an int on the device) = index of the largest of x [n], first on ties (<c>Sampler.ArgMax</c>).</summary>
    public void ArgMax(DevicePtr x, int n, DevicePtr result)
    {
        if (n <= 0) throw new ArgumentException($"ArgMax: needs at least one value, got {n}");
        _args.Clear().Add(x).Add(n).Add(result);
        Device.Launch(Device.Kernel("argmax_f32"), 1, 1024, 0, _args);
    }

    // ---- decode steps captured as CUDA graphs: the position is read from device memory (kv_cache.cu, rope.cu, attention.cu) ----

    /// <summary>
    /// Writes a decode step's inputs to device memory with one launch: *position = <paramref name="pos"/>, and
    /// *tokenId = <paramref name="token"/> unless <paramref name="tokenId"/> is null (address 0). Launched directly before a
    /// captured step's graph, so the graph reads values that change at every step.
    /// </summary>
    public void DecodeStepBegin(DevicePtr position, int pos, DevicePtr tokenId, int token)
    {
        if (pos < 0) throw new ArgumentOutOfRangeException(nameof(pos), pos, "DecodeStepBegin: the position must not be negative");
        _args.Clear().Add(position).Add(pos).Add(tokenId).Add(token);
        Device.Launch(Device.Kernel("decode_step_begin"), 1, 32, 0, _args);
    }

    /// <summary>
    /// <see cref="Rope"/> on one token x [nHeads·headDim] whose position is the int at <paramref name="position"/> (device
    /// memory): the angles are that row of the tables cos/sin [positions, ropeDims/2] (<see cref="Rope.ComputeAngles"/>
    /// from position 0), which must cover the position.
    /// </summary>
    public void RopeAt(DevicePtr x, DevicePtr cosTable, DevicePtr sinTable, DevicePtr position, int nHeads, int headDim, int ropeDims, RopeMode mode)
    {
        if (ropeDims % 2 != 0 || ropeDims > headDim || ropeDims <= 0)
            throw new ArgumentException($"RopeAt: rotary dims {ropeDims} must be even, positive and at most the head dim {headDim}");
        _args.Clear().Add(x).Add(cosTable).Add(sinTable).Add(position).Add(nHeads).Add(headDim).Add(ropeDims).Add(mode == RopeMode.Neox ? 1 : 0);
        Device.Launch(Device.Kernel("rope_f32_at"), 1, 128, 0, _args);
    }

    /// <summary>Row *position of the caches k, v [positions, kvDim] = kRow, vRow [kvDim] (the position read from device memory).</summary>
    public void KvAppend(DevicePtr kRow, DevicePtr vRow, DevicePtr kCache, DevicePtr vCache, DevicePtr position, int kvDim)
    {
        if (kvDim <= 0) throw new ArgumentException($"KvAppend: a cache row must have positive length, got {kvDim}");
        _args.Clear().Add(kRow).Add(vRow).Add(kCache).Add(vCache).Add(position).Add(kvDim);
        Device.Launch(Device.Kernel("kv_append_f32"), Blocks(kvDim, ElementwiseThreads), ElementwiseThreads, 0, _args);
    }

    /// <summary>
    /// <see cref="Attention"/> of one query token q, out [nHeads·headDim] at the position held in device memory, causal:
    /// keys 0 … *position of k, v [positions, kvStride]. The kernel is attention_f32's (same bits for the same keys),
    /// one block per head; nothing in the launch depends on the position.
    /// </summary>
    public void AttentionDecode(DevicePtr q, DevicePtr k, DevicePtr v, DevicePtr output, int nHeads, int nKvHeads, int headDim, int kvStride,
        DevicePtr position, float scale)
    {
        CheckAttentionHeads("AttentionDecode", nHeads, nKvHeads, headDim);
        _args.Clear().Add(q).Add(k).Add(v).Add(output).Add(nHeads).Add(nKvHeads).Add(headDim).Add(kvStride).Add(position).Add(scale);
        Device.Launch(Device.Kernel("attention_decode_f32"), nHeads, AttentionThreads, 0, _args);
    }


    // ---- integer (dp4a) prefill mat-mul for Q8_0 / Q4_0: matmul_dp4a.cu ----

    /// <summary>
    /// Which kernels run quantized products: <see cref="QuantizedMatMulPath.Float"/> (dequantize, F32 FMAs; the default) or
    /// <see cref="QuantizedMatMulPath.Dp4a"/> (activations quantized as the CPU does, integer dot products) — in
    /// <see cref="MatMul"/> for Q8_0 and Q4_0 weights at batches of <see cref="Dp4aMinTokens"/> or more, in
    /// <see cref="MatVec"/> (decode) for the types of <see cref="HasMatVecDp4a"/>, and for Q4_K / Q5_K / Q6_K in both at
    /// every batch size (matmul_dp4a_k.cu, activations quantized to Q8_K). An explicit Dp4a takes precedence over the
    /// tensor cores of <see cref="MatMulPath.Auto"/> for the types it covers.
    /// </summary>
    public QuantizedMatMulPath QuantizedMatMulPath { get; set; } =
        Environment.GetEnvironmentVariable(Dp4aVariable) == "1" ? QuantizedMatMulPath.Dp4a : QuantizedMatMulPath.Float;

    /// <summary>Set to "1" to start every <see cref="CudaOps"/> with <see cref="QuantizedMatMulPath.Dp4a"/> (A/B timing from the CLI).</summary>
    public const string Dp4aVariable = "LLAVANATIVE_CUDA_DP4A";

    /// <summary>The smallest batch <see cref="MatMul"/> sends to the dp4a kernel when <see cref="QuantizedMatMulPath"/> asks for it.</summary>
    public const int Dp4aMinTokens = 16;

    private const int Dp4aTile = 32, Dp4aThreads = 256; // matmul_dp4a.cu: DP4A_TILE, DP4A_THREADS
    private DeviceBuffer? _dp4aScratch;                  // the quantized activations: int8 [tokens, cols], then F32 scales [tokens, cols / 32]

    private bool UsesDp4a(TensorType type, int tokens)
        => QuantizedMatMulPath == QuantizedMatMulPath.Dp4a && tokens >= Dp4aMinTokens && type is TensorType.Q8_0 or TensorType.Q4_0;

    /// <summary>
    /// x [tokens, cols] F32 → Q8_0 activation blocks split in two arrays: xq int8 [tokens, cols] and xd F32 [tokens, cols / 32]
    /// (the F16 scale widened); the bytes and scales of the CPU's <c>ActivationQuantizers.Q8_0</c>. cols a multiple of 32.
    /// </summary>
    public void QuantizeRowsQ8_0(DevicePtr x, DevicePtr xq, DevicePtr xd, int cols, int tokens)
    {
        CheckRowLength("QuantizeRowsQ8_0", TensorType.Q8_0, cols);
        if (tokens <= 0) throw new ArgumentException($"QuantizeRowsQ8_0: token count must be positive, got {tokens}");
        long total = (long)tokens * cols;
        if (total > int.MaxValue) throw new ArgumentException($"QuantizeRowsQ8_0: {tokens} × {cols} values exceed the kernel's int range");
        _args.Clear().Add(x).Add(xq).Add(xd).Add((int)total);
        Device.Launch(Device.Kernel("quantize_rows_q8_0"), (uint)((total + 255) / 256), 256, 0, _args);
    }

    /// <summary>
    /// <see cref="MatMul"/> for Q8_0 / Q4_0 weights on integer dot products: the activations are quantized to Q8_0 into a
    /// scratch buffer of this instance (grown when a larger batch comes), then each 32-element block is a dp4a sum scaled
    /// by the weight's and the activation's scales — bit-identical to the CPU's scalar VecDot on the same blocks.
    /// </summary>
    public void MatMulDp4a(TensorType type, DevicePtr w, DevicePtr x, DevicePtr y, int rows, int cols, int tokens, int yStride)
    {
        string name = type switch
        {
            TensorType.Q8_0 => "matmul_dp4a_q8_0",
            TensorType.Q4_0 => "matmul_dp4a_q4_0",
            _ => throw new NotSupportedException($"MatMulDp4a: weight type {TensorTypeInfo.Name(type)}; supported: Q8_0, Q4_0"),
        };
        CheckRowLength("MatMulDp4a", type, cols);
        if (rows <= 0 || tokens <= 0) throw new ArgumentException($"MatMulDp4a: {rows} rows × {tokens} tokens; both must be positive");
        if (yStride < rows) throw new ArgumentException($"MatMulDp4a: output stride {yStride} is shorter than a row of {rows} outputs");
        long quantBytes = (long)tokens * cols, scaleBytes = (long)tokens * (cols / 32) * 4;
        if (_dp4aScratch == null || _dp4aScratch.Bytes < quantBytes + scaleBytes)
        {
            _dp4aScratch?.Dispose();
            _dp4aScratch = null;
            _dp4aScratch = Device.Allocate(quantBytes + scaleBytes);
        }
        DevicePtr xq = _dp4aScratch.Pointer, xd = _dp4aScratch.Pointer.Offset(quantBytes); // quantBytes is a multiple of 32: xd stays aligned
        QuantizeRowsQ8_0(x, xq, xd, cols, tokens);
        _args.Clear().Add(w).Add(xq).Add(xd).Add(y).Add(rows).Add(cols).Add(tokens).Add(yStride);
        var grid = new Dim3((uint)((rows + Dp4aTile - 1) / Dp4aTile), (uint)((tokens + Dp4aTile - 1) / Dp4aTile));
        Device.Launch(Device.Kernel(name), grid, Dp4aThreads, 0, _args);
    }

    // ---- F16 KV cache: kv_cache.cu (kv_append_f16, kv_store_f16), attention.cu (*_f16kv) ----

    /// <summary>
    /// <see cref="KvAppend"/> for an F16 cache: row *position of k, v [positions, kvDim] (IEEE halves) = kRow, vRow [kvDim]
    /// (F32) rounded to nearest even; the position read from device memory, so a captured decode step replays it.
    /// </summary>
    public void KvAppendF16(DevicePtr kRow, DevicePtr vRow, DevicePtr kCache, DevicePtr vCache, DevicePtr position, int kvDim)
    {
        if (kvDim <= 0) throw new ArgumentException($"KvAppendF16: a cache row must have positive length, got {kvDim}");
        _args.Clear().Add(kRow).Add(vRow).Add(kCache).Add(vCache).Add(position).Add(kvDim);
        Device.Launch(Device.Kernel("kv_append_f16"), Blocks(kvDim, ElementwiseThreads), ElementwiseThreads, 0, _args);
    }

    /// <summary>
    /// A prefill batch into an F16 cache: kCache[i], vCache[i] (halves, offset by the caller to the batch's first row) =
    /// kRows[i], vRows[i] (F32) rounded to nearest even, i &lt; <paramref name="count"/>.
    /// </summary>
    public void KvStoreF16(DevicePtr kRows, DevicePtr vRows, DevicePtr kCache, DevicePtr vCache, int count)
    {
        if (count <= 0) throw new ArgumentException($"KvStoreF16: the value count must be positive, got {count}");
        _args.Clear().Add(kRows).Add(vRows).Add(kCache).Add(vCache).Add(count);
        Device.Launch(Device.Kernel("kv_store_f16"), Blocks(count, ElementwiseThreads), ElementwiseThreads, 0, _args);
    }

    private static readonly (int Dim, string Name)[] s_tiledAttentionF16Kv =
    [
        (32, "attention_tiled_f16kv_d32"), (64, "attention_tiled_f16kv_d64"), (80, "attention_tiled_f16kv_d80"), (96, "attention_tiled_f16kv_d96"),
        (128, "attention_tiled_f16kv_d128"),
    ];

    /// <summary>
    /// <see cref="Attention"/> on an F16 KV cache: k, v [keys, kvStride] hold IEEE halves; q and output stay F32, and so does
    /// the math (<see cref="AttentionPath.F32"/>: attention_f16kv widens each value as it reads it; the tensor-core path
    /// stages the halves as they are, where it would round an F32 cache to the same halves). Paths as <see cref="Attention"/>.
    /// </summary>
    public void AttentionF16Kv(DevicePtr q, DevicePtr k, DevicePtr v, DevicePtr output, int nTokens, int nHeads, int nKvHeads, int headDim,
        int kvStride, int startPos, int keyCount, bool causal, float scale, AttentionPath? path = null)
    {
        CheckAttentionHeads("AttentionF16Kv", nHeads, nKvHeads, headDim);
        if (nTokens <= 0) return;
        if (ResolveAttentionPath(path ?? AttentionPath, nTokens, headDim) == AttentionPath.TensorCores)
        {
            if (Device.ComputeCapability.Major < 8)
                throw new NotSupportedException(
                    $"AttentionF16Kv: the tensor-core kernel (mma.sync m16n8k16) needs compute capability 8.0 or newer; {Device.Name} is {Device.ComputeCapability.Major}.{Device.ComputeCapability.Minor}");
            if (headDim > TiledAttentionMaxHeadDim)
                throw new ArgumentException($"AttentionF16Kv: head dim {headDim} is above the tensor-core kernel's {TiledAttentionMaxHeadDim}");
            if (keyCount <= 0) throw new ArgumentException($"AttentionF16Kv: the tensor-core kernel needs at least one key, got {keyCount}");
            int variant = 0;
            while (s_tiledAttentionF16Kv[variant].Dim < headDim) variant++; // no LINQ: a launch allocates nothing
            _args.Clear().Add(q).Add(k).Add(v).Add(output).Add(nTokens).Add(nHeads).Add(nKvHeads).Add(headDim).Add(kvStride).Add(startPos)
                .Add(keyCount).Add(causal ? 1 : 0).Add(scale);
            var grid = new Dim3((uint)((nTokens + TiledAttentionRows - 1) / TiledAttentionRows), (uint)nHeads);
            Device.Launch(Device.Kernel(s_tiledAttentionF16Kv[variant].Name), grid, TiledAttentionThreads, 0, _args);
            return;
        }
        _args.Clear().Add(q).Add(k).Add(v).Add(output).Add(nHeads).Add(nKvHeads).Add(headDim).Add(kvStride).Add(startPos)
            .Add(keyCount).Add(causal ? 1 : 0).Add(scale);
        Device.Launch(Device.Kernel("attention_f16kv"), new Dim3((uint)nHeads, (uint)nTokens), AttentionThreads, 0, _args);
    }

    /// <summary><see cref="AttentionDecode"/> on an F16 KV cache (k, v IEEE halves): attention_f16kv's body, the position from device memory.</summary>
    public void AttentionDecodeF16Kv(DevicePtr q, DevicePtr k, DevicePtr v, DevicePtr output, int nHeads, int nKvHeads, int headDim, int kvStride,
        DevicePtr position, float scale)
    {
        CheckAttentionHeads("AttentionDecodeF16Kv", nHeads, nKvHeads, headDim);
        _args.Clear().Add(q).Add(k).Add(v).Add(output).Add(nHeads).Add(nKvHeads).Add(headDim).Add(kvStride).Add(position).Add(scale);
        Device.Launch(Device.Kernel("attention_decode_f16kv"), nHeads, AttentionThreads, 0, _args);
    }

    // ---- integer (dp4a) decode mat-vec for the 32-element block types: matvec_dp4a.cu ----

    private const int MatVecDp4aRowsPerBlock = 4; // matvec_dp4a.cu: MMVQ_ROWS warps of 32
    private DeviceBuffer? _matVecScratch;          // one quantized activation row: int8 [cols], F32 d [cols / 32], F32 s [cols / 32]

    /// <summary>Weight types <see cref="MatVec"/> sends to the dp4a kernel when <see cref="QuantizedMatMulPath"/> is Dp4a.</summary>
    public static bool HasMatVecDp4a(TensorType type)
        => type is TensorType.Q8_0 or TensorType.Q4_0 or TensorType.Q4_1 or TensorType.Q5_0 or TensorType.Q5_1 or TensorType.IQ4_NL;

    /// <summary>
    /// Makes the mat-vec scratch (one quantized activation row) hold rows of <paramref name="maxCols"/>. A decoder
    /// calls it once with its longest row, so a later <see cref="MatVecDp4a"/> never allocates: a captured decode graph
    /// keeps pointing at this buffer, and nothing may be allocated inside a capture.
    /// </summary>
    public void ReserveMatVecScratch(int maxCols)
    {
        if (maxCols <= 0) throw new ArgumentException($"ReserveMatVecScratch: row length must be positive, got {maxCols}");
        long blocks = (maxCols + 31) / 32, bytes = blocks * 32 + blocks * 8;
        if (_matVecScratch != null && _matVecScratch.Bytes >= bytes) return;
        if (Device.IsCapturing)
            throw new InvalidOperationException(
                $"MatVecDp4a: rows of {maxCols} need a larger activation scratch than was reserved, and a graph capture is in progress (call ReserveMatVecScratch first)");
        _matVecScratch?.Dispose();
        _matVecScratch = null;
        _matVecScratch = Device.Allocate(bytes);
    }

    /// <summary>
    /// x [tokens, cols] F32 → Q8_1 activation blocks split in three arrays: xq int8 [tokens, cols], xd and xs F32
    /// [tokens, cols / 32] (the F16 d and s = d·Σq widened); the bytes and values of the CPU's <c>ActivationQuantizers.Q8_1</c>.
    /// </summary>
    public void QuantizeRowsQ8_1(DevicePtr x, DevicePtr xq, DevicePtr xd, DevicePtr xs, int cols, int tokens)
    {
        CheckRowLength("QuantizeRowsQ8_1", TensorType.Q8_0, cols);
        if (tokens <= 0) throw new ArgumentException($"QuantizeRowsQ8_1: token count must be positive, got {tokens}");
        long total = (long)tokens * cols;
        if (total > int.MaxValue) throw new ArgumentException($"QuantizeRowsQ8_1: {tokens} × {cols} values exceed the kernel's int range");
        _args.Clear().Add(x).Add(xq).Add(xd).Add(xs).Add((int)total);
        Device.Launch(Device.Kernel("quantize_rows_q8_1"), (uint)((total + 255) / 256), 256, 0, _args);
    }

    /// <summary>
    /// <see cref="MatVec"/> on integer dot products for Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 and IQ4_NL: x is quantized to the
    /// type's CPU dot encoding (Q8_0; Q8_1 for Q4_1 and Q5_1) into this instance's scratch, then each 32-element block
    /// is a dp4a sum whose float term is the CPU scalar VecDot's; the terms are summed in a different order, so y
    /// equals that VecDot up to float reassociation (matvec_dp4a.cu).
    /// </summary>
    public void MatVecDp4a(TensorType type, DevicePtr w, DevicePtr x, DevicePtr y, int rows, int cols)
    {
        string name = type switch
        {
            TensorType.Q8_0 => "matvec_dp4a_q8_0",
            TensorType.Q4_0 => "matvec_dp4a_q4_0",
            TensorType.Q4_1 => "matvec_dp4a_q4_1",
            TensorType.Q5_0 => "matvec_dp4a_q5_0",
            TensorType.Q5_1 => "matvec_dp4a_q5_1",
            TensorType.IQ4_NL => "matvec_dp4a_iq4_nl",
            _ => throw new NotSupportedException($"MatVecDp4a: weight type {TensorTypeInfo.Name(type)}; supported: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL"),
        };
        CheckRowLength("MatVecDp4a", type, cols);
        if (rows <= 0) throw new ArgumentException($"MatVecDp4a: row count must be positive, got {rows}");
        if (w.Address % 4 != 0) throw new ArgumentException($"MatVecDp4a: the weights must be 4-byte aligned (32-bit loads), got address 0x{w.Address:x}");
        ReserveMatVecScratch(cols);
        DevicePtr xq = _matVecScratch!.Pointer, xd = xq.Offset(cols), xs = xd.Offset(cols / 32 * 4L); // cols is a multiple of 32: all aligned
        if (type is TensorType.Q4_1 or TensorType.Q5_1) QuantizeRowsQ8_1(x, xq, xd, xs, cols, 1);
        else QuantizeRowsQ8_0(x, xq, xd, cols, 1);
        _args.Clear().Add(w).Add(xq).Add(xd).Add(xs).Add(y).Add(rows).Add(cols);
        Device.Launch(Device.Kernel(name), (rows + MatVecDp4aRowsPerBlock - 1) / MatVecDp4aRowsPerBlock, MatVecDp4aRowsPerBlock * 32, 0, _args);
    }

    // ---- integer (dp4a) mat-mul and mat-vec for Q4_K / Q5_K / Q6_K: matmul_dp4a_k.cu ----

    private const int Dp4aKTile = 32, Dp4aKThreads = 256; // matmul_dp4a_k.cu: DP4AK_TILE, DP4AK_THREADS
    private const int MatVecDp4aKRows = 4;                 // matmul_dp4a_k.cu: MATVEC_DP4AK_ROWS warps, one row each
    private const int Q8KBlockBytes = 292;                 // F32 d, 256 int8, 16 int16 bsums (ActivationQuantizers.Q8_KBlockBytes)
    private DeviceBuffer? _q8kScratch;                     // MatMul: Q8_K blocks [tokens, cols / 256]
    private DeviceBuffer? _q8kRowScratch;                  // MatVec: Q8_K blocks [cols / 256]; captured decode steps point here
    private readonly List<DeviceBuffer> _retiredQ8kRowScratch = []; // outgrown row scratch, alive until Dispose for the graphs that use it

    private bool UsesDp4aK(TensorType type)
        => QuantizedMatMulPath == QuantizedMatMulPath.Dp4a && type is TensorType.Q4_K or TensorType.Q5_K or TensorType.Q6_K;

    private static string Dp4aKSuffix(string op, TensorType type) => type switch
    {
        TensorType.Q4_K => "q4_k",
        TensorType.Q5_K => "q5_k",
        TensorType.Q6_K => "q6_k",
        _ => throw new NotSupportedException($"{op}: weight type {TensorTypeInfo.Name(type)}; supported: Q4_K, Q5_K, Q6_K"),
    };

    // Kernel names built once so a launch formats no strings.
    private static readonly Dictionary<TensorType, (string MatMul, string MatVec)> s_dp4aKNames =
        new[] { TensorType.Q4_K, TensorType.Q5_K, TensorType.Q6_K }.ToDictionary(
            t => t, t => ("matmul_dp4a_" + Dp4aKSuffix("", t), "matvec_dp4a_" + Dp4aKSuffix("", t)));

    /// <summary>
    /// x [tokens, cols] F32 → xk [tokens, cols / 256] Q8_K blocks of 292 bytes (F32 d, 256 int8, 16 int16 bsums): the
    /// bytes of the CPU's <c>ActivationQuantizers.Q8_K</c>. cols a multiple of 256; xk 4-byte aligned.
    /// </summary>
    public void QuantizeRowsQ8_K(DevicePtr x, DevicePtr xk, int cols, int tokens)
    {
        CheckRowLength("QuantizeRowsQ8_K", TensorType.Q8_K, cols);
        if (tokens <= 0) throw new ArgumentException($"QuantizeRowsQ8_K: token count must be positive, got {tokens}");
        long blocks = (long)tokens * (cols / 256);
        if (blocks * 256 > int.MaxValue) throw new ArgumentException($"QuantizeRowsQ8_K: {tokens} × {cols} values exceed the kernel's int range");
        if (x.Address % 4 != 0 || xk.Address % 4 != 0) throw new ArgumentException($"QuantizeRowsQ8_K: x ({x}) and xk ({xk}) must be 4-byte aligned");
        _args.Clear().Add(x).Add(xk).Add((int)blocks);
        Device.Launch(Device.Kernel("quantize_rows_q8_k"), (uint)((blocks + 7) / 8), 256, 0, _args); // a warp per block
    }

    private void CheckDp4aK(string op, TensorType type, DevicePtr w, DevicePtr x, DevicePtr y, int rows, int cols, int tokens, int yStride)
    {
        Dp4aKSuffix(op, type);
        CheckRowLength(op, type, cols);
        if (rows <= 0 || tokens <= 0) throw new ArgumentException($"{op}: {rows} rows × {tokens} tokens; both must be positive");
        if (yStride < rows) throw new ArgumentException($"{op}: output stride {yStride} is shorter than a row of {rows} outputs");
        // Q4_K (144 bytes) and Q5_K (176) super-blocks are read in 32-bit words, Q6_K (210) in 16-bit halves.
        uint wAlign = type == TensorType.Q6_K ? 2u : 4u;
        if (w.Address % wAlign != 0) throw new ArgumentException($"{op}: {TensorTypeInfo.Name(type)} weights at {w} must be {wAlign}-byte aligned");
        if (x.Address % 4 != 0 || y.Address % 4 != 0) throw new ArgumentException($"{op}: x ({x}) and y ({y}) must be 4-byte aligned");
    }

    /// <summary>
    /// <see cref="MatMul"/> for Q4_K / Q5_K / Q6_K weights on integer dot products: the activations are quantized to
    /// Q8_K into a scratch buffer of this instance (grown when a larger batch comes), then each 256-element super-block is
    /// a sum of dp4a products with the sub-block scales (and mins) — bit-identical to the CPU's scalar VecDot on the same
    /// blocks. Batches of <see cref="Dp4aMinTokens"/> or more take the tiled kernel, smaller ones the mat-vec per token.
    /// </summary>
    public void MatMulDp4aK(TensorType type, DevicePtr w, DevicePtr x, DevicePtr y, int rows, int cols, int tokens, int yStride)
    {
        CheckDp4aK("MatMulDp4aK", type, w, x, y, rows, cols, tokens, yStride);
        long bytes = (long)tokens * (cols / 256) * Q8KBlockBytes;
        if (_q8kScratch == null || _q8kScratch.Bytes < bytes)
        {
            _q8kScratch?.Dispose();
            _q8kScratch = null;
            _q8kScratch = Device.Allocate(bytes);
        }
        QuantizeRowsQ8_K(x, _q8kScratch.Pointer, cols, tokens);
        var names = s_dp4aKNames[type];
        _args.Clear().Add(w).Add(_q8kScratch.Pointer).Add(y).Add(rows).Add(cols);
        if (tokens >= Dp4aMinTokens)
        {
            _args.Add(tokens).Add(yStride);
            var grid = new Dim3((uint)((rows + Dp4aKTile - 1) / Dp4aKTile), (uint)((tokens + Dp4aKTile - 1) / Dp4aKTile));
            Device.Launch(Device.Kernel(names.MatMul), grid, Dp4aKThreads, 0, _args);
        }
        else
        {
            _args.Add(yStride);
            Device.Launch(Device.Kernel(names.MatVec), new Dim3((uint)((rows + MatVecDp4aKRows - 1) / MatVecDp4aKRows), (uint)tokens),
                MatVecDp4aKRows * 32, 0, _args);
        }
    }

    /// <summary>
    /// <see cref="MatVec"/> for Q4_K / Q5_K / Q6_K weights on integer dot products (the decode step): x quantized to Q8_K
    /// into a one-row scratch buffer, then one warp per weight row. The scratch only grows outside a graph capture; an
    /// outgrown one stays allocated until <see cref="Dispose"/>, so a decode step captured on it stays valid.
    /// </summary>
    public void MatVecDp4aK(TensorType type, DevicePtr w, DevicePtr x, DevicePtr y, int rows, int cols)
    {
        CheckDp4aK("MatVecDp4aK", type, w, x, y, rows, cols, 1, rows);
        long bytes = (cols / 256) * (long)Q8KBlockBytes;
        if (_q8kRowScratch == null || _q8kRowScratch.Bytes < bytes)
        {
            if (Device.IsCapturing)
                throw new InvalidOperationException(
                    $"MatVecDp4aK: a row of {cols} columns needs a larger Q8_K scratch during a graph capture; run the step once directly first");
            if (_q8kRowScratch != null) _retiredQ8kRowScratch.Add(_q8kRowScratch);
            _q8kRowScratch = null;
            _q8kRowScratch = Device.Allocate(bytes);
        }
        QuantizeRowsQ8_K(x, _q8kRowScratch.Pointer, cols, 1);
        _args.Clear().Add(w).Add(_q8kRowScratch.Pointer).Add(y).Add(rows).Add(cols).Add(rows);
        Device.Launch(Device.Kernel(s_dp4aKNames[type].MatVec), (uint)((rows + MatVecDp4aKRows - 1) / MatVecDp4aKRows), MatVecDp4aKRows * 32, 0, _args);
    }

    public void Dispose()
    {
        _q8kScratch?.Dispose();
        _q8kScratch = null;
        _q8kRowScratch?.Dispose();
        _q8kRowScratch = null;
        foreach (var retired in _retiredQ8kRowScratch) retired.Dispose();
        _retiredQ8kRowScratch.Clear();
        _dp4aScratch?.Dispose();
        _dp4aScratch = null;
        _halfActivations?.Dispose();
        _halfActivations = null;
        _halfWeights?.Dispose();
        _halfWeights = null;
        _matVecScratch?.Dispose();
        _matVecScratch = null;
        _args.Dispose();
    }
}

/// <summary>Which kernel family <see cref="CudaOps.MatMul"/> runs for prefill-sized batches.</summary>
public enum MatMulPath
{
    /// <summary>Tensor cores on sm_80+ for non-F32 weights at batches of <see cref="CudaOps.TensorCoreMinTokens"/> or more, else F32.</summary>
    Auto,
    /// <summary>matmul_*: weights expanded to F32, F32 FMAs with the F32 activations.</summary>
    Float,
    /// <summary>matmul_tc2_*: F16/BF16 weights as they are, quantized ones expanded to F16; activations rounded to 16 bits; F32 accumulation.</summary>
    TensorCores,
}

/// <summary>Which kernel <see cref="CudaOps.MatMul"/> runs for Q8_0 / Q4_0 weights at prefill-sized batches (and MatMul / MatVec for Q4_K / Q5_K / Q6_K).</summary>
public enum QuantizedMatMulPath
{
    /// <summary>matmul_q8_0 / matmul_q4_0: weights dequantized to F32, F32 FMAs with the F32 activations.</summary>
    Float,
    /// <summary>matmul_dp4a_* / matvec_dp4a_*: activations quantized to Q8_0 or Q8_K (as the CPU does for these weights), int8 dot products (dp4a).</summary>
    Dp4a,
}

/// <summary>Which kernel <see cref="CudaOps.Attention"/> runs.</summary>
public enum AttentionPath
{
    /// <summary>Tensor cores for prefill-sized batches on sm_80+ (<see cref="CudaOps.ResolveAttentionPath"/>), else F32.</summary>
    Auto,
    /// <summary>attention_f32: F32 throughout, one block per query token and head (decode).</summary>
    F32,
    /// <summary>attention_tiled_d*: flash attention on mma.sync with F16 inputs and F32 accumulation (prefill, vision towers).</summary>
    TensorCores,
}
