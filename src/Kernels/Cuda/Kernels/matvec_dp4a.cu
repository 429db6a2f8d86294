// Decode mat-vec on integer dot products for the 32-element block types (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL), as
// the CPU does it: the activation row is quantized once to the weight type's dot encoding (Q8_0, or Q8_1 for Q4_1 and
// Q5_1, which need the block sums: quantize_rows_q8_0 in matmul_dp4a.cu, quantize_rows_q8_1 here) into xq int8 [cols],
// xd F32 [cols / 32] (the F16 scale, widened) and, for Q8_1, xs F32 [cols / 32] (the F16 s = d·Σq, widened).
//
// Layout (version 1 of the integer path; matvec.cu is the float one): one warp per output row, MMVQ_ROWS rows per
// 128-thread block. The 4 lanes of a lane group share one 32-element block: lane `sub` reads one (nibble types) or
// two (Q8_0) aligned 32-bit words of the block's quants — 8 of its 32 elements — and the matching activation words,
// so a warp reads 8 consecutive blocks per step, adjacent lanes adjacent words. Nibbles are unpacked with 32-bit mask
// and shift operations (no byte loads), dp4a does 4 products at a time, the 4 partial integer sums of a block are
// added with two shuffles, and the block's float term is formed exactly as the CPU's scalar VecDot forms it
// (__fmul_rn / __fadd_rn, same operand order), so every term carries the CPU's bits.
//
// Summation order (the trade): the CPU scalar VecDot adds the terms in one chain, block 0, 1, 2 … Reproducing that
// chain needs the terms of a whole row in one lane, a serial dependent add per block at the end of each row — latency
// the bandwidth-bound kernel would then have to hide. Instead lane group g keeps its own sum of blocks g, g + 8,
// g + 16 … and the 8 sums meet in a shuffle tree, so the result differs from the scalar VecDot by float reassociation
// only: |Δ| ≤ 1e-6 · Σ_b (|d_w·d_x|·Σ_j |w_j·x_j| + |m_w·s_x|) (checked by GpuDecodeDp4aChecks), the same
// bound the CPU's own SIMD paths are held to.
#include "quant.cuh"

#define MMVQ_ROWS 4            // warps (= output rows) per thread block
#define MMVQ_LANES_PER_BLOCK 4 // lanes sharing one 32-element block, 8 elements each
#define MMVQ_BLOCKS_PER_STEP (WARP_SIZE / MMVQ_LANES_PER_BLOCK)

// 32-bit little-endian word at a 2-byte aligned address (blocks of 18, 22 and 34 bytes): two 16-bit loads.
__device__ __forceinline__ u32 load_u32_a2(const u8* p)
{
    const u16* h = (const u16*)p;
    return (u32)h[0] | ((u32)h[1] << 16);
}

// F16 scale at a 2-byte aligned address (every field of these blocks is), widened: one 16-bit load.
__device__ __forceinline__ float load_half_a2(const u8* p) { return half_to_float(*(const u16*)p); }

// 32-bit word at a 4-byte aligned address (blocks of 20 and 24 bytes, fields at offsets 4 and 8).
__device__ __forceinline__ u32 load_u32_a4(const u8* p) { return *(const u32*)p; }

// Four bytes holding 0…15 → the four signed bytes value − 8: flipping bit 3 gives the 4-bit two's complement of
// value − 8, whose sign bit is then copied into bits 4…7 (8·0x1E = 0xF0 stays inside its byte).
__device__ __forceinline__ int nibbles_minus_8(u32 v)
{
    const u32 t = v ^ 0x08080808u;
    return (int)(t | ((t & 0x08080808u) * 0x1Eu));
}

// Four bytes holding 0…31 → value − 16, the same way with bit 4 (16·0x0E = 0xE0).
__device__ __forceinline__ int fives_minus_16(u32 v)
{
    const u32 t = v ^ 0x10101010u;
    return (int)(t | ((t & 0x10101010u) * 0x0Eu));
}

// Bits 0…3 of h → bit 4 of bytes 0…3 (the fifth bit of four Q5 elements).
__device__ __forceinline__ u32 spread_high_bits(u32 h)
{
    return ((h & 1u) << 4) | ((h & 2u) << 11) | ((h & 4u) << 18) | ((h & 8u) << 25);
}

// The IQ4_NL table (quant.cuh's iq4nl_values) as two 64-bit registers, entries 0…7 and 8…15, one byte each: a lookup
// is a shift, with no divergent constant-memory access.
struct Iq4Table
{
    unsigned long long low, high;
};

__device__ __forceinline__ Iq4Table iq4_table()
{
    Iq4Table t = {0ull, 0ull};
#pragma unroll
    for (int i = 0; i < 8; i++)
    {
        t.low |= (unsigned long long)(u8)iq4nl_values[i] << (8 * i);
        t.high |= (unsigned long long)(u8)iq4nl_values[i + 8] << (8 * i);
    }
    return t;
}

// Four bytes holding table indices 0…15 → the four table values.
__device__ __forceinline__ int iq4_lookup(const Iq4Table& t, u32 idx)
{
    u32 r = 0;
#pragma unroll
    for (int i = 0; i < 4; i++)
    {
        const u32 n = (idx >> (8 * i)) & 15u;
        const unsigned long long half = (n & 8u) ? t.high : t.low;
        r |= (u32)((half >> (8 * (n & 7u))) & 0xFFull) << (8 * i);
    }
    return (int)r;
}

// Per type: Sum(block, x, sub, table) is lane sub's share of the block's integer sum Σ_j w_j·x_j (elements 4·sub … +3
// and 16 + 4·sub … +3 for the nibble types, 8·sub … +7 for Q8_0; x the block's 8 activation words); Term(block, isum,
// d_x, s_x) the block's float term, written as the CPU scalar VecDot writes it (src/Kernels/Cpu/Quant/*Kernels.cs).

// Q8_0 (34 bytes: F16 d, 32 × int8) · Q8_0: isum · (d_w · d_x).
struct MmvqQ8_0
{
    static constexpr int block_bytes = 34;
    __device__ __forceinline__ static int sum(const u8* b, const int* x, int sub, const Iq4Table&)
    {
        const int w0 = (int)load_u32_a2(b + 2 + 8 * sub), w1 = (int)load_u32_a2(b + 6 + 8 * sub);
        return dot4_i8(w1, x[2 * sub + 1], dot4_i8(w0, x[2 * sub], 0));
    }
    __device__ __forceinline__ static float term(const u8* b, int isum, float dx, float)
    {
        return __fmul_rn((float)isum, __fmul_rn(load_half_a2(b), dx));
    }
};

// Q4_0 (18 bytes: F16 d, 16 bytes; element j < 16 the low nibble of byte j, j + 16 its high nibble; value q − 8)
// · Q8_0: (isum · d_w) · d_x.
struct MmvqQ4_0
{
    static constexpr int block_bytes = 18;
    __device__ __forceinline__ static int sum(const u8* b, const int* x, int sub, const Iq4Table&)
    {
        const u32 v = load_u32_a2(b + 2 + 4 * sub);
        const int lo = nibbles_minus_8(v & 0x0F0F0F0Fu), hi = nibbles_minus_8((v >> 4) & 0x0F0F0F0Fu);
        return dot4_i8(hi, x[sub + 4], dot4_i8(lo, x[sub], 0));
    }
    __device__ __forceinline__ static float term(const u8* b, int isum, float dx, float)
    {
        return __fmul_rn(__fmul_rn((float)isum, load_half_a2(b)), dx);
    }
};

// Q4_1 (20 bytes: F16 d, F16 m, 16 bytes of nibbles; value q·d + m) · Q8_1: (d_w · d_x) · isum + m_w · s_x.
struct MmvqQ4_1
{
    static constexpr int block_bytes = 20;
    __device__ __forceinline__ static int sum(const u8* b, const int* x, int sub, const Iq4Table&)
    {
        const u32 v = load_u32_a4(b + 4 + 4 * sub);
        return dot4_i8((int)((v >> 4) & 0x0F0F0F0Fu), x[sub + 4], dot4_i8((int)(v & 0x0F0F0F0Fu), x[sub], 0));
    }
    __device__ __forceinline__ static float term(const u8* b, int isum, float dx, float sx)
    {
        return __fadd_rn(__fmul_rn(__fmul_rn(load_half_a2(b), dx), (float)isum), __fmul_rn(load_half_a2(b + 2), sx));
    }
};

// Q5_0 (22 bytes: F16 d, 32 high bits (bit j: element j), 16 bytes of nibbles; value q − 16) · Q8_0:
// (d_w · d_x) · isum.
struct MmvqQ5_0
{
    static constexpr int block_bytes = 22;
    __device__ __forceinline__ static int sum(const u8* b, const int* x, int sub, const Iq4Table&)
    {
        const u32 qh = load_u32_a2(b + 2), v = load_u32_a2(b + 6 + 4 * sub);
        const int lo = fives_minus_16((v & 0x0F0F0F0Fu) | spread_high_bits(qh >> (4 * sub)));
        const int hi = fives_minus_16(((v >> 4) & 0x0F0F0F0Fu) | spread_high_bits(qh >> (16 + 4 * sub)));
        return dot4_i8(hi, x[sub + 4], dot4_i8(lo, x[sub], 0));
    }
    __device__ __forceinline__ static float term(const u8* b, int isum, float dx, float)
    {
        return __fmul_rn(__fmul_rn(load_half_a2(b), dx), (float)isum);
    }
};

// Q5_1 (24 bytes: F16 d, F16 m, 32 high bits, 16 bytes of nibbles; value q·d + m) · Q8_1:
// (d_w · d_x) · isum + m_w · s_x.
struct MmvqQ5_1
{
    static constexpr int block_bytes = 24;
    __device__ __forceinline__ static int sum(const u8* b, const int* x, int sub, const Iq4Table&)
    {
        const u32 qh = load_u32_a4(b + 4), v = load_u32_a4(b + 8 + 4 * sub);
        const int lo = (int)((v & 0x0F0F0F0Fu) | spread_high_bits(qh >> (4 * sub)));
        const int hi = (int)(((v >> 4) & 0x0F0F0F0Fu) | spread_high_bits(qh >> (16 + 4 * sub)));
        return dot4_i8(hi, x[sub + 4], dot4_i8(lo, x[sub], 0));
    }
    __device__ __forceinline__ static float term(const u8* b, int isum, float dx, float sx)
    {
        return __fadd_rn(__fmul_rn(__fmul_rn(load_half_a2(b), dx), (float)isum), __fmul_rn(load_half_a2(b + 2), sx));
    }
};

// IQ4_NL (18 bytes like Q4_0, each nibble an index into iq4nl_values) · Q8_0: (d_x · d_w) · isum.
struct MmvqIQ4_NL
{
    static constexpr int block_bytes = 18;
    __device__ __forceinline__ static int sum(const u8* b, const int* x, int sub, const Iq4Table& t)
    {
        const u32 v = load_u32_a2(b + 2 + 4 * sub);
        const int lo = iq4_lookup(t, v & 0x0F0F0F0Fu), hi = iq4_lookup(t, (v >> 4) & 0x0F0F0F0Fu);
        return dot4_i8(hi, x[sub + 4], dot4_i8(lo, x[sub], 0));
    }
    __device__ __forceinline__ static float term(const u8* b, int isum, float dx, float)
    {
        return __fmul_rn(__fmul_rn(dx, load_half_a2(b)), (float)isum);
    }
};

// y [rows] = W [rows, cols] · x, x given as its quantized blocks xq (int8 [cols], read as int words), xd, xs.
template <class T>
__device__ __forceinline__ void matvec_dp4a(const u8* __restrict__ w, const int* __restrict__ xq, const float* __restrict__ xd,
    const float* __restrict__ xs, float* __restrict__ y, int rows, int cols)
{
    const int lane = threadIdx.x % WARP_SIZE;
    const int row = blockIdx.x * MMVQ_ROWS + threadIdx.x / WARP_SIZE;
    if (row >= rows) return; // a whole warp leaves together
    const int group = lane / MMVQ_LANES_PER_BLOCK, sub = lane % MMVQ_LANES_PER_BLOCK;
    const int blocks = cols / 32;
    const u8* wr = w + (long long)row * blocks * T::block_bytes;
    const Iq4Table table = iq4_table(); // used by IQ4_NL only, dead code for the others
    float acc = 0.0f;
    // Warp-uniform steps (the shuffles need every lane); a lane group past the row's end contributes 0. Four steps'
    // loads are issued before their shuffles (written out: the compiler does not runtime-unroll a loop with shuffles),
    // and each lane group still adds its blocks g, g + 8, g + 16, … in that order, one float chain per group.
    constexpr int Unroll = 4;
    for (int b0 = 0; b0 < blocks; b0 += Unroll * MMVQ_BLOCKS_PER_STEP)
    {
        int isum[Unroll];
#pragma unroll
        for (int u = 0; u < Unroll; u++)
        {
            const int b = b0 + u * MMVQ_BLOCKS_PER_STEP + group;
            isum[u] = b < blocks ? T::sum(wr + (long long)b * T::block_bytes, xq + 8 * b, sub, table) : 0;
        }
#pragma unroll
        for (int u = 0; u < Unroll; u++)
        {
            isum[u] += __shfl_xor_sync(FULL_MASK, isum[u], 1);
            isum[u] += __shfl_xor_sync(FULL_MASK, isum[u], 2);
        }
#pragma unroll
        for (int u = 0; u < Unroll; u++)
        {
            const int b = b0 + u * MMVQ_BLOCKS_PER_STEP + group;
            if (b < blocks && sub == 0) acc = __fadd_rn(acc, T::term(wr + (long long)b * T::block_bytes, isum[u], xd[b], xs[b]));
        }
    }
    acc = warp_sum(acc); // the 8 lane groups' sums (other lanes hold 0)
    if (lane == 0) y[row] = acc;
}

// One kernel per weight type, written out (KernelSources reads the declarations): (w, xq, xd, xs, y, rows, cols);
// xs is read by Q4_1 and Q5_1 only (any pointer for the others).
extern "C" __global__ void __launch_bounds__(MMVQ_ROWS * WARP_SIZE) matvec_dp4a_q8_0(const u8* __restrict__ w, const int* __restrict__ xq,
    const float* __restrict__ xd, const float* __restrict__ xs, float* __restrict__ y, int rows, int cols)
{
    matvec_dp4a<MmvqQ8_0>(w, xq, xd, xs, y, rows, cols);
}

extern "C" __global__ void __launch_bounds__(MMVQ_ROWS * WARP_SIZE) matvec_dp4a_q4_0(const u8* __restrict__ w, const int* __restrict__ xq,
    const float* __restrict__ xd, const float* __restrict__ xs, float* __restrict__ y, int rows, int cols)
{
    matvec_dp4a<MmvqQ4_0>(w, xq, xd, xs, y, rows, cols);
}

extern "C" __global__ void __launch_bounds__(MMVQ_ROWS * WARP_SIZE) matvec_dp4a_q4_1(const u8* __restrict__ w, const int* __restrict__ xq,
    const float* __restrict__ xd, const float* __restrict__ xs, float* __restrict__ y, int rows, int cols)
{
    matvec_dp4a<MmvqQ4_1>(w, xq, xd, xs, y, rows, cols);
}

extern "C" __global__ void __launch_bounds__(MMVQ_ROWS * WARP_SIZE) matvec_dp4a_q5_0(const u8* __restrict__ w, const int* __restrict__ xq,
    const float* __restrict__ xd, const float* __restrict__ xs, float* __restrict__ y, int rows, int cols)
{
    matvec_dp4a<MmvqQ5_0>(w, xq, xd, xs, y, rows, cols);
}

extern "C" __global__ void __launch_bounds__(MMVQ_ROWS * WARP_SIZE) matvec_dp4a_q5_1(const u8* __restrict__ w, const int* __restrict__ xq,
    const float* __restrict__ xd, const float* __restrict__ xs, float* __restrict__ y, int rows, int cols)
{
    matvec_dp4a<MmvqQ5_1>(w, xq, xd, xs, y, rows, cols);
}

extern "C" __global__ void __launch_bounds__(MMVQ_ROWS * WARP_SIZE) matvec_dp4a_iq4_nl(const u8* __restrict__ w, const int* __restrict__ xq,
    const float* __restrict__ xd, const float* __restrict__ xs, float* __restrict__ y, int rows, int cols)
{
    matvec_dp4a<MmvqIQ4_NL>(w, xq, xd, xs, y, rows, cols);
}

// x [tokens, cols] F32 (cols a multiple of 32) → Q8_1 activation blocks as three arrays: xq [tokens, cols] int8, xd and
// xs [tokens, cols / 32] F32: the bytes of the CPU's ActivationQuantizers.Q8_1 — d = amax / 127 (stored as F16),
// q = round-half-even(x · (127 / amax)), s = F16(d · Σq) with the unrounded d. One warp per block of 32.
extern "C" __global__ void quantize_rows_q8_1(const float* __restrict__ x, signed char* __restrict__ xq, float* __restrict__ xd,
    float* __restrict__ xs, int total)
{
    const long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (e - (threadIdx.x % WARP_SIZE) >= total) return; // whole warps only: total is a multiple of 32
    const float v = x[e];
    const float amax = warp_max(fabsf(v));
    const float d = __fdiv_rn(amax, 127.0f);
    const float id = amax != 0.0f ? __fdiv_rn(127.0f, amax) : 0.0f;
    const int q = (int)rintf(__fmul_rn(v, id));
    xq[e] = (signed char)q;
    int sum = q;
    for (int offset = 16; offset > 0; offset >>= 1) sum += __shfl_xor_sync(FULL_MASK, sum, offset);
    if (threadIdx.x % WARP_SIZE == 0)
    {
        xd[e / 32] = half_to_float(float_to_half(d));
        xs[e / 32] = half_to_float(float_to_half(__fmul_rn(d, (float)sum)));
    }
}
