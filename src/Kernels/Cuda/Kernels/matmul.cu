// Prefill / vision-tower mat-mul: Y [tokens, rows] = X [tokens, cols] · Wᵀ, W [rows, cols] in its GGUF
// encoding, X and Y F32 (Y row t at y + t·y_stride). Shared-memory tiles of 64 weight rows × 64 tokens × 32
// columns: each k-step the block expands a 64×32 weight tile (quantized types: one 32-element group per thread
// of the first 64, the same group expansion as the mat-vec) and a 64×32 activation tile, then each of the 256
// threads accumulates a 4×4 patch of outputs in registers.
// Version 1: CUDA cores (FFMA), float accumulation; correct for any rows and tokens. The tensor-core version
// (mma on F16/BF16 tiles, integer mma for quantized weights) is the next step and is checked against this one.
#include "quant.cuh"

#define MM_TILE_ROWS 64
#define MM_TILE_TOKENS 64
#define MM_TILE_K 32
#define MM_THREADS 256

// Weight tile loaders: fill ws[k][r] (k < 32, r < 64; the +1 pads away bank conflicts) for rows r0 … r0+63,
// columns k0 … k0+31; rows past the end read as zero.
template <class Block>
struct QuantTile
{
    __device__ __forceinline__ static void load(const u8* __restrict__ w, int rows, int cols, int r0, int k0, float (*ws)[MM_TILE_ROWS + 1])
    {
        const int r = threadIdx.x;
        if (r < MM_TILE_ROWS)
        {
            float v[32];
            if (r0 + r < rows)
            {
                const long long rowBytes = (long long)(cols / Block::block_elems) * Block::block_bytes;
                Block::group(w + (r0 + r) * rowBytes, k0 / 32, v);
            }
            else
            {
#pragma unroll
                for (int e = 0; e < 32; e++) v[e] = 0.0f;
            }
#pragma unroll
            for (int e = 0; e < 32; e++) ws[e][r] = v[e];
        }
    }
};

template <int Kind> // 0 = F32, 1 = F16, 2 = BF16
struct FloatTile
{
    __device__ __forceinline__ static float read(const void* w, long long i)
    {
        if (Kind == 0) return ((const float*)w)[i];
        if (Kind == 1) return half_to_float(((const u16*)w)[i]);
        return bf16_to_float(((const u16*)w)[i]);
    }
    __device__ __forceinline__ static void load(const u8* __restrict__ w, int rows, int cols, int r0, int k0, float (*ws)[MM_TILE_ROWS + 1])
    {
        // 2048 elements, 8 per thread; consecutive threads read consecutive columns of a row (coalesced).
        for (int i = threadIdx.x; i < MM_TILE_ROWS * MM_TILE_K; i += MM_THREADS)
        {
            const int r = i / MM_TILE_K, k = i % MM_TILE_K;
            const int row = r0 + r, col = k0 + k;
            ws[k][r] = row < rows && col < cols ? read(w, (long long)row * cols + col) : 0.0f;
        }
    }
};

template <class Tile>
__device__ __forceinline__ void matmul_tiles(const u8* __restrict__ w, const float* __restrict__ x, float* __restrict__ y, int rows, int cols,
    int tokens, int y_stride)
{
    __shared__ float ws[MM_TILE_K][MM_TILE_ROWS + 1];
    __shared__ float xs[MM_TILE_K][MM_TILE_TOKENS + 1];
    const int r0 = blockIdx.x * MM_TILE_ROWS, t0 = blockIdx.y * MM_TILE_TOKENS;
    const int tr = (threadIdx.x % 16) * 4, tt = (threadIdx.x / 16) * 4; // this thread's 4 rows × 4 tokens
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = 0.0f;

    for (int k0 = 0; k0 < cols; k0 += MM_TILE_K)
    {
        Tile::load(w, rows, cols, r0, k0, ws);
        for (int i = threadIdx.x; i < MM_TILE_TOKENS * MM_TILE_K; i += MM_THREADS)
        {
            const int t = i / MM_TILE_K, k = i % MM_TILE_K;
            const int token = t0 + t, col = k0 + k;
            xs[k][t] = token < tokens && col < cols ? x[(long long)token * cols + col] : 0.0f;
        }
        __syncthreads();
#pragma unroll 8
        for (int k = 0; k < MM_TILE_K; k++)
        {
            float a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; i++) { a[i] = ws[k][tr + i]; b[i] = xs[k][tt + i]; }
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] += a[i] * b[j];
        }
        __syncthreads();
    }
#pragma unroll
    for (int j = 0; j < 4; j++)
    {
        const int token = t0 + tt + j;
        if (token >= tokens) continue;
#pragma unroll
        for (int i = 0; i < 4; i++)
            if (r0 + tr + i < rows) y[(long long)token * y_stride + r0 + tr + i] = acc[i][j];
    }
}

extern "C" __global__ void matmul_f32(const u8* __restrict__ w, const float* __restrict__ x, float* __restrict__ y, int rows, int cols, int tokens, int y_stride)
{
    matmul_tiles<FloatTile<0>>(w, x, y, rows, cols, tokens, y_stride);
}

extern "C" __global__ void matmul_f16(const u8* __restrict__ w, const float* __restrict__ x, float* __restrict__ y, int rows, int cols, int tokens, int y_stride)
{
    matmul_tiles<FloatTile<1>>(w, x, y, rows, cols, tokens, y_stride);
}

extern "C" __global__ void matmul_bf16(const u8* __restrict__ w, const float* __restrict__ x, float* __restrict__ y, int rows, int cols, int tokens, int y_stride)
{
    matmul_tiles<FloatTile<2>>(w, x, y, rows, cols, tokens, y_stride);
}

extern "C" __global__ void matmul_q8_0(const u8* __restrict__ w, const float* __restrict__ x, float* __restrict__ y, int rows, int cols, int tokens, int y_stride)
{
    matmul_tiles<QuantTile<BlockQ8_0>>(w, x, y, rows, cols, tokens, y_stride);
}

extern "C" __global__ void matmul_q4_0(const u8* __restrict__ w, const float* __restrict__ x, float* __restrict__ y, int rows, int cols, int tokens, int y_stride)
{
    matmul_tiles<QuantTile<BlockQ4_0>>(w, x, y, rows, cols, tokens, y_stride);
}

extern "C" __global__ void matmul_q5_0(const u8* __restrict__ w, const float* __restrict__ x, float* __restrict__ y, int rows, int cols, int tokens, int y_stride)
{
    matmul_tiles<QuantTile<BlockQ5_0>>(w, x, y, rows, cols, tokens, y_stride);
}

extern "C" __global__ void matmul_q4_k(const u8* __restrict__ w, const float* __restrict__ x, float* __restrict__ y, int rows, int cols, int tokens, int y_stride)
{
    matmul_tiles<QuantTile<BlockQ4_K>>(w, x, y, rows, cols, tokens, y_stride);
}

extern "C" __global__ void matmul_q6_k(const u8* __restrict__ w, const float* __restrict__ x, float* __restrict__ y, int rows, int cols, int tokens, int y_stride)
{
    matmul_tiles<QuantTile<BlockQ6_K>>(w, x, y, rows, cols, tokens, y_stride);
}

extern "C" __global__ void matmul_q4_1(const u8* __restrict__ w, const float* __restrict__ x, float* __restrict__ y, int rows, int cols, int tokens, int y_stride)
{
    matmul_tiles<QuantTile<BlockQ4_1>>(w, x, y, rows, cols, tokens, y_stride);
}

extern "C" __global__ void matmul_q5_1(const u8* __restrict__ w, const float* __restrict__ x, float* __restrict__ y, int rows, int cols, int tokens, int y_stride)
{
    matmul_tiles<QuantTile<BlockQ5_1>>(w, x, y, rows, cols, tokens, y_stride);
}

extern "C" __global__ void matmul_iq4_nl(const u8* __restrict__ w, const float* __restrict__ x, float* __restrict__ y, int rows, int cols, int tokens, int y_stride)
{
    matmul_tiles<QuantTile<BlockIQ4_NL>>(w, x, y, rows, cols, tokens, y_stride);
}

extern "C" __global__ void matmul_q5_k(const u8* __restrict__ w, const float* __restrict__ x, float* __restrict__ y, int rows, int cols, int tokens, int y_stride)
{
    matmul_tiles<QuantTile<BlockQ5_K>>(w, x, y, rows, cols, tokens, y_stride);
}

extern "C" __global__ void matmul_q3_k(const u8* __restrict__ w, const float* __restrict__ x, float* __restrict__ y, int rows, int cols, int tokens, int y_stride)
{
    matmul_tiles<QuantTile<BlockQ3_K>>(w, x, y, rows, cols, tokens, y_stride);
}

extern "C" __global__ void matmul_q2_k(const u8* __restrict__ w, const float* __restrict__ x, float* __restrict__ y, int rows, int cols, int tokens, int y_stride)
{
    matmul_tiles<QuantTile<BlockQ2_K>>(w, x, y, rows, cols, tokens, y_stride);
}
