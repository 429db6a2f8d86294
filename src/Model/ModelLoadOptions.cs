using LlavaNative.Kernels.Cpu;
using LlavaNative.Kernels.Cuda;
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

    /// <summary>
    /// Where <see cref="Llava.LlavaModel"/>'s text decoder runs (<see cref="Language.DecoderBackend.Open"/>); the
    /// library's default is the CPU, the CLI's <c>--backend</c> default is <see cref="Language.ComputeBackend.Auto"/>.
    /// On the CUDA backend the image encoder runs on the GPU too. A <see cref="Language.DecoderModel"/> loaded on its own
    /// is always the CPU model: pass it to <see cref="Language.DecoderBackend.Open"/> for another backend.
    /// </summary>
    public Language.ComputeBackend Backend { get; init; } = Language.ComputeBackend.Cpu;

    /// <summary>
    /// Advanced: the GPU for <see cref="Language.ComputeBackend.Cuda"/>/<see cref="Language.ComputeBackend.Auto"/>
    /// instead of opening CUDA GPU 0 — another <see cref="CudaDevice"/>, or the tests' host emulator. Not disposed by
    /// the model; it must outlive it.
    /// </summary>
    public IGpuDevice? GpuDevice { get; init; }

    /// <summary>
    /// On the CUDA backend: whether prompt-sized work may round to F16 for the tensor cores — the vision tower's
    /// mat-muls (F16/BF16 weights) and its attention, and the decoder's prefill attention (null: yes on compute
    /// capability 8.0 and newer). False keeps every activation F32, as the CPU backend does (slower; for checks).
    /// </summary>
    public bool? GpuTensorCores { get; init; }
}
