using System.Runtime.CompilerServices;
using LlavaNative.Kernels.Tensors;

namespace LlavaNative.Kernels.Cpu.Quant;

/// <summary>
/// The per-type kernel table, in the spirit of ggml's <c>type_traits_cpu</c>: how to expand a row of
/// a weight type to floats, which activation encoding its dot product consumes (<see cref="DotType"/>),
/// and the dot product itself. Every entry points at the widest implementation the CPU supports;
/// the scalar references live beside the SIMD code and are selectable for tests.
/// </summary>
public readonly unsafe struct QuantKernels
{
    /// <summary>The weight encoding these kernels read.</summary>
    public TensorType Type { get; init; }

    /// <summary>Encoding activations are converted to (once per row) before <see cref="VecDot"/>.</summary>
    public TensorType DotType { get; init; }

    /// <summary>Expands <c>n</c> elements at <c>src</c> into floats at <c>dst</c>: (src, dst, n).</summary>
    public delegate*<byte*, float*, int, void> Dequantize { get; init; }

    /// <summary>
    /// When set, <see cref="VecDot"/> reads activation rows as F32 values that already carry the rounding of
    /// <see cref="DotType"/> rather than the <see cref="DotType"/> bytes themselves. Used by the SIMD F16
    /// kernels: ggml rounds activations to F16, and expanding them back once per row (instead of once per
    /// dot product) halves the conversion work in decode. <see cref="QuantRegistry.ActivationQuantizerFor"/>
    /// and <see cref="QuantRegistry.ActivationRowBytes"/> give the matching converter and row size.
    /// </summary>
    public bool ActivationsAsRoundedF32 { get; init; }

    /// <summary>Dot product of one weight row with one activation row in <see cref="DotType"/>: (n, weightRow, activationRow).</summary>
    public delegate*<int, byte*, byte*, float> VecDot { get; init; }

    /// <summary>
    /// Optional prefill kernel (null when absent): the dot products of up to <see cref="TileRows"/> consecutive
    /// weight rows with up to <see cref="TileTokens"/> activation rows, each operand loaded once per tile.
    /// (n, weights, weightRowBytes, activations, activationRowBytes, y, yTokenStride, rows, tokens):
    /// y[t·yTokenStride + r] = VecDot(n, weights + r·weightRowBytes, activations + t·activationRowBytes), equal
    /// to it up to float summation order.
    /// </summary>
    public delegate*<int, byte*, long, byte*, long, float*, long, int, int, void> MatMulTile { get; init; }

    /// <summary>
    /// Optional decode kernel (null when absent): the dot products of exactly <see cref="MatVecRows"/> consecutive weight
    /// rows with one activation row, so that the activation's loads, unpacking and scales are shared by those rows
    /// (ggml reaches the same by repacking rows at load time for its GEMV). (n, weights, weightRowBytes, activations, y):
    /// y[r] = VecDot(n, weights + r·weightRowBytes, activations) for r &lt; MatVecRows, equal to it up to float
    /// summation order. MatMul uses it for nTokens = 1 and takes the rows left over with <see cref="VecDot"/>.
    /// </summary>
    public delegate*<int, byte*, long, byte*, float*, void> MatVec { get; init; }

    /// <summary>Rows per <see cref="MatVec"/> call.</summary>
    public int MatVecRows { get; init; }

    /// <summary>Rows per <see cref="MatMulTile"/> call (at most).</summary>
    public int TileRows { get; init; }

    /// <summary>Tokens per <see cref="MatMulTile"/> call (at most); int.MaxValue hands the kernel all tokens at once (it packs its rows first).</summary>
    public int TileTokens { get; init; }

    /// <summary>
    /// Prompt-sized products (at least <see cref="Ops.MatMul.PackedGemmMinTokens"/> tokens) go through
    /// <see cref="Ops.PackedGemm"/>: the weights converted to F32 while packed, activations kept in F32 (not
    /// rounded to <see cref="DotType"/>). Set for F32, F16 and BF16; the scalar reference tables leave it off.
    /// </summary>
    public bool UsePackedGemm { get; init; }
}

/// <summary>Activation-side conversion of a float row into a dot-product encoding.</summary>
public readonly unsafe struct ActivationQuantizer
{
    public TensorType Type { get; init; }

    /// <summary>Encodes <c>n</c> floats: (src, dst, n).</summary>
    public delegate*<float*, byte*, int, void> QuantizeRow { get; init; }
}
