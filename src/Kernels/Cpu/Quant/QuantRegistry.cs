using System.Runtime.CompilerServices;
using LlavaNative.Kernels.Tensors;

namespace LlavaNative.Kernels.Cpu.Quant;

/// <summary>
/// Looks up the kernel table of a weight type and the quantizer of its activation encoding.
/// <see cref="Kernels"/> picks, per type, the widest implementation this CPU runs (AVX-512BW, AVX2+FMA,
/// or scalar; the DOTNET_Enable* switches narrow the choice); <see cref="ScalarKernels"/> are the
/// references they are tested against.
/// </summary>
public static unsafe class QuantRegistry
{
    // Kernels are reached only through these tables. Initialising the half → float table first lets the
    // JIT embed its address in the (AggressiveOptimization) kernels instead of calling a class-init helper.
    static QuantRegistry() => _ = Fp16.Table;

    /// <summary>Kernels for <paramref name="type"/> using the best instruction set this CPU offers.</summary>
    public static QuantKernels Kernels(TensorType type) => type switch
    {
        TensorType.F32 => F32Kernels.Table,
        TensorType.F16 => F16Kernels.Table,
        TensorType.BF16 => BF16Kernels.Table,
        TensorType.Q8_0 => Q8_0Kernels.Table,
        TensorType.Q4_0 => Q4_0Kernels.Table,
        TensorType.Q4_1 => Q4_1Kernels.Table,
        TensorType.Q5_0 => Q5_0Kernels.Table,
        TensorType.Q5_1 => Q5_1Kernels.Table,
        TensorType.IQ4_NL => IQ4_NLKernels.Table,
        TensorType.Q2_K => Q2_KKernels.Table,
        TensorType.Q3_K => Q3_KKernels.Table,
        TensorType.Q4_K => Q4_KKernels.Table,
        TensorType.Q5_K => Q5_KKernels.Table,
        TensorType.Q6_K => Q6_KKernels.Table,
        _ => throw new NotSupportedException(
            $"no CPU mat-mul kernel for tensor type {TensorTypeInfo.Name(type)}; supported: {TensorTypeInfo.SupportedWeightTypeNames}"),
    };

    /// <summary>Scalar reference kernels for <paramref name="type"/> (tests compare the SIMD paths to these).</summary>
    public static QuantKernels ScalarKernels(TensorType type) => type switch
    {
        TensorType.F32 => F32Kernels.ScalarTable,
        TensorType.F16 => F16Kernels.ScalarTable,
        TensorType.BF16 => BF16Kernels.ScalarTable,
        TensorType.Q8_0 => Q8_0Kernels.ScalarTable,
        TensorType.Q4_0 => Q4_0Kernels.ScalarTable,
        TensorType.Q4_1 => Q4_1Kernels.ScalarTable,
        TensorType.Q5_0 => Q5_0Kernels.ScalarTable,
        TensorType.Q5_1 => Q5_1Kernels.ScalarTable,
        TensorType.IQ4_NL => IQ4_NLKernels.ScalarTable,
        TensorType.Q2_K => Q2_KKernels.ScalarTable,
        TensorType.Q3_K => Q3_KKernels.ScalarTable,
        TensorType.Q4_K => Q4_KKernels.ScalarTable,
        TensorType.Q5_K => Q5_KKernels.ScalarTable,
        TensorType.Q6_K => Q6_KKernels.ScalarTable,
        _ => throw new NotSupportedException($"no scalar reference kernel for tensor type {TensorTypeInfo.Name(type)}"),
    };

    /// <summary>The converter from float rows into <paramref name="dotType"/> (an activation encoding).</summary>
    public static ActivationQuantizer Activation(TensorType dotType) => dotType switch
    {
        TensorType.F32 => F32Kernels.Activation,
        TensorType.F16 => ActivationQuantizers.F16,
        TensorType.BF16 => ActivationQuantizers.BF16,
        TensorType.Q8_0 => ActivationQuantizers.Q8_0,
        TensorType.Q8_1 => ActivationQuantizers.Q8_1,
        TensorType.Q8_K => ActivationQuantizers.Q8_K,
        _ => throw new NotSupportedException($"no activation quantizer for {TensorTypeInfo.Name(dotType)}"),
    };

    /// <summary>Scalar reference of <see cref="Activation"/>; its output bytes must be identical.</summary>
    public static ActivationQuantizer ScalarActivation(TensorType dotType) => dotType switch
    {
        TensorType.F32 => F32Kernels.Activation,
        TensorType.F16 => ActivationQuantizers.ScalarF16,
        TensorType.BF16 => ActivationQuantizers.ScalarBF16,
        TensorType.Q8_0 => ActivationQuantizers.ScalarQ8_0,
        TensorType.Q8_1 => ActivationQuantizers.ScalarQ8_1,
        TensorType.Q8_K => ActivationQuantizers.ScalarQ8_K,
        _ => throw new NotSupportedException($"no activation quantizer for {TensorTypeInfo.Name(dotType)}"),
    };

    /// <summary>The converter producing the activation rows <paramref name="kernels"/>' VecDot reads.</summary>
    public static ActivationQuantizer ActivationQuantizerFor(in QuantKernels kernels) => kernels.ActivationsAsRoundedF32
        ? kernels.DotType switch
        {
            TensorType.F16 => ActivationQuantizers.F16RoundedF32,
            _ => throw new NotSupportedException($"no rounded-F32 activation converter for {TensorTypeInfo.Name(kernels.DotType)}"),
        }
        : Activation(kernels.DotType);

    /// <summary>Bytes of one converted activation row of <paramref name="cols"/> values for <paramref name="kernels"/>.</summary>
    public static long ActivationRowBytes(in QuantKernels kernels, int cols)
        => kernels.ActivationsAsRoundedF32 || kernels.DotType == TensorType.F32 ? cols * 4L : TensorTypeInfo.RowBytes(kernels.DotType, cols);

    /// <summary>Weight types that have kernels, in ggml id order.</summary>
    public static IReadOnlyList<TensorType> WeightTypes { get; } =
    [
        TensorType.F32, TensorType.F16, TensorType.Q4_0, TensorType.Q4_1, TensorType.Q5_0, TensorType.Q5_1, TensorType.Q8_0,
        TensorType.Q2_K, TensorType.Q3_K, TensorType.Q4_K, TensorType.Q5_K, TensorType.Q6_K, TensorType.IQ4_NL, TensorType.BF16,
    ];
}
