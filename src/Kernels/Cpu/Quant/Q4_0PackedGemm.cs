using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LlavaNative.Kernels.Cpu.Quant;

/// <summary>
/// Q4_0 prefill GEMM (AVX-512BW) over a panel repacked on the fly: 16 weight rows × 4 tokens per inner step, with
/// the 16 rows in the 16 lanes of one register. <see cref="LegacyTileKernels"/> puts 64 consecutive columns of ONE
/// row in a register, so every (row, token) pair pays its own widen / convert / scale / FMA per two blocks and a
/// horizontal sum at the end. Here each 4-column group of a block is stored for 16 rows side by side (the idea of
/// ggml's x86 Q4_0 repack, which interleaves 8 rows; this layout and kernel are our own), a token's 4 activation
/// bytes are broadcast against it, and one vpmaddubsw does 64 multiply-adds for 16 rows at once. Per block, token
/// and 16 rows: 8 vpmaddubsw + 7 vpaddw (int16 cannot overflow: |Σ| ≤ 8·2·15·127 = 30480), 1 vpmaddwd, the
/// offset correction, one convert, one scale product and one FMA — about 20 instructions for 512 multiply-adds,
/// against about 48 in the tile kernel.
///
/// Repacking happens per call, not at load: the MatMul driver hands this kernel a whole chunk of rows and all
/// tokens (<see cref="PanelRows"/>, <see cref="QuantKernels.TileTokens"/> = int.MaxValue), so each 16-row panel is
/// unpacked once per 128 tokens; decode (one token) keeps reading the file's layout through VecDot.
///
/// Arithmetic per block is exactly ggml's: Σ (q_w − 8)·q_x in integers (as Σ q_w·q_x − 8·Σ q_x), converted to
/// float and multiplied by d_w·d_x, accumulated block after block with one FMA — only the float summation order
/// differs from <see cref="Q4_0Kernels.VecDotScalar"/>.
/// </summary>
internal static unsafe class Q4_0PackedGemm
{
    /// <summary>Rows per register (16 float / int32 lanes).</summary>
    private const int PanelRows = 16;

    /// <summary>Blocks per K-chunk: 32 blocks (1024 columns) make a 18 KB packed panel that stays in L1.</summary>
    private const int ChunkBlocks = 32;

    /// <summary>Tokens whose per-block activation scales and sums are prepared at once.</summary>
    private const int TokenChunk = 128;

    /// <summary>One packed block of a panel: 16 float scales, then 8 groups × 16 rows × 4 unsigned codes (0–15).</summary>
    private const int PackedBlockBytes = PanelRows * 4 + 8 * PanelRows * 4;

    /// <summary>
    /// The kernel table's TileRows: large enough that MatMul passes a thread's whole chunk of rows in one call
    /// (the activation preparation is then shared by all its panels), small enough that r += TileRows cannot overflow.
    /// </summary>
    public const int ChunkRows = 1 << 24;

    /// <summary>Below this many tokens, packing does not pay: the 4 × 4 tile kernel runs instead.</summary>
    public const int MinTokens = 8;

    /// <summary>
    /// <see cref="QuantKernels.MatMulTile"/> with TileRows = <see cref="ChunkRows"/> and TileTokens = int.MaxValue:
    /// y[t·yStride + r] = row r · token t for r &lt; rows, t &lt; tokens.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // not inlined (it stackallocs): optimise it directly
    public static void TileAvx512(int n, byte* w, long wStride, byte* x, long xStride, float* y, long yStride, int rows, int tokens)
    {
        if (tokens < MinTokens)
        {
            for (int r = 0; r < rows; r += 4)
                for (int t = 0; t < tokens; t += 4)
                    LegacyTileKernels.TileUnsignedAvx512<LegacyTileKernels.Q4_0Blocks>(n, w + r * wStride, wStride, x + t * xStride, xStride,
                        y + t * yStride + r, yStride, Math.Min(4, rows - r), Math.Min(4, tokens - t));
            return;
        }

        int nb = n / 32;
        byte* panelSpace = stackalloc byte[ChunkBlocks * PackedBlockBytes + 64];
        byte* panel = (byte*)(((nint)panelSpace + 63) & ~(nint)63); // 64-byte aligned: every weight load is one cache line
        float* dx = stackalloc float[TokenChunk * ChunkBlocks];      // [token][block] activation scale d_x
        int* offsets = stackalloc int[TokenChunk * ChunkBlocks];     // [token][block] −8·Σ q_x
        float* partial = stackalloc float[TokenChunk * PanelRows];   // [token][16] accumulators of a panel with < 16 rows

        for (int t0 = 0; t0 < tokens; t0 += TokenChunk)
        {
            int tc = Math.Min(TokenChunk, tokens - t0);
            for (int b0 = 0; b0 < nb; b0 += ChunkBlocks)
            {
                int kb = Math.Min(ChunkBlocks, nb - b0);
                PrepareActivations(x + t0 * xStride + (long)b0 * ActivationQuantizers.Q8_0BlockBytes, xStride, tc, kb, dx, offsets);
                for (int r0 = 0; r0 < rows; r0 += PanelRows)
                {
                    int pr = Math.Min(PanelRows, rows - r0);
                    Pack(w + r0 * wStride + (long)b0 * Q4_0Kernels.BlockBytes, wStride, pr, kb, panel);
                    // The next panel's rows are 16 scattered pieces (one K-chunk of each row): ask for them now, so
                    // that packing it does not wait on L3/DRAM after this panel's tokens are done.
                    if (r0 + PanelRows < rows)
                        Prefetch(w + (r0 + PanelRows) * wStride + (long)b0 * Q4_0Kernels.BlockBytes, wStride, Math.Min(PanelRows, rows - r0 - PanelRows), kb * Q4_0Kernels.BlockBytes);
                    // A full panel accumulates straight into y (16 consecutive floats per token); a short one into
                    // `partial`, copied out after the last K-chunk.
                    float* acc = pr == PanelRows ? y + t0 * yStride + r0 : partial;
                    long accStride = pr == PanelRows ? yStride : PanelRows;
                    for (int t = 0; t < tc; t += 4)
                    {
                        int valid = Math.Min(4, tc - t);
                        byte* xb = x + (t0 + t) * xStride + (long)b0 * ActivationQuantizers.Q8_0BlockBytes;
                        FourTokens(panel, kb, xb, xStride, valid, dx + t * ChunkBlocks, offsets + t * ChunkBlocks, acc + t * accStride, accStride, b0 == 0);
                    }
                    if (pr < PanelRows && b0 + ChunkBlocks >= nb)
                        for (int t = 0; t < tc; t++)
                            for (int r = 0; r < pr; r++)
                                y[(t0 + t) * yStride + r0 + r] = partial[t * PanelRows + r];
                }
            }
        }
    }

    /// <summary>Per token and block of the chunk: d_x as float and the Q4_0 offset term −8·Σ q_x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrepareActivations(byte* x, long xStride, int tokens, int blocks, float* dx, int* offsets)
    {
        float* f16 = Fp16.Table;
        Vector256<byte> signFlip = Vector256.Create((byte)0x80);
        for (int t = 0; t < tokens; t++)
        {
            byte* xt = x + t * xStride;
            for (int b = 0; b < blocks; b++)
            {
                byte* block = xt + b * ActivationQuantizers.Q8_0BlockBytes;
                dx[t * ChunkBlocks + b] = f16[*(ushort*)block];
                // Σ q over 32 signed bytes: (q + 128) is unsigned, vpsadbw sums 8 of them per 64-bit lane.
                Vector256<ulong> sums = Avx2.SumAbsoluteDifferences(Vector256.Load(block + 2) ^ signFlip, Vector256<byte>.Zero).AsUInt64();
                int sum = (int)Vector256.Sum(sums) - 32 * 128;
                offsets[t * ChunkBlocks + b] = -8 * sum;
            }
        }
    }

    /// <summary>Prefetches <paramref name="bytes"/> bytes of each of <paramref name="rows"/> rows into L2.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Prefetch(byte* w, long wStride, int rows, int bytes)
    {
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < bytes; o += 64)
                Sse.Prefetch1(w + r * wStride + o);
    }

    /// <summary>
    /// Repacks <paramref name="blocks"/> blocks of <paramref name="rows"/> ≤ 16 rows (missing rows repeat the last)
    /// into <paramref name="panel"/>: per block, 16 float scales, then for group g = 0..7 (elements 4g..4g+3) the
    /// 4 codes of row 0, row 1, … row 15. Element j &lt; 16 is the low nibble of qs[j], element j + 16 the high one.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Pack(byte* w, long wStride, int rows, int blocks, byte* panel)
    {
        float* f16 = Fp16.Table;
        for (int r = 0; r < PanelRows; r++)
        {
            byte* row = w + Math.Min(r, rows - 1) * wStride;
            for (int b = 0; b < blocks; b++)
            {
                byte* block = row + b * Q4_0Kernels.BlockBytes;
                byte* dst = panel + b * PackedBlockBytes;
                ((float*)dst)[r] = f16[*(ushort*)block];
                uint* codes = (uint*)(dst + PanelRows * 4) + r;
                uint* qs = (uint*)(block + 2);
                for (int k = 0; k < 4; k++)
                {
                    uint v = Unsafe.ReadUnaligned<uint>(qs + k);
                    codes[k * PanelRows] = v & 0x0F0F0F0Fu;             // group k: low nibbles of qs[4k..4k+3]
                    codes[(k + 4) * PanelRows] = (v >> 4) & 0x0F0F0F0Fu; // group k + 4: their high nibbles
                }
            }
        }
    }

    /// <summary>
    /// Adds Σ over the chunk's blocks of 16 rows · 4 tokens into acc[t·accStride + 0..15] (or starts from zero when
    /// <paramref name="first"/>). Tokens beyond <paramref name="valid"/> repeat the last one and are not stored.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void FourTokens(byte* panel, int blocks, byte* x, long xStride, int valid, float* dx, int* offsets, float* acc, long accStride, bool first)
    {
        int t1 = Math.Min(1, valid - 1), t2 = Math.Min(2, valid - 1), t3 = Math.Min(3, valid - 1);
        byte* x0 = x + 2, x1 = x + t1 * xStride + 2, x2 = x + t2 * xStride + 2, x3 = x + t3 * xStride + 2;
        float* dx1 = dx + t1 * ChunkBlocks, dx2 = dx + t2 * ChunkBlocks, dx3 = dx + t3 * ChunkBlocks;
        int* o1 = offsets + t1 * ChunkBlocks, o2 = offsets + t2 * ChunkBlocks, o3 = offsets + t3 * ChunkBlocks;
        Vector512<float> f0 = default, f1 = default, f2 = default, f3 = default;
        if (!first)
        {
            f0 = Vector512.Load(acc);
            if (valid > 1) f1 = Vector512.Load(acc + accStride);
            if (valid > 2) f2 = Vector512.Load(acc + 2 * accStride);
            if (valid > 3) f3 = Vector512.Load(acc + 3 * accStride);
        }
        Vector512<short> ones = Vector512.Create((short)1);
        for (int b = 0; b < blocks; b++)
        {
            byte* codes = panel + b * PackedBlockBytes + PanelRows * 4;
            int ox = b * ActivationQuantizers.Q8_0BlockBytes;
            Vector512<short> s0 = default, s1 = default, s2 = default, s3 = default;
            for (int g = 0; g < 8; g++)
            {
                Vector512<byte> wv = Vector512.Load(codes + g * PanelRows * 4);
                int og = ox + 4 * g;
                s0 += Avx512BW.MultiplyAddAdjacent(wv, Vector512.Create(*(int*)(x0 + og)).AsSByte());
                s1 += Avx512BW.MultiplyAddAdjacent(wv, Vector512.Create(*(int*)(x1 + og)).AsSByte());
                s2 += Avx512BW.MultiplyAddAdjacent(wv, Vector512.Create(*(int*)(x2 + og)).AsSByte());
                s3 += Avx512BW.MultiplyAddAdjacent(wv, Vector512.Create(*(int*)(x3 + og)).AsSByte());
            }
            Vector512<float> dw = Vector512.Load((float*)(panel + b * PackedBlockBytes));
            f0 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(s0, ones) + Vector512.Create(offsets[b])), dw * Vector512.Create(dx[b]), f0);
            f1 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(s1, ones) + Vector512.Create(o1[b])), dw * Vector512.Create(dx1[b]), f1);
            f2 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(s2, ones) + Vector512.Create(o2[b])), dw * Vector512.Create(dx2[b]), f2);
            f3 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(s3, ones) + Vector512.Create(o3[b])), dw * Vector512.Create(dx3[b]), f3);
        }
        f0.Store(acc);
        if (valid > 1) f1.Store(acc + accStride);
        if (valid > 2) f2.Store(acc + 2 * accStride);
        if (valid > 3) f3.Store(acc + 3 * accStride);
    }
}
