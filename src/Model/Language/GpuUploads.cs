using LlavaNative.Kernels.Cuda;
using LlavaNative.Kernels.Tensors;

namespace LlavaNative.Model.Language;

/// <summary>Weights copied once into device buffers that the caller owns (<see cref="GpuDecoder"/>, <c>GpuImageEncoder</c>).</summary>
internal static unsafe class GpuUploads
{
    /// <summary>
    /// <paramref name="m"/> in its stored encoding in a new buffer, added to <paramref name="owned"/>; the error names
    /// <paramref name="owner"/> and the matrix (<paramref name="what"/>) when no CUDA kernel reads its type.
    /// </summary>
    public static GpuWeightMatrix Matrix(IGpuDevice device, List<DeviceBuffer> owned, in WeightMatrix m, string owner, string what)
    {
        if (!CudaOps.Supports(m.Type))
            throw new NotSupportedException($"{owner}: the {what} matrix is {TensorTypeInfo.Name(m.Type)}, which has no CUDA kernel; supported: {string.Join(", ", CudaOps.WeightTypes)}");
        long bytes = m.RowBytes * m.Rows;
        var buffer = device.Allocate(bytes);
        owned.Add(buffer);
        device.Upload(buffer.Pointer, m.Data, bytes);
        return new GpuWeightMatrix(buffer.Pointer, m.Type, m.Rows, m.Cols);
    }

    /// <summary><paramref name="count"/> floats in a new buffer added to <paramref name="owned"/>; address 0 when <paramref name="v"/> is null (an absent bias).</summary>
    public static DevicePtr Vector(IGpuDevice device, List<DeviceBuffer> owned, float* v, int count)
    {
        if (v == null) return default;
        var buffer = device.Allocate(count * 4L);
        owned.Add(buffer);
        device.Upload(buffer.Pointer, v, count * 4L);
        return buffer.Pointer;
    }
}
