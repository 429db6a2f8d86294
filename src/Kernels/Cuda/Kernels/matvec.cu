// Decode mat-vec: y[r] = Σ_c W[r, c] · x[c] for one activation row x [cols] (F32) and W [rows, cols] in its
// GGUF encoding, expanded to float on the fly. One warp per output row, 4 rows per 128-thread block; lane l
// takes the 32-element groups l, l+32, … of the row (adjacent lanes read adjacent blocks, so the warp's loads
// are contiguous) and the warp reduces with shuffles. The activation stays F32 (no Q8 rounding of x as the CPU
// path does): results agree with the dequantized row's float dot product.
// Version 1: correct and simple; integer dot products (dp4a on Q8_1 activations) come with device tuning.
#include "quant.cuh"

#define MATVEC_ROWS_PER_BLOCK 4

template <class Block>
__device__ __forceinline__ void matvec_blocks(const u8* __restrict__ w, const float* __restrict__ x, float* __restrict__ y, int rows, int cols)
{
    const int lane = threadIdx.x % WARP_SIZE;
    const int row = blockIdx.x * MATVEC_ROWS_PER_BLOCK + threadIdx.x / WARP_SIZE;
    if (row >= rows) return; // a whole warp leaves together
    const long long rowBytes = (long long)(cols / Block::block_elems) * Block::block_bytes;
    const u8* wr = w + row * rowBytes;
    const int groups = cols / 32;
    float sum = 0.0f;
    for (int g = lane; g < groups; g += WARP_SIZE)
    {
        float v[32];
        Block::group(wr, g, v);
        const float4* xv = (const float4*)(x + g * 32);
        #pragma unroll
        for (int i = 0; i < 8; i++)
        {
            const float4 a = xv[i];
            sum += v[4 * i] * a.x + v[4 * i + 1] * a.y + v[4 * i + 2] * a.z + v[4 * i + 3] * a.w;
        }
    }
    sum = warp_sum(sum);
    if (lane == 0) y[row] = sum;
}

extern "C" __global__ void matvec_q8_0(const u8* __restrict__ w, const float* __restrict__ x, float* __restrict__ y, int rows, int cols)
{
    matvec_blocks<BlockQ8_0>(w, x, y, rows, cols);
}

extern "C" __global__ void matvec_q4_0(const u8* __restrict__ w, const float* __restrict__ x, float* __restrict__ y, int rows, int cols)
{
    matvec_blocks<BlockQ4_0>(w, x, y, rows, cols);
}

extern "C" __global__ void matvec_q5_0(const u8* __restrict__ w, const float* __restrict__ x, float* __restrict__ y, int rows, int cols)
{
    matvec_blocks<BlockQ5_0>(w, x, y, rows, cols);
}

extern "C" __global__ void matvec_q4_k(const u8* __restrict__ w, const float* __restrict__ x, float* __restrict__ y, int rows, int cols)
{
    matvec_blocks<BlockQ4_K>(w, x, y, rows, cols);
}

extern "C" __global__ void matvec_q6_k(const u8* __restrict__ w, const float* __restrict__ x, float* __restrict__ y, int rows, int cols)
{
    matvec_blocks<BlockQ6_K>(w, x, y, rows, cols);
}

extern "C" __global__ void matvec_q4_1(const u8* __restrict__ w, const float* __restrict__ x, float* __restrict__ y, int rows, int cols)
{
    matvec_blocks<BlockQ4_1>(w, x, y, rows, cols);
}

extern "C" __global__ void matvec_q5_1(const u8* __restrict__ w, const float* __restrict__ x, float* __restrict__ y, int rows, int cols)
{
    matvec_blocks<BlockQ5_1>(w, x, y, rows, cols);
}

extern "C" __global__ void matvec_iq4_nl(const u8* __restrict__ w, const float* __restrict__ x, float* __restrict__ y, int rows, int cols)
{
    matvec_blocks<BlockIQ4_NL>(w, x, y, rows, cols);
}

extern "C" __global__ void matvec_q5_k(const u8* __restrict__ w, const float* __restrict__ x, float* __restrict__ y, int rows, int cols)
{
    matvec_blocks<BlockQ5_K>(w, x, y, rows, cols);
}

extern "C" __global__ void matvec_q3_k(const u8* __restrict__ w, const float* __restrict__ x, float* __restrict__ y, int rows, int cols)
{
    matvec_blocks<BlockQ3_K>(w, x, y, rows, cols);
}

extern "C" __global__ void matvec_q2_k(const u8* __restrict__ w, const float* __restrict__ x, float* __restrict__ y, int rows, int cols)
{
    matvec_blocks<BlockQ2_K>(w, x, y, rows, cols);
}

// F32 weights: float4 loads when each row is 16-byte aligned (cols % 4 == 0), else one float at a time.
extern "C" __global__ void matvec_f32(const float* __restrict__ w, const float* __restrict__ x, float* __restrict__ y, int rows, int cols)
{
    const int lane = threadIdx.x % WARP_SIZE;
    const int row = blockIdx.x * MATVEC_ROWS_PER_BLOCK + threadIdx.x / WARP_SIZE;
    if (row >= rows) return;
    const float* wr = w + (long long)row * cols;
    float sum = 0.0f;
    if (cols % 4 == 0)
    {
        const float4* w4 = (const float4*)wr;
        const float4* x4 = (const float4*)x;
        for (int i = lane; i < cols / 4; i += WARP_SIZE)
        {
            const float4 a = w4[i], b = x4[i];
            sum += a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w;
        }
    }
    else
    {
        for (int i = lane; i < cols; i += WARP_SIZE) sum += wr[i] * x[i];
    }
    sum = warp_sum(sum);
    if (lane == 0) y[row] = sum;
}

// 16-bit float weights (F16, BF16): 8 values per 16-byte load when cols % 8 == 0, else one at a time.
template <bool Bf16>
__device__ __forceinline__ float to_f32(u16 h) { return Bf16 ? bf16_to_float(h) : half_to_float(h); }

template <bool Bf16>
__device__ __forceinline__ void matvec_16bit(const u16* __restrict__ w, const float* __restrict__ x, float* __restrict__ y, int rows, int cols)
{
    const int lane = threadIdx.x % WARP_SIZE;
    const int row = blockIdx.x * MATVEC_ROWS_PER_BLOCK + threadIdx.x / WARP_SIZE;
    if (row >= rows) return;
    const u16* wr = w + (long long)row * cols;
    float sum = 0.0f;
    if (cols % 8 == 0)
    {
        const uint4* w8 = (const uint4*)wr;
        for (int i = lane; i < cols / 8; i += WARP_SIZE)
        {
            const uint4 p = w8[i];
            const float4 x0 = ((const float4*)x)[2 * i], x1 = ((const float4*)x)[2 * i + 1];
            sum += to_f32<Bf16>((u16)(p.x & 0xffff)) * x0.x + to_f32<Bf16>((u16)(p.x >> 16)) * x0.y
                 + to_f32<Bf16>((u16)(p.y & 0xffff)) * x0.z + to_f32<Bf16>((u16)(p.y >> 16)) * x0.w
                 + to_f32<Bf16>((u16)(p.z & 0xffff)) * x1.x + to_f32<Bf16>((u16)(p.z >> 16)) * x1.y
                 + to_f32<Bf16>((u16)(p.w & 0xffff)) * x1.z + to_f32<Bf16>((u16)(p.w >> 16)) * x1.w;
        }
    }
    else
    {
        for (int i = lane; i < cols; i += WARP_SIZE) sum += to_f32<Bf16>(wr[i]) * x[i];
    }
    sum = warp_sum(sum);
    if (lane == 0) y[row] = sum;
}

extern "C" __global__ void matvec_f16(const u16* __restrict__ w, const float* __restrict__ x, float* __restrict__ y, int rows, int cols)
{
    matvec_16bit<false>(w, x, y, rows, cols);
}

extern "C" __global__ void matvec_bf16(const u16* __restrict__ w, const float* __restrict__ x, float* __restrict__ y, int rows, int cols)
{
    matvec_16bit<true>(w, x, y, rows, cols);
}
