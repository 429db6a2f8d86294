// Prefill / vision-tower mat-mul on the tensor cores for 16-bit float weights: Y [tokens, rows] = X · Wᵀ,
// W [rows, cols] F16 or BF16, X [tokens, cols] F32 rounded to the weight's 16-bit type as it is staged (as
// ggml does for F16 weights), F32 accumulation, Y row t at y + t·y_stride. Block tile 64 rows × 64 tokens,
// k-step 32; 4 warps in a 2×2 grid, each 32 rows × 32 tokens = 2 × 4 mma.m16n8k16 per 16 columns.
// Version 1: plain shared-memory staging (no cp.async, no ldmatrix, no pipelining): correct first, then tuned
// on the device against matmul_f16/matmul_bf16 (matmul.cu) and the CPU.
#include "common.cuh"

#define TC_ROWS 64
#define TC_TOKENS 64
#define TC_K 32
#define TC_PAD 8 // halves of padding per shared row: spreads the fragment loads over the banks
#define TC_THREADS 128

template <bool Bf16>
__device__ __forceinline__ void matmul_tc(const u16* __restrict__ w, const float* __restrict__ x, float* __restrict__ y, int rows, int cols,
    int tokens, int y_stride)
{
    __shared__ __attribute__((aligned(16))) u16 ws[TC_ROWS][TC_K + TC_PAD];
    __shared__ __attribute__((aligned(16))) u16 xs[TC_TOKENS][TC_K + TC_PAD];
    const int r0 = blockIdx.x * TC_ROWS, t0 = blockIdx.y * TC_TOKENS;
    const int lane = threadIdx.x % WARP_SIZE, warp = threadIdx.x / WARP_SIZE;
    const int g = lane / 4, t = lane % 4;
    const int wr = (warp % 2) * 32, wt = (warp / 2) * 32; // the warp's rows and tokens inside the tile

    float acc[2][4][4]; // [m-tile][n-tile][c]
#pragma unroll
    for (int m = 0; m < 2; m++)
#pragma unroll
        for (int n = 0; n < 4; n++)
#pragma unroll
            for (int i = 0; i < 4; i++) acc[m][n][i] = 0.0f;

    for (int k0 = 0; k0 < cols; k0 += TC_K)
    {
        // Stage 64×32 weights and 64×32 activations; consecutive threads take consecutive columns.
        for (int i = threadIdx.x; i < TC_ROWS * TC_K; i += TC_THREADS)
        {
            const int r = i / TC_K, k = i % TC_K;
            ws[r][k] = r0 + r < rows && k0 + k < cols ? w[(long long)(r0 + r) * cols + k0 + k] : (u16)0;
            const float v = t0 + r < tokens && k0 + k < cols ? x[(long long)(t0 + r) * cols + k0 + k] : 0.0f;
            xs[r][k] = Bf16 ? float_to_bf16(v) : float_to_half(v);
        }
        __syncthreads();
#pragma unroll
        for (int ks = 0; ks < TC_K; ks += 16)
        {
            u32 a[2][4], b[4][2];
#pragma unroll
            for (int m = 0; m < 2; m++)
            {
                const int row = wr + m * 16 + g;
                a[m][0] = *(const u32*)&ws[row][ks + 2 * t];
                a[m][1] = *(const u32*)&ws[row + 8][ks + 2 * t];
                a[m][2] = *(const u32*)&ws[row][ks + 2 * t + 8];
                a[m][3] = *(const u32*)&ws[row + 8][ks + 2 * t + 8];
            }
#pragma unroll
            for (int n = 0; n < 4; n++)
            {
                const int token = wt + n * 8 + g;
                b[n][0] = *(const u32*)&xs[token][ks + 2 * t];
                b[n][1] = *(const u32*)&xs[token][ks + 2 * t + 8];
            }
#pragma unroll
            for (int m = 0; m < 2; m++)
#pragma unroll
                for (int n = 0; n < 4; n++) mma_m16n8k16<Bf16>(acc[m][n], a[m], b[n]);
        }
        __syncthreads();
    }

    // c[0], c[1] = D[g][2t, 2t+1], c[2], c[3] = D[g+8][2t, 2t+1]; D rows are weight rows, columns tokens.
#pragma unroll
    for (int m = 0; m < 2; m++)
#pragma unroll
        for (int n = 0; n < 4; n++)
#pragma unroll
            for (int i = 0; i < 4; i++)
            {
                const int row = r0 + wr + m * 16 + g + (i >= 2 ? 8 : 0);
                const int token = t0 + wt + n * 8 + 2 * t + (i & 1);
                if (row < rows && token < tokens) y[(long long)token * y_stride + row] = acc[m][n][i];
            }
}

extern "C" __global__ void matmul_tc_f16(const u16* __restrict__ w, const float* __restrict__ x, float* __restrict__ y, int rows, int cols,
    int tokens, int y_stride)
{
    matmul_tc<false>(w, x, y, rows, cols, tokens, y_stride);
}

extern "C" __global__ void matmul_tc_bf16(const u16* __restrict__ w, const float* __restrict__ x, float* __restrict__ y, int rows, int cols,
    int tokens, int y_stride)
{
    matmul_tc<true>(w, x, y, rows, cols, tokens, y_stride);
}

// ---- Version 2: both operands 16-bit in global memory, 128 × 128 tiles, cp.async double buffering ----
// The activations are rounded to the weight's 16-bit type once (round_rows_f16 / round_rows_bf16 below) instead of
// per tile, so every operand moves as 16-byte chunks straight into shared memory (cp.async), two k-steps in flight:
// the copies of step s + 1 run while the tensor cores work on step s. Block tile 128 rows × 128 tokens, k-step 32;
// 8 warps in a 2 (rows) × 4 (tokens) grid, each 64 rows × 32 tokens = 4 × 4 mma.m16n8k16 per 16 columns (twice the
// mma per fragment load of version 1). Requirements (checked by the host): cols a multiple of 8, W and X 16-byte
// aligned. Same products in the same k order as version 1 (zero-filled past the edges), so the same results.

#define TC2_ROWS 128
#define TC2_TOKENS 128
#define TC2_THREADS 256
#define TC2_CHUNKS (TC_K / 8) // 16-byte chunks per staged row

// Stages columns k0 … k0 + 31 of 128 rows of m [count, cols] (16-bit) starting at row first into tile[128][TC_K + TC_PAD].
__device__ __forceinline__ void tc2_stage(u16 (*tile)[TC_K + TC_PAD], const u16* __restrict__ m, int first, int count, int cols, int k0)
{
#pragma unroll
    for (int i = 0; i < TC2_ROWS * TC2_CHUNKS / TC2_THREADS; i++)
    {
        const int c = threadIdx.x + i * TC2_THREADS;
        const int r = c / TC2_CHUNKS, k = k0 + (c % TC2_CHUNKS) * 8;
        const bool valid = first + r < count && k < cols; // cols % 8 == 0: a chunk is wholly inside or outside
        const u16* source = valid ? m + (long long)(first + r) * cols + k : m;
        cp_async16(&tile[r][(c % TC2_CHUNKS) * 8], source, valid);
    }
}

template <bool Bf16>
__device__ __forceinline__ void matmul_tc2(const u16* __restrict__ w, const u16* __restrict__ x, float* __restrict__ y, int rows, int cols,
    int tokens, int y_stride)
{
    __shared__ __attribute__((aligned(16))) u16 ws[2][TC2_ROWS][TC_K + TC_PAD];
    __shared__ __attribute__((aligned(16))) u16 xs[2][TC2_TOKENS][TC_K + TC_PAD];
    const int r0 = blockIdx.x * TC2_ROWS, t0 = blockIdx.y * TC2_TOKENS;
    const int lane = threadIdx.x % WARP_SIZE, warp = threadIdx.x / WARP_SIZE;
    const int g = lane / 4, t = lane % 4;
    const int wr = (warp % 2) * 64, wt = (warp / 2) * 32; // the warp's rows and tokens inside the tile

    float acc[4][4][4]; // [m-tile][n-tile][c]
#pragma unroll
    for (int m = 0; m < 4; m++)
#pragma unroll
        for (int n = 0; n < 4; n++)
#pragma unroll
            for (int i = 0; i < 4; i++) acc[m][n][i] = 0.0f;

    const int steps = (cols + TC_K - 1) / TC_K;
    tc2_stage(ws[0], w, r0, rows, cols, 0);
    tc2_stage(xs[0], x, t0, tokens, cols, 0);
    cp_async_commit();
    for (int s = 0; s < steps; s++)
    {
        const int buffer = s & 1;
        if (s + 1 < steps)
        {
            // Buffer s + 1 was last read in step s − 1, which ended with a barrier.
            tc2_stage(ws[buffer ^ 1], w, r0, rows, cols, (s + 1) * TC_K);
            tc2_stage(xs[buffer ^ 1], x, t0, tokens, cols, (s + 1) * TC_K);
            cp_async_commit();
            cp_async_wait<1>(); // step s's copies have landed; step s + 1's may still fly
        }
        else
            cp_async_wait<0>();
        __syncthreads();
#pragma unroll
        for (int ks = 0; ks < TC_K; ks += 16)
        {
            u32 a[4][4], b[4][2];
#pragma unroll
            for (int m = 0; m < 4; m++)
            {
                const int row = wr + m * 16 + g;
                a[m][0] = *(const u32*)&ws[buffer][row][ks + 2 * t];
                a[m][1] = *(const u32*)&ws[buffer][row + 8][ks + 2 * t];
                a[m][2] = *(const u32*)&ws[buffer][row][ks + 2 * t + 8];
                a[m][3] = *(const u32*)&ws[buffer][row + 8][ks + 2 * t + 8];
            }
#pragma unroll
            for (int n = 0; n < 4; n++)
            {
                const int token = wt + n * 8 + g;
                b[n][0] = *(const u32*)&xs[buffer][token][ks + 2 * t];
                b[n][1] = *(const u32*)&xs[buffer][token][ks + 2 * t + 8];
            }
#pragma unroll
            for (int m = 0; m < 4; m++)
#pragma unroll
                for (int n = 0; n < 4; n++) mma_m16n8k16<Bf16>(acc[m][n], a[m], b[n]);
        }
        __syncthreads();
    }

#pragma unroll
    for (int m = 0; m < 4; m++)
#pragma unroll
        for (int n = 0; n < 4; n++)
#pragma unroll
            for (int i = 0; i < 4; i++)
            {
                const int row = r0 + wr + m * 16 + g + (i >= 2 ? 8 : 0);
                const int token = t0 + wt + n * 8 + 2 * t + (i & 1);
                if (row < rows && token < tokens) y[(long long)token * y_stride + row] = acc[m][n][i];
            }
}

// Y [tokens, rows] (row t at y + t·y_stride) = X · Wᵀ, W [rows, cols] F16, X [tokens, cols] F16 (round_rows_f16).
extern "C" __global__ void __launch_bounds__(TC2_THREADS, 2) matmul_tc2_f16(const u16* __restrict__ w, const u16* __restrict__ x,
    float* __restrict__ y, int rows, int cols, int tokens, int y_stride)
{
    matmul_tc2<false>(w, x, y, rows, cols, tokens, y_stride);
}

extern "C" __global__ void __launch_bounds__(TC2_THREADS, 2) matmul_tc2_bf16(const u16* __restrict__ w, const u16* __restrict__ x,
    float* __restrict__ y, int rows, int cols, int tokens, int y_stride)
{
    matmul_tc2<true>(w, x, y, rows, cols, tokens, y_stride);
}

// y[i] = x[i] rounded to F16 / BF16 (nearest even), i < n; grid-stride.
extern "C" __global__ void round_rows_f16(const float* __restrict__ x, u16* __restrict__ y, long long n)
{
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) y[i] = float_to_half(x[i]);
}

extern "C" __global__ void round_rows_bf16(const float* __restrict__ x, u16* __restrict__ y, long long n)
{
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) y[i] = float_to_bf16(x[i]);
}
