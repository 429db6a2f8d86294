using LlavaNative.Kernels.Tensors;

namespace LlavaNative.Kernels.Cpu.Quant;

/// <summary>
/// Float → weight-type quantization, byte-identical with ggml's deterministic <c>quantize_row_*_ref</c>
/// (what <c>llama_model_quantize</c> writes when no importance matrix is given). Used for quantizing
/// F32/F16 checkpoints on load and for building test models. Scalar code: it runs once per weight.
/// The float arithmetic follows the C expressions operation by operation (no FMA contraction, same
/// evaluation order), because the chosen codes depend on the last bit of those intermediates.
/// </summary>
public static unsafe class WeightQuantizer
{
    /// <summary>True when <see cref="QuantizeRow"/> supports <paramref name="type"/>.</summary>
    public static bool CanQuantize(TensorType type) => type switch
    {
        TensorType.F32 or TensorType.F16 or TensorType.BF16 or
        TensorType.Q4_0 or TensorType.Q4_1 or TensorType.Q5_0 or TensorType.Q5_1 or TensorType.Q8_0 or
        TensorType.Q2_K or TensorType.Q3_K or TensorType.Q4_K or TensorType.Q5_K or TensorType.Q6_K or TensorType.IQ4_NL => true,
        _ => false,
    };

    /// <summary>Encodes <paramref name="n"/> floats (a whole number of blocks) as <paramref name="type"/>.</summary>
    public static void QuantizeRow(TensorType type, float* src, byte* dst, int n)
    {
        int be = TensorTypeInfo.BlockElements(type);
        if (n % be != 0) throw new ArgumentException($"{n} elements are not a whole number of {type} blocks ({be})", nameof(n));
        switch (type)
        {
            case TensorType.F32: Buffer.MemoryCopy(src, dst, (long)n * 4, (long)n * 4); break;
            case TensorType.F16: for (int i = 0; i < n; i++) ((ushort*)dst)[i] = Fp16.FromFloat(src[i]); break;
            case TensorType.BF16: for (int i = 0; i < n; i++) ((ushort*)dst)[i] = Bf16.FromFloat(src[i]); break;
            case TensorType.Q4_0: QuantizeQ4_0(src, dst, n); break;
            case TensorType.Q4_1: QuantizeQ4_1(src, dst, n); break;
            case TensorType.Q5_0: QuantizeQ5_0(src, dst, n); break;
            case TensorType.Q5_1: QuantizeQ5_1(src, dst, n); break;
            case TensorType.Q8_0: QuantizeQ8_0(src, dst, n); break;
            case TensorType.Q2_K: KQuantQuantizer.QuantizeQ2_K(src, dst, n); break;
            case TensorType.Q3_K: KQuantQuantizer.QuantizeQ3_K(src, dst, n); break;
            case TensorType.Q4_K: KQuantQuantizer.QuantizeQ4_K(src, dst, n); break;
            case TensorType.Q5_K: KQuantQuantizer.QuantizeQ5_K(src, dst, n); break;
            case TensorType.Q6_K: KQuantQuantizer.QuantizeQ6_K(src, dst, n); break;
            case TensorType.IQ4_NL: QuantizeIQ4_NL(src, dst, n); break;
            default: throw new NotSupportedException($"no weight quantizer for {TensorTypeInfo.Name(type)}");
        }
    }

    /// <summary>Signed value of largest magnitude (the first one on ties) and that magnitude.</summary>
    private static float SignedMax(float* x, int count, out float amax)
    {
        float max = 0;
        amax = 0;
        for (int j = 0; j < count; j++)
        {
            float v = x[j];
            if (amax < MathF.Abs(v)) { amax = MathF.Abs(v); max = v; }
        }
        return max;
    }

    private static void QuantizeQ8_0(float* x, byte* y, int n)
    {
        for (int b = 0; b < n / 32; b++, x += 32, y += 34)
        {
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = MathF.Max(amax, MathF.Abs(x[j]));
            float d = amax / 127;
            float id = d != 0 ? 1.0f / d : 0.0f;
            *(ushort*)y = Fp16.FromFloat(d);
            // roundf: half away from zero (the CPU backend's activation path rounds half to even instead).
            for (int j = 0; j < 32; j++) ((sbyte*)(y + 2))[j] = (sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero);
        }
    }

    private static void QuantizeQ4_0(float* x, byte* y, int n)
    {
        for (int b = 0; b < n / 32; b++, x += 32, y += 18)
        {
            float max = SignedMax(x, 32, out _);
            float d = max / -8;
            float id = d != 0 ? 1.0f / d : 0.0f;
            *(ushort*)y = Fp16.FromFloat(d);
            for (int j = 0; j < 16; j++)
            {
                // (int8_t)(v + 8.5f): truncation toward zero, then MIN(15, ·).
                int q0 = Math.Min(15, (int)(x[j] * id + 8.5f));
                int q1 = Math.Min(15, (int)(x[j + 16] * id + 8.5f));
                y[2 + j] = (byte)(q0 | (q1 << 4));
            }
        }
    }

    private static void QuantizeQ4_1(float* x, byte* y, int n)
    {
        for (int b = 0; b < n / 32; b++, x += 32, y += 20)
        {
            float min = float.MaxValue, max = -float.MaxValue;
            for (int j = 0; j < 32; j++)
            {
                if (x[j] < min) min = x[j];
                if (x[j] > max) max = x[j];
            }
            float d = (max - min) / 15;
            float id = d != 0 ? 1.0f / d : 0.0f;
            *(ushort*)y = Fp16.FromFloat(d);
            *(ushort*)(y + 2) = Fp16.FromFloat(min);
            for (int j = 0; j < 16; j++)
            {
                int q0 = Math.Min(15, (int)((x[j] - min) * id + 0.5f));
                int q1 = Math.Min(15, (int)((x[j + 16] - min) * id + 0.5f));
                y[4 + j] = (byte)(q0 | (q1 << 4));
            }
        }
    }

    private static void QuantizeQ5_0(float* x, byte* y, int n)
    {
        for (int b = 0; b < n / 32; b++, x += 32, y += 22)
        {
            float max = SignedMax(x, 32, out _);
            float d = max / -16;
            float id = d != 0 ? 1.0f / d : 0.0f;
            *(ushort*)y = Fp16.FromFloat(d);
            uint qh = 0;
            for (int j = 0; j < 16; j++)
            {
                int q0 = Math.Min(31, (int)(x[j] * id + 16.5f));
                int q1 = Math.Min(31, (int)(x[j + 16] * id + 16.5f));
                y[6 + j] = (byte)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
                qh |= (uint)((q0 & 0x10) >> 4) << j;
                qh |= (uint)((q1 & 0x10) >> 4) << (j + 16);
            }
            *(uint*)(y + 2) = qh;
        }
    }

    private static void QuantizeQ5_1(float* x, byte* y, int n)
    {
        for (int b = 0; b < n / 32; b++, x += 32, y += 24)
        {
            float min = float.MaxValue, max = -float.MaxValue;
            for (int j = 0; j < 32; j++)
            {
                if (x[j] < min) min = x[j];
                if (x[j] > max) max = x[j];
            }
            float d = (max - min) / 31;
            float id = d != 0 ? 1.0f / d : 0.0f;
            *(ushort*)y = Fp16.FromFloat(d);
            *(ushort*)(y + 2) = Fp16.FromFloat(min);
            uint qh = 0;
            for (int j = 0; j < 16; j++)
            {
                int q0 = (byte)(int)((x[j] - min) * id + 0.5f);
                int q1 = (byte)(int)((x[j + 16] - min) * id + 0.5f);
                y[8 + j] = (byte)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
                qh |= (uint)((q0 & 0x10) >> 4) << j;
                qh |= (uint)((q1 & 0x10) >> 4) << (j + 16);
            }
            *(uint*)(y + 4) = qh;
        }
    }

    /// <summary>
    /// <c>quantize_row_iq4_nl_ref</c> (no importance weights, no scale search): codes are the nearest table
    /// entries to x·(−127/max), then d is the x²-weighted least-squares scale for those codes. An all-zero block
    /// keeps the previous block's codes (the reference leaves its code buffer untouched; with d = 0 they do not
    /// matter).
    /// </summary>
    private static void QuantizeIQ4_NL(float* x, byte* y, int n)
    {
        ReadOnlySpan<sbyte> values = IQ4_NLKernels.Values;
        byte* L = stackalloc byte[32];
        for (int j = 0; j < 32; j++) L[j] = 0;
        for (int b = 0; b < n / 32; b++, x += 32, y += 18)
        {
            float max = SignedMax(x, 32, out float amax);
            float d = 0;
            if (!(amax < 1e-15f))
            {
                d = max / values[0];
                float id = 1 / d;
                float sumqx = 0, sumq2 = 0;
                for (int j = 0; j < 32; j++)
                {
                    int l = BestIndex(values, id * x[j]);
                    L[j] = (byte)l;
                    float q = values[l];
                    float w = x[j] * x[j];
                    sumqx += w * q * x[j];
                    sumq2 += w * q * q;
                }
                d = sumq2 > 0 ? sumqx / sumq2 : 0f;
            }
            *(ushort*)y = Fp16.FromFloat(d);
            for (int j = 0; j < 16; j++) y[2 + j] = (byte)(L[j] | (L[16 + j] << 4));
        }
    }

    /// <summary>ggml's <c>best_index_int8</c>: index of the table entry nearest to <paramref name="x"/> (the upper one on ties).</summary>
    private static int BestIndex(ReadOnlySpan<sbyte> values, float x)
    {
        int n = values.Length;
        if (x <= values[0]) return 0;
        if (x >= values[n - 1]) return n - 1;
        int ml = 0, mu = n - 1;
        while (mu - ml > 1)
        {
            int mav = (ml + mu) / 2;
            if (x < values[mav]) mu = mav; else ml = mav;
        }
        return x - values[mu - 1] < values[mu] - x ? mu - 1 : mu;
    }
}
