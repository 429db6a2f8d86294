// Block layouts of the GGUF weight types (ggml's, byte for byte; see src/Kernels/Cpu/Quant) as "groups" of 32
// consecutive elements: every type expands group g of a row into 32 floats, so one mat-vec and one row
// gather serve all types. Values are exactly the CPU Dequantize's: products that the CPU rounds separately are
// written with __fmul_rn so the device compiler cannot fuse them into an FMA.
#pragma once
#include "common.cuh"

// Q8_0: 34-byte blocks of 32: f16 scale d, 32 × int8.
struct BlockQ8_0
{
    static constexpr int block_bytes = 34, block_elems = 32;
    __device__ __forceinline__ static void group(const u8* row, int g, float* v)
    {
        const u8* b = row + g * block_bytes;
        const float d = half_to_float(load_u16(b));
        #pragma unroll
        for (int e = 0; e < 32; e++) v[e] = (float)(i8)b[2 + e] * d;
    }
};

// Q4_0: 18-byte blocks of 32: d, 16 bytes of nibbles (low nibbles = elements 0..15, high = 16..31), value (q - 8)·d.
struct BlockQ4_0
{
    static constexpr int block_bytes = 18, block_elems = 32;
    __device__ __forceinline__ static void group(const u8* row, int g, float* v)
    {
        const u8* b = row + g * block_bytes;
        const float d = half_to_float(load_u16(b));
        #pragma unroll
        for (int e = 0; e < 16; e++)
        {
            const int q = b[2 + e];
            v[e] = (float)((q & 15) - 8) * d;
            v[e + 16] = (float)((q >> 4) - 8) * d;
        }
    }
};

// Q5_0: 22-byte blocks of 32: d, 32 high bits (bit e belongs to element e), 16 bytes of nibbles; value (q - 16)·d.
struct BlockQ5_0
{
    static constexpr int block_bytes = 22, block_elems = 32;
    __device__ __forceinline__ static void group(const u8* row, int g, float* v)
    {
        const u8* b = row + g * block_bytes;
        const float d = half_to_float(load_u16(b));
        const u32 qh = load_u32(b + 2);
        #pragma unroll
        for (int e = 0; e < 16; e++)
        {
            const int q = b[6 + e];
            const int h0 = (int)((qh >> e) & 1) << 4, h1 = (int)((qh >> (e + 16)) & 1) << 4;
            v[e] = (float)(((q & 15) | h0) - 16) * d;
            v[e + 16] = (float)(((q >> 4) | h1) - 16) * d;
        }
    }
};

// 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K super-block (ggml's get_scale_min_k4).
__device__ __forceinline__ void scale_min_k4(int j, const u8* s, int* scale, int* min)
{
    if (j < 4)
    {
        *scale = s[j] & 63;
        *min = s[j + 4] & 63;
    }
    else
    {
        *scale = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
        *min = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

// Q4_K: 144-byte super-blocks of 256: d, dmin, 12 bytes of packed 6-bit scales/mins, 128 bytes of nibbles.
// Sub-block j (32 elements) uses the low (j even) or high (j odd) nibbles of bytes 32·(j/2) … +31;
// value d·scale_j·q − dmin·min_j.
struct BlockQ4_K
{
    static constexpr int block_bytes = 144, block_elems = 256;
    __device__ __forceinline__ static void group(const u8* row, int g, float* v)
    {
        const u8* b = row + (g >> 3) * block_bytes;
        const int j = g & 7;
        const float d = half_to_float(load_u16(b)), dmin = half_to_float(load_u16(b + 2));
        int sc, m;
        scale_min_k4(j, b + 4, &sc, &m);
        const float d1 = d * (float)sc, m1 = dmin * (float)m;
        const u8* q = b + 16 + (j >> 1) * 32;
        const int shift = (j & 1) * 4;
        #pragma unroll
        for (int e = 0; e < 32; e++) v[e] = __fmul_rn(d1, (float)((q[e] >> shift) & 15)) - m1;
    }
};

// Q6_K: 210-byte super-blocks of 256: 128 bytes of low nibbles (ql), 64 bytes of 2-bit highs (qh), 16 int8
// scales, f16 d. Group j = 4·half + k covers elements 128·half + 32·k … +31: low nibble of
// ql[64·half + 32·(k&1) + l] (high nibble when k ≥ 2), bits 2k..2k+1 of qh[32·half + l], scale
// sc[8·half + 2k + l/16]; value d·scale·(q − 32).
struct BlockQ6_K
{
    static constexpr int block_bytes = 210, block_elems = 256;
    __device__ __forceinline__ static void group(const u8* row, int g, float* v)
    {
        const u8* b = row + (g >> 3) * block_bytes;
        const int j = g & 7, half = j >> 2, k = j & 3;
        const float d = half_to_float(load_u16(b + 208));
        const u8* ql = b + 64 * half + 32 * (k & 1);
        const u8* qh = b + 128 + 32 * half;
        const i8* sc = (const i8*)(b + 192 + 8 * half + 2 * k);
        const int lowShift = (k >> 1) * 4, highShift = 2 * k;
        #pragma unroll
        for (int e = 0; e < 32; e++)
        {
            const int q = (((ql[e] >> lowShift) & 15) | (((qh[e] >> highShift) & 3) << 4)) - 32;
            v[e] = d * (float)sc[e >> 4] * (float)q;
        }
    }
};

// Q4_1: 20-byte blocks of 32: d, m, 16 bytes of nibbles; value q·d + m.
struct BlockQ4_1
{
    static constexpr int block_bytes = 20, block_elems = 32;
    __device__ __forceinline__ static void group(const u8* row, int g, float* v)
    {
        const u8* b = row + g * block_bytes;
        const float d = half_to_float(load_u16(b)), m = half_to_float(load_u16(b + 2));
#pragma unroll
        for (int e = 0; e < 16; e++)
        {
            const int q = b[4 + e];
            v[e] = __fmul_rn((float)(q & 15), d) + m;
            v[e + 16] = __fmul_rn((float)(q >> 4), d) + m;
        }
    }
};

// Q5_1: 24-byte blocks of 32: d, m, 32 high bits, 16 bytes of nibbles; value q·d + m.
struct BlockQ5_1
{
    static constexpr int block_bytes = 24, block_elems = 32;
    __device__ __forceinline__ static void group(const u8* row, int g, float* v)
    {
        const u8* b = row + g * block_bytes;
        const float d = half_to_float(load_u16(b)), m = half_to_float(load_u16(b + 2));
        const u32 qh = load_u32(b + 4);
#pragma unroll
        for (int e = 0; e < 16; e++)
        {
            const int q = b[8 + e];
            const int h0 = (int)((qh >> e) & 1) << 4, h1 = (int)((qh >> (e + 16)) & 1) << 4;
            v[e] = __fmul_rn((float)((q & 15) | h0), d) + m;
            v[e + 16] = __fmul_rn((float)((q >> 4) | h1), d) + m;
        }
    }
};

// IQ4_NL: 18-byte blocks of 32 like Q4_0, but each nibble indexes ggml's non-linear table kvalues_iq4nl.
__constant__ const i8 iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

struct BlockIQ4_NL
{
    static constexpr int block_bytes = 18, block_elems = 32;
    __device__ __forceinline__ static void group(const u8* row, int g, float* v)
    {
        const u8* b = row + g * block_bytes;
        const float d = half_to_float(load_u16(b));
#pragma unroll
        for (int e = 0; e < 16; e++)
        {
            const int q = b[2 + e];
            v[e] = d * (float)iq4nl_values[q & 15];
            v[e + 16] = d * (float)iq4nl_values[q >> 4];
        }
    }
};

// Q5_K: 176-byte super-blocks of 256: d, dmin, 12 bytes of scales/mins (as Q4_K), 32 bytes of high bits, 128 bytes
// of nibbles. Sub-block j: nibbles as Q4_K, high bit j of qh[l]; value d·scale_j·q − dmin·min_j.
struct BlockQ5_K
{
    static constexpr int block_bytes = 176, block_elems = 256;
    __device__ __forceinline__ static void group(const u8* row, int g, float* v)
    {
        const u8* b = row + (g >> 3) * block_bytes;
        const int j = g & 7;
        const float d = half_to_float(load_u16(b)), dmin = half_to_float(load_u16(b + 2));
        int sc, m;
        scale_min_k4(j, b + 4, &sc, &m);
        const float d1 = d * (float)sc, m1 = dmin * (float)m;
        const u8* qh = b + 16;
        const u8* q = b + 48 + (j >> 1) * 32;
        const int shift = (j & 1) * 4;
#pragma unroll
        for (int e = 0; e < 32; e++)
        {
            const int value = ((q[e] >> shift) & 15) + (((qh[e] >> j) & 1) << 4);
            v[e] = __fmul_rn(d1, (float)value) - m1;
        }
    }
};

// Q3_K: 110-byte super-blocks of 256: 32 bytes of high-bit masks (hmask), 64 bytes of 2-bit values, 12 bytes
// of packed 6-bit scales, f16 d. Group j = 4·half + s covers elements 128·half + 32·s … +31: bits 2s..2s+1 of
// qs[32·half + l], high bit j of hmask[l] (clear means −4), scale 2j + (l ≥ 16); value d·(scale − 32)·q.
struct BlockQ3_K
{
    static constexpr int block_bytes = 110, block_elems = 256;
    __device__ __forceinline__ static int scale(const u8* s, int i)
    {
        const int low = i < 8 ? (s[i] & 15) : (s[i - 8] >> 4);
        const int high = (s[8 + (i & 3)] >> (2 * (i >> 2))) & 3;
        return (low | (high << 4)) - 32;
    }
    __device__ __forceinline__ static void group(const u8* row, int g, float* v)
    {
        const u8* b = row + (g >> 3) * block_bytes;
        const int j = g & 7, half = j >> 2, shift = 2 * (j & 3);
        const float d = half_to_float(load_u16(b + 108));
        const float dl0 = d * (float)scale(b + 96, 2 * j), dl1 = d * (float)scale(b + 96, 2 * j + 1);
        const u8* q = b + 32 + 32 * half;
#pragma unroll
        for (int e = 0; e < 32; e++)
        {
            const int value = ((q[e] >> shift) & 3) - (((b[e] >> j) & 1) ? 0 : 4);
            v[e] = (e < 16 ? dl0 : dl1) * (float)value;
        }
    }
};

// Q2_K: 84-byte super-blocks of 256: 16 bytes of 4-bit scale | 4-bit min, 64 bytes of 2-bit values, d, dmin.
// Group j = 4·half + s as Q3_K; value d·(sc & 15)·q − dmin·(sc >> 4), sc = scales[2j + (l ≥ 16)].
struct BlockQ2_K
{
    static constexpr int block_bytes = 84, block_elems = 256;
    __device__ __forceinline__ static void group(const u8* row, int g, float* v)
    {
        const u8* b = row + (g >> 3) * block_bytes;
        const int j = g & 7, half = j >> 2, shift = 2 * (j & 3);
        const float d = half_to_float(load_u16(b + 80)), dmin = half_to_float(load_u16(b + 82));
        const int s0 = b[2 * j], s1 = b[2 * j + 1];
        const float dl0 = d * (float)(s0 & 15), ml0 = dmin * (float)(s0 >> 4);
        const float dl1 = d * (float)(s1 & 15), ml1 = dmin * (float)(s1 >> 4);
        const u8* q = b + 16 + 32 * half;
#pragma unroll
        for (int e = 0; e < 32; e++)
        {
            const float qv = (float)((q[e] >> shift) & 3);
            v[e] = e < 16 ? __fmul_rn(dl0, qv) - ml0 : __fmul_rn(dl1, qv) - ml1;
        }
    }
};
