namespace LlavaNative.TestSupport.LlamaCpp;

/// <summary>
/// <c>enum llama_ftype</c> of the reference binary (include/llama.h), with the header's values: the target of
/// <see cref="LlamaCppModel.Quantize"/> and the value of a GGUF's <c>general.file_type</c>. "MOSTLY" types keep
/// 1-D tensors (norms, biases) in F32; the _S/_M/_L K-quant mixes choose per-tensor types (llama-quant.cpp).
/// </summary>
public enum LlamaFtype
{
    ALL_F32 = 0,
    MOSTLY_F16 = 1,
    MOSTLY_Q4_0 = 2,
    MOSTLY_Q4_1 = 3,
    MOSTLY_Q8_0 = 7,
    MOSTLY_Q5_0 = 8,
    MOSTLY_Q5_1 = 9,
    MOSTLY_Q2_K = 10,
    MOSTLY_Q3_K_S = 11,
    MOSTLY_Q3_K_M = 12,
    MOSTLY_Q3_K_L = 13,
    MOSTLY_Q4_K_S = 14,
    MOSTLY_Q4_K_M = 15,
    MOSTLY_Q5_K_S = 16,
    MOSTLY_Q5_K_M = 17,
    MOSTLY_Q6_K = 18,
    MOSTLY_Q2_K_S = 21,
    MOSTLY_IQ4_NL = 25,
    MOSTLY_IQ4_XS = 30,
    MOSTLY_BF16 = 32,

    /// <summary>Not specified in the model file.</summary>
    GUESSED = 1024,
}
