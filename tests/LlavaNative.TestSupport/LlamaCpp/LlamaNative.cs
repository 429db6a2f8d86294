using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace LlavaNative.TestSupport.LlamaCpp;

/// <summary>
/// Function pointers into libllama.v0.5.0.so / libggml.v0.5.0.so, declared from the binary's own
/// include/llama.h. <see cref="EnsureInitialized"/> loads the libraries, installs the log callback, loads
/// the CPU backend (ggml picks the best libggml-cpu-*.so variant by score), calls llama_backend_init and
/// verifies the struct layouts against the library's default parameters, all exactly once per process.
/// </summary>
internal static unsafe class LlamaNative
{
    /// <summary>Set to 1 to see llama.cpp's log on stderr (silent otherwise).</summary>
    public const string LogEnvironmentVariable = "LLAVANATIVE_LLAMA_LOG";

    public const int GgmlTypeF32 = 0;
    public const int GgmlTypeF16 = 1;
    public const int GgmlTypeCount = 43; // GGML_TYPE_COUNT in ggml.h of this binary
    public const int FlashAttnAuto = -1, FlashAttnDisabled = 0;

    // llama.h
    public static delegate* unmanaged<void> llama_backend_init;
    public static delegate* unmanaged<LlamaModelParams> llama_model_default_params;
    public static delegate* unmanaged<LlamaContextParams> llama_context_default_params;
    public static delegate* unmanaged<LlamaModelQuantizeParams> llama_model_quantize_default_params;
    public static delegate* unmanaged<byte*, LlamaModelParams, nint> llama_model_load_from_file;
    public static delegate* unmanaged<nint, void> llama_model_free;
    public static delegate* unmanaged<nint, LlamaContextParams, nint> llama_init_from_model;
    public static delegate* unmanaged<nint, void> llama_free;
    public static delegate* unmanaged<nint, LlamaBatch, int> llama_decode;
    public static delegate* unmanaged<nint, void> llama_synchronize;
    public static delegate* unmanaged<nint, int, int, void> llama_set_n_threads;
    public static delegate* unmanaged<nint, int, float*> llama_get_logits_ith;
    public static delegate* unmanaged<nint, nint> llama_get_memory;
    public static delegate* unmanaged<nint, byte, void> llama_memory_clear;
    public static delegate* unmanaged<nint, nint> llama_model_get_vocab;
    public static delegate* unmanaged<nint, int> llama_model_n_embd;
    public static delegate* unmanaged<nint, int> llama_model_rope_type;
    public static delegate* unmanaged<nint, int> llama_model_ftype;
    public static delegate* unmanaged<nint, ulong> llama_model_n_params;
    public static delegate* unmanaged<nint, byte*, byte*, nuint, int> llama_model_meta_val_str;
    public static delegate* unmanaged<nint, int> llama_vocab_n_tokens;
    public static delegate* unmanaged<nint, int> llama_vocab_type;
    public static delegate* unmanaged<nint, int> llama_vocab_bos;
    public static delegate* unmanaged<nint, int> llama_vocab_eos;
    public static delegate* unmanaged<nint, int, byte> llama_vocab_is_eog;
    public static delegate* unmanaged<nint, int, byte> llama_vocab_is_control;
    public static delegate* unmanaged<nint, byte*, int, int*, int, byte, byte, int> llama_tokenize;
    public static delegate* unmanaged<nint, int, byte*, int, int, byte, int> llama_token_to_piece;
    public static delegate* unmanaged<byte*, byte*, LlamaModelQuantizeParams*, uint> llama_model_quantize;
    public static delegate* unmanaged<delegate* unmanaged<int, byte*, void*, void>, void*, void> llama_log_set;

    // ggml-backend.h (libggml.v0.5.0.so)
    public static delegate* unmanaged<byte*, void> ggml_backend_load_all_from_path;
    public static delegate* unmanaged<nuint> ggml_backend_dev_count;

    private static readonly object Gate = new();
    private static bool _initialized;
    private static readonly Queue<string> RecentMessages = new();
    private static readonly StringBuilder PendingLine = new();
    private static bool _echoLog;

    /// <summary>Loads and initialises llama.cpp once; throws with a precise message if anything does not match.</summary>
    public static void EnsureInitialized()
    {
        lock (Gate)
        {
            if (_initialized)
                return;
            nint llama = ReferenceLibraries.Llama;
            nint ggml = ReferenceLibraries.Ggml;

            llama_backend_init = (delegate* unmanaged<void>)ReferenceLibraries.Export(llama, "llama_backend_init");
            llama_model_default_params = (delegate* unmanaged<LlamaModelParams>)ReferenceLibraries.Export(llama, "llama_model_default_params");
            llama_context_default_params = (delegate* unmanaged<LlamaContextParams>)ReferenceLibraries.Export(llama, "llama_context_default_params");
            llama_model_quantize_default_params = (delegate* unmanaged<LlamaModelQuantizeParams>)ReferenceLibraries.Export(llama, "llama_model_quantize_default_params");
            llama_model_load_from_file = (delegate* unmanaged<byte*, LlamaModelParams, nint>)ReferenceLibraries.Export(llama, "llama_model_load_from_file");
            llama_model_free = (delegate* unmanaged<nint, void>)ReferenceLibraries.Export(llama, "llama_model_free");
            llama_init_from_model = (delegate* unmanaged<nint, LlamaContextParams, nint>)ReferenceLibraries.Export(llama, "llama_init_from_model");
            llama_free = (delegate* unmanaged<nint, void>)ReferenceLibraries.Export(llama, "llama_free");
            llama_decode = (delegate* unmanaged<nint, LlamaBatch, int>)ReferenceLibraries.Export(llama, "llama_decode");
            llama_synchronize = (delegate* unmanaged<nint, void>)ReferenceLibraries.Export(llama, "llama_synchronize");
            llama_set_n_threads = (delegate* unmanaged<nint, int, int, void>)ReferenceLibraries.Export(llama, "llama_set_n_threads");
            llama_get_logits_ith = (delegate* unmanaged<nint, int, float*>)ReferenceLibraries.Export(llama, "llama_get_logits_ith");
            llama_get_memory = (delegate* unmanaged<nint, nint>)ReferenceLibraries.Export(llama, "llama_get_memory");
            llama_memory_clear = (delegate* unmanaged<nint, byte, void>)ReferenceLibraries.Export(llama, "llama_memory_clear");
            llama_model_get_vocab = (delegate* unmanaged<nint, nint>)ReferenceLibraries.Export(llama, "llama_model_get_vocab");
            llama_model_n_embd = (delegate* unmanaged<nint, int>)ReferenceLibraries.Export(llama, "llama_model_n_embd");
            llama_model_rope_type = (delegate* unmanaged<nint, int>)ReferenceLibraries.Export(llama, "llama_model_rope_type");
            llama_model_ftype = (delegate* unmanaged<nint, int>)ReferenceLibraries.Export(llama, "llama_model_ftype");
            llama_model_n_params = (delegate* unmanaged<nint, ulong>)ReferenceLibraries.Export(llama, "llama_model_n_params");
            llama_model_meta_val_str = (delegate* unmanaged<nint, byte*, byte*, nuint, int>)ReferenceLibraries.Export(llama, "llama_model_meta_val_str");
            llama_vocab_n_tokens = (delegate* unmanaged<nint, int>)ReferenceLibraries.Export(llama, "llama_vocab_n_tokens");
            llama_vocab_type = (delegate* unmanaged<nint, int>)ReferenceLibraries.Export(llama, "llama_vocab_type");
            llama_vocab_bos = (delegate* unmanaged<nint, int>)ReferenceLibraries.Export(llama, "llama_vocab_bos");
            llama_vocab_eos = (delegate* unmanaged<nint, int>)ReferenceLibraries.Export(llama, "llama_vocab_eos");
            llama_vocab_is_eog = (delegate* unmanaged<nint, int, byte>)ReferenceLibraries.Export(llama, "llama_vocab_is_eog");
            llama_vocab_is_control = (delegate* unmanaged<nint, int, byte>)ReferenceLibraries.Export(llama, "llama_vocab_is_control");
            llama_tokenize = (delegate* unmanaged<nint, byte*, int, int*, int, byte, byte, int>)ReferenceLibraries.Export(llama, "llama_tokenize");
            llama_token_to_piece = (delegate* unmanaged<nint, int, byte*, int, int, byte, int>)ReferenceLibraries.Export(llama, "llama_token_to_piece");
            llama_model_quantize = (delegate* unmanaged<byte*, byte*, LlamaModelQuantizeParams*, uint>)ReferenceLibraries.Export(llama, "llama_model_quantize");
            llama_log_set = (delegate* unmanaged<delegate* unmanaged<int, byte*, void*, void>, void*, void>)ReferenceLibraries.Export(llama, "llama_log_set");
            ggml_backend_load_all_from_path = (delegate* unmanaged<byte*, void>)ReferenceLibraries.Export(ggml, "ggml_backend_load_all_from_path");
            ggml_backend_dev_count = (delegate* unmanaged<nuint>)ReferenceLibraries.Export(ggml, "ggml_backend_dev_count");

            // Before anything can log: llama_log_set also routes ggml's own log through the callback.
            _echoLog = Environment.GetEnvironmentVariable(LogEnvironmentVariable) is "1" or "true";
            llama_log_set(&OnLog, null);

            VerifyLayouts();

            // The CPU backend is a separate libggml-cpu-<variant>.so chosen at run time; llama_backend_init would
            // only search the executable's directory and the working directory, so load from the library folder.
            byte[] dir = Utf8Z(ReferencePaths.LibraryDirectory);
            fixed (byte* d = dir)
                ggml_backend_load_all_from_path(d);
            if (ggml_backend_dev_count() == 0)
                throw new InvalidOperationException(
                    $"ggml found no backend device in {ReferencePaths.LibraryDirectory} (no usable libggml-cpu-*.so){RecentLog()}");
            llama_backend_init();
            _initialized = true;
        }
    }

    /// <summary>
    /// Struct layouts: sizes/offsets measured with the C compiler on this binary's llama.h, and the default
    /// values llama_*_default_params() return (from its src/*.cpp). A mismatch means the installed binary is
    /// not the one these declarations were written for, and every later call would be undefined behaviour.
    /// </summary>
    private static void VerifyLayouts()
    {
        var errors = new List<string>();
        void Expect(string what, long actual, long expected)
        {
            if (actual != expected)
                errors.Add($"{what} = {actual}, expected {expected}");
        }

        Expect("sizeof(llama_model_params)", Unsafe.SizeOf<LlamaModelParams>(), 80);
        Expect("offsetof(llama_model_params, main_gpu)", Marshal.OffsetOf<LlamaModelParams>(nameof(LlamaModelParams.MainGpu)), 32);
        Expect("offsetof(llama_model_params, vocab_only)", Marshal.OffsetOf<LlamaModelParams>(nameof(LlamaModelParams.VocabOnly)), 72);
        Expect("offsetof(llama_model_params, load_mtp)", Marshal.OffsetOf<LlamaModelParams>(nameof(LlamaModelParams.LoadMtp)), 77);
        Expect("sizeof(llama_context_params)", Unsafe.SizeOf<LlamaContextParams>(), 160);
        Expect("offsetof(llama_context_params, n_threads)", Marshal.OffsetOf<LlamaContextParams>(nameof(LlamaContextParams.NThreads)), 28);
        Expect("offsetof(llama_context_params, flash_attn_type)", Marshal.OffsetOf<LlamaContextParams>(nameof(LlamaContextParams.FlashAttnType)), 52);
        Expect("offsetof(llama_context_params, rope_freq_base)", Marshal.OffsetOf<LlamaContextParams>(nameof(LlamaContextParams.RopeFreqBase)), 56);
        Expect("offsetof(llama_context_params, cb_eval)", Marshal.OffsetOf<LlamaContextParams>(nameof(LlamaContextParams.CbEval)), 88);
        Expect("offsetof(llama_context_params, type_k)", Marshal.OffsetOf<LlamaContextParams>(nameof(LlamaContextParams.TypeK)), 104);
        Expect("offsetof(llama_context_params, abort_callback)", Marshal.OffsetOf<LlamaContextParams>(nameof(LlamaContextParams.AbortCallback)), 112);
        Expect("offsetof(llama_context_params, embeddings)", Marshal.OffsetOf<LlamaContextParams>(nameof(LlamaContextParams.Embeddings)), 128);
        Expect("offsetof(llama_context_params, kv_unified)", Marshal.OffsetOf<LlamaContextParams>(nameof(LlamaContextParams.KvUnified)), 133);
        Expect("offsetof(llama_context_params, samplers)", Marshal.OffsetOf<LlamaContextParams>(nameof(LlamaContextParams.Samplers)), 136);
        Expect("offsetof(llama_context_params, ctx_other)", Marshal.OffsetOf<LlamaContextParams>(nameof(LlamaContextParams.CtxOther)), 152);
        Expect("sizeof(llama_model_quantize_params)", Unsafe.SizeOf<LlamaModelQuantizeParams>(), 64);
        Expect("offsetof(llama_model_quantize_params, allow_requantize)", Marshal.OffsetOf<LlamaModelQuantizeParams>(nameof(LlamaModelQuantizeParams.AllowRequantize)), 16);
        Expect("offsetof(llama_model_quantize_params, imatrix)", Marshal.OffsetOf<LlamaModelQuantizeParams>(nameof(LlamaModelQuantizeParams.Imatrix)), 24);
        Expect("offsetof(llama_model_quantize_params, max_buf_size)", Marshal.OffsetOf<LlamaModelQuantizeParams>(nameof(LlamaModelQuantizeParams.MaxBufSize)), 56);
        Expect("sizeof(llama_batch)", Unsafe.SizeOf<LlamaBatch>(), 56);

        LlamaModelParams mp = llama_model_default_params();
        Expect("llama_model_default_params().devices", mp.Devices, 0);
        Expect("llama_model_default_params().n_gpu_layers", mp.NGpuLayers, -1);
        Expect("llama_model_default_params().split_mode (LAYER)", mp.SplitMode, 1);
        Expect("llama_model_default_params().load_mode (AUTO)", mp.LoadMode, -1);
        Expect("llama_model_default_params().lazy_mode (AUTO)", mp.LazyMode, 1);
        Expect("llama_model_default_params().main_gpu", mp.MainGpu, 0);
        Expect("llama_model_default_params().kv_overrides", mp.KvOverrides, 0);
        Expect("llama_model_default_params().vocab_only", mp.VocabOnly, 0);
        Expect("llama_model_default_params().use_extra_bufts", mp.UseExtraBufts, 1);
        Expect("llama_model_default_params().load_mtp", mp.LoadMtp, 0);

        LlamaContextParams cp = llama_context_default_params();
        Expect("llama_context_default_params().n_ctx", cp.NCtx, 512);
        Expect("llama_context_default_params().n_batch", cp.NBatch, 2048);
        Expect("llama_context_default_params().n_ubatch", cp.NUbatch, 512);
        Expect("llama_context_default_params().n_seq_max", cp.NSeqMax, 1);
        Expect("llama_context_default_params().n_outputs_max_per_seq", cp.NOutputsMaxPerSeq, 1);
        Expect("llama_context_default_params().n_threads", cp.NThreads, 4);
        Expect("llama_context_default_params().n_threads_batch", cp.NThreadsBatch, 4);
        Expect("llama_context_default_params().rope_scaling_type", cp.RopeScalingType, -1);
        Expect("llama_context_default_params().flash_attn_type (AUTO)", cp.FlashAttnType, FlashAttnAuto);
        Expect("llama_context_default_params().yarn_ext_factor", (long)cp.YarnExtFactor, -1);
        Expect("llama_context_default_params().defrag_thold", (long)cp.DefragThold, -1);
        Expect("llama_context_default_params().cb_eval", cp.CbEval, 0);
        Expect("llama_context_default_params().type_k (F16)", cp.TypeK, GgmlTypeF16);
        Expect("llama_context_default_params().type_v (F16)", cp.TypeV, GgmlTypeF16);
        Expect("llama_context_default_params().embeddings", cp.Embeddings, 0);
        Expect("llama_context_default_params().offload_kqv", cp.OffloadKqv, 1);
        Expect("llama_context_default_params().no_perf", cp.NoPerf, 1);
        Expect("llama_context_default_params().op_offload", cp.OpOffload, 1);
        Expect("llama_context_default_params().swa_full", cp.SwaFull, 1);
        Expect("llama_context_default_params().kv_unified", cp.KvUnified, 0);
        Expect("llama_context_default_params().samplers", cp.Samplers, 0);
        Expect("llama_context_default_params().n_samplers", (long)cp.NSamplers, 0);
        Expect("llama_context_default_params().ctx_other", cp.CtxOther, 0);

        LlamaModelQuantizeParams qp = llama_model_quantize_default_params();
        Expect("llama_model_quantize_default_params().nthread", qp.NThread, 0);
        Expect("llama_model_quantize_default_params().ftype (MOSTLY_Q8_0)", qp.Ftype, (int)LlamaFtype.MOSTLY_Q8_0);
        Expect("llama_model_quantize_default_params().output_tensor_type", qp.OutputTensorType, GgmlTypeCount);
        Expect("llama_model_quantize_default_params().token_embedding_type", qp.TokenEmbeddingType, GgmlTypeCount);
        Expect("llama_model_quantize_default_params().allow_requantize", qp.AllowRequantize, 0);
        Expect("llama_model_quantize_default_params().quantize_output_tensor", qp.QuantizeOutputTensor, 1);
        Expect("llama_model_quantize_default_params().dry_run", qp.DryRun, 0);
        Expect("llama_model_quantize_default_params().imatrix", qp.Imatrix, 0);
        Expect("llama_model_quantize_default_params().max_buf_size (8 GiB)", (long)qp.MaxBufSize, 8L << 30);

        if (errors.Count > 0)
            throw new InvalidOperationException(
                $"{ReferenceLibraries.LlamaFile} does not match the llama.h these declarations were written for " +
                $"(struct layout or defaults changed):\n  " + string.Join("\n  ", errors));
    }

    /// <summary>The last warning/error lines llama.cpp logged, for exception messages ("" if none).</summary>
    public static string RecentLog()
    {
        lock (RecentMessages)
        {
            if (RecentMessages.Count == 0)
                return "";
            string text = "\nllama.cpp log:\n  " + string.Join("\n  ", RecentMessages);
            RecentMessages.Clear();
            return text;
        }
    }

    /// <summary>Forgets earlier warnings so an exception reports only what the failing call logged.</summary>
    public static void ClearRecentLog()
    {
        lock (RecentMessages)
            RecentMessages.Clear();
    }

    // ggml_log_callback: void (*)(enum ggml_log_level level, const char * text, void * user_data).
    // Levels: 1 debug, 2 info, 3 warn, 4 error, 5 continuation of the previous message.
    private static int _lastLevel;

    /// <summary>The libggml-cpu-*.so ggml chose (from its "loaded CPU backend from …" log line), once initialised.</summary>
    public static string? LoadedCpuBackend { get; private set; }

    [UnmanagedCallersOnly]
    private static void OnLog(int level, byte* text, void* userData)
    {
        string s = text == null ? "" : Marshal.PtrToStringUTF8((nint)text) ?? "";
        if (_echoLog)
            Console.Error.Write(s);
        if (level != 5)
            _lastLevel = level;
        const string loaded = "loaded CPU backend from ";
        int at = s.IndexOf(loaded, StringComparison.Ordinal);
        if (at >= 0)
            LoadedCpuBackend = s[(at + loaded.Length)..].Trim();
        if (_lastLevel < 3)
            return;
        lock (RecentMessages)
        {
            PendingLine.Append(s);
            if (!s.EndsWith('\n'))
                return;
            RecentMessages.Enqueue(PendingLine.ToString().TrimEnd());
            PendingLine.Clear();
            while (RecentMessages.Count > 20)
                RecentMessages.Dequeue();
        }
    }

    public static byte[] Utf8Z(string s)
    {
        byte[] bytes = new byte[Encoding.UTF8.GetByteCount(s) + 1];
        Encoding.UTF8.GetBytes(s, bytes);
        return bytes;
    }
}
