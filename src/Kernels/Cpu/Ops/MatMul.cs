using LlavaNative.Kernels.Cpu.Quant;
using LlavaNative.Kernels.Tensors;

namespace LlavaNative.Kernels.Cpu.Ops;

/// <summary>
/// y = x · Wᵀ for a weight of any supported type: <c>x [nTokens, Cols] → y [nTokens, Rows]</c>.
/// As in ggml, each activation row is converted once into the weight type's dot encoding
/// (Q8_0, Q8_1, Q8_K, F16, BF16 or F32), so the inner products run on integers where the weights are
/// quantized. Output rows are split across the pool in chunks of 16 (one cache line of floats).
/// nTokens = 1 is the decode mat-vec (<see cref="QuantKernels.MatVec"/> over groups of rows where the table has one,
/// else one <see cref="QuantKernels.VecDot"/> per row). nTokens &gt; 1 is prompt
/// processing: where the kernel table has a <see cref="QuantKernels.MatMulTile"/>, panels of TileRows weight
/// rows are multiplied with groups of TileTokens tokens, each operand unpacked once per tile; otherwise each
/// weight row is dotted with every token while it is hot in L1. F32, F16 and BF16 weights
/// (<see cref="QuantKernels.UsePackedGemm"/>) with at least <see cref="PackedGemmMinTokens"/> tokens go through
/// <see cref="PackedGemm"/> instead: weights converted to F32 once per call while packed, a register-blocked microkernel,
/// activations kept in F32 (ggml rounds them to F16 / BF16 for such weights; F32 is closer to exact math and to
/// PyTorch, which computes half-precision checkpoints in float32 on the CPU).
/// </summary>
public static unsafe class MatMul
{
    /// <summary>
    /// Fewest tokens for which F32/F16/BF16 products take <see cref="PackedGemm"/>: below it, packing the weights
    /// (a transposing copy of every weight, once per call) costs more than the microkernel saves.
    /// </summary>
    public const int PackedGemmMinTokens = 16;

    /// <summary>Scratch bytes <see cref="Compute"/> needs for the converted (or packed) activations.</summary>
    public static long ScratchBytes(TensorType weightType, int cols, int nTokens)
    {
        var kernels = QuantRegistry.Kernels(weightType);
        if (kernels.UsePackedGemm && nTokens >= PackedGemmMinTokens) return checked(PackedGemm.PackedActivationFloats(nTokens, cols) * sizeof(float) + 64);
        return kernels.DotType == TensorType.F32 ? 0 : checked(QuantRegistry.ActivationRowBytes(kernels, cols) * nTokens);
    }

    /// <summary>
    /// <paramref name="x"/> [nTokens, w.Cols] → <paramref name="y"/> [nTokens, w.Rows].
    /// <paramref name="scratch"/> holds at least <see cref="ScratchBytes"/> bytes.
    /// </summary>
    public static void Compute(ComputeThreadPool pool, in WeightMatrix w, float* x, int nTokens, float* y, byte* scratch)
        => Compute(pool, w, QuantRegistry.Kernels(w.Type), x, nTokens, y, scratch);

    /// <summary>As <see cref="Compute(ComputeThreadPool, in WeightMatrix, float*, int, float*, byte*)"/> with explicit kernels (tests pass the scalar table).</summary>
    public static void Compute(ComputeThreadPool pool, in WeightMatrix w, in QuantKernels kernels, float* x, int nTokens, float* y, byte* scratch)
    {
        if (kernels.UsePackedGemm && nTokens >= PackedGemmMinTokens)
        {
            PackedGemm.Multiply(pool, w, x, nTokens, y, (float*)(((nint)scratch + 63) & ~(nint)63));
            return;
        }
        byte* activations;
        long activationRowBytes;
        if (kernels.DotType == TensorType.F32)
        {
            activations = (byte*)x;
            activationRowBytes = (long)w.Cols * sizeof(float);
        }
        else
        {
            activations = scratch;
            activationRowBytes = QuantRegistry.ActivationRowBytes(kernels, w.Cols);
            var quantizeJob = new QuantizeRowsJob
            {
                Quantize = QuantRegistry.ActivationQuantizerFor(kernels).QuantizeRow,
                Source = x, SourceRowFloats = w.Cols, Destination = scratch, DestinationRowBytes = activationRowBytes,
            };
            if (nTokens >= 4) pool.Run(ref quantizeJob, nTokens);
            else quantizeJob.Execute(0, nTokens);
        }

        var job = new MatMulJob
        {
            VecDot = kernels.VecDot,
            Tile = nTokens > 1 ? kernels.MatMulTile : null, TileRows = kernels.TileRows, TileTokens = kernels.TileTokens,
            MatVec = nTokens == 1 ? kernels.MatVec : null, MatVecRows = kernels.MatVecRows,
            Weights = w.Data, WeightRowBytes = w.RowBytes, Cols = w.Cols, Rows = w.Rows,
            Activations = activations, ActivationRowBytes = activationRowBytes, Tokens = nTokens,
            Output = y,
        };
        pool.Run(ref job, w.Rows, grain: 16);
    }

    private struct QuantizeRowsJob : IRangeJob
    {
        public delegate*<float*, byte*, int, void> Quantize;
        public float* Source;
        public int SourceRowFloats;
        public byte* Destination;
        public long DestinationRowBytes;

        public void Execute(int start, int end)
        {
            for (int t = start; t < end; t++)
                Quantize(Source + (long)t * SourceRowFloats, Destination + t * DestinationRowBytes, SourceRowFloats);
        }
    }

    private struct MatMulJob : IRangeJob
    {
        public delegate*<int, byte*, byte*, float> VecDot;
        public delegate*<int, byte*, long, byte*, long, float*, long, int, int, void> Tile;
        public int TileRows, TileTokens;
        public delegate*<int, byte*, long, byte*, float*, void> MatVec;
        public int MatVecRows;
        public byte* Weights;
        public long WeightRowBytes;
        public int Cols, Rows;
        public byte* Activations;
        public long ActivationRowBytes;
        public int Tokens;
        public float* Output;

        public void Execute(int start, int end)
        {
            if (Tile != null)
            {
                // Prefill: a panel of TileRows weight rows stays in L1 while every token passes over it.
                for (int r = start; r < end; r += TileRows)
                {
                    int rows = Math.Min(TileRows, end - r);
                    for (int t = 0; t < Tokens; t += TileTokens)
                        Tile(Cols, Weights + r * WeightRowBytes, WeightRowBytes, Activations + t * ActivationRowBytes, ActivationRowBytes,
                             Output + (long)t * Rows + r, Rows, rows, Math.Min(TileTokens, Tokens - t));
                }
                return;
            }
            if (MatVec != null)
            {
                // Decode: groups of MatVecRows rows share the activation row's unpacking; the rest go one by one.
                int g = start;
                for (; g + MatVecRows <= end; g += MatVecRows)
                    MatVec(Cols, Weights + g * WeightRowBytes, WeightRowBytes, Activations, Output + g);
                for (; g < end; g++)
                    Output[g] = VecDot(Cols, Weights + g * WeightRowBytes, Activations);
                return;
            }
            for (int r = start; r < end; r++)
            {
                byte* row = Weights + r * WeightRowBytes;
                for (int t = 0; t < Tokens; t++)
                    Output[(long)t * Rows + r] = VecDot(Cols, row, Activations + t * ActivationRowBytes);
            }
        }
    }
}
