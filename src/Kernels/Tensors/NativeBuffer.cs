using System.Runtime.InteropServices;

namespace LlavaNative.Kernels.Tensors;

/// <summary>
/// A 64-byte-aligned, zero-initialised block of unmanaged memory (activations, KV cache, scratch).
/// Allocated once per session; the decode loop only reuses it.
/// </summary>
public sealed unsafe class NativeBuffer : IDisposable
{
    public byte* Pointer { get; private set; }
    public long Bytes { get; }

    public NativeBuffer(long bytes)
    {
        if (bytes < 0) throw new ArgumentOutOfRangeException(nameof(bytes));
        Bytes = bytes;
        Pointer = (byte*)NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 64), 64);
        NativeMemory.Clear(Pointer, (nuint)Math.Max(bytes, 64));
        if (bytes > 0) GC.AddMemoryPressure(bytes);
    }

    /// <summary>A buffer of <paramref name="count"/> floats.</summary>
    public static NativeBuffer Floats(long count) => new(checked(count * sizeof(float)));

    public float* Floats() => (float*)Pointer;

    public Span<float> AsFloatSpan() => new(Pointer, checked((int)(Bytes / sizeof(float))));

    public void Dispose()
    {
        if (Pointer == null) return;
        NativeMemory.AlignedFree(Pointer);
        Pointer = null;
        if (Bytes > 0) GC.RemoveMemoryPressure(Bytes);
        GC.SuppressFinalize(this);
    }

    ~NativeBuffer() { if (Pointer != null) NativeMemory.AlignedFree(Pointer); }
}
