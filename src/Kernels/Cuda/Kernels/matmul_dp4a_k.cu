// Integer (dp4a) products for the K-quant weights Q4_K, Q5_K and Q6_K, as the CPU computes them (Cpu/Quant/Q4_KKernels,
// Q5_KKernels, Q6_KKernels, VecDotScalar): the activation rows are quantized to Q8_K (quantize_rows_q8_k, the bytes of
// ActivationQuantizers.Q8_K), each 256-element super-block of a product is a sum of integers — per sub-block a dp4a
// sum of codes × int8 activations times the sub-block's 6-bit (Q4_K/Q5_K) or int8 (Q6_K) scale, and for Q4_K/Q5_K the
// mins against the activation's bsums — and the super-blocks are accumulated in order with single IEEE operations:
//   Q4_K, Q5_K: y += (d_x · d) · isum − (d_x · dmin) · msum
//   Q6_K:       y += (d · d_x) · isum
// Integer sums do not depend on their order, and every float operation is the CPU's (__fmul_rn / __fadd_rn keep NVRTC
// from contracting them into FMAs), so the results are bit-identical to the CPU's scalar VecDot on the same Q8_K blocks.
//
// Two kernels per type: matmul_dp4a_* (prefill: 32 rows × 32 tokens per thread block, weights decoded to int8 once per
// super-block into shared memory) and matvec_dp4a_* (decode and batches below CudaOps.Dp4aMinTokens: one warp per row,
// streaming the weights with 32-bit loads).
#include "common.cuh"

#define Q8K_BYTES 292 // Q8_K block: F32 d, 256 × int8 q, 16 × int16 bsums (sums of 16 q): 73 aligned words
#define Q8K_Q_WORD 1  // word of q[0]
#define Q8K_BSUM_WORD 65 // word of bsums[0, 1]

// ggml's nearest_int as the CPU computes it (ActivationQuantizers.NearestInt): round half to even by adding 1.5·2²³.
__device__ __forceinline__ int nearest_int_q8k(float v)
{
    const float t = __fadd_rn(v, 12582912.0f);
    return (int)(__float_as_uint(t) & 0x007FFFFFu) - 0x00400000;
}

// x [blocks · 256] F32 → y [blocks] Q8_K blocks of 292 bytes (4-byte aligned). One warp per block, lane l holding
// elements 8l … 8l + 7. As the CPU's scalar Q8_K: max = the signed value of largest magnitude (the first on ties),
// iscale = −127 / max, q = min(127, nearest_int(iscale · x)), d = 1 / iscale, bsums per 16; an all-zero block is zeros.
extern "C" __global__ void quantize_rows_q8_k(const float* __restrict__ x, u8* __restrict__ y, int blocks)
{
    const long long block = ((long long)blockIdx.x * blockDim.x + threadIdx.x) / WARP_SIZE;
    const int lane = threadIdx.x % WARP_SIZE;
    if (block >= blocks) return; // the whole warp
    const float* xb = x + block * 256 + 8 * lane;
    u8* yb = y + block * Q8K_BYTES;
    float v[8];
#pragma unroll
    for (int i = 0; i < 8; i++) v[i] = xb[i];

    float amax = 0.0f, max = 0.0f;
    int first = 256;
#pragma unroll
    for (int i = 0; i < 8; i++)
    {
        const float ax = fabsf(v[i]);
        if (ax > amax) { amax = ax; max = v[i]; first = 8 * lane + i; } // strict: the first of equal magnitudes; NaN never wins
    }
    for (int offset = 16; offset > 0; offset >>= 1)
    {
        const float other_amax = __shfl_xor_sync(FULL_MASK, amax, offset);
        const float other_max = __shfl_xor_sync(FULL_MASK, max, offset);
        const int other_first = __shfl_xor_sync(FULL_MASK, first, offset);
        if (other_amax > amax || (other_amax == amax && other_first < first)) { amax = other_amax; max = other_max; first = other_first; }
    }

    u32* words = (u32*)yb;
    if (amax == 0.0f) // uniform across the warp
    {
        words[Q8K_Q_WORD + 2 * lane] = 0;
        words[Q8K_Q_WORD + 2 * lane + 1] = 0;
        if (lane < 8) words[Q8K_BSUM_WORD + lane] = 0;
        if (lane == 0) words[0] = 0;
        return;
    }
    const float iscale = __fdiv_rn(-127.0f, max);
    u32 packed[2] = {0, 0};
    int sum = 0;
#pragma unroll
    for (int i = 0; i < 8; i++)
    {
        const int q = min(127, nearest_int_q8k(__fmul_rn(iscale, v[i])));
        sum += q;
        packed[i / 4] |= (u32)(u8)q << (8 * (i % 4));
    }
    words[Q8K_Q_WORD + 2 * lane] = packed[0];
    words[Q8K_Q_WORD + 2 * lane + 1] = packed[1];
    // bsums[j] covers lanes 2j, 2j + 1; lane 4k stores bsums[2k] (its pair) and bsums[2k + 1] (lanes 4k + 2, 4k + 3).
    sum += __shfl_xor_sync(FULL_MASK, sum, 1);
    const int next = __shfl_xor_sync(FULL_MASK, sum, 2);
    if (lane % 4 == 0) words[Q8K_BSUM_WORD + lane / 4] = (u32)(u16)(short)sum | ((u32)(u16)(short)next << 16);
    if (lane == 0) *(float*)yb = __fdiv_rn(1.0f, iscale);
}

// ---- the weight super-blocks ----
// Q4_K (144 bytes): F16 d, F16 dmin, scales[12] (eight 6-bit scales and mins), qs[128]. Element 64c + l (l < 32) is the
// low nibble of qs[32c + l], element 64c + 32 + l its high nibble; sub-block s = element / 32 has scale s and min s.
// Q5_K (176 bytes): d, dmin, scales[12] as Q4_K, qh[32], qs[128]; bit 4 of element 64c + l is bit 2c of qh[l], of
// element 64c + 32 + l bit 2c + 1 of qh[l].
// Q6_K (210 bytes, only 2-byte aligned): ql[128], qh[64], int8 scales[16], F16 d. Element 128h + 32u + l (u < 4,
// l < 32): low (u = 0, 1) or high (u = 2, 3) nibble of ql[64h + 32(u & 1) + l] | bits 2u, 2u + 1 of qh[32h + l] << 4,
// minus 32; scale of element e is scales[e / 16].

// The eight 6-bit scales (bytes of sc[0], sc[1]) and mins (bytes of mn[0], mn[1]) of a Q4_K/Q5_K super-block from its
// three packed words (ggml's get_scale_min_k4, as KQuantScales.UnpackQ4K).
__device__ __forceinline__ void unpack_scales_mins_k4(u32 u0, u32 u1, u32 u2, u32* sc, u32* mn)
{
    sc[0] = u0 & 0x3f3f3f3fu;
    sc[1] = (u2 & 0x0f0f0f0fu) | (((u0 >> 6) & 0x03030303u) << 4);
    mn[0] = u1 & 0x3f3f3f3fu;
    mn[1] = ((u2 >> 4) & 0x0f0f0f0fu) | (((u1 >> 6) & 0x03030303u) << 4);
}

__device__ __forceinline__ int byte_of(u32 word, int i) { return (int)((word >> (8 * i)) & 0xFF); }
__device__ __forceinline__ int sbyte_of(u32 word, int i) { return (int)(signed char)(u8)(word >> (8 * i)); }

// A 32-bit word of a 2-byte-aligned Q6_K block as two 16-bit loads.
__device__ __forceinline__ u32 load_u32_pair(const u8* p) { return (u32)*(const u16*)p | ((u32)*(const u16*)(p + 2) << 16); }

// The low (Hi == false) or high nibbles of four packed bytes.
__device__ __forceinline__ int nibbles(u32 raw, bool hi) { return (int)((hi ? raw >> 4 : raw) & 0x0f0f0f0fu); }

// ---- prefill: tiled mat-mul ----

#define DP4AK_TILE 32     // rows and tokens per thread block
#define DP4AK_THREADS 256 // thread (ty, tx) = (tid / 32, tid % 32): tile row tx, tile tokens ty, ty + 8, ty + 16, ty + 24

// Type: 0 = Q4_K, 1 = Q5_K, 2 = Q6_K.
template <int Type> struct KBlock;
template <> struct KBlock<0> { static const int bytes = 144; };
template <> struct KBlock<1> { static const int bytes = 176; };
template <> struct KBlock<2> { static const int bytes = 210; };

template <int Type>
__device__ __forceinline__ void matmul_dp4a_k(const u8* __restrict__ w, const u8* __restrict__ xk, float* __restrict__ y,
    int rows, int cols, int tokens, int y_stride)
{
    const int BlockBytes = KBlock<Type>::bytes;
    __shared__ int wq[DP4AK_TILE][65];    // [row][word]: the super-block's 256 codes as int8 (Q6_K: 0 … 63, unbiased), padded
    __shared__ int wsc[DP4AK_TILE][17];   // [row][]: Q4_K/Q5_K 8 scales then 8 mins; Q6_K 16 signed scales
    __shared__ float wd[DP4AK_TILE][2];   // [row]: d, dmin (Q6_K: d)
    __shared__ int xs[DP4AK_TILE][65];    // [token][word]: the Q8_K block's int8 q
    __shared__ int xbs[DP4AK_TILE][17];   // [token][j]: bsums
    __shared__ float xds[DP4AK_TILE];     // [token]: d
    const int tid = threadIdx.x, tx = tid % 32, ty = tid / 32;
    const int row0 = blockIdx.x * DP4AK_TILE, token0 = blockIdx.y * DP4AK_TILE;
    const int blocks = cols / 256;
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int b = 0; b < blocks; b++)
    {
        // Weights: 32 rows × 32 source words of codes, each expanded into two words of int8 codes (adjacent threads
        // read adjacent words of a row).
        for (int k = tid; k < DP4AK_TILE * 32; k += DP4AK_THREADS)
        {
            const int i = k / 32, word = k % 32, r = row0 + i;
            int lo = 0, hi = 0, lo_index, hi_index;
            if (Type == 2)
            {   // word = 16h + 8·part + lw: ql bytes 64h + 32·part + 4lw → quarters u = part (low nibbles), part + 2 (high)
                const int h = word / 16, part = (word / 8) % 2, lw = word % 8;
                lo_index = 32 * h + 8 * part + lw;
                hi_index = lo_index + 16;
                if (r < rows)
                {
                    const u8* block = w + ((long long)r * blocks + b) * BlockBytes;
                    const u32 ql = load_u32_pair(block + 64 * h + 32 * part + 4 * lw);
                    const u32 qh = load_u32_pair(block + 128 + 32 * h + 4 * lw);
                    lo = nibbles(ql, false) | (int)(((qh >> (2 * part)) & 0x03030303u) << 4);
                    hi = nibbles(ql, true) | (int)(((qh >> (2 * part + 4)) & 0x03030303u) << 4);
                }
            }
            else
            {   // word = 8c + iw: qs bytes 32c + 4·iw → elements 64c + 4·iw (low nibbles) and 64c + 32 + 4·iw (high)
                const int c = word / 8, iw = word % 8;
                lo_index = 16 * c + iw;
                hi_index = lo_index + 8;
                if (r < rows)
                {
                    const u8* block = w + ((long long)r * blocks + b) * BlockBytes;
                    const u32 raw = *(const u32*)(block + (Type == 0 ? 16 : 48) + 4 * word);
                    lo = nibbles(raw, false);
                    hi = nibbles(raw, true);
                    if (Type == 1)
                    {
                        const u32 qh = *(const u32*)(block + 16 + 4 * iw);
                        lo |= (int)(((qh >> (2 * c)) & 0x01010101u) << 4);
                        hi |= (int)(((qh >> (2 * c + 1)) & 0x01010101u) << 4);
                    }
                }
            }
            wq[i][lo_index] = lo;
            wq[i][hi_index] = hi;
        }
        if (tid < DP4AK_TILE)
        {   // scales of row tid, decoded once per super-block
            const int r = row0 + tid;
            float d = 0.0f, dmin = 0.0f;
            u32 s[4] = {0, 0, 0, 0};
            if (r < rows)
            {
                const u8* block = w + ((long long)r * blocks + b) * BlockBytes;
                if (Type == 2)
                {
#pragma unroll
                    for (int j = 0; j < 4; j++) s[j] = load_u32_pair(block + 192 + 4 * j);
                    d = half_to_float(*(const u16*)(block + 208));
                }
                else
                {
                    const u32 dm = *(const u32*)block;
                    d = half_to_float((u16)(dm & 0xFFFF));
                    dmin = half_to_float((u16)(dm >> 16));
                    unpack_scales_mins_k4(*(const u32*)(block + 4), *(const u32*)(block + 8), *(const u32*)(block + 12), s, s + 2);
                }
            }
#pragma unroll
            for (int j = 0; j < 16; j++) wsc[tid][j] = Type == 2 ? sbyte_of(s[j / 4], j % 4) : byte_of(s[j / 4], j % 4);
            wd[tid][0] = d;
            wd[tid][1] = dmin;
        }
        // Activations: 32 tokens × 64 words of q, 8 words of bsums, d.
        for (int k = tid; k < DP4AK_TILE * 64; k += DP4AK_THREADS)
        {
            const int i = k / 64, word = k % 64, t = token0 + i;
            xs[i][word] = t < tokens ? *(const int*)(xk + ((long long)t * blocks + b) * Q8K_BYTES + 4 * (Q8K_Q_WORD + word)) : 0;
        }
        {
            const int i = tid / 8, word = tid % 8, t = token0 + i;
            const u32 pair = t < tokens ? *(const u32*)(xk + ((long long)t * blocks + b) * Q8K_BYTES + 4 * (Q8K_BSUM_WORD + word)) : 0u;
            xbs[i][2 * word] = (int)(short)(u16)(pair & 0xFFFF);
            xbs[i][2 * word + 1] = (int)(short)(u16)(pair >> 16);
            if (word == 0) xds[i] = t < tokens ? *(const float*)(xk + ((long long)t * blocks + b) * Q8K_BYTES) : 0.0f;
        }
        __syncthreads();

        int isum[4] = {0, 0, 0, 0};
        if (Type == 2)
        {
#pragma unroll 4
            for (int g = 0; g < 16; g++) // sub-blocks of 16: Σ sc_g · Σ (q_u − 32)·x = Σ sc_g · (Σ q_u·x − 32·bsum_g)
            {
                int wv[4];
#pragma unroll
                for (int q = 0; q < 4; q++) wv[q] = wq[tx][4 * g + q];
                const int sc = wsc[tx][g];
#pragma unroll
                for (int j = 0; j < 4; j++)
                {
                    const int t = ty + 8 * j;
                    int dot = 0;
#pragma unroll
                    for (int q = 0; q < 4; q++) dot = dot4_i8(wv[q], xs[t][4 * g + q], dot);
                    isum[j] += sc * (dot - 32 * xbs[t][g]);
                }
            }
#pragma unroll
            for (int j = 0; j < 4; j++)
            {
                const int t = ty + 8 * j;
                acc[j] = __fadd_rn(acc[j], __fmul_rn(__fmul_rn(wd[tx][0], xds[t]), (float)isum[j]));
            }
        }
        else
        {
#pragma unroll 2
            for (int s = 0; s < 8; s++) // sub-blocks of 32
            {
                int wv[8];
#pragma unroll
                for (int q = 0; q < 8; q++) wv[q] = wq[tx][8 * s + q];
                const int sc = wsc[tx][s];
#pragma unroll
                for (int j = 0; j < 4; j++)
                {
                    const int t = ty + 8 * j;
                    int dot = 0;
#pragma unroll
                    for (int q = 0; q < 8; q++) dot = dot4_i8(wv[q], xs[t][8 * s + q], dot);
                    isum[j] += sc * dot;
                }
            }
#pragma unroll
            for (int j = 0; j < 4; j++)
            {
                const int t = ty + 8 * j;
                int msum = 0;
#pragma unroll
                for (int k = 0; k < 16; k++) msum += xbs[t][k] * wsc[tx][8 + k / 2];
                const float dx = xds[t];
                const float a = __fmul_rn(__fmul_rn(dx, wd[tx][0]), (float)isum[j]);
                const float m = __fmul_rn(__fmul_rn(dx, wd[tx][1]), (float)msum);
                acc[j] = __fadd_rn(acc[j], __fadd_rn(a, -m));
            }
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

// y [tokens, rows] (row t at y + t·y_stride) = weights [rows, cols] · xk [tokens, cols / 256] (quantize_rows_q8_k).
extern "C" __global__ void __launch_bounds__(DP4AK_THREADS) matmul_dp4a_q4_k(const u8* __restrict__ w, const u8* __restrict__ xk,
    float* __restrict__ y, int rows, int cols, int tokens, int y_stride)
{
    matmul_dp4a_k<0>(w, xk, y, rows, cols, tokens, y_stride);
}

extern "C" __global__ void __launch_bounds__(DP4AK_THREADS) matmul_dp4a_q5_k(const u8* __restrict__ w, const u8* __restrict__ xk,
    float* __restrict__ y, int rows, int cols, int tokens, int y_stride)
{
    matmul_dp4a_k<1>(w, xk, y, rows, cols, tokens, y_stride);
}

extern "C" __global__ void __launch_bounds__(DP4AK_THREADS) matmul_dp4a_q6_k(const u8* __restrict__ w, const u8* __restrict__ xk,
    float* __restrict__ y, int rows, int cols, int tokens, int y_stride)
{
    matmul_dp4a_k<2>(w, xk, y, rows, cols, tokens, y_stride);
}

// ---- decode: mat-vec ----
// One warp per row, MATVEC_DP4AK_ROWS rows per thread block, blockIdx.y the token. The warp takes four super-blocks at a
// time (two such steps per loop iteration), eight lanes (g = lane % 8) on each: lane g reads the source words g, g + 8, g + 16, g + 24 of the codes, so the
// eight lanes of a super-block read 32 consecutive bytes per load. A super-block's integer sums are reduced over its
// eight lanes (3 shuffles), then the warp adds the four super-blocks' float terms to the row sum in order.

#define MATVEC_DP4AK_ROWS 4

// The integer sums of one super-block over lane g's share: isum and (Q4_K/Q5_K) msum.
template <int Type>
__device__ __forceinline__ void superblock_sums(const u8* block, const int* xw, int g, int* isum_out, int* msum_out)
{
    int isum = 0, msum = 0;
    if (Type == 2)
    {
        // Lane g: elements 128h + 32u + 4g … + 3 for h < 2, u < 4 (scale index 8h + 2u + g / 4), and bsums 2g, 2g + 1.
        const u32 s0_3 = load_u32_pair(block + 192), s4_7 = load_u32_pair(block + 196); // scales[0 … 3], [4 … 7]
        const u32 s8_11 = load_u32_pair(block + 200), s12_15 = load_u32_pair(block + 204);
        const int half_g = g / 4;
#pragma unroll
        for (int h = 0; h < 2; h++)
        {
            const u32 ql_a = load_u32_pair(block + 64 * h + 4 * g);
            const u32 ql_b = load_u32_pair(block + 64 * h + 32 + 4 * g);
            const u32 qh = load_u32_pair(block + 128 + 32 * h + 4 * g);
            const u32 sw_lo = h == 0 ? s0_3 : s8_11, sw_hi = h == 0 ? s4_7 : s12_15; // scales 8h … 8h + 3, 8h + 4 … 8h + 7
#pragma unroll
            for (int u = 0; u < 4; u++)
            {
                const u32 ql = (u & 1) ? ql_b : ql_a;
                const int q = nibbles(ql, u >= 2) | (int)(((qh >> (2 * u)) & 0x03030303u) << 4);
                const int sc = sbyte_of(u < 2 ? sw_lo : sw_hi, 2 * (u % 2) + half_g);
                isum += sc * dot4_i8(q, xw[Q8K_Q_WORD + 32 * h + 8 * u + g], 0);
            }
        }
        const u32 bs = (u32)xw[Q8K_BSUM_WORD + g];
        const u32 sc_pair = *(const u16*)(block + 192 + 2 * g);
        isum -= 32 * (sbyte_of(sc_pair, 0) * (int)(short)(u16)(bs & 0xFFFF) + sbyte_of(sc_pair, 1) * (int)(short)(u16)(bs >> 16));
    }
    else
    {
        u32 sc[2], mn[2];
        unpack_scales_mins_k4(*(const u32*)(block + 4), *(const u32*)(block + 8), *(const u32*)(block + 12), sc, mn);
        const u32 qh = Type == 1 ? *(const u32*)(block + 16 + 4 * g) : 0u;
        const u8* qs = block + (Type == 0 ? 16 : 48);
#pragma unroll
        for (int c = 0; c < 4; c++)
        {
            const u32 raw = *(const u32*)(qs + 4 * (g + 8 * c));
            int lo = nibbles(raw, false), hi = nibbles(raw, true);
            if (Type == 1)
            {
                lo |= (int)(((qh >> (2 * c)) & 0x01010101u) << 4);
                hi |= (int)(((qh >> (2 * c + 1)) & 0x01010101u) << 4);
            }
            const u32 sw = c < 2 ? sc[0] : sc[1];
            isum += byte_of(sw, 2 * (c % 2)) * dot4_i8(lo, xw[Q8K_Q_WORD + 16 * c + g], 0)
                  + byte_of(sw, 2 * (c % 2) + 1) * dot4_i8(hi, xw[Q8K_Q_WORD + 16 * c + 8 + g], 0);
        }
        const u32 bs = (u32)xw[Q8K_BSUM_WORD + g]; // bsums 2g, 2g + 1: the 32 elements of sub-block g
        msum = ((int)(short)(u16)(bs & 0xFFFF) + (int)(short)(u16)(bs >> 16)) * byte_of(g < 4 ? mn[0] : mn[1], g % 4);
    }
    *isum_out = isum;
    *msum_out = msum;
}

template <int Type>
__device__ __forceinline__ void matvec_dp4a_k(const u8* __restrict__ w, const u8* __restrict__ xk, float* __restrict__ y,
    int rows, int cols, int y_stride)
{
    const int BlockBytes = KBlock<Type>::bytes;
    const int lane = threadIdx.x % WARP_SIZE, group = lane / 8, g = lane % 8;
    const int r = blockIdx.x * MATVEC_DP4AK_ROWS + threadIdx.x / WARP_SIZE;
    if (r >= rows) return; // the whole warp
    const int blocks = cols / 256;
    const u8* wrow = w + (long long)r * blocks * BlockBytes;
    const u8* xrow = xk + (long long)blockIdx.y * blocks * Q8K_BYTES;
    float sum = 0.0f;
    for (int b0 = 0; b0 < blocks; b0 += 8) // two steps of four super-blocks: both steps' loads issue before the shuffles
    {
        int isum[2] = {0, 0}, msum[2] = {0, 0};
#pragma unroll
        for (int half = 0; half < 2; half++)
        {
            const int b = b0 + 4 * half + group;
            if (b < blocks) superblock_sums<Type>(wrow + (long long)b * BlockBytes, (const int*)(xrow + (long long)b * Q8K_BYTES), g, &isum[half], &msum[half]);
        }
#pragma unroll
        for (int half = 0; half < 2; half++)
        {
            for (int offset = 4; offset > 0; offset >>= 1) // within the eight lanes of the super-block
            {
                isum[half] += __shfl_xor_sync(FULL_MASK, isum[half], offset);
                if (Type != 2) msum[half] += __shfl_xor_sync(FULL_MASK, msum[half], offset);
            }
            const int b = b0 + 4 * half + group;
            float term = 0.0f;
            if (b < blocks)
            {
                const u8* block = wrow + (long long)b * BlockBytes;
                const float dx = *(const float*)(xrow + (long long)b * Q8K_BYTES);
                if (Type == 2) term = __fmul_rn(__fmul_rn(half_to_float(*(const u16*)(block + 208)), dx), (float)isum[half]);
                else
                {
                    const u32 dm = *(const u32*)block;
                    const float a = __fmul_rn(__fmul_rn(dx, half_to_float((u16)(dm & 0xFFFF))), (float)isum[half]);
                    const float m = __fmul_rn(__fmul_rn(dx, half_to_float((u16)(dm >> 16))), (float)msum[half]);
                    term = __fadd_rn(a, -m);
                }
            }
#pragma unroll
            for (int k = 0; k < 4; k++) // the CPU's order: super-block by super-block
            {
                const float t = __shfl_sync(FULL_MASK, term, 8 * k);
                if (b0 + 4 * half + k < blocks) sum = __fadd_rn(sum, t);
            }
        }
    }
    if (lane == 0) y[(long long)blockIdx.y * y_stride + r] = sum;
}

// y [tokens, rows] (row t at y + t·y_stride) = weights [rows, cols] · xk [tokens, cols / 256]; grid (⌈rows / 4⌉, tokens).
extern "C" __global__ void __launch_bounds__(MATVEC_DP4AK_ROWS * 32) matvec_dp4a_q4_k(const u8* __restrict__ w, const u8* __restrict__ xk,
    float* __restrict__ y, int rows, int cols, int y_stride)
{
    matvec_dp4a_k<0>(w, xk, y, rows, cols, y_stride);
}

extern "C" __global__ void __launch_bounds__(MATVEC_DP4AK_ROWS * 32) matvec_dp4a_q5_k(const u8* __restrict__ w, const u8* __restrict__ xk,
    float* __restrict__ y, int rows, int cols, int y_stride)
{
    matvec_dp4a_k<1>(w, xk, y, rows, cols, y_stride);
}

extern "C" __global__ void __launch_bounds__(MATVEC_DP4AK_ROWS * 32) matvec_dp4a_q6_k(const u8* __restrict__ w, const u8* __restrict__ xk,
    float* __restrict__ y, int rows, int cols, int y_stride)
{
    matvec_dp4a_k<2>(w, xk, y, rows, cols, y_stride);
}
