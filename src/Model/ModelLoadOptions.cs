using LlavaNative.Kernels.Cpu;
using LlavaNative.Kernels.Tensors;

namespace LlavaNative.Model;

/// <summary>How a decoder is loaded; the defaults use the weights as stored, in place in the mapped files.</summary>
public sealed record ModelLoadOptions
{
    public static readonly ModelLoadOptions Default = new();

    /// <summary>
    /// Re-encode the weight matrices at load time (null: keep the stored encodings). Every 2-D weight is
    /// quantized — the q/k/v/o projections, the three FFN matrices, the token embedding and the LM head (one
    /// matrix when tied) — as <c>llama-quantize --pure</c> does; norms and biases stay F32. A matrix whose rows are
    /// not a whole number of blocks gets llama.cpp's fallback type (<see cref="Kernels.Cpu.Quant.MatrixQuantizer.TypeForRowLength"/>).
    /// Only F32, F16 and BF16 checkpoints can be quantized. One of <see cref="Kernels.Cpu.Quant.MatrixQuantizer.Targets"/>.
    /// </summary>
    public TensorType? Quantize { get; init; }

    /// <summary>Threads for on-load quantization (null: a pool of all logical processors, for the load only).</summary>
    public ComputeThreadPool? Pool { get; init; }
}
