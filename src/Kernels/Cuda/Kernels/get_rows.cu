// Row gather with dequantization (token embedding lookup, and the plain dequantization of a matrix):
// dst[t, :] = float(W[ids[t], :]) for W [*, cols] in its GGUF encoding. One block per gathered row.
// Bit-exact with the CPU Dequantize (see quant.cuh).
#include "quant.cuh"

template <class Block>
__device__ __forceinline__ void get_rows_blocks(const u8* __restrict__ w, const int* __restrict__ ids, float* __restrict__ dst, int cols)
{
    const int t = blockIdx.x;
    const long long rowBytes = (long long)(cols / Block::block_elems) * Block::block_bytes;
    const u8* row = w + ids[t] * rowBytes;
    float* out = dst + (long long)t * cols;
    for (int g = threadIdx.x; g < cols / 32; g += blockDim.x)
    {
        float v[32];
        Block::group(row, g, v);
        #pragma unroll
        for (int e = 0; e < 32; e++) out[g * 32 + e] = v[e];
    }
}

extern "C" __global__ void get_rows_q8_0(const u8* __restrict__ w, const int* __restrict__ ids, float* __restrict__ dst, int cols)
{
    get_rows_blocks<BlockQ8_0>(w, ids, dst, cols);
}

extern "C" __global__ void get_rows_q4_0(const u8* __restrict__ w, const int* __restrict__ ids, float* __restrict__ dst, int cols)
{
    get_rows_blocks<BlockQ4_0>(w, ids, dst, cols);
}

extern "C" __global__ void get_rows_q5_0(const u8* __restrict__ w, const int* __restrict__ ids, float* __restrict__ dst, int cols)
{
    get_rows_blocks<BlockQ5_0>(w, ids, dst, cols);
}

extern "C" __global__ void get_rows_q4_k(const u8* __restrict__ w, const int* __restrict__ ids, float* __restrict__ dst, int cols)
{
    get_rows_blocks<BlockQ4_K>(w, ids, dst, cols);
}

extern "C" __global__ void get_rows_q6_k(const u8* __restrict__ w, const int* __restrict__ ids, float* __restrict__ dst, int cols)
{
    get_rows_blocks<BlockQ6_K>(w, ids, dst, cols);
}

extern "C" __global__ void get_rows_q4_1(const u8* __restrict__ w, const int* __restrict__ ids, float* __restrict__ dst, int cols)
{
    get_rows_blocks<BlockQ4_1>(w, ids, dst, cols);
}

extern "C" __global__ void get_rows_q5_1(const u8* __restrict__ w, const int* __restrict__ ids, float* __restrict__ dst, int cols)
{
    get_rows_blocks<BlockQ5_1>(w, ids, dst, cols);
}

extern "C" __global__ void get_rows_iq4_nl(const u8* __restrict__ w, const int* __restrict__ ids, float* __restrict__ dst, int cols)
{
    get_rows_blocks<BlockIQ4_NL>(w, ids, dst, cols);
}

extern "C" __global__ void get_rows_q5_k(const u8* __restrict__ w, const int* __restrict__ ids, float* __restrict__ dst, int cols)
{
    get_rows_blocks<BlockQ5_K>(w, ids, dst, cols);
}

extern "C" __global__ void get_rows_q3_k(const u8* __restrict__ w, const int* __restrict__ ids, float* __restrict__ dst, int cols)
{
    get_rows_blocks<BlockQ3_K>(w, ids, dst, cols);
}

extern "C" __global__ void get_rows_q2_k(const u8* __restrict__ w, const int* __restrict__ ids, float* __restrict__ dst, int cols)
{
    get_rows_blocks<BlockQ2_K>(w, ids, dst, cols);
}

extern "C" __global__ void get_rows_f32(const float* __restrict__ w, const int* __restrict__ ids, float* __restrict__ dst, int cols)
{
    const float* row = w + (long long)ids[blockIdx.x] * cols;
    float* out = dst + (long long)blockIdx.x * cols;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) out[c] = row[c];
}

extern "C" __global__ void get_rows_f16(const u16* __restrict__ w, const int* __restrict__ ids, float* __restrict__ dst, int cols)
{
    const u16* row = w + (long long)ids[blockIdx.x] * cols;
    float* out = dst + (long long)blockIdx.x * cols;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) out[c] = half_to_float(row[c]);
}

extern "C" __global__ void get_rows_bf16(const u16* __restrict__ w, const int* __restrict__ ids, float* __restrict__ dst, int cols)
{
    const u16* row = w + (long long)ids[blockIdx.x] * cols;
    float* out = dst + (long long)blockIdx.x * cols;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) out[c] = bf16_to_float(row[c]);
}
