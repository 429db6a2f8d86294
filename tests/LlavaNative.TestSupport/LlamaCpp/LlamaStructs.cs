using System.Runtime.InteropServices;

namespace LlavaNative.TestSupport.LlamaCpp;

// Blittable mirrors of the structs in the reference binary's include/llama.h (llama.cpp "v0.5.0" as built by
// node-llama-cpp 3.22.1). Field order, types and padding follow that header exactly; C `bool` is one byte and
// is declared as byte so the structs stay blittable. Sizes and offsets are checked at start-up
// (LlamaNative.VerifyLayouts) against values measured with the C compiler on that header.

/// <summary><c>struct llama_model_params</c> (80 bytes on x64).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct LlamaModelParams
{
    public nint Devices;                 // ggml_backend_dev_t *, NULL-terminated
    public nint TensorBuftOverrides;     // const llama_model_tensor_buft_override *
    public int NGpuLayers;
    public int SplitMode;                // enum llama_split_mode
    public int LoadMode;                 // enum llama_load_mode
    public int LazyMode;                 // enum llama_lazy_mode
    public int MainGpu;
    public nint TensorSplit;             // const float *
    public nint ProgressCallback;
    public nint ProgressCallbackUserData;
    public nint KvOverrides;             // const llama_model_kv_override *
    public byte VocabOnly;
    public byte CheckTensors;
    public byte UseExtraBufts;
    public byte NoHost;
    public byte NoAlloc;
    public byte LoadMtp;
}

/// <summary><c>struct llama_context_params</c> (160 bytes on x64).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct LlamaContextParams
{
    public uint NCtx;
    public uint NBatch;
    public uint NUbatch;
    public uint NSeqMax;
    public uint NRsSeq;
    public uint NOutputsMax;
    public uint NOutputsMaxPerSeq;
    public int NThreads;
    public int NThreadsBatch;
    public int CtxType;                  // enum llama_context_type
    public int RopeScalingType;          // enum llama_rope_scaling_type
    public int PoolingType;              // enum llama_pooling_type
    public int AttentionType;            // enum llama_attention_type
    public int FlashAttnType;            // enum llama_flash_attn_type: -1 auto, 0 disabled, 1 enabled
    public float RopeFreqBase;
    public float RopeFreqScale;
    public float YarnExtFactor;
    public float YarnAttnFactor;
    public float YarnBetaFast;
    public float YarnBetaSlow;
    public uint YarnOrigCtx;
    public float DefragThold;
    public nint CbEval;
    public nint CbEvalUserData;
    public int TypeK;                    // enum ggml_type
    public int TypeV;                    // enum ggml_type
    public nint AbortCallback;
    public nint AbortCallbackData;
    public byte Embeddings;
    public byte OffloadKqv;
    public byte NoPerf;
    public byte OpOffload;
    public byte SwaFull;
    public byte KvUnified;
    public nint Samplers;                // llama_sampler_seq_config *
    public nuint NSamplers;
    public nint CtxOther;                // llama_context *
}

/// <summary><c>llama_model_quantize_params</c> (64 bytes on x64).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct LlamaModelQuantizeParams
{
    public int NThread;
    public int Ftype;                    // enum llama_ftype
    public int OutputTensorType;         // enum ggml_type; GGML_TYPE_COUNT (43) = choose by ftype
    public int TokenEmbeddingType;       // enum ggml_type; GGML_TYPE_COUNT (43) = choose by ftype
    public byte AllowRequantize;
    public byte QuantizeOutputTensor;
    public byte OnlyCopy;
    public byte Pure;
    public byte KeepSplit;
    public byte DryRun;
    public nint Imatrix;
    public nint KvOverrides;
    public nint TensorTypeOverrides;
    public nint PruneLayers;
    public nuint MaxBufSize;
}

/// <summary><c>llama_batch</c> (56 bytes on x64). Either <see cref="Token"/> or <see cref="Embd"/> is set.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct LlamaBatch
{
    public int NTokens;
    public int* Token;                   // [n_tokens] or NULL
    public float* Embd;                  // [n_tokens, n_embd] or NULL
    public int* Pos;                     // [n_tokens]
    public int* NSeqId;                  // [n_tokens]
    public int** SeqId;                  // [n_tokens][n_seq_id[i]]
    public sbyte* Logits;                // [n_tokens]: nonzero = output logits for this position
}
