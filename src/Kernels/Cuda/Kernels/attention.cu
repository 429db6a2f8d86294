// Attention of query tokens against an F32 KV cache with grouped-query heads (n_heads / n_kv_heads query heads
// share one KV head), flash-style: scores are never stored; each warp keeps a running max, sum and output
// accumulator over its share of the keys, and the block merges the warps' states at the end.
// q, out: [n_tokens, n_heads·head_dim]; k, v: [n_keys, kv_stride] (row j = cache position j, KV head g at
// column g·head_dim). Causal: query t sees keys 0 … start_pos + t; otherwise keys 0 … n_keys − 1.
// Grid (n_heads, n_tokens), 128 threads (4 warps); head_dim ≤ 256 (8 dimensions per lane).
// Version 1, aimed at decode (n_tokens = 1): each key's dot product is one warp reduction. Prefill gets a tiled
// kernel (tensor cores) later.
#include "common.cuh"

#define ATTN_WARPS 4
#define ATTN_MAX_DIM 256
#define ATTN_PER_LANE (ATTN_MAX_DIM / WARP_SIZE)

extern "C" __global__ void attention_f32(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
    float* __restrict__ out, int n_heads, int n_kv_heads, int head_dim, int kv_stride, int start_pos, int n_keys, int causal, float scale)
{
    __shared__ float warp_max_s[ATTN_WARPS];
    __shared__ float warp_sum_s[ATTN_WARPS];
    __shared__ float warp_acc_s[ATTN_WARPS][ATTN_MAX_DIM];

    const int h = blockIdx.x, t = blockIdx.y;
    const int lane = threadIdx.x % WARP_SIZE, warp = threadIdx.x / WARP_SIZE;
    const int kv_head = h / (n_heads / n_kv_heads);
    const int keys = causal ? start_pos + t + 1 : n_keys;
    const float* qh = q + ((long long)t * n_heads + h) * head_dim;
    const float* kh = k + (long long)kv_head * head_dim;
    const float* vh = v + (long long)kv_head * head_dim;

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
        const float* kj = kh + (long long)j * kv_stride;
        float s = 0.0f;
#pragma unroll
        for (int i = 0; i < ATTN_PER_LANE; i++)
        {
            const int d = lane + i * WARP_SIZE;
            if (d < head_dim) s += qr[i] * kj[d];
        }
        s = warp_sum(s);
        const float m_new = fmaxf(m, s);
        const float correction = expf(m - m_new); // 0 while m is −inf
        const float p = expf(s - m_new);
        l = l * correction + p;
        const float* vj = vh + (long long)j * kv_stride;
#pragma unroll
        for (int i = 0; i < ATTN_PER_LANE; i++)
        {
            const int d = lane + i * WARP_SIZE;
            acc[i] = acc[i] * correction + (d < head_dim ? p * vj[d] : 0.0f);
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
