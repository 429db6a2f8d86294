// Sampling on the device, so decode needs no logits download: the argmax for greedy generation, the top-k
// candidates (after the repetition penalty and banned tokens) for the host sampler to finish.
#include "common.cuh"

// result[0] = index of the largest of x[0 … n−1], the first one on ties (as Sampler.ArgMax). One block.
extern "C" __global__ void argmax_f32(const float* __restrict__ x, int n, int* __restrict__ result)
{
    __shared__ float best_value_s[32];
    __shared__ int best_index_s[32];
    const int lane = threadIdx.x % WARP_SIZE, warp = threadIdx.x / WARP_SIZE, warps = blockDim.x / WARP_SIZE;
    float best = NEG_INF_F;
    int index = 0x7fffffff;
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        if (x[i] > best || index == 0x7fffffff) { best = x[i]; index = i; }
    // Reduce (value, index) pairs: larger value wins, the smaller index on ties.
    for (int offset = 16; offset > 0; offset >>= 1)
    {
        const float other = __shfl_xor_sync(FULL_MASK, best, offset);
        const int other_index = __shfl_xor_sync(FULL_MASK, index, offset);
        if (other > best || (other == best && other_index < index)) { best = other; index = other_index; }
    }
    if (lane == 0) { best_value_s[warp] = best; best_index_s[warp] = index; }
    __syncthreads();
    if (warp == 0)
    {
        best = lane < warps ? best_value_s[lane] : NEG_INF_F;
        index = lane < warps ? best_index_s[lane] : 0x7fffffff;
        for (int offset = 16; offset > 0; offset >>= 1)
        {
            const float other = __shfl_xor_sync(FULL_MASK, best, offset);
            const int other_index = __shfl_xor_sync(FULL_MASK, index, offset);
            if (other > best || (other == best && other_index < index)) { best = other; index = other_index; }
        }
        if (lane == 0) result[0] = index;
    }
}

// ---- Top-k candidates for the host sampler ---------------------------------------------------------------------
// The K largest logits after the repetition penalty and the banned tokens, in Sampler's candidate order (larger
// value first, the smaller token id on equal values), so only K (value, id) pairs come back instead of the
// vocabulary. Each candidate is one 64-bit key that sorts in exactly that order as an unsigned integer:
//   high 32 bits: the value's bits mapped to an order-preserving unsigned (−0 counted as +0, as float == does;
//                 NaN mapped to 0, below −∞, since the sampler never takes a NaN),
//   low 32 bits:  0xffffffff − id (the smaller id gives the larger key).
// Key 0 pads a block; it is below every real key (whose low half is > 0 for any id < 2³²−1). The host decodes the
// keys (DeviceTopK.DecodeKey). Pass 1 (topk_first_pass) has each block sort a chunk of TOPK_CHUNK logits in shared
// memory (a bitonic sort) and keep its K best; pass 2 … (topk_merge_pass) does the same to the kept keys until one
// block is left. K ≤ TOPK_CHUNK / 16, so each pass shrinks the candidates at least 16-fold.

#define TOPK_CHUNK 4096
#define TOPK_THREADS 512

typedef unsigned long long u64; // (kernel parameters spell it out: the launch tables read their declared types)

__device__ __forceinline__ u64 topk_key(float v, int id)
{
    u32 bits = __float_as_uint(v);
    u32 ordered;
    if ((bits & 0x7fffffffu) > 0x7f800000u) ordered = 0u;        // NaN: below everything real
    else
    {
        if (bits == 0x80000000u) bits = 0u;                         // −0 == +0
        ordered = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
    }
    return ((u64)ordered << 32) | (u64)(0xffffffffu - (u32)id);
}

// Sorts keys[0 … span−1] (span a power of two ≤ TOPK_CHUNK) into descending order; the whole block takes part.
__device__ __forceinline__ void topk_bitonic_sort_desc(u64* keys, int span)
{
    for (int size = 2; size <= span; size <<= 1)
    {
        for (int stride = size >> 1; stride > 0; stride >>= 1)
        {
            for (int t = threadIdx.x; t < span / 2; t += blockDim.x)
            {
                const int i = 2 * t - (t & (stride - 1)); // the lower element of the pair: bit `stride` clear
                const int j = i + stride;
                const bool descending = (i & size) == 0;  // the direction of this run (the last merge is descending)
                const u64 a = keys[i], b = keys[j];
                if ((a < b) == descending) { keys[i] = b; keys[j] = a; }
            }
            __syncthreads();
        }
    }
}

__device__ __forceinline__ int topk_span(int count)
{
    int span = 2;
    while (span < count) span <<= 1;
    return span;
}

// Pass 1. Block b takes logits[b·TOPK_CHUNK …] (at most TOPK_CHUNK of the first n) and writes its k best keys to
// out[b·k … b·k + k − 1] (key 0 past the end of a short chunk). adjust[0 … penalized−1]: distinct token ids whose
// logit gets the repetition penalty (v > 0 ? v / penalty : v · penalty, as Sampler); adjust[penalized …
// penalized + banned − 1]: distinct banned ids, set to −∞ afterwards (a token may be in both lists). Ids ≥ n are
// ignored.
extern "C" __global__ void __launch_bounds__(TOPK_THREADS) topk_first_pass(const float* __restrict__ logits, int n,
    const int* __restrict__ adjust, int penalized, int banned, float penalty, int k, unsigned long long* __restrict__ out)
{
    __shared__ u64 keys[TOPK_CHUNK];
    const int base = blockIdx.x * TOPK_CHUNK;
    const int count = min(TOPK_CHUNK, n - base);
    const int span = topk_span(count);
    for (int i = threadIdx.x; i < span; i += blockDim.x)
        keys[i] = i < count ? topk_key(logits[base + i], base + i) : 0ull;
    __syncthreads();
    for (int a = threadIdx.x; a < penalized; a += blockDim.x)
    {
        const int id = adjust[a];
        if (id >= base && id < base + count)
        {
            const float v = logits[id];
            keys[id - base] = topk_key(v > 0.0f ? __fdiv_rn(v, penalty) : __fmul_rn(v, penalty), id);
        }
    }
    __syncthreads();
    for (int a = threadIdx.x; a < banned; a += blockDim.x)
    {
        const int id = adjust[penalized + a];
        if (id >= base && id < base + count) keys[id - base] = topk_key(NEG_INF_F, id);
    }
    __syncthreads();
    topk_bitonic_sort_desc(keys, span);
    for (int i = threadIdx.x; i < k; i += blockDim.x) out[(long long)blockIdx.x * k + i] = i < span ? keys[i] : 0ull;
}

// Pass 2 …: block b sorts in[b·TOPK_CHUNK …] (at most TOPK_CHUNK of the first count keys) and writes its k best to
// out[b·k …], as pass 1.
extern "C" __global__ void __launch_bounds__(TOPK_THREADS) topk_merge_pass(const unsigned long long* __restrict__ in, int count, int k,
    unsigned long long* __restrict__ out)
{
    __shared__ u64 keys[TOPK_CHUNK];
    const int base = blockIdx.x * TOPK_CHUNK;
    const int mine = min(TOPK_CHUNK, count - base);
    const int span = topk_span(mine);
    for (int i = threadIdx.x; i < span; i += blockDim.x) keys[i] = i < mine ? in[base + i] : 0ull;
    __syncthreads();
    topk_bitonic_sort_desc(keys, span);
    for (int i = threadIdx.x; i < k; i += blockDim.x) out[(long long)blockIdx.x * k + i] = i < span ? keys[i] : 0ull;
}
