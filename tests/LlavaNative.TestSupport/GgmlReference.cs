using System.Runtime.InteropServices;

namespace LlavaNative.TestSupport;

/// <summary>
/// Bindings to the reference ggml build installed by tools/install-reference.sh: the quantization
/// functions of <c>libggml-base.so</c> (<c>dequantize_row_*</c>, <c>quantize_row_*_ref</c>, fp16/bf16
/// conversions) and the CPU backend's activation quantizers and dot products
/// (<c>quantize_row_q8_0</c>, <c>ggml_vec_dot_*</c>) from the <c>libggml-cpu-*.so</c> variant that ggml
/// itself would pick on this machine (highest <c>ggml_backend_score</c>).
/// Type names are ggml's spelling: "q4_0", "q4_K", "iq4_nl", …
/// </summary>
public static unsafe class GgmlReference
{
    private static readonly object Gate = new();
    private static nint _base, _cpu;
    private static string? _cpuVariant;

    /// <summary>File name of the CPU backend variant in use, e.g. "libggml-cpu-skylakex.so".</summary>
    public static string CpuVariant { get { EnsureLoaded(); return _cpuVariant!; } }

    private static void EnsureLoaded()
    {
        if (_cpu != 0) return;
        lock (Gate)
        {
            if (_cpu != 0) return;
            string dir = ReferencePaths.LibraryDirectory;
            _base = NativeLibrary.Load(Path.Combine(dir, "libggml-base.so"));
            nint best = 0;
            int bestScore = 0;
            string? bestName = null;
            foreach (string path in Directory.GetFiles(dir, "libggml-cpu-*.so").Order(StringComparer.Ordinal))
            {
                nint handle = NativeLibrary.Load(path);
                int score = NativeLibrary.TryGetExport(handle, "ggml_backend_score", out nint scoreFn)
                    ? ((delegate* unmanaged<int>)scoreFn)() : 0;
                if (score > bestScore)
                {
                    if (best != 0) NativeLibrary.Free(best);
                    best = handle; bestScore = score; bestName = Path.GetFileName(path);
                }
                else NativeLibrary.Free(handle);
            }
            if (best == 0) throw new InvalidOperationException($"no libggml-cpu-*.so in {dir} runs on this CPU");
            ((delegate* unmanaged<void>)NativeLibrary.GetExport(best, "ggml_cpu_init"))();
            _cpuVariant = bestName;
            _cpu = best;
        }
    }

    private static nint Base(string name) { EnsureLoaded(); return NativeLibrary.GetExport(_base, name); }

    /// <summary>Any export of the loaded CPU backend variant or, failing that, of libggml-base (for graph-level calls).</summary>
    public static nint Export(string name)
    {
        EnsureLoaded();
        return NativeLibrary.TryGetExport(_cpu, name, out nint f) ? f : NativeLibrary.GetExport(_base, name);
    }

    private static nint Cpu(string name) { EnsureLoaded(); return NativeLibrary.GetExport(_cpu, name); }

    /// <summary><c>dequantize_row_{type}</c> (libggml-base; "f16"/"bf16" map to the *_to_fp32_row functions).</summary>
    public static void DequantizeRow(string type, void* src, float* dst, long n)
    {
        string fn = type switch { "f16" => "ggml_fp16_to_fp32_row", "bf16" => "ggml_bf16_to_fp32_row", _ => $"dequantize_row_{type}" };
        ((delegate* unmanaged<void*, float*, long, void>)Base(fn))(src, dst, n);
    }

    /// <summary><c>quantize_row_{type}_ref</c> (libggml-base): the deterministic weight quantizer.</summary>
    public static void QuantizeRowReference(string type, float* src, void* dst, long n)
        => ((delegate* unmanaged<float*, void*, long, void>)Base($"quantize_row_{type}_ref"))(src, dst, n);

    /// <summary>
    /// The CPU backend's activation conversion for <paramref name="type"/> ("q8_0", "q8_1", "q8_K", "f16",
    /// "bf16"): what ggml's mat-mul runs on activations before <c>vec_dot</c>.
    /// </summary>
    public static void QuantizeRowCpu(string type, float* src, void* dst, long n)
    {
        string fn = type switch { "f16" => "ggml_cpu_fp32_to_fp16", "bf16" => "ggml_cpu_fp32_to_bf16", _ => $"quantize_row_{type}" };
        ((delegate* unmanaged<float*, void*, long, void>)Cpu(fn))(src, dst, n);
    }

    /// <summary>
    /// The CPU backend's dot product of one weight row (<paramref name="weightType"/>) with one activation
    /// row (<paramref name="dotType"/>), e.g. ("q4_K", "q8_K") → <c>ggml_vec_dot_q4_K_q8_K</c>; ("f16", "f16") → <c>ggml_vec_dot_f16</c>.
    /// </summary>
    public static float VecDot(string weightType, string dotType, int n, void* w, void* x)
    {
        string fn = weightType is "f16" or "bf16" or "f32" ? $"ggml_vec_dot_{weightType}" : $"ggml_vec_dot_{weightType}_{dotType}";
        float s;
        ((delegate* unmanaged<int, float*, nuint, void*, nuint, void*, nuint, int, void>)Cpu(fn))(n, &s, 0, w, 0, x, 0, 1);
        return s;
    }

    /// <summary>
    /// The raw <c>ggml_vec_dot_*</c> entry point, for timing loops:
    /// (n, float* s, size_t bs, const void* x, size_t bx, const void* y, size_t by, int nrc).
    /// </summary>
    public static delegate* unmanaged<int, float*, nuint, void*, nuint, void*, nuint, int, void> VecDotFunction(string weightType, string dotType)
    {
        string fn = weightType is "f16" or "bf16" or "f32" ? $"ggml_vec_dot_{weightType}" : $"ggml_vec_dot_{weightType}_{dotType}";
        return (delegate* unmanaged<int, float*, nuint, void*, nuint, void*, nuint, int, void>)Cpu(fn);
    }

    public static float Fp16ToFp32(ushort h) => ((delegate* unmanaged<ushort, float>)Base("ggml_fp16_to_fp32"))(h);

    public static ushort Fp32ToFp16(float f) => ((delegate* unmanaged<float, ushort>)Base("ggml_fp32_to_fp16"))(f);

    public static ushort Fp32ToBf16(float f) => ((delegate* unmanaged<float, ushort>)Base("ggml_fp32_to_bf16"))(f);
}
