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
    /// <summary>Kernels for <paramref name="type"/> using the best instruction set this CPU offers.</summary>
    public static QuantKernels Kernels(TensorType type) => type switch
    {
        TensorType.F32 => F32Kernels.Table,
        TensorType.F16 => F16Kernels.Table,
        TensorType.BF16 => BF16Kernels.Table,
        TensorType.Q8_0 => Q8_0Kernels.Table,
        TensorType.Q4_0 => Q4_0Kernels.Table,
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

    /// <summary>Weight types that have kernels, in ggml id order.</summary>
    public static IReadOnlyList<TensorType> WeightTypes { get; } =
    [
        TensorType.F32, TensorType.F16, TensorType.Q4_0, TensorType.Q8_0, TensorType.BF16,
    ];
}
