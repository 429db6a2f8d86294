using LlavaNative.Kernels.Tensors;

namespace LlavaNative.Kernels.Cpu.Quant;

/// <summary>Looks up the kernel table of a weight type and the quantizer of its activation encoding.</summary>
public static unsafe class QuantRegistry
{
    /// <summary>Kernels for <paramref name="type"/> using the best instruction set this CPU offers.</summary>
    public static QuantKernels Kernels(TensorType type) => type switch
    {
        TensorType.F32 => F32Kernels.Table,
        _ => throw new NotSupportedException(
            $"no CPU mat-mul kernel for tensor type {TensorTypeInfo.Name(type)}; supported: {TensorTypeInfo.SupportedWeightTypeNames}"),
    };

    /// <summary>Scalar reference kernels for <paramref name="type"/> (tests compare the SIMD paths to these).</summary>
    public static QuantKernels ScalarKernels(TensorType type) => type switch
    {
        TensorType.F32 => F32Kernels.ScalarTable,
        _ => throw new NotSupportedException($"no scalar reference kernel for tensor type {TensorTypeInfo.Name(type)}"),
    };

    /// <summary>The converter from float rows into <paramref name="dotType"/> (an activation encoding).</summary>
    public static ActivationQuantizer Activation(TensorType dotType) => dotType switch
    {
        TensorType.F32 => F32Kernels.Activation,
        _ => throw new NotSupportedException($"no activation quantizer for {TensorTypeInfo.Name(dotType)}"),
    };
}
