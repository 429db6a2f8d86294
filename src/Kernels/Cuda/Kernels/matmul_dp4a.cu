// Prefill mat-mul on integer dot products for Q8_0 and Q4_0 weights, as the CPU does it (Cpu/Ops/MatMul.cs): the
// activation rows are quantized to Q8_0 blocks (quantize_rows_q8_0, the bytes of ActivationQuantizers.Q8_0), each
// 32-element block of a product is an integer sum of int8 × int8 (dp4a), scaled by the two block scales:
//   y[t, r] = Σ_b isum_b · (d_w[r, b] · d_x[t, b]),
// accumulated block by block in that order with single IEEE operations — the CPU's scalar VecDot, so the result is
// bit-identical to it (the SIMD CPU paths differ from it by float reassociation only).
#include "common.cuh"

// x [tokens, cols] F32 (cols a multiple of 32) → xq [tokens, cols] int8 and xd [tokens, cols / 32] F32 (the F16 scale,
// widened). One warp per block of 32: d = amax / 127 (stored as F16), q = round-half-even(x · (127 / amax)).
extern "C" __global__ void quantize_rows_q8_0(const float* __restrict__ x, signed char* __restrict__ xq, float* __restrict__ xd, int total)
{
    const long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (e - (threadIdx.x % WARP_SIZE) >= total) return; // whole warps only: total is a multiple of 32
    const float v = x[e];
    const float amax = warp_max(fabsf(v));
    const float d = __fdiv_rn(amax, 127.0f);
    const float id = amax != 0.0f ? __fdiv_rn(127.0f, amax) : 0.0f;
    xq[e] = (signed char)(int)rintf(__fmul_rn(v, id));
    if (threadIdx.x % WARP_SIZE == 0) xd[e / 32] = half_to_float(float_to_half(d));
}

#define DP4A_TILE 32     // rows and tokens per block
#define DP4A_THREADS 256 // thread (ty, tx) = (tid / 32, tid % 32): tile row tx, tile tokens ty, ty + 8, ty + 16, ty + 24

// Four int8 weights 4·word … 4·word + 3 of a block, packed little-endian into an int.
template <int Type> __device__ __forceinline__ int dp4a_weight_word(const u8* block, int word);

// Q8_0: [F16 d][32 × int8].
template <> __device__ __forceinline__ int dp4a_weight_word<0>(const u8* block, int word) { return (int)load_u32(block + 2 + 4 * word); }

// Q4_0: [F16 d][16 bytes]; element j < 16 is the low nibble of byte j, element j + 16 its high nibble; value − 8.
template <> __device__ __forceinline__ int dp4a_weight_word<1>(const u8* block, int word)
{
    const u8* q = block + 2 + 4 * (word & 3);
    const int shift = word >= 4 ? 4 : 0;
    u32 packed = 0;
    for (int i = 0; i < 4; i++) packed |= (u32)(u8)(((q[i] >> shift) & 0xF) - 8) << (8 * i);
    return (int)packed;
}

template <int Type, int BlockBytes>
__device__ __forceinline__ void matmul_dp4a(const u8* __restrict__ w, const signed char* __restrict__ xq, const float* __restrict__ xd,
    float* __restrict__ y, int rows, int cols, int tokens, int y_stride)
{
    __shared__ int ws[DP4A_TILE][9]; // [row][word], padded against bank conflicts
    __shared__ float wd[DP4A_TILE];
    __shared__ int xs[DP4A_TILE][9]; // [token][word]
    __shared__ float xds[DP4A_TILE];
    const int tid = threadIdx.x, tx = tid % 32, ty = tid / 32;
    const int row0 = blockIdx.x * DP4A_TILE, token0 = blockIdx.y * DP4A_TILE;
    const int blocks = cols / 32;
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int b = 0; b < blocks; b++)
    {
        {   // 32 rows × 8 words and 32 tokens × 8 words: one word of each per thread
            const int i = tid / 8, word = tid % 8;
            const int r = row0 + i, t = token0 + i;
            int wv = 0, xv = 0;
            float wscale = 0.0f, xscale = 0.0f;
            if (r < rows)
            {
                const u8* block = w + ((long long)r * blocks + b) * BlockBytes;
                wv = dp4a_weight_word<Type>(block, word);
                if (word == 0) wscale = half_to_float(load_u16(block));
            }
            if (t < tokens)
            {
                xv = *(const int*)(xq + (long long)t * cols + b * 32 + word * 4);
                if (word == 0) xscale = xd[(long long)t * blocks + b];
            }
            ws[i][word] = wv;
            xs[i][word] = xv;
            if (word == 0) { wd[i] = wscale; xds[i] = xscale; }
        }
        __syncthreads();
#pragma unroll
        for (int j = 0; j < 4; j++)
        {
            const int t = ty + 8 * j;
            int isum = 0;
#pragma unroll
            for (int q = 0; q < 8; q++) isum = dot4_i8(ws[tx][q], xs[t][q], isum);
            acc[j] = __fadd_rn(acc[j], __fmul_rn((float)isum, __fmul_rn(wd[tx], xds[t])));
        }
        __syncthreads();
    }
#pragma unroll
    for (int j = 0; j < 4; j++)
    {
        const int r = row0 + tx, t = token0 + ty + 8 * j;
        if (r < rows && t < tokens) y[(long long)t * y_stride + r] = acc[j];
    }
}

// y [tokens, rows] (row t at y + t·y_stride) = weights [rows, cols] · the quantized activations (quantize_rows_q8_0).
extern "C" __global__ void __launch_bounds__(DP4A_THREADS) matmul_dp4a_q8_0(const u8* __restrict__ w, const signed char* __restrict__ xq,
    const float* __restrict__ xd, float* __restrict__ y, int rows, int cols, int tokens, int y_stride)
{
    matmul_dp4a<0, 34>(w, xq, xd, y, rows, cols, tokens, y_stride);
}

extern "C" __global__ void __launch_bounds__(DP4A_THREADS) matmul_dp4a_q4_0(const u8* __restrict__ w, const signed char* __restrict__ xq,
    const float* __restrict__ xd, float* __restrict__ y, int rows, int cols, int tokens, int y_stride)
{
    matmul_dp4a<1, 18>(w, xq, xd, y, rows, cols, tokens, y_stride);
}
