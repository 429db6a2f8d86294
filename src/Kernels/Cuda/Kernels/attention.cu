// Attention of query tokens against an F32 KV cache with grouped-query heads (n_heads / n_kv_heads query heads
// share one KV head), flash-style: scores are never stored; each warp keeps a running max, sum and output
// accumulator over its share of the keys, and the block merges the warps' states at the end.
// q, out: [n_tokens, n_heads·head_dim]; k, v: [n_keys, kv_stride] (row j = cache position j, KV head g at
// column g·head_dim). Causal: query t sees keys 0 … start_pos + t; otherwise keys 0 … n_keys − 1.
// Grid (n_heads, n_tokens), 128 threads (4 warps); head_dim ≤ 256 (8 dimensions per lane).
// Version 1 (attention_f32), aimed at decode (n_tokens = 1): each key's dot product is one warp reduction; 1b
// (attention_decode_f32) the same with the position read from device memory, for decode steps in a CUDA graph.
// Version 2 (attention_tiled_d*, below), for prefill and the vision towers: tiles of 64 queries × 64 keys on the
// tensor cores (F16 inputs, F32 accumulation and softmax).
// F16 KV cache (the *_f16kv kernels): k and v hold IEEE halves; the same bodies, instantiated for u16 rows, widen each
// value as it is read (versions 1/1b: half_to_float, then the same F32 math) or stage it as is (version 2, which
// rounds an F32 cache to F16 while staging anyway). q, out and all arithmetic stay F32.
#include "common.cuh"

#define ATTN_WARPS 4
#define ATTN_MAX_DIM 256
#define ATTN_PER_LANE (ATTN_MAX_DIM / WARP_SIZE)

// A cache value as float (version 1) and as half bits for the tensor cores (version 2), per cache type.
__device__ __forceinline__ float kv_float(float x) { return x; }
__device__ __forceinline__ float kv_float(u16 x) { return half_to_float(x); }
__device__ __forceinline__ u16 kv_half_bits(float x) { return float_to_half(x); }
__device__ __forceinline__ u16 kv_half_bits(u16 x) { return x; }

// Query token t, head h against keys 0 … keys − 1: the body of attention_f32 and attention_decode_f32, so a decode
// step gives the same bits through either. The block's shared arrays are declared by the kernels and passed in.
// KV: float (F32 cache) or u16 (F16 cache).
template <typename KV>
__device__ __forceinline__ void attention_f32_query(const float* __restrict__ q, const KV* __restrict__ k, const KV* __restrict__ v,
    float* __restrict__ out, int h, int t, int n_heads, int n_kv_heads, int head_dim, int kv_stride, int keys, float scale,
    float* warp_max_s, float* warp_sum_s, float (*warp_acc_s)[ATTN_MAX_DIM])
{
    const int lane = threadIdx.x % WARP_SIZE, warp = threadIdx.x / WARP_SIZE;
    const int kv_head = h / (n_heads / n_kv_heads);
    const float* qh = q + ((long long)t * n_heads + h) * head_dim;
    const KV* kh = k + (long long)kv_head * head_dim;
    const KV* vh = v + (long long)kv_head * head_dim;

    float qr[ATTN_PER_LANE], acc[ATTN_PER_LANE];
#pragma unroll
    for (int i = 0; i < ATTN_PER_LANE; i++)
    {
        const int d = lane + i * WARP_SIZE;
        qr[i] = d < head_dim ? qh[d] * scale : 0.0f;
        acc[i] = 0.0f;
    }
    float m = NEG_INF_F, l = 0.0f;
    for (int j = warp; j < keys; j += ATTN_WARPS)
    {
        const KV* kj = kh + (long long)j * kv_stride;
        float s = 0.0f;
#pragma unroll
        for (int i = 0; i < ATTN_PER_LANE; i++)
        {
            const int d = lane + i * WARP_SIZE;
            if (d < head_dim) s += qr[i] * kv_float(kj[d]);
        }
        s = warp_sum(s);
        const float m_new = fmaxf(m, s);
        const float correction = expf(m - m_new); // 0 while m is −inf
        const float p = expf(s - m_new);
        l = l * correction + p;
        const KV* vj = vh + (long long)j * kv_stride;
#pragma unroll
        for (int i = 0; i < ATTN_PER_LANE; i++)
        {
            const int d = lane + i * WARP_SIZE;
            acc[i] = acc[i] * correction + (d < head_dim ? p * kv_float(vj[d]) : 0.0f);
        }
        m = m_new;
    }

    if (lane == 0)
    {
        warp_max_s[warp] = m;
        warp_sum_s[warp] = l;
    }
#pragma unroll
    for (int i = 0; i < ATTN_PER_LANE; i++)
    {
        const int d = lane + i * WARP_SIZE;
        if (d < head_dim) warp_acc_s[warp][d] = acc[i];
    }
    __syncthreads();

    // Merge: out = Σ_w acc_w·e^(m_w − M) / Σ_w l_w·e^(m_w − M), M = max_w m_w (a warp with no keys has m = −inf, weight 0).
    float big = NEG_INF_F;
    for (int w = 0; w < ATTN_WARPS; w++) big = fmaxf(big, warp_max_s[w]);
    float total = 0.0f;
    for (int w = 0; w < ATTN_WARPS; w++) total += warp_sum_s[w] * expf(warp_max_s[w] - big);
    float* o = out + ((long long)t * n_heads + h) * head_dim;
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x)
    {
        float value = 0.0f;
        for (int w = 0; w < ATTN_WARPS; w++) value += warp_acc_s[w][d] * expf(warp_max_s[w] - big);
        o[d] = value / total;
    }
}

extern "C" __global__ void attention_f32(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
    float* __restrict__ out, int n_heads, int n_kv_heads, int head_dim, int kv_stride, int start_pos, int n_keys, int causal, float scale)
{
    __shared__ float warp_max_s[ATTN_WARPS];
    __shared__ float warp_sum_s[ATTN_WARPS];
    __shared__ float warp_acc_s[ATTN_WARPS][ATTN_MAX_DIM];
    const int h = blockIdx.x, t = blockIdx.y;
    const int keys = causal ? start_pos + t + 1 : n_keys;
    attention_f32_query<float>(q, k, v, out, h, t, n_heads, n_kv_heads, head_dim, kv_stride, keys, scale, warp_max_s, warp_sum_s, warp_acc_s);
}

// Version 1b (attention_decode_f32): one query token at the position held in device memory (*position), causal, so
// keys 0 … *position; nothing in the launch depends on the position and a decode step can be captured once into a
// CUDA graph and replayed at every position. Grid (n_heads), ATTN_WARPS warps; the warps stride over the keys.
extern "C" __global__ void attention_decode_f32(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
    float* __restrict__ out, int n_heads, int n_kv_heads, int head_dim, int kv_stride, const int* __restrict__ position, float scale)
{
    __shared__ float warp_max_s[ATTN_WARPS];
    __shared__ float warp_sum_s[ATTN_WARPS];
    __shared__ float warp_acc_s[ATTN_WARPS][ATTN_MAX_DIM];
    attention_f32_query<float>(q, k, v, out, blockIdx.x, 0, n_heads, n_kv_heads, head_dim, kv_stride, *position + 1, scale, warp_max_s, warp_sum_s,
        warp_acc_s);
}

// Versions 1 and 1b on an F16 KV cache (k, v: IEEE halves [n_keys, kv_stride]): the same launch geometry and math.
extern "C" __global__ void attention_f16kv(const float* __restrict__ q, const u16* __restrict__ k, const u16* __restrict__ v,
    float* __restrict__ out, int n_heads, int n_kv_heads, int head_dim, int kv_stride, int start_pos, int n_keys, int causal, float scale)
{
    __shared__ float warp_max_s[ATTN_WARPS];
    __shared__ float warp_sum_s[ATTN_WARPS];
    __shared__ float warp_acc_s[ATTN_WARPS][ATTN_MAX_DIM];
    const int h = blockIdx.x, t = blockIdx.y;
    const int keys = causal ? start_pos + t + 1 : n_keys;
    attention_f32_query<u16>(q, k, v, out, h, t, n_heads, n_kv_heads, head_dim, kv_stride, keys, scale, warp_max_s, warp_sum_s, warp_acc_s);
}

extern "C" __global__ void attention_decode_f16kv(const float* __restrict__ q, const u16* __restrict__ k, const u16* __restrict__ v,
    float* __restrict__ out, int n_heads, int n_kv_heads, int head_dim, int kv_stride, const int* __restrict__ position, float scale)
{
    __shared__ float warp_max_s[ATTN_WARPS];
    __shared__ float warp_sum_s[ATTN_WARPS];
    __shared__ float warp_acc_s[ATTN_WARPS][ATTN_MAX_DIM];
    attention_f32_query<u16>(q, k, v, out, blockIdx.x, 0, n_heads, n_kv_heads, head_dim, kv_stride, *position + 1, scale, warp_max_s,
        warp_sum_s, warp_acc_s);
}

// ---- Version 2: tiled flash attention on the tensor cores (mma.sync m16n8k16, sm_80+) ----
// Same arguments and layouts as attention_f32 plus n_tokens. A block takes 64 query rows of one head (4 warps ×
// 16 rows) and walks the keys in tiles of 64 held in shared memory: S = Q·Kᵀ (16 × 64 per warp, F32
// accumulators), then the online softmax in F32 (running max m and sum l per row), then O += P·V with P rounded
// to F16 straight from the S accumulators (the C fragment of two adjacent n8 tiles is the A fragment of one
// k16 step). Q, K and V are rounded to F16 as they are staged; l sums the unrounded F32 probabilities.
// D: head_dim rounded up to a multiple of 16 (the mma k-step); dimensions head_dim … D−1 are staged as zeros,
// so they add nothing to S and their O columns are not written. Keys at or beyond the block's last visible key
// are staged as zeros (a masked V row must be finite: 0·NaN would poison O); scores are masked per row only in
// tiles that cross the warp's first row's limit, and a warp skips the tiles all its rows have masked.
// Grid (ceil(n_tokens / 64), n_heads), 128 threads. F16 range: |q|, |k|, |v| must stay below 65504.
// Version 2.0: plain shared-memory staging (no cp.async, no ldmatrix, one K/V tile in flight), V transposed in
// shared memory so its B fragments are 32-bit loads; K/V are re-read by every query head of a GQA group.

#define FA_ROWS 64 // query rows per block, 16 per warp
#define FA_KEYS 64 // keys per shared-memory tile
#define FA_THREADS 128
#define FA_PAD 8 // halves of padding per shared row: the fragment loads of a warp hit 32 different banks

__device__ __forceinline__ u32 pack_half2(float lo, float hi) { return (u32)float_to_half(lo) | ((u32)float_to_half(hi) << 16); }

// Keys 0 … limit − 1 are visible to query row `row` (block-relative rows are made absolute by the caller).
__device__ __forceinline__ int attention_key_limit(int row, int start_pos, int n_keys, int causal)
{
    return causal ? min(start_pos + row + 1, n_keys) : n_keys;
}

template <int D, typename KV>
__device__ __forceinline__ void attention_tiled(const float* __restrict__ q, const KV* __restrict__ k, const KV* __restrict__ v,
    float* __restrict__ out, int n_tokens, int n_heads, int n_kv_heads, int head_dim, int kv_stride, int start_pos, int n_keys, int causal,
    float scale)
{
    __shared__ __attribute__((aligned(16))) u16 ks[FA_KEYS][D + FA_PAD]; // K tile [key][dim]; first the Q tile [row][dim]
    __shared__ __attribute__((aligned(16))) u16 vt[D][FA_KEYS + FA_PAD]; // V tile transposed [dim][key]

    const int t0 = blockIdx.x * FA_ROWS, h = blockIdx.y;
    const int lane = threadIdx.x % WARP_SIZE, warp = threadIdx.x / WARP_SIZE;
    const int g = lane / 4, tq = lane % 4;
    const int wr = warp * 16; // the warp's first row inside the tile
    const int kv_head = h / (n_heads / n_kv_heads);
    const long long q_stride = (long long)n_heads * head_dim;
    const float* qh = q + (long long)h * head_dim;
    const KV* kh = k + (long long)kv_head * head_dim;
    const KV* vh = v + (long long)kv_head * head_dim;

    // Keys the block needs (its last real row's limit), the warp's rows' largest and smallest limits.
    const int last_row = min(t0 + FA_ROWS, n_tokens) - 1;
    const int block_end = attention_key_limit(last_row, start_pos, n_keys, causal);
    const bool warp_has_rows = t0 + wr < n_tokens;
    const int warp_end = warp_has_rows ? attention_key_limit(min(t0 + wr + 15, n_tokens - 1), start_pos, n_keys, causal) : 0;
    const int warp_min = attention_key_limit(t0 + wr, start_pos, n_keys, causal);
    const int limit0 = attention_key_limit(t0 + wr + g, start_pos, n_keys, causal); // rows g and g + 8 of the warp
    const int limit1 = attention_key_limit(t0 + wr + g + 8, start_pos, n_keys, causal);

    // Q tile through shared memory into A fragments, kept in registers for every key tile.
    for (int i = threadIdx.x; i < FA_ROWS * D; i += FA_THREADS)
    {
        const int r = i / D, d = i % D;
        ks[r][d] = float_to_half(t0 + r < n_tokens && d < head_dim ? qh[(t0 + r) * q_stride + d] : 0.0f);
    }
    __syncthreads();
    u32 qa[D / 16][4];
#pragma unroll
    for (int s = 0; s < D / 16; s++)
    {
        qa[s][0] = *(const u32*)&ks[wr + g][s * 16 + 2 * tq];
        qa[s][1] = *(const u32*)&ks[wr + g + 8][s * 16 + 2 * tq];
        qa[s][2] = *(const u32*)&ks[wr + g][s * 16 + 2 * tq + 8];
        qa[s][3] = *(const u32*)&ks[wr + g + 8][s * 16 + 2 * tq + 8];
    }
    __syncthreads();

    float o[D / 8][4]; // O [16 rows, D]: n-tile n holds dims n·8 + 2tq, +1 of rows g (0, 1) and g + 8 (2, 3)
#pragma unroll
    for (int n = 0; n < D / 8; n++)
#pragma unroll
        for (int i = 0; i < 4; i++) o[n][i] = 0.0f;
    float m[2] = {NEG_INF_F, NEG_INF_F}, l[2] = {0.0f, 0.0f}; // rows g, g + 8; l is this lane's share of the row sum

    for (int k0 = 0; k0 < block_end; k0 += FA_KEYS)
    {
        for (int i = threadIdx.x; i < FA_KEYS * D; i += FA_THREADS)
        {
            const int j = i / D, d = i % D;
            const bool inside = k0 + j < block_end && d < head_dim;
            const long long at = (long long)(k0 + j) * kv_stride + d;
            ks[j][d] = inside ? kv_half_bits(kh[at]) : (u16)0;
            vt[d][j] = inside ? kv_half_bits(vh[at]) : (u16)0;
        }
        __syncthreads();
        if (k0 < warp_end)
        {
            float s[FA_KEYS / 8][4]; // S [16 rows, 64 keys]: n-tile n holds keys k0 + n·8 + 2tq, +1
#pragma unroll
            for (int n = 0; n < FA_KEYS / 8; n++)
#pragma unroll
                for (int i = 0; i < 4; i++) s[n][i] = 0.0f;
#pragma unroll
            for (int st = 0; st < D / 16; st++)
#pragma unroll
                for (int n = 0; n < FA_KEYS / 8; n++)
                {
                    u32 b[2];
                    b[0] = *(const u32*)&ks[n * 8 + g][st * 16 + 2 * tq];
                    b[1] = *(const u32*)&ks[n * 8 + g][st * 16 + 2 * tq + 8];
                    mma_m16n8k16<false>(s[n], qa[st], b);
                }

            // Scale; mask keys past each row's limit (only in a tile that reaches past the warp's smallest limit).
            const bool crosses = k0 + FA_KEYS > warp_min;
            float tile_max[2] = {NEG_INF_F, NEG_INF_F};
#pragma unroll
            for (int n = 0; n < FA_KEYS / 8; n++)
#pragma unroll
                for (int i = 0; i < 4; i++)
                {
                    const int key = k0 + n * 8 + 2 * tq + (i & 1);
                    const float x = crosses && key >= (i < 2 ? limit0 : limit1) ? NEG_INF_F : s[n][i] * scale;
                    s[n][i] = x;
                    tile_max[i / 2] = fmaxf(tile_max[i / 2], x);
                }
            float base[2], correction[2];
#pragma unroll
            for (int r = 0; r < 2; r++)
            {
                // The four lanes tq = 0…3 of group g share rows g and g + 8.
                tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(FULL_MASK, tile_max[r], 1));
                tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(FULL_MASK, tile_max[r], 2));
                const float m_new = fmaxf(m[r], tile_max[r]);
                base[r] = m_new == NEG_INF_F ? 0.0f : m_new; // a row with nothing visible yet keeps p = 0, not NaN
                correction[r] = expf(m[r] - base[r]);       // 0 while m is −inf
                m[r] = m_new;
                l[r] *= correction[r];
            }
#pragma unroll
            for (int n = 0; n < FA_KEYS / 8; n++)
#pragma unroll
                for (int i = 0; i < 4; i++)
                {
                    const float p = expf(s[n][i] - base[i / 2]);
                    s[n][i] = p;
                    l[i / 2] += p;
                }
#pragma unroll
            for (int n = 0; n < D / 8; n++)
#pragma unroll
                for (int i = 0; i < 4; i++) o[n][i] *= correction[i / 2];

            // O += P·V, 16 keys per k-step: a = P[g | g+8][2tq, 2tq+1 | +8] from n-tiles 2kk and 2kk + 1.
#pragma unroll
            for (int kk = 0; kk < FA_KEYS / 16; kk++)
            {
                u32 pa[4];
                pa[0] = pack_half2(s[2 * kk][0], s[2 * kk][1]);
                pa[1] = pack_half2(s[2 * kk][2], s[2 * kk][3]);
                pa[2] = pack_half2(s[2 * kk + 1][0], s[2 * kk + 1][1]);
                pa[3] = pack_half2(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
                for (int n = 0; n < D / 8; n++)
                {
                    u32 b[2];
                    b[0] = *(const u32*)&vt[n * 8 + g][kk * 16 + 2 * tq];
                    b[1] = *(const u32*)&vt[n * 8 + g][kk * 16 + 2 * tq + 8];
                    mma_m16n8k16<false>(o[n], pa, b);
                }
            }
        }
        __syncthreads();
    }

    // Row sums over the four lanes of the group, then O / l for the real rows and dimensions.
#pragma unroll
    for (int r = 0; r < 2; r++)
    {
        l[r] += __shfl_xor_sync(FULL_MASK, l[r], 1);
        l[r] += __shfl_xor_sync(FULL_MASK, l[r], 2);
    }
    const int row0 = t0 + wr + g;
#pragma unroll
    for (int n = 0; n < D / 8; n++)
#pragma unroll
        for (int i = 0; i < 4; i++)
        {
            const int row = row0 + (i >= 2 ? 8 : 0), d = n * 8 + 2 * tq + (i & 1);
            if (row < n_tokens && d < head_dim) out[row * q_stride + h * head_dim + d] = o[n][i] / l[i / 2];
        }
}

// One entry per padded head dim and cache type (the launcher picks the smallest D ≥ head_dim; written out, not a macro, so the
// launch checks can read each signature).
extern "C" __global__ void attention_tiled_d32(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
    float* __restrict__ out, int n_tokens, int n_heads, int n_kv_heads, int head_dim, int kv_stride, int start_pos, int n_keys, int causal, float scale)
{
    attention_tiled<32, float>(q, k, v, out, n_tokens, n_heads, n_kv_heads, head_dim, kv_stride, start_pos, n_keys, causal, scale);
}

extern "C" __global__ void attention_tiled_d64(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
    float* __restrict__ out, int n_tokens, int n_heads, int n_kv_heads, int head_dim, int kv_stride, int start_pos, int n_keys, int causal, float scale)
{
    attention_tiled<64, float>(q, k, v, out, n_tokens, n_heads, n_kv_heads, head_dim, kv_stride, start_pos, n_keys, causal, scale);
}

extern "C" __global__ void attention_tiled_d80(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
    float* __restrict__ out, int n_tokens, int n_heads, int n_kv_heads, int head_dim, int kv_stride, int start_pos, int n_keys, int causal, float scale)
{
    attention_tiled<80, float>(q, k, v, out, n_tokens, n_heads, n_kv_heads, head_dim, kv_stride, start_pos, n_keys, causal, scale);
}

extern "C" __global__ void attention_tiled_d96(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
    float* __restrict__ out, int n_tokens, int n_heads, int n_kv_heads, int head_dim, int kv_stride, int start_pos, int n_keys, int causal, float scale)
{
    attention_tiled<96, float>(q, k, v, out, n_tokens, n_heads, n_kv_heads, head_dim, kv_stride, start_pos, n_keys, causal, scale);
}

extern "C" __global__ void attention_tiled_d128(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
    float* __restrict__ out, int n_tokens, int n_heads, int n_kv_heads, int head_dim, int kv_stride, int start_pos, int n_keys, int causal, float scale)
{
    attention_tiled<128, float>(q, k, v, out, n_tokens, n_heads, n_kv_heads, head_dim, kv_stride, start_pos, n_keys, causal, scale);
}

extern "C" __global__ void attention_tiled_f16kv_d32(const float* __restrict__ q, const u16* __restrict__ k, const u16* __restrict__ v,
    float* __restrict__ out, int n_tokens, int n_heads, int n_kv_heads, int head_dim, int kv_stride, int start_pos, int n_keys, int causal, float scale)
{
    attention_tiled<32, u16>(q, k, v, out, n_tokens, n_heads, n_kv_heads, head_dim, kv_stride, start_pos, n_keys, causal, scale);
}

extern "C" __global__ void attention_tiled_f16kv_d64(const float* __restrict__ q, const u16* __restrict__ k, const u16* __restrict__ v,
    float* __restrict__ out, int n_tokens, int n_heads, int n_kv_heads, int head_dim, int kv_stride, int start_pos, int n_keys, int causal, float scale)
{
    attention_tiled<64, u16>(q, k, v, out, n_tokens, n_heads, n_kv_heads, head_dim, kv_stride, start_pos, n_keys, causal, scale);
}

extern "C" __global__ void attention_tiled_f16kv_d80(const float* __restrict__ q, const u16* __restrict__ k, const u16* __restrict__ v,
    float* __restrict__ out, int n_tokens, int n_heads, int n_kv_heads, int head_dim, int kv_stride, int start_pos, int n_keys, int causal, float scale)
{
    attention_tiled<80, u16>(q, k, v, out, n_tokens, n_heads, n_kv_heads, head_dim, kv_stride, start_pos, n_keys, causal, scale);
}

extern "C" __global__ void attention_tiled_f16kv_d96(const float* __restrict__ q, const u16* __restrict__ k, const u16* __restrict__ v,
    float* __restrict__ out, int n_tokens, int n_heads, int n_kv_heads, int head_dim, int kv_stride, int start_pos, int n_keys, int causal, float scale)
{
    attention_tiled<96, u16>(q, k, v, out, n_tokens, n_heads, n_kv_heads, head_dim, kv_stride, start_pos, n_keys, causal, scale);
}

extern "C" __global__ void attention_tiled_f16kv_d128(const float* __restrict__ q, const u16* __restrict__ k, const u16* __restrict__ v,
    float* __restrict__ out, int n_tokens, int n_heads, int n_kv_heads, int head_dim, int kv_stride, int start_pos, int n_keys, int causal, float scale)
{
    attention_tiled<128, u16>(q, k, v, out, n_tokens, n_heads, n_kv_heads, head_dim, kv_stride, start_pos, n_keys, causal, scale);
}
