namespace LlavaNative.Kernels.Cpu.Ops;

/// <summary>How rotary embeddings pair the dimensions of a head.</summary>
public enum RopeMode
{
    /// <summary>GGML "normal": adjacent pairs (x[2i], x[2i+1]) — GGUF <c>llama</c>, whose q/k rows were permuted at conversion.</summary>
    Normal,

    /// <summary>NEOX / HF rotate_half: pairs (x[i], x[i + d/2]) — GGUF <c>qwen2</c> and every HF checkpoint.</summary>
    Neox,
}

/// <summary>
/// Rotary position embeddings on the first <c>ropeDims</c> dimensions of every head (the rest pass
/// through: partial rotary). Angles for a batch of positions are computed once per forward pass and shared
/// by all layers: <c>θ_i = pos · base^(−2i/ropeDims)</c>, evaluated as ggml does (θ multiplied by
/// base^(−2/ropeDims) step by step in float) so results agree with llama.cpp to the last bits.
/// </summary>
public static unsafe class Rope
{
    /// <summary>Fills <paramref name="cos"/>/<paramref name="sin"/> [nTokens, ropeDims/2] for positions startPos…startPos+nTokens−1.</summary>
    public static void ComputeAngles(int startPos, int nTokens, int ropeDims, float freqBase, float* cos, float* sin)
    {
        int half = ropeDims / 2;
        float thetaScale = MathF.Pow(freqBase, -2.0f / ropeDims);
        for (int t = 0; t < nTokens; t++)
        {
            float theta = startPos + t;
            for (int i = 0; i < half; i++)
            {
                cos[t * half + i] = MathF.Cos(theta);
                sin[t * half + i] = MathF.Sin(theta);
                theta *= thetaScale;
            }
        }
    }

    /// <summary>Rotates <paramref name="nHeads"/> heads of one token in place using that token's angle row.</summary>
    public static void Apply(float* x, int nHeads, int headDim, int ropeDims, RopeMode mode, float* cos, float* sin)
    {
        int half = ropeDims / 2;
        for (int h = 0; h < nHeads; h++)
        {
            float* v = x + (long)h * headDim;
            if (mode == RopeMode.Normal)
            {
                for (int i = 0; i < half; i++)
                {
                    float x0 = v[2 * i], x1 = v[2 * i + 1];
                    v[2 * i] = x0 * cos[i] - x1 * sin[i];
                    v[2 * i + 1] = x0 * sin[i] + x1 * cos[i];
                }
            }
            else
            {
                for (int i = 0; i < half; i++)
                {
                    float x0 = v[i], x1 = v[i + half];
                    v[i] = x0 * cos[i] - x1 * sin[i];
                    v[i + half] = x0 * sin[i] + x1 * cos[i];
                }
            }
        }
    }
}
