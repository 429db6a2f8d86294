namespace LlavaNative.Kernels.Cpu.Quant;

/// <summary>
/// The K-quant reference quantizers (<c>quantize_row_q{2..6}_K_ref</c> in ggml-quants.c) and their search
/// helpers (<c>make_qkx2_quants</c>, <c>make_qx_quants</c>, <c>make_q3_quants</c>). Every float expression
/// keeps ggml's operand order — e.g. <c>w*x*l</c> is <c>(w·x)·l</c> — because the searches compare
/// errors that differ in the last bits.
/// </summary>
internal static unsafe class KQuantQuantizer
{
    private const float GroupMaxEps = 1e-15f;

    private static int NearestInt(float v) => ActivationQuantizers.NearestInt(v);

    /// <summary>Asymmetric (scale, min) fit of <paramref name="n"/> values to 0..nmax with a weighted least-squares search.</summary>
    private static float MakeQkx2Quants(int n, int nmax, float* x, float* weights, byte* L, out float theMin, byte* laux,
        float rmin, float rdelta, int nstep, bool useMad)
    {
        float min = x[0], max = x[0];
        float sumW = weights[0];
        float sumX = sumW * x[0];
        for (int i = 1; i < n; i++)
        {
            if (x[i] < min) min = x[i];
            if (x[i] > max) max = x[i];
            float w = weights[i];
            sumW += w;
            sumX += w * x[i];
        }
        if (min > 0) min = 0;
        if (max == min)
        {
            for (int i = 0; i < n; i++) L[i] = 0;
            theMin = -min;
            return 0f;
        }
        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        float bestError = 0;
        for (int i = 0; i < n; i++)
        {
            int l = NearestInt(iscale * (x[i] - min));
            L[i] = (byte)Math.Max(0, Math.Min(nmax, l));
            float diff = scale * L[i] + min - x[i];
            diff = useMad ? MathF.Abs(diff) : diff * diff;
            bestError += weights[i] * diff;
        }
        if (nstep < 1)
        {
            theMin = -min;
            return scale;
        }
        for (int step = 0; step <= nstep; step++)
        {
            iscale = (rmin + rdelta * step + nmax) / (max - min);
            float sumL = 0, sumL2 = 0, sumXL = 0;
            for (int i = 0; i < n; i++)
            {
                int l = NearestInt(iscale * (x[i] - min));
                l = Math.Max(0, Math.Min(nmax, l));
                laux[i] = (byte)l;
                float w = weights[i];
                sumL += w * l;
                sumL2 += w * l * l;
                sumXL += w * l * x[i];
            }
            float det = sumW * sumL2 - sumL * sumL;
            if (det > 0)
            {
                float thisScale = (sumW * sumXL - sumX * sumL) / det;
                float thisMin = (sumL2 * sumX - sumL * sumXL) / det;
                if (thisMin > 0)
                {
                    thisMin = 0;
                    thisScale = sumXL / sumL2;
                }
                float curError = 0;
                for (int i = 0; i < n; i++)
                {
                    float diff = thisScale * laux[i] + thisMin - x[i];
                    diff = useMad ? MathF.Abs(diff) : diff * diff;
                    curError += weights[i] * diff;
                }
                if (curError < bestError)
                {
                    for (int i = 0; i < n; i++) L[i] = laux[i];
                    bestError = curError;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }
        theMin = -min;
        return scale;
    }

    /// <summary>Symmetric fit to −nmax..nmax−1 (stored +nmax), weights x² (rmse_type 1), scale search ±0.9.</summary>
    private static float MakeQxQuants(int n, int nmax, float* x, sbyte* L)
    {
        float max = 0, amax = 0;
        for (int i = 0; i < n; i++)
        {
            float ax = MathF.Abs(x[i]);
            if (ax > amax) { amax = ax; max = x[i]; }
        }
        if (amax < GroupMaxEps)
        {
            for (int i = 0; i < n; i++) L[i] = 0;
            return 0f;
        }
        float iscale = -nmax / max;
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < n; i++)
        {
            int l = NearestInt(iscale * x[i]);
            l = Math.Max(-nmax, Math.Min(nmax - 1, l));
            L[i] = (sbyte)(l + nmax);
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
        float best = scale * sumlx;
        for (int step = -9; step <= 9; step++)
        {
            if (step == 0) continue;
            iscale = -(nmax + 0.1f * step) / max;
            sumlx = suml2 = 0;
            for (int i = 0; i < n; i++)
            {
                int l = NearestInt(iscale * x[i]);
                l = Math.Max(-nmax, Math.Min(nmax - 1, l));
                float w = x[i] * x[i];
                sumlx += w * x[i] * l;
                suml2 += w * l * l;
            }
            if (suml2 > 0 && sumlx * sumlx > best * suml2)
            {
                for (int i = 0; i < n; i++)
                {
                    int l = NearestInt(iscale * x[i]);
                    L[i] = (sbyte)(nmax + Math.Max(-nmax, Math.Min(nmax - 1, l)));
                }
                scale = sumlx / suml2;
                best = scale * sumlx;
            }
        }
        return scale;
    }

    /// <summary>Q3_K's symmetric fit with coordinate-descent refinement (do_rmse = true).</summary>
    private static float MakeQ3Quants(int n, int nmax, float* x, sbyte* L)
    {
        float max = 0, amax = 0;
        for (int i = 0; i < n; i++)
        {
            float ax = MathF.Abs(x[i]);
            if (ax > amax) { amax = ax; max = x[i]; }
        }
        if (amax < GroupMaxEps)
        {
            for (int i = 0; i < n; i++) L[i] = 0;
            return 0f;
        }
        float iscale = -nmax / max;
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < n; i++)
        {
            int l = NearestInt(iscale * x[i]);
            l = Math.Max(-nmax, Math.Min(nmax - 1, l));
            L[i] = (sbyte)l;
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        for (int itry = 0; itry < 5; itry++)
        {
            int changed = 0;
            for (int i = 0; i < n; i++)
            {
                float w = x[i] * x[i];
                float slx = sumlx - w * x[i] * L[i];
                if (slx > 0)
                {
                    float sl2 = suml2 - w * L[i] * L[i];
                    int newL = NearestInt(x[i] * sl2 / slx);
                    newL = Math.Max(-nmax, Math.Min(nmax - 1, newL));
                    if (newL != L[i])
                    {
                        slx += w * x[i] * newL;
                        sl2 += w * newL * newL;
                        if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2)
                        {
                            L[i] = (sbyte)newL; sumlx = slx; suml2 = sl2;
                            changed++;
                        }
                    }
                }
            }
            if (changed == 0) break;
        }
        for (int i = 0; i < n; i++) L[i] += (sbyte)nmax;
        return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
    }

    /// <summary>ggml's <c>get_scale_min_k4</c>: 6-bit scale and min j (0..7) from the 12 packed bytes.</summary>
    internal static void ScaleMinK4(int j, byte* q, out byte d, out byte m)
    {
        if (j < 4)
        {
            d = (byte)(q[j] & 63);
            m = (byte)(q[j + 4] & 63);
        }
        else
        {
            d = (byte)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
            m = (byte)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
        }
    }

    // Q2_K block (84 bytes): scales[16] (low nibble scale, high nibble min), qs[64], d, dmin.
    public static void QuantizeQ2_K(float* x, byte* y, int n)
    {
        byte* L = stackalloc byte[256];
        byte* laux = stackalloc byte[16];
        float* weights = stackalloc float[16];
        float* mins = stackalloc float[16];
        float* scales = stackalloc float[16];
        const float q4scale = 15f;
        for (int b = 0; b < n / 256; b++, x += 256, y += 84)
        {
            byte* sc = y;
            byte* qs = y + 16;
            float maxScale = 0, maxMin = 0;
            for (int j = 0; j < 16; j++)
            {
                for (int l = 0; l < 16; l++) weights[l] = MathF.Abs(x[16 * j + l]);
                scales[j] = MakeQkx2Quants(16, 3, x + 16 * j, weights, L + 16 * j, out mins[j], laux, -0.5f, 0.1f, 15, true);
                if (scales[j] > maxScale) maxScale = scales[j];
                if (mins[j] > maxMin) maxMin = mins[j];
            }
            if (maxScale > 0)
            {
                float iscale = q4scale / maxScale;
                for (int j = 0; j < 16; j++) sc[j] = (byte)NearestInt(iscale * scales[j]);
                *(ushort*)(y + 80) = Fp16.FromFloat(maxScale / q4scale);
            }
            else
            {
                for (int j = 0; j < 16; j++) sc[j] = 0;
                *(ushort*)(y + 80) = Fp16.FromFloat(0f);
            }
            if (maxMin > 0)
            {
                float iscale = q4scale / maxMin;
                for (int j = 0; j < 16; j++) sc[j] |= (byte)(NearestInt(iscale * mins[j]) << 4);
                *(ushort*)(y + 82) = Fp16.FromFloat(maxMin / q4scale);
            }
            else
            {
                *(ushort*)(y + 82) = Fp16.FromFloat(0f);
            }
            for (int j = 0; j < 16; j++)
            {
                float d = Fp16.ToFloat(*(ushort*)(y + 80)) * (sc[j] & 0xF);
                if (d == 0) continue;
                float dm = Fp16.ToFloat(*(ushort*)(y + 82)) * (sc[j] >> 4);
                for (int ii = 0; ii < 16; ii++)
                {
                    int l = NearestInt((x[16 * j + ii] + dm) / d);
                    L[16 * j + ii] = (byte)Math.Max(0, Math.Min(3, l));
                }
            }
            PackTwoBit(L, qs);
        }
    }

    /// <summary>2-bit codes of 256 values: byte l of each 32-byte half holds elements l, l+32, l+64, l+96.</summary>
    private static void PackTwoBit(byte* L, byte* qs)
    {
        for (int j = 0; j < 256; j += 128)
            for (int l = 0; l < 32; l++)
                qs[j / 4 + l] = (byte)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
    }

    // Q3_K block (110 bytes): hmask[32], qs[64], scales[12] (16 packed 6-bit signed scales), d.
    public static void QuantizeQ3_K(float* x, byte* y, int n)
    {
        sbyte* L = stackalloc sbyte[256];
        float* scales = stackalloc float[16];
        for (int b = 0; b < n / 256; b++, x += 256, y += 110)
        {
            byte* hmask = y;
            byte* qs = y + 32;
            byte* sc = y + 96;
            float maxScale = 0, amax = 0;
            for (int j = 0; j < 16; j++)
            {
                scales[j] = MakeQ3Quants(16, 4, x + 16 * j, L + 16 * j);
                float scale = MathF.Abs(scales[j]);
                if (scale > amax) { amax = scale; maxScale = scales[j]; }
            }
            for (int j = 0; j < 12; j++) sc[j] = 0;
            if (maxScale != 0)
            {
                float iscale = -32f / maxScale;
                for (int j = 0; j < 16; j++)
                {
                    sbyte l8 = (sbyte)NearestInt(iscale * scales[j]);
                    int l = Math.Max(-32, Math.Min(31, (int)l8)) + 32;
                    if (j < 8) sc[j] = (byte)(l & 0xF);
                    else sc[j - 8] |= (byte)((l & 0xF) << 4);
                    l >>= 4;
                    sc[j % 4 + 8] |= (byte)(l << (2 * (j / 4)));
                }
                *(ushort*)(y + 108) = Fp16.FromFloat(1 / iscale);
            }
            else
            {
                *(ushort*)(y + 108) = Fp16.FromFloat(0f);
            }
            for (int j = 0; j < 16; j++)
            {
                int s = j < 8 ? sc[j] & 0xF : sc[j - 8] >> 4;
                s = (sbyte)((s | (((sc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32);
                float d = Fp16.ToFloat(*(ushort*)(y + 108)) * s;
                if (d == 0) continue;
                for (int ii = 0; ii < 16; ii++)
                {
                    int l = NearestInt(x[16 * j + ii] / d);
                    L[16 * j + ii] = (sbyte)(Math.Max(-4, Math.Min(3, l)) + 4);
                }
            }
            for (int j = 0; j < 32; j++) hmask[j] = 0;
            int m = 0;
            byte hm = 1;
            for (int j = 0; j < 256; j++)
            {
                if (L[j] > 3)
                {
                    hmask[m] |= hm;
                    L[j] -= 4;
                }
                if (++m == 32) { m = 0; hm <<= 1; }
            }
            PackTwoBit((byte*)L, qs);
        }
    }

    /// <summary>Shared by Q4_K and Q5_K: 8 sub-blocks of 32 with (scale, min) fitted, then 6-bit packed.</summary>
    private static void FitScalesMinsK(float* x, byte* y, byte* L, int nmax, float rmin, int nstep)
    {
        byte* laux = stackalloc byte[32];
        float* weights = stackalloc float[32];
        float* mins = stackalloc float[8];
        float* scales = stackalloc float[8];
        byte* sc = y + 4;
        float maxScale = 0, maxMin = 0;
        for (int j = 0; j < 8; j++)
        {
            float sumX2 = 0;
            for (int l = 0; l < 32; l++) sumX2 += x[32 * j + l] * x[32 * j + l];
            float avX = MathF.Sqrt(sumX2 / 32);
            for (int l = 0; l < 32; l++) weights[l] = avX + MathF.Abs(x[32 * j + l]);
            scales[j] = MakeQkx2Quants(32, nmax, x + 32 * j, weights, L + 32 * j, out mins[j], laux, rmin, 0.1f, nstep, false);
            if (scales[j] > maxScale) maxScale = scales[j];
            if (mins[j] > maxMin) maxMin = mins[j];
        }
        float invScale = maxScale > 0 ? 63f / maxScale : 0f;
        float invMin = maxMin > 0 ? 63f / maxMin : 0f;
        for (int j = 0; j < 8; j++)
        {
            byte ls = (byte)NearestInt(invScale * scales[j]);
            byte lm = (byte)NearestInt(invMin * mins[j]);
            ls = Math.Min((byte)63, ls);
            lm = Math.Min((byte)63, lm);
            if (j < 4)
            {
                sc[j] = ls;
                sc[j + 4] = lm;
            }
            else
            {
                sc[j + 4] = (byte)((ls & 0xF) | ((lm & 0xF) << 4));
                sc[j - 4] |= (byte)((ls >> 4) << 6);
                sc[j] |= (byte)((lm >> 4) << 6);
            }
        }
        *(ushort*)y = Fp16.FromFloat(maxScale / 63f);
        *(ushort*)(y + 2) = Fp16.FromFloat(maxMin / 63f);
        for (int j = 0; j < 8; j++)
        {
            ScaleMinK4(j, sc, out byte s, out byte m);
            float d = Fp16.ToFloat(*(ushort*)y) * s;
            if (d == 0) continue;
            float dm = Fp16.ToFloat(*(ushort*)(y + 2)) * m;
            for (int ii = 0; ii < 32; ii++)
            {
                int l = NearestInt((x[32 * j + ii] + dm) / d);
                L[32 * j + ii] = (byte)Math.Max(0, Math.Min(nmax, l));
            }
        }
    }

    // Q4_K block (144 bytes): d, dmin, scales[12], qs[128] (64-element chunks: low nibbles then high).
    public static void QuantizeQ4_K(float* x, byte* y, int n)
    {
        byte* L = stackalloc byte[256];
        for (int b = 0; b < n / 256; b++, x += 256, y += 144)
        {
            for (int j = 0; j < 12; j++) y[4 + j] = 0;
            FitScalesMinsK(x, y, L, 15, -1f, 20);
            byte* q = y + 16;
            for (int j = 0; j < 256; j += 64, q += 32)
                for (int l = 0; l < 32; l++) q[l] = (byte)(L[j + l] | (L[j + l + 32] << 4));
        }
    }

    // Q5_K block (176 bytes): d, dmin, scales[12], qh[32], qs[128].
    public static void QuantizeQ5_K(float* x, byte* y, int n)
    {
        byte* L = stackalloc byte[256];
        for (int b = 0; b < n / 256; b++, x += 256, y += 176)
        {
            for (int j = 0; j < 12; j++) y[4 + j] = 0;
            FitScalesMinsK(x, y, L, 31, -0.5f, 15);
            byte* qh = y + 16;
            byte* ql = y + 48;
            for (int j = 0; j < 32; j++) qh[j] = 0;
            byte m1 = 1, m2 = 2;
            for (int start = 0; start < 256; start += 64, ql += 32)
            {
                for (int j = 0; j < 32; j++)
                {
                    int l1 = L[start + j];
                    if (l1 > 15) { l1 -= 16; qh[j] |= m1; }
                    int l2 = L[start + j + 32];
                    if (l2 > 15) { l2 -= 16; qh[j] |= m2; }
                    ql[j] = (byte)(l1 | (l2 << 4));
                }
                m1 <<= 2; m2 <<= 2;
            }
        }
    }

    // Q6_K block (210 bytes): ql[128], qh[64], scales[16] (int8), d.
    public static void QuantizeQ6_K(float* x, byte* y, int n)
    {
        sbyte* L = stackalloc sbyte[256];
        float* scales = stackalloc float[16];
        for (int b = 0; b < n / 256; b++, x += 256, y += 210)
        {
            float maxScale = 0, maxAbsScale = 0;
            for (int ib = 0; ib < 16; ib++)
            {
                float scale = MakeQxQuants(16, 32, x + 16 * ib, L + 16 * ib);
                scales[ib] = scale;
                float abs = MathF.Abs(scale);
                if (abs > maxAbsScale) { maxAbsScale = abs; maxScale = scale; }
            }
            if (maxAbsScale < GroupMaxEps)
            {
                new Span<byte>(y, 210).Clear();
                continue;
            }
            float iscale = -128f / maxScale;
            *(ushort*)(y + 208) = Fp16.FromFloat(1 / iscale);
            sbyte* sc = (sbyte*)(y + 192);
            for (int ib = 0; ib < 16; ib++) sc[ib] = (sbyte)Math.Min(127, NearestInt(iscale * scales[ib]));
            for (int j = 0; j < 16; j++)
            {
                float d = Fp16.ToFloat(*(ushort*)(y + 208)) * sc[j];
                if (d == 0) continue;
                for (int ii = 0; ii < 16; ii++)
                {
                    int l = NearestInt(x[16 * j + ii] / d);
                    L[16 * j + ii] = (sbyte)(Math.Max(-32, Math.Min(31, l)) + 32);
                }
            }
            byte* ql = y;
            byte* qh = y + 128;
            for (int j = 0; j < 256; j += 128, ql += 64, qh += 32)
                for (int l = 0; l < 32; l++)
                {
                    int q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF, q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
                    ql[l] = (byte)(q1 | (q3 << 4));
                    ql[l + 32] = (byte)(q2 | (q4 << 4));
                    qh[l] = (byte)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
                }
        }
    }
}
