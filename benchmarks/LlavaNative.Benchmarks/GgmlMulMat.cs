using System.Runtime.InteropServices;
using LlavaNative.Kernels.Tensors;
using LlavaNative.TestSupport;

namespace LlavaNative.Benchmarks;

/// <summary>
/// ggml's own mul_mat on its CPU backend (graph API, plain CPU buffer — so no weight repacking; on x86 the
/// quantized prefill runs ggml's llamafile_sgemm or its vec_dot loops): the reference our prefill is compared to.
/// </summary>
public sealed unsafe class GgmlMulMat : IDisposable
{
    [StructLayout(LayoutKind.Sequential)]
    private struct InitParams
    {
        public nuint MemSize;
        public void* MemBuffer;
        [MarshalAs(UnmanagedType.U1)] public bool NoAlloc;
    }

    private readonly void* _ctx;
    private readonly void* _graph;
    private readonly int _threads;

    /// <param name="weights">rows × cols of <paramref name="type"/>, copied in.</param>
    /// <param name="x">tokens × cols floats, copied in.</param>
    public GgmlMulMat(TensorType type, byte* weights, int rows, int cols, float* x, int tokens, int threads)
    {
        _threads = threads;
        long weightBytes = TensorTypeInfo.RowBytes(type, cols) * rows;
        var init = (delegate* unmanaged<InitParams, void*>)GgmlReference.Export("ggml_init");
        var newTensor2d = (delegate* unmanaged<void*, int, long, long, void*>)GgmlReference.Export("ggml_new_tensor_2d");
        var mulMat = (delegate* unmanaged<void*, void*, void*, void*>)GgmlReference.Export("ggml_mul_mat");
        var newGraph = (delegate* unmanaged<void*, void*>)GgmlReference.Export("ggml_new_graph");
        var expand = (delegate* unmanaged<void*, void*, void>)GgmlReference.Export("ggml_build_forward_expand");
        var getData = (delegate* unmanaged<void*, void*>)GgmlReference.Export("ggml_get_data");
        _ctx = init(new InitParams { MemSize = (nuint)(weightBytes + (long)cols * tokens * 4 + (long)rows * tokens * 4 + (64L << 20)) });
        void* a = newTensor2d(_ctx, (int)type, cols, rows);
        void* b = newTensor2d(_ctx, (int)TensorType.F32, cols, tokens);
        Buffer.MemoryCopy(weights, getData(a), weightBytes, weightBytes);
        Buffer.MemoryCopy(x, getData(b), (long)cols * tokens * 4, (long)cols * tokens * 4);
        void* c = mulMat(_ctx, a, b);
        _graph = newGraph(_ctx);
        expand(_graph, c);
    }

    public void Compute()
    {
        var compute = (delegate* unmanaged<void*, void*, int, int>)GgmlReference.Export("ggml_graph_compute_with_ctx");
        int status = compute(_ctx, _graph, _threads);
        if (status != 0) throw new InvalidOperationException($"ggml_graph_compute_with_ctx returned {status}");
    }

    public void Dispose() => ((delegate* unmanaged<void*, void>)GgmlReference.Export("ggml_free"))(_ctx);
}
